"""The sample exports in data/ are the reference exports of ../shared/seed-exports, unchanged.

The reference exports' SHA-256 digests are recorded here, so that a checkout without
``../shared`` (a fresh clone, CI) still checks ``data/`` against them; where ``../shared`` is
beside the checkout, the digests are checked against it too (so they are the seeds').
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO.parent / "shared" / "seed-exports"
DIGESTS = {
    "tenant/test_table/20201230_V0001/export1.csv.gz": (
        "5582415c40104962684dfdff347aaa256be4a68910a81f73a50fa3fff4060516"
    ),
    "tenant/test_table/20201230_V0002/export2.csv.gz": (
        "c51ab1ef281ede408bf01b08636d7f77e00493517a410ccdae6ac0a360d9e5ce"
    ),
    "tenant/test_table/20201231_V0001/export3.csv.gz": (
        "704eb4739f359ca07db71f37636940bf1943bcfdd729933892f7396062050ca9"
    ),
}


def digests(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*.csv.gz"))
    }


def test_data_holds_the_reference_exports_unchanged():
    assert digests(REPO / "data") == DIGESTS


def test_the_recorded_digests_are_the_seeds():
    if not SEEDS.is_dir():  # (the check above ran all the same, against the recorded digests)
        pytest.skip(f"{SEEDS} is not beside this checkout: the recorded digests stand for it")
    assert digests(SEEDS) == DIGESTS
