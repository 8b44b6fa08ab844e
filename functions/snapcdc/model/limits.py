"""The AWS size limits every row must fit, so that a version failing them fails at its check.

A row becomes a DynamoDB item (``snapcdc.model.target_items.target_item``) and an op in an
aggregated Kinesis record (``snapcdc.model.op_records.make_entry``); DynamoDB refuses an item over
400 KB or a partition key over 2,048 bytes, Kinesis a record over 1 MiB (data + partition key).
Many ops share a record, but an op is never split: the bound for the record is that of the record
carrying the row's op alone (``snapcdc.model.op_records.record_size``: the aggregation framing,
the op's JSON, its partition key twice, in the key table and as the record's). Discovering that
while publishing or applying would leave a half-applied version, so the export check
(``sql/check_export.sql``) computes an upper bound of each size for every row, in UTF-8 bytes, and
``snapcdc.steps.check`` fails the version naming the largest row.

A size is the part every row shares (the *overhead*: attribute names, column names, the JSON
skeleton, the longest tenant, table, version and key the contract allows) plus the row's own
part, which the SQL adds up from the values. The overheads here are measured by building the
real item and record of a row whose values are all empty, so they follow the builders.

>>> overheads(TableSchema(("PK", "COL_1"), ("PK",)))
Overheads(item=933, record=3092, partition_key=128)
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from snapcdc.model.contract import TableSchema

# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html
# ("maximum item size in DynamoDB is 400 KB", "1 KB = 1024 bytes"; partition key 2048 bytes)
DYNAMODB_LIMITS_URL = (
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html"
)
DYNAMODB_ITEM_BYTES = 400 * 1024
DYNAMODB_PARTITION_KEY_BYTES = 2048
# https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html
# ("Each record in the request can be as large as 1 MiB ... including partition keys")
KINESIS_LIMITS_URL = "https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html"
KINESIS_RECORD_BYTES = 1024 * 1024

# The longest names the contract accepts (snapcdc.model.names: NAME_RE, VERSION_RE, FILE_RE).
LONGEST_NAME = 63
LONGEST_TABLE_ID = LONGEST_NAME + 1 + LONGEST_NAME
LONGEST_VERSION = 64
LONGEST_SOURCE_KEY = LONGEST_TABLE_ID + 1 + LONGEST_VERSION + 1 + 255
# S3 event sequencers are hexadecimal strings of no documented length (18 in practice); the
# record and the target item carry one.
LONGEST_SEQUENCER = 64
# A partition key is at most 256 characters (a SHA-256 digest beyond): 4 UTF-8 bytes each.
LONGEST_PARTITION_KEY_BYTES = 4 * 256


@dataclass(frozen=True)
class Overheads:
    """Bytes every row of a table adds to each size, whatever its values."""

    item: int  # the target item of an INSERT/UPDATE with every value NULL
    record: int  # the Kinesis record carrying the op alone (data + partition key), values NULL
    partition_key: int  # the target item's ``pk`` with every key value ''


def overheads(schema: TableSchema) -> Overheads:
    # Imported here: the builders import this module's limits, and the attribute values boto3,
    # which snapcdc diff (no size limits, no overheads) never loads.
    from snapcdc.model.aggregated_sizes import single_record_bytes, varint_bytes
    from snapcdc.model.attribute_values import to_item
    from snapcdc.model.op_records import make_entry
    from snapcdc.model.state import Upload
    from snapcdc.model.target_items import row_key, target_item, target_pk

    table_id = "t" * LONGEST_TABLE_ID
    empty = dict.fromkeys(schema.columns, "")
    op = {
        "op": "UPDATE",
        "table_id": table_id,
        "version": "v" * LONGEST_VERSION,
        "key": {k: "" for k in schema.key},
        "row": empty,
        "source": "k" * LONGEST_SOURCE_KEY,
        "sequencer": "s" * LONGEST_SEQUENCER,
    }
    upload = Upload(
        tenant="t" * LONGEST_NAME,
        table="t" * LONGEST_NAME,
        table_id=table_id,
        version=op["version"],
        key=op["source"],
        sequencer=op["sequencer"],
    )
    entry, _ = make_entry(["UPDATE", *empty.values()], schema, upload)
    pk = target_pk(table_id, row_key(list(op["key"].values())))
    # A NULL instead of '' is 1 byte more in the item (a NULL attribute value is 1 byte) and 2 in
    # the record (``null`` instead of ``""``): counted for every column, so the SQL need not.
    columns = len(schema.columns)
    data = len(entry["Data"]) + 2 * columns
    # The op's two length varints (data, user record) grow with the values up to 3 bytes each.
    varints = 2 * (varint_bytes(KINESIS_RECORD_BYTES) - varint_bytes(data))
    return Overheads(
        item=item_size(to_item(target_item(op))) + columns,
        record=single_record_bytes(data, LONGEST_PARTITION_KEY_BYTES) + varints,
        partition_key=len(pk.encode()),
    )


def item_size(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB counts it (attribute names + values).

    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html

    >>> item_size({"pk": {"S": "é"}, "m": {"M": {"a": {"NULL": True}}}})
    11
    """
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def value_size(value: dict[str, Any]) -> int:
    """One attribute value's size: strings in UTF-8 bytes, null and booleans 1 byte, a number
    about 1 byte per two digits + 1 (counted as one per digit here: an upper bound), maps and lists
    3 bytes plus 1 byte per element plus the elements."""
    (kind, v), *_ = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        return len(v) + 1
    if kind in ("NULL", "BOOL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(e) + 1 for k, e in v.items())
    if kind == "L":
        return 3 + sum(value_size(e) + 1 for e in v)
    if kind == "B":  # raw bytes (base64 text on the wire)
        return len(v) if isinstance(v, bytes) else len(base64.b64decode(v))
    if kind == "SS":
        return sum(len(e.encode()) for e in v)
    if kind == "NS":
        return sum(len(e) + 1 for e in v)
    if kind == "BS":
        return sum(len(e) if isinstance(e, bytes) else len(base64.b64decode(e)) for e in v)
    raise ValueError(f"unknown DynamoDB attribute type {kind!r}")
