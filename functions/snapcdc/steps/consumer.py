"""Applying ops to the target table, idempotently, and reading a table back.

One target item per row (``snapcdc.model.target_items``, where its shape is described).

Every write is conditional on the row's stored version not being newer: an op never makes a
row older than the newest version applied to it, so replays and late retries are harmless. A
DELETE writes a tombstone (``deleted: true``) instead of removing the item, so a replayed older
INSERT cannot bring the row back. A refused (stale) op is skipped, not an error.

An op that names its upload (``source`` and ``sequencer``) writes it as ``applied_by``, and at
the same version is refused when the row was written by that same upload: a redelivered op
(Kinesis delivers at least once, Lambda retries and bisects batches, ``snapcdc redrive``) is
stale the second time, so an upload's ``applied`` counter counts each of its ops at most once,
while a re-upload of the same version (another sequencer) overwrites what the first left.
"""

from __future__ import annotations

import base64
import json
import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from snapcdc.aws.aggregation import deaggregate
from snapcdc.aws.clients import client
from snapcdc.aws.registry import count_applied, upload_sk
from snapcdc.model.attribute_values import from_item, to_item, to_value
from snapcdc.model.errors import OpError
from snapcdc.model.op_records import OPS

# the item builders, re-exported: callers and tests know them as the consumer's
from snapcdc.model.target_items import row_key as row_key
from snapcdc.model.target_items import target_item, upload_of
from snapcdc.model.target_items import target_pk as target_pk

logger = logging.getLogger(__name__)


def validate_op(op: Any) -> dict[str, Any]:
    """Raise OpError unless ``op`` is a snapcdc op record (see ``snapcdc.steps.publish``)."""
    if not isinstance(op, dict):
        raise OpError(f"op record must be a JSON object, got {type(op).__name__}")
    for name in ("op", "table_id", "version"):
        if not isinstance(op.get(name), str) or not op[name]:
            raise OpError(f"op record without {name}: {str(op)[:200]}")
    if op["op"] not in OPS:
        raise OpError(f"unknown op {op['op']!r} (expected one of {OPS})")
    if not isinstance(op.get("key"), dict) or not op["key"]:
        raise OpError(f"op record without key values: {str(op)[:200]}")
    if not isinstance(op.get("row"), dict):
        raise OpError(f"op record without row values: {str(op)[:200]}")
    return op


def decode_record(record: dict[str, Any]) -> list[Any] | Exception:
    """The ops a Kinesis event record carries (many in an aggregated record, one in a plain
    record), or the exception decoding it raised (a poison record, reported as that record's
    failure: Lambda retries and bisects per Kinesis record, whatever it holds). The consumer
    and ``snapcdc redrive`` share it.

    >>> decode_record({"kinesis": {"data": "eyJvcCI6ICJJTlNFUlQifQ=="}})
    [{'op': 'INSERT'}]
    >>> type(decode_record({"kinesis": {"data": "not base64!"}})).__name__
    'Error'
    """
    try:
        data = base64.b64decode(record["kinesis"]["data"], validate=True)
        users = deaggregate(data)
        if users is None:
            return [json.loads(data)]
        return [json.loads(user) for _, user in users]
    except Exception as exc:
        return exc


def apply_records(
    table_name: str, records: dict[str, dict[str, Any]], workers: int
) -> tuple[dict[str, Any], dict[str, Any], dict[str, list[str] | BaseException]]:
    """Apply the ops of many Kinesis event records at once (``{record id: event record}``).

    Returns ``(ops, outcomes, per_record)``: the decoded ops by op id (``<record id>:<n>``, n the
    op's place in its record, as the KCL's subsequence number), each op's outcome
    (``apply_concurrently``), and for each record its ops' outcomes, or the first exception
    among them (the record failed: redelivered whole, its applied ops are then stale).
    """
    ops: dict[str, Any] = {}
    per_record: dict[str, list[str] | BaseException] = {}
    members: dict[str, list[str]] = {}
    for ident, record in records.items():
        decoded = decode_record(record)
        if isinstance(decoded, Exception):
            per_record[ident] = decoded
            continue
        members[ident] = [f"{ident}:{n}" for n in range(len(decoded))]
        ops.update(zip(members[ident], decoded, strict=True))
    outcomes = apply_concurrently(table_name, ops, workers)
    for ident, op_ids in members.items():
        results = [outcomes[o] for o in op_ids]
        failed = next((r for r in results if isinstance(r, BaseException)), None)
        per_record[ident] = failed if failed is not None else results
    return ops, outcomes, {ident: per_record[ident] for ident in records}


