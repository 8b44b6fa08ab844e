"""The hold rule (``snapcdc.steps.hold.hold_reason``) and the resume execution's name."""

from __future__ import annotations

import pytest

from snapcdc.model.contract import TableConfig
from snapcdc.steps.hold import hold_reason
from snapcdc_local.stack.resume import resume_execution_name

DEFAULT = TableConfig()


@pytest.mark.parametrize(
    ("config", "previous_rows", "rows", "deletes", "held"),
    [
        (DEFAULT, 100, 30, 70, "would delete 70 of 100 rows (70% > 50%) of V1"),
        (DEFAULT, 100, 50, 50, None),  # exactly the fraction: applied
        (DEFAULT, 100, 49, 51, "would delete 51 of 100 rows (51% > 50%) of V1"),
        (DEFAULT, 1000, 496, 504, "would delete 504 of 1000 rows (50.4% > 50%) of V1"),
        (DEFAULT, 100, 170, 70, "would delete 70 of 100 rows"),  # inserts do not offset deletes
        (TableConfig(max_delete_fraction=0.1), 100, 89, 11, "(11% > 10%)"),
        (TableConfig(max_delete_fraction=1.0), 100, 1, 99, None),  # the guard is off
        (TableConfig(max_delete_fraction=0), 100, 100, 1, "(1% > 0%)"),
        (DEFAULT, 3, 0, 3, "the export has no rows after V1 with 3"),
        (TableConfig(max_delete_fraction=1.0), 3, 0, 3, 'set "allow_empty": true'),
        (TableConfig(allow_empty=True), 3, 0, 3, None),
        (DEFAULT, 0, 0, 0, None),  # empty after empty
        (DEFAULT, 0, 5, 0, None),
    ],
)
def test_hold_reason(config, previous_rows, rows, deletes, held):
    reason = hold_reason(config, "V1", previous_rows, rows, deletes)
    if held is None:
        assert reason is None
    else:
        assert held in reason


def test_resume_execution_names_are_valid_and_distinct():
    names = {
        resume_execution_name(action, f"upload#tenant/t/{version}/x.csv.gz#0A")
        for action in ("approve", "reject")
        for version in ("V2", "v2", "V_2")
    }
    assert len(names) == 6
    for name in names:
        assert len(name) <= 80
        assert all(c.isalnum() or c in "-_" for c in name)
