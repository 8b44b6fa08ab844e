"""Judging the export check (``queries.check_export``): the version fails before any delta runs.

>>> evaluate(["5", "1", "['PK1']", "0", "0"])
Traceback (most recent call last):
...
snapcdc.errors.ExportCheckFailed: export check failed: 1 duplicate key(s), e.g. ['PK1']
>>> evaluate(["5", "0", None, "0", "0"])
{'row_count': 5}
"""

from __future__ import annotations

from typing import Any

from snapcdc.errors import ExportCheckFailed, ResultFormatError
from snapcdc.queries import CHECK_COLUMNS
from snapcdc.resultcsv import read_all


def evaluate(row: list[str | None]) -> dict[str, int]:
    """Raise ExportCheckFailed naming every problem found; else return the row count."""
    if len(row) != len(CHECK_COLUMNS):
        raise ResultFormatError(f"check result has {len(row)} columns, expected {CHECK_COLUMNS}")
    values = dict(zip(CHECK_COLUMNS, row, strict=True))
    counts = {
        name: _count(values[name], name) for name in CHECK_COLUMNS if name != "duplicate_sample"
    }
    problems = []
    if counts["duplicate_keys"]:
        sample = values["duplicate_sample"]
        problems.append(
            f"{counts['duplicate_keys']} duplicate key(s)" + (f", e.g. {sample}" if sample else "")
        )
    if counts["empty_keys"]:
        problems.append(f"{counts['empty_keys']} row(s) with an empty key")
    if counts["ragged_rows"]:
        problems.append(f"{counts['ragged_rows']} row(s) with a wrong number of fields")
    if problems:
        raise ExportCheckFailed("export check failed: " + "; ".join(problems))
    return {"row_count": counts["row_count"]}


def _count(value: str | None, name: str) -> int:
    try:
        return int(value or 0)
    except ValueError:
        raise ResultFormatError(f"check result {name} is not a number: {value!r}") from None


def evaluate_result(s3: Any, output_location: str) -> dict[str, int]:
    """Read the check's (one-row) result file and judge it."""
    records = read_all(s3, output_location)
    if len(records) != 2:
        raise ResultFormatError(
            f"check result {output_location} has {len(records) - 1} rows, expected 1"
        )
    header = [(h or "").lower() for h in records[0]]
    if header != list(CHECK_COLUMNS):
        raise ResultFormatError(f"check result columns {header}, expected {list(CHECK_COLUMNS)}")
    return evaluate(records[1])