def apply_op(table_name: str, op: dict[str, Any]) -> str:
    """Apply one op; returns ``applied`` or ``stale`` (a newer version is already there)."""
    op = validate_op(op)
    item = target_item(op)
    values = {":v": to_value(op["version"])}
    # An item without a version was written behind the pipeline's back (no op writes one
    # without): any op overwrites it, so neither a version nor a repair is stuck behind it.
    condition = "attribute_not_exists(pk) OR attribute_not_exists(version) OR version <= :v"
    if "applied_by" in item:
        # Rows written before applied_by existed have none: attribute_not_exists keeps them
        # overwritable at the same version without relying on how <> treats a missing attribute
        # (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.OperatorsAndFunctions.html).
        condition = (
            "attribute_not_exists(pk) OR attribute_not_exists(version) OR version < :v OR "
            "(version = :v AND "
            "(attribute_not_exists(applied_by) OR applied_by <> :by))"
        )
        values[":by"] = to_value(item["applied_by"])
    try:
        client("dynamodb").put_item(
            TableName=table_name,
            Item=to_item(item),
            ConditionExpression=condition,
            ExpressionAttributeValues=values,
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return "stale"
        raise
    return "applied"


def apply_concurrently(
    table_name: str, ops: dict[str, Any], workers: int
) -> dict[str, str | BaseException]:
    """Apply many ops at once: ``{id: op}`` -> ``{id: "applied" | "stale" | the exception}``.

    Order does not matter: the version condition makes the outcome the same in any order (two
    ops on one row in a batch end with the newer one), so the writes, which spend their time
    waiting on DynamoDB, can overlap.
    """

    def apply_one(op: Any) -> str | BaseException:
        try:
            return apply_op(table_name, op)
        except Exception as exc:  # reported per record by the caller
            return exc

    if workers <= 1 or len(ops) <= 1:
        return {ident: apply_one(op) for ident, op in ops.items()}
    with ThreadPoolExecutor(max_workers=min(workers, len(ops))) as pool:
        return dict(zip(ops, pool.map(apply_one, ops.values()), strict=True))


def count_outcomes(
    ops: dict[str, Any], outcomes: dict[str, Any], registry_table: str
) -> dict[tuple[str, str], tuple[int, int]]:
    """ADD each upload's applied and stale ops among ``outcomes`` to its registry record;
    return ``{(table_id, sk): (applied, stale)}``.

    A counter that cannot be written is logged, not raised: the ops are in the target, and
    failing the batch would only redeliver them (counted stale) and leave ``applied`` short
    just the same; the upload then shows as not fully applied.
    """
    counts: Counter = Counter()
    for ident, op in ops.items():
        outcome = outcomes.get(ident)
        if outcome in ("applied", "stale") and isinstance(op, dict) and upload_of(op):
            counts[(op["table_id"], upload_sk(op["source"], op["sequencer"]), outcome)] += 1
    totals = {
        (t, sk): (counts[(t, sk, "applied")], counts[(t, sk, "stale")])
        for t, sk in sorted({(t, sk) for t, sk, _ in counts})
    }
    for (table_id, sk), (applied, stale) in totals.items():
        try:
            count_applied(table_id, sk, applied, stale, table_name=registry_table)
        except Exception:
            logger.exception("could not count %s applied / %s stale ops on %s", applied, stale, sk)
    return totals


def read_items(table_name: str, table_id: str) -> list[dict[str, Any]]:
    """Every item of one table, tombstones included (a filtered Scan: fine for inspection)."""
    paginator = client("dynamodb").get_paginator("scan")
    items = []
    for page in paginator.paginate(
        TableName=table_name,
        FilterExpression="table_id = :t",
        ExpressionAttributeValues={":t": {"S": table_id}},
        ConsistentRead=True,
    ):
        items.extend(from_item(item) for item in page["Items"])
    return sorted(items, key=lambda item: item["row_key"])


def read_rows(table_name: str, table_id: str) -> list[dict[str, Any]]:
    """The table's current rows (column -> value), tombstones excluded, ordered by key.

    >>> # read_rows("target", "tenant/test_table") -> [{"PK": "PK1", "COL_1": ...}, ...]
    """
    return [item["row"] for item in read_items(table_name, table_id) if not item["deleted"]]
