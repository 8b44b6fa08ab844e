"""Judging the export check (``queries.check_export``): the version fails before any delta runs.

Besides bad rows (duplicate or empty keys, a wrong number of fields), a row too large for AWS
fails the version here, before anything is published: the check reports, for each size limit in
``snapcdc.model.limits``, an upper bound of the largest row's size and that row's key.

>>> clean = ["0", None, None, None, "2", None, None, None]  # no blank lines, no bad rows
>>> passing = ["5", "0", None, "0", "0", "420", "PK1", "1950", "PK1", "131", "PK1", *clean]
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
from snapcdc.model.errors import ExportCheckFailed, ResultFormatError, Setting
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
TEXT_COLUMNS = frozenset(
    {
        "duplicate_sample",
        "blank_file",
        "ragged_sample",
        "ragged_file",
        "empty_key_sample",
        "empty_key_file",
        *(limit[1] for limit in SIZE_LIMITS),
    }
)
# Athena's OpenCSVSerDe "does not support embedded line breaks in CSV files"
CSV_SERDE_URL = "https://docs.aws.amazon.com/athena/latest/ug/csv-serde.html"
SHOWN_KEY_CHARS = 60


def evaluate(
    row: list[str | None],
    expected_rows: int | None = None,
    file_name: Any = None,
    key: list[str] | tuple[str, ...] | None = None,
) -> dict[str, int]:
    """Raise ExportCheckFailed naming every problem found; else return the row count.

    ``expected_rows``: the ``rows`` of a multi-part version's manifest (``snapcdc.model.manifest``);
    ``key``: the key column(s) the check used, named by a duplicate-key reason.
    """
    if len(row) != len(CHECK_COLUMNS):
        raise ResultFormatError(f"check result has {len(row)} columns, expected {CHECK_COLUMNS}")
    values = dict(zip(CHECK_COLUMNS, row, strict=True))
    found = problems(values, expected_rows, file_name, key)
    if found:
        parts: list[Any] = ["export check failed: "]
        for number, problem in enumerate(found):
            parts += (["; "] if number else []) + (
                [problem] if isinstance(problem, str) else list(problem)
            )
        raise ExportCheckFailed(*parts)
    return {"row_count": _count(values["row_count"], "row_count")}


def problems(
    values: dict[str, Any],
    expected_rows: int | None = None,
    file_name: Any = None,
    key: list[str] | tuple[str, ...] | None = None,
) -> list[Any]:
    """What is wrong with a version, one sentence per problem, from its check row by column name
    (a sentence that advises a setting is a tuple of its parts, see ``snapcdc.model.errors``).

    Athena gives no line numbers, so a bad row is shown by a sample: the fields Athena read from
    it and the object (``"$path"``) it is in; ``file_name`` maps that URI to what the reader
    knows the file as (default: the URI).

    >>> bad = {"row_count": 3, "ragged_rows": 1, "ragged_sample": '"1", "a", "x"',
    ...        "ragged_sample_fields": 3, "declared_fields": 2, "ragged_file": "s3://b/t/v/x.csv.gz"}
    >>> problems(bad, None, lambda uri: uri.rsplit("/", 1)[-1])  # doctest: +NORMALIZE_WHITESPACE
    ['1 row(s) with a wrong number of fields, e.g. "1", "a", "x" (more than 2 fields: an
      unquoted value holding the delimiter?) in x.csv.gz']
    """
    name = file_name or (lambda uri: uri)
    counts = {
        column: _count(values.get(column), column)
        for column in CHECK_COLUMNS
        if column not in TEXT_COLUMNS
    }
    found = []
    if counts["duplicate_keys"]:
        sample = values.get("duplicate_sample")
        duplicates = f"{counts['duplicate_keys']} duplicate key(s)"
        if key:
            duplicates += f" in key column(s) {', '.join(key)}"
        duplicates += f", e.g. {sample}" if sample else ""
        if key:  # the key may have been taken by default (the first column)
            duplicates += "; if other columns identify a row, "
        found.append((duplicates, Setting("key")) if key else duplicates)
    if counts["empty_keys"]:
        found.append(
            f"{counts['empty_keys']} row(s) with an empty key"
            + _sample(values.get("empty_key_sample"), values.get("empty_key_file"), name)
        )
    if counts["ragged_rows"]:
        fields, declared = counts["ragged_sample_fields"], counts["declared_fields"]
        too_few = 0 < fields <= declared
        detail = (
            f"{fields} of {declared} fields"
            if too_few
            else f"more than {declared} fields: an unquoted value holding the delimiter?"
        )
        found.append(
            f"{counts['ragged_rows']} row(s) with a wrong number of fields"
            + _sample(values.get("ragged_sample"), values.get("ragged_file"), name, detail)
            + (
                "; a value holding a line break splits its row: Athena ends a row at every "
                f"line break, even inside quotes ({CSV_SERDE_URL})"
                if too_few
                else ""
            )
        )
    if counts["blank_lines"]:
        where = values.get("blank_file")
        found.append(
            f"{counts['blank_lines']} line(s) with no fields (empty, whitespace only, or the "
            "rest of a value cut by a line break)" + (f", e.g. in {name(where)}" if where else "")
        )
    for size_column, key_column, limit, what, allowed, url in SIZE_LIMITS:
        if counts[size_column] > limit:
            key = shown_key(values.get(key_column) or "")
            found.append(
                f"row with key {key} is up to {counts[size_column]:,} bytes {what}; "
                f"{allowed} ({url})"
            )
    if expected_rows is not None and counts["row_count"] != expected_rows:
        found.append(
            f"the export has {counts['row_count']:,} row(s), its manifest says {expected_rows:,}"
        )
    return found


def _sample(text: Any, uri: Any, name: Any, detail: str = "") -> str:
    if not text:
        return ""
    where = f" in {name(uri)}" if uri else ""
    return f", e.g. {text}" + (f" ({detail})" if detail else "") + where


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
    s3: Any,
    output_location: str,
    expected_rows: int | None = None,
    key: list[str] | None = None,
) -> dict[str, int]:
    """Read the check's (one-row) result file and judge it."""
    return evaluate_records(read_all(s3, output_location), output_location, expected_rows, key=key)


def evaluate_records(
    records: list[list[str | None]],
    source: str,
    expected_rows: int | None = None,
    file_name: Any = None,
    key: list[str] | tuple[str, ...] | None = None,
) -> dict[str, int]:
    """Judge a check result given as its records, header first (``source`` names it in errors;
    ``file_name`` as in :func:`problems`). ``snapcdc diff`` judges its checks here too, so it
    reports what the pipeline reports."""
    if len(records) != 2:
        raise ResultFormatError(f"check result {source} has {len(records) - 1} rows, expected 1")
    header = [(h or "").lower() for h in records[0]]
    if header != list(CHECK_COLUMNS):
        raise ResultFormatError(f"check result columns {header}, expected {list(CHECK_COLUMNS)}")
    return evaluate(records[1], expected_rows, file_name, key)
