"""Shared fixtures of the embedded-pipeline tests."""

from __future__ import annotations

from pathlib import Path

import pytest

# Lambda handler modules of fixture stacks: imported by the emulator, not by pytest's doctests.
collect_ignore = ["plumbing_handlers.py"]

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: minutes, not seconds (deselect while iterating: -m 'not slow')"
    )
    config.addinivalue_line(
        "markers", "history_quota(n): the emulated Step Functions' history-event quota"
    )


@pytest.fixture(scope="module")
def plumbing():
    """The plumbing fixture stack deployed in a fresh emulator (one per test module)."""
    from snapcdc_local.emulator import Emulator

    with Emulator(HERE / "plumbing" / "cfn.yaml", parameters={"WaitSeconds": "1"}) as aws:
        yield aws
