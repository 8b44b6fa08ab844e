"""The export check's AWS size bounds on the embedded engine, against the real builders.

For every row the check's bound must be at least the size of the DynamoDB item the consumer
writes (``applying.target_item``, counted as DynamoDB counts it) and of the Kinesis record the
publisher sends carrying the row's op alone (``steps.publish.record_size``), given the longest
tenant, table, version and key the contract allows; and a row over a limit fails the version,
naming its key.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from snapcdc.aws.dynamo import to_item
from snapcdc.model import limits
from snapcdc.model.contract import TableConfig, TableSchema
from snapcdc.model.errors import ExportCheckFailed, PublishFailed
from snapcdc.model.state import Upload
from snapcdc.sql import queries
from snapcdc.steps.check import evaluate
from snapcdc.steps.consumer import row_key, target_item, target_pk
from snapcdc.steps.publish import make_entry, record_size
from snapcdc_local.engine.engine import AthenaEngine, mapping_resolver

COLUMNS = ("id", "name", "note")
WORST_TABLE_ID = "t" * limits.LONGEST_TABLE_ID
WORST_VERSION = "v" * limits.LONGEST_VERSION
WORST_UPLOAD = {
    "tenant": "t" * limits.LONGEST_NAME,
    "table": "t" * limits.LONGEST_NAME,
    "table_id": WORST_TABLE_ID,
    "version": WORST_VERSION,
    "key": "k" * limits.LONGEST_SOURCE_KEY,
    "sequencer": "s" * limits.LONGEST_SEQUENCER,
}


def check(tmp_path: Path, rows: list[list[str]], key: tuple[str, ...] = ("id",)) -> dict:
    """The check_export row of an export holding ``rows`` (``;``-separated, no header)."""
    text = io.StringIO()
    csv.writer(text, delimiter=";", lineterminator="\n").writerows(rows)
    path = tmp_path / "export.csv"
    path.write_text(text.getvalue(), encoding="utf-8")
    engine = AthenaEngine(mapping_resolver({"s3://bucket/t/v1/": [path]}))
    config = TableConfig(columns=COLUMNS, key=key, delimiter=";", header=False)
    schema = config.resolve(None)
    engine.execute(queries.create_database("d"))
    engine.execute(queries.create_export_table("d", "t", COLUMNS, "s3://bucket/t/v1/", config))
    result = engine.execute(queries.check_export("d", "t", schema))
    return dict(zip(result.columns, result.rows[0], strict=True))


def actual_sizes(row: list[str], key: tuple[str, ...]) -> tuple[int, int, int]:
    """(item, record, partition key) bytes as AWS counts them, for the worst-case names."""
    schema = TableSchema(COLUMNS, key)
    values = dict(zip(COLUMNS, row, strict=True))
    op = {
        "op": "UPDATE",
        "table_id": WORST_TABLE_ID,
        "version": WORST_VERSION,
        "key": {k: values[k] for k in key},
        "row": values,
        "source": WORST_UPLOAD["key"],
        "sequencer": WORST_UPLOAD["sequencer"],
    }
    try:
        entry, _ = make_entry(["UPDATE", *row], schema, Upload.from_dict(WORST_UPLOAD))
        record = record_size(entry)
    except PublishFailed as refused:  # the publisher's own size check, naming the size
        record = int(re.search(r" is (\d+) bytes", str(refused)).group(1))
    pk = target_pk(WORST_TABLE_ID, row_key([values[k] for k in key]))
    return limits.item_size(to_item(target_item(op))), record, len(pk.encode())


ROWS = [
    ["1", "plain", ""],
    ["2", "naïve café ☕ 𝄞", "x"],
    ["3", 'quote " and backslash \\', "tab\there"],
    ["4", "a" * 3000, "b"],
]


@pytest.mark.parametrize("key", [("id",), ("id", "name")])
def test_every_row_is_bounded_by_its_real_item_record_and_key_size(tmp_path, key):
    for row in ROWS:
        result = check(tmp_path, [row], key)
        item, record, pk = actual_sizes(row, key)
        assert int(result["largest_item_bytes"]) >= item, row
        assert int(result["largest_record_bytes"]) >= record, row
        assert int(result["largest_pk_bytes"]) >= pk, row
        if len(key) == 1:  # nothing JSON-escaped in the item: exact but for NULLs
            assert int(result["largest_item_bytes"]) == item + len(COLUMNS), row
            assert int(result["largest_pk_bytes"]) == pk, row
        assert result["largest_item_key"] == "|".join(row[COLUMNS.index(k)] for k in key)


def test_json_escapes_are_counted_exactly_when_the_loose_bound_would_fail(tmp_path):
    """300,000 quotes: 600,000 bytes once JSON-escaped, under Kinesis' 1 MiB; counting every
    byte as a possible 6-byte escape would have refused it."""
    row = ["9", '"' * 300_000, "x"]
    result = check(tmp_path, [row])
    _, record, _ = actual_sizes(row, ("id",))
    # the partition key (in the key table and as the record's), NULLs, the length varints
    slack = 2 * limits.LONGEST_PARTITION_KEY_BYTES + 2 * len(COLUMNS) + 4
    assert record < int(result["largest_record_bytes"]) <= record + slack
    assert int(result["largest_record_bytes"]) < limits.KINESIS_RECORD_BYTES
    evaluate([result[c] for c in queries.CHECK_COLUMNS])  # passes


def test_a_500_kb_field_fails_the_check_as_a_target_item(tmp_path):
    rows = [["1", "small", ""], ["17", "x" * 500_000, ""], ["18", "y" * 100, ""]]
    result = check(tmp_path, rows)
    assert result["largest_item_key"] == "17"
    with pytest.raises(ExportCheckFailed) as failed:
        evaluate([result[c] for c in queries.CHECK_COLUMNS])
    message = str(failed.value)
    item, _, _ = actual_sizes(rows[1], ("id",))
    assert f"row with key 17 is up to {item + len(COLUMNS):,} bytes as a target item" in message
    assert "DynamoDB items are limited to 400 KB" in message
    assert limits.DYNAMODB_LIMITS_URL in message


def test_a_2100_character_key_fails_the_check_as_a_partition_key(tmp_path):
    long_key = "k" * 2100
    result = check(tmp_path, [["1", "a", ""], [long_key, "b", ""]])
    with pytest.raises(ExportCheckFailed) as failed:
        evaluate([result[c] for c in queries.CHECK_COLUMNS])
    message = str(failed.value)
    assert f"row with key {'k' * 60}… (2,100 characters) is up to " in message
    assert "DynamoDB partition keys are limited to 2,048 bytes" in message


def test_a_record_over_1_mib_fails_the_check(tmp_path):
    """Under DynamoDB's 400 KB as an item, over 1 MiB as JSON: every character escaped."""
    row = ["5", "\x01" * 200_000, ""]
    result = check(tmp_path, [row])
    _, record, _ = actual_sizes(row, ("id",))
    assert record > limits.KINESIS_RECORD_BYTES
    with pytest.raises(ExportCheckFailed, match="row with key 5 is up to .* as a Kinesis record"):
        evaluate([result[c] for c in queries.CHECK_COLUMNS])


def test_an_empty_export_has_no_largest_row(tmp_path):
    path = tmp_path / "empty"
    path.mkdir()
    result = check(path, [])
    assert result["largest_item_bytes"] is None and result["largest_item_key"] is None
    assert evaluate([result[c] for c in queries.CHECK_COLUMNS]) == {"row_count": 0}


def test_the_engine_counts_utf8_bytes_as_trino_does(tmp_path):
    """Trino's ``length(to_utf8(x))`` is the UTF-8 byte count
    (https://trino.io/docs/current/functions/binary.html); DuckDB has no ``length`` of a BLOB."""
    engine = AthenaEngine(mapping_resolver({}))
    engine.execute("CREATE DATABASE d")
    result = engine.execute("SELECT length(to_utf8('é☕𝄞')) AS n, length('é☕𝄞') AS c", "d")
    assert result.rows == [(9, 3)]
