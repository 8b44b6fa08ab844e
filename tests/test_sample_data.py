"""The sample exports in data/ are the reference exports of ../shared/seed-exports, unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO.parent / "shared" / "seed-exports"


@pytest.mark.skipif(not SEEDS.is_dir(), reason="../shared/seed-exports is not beside this checkout")
def test_data_holds_the_reference_exports_unchanged():
    seeds = sorted(p.relative_to(SEEDS) for p in SEEDS.rglob("*.csv.gz"))
    assert seeds, f"no exports under {SEEDS}"
    for rel in seeds:
        assert (REPO / "data" / rel).read_bytes() == (SEEDS / rel).read_bytes(), rel
