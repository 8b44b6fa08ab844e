"""Repair: write exactly the rows a verify found drifted, through the consumer's own writes.

Each row of the verify's comparison result (``snapcdc.steps.drift``) becomes one op of the
table's last applied version, applied with ``snapcdc.steps.consumer.apply_op``: ``missing`` an
INSERT and ``different`` an UPDATE of the export's row, ``extra`` a DELETE (a tombstone). The
ops name the repair as their upload (``source`` ``repair``, ``sequencer`` the verify's run
id), so the consumer's condition lets them overwrite what the same version left, and refuses
them (``stale``) where a newer version has written the row: a version applied after the verify
always wins, whether its ops land before or after the repair's. A target row whose key is not
one of the table's (a composite key that is not the JSON array the consumer writes) cannot be
named by an op: it is ``skipped`` and counted.

The result is read from a byte cursor (``snapcdc.aws.result_files.iter_records``), a batch of
ops at a time, until the invocation's time runs short; the state machine calls again with the
returned cursor until ``done``. The counts are ADDed to the table's verify record as
``repair.{applied, stale, skipped, failed}``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from snapcdc.aws.clients import client
from snapcdc.aws.result_files import iter_records
from snapcdc.model.contract import TableSchema
from snapcdc.model.names import parse_table_id
from snapcdc.model.settings import Settings
from snapcdc.steps.consumer import apply_concurrently
from snapcdc.steps.drift import Drift, parse_drift

REPAIR_SOURCE = "repair"
BATCH = 500
RESERVE_MILLIS = 30_000
OPS = {"missing": "INSERT", "different": "UPDATE", "extra": "DELETE"}


def repair_op(
    drift: Drift, key: list[str] | tuple[str, ...], table_id: str, version: str, run_id: str
) -> dict[str, Any] | None:
    """The op that mends one drifted key (None: its key cannot be written as an op); ``key``
    names the table's key columns.

    >>> from snapcdc.steps.drift import Drift
    >>> op = repair_op(Drift("extra", "9", ["9"]), ["id"], "acme/items", "V2", "0a1b")
    >>> (op["op"], op["key"], op["version"], op["source"], op["sequencer"])
    ('DELETE', {'id': '9'}, 'V2', 'repair', '0a1b')
    """
    if drift.key_values is None:
        return None
    tenant, table = parse_table_id(table_id)
    return {
        "op": OPS[drift.kind],
        "tenant": tenant,
        "table": table,
        "table_id": table_id,
        "version": version,
        "key": dict(zip(key, drift.key_values, strict=True)),
        "row": drift.row if drift.row is not None else {},
        "source": REPAIR_SOURCE,
        "sequencer": run_id,
    }


def repair_page(
    result_uri: str,
    schema: TableSchema,
    table_id: str,
    version: str,
    run_id: str,
    cursor: int,
    settings: Settings,
    remaining_millis: Callable[[], int],
) -> dict[str, Any]:
    """Apply the repair ops from byte ``cursor`` on; ``{cursor, done, applied, stale,
    skipped, failed}`` (the counts of this page)."""
    s3 = client("s3")
    counts: Counter = Counter()
    ops: dict[str, dict[str, Any]] = {}
    position = cursor

    def flush() -> None:
        outcomes = apply_concurrently(settings.target_table, ops, settings.consumer_workers)
        for outcome in outcomes.values():
            counts["failed" if isinstance(outcome, BaseException) else outcome] += 1
        ops.clear()

    for fields, end in iter_records(s3, result_uri, cursor):
        if position == 0:  # the header row
            position = end
            continue
        drift = parse_drift(fields, schema)
        op = repair_op(drift, schema.key, table_id, version, run_id)
        if op is None:
            counts["skipped"] += 1
        else:
            ops[str(end)] = op
        position = end
        if len(ops) >= BATCH:
            flush()
            if remaining_millis() < RESERVE_MILLIS:
                return {"cursor": position, "done": False, **_counts(counts)}
    if ops:
        flush()
    return {"cursor": position, "done": True, **_counts(counts)}


def _counts(counts: Counter) -> dict[str, int]:
    return {name: int(counts[name]) for name in ("applied", "stale", "skipped", "failed")}


def add_counts(table_id: str, sk: str, page: dict[str, int], *, table_name: str) -> None:
    """ADD a page's counts to the verify record's ``repair`` map."""
    names = ("applied", "stale", "skipped", "failed")
    client("dynamodb").update_item(
        TableName=table_name,
        Key={"table_id": {"S": table_id}, "sk": {"S": sk}},
        UpdateExpression="SET #r = if_not_exists(#r, :zero)",
        ExpressionAttributeNames={"#r": "repair"},
        ExpressionAttributeValues={
            ":zero": {"M": {name: {"N": "0"} for name in names}},
        },
    )
    client("dynamodb").update_item(
        TableName=table_name,
        Key={"table_id": {"S": table_id}, "sk": {"S": sk}},
        UpdateExpression="ADD " + ", ".join(f"#r.#{n} :{n}" for n in names),
        ExpressionAttributeNames={"#r": "repair", **{f"#{n}": n for n in names}},
        ExpressionAttributeValues={f":{n}": {"N": str(int(page.get(n, 0)))} for n in names},
    )
