"""The op record: one changed row as the publisher sends it to Kinesis and the consumer reads it.

Op format (JSON, one per row)::

    {"op": "UPDATE", "tenant": "tenant", "table": "test_table", "table_id": "tenant/test_table",
     "version": "20201230_V0002", "key": {"PK": "PK2"}, "row": {"PK": "PK2", "COL_1": "...", ...},
     "source": "tenant/test_table/20201230_V0002/export2.csv.gz", "sequencer": "0062E99A88DC407460"}

``row`` holds every column of the new version by its original name (Athena lowercases the
result header, so names come from the schema, by position); NULL is ``null``. A DELETE carries
the old row's values. An op's partition key: ``tenant/table|rowkey`` (a SHA-256 when longer
than 256). Built here, below the publisher that sends it (``snapcdc.steps.publish``) and the size
limits that measure it (``snapcdc.model.limits``), so both use the same builder.

>>> partition_key("tenant/t", "PK1")
'tenant/t|PK1'
>>> len(partition_key("tenant/t", "x" * 300))
64
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from snapcdc.model.aggregated_sizes import single_record_bytes
from snapcdc.model.contract import TableSchema
from snapcdc.model.errors import PublishFailed, ResultFormatError
from snapcdc.model.limits import KINESIS_RECORD_BYTES
from snapcdc.model.state import Upload
from snapcdc.model.target_items import row_key

# The ops a delta yields, in the order counts are given (the first column of an ops result).
OPS = ("INSERT", "UPDATE", "DELETE")
MAX_RECORD_BYTES = KINESIS_RECORD_BYTES  # data + partition key
MAX_PARTITION_KEY = 256


def partition_key(table_id: str, key: str) -> str:
    text = f"{table_id}|{key}"
    if len(text) <= MAX_PARTITION_KEY:
        return text
    return hashlib.sha256(text.encode()).hexdigest()


def make_entry(
    fields: list[str | None], schema: TableSchema, upload: Upload
) -> tuple[dict[str, Any], str]:
    """The user record (``Data``, ``PartitionKey``) of one result row, and its op. Raises
    PublishFailed when the op cannot fit a Kinesis record even alone."""
    if len(fields) != len(schema.columns) + 1:
        raise ResultFormatError(
            f"ops row has {len(fields)} fields, expected op + {len(schema.columns)} columns"
        )
    op = fields[0]
    if op not in OPS:
        raise ResultFormatError(f"unknown op {op!r} in the ops result")
    row = dict(zip(schema.columns, fields[1:], strict=True))
    key_values = [row[k] for k in schema.key]
    record = {
        "op": op,
        "tenant": upload.tenant,
        "table": upload.table,
        "table_id": upload.table_id,
        "version": upload.version,
        "key": {k: row[k] for k in schema.key},
        "row": row,
        "source": upload.key,
    }
    if upload.sequencer:
        # with source, names the upload's registry record (the consumer counts there) and
        # tells a redelivered op from a re-upload of the same version
        record["sequencer"] = upload.sequencer
    data = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()
    entry = {"Data": data, "PartitionKey": partition_key(upload.table_id, row_key(key_values))}
    size = record_size(entry)
    if size > MAX_RECORD_BYTES:
        raise PublishFailed(
            f"the {op} of key {key_values} is {size} bytes, above Kinesis' 1 MiB record limit"
        )
    return entry, op


def record_size(entry: dict[str, Any]) -> int:
    """The size of the Kinesis record that carries this user record alone (the largest share
    of a record one op needs: the bound the export check computes for every row)."""
    return single_record_bytes(len(entry["Data"]), len(entry["PartitionKey"].encode()))
