"""Judging the export check (``queries.check_export``): the version fails before any delta runs.

Besides bad rows (duplicate or empty keys, a wrong number of fields), a row too large for AWS
fails the version here, before anything is published: the check reports, for each size limit in
``snapcdc.model.limits``, an upper bound of the largest row's size and that row's key.

>>> passing = ["5", "0", None, "0", "0", "420", "PK1", "1950", "PK1", "131", "PK1"]
>>> evaluate(passing)
{'row_count': 5}
>>> evaluate(["5", "1", "PK1", *passing[3:]])
Traceback (most recent call last):
...
snapcdc.model.errors.ExportCheckFailed: export check failed: 1 duplicate key(s), e.g. PK1
>>> try:
...     evaluate([*passing[:5], "512034", "17", *passing[7:]])
... except ExportCheckFailed as exc:
...     print(*str(exc).split("; "), sep="\\n")  # doctest: +ELLIPSIS
export check failed: row with key 17 is up to 512,034 bytes as a target item
DynamoDB items are limited to 400 KB (409,600 bytes) (https://docs.aws.amazon.com/...)
"""

from __future__ import annotations

from typing import Any

from snapcdc.aws.result_files import read_all
from snapcdc.model import limits
from snapcdc.model.errors import ExportCheckFailed, ResultFormatError
from snapcdc.sql.queries import CHECK_COLUMNS

# (size column, key column, limit in bytes, what the size is of, what AWS allows, where it says so)
SIZE_LIMITS = (
    (
        "largest_item_bytes",
        "largest_item_key",
        limits.DYNAMODB_ITEM_BYTES,
        "as a target item",
        "DynamoDB items are limited to 400 KB (409,600 bytes)",
        limits.DYNAMODB_LIMITS_URL,
    ),
    (
        "largest_record_bytes",
        "largest_record_key",
        limits.KINESIS_RECORD_BYTES,
        "as a Kinesis record (data + partition key)",
        "Kinesis records are limited to 1 MiB (1,048,576 bytes)",
        limits.KINESIS_LIMITS_URL,
    ),
    (
        "largest_pk_bytes",
        "largest_pk_key",
        limits.DYNAMODB_PARTITION_KEY_BYTES,
        "as the target item's partition key (tenant/table#key)",
        "DynamoDB partition keys are limited to 2,048 bytes",
        limits.DYNAMODB_LIMITS_URL,
    ),
)
TEXT_COLUMNS = frozenset({"duplicate_sample", *(limit[1] for limit in SIZE_LIMITS)})
SHOWN_KEY_CHARS = 60


def evaluate(row: list[str | None], expected_rows: int | None = None) -> dict[str, int]:
    """Raise ExportCheckFailed naming every problem found; else return the row count.

    ``expected_rows``: the ``rows`` of a multi-part version's manifest (``snapcdc.model.manifest``).
    """
    if len(row) != len(CHECK_COLUMNS):
        raise ResultFormatError(f"check result has {len(row)} columns, expected {CHECK_COLUMNS}")
    values = dict(zip(CHECK_COLUMNS, row, strict=True))
    counts = {
        name: _count(values[name], name) for name in CHECK_COLUMNS if name not in TEXT_COLUMNS
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
    for size_column, key_column, limit, what, allowed, url in SIZE_LIMITS:
        if counts[size_column] > limit:
            key = shown_key(values[key_column] or "")
            problems.append(
                f"row with key {key} is up to {counts[size_column]:,} bytes {what}; "
                f"{allowed} ({url})"
            )
    if expected_rows is not None and counts["row_count"] != expected_rows:
        problems.append(
            f"the export has {counts['row_count']:,} row(s), its manifest says {expected_rows:,}"
        )
    if problems:
        raise ExportCheckFailed("export check failed: " + "; ".join(problems))
    return {"row_count": counts["row_count"]}


def shown_key(key: str) -> str:
    """A key as an error message shows it: whole when short, else its start and its length.

    >>> shown_key("x" * 2100)  # doctest: +ELLIPSIS
    'xxx...xxx… (2,100 characters)'
    """
    if len(key) <= SHOWN_KEY_CHARS:
        return key
    return f"{key[:SHOWN_KEY_CHARS]}… ({len(key):,} characters)"


def _count(value: str | None, name: str) -> int:
    try:
        return int(value or 0)
    except ValueError:
        raise ResultFormatError(f"check result {name} is not a number: {value!r}") from None


def evaluate_result(
    s3: Any, output_location: str, expected_rows: int | None = None
) -> dict[str, int]:
    """Read the check's (one-row) result file and judge it."""
    return evaluate_records(read_all(s3, output_location), output_location, expected_rows)


def evaluate_records(
    records: list[list[str | None]], source: str, expected_rows: int | None = None
) -> dict[str, int]:
    """Judge a check result given as its records, header first (``source`` names it in errors).
    ``snapcdc diff`` judges its checks here too, so it reports what the pipeline reports."""
    if len(records) != 2:
        raise ResultFormatError(f"check result {source} has {len(records) - 1} rows, expected 1")
    header = [(h or "").lower() for h in records[0]]
    if header != list(CHECK_COLUMNS):
        raise ResultFormatError(f"check result columns {header}, expected {list(CHECK_COLUMNS)}")
    return evaluate(records[1], expected_rows)
