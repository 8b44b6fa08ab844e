"""The target item an op writes: one DynamoDB item per row of a table.

Partition key ``pk`` = ``tenant/table#rowkey``, so a table's rows spread over many partitions::

    {"pk": "tenant/test_table#PK1", "table_id": "tenant/test_table", "row_key": "PK1",
     "version": "20201230_V0002", "op": "UPDATE", "deleted": false,
     "row": {"PK": "PK1", "COL_1": "...", "COL_2": null}, "applied_at": "...",
     "applied_by": "tenant/test_table/20201230_V0002/export2.csv.gz#0062E99A88DC407460"}

A DELETE writes a tombstone (``deleted: true``, no ``row``). Built here, below the consumer that
writes it (``snapcdc.steps.consumer``) and the size limits that measure it
(``snapcdc.model.limits``), so both use the same builder.

>>> row_key(["PK1"])
'PK1'
>>> row_key(["a", "b|c"])
'["a","b|c"]'
"""

from __future__ import annotations

import json
from typing import Any

from snapcdc.model.times import iso, utc_now


def row_key(values: list[str | None]) -> str:
    """A row's key as text: the value itself for one key column, a JSON array for several."""
    if len(values) == 1:
        return "" if values[0] is None else values[0]
    return json.dumps(values, separators=(",", ":"), ensure_ascii=False)


def target_pk(table_id: str, key: str) -> str:
    return f"{table_id}#{key}"


def target_item(op: dict[str, Any]) -> dict[str, Any]:
    """The target item an op writes (a DELETE writes a tombstone without ``row``)."""
    key = row_key(list(op["key"].values()))
    deleted = op["op"] == "DELETE"
    item = {
        "pk": target_pk(op["table_id"], key),
        "table_id": op["table_id"],
        "row_key": key,
        "version": op["version"],
        "op": op["op"],
        "deleted": deleted,
        "applied_at": iso(utc_now()),
    }
    if not deleted:
        item["row"] = op["row"]
    if upload_of(op):
        item["applied_by"] = upload_of(op)
    return item


def upload_of(op: dict[str, Any]) -> str | None:
    """``{source}#{sequencer}``: the upload an op comes from, if it says (older ops do not).

    >>> upload_of({"source": "t/x/V1/a.csv.gz", "sequencer": "0A"})
    't/x/V1/a.csv.gz#0A'
    """
    source, sequencer = op.get("source"), op.get("sequencer")
    if isinstance(source, str) and isinstance(sequencer, str) and source and sequencer:
        return f"{source}#{sequencer}"
    return None
