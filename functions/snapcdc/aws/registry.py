"""The registry table: one record per uploaded object, and one head record per table.

Key design (partition key ``table_id`` = ``tenant/table``, sort key ``sk``):

- ``upload#{key}#{sequencer}``: one upload (object event). ``status`` goes REGISTERED ->
  RUNNING -> SUCCEEDED / SKIPPED / FAILED, or RUNNING -> HELD (``snapcdc.steps.hold``) ->
  APPROVED -> RUNNING -> SUCCEEDED (or SKIPPED, FAILED), or HELD -> REJECTED; the record
  carries the key, sequencer, execution ARN, counts (inserts, updates, deletes, rows_read,
  bytes_scanned, query_ids), ``error``, and for a held version ``reason`` and ``held``; from
  Plan on, the version's ``files``, ``schema``, ``config`` and ``location``; ``published``
  (records Kinesis took, written by Publish from its first page on: publishing began) and the
  consumer's ``applied`` / ``stale`` counters.
  Records of one table sort by key, so by version.
- ``head``: the table's last applied version with its schema, table configuration, S3
  location, ``rows`` (its row count) and ``files``, the ``s3://`` objects it was applied from
  (the next delta reads the previous version from exactly these, never whatever else the
  prefix holds by then). It only moves forward. ``diverged``: versions that failed after
  publishing began, which the next applied version reconverges (``snapcdc.steps.plan``); Finish
  empties it.

>>> upload_sk("tenant/t/V1/x.csv.gz", "0A")
'upload#tenant/t/V1/x.csv.gz#0A'
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from snapcdc.aws.clients import client
from snapcdc.aws.dynamo import from_item, to_item, to_value, update_expression
from snapcdc.model.settings import Settings

HEAD_SK = "head"


def upload_sk(key: str, sequencer: str) -> str:
    return f"upload#{key}#{sequencer}"


def _table(table_name: str | None) -> str:
    return table_name or Settings.from_env().require("registry_table").registry_table


def put_upload(record: dict[str, Any], *, table_name: str | None = None) -> dict[str, Any] | None:
    """Write a new upload record; return None, or the existing record if this event is a duplicate.

    The write is conditional: it succeeds when the record does not exist yet or was written by
    the same execution (a retried Register), so a redelivered event cannot register twice.
    """
    try:
        client("dynamodb").put_item(
            TableName=_table(table_name),
            Item=to_item(record),
            ConditionExpression="attribute_not_exists(sk) OR execution_arn = :me",
            ExpressionAttributeValues={":me": to_value(record["execution_arn"])},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        return from_item(exc.response.get("Item") or {}) or {"sk": record["sk"]}
    return None


def update_upload(
    table_id: str, sk: str, values: dict[str, Any], *, table_name: str | None = None
) -> dict[str, Any]:
    """SET ``values`` on an upload record (creating it if it is missing); return the record."""
    response = client("dynamodb").update_item(
        TableName=_table(table_name),
        Key=to_item({"table_id": table_id, "sk": sk}),
        ReturnValues="ALL_NEW",
        **update_expression(values),
    )
    return from_item(response.get("Attributes") or {})


def count_applied(
    table_id: str, sk: str, applied: int, stale: int, *, table_name: str | None = None
) -> bool:
    """ADD the consumer's outcomes to an upload record's ``applied`` and ``stale`` counters;
    False (nothing written) when the record does not exist.

    ADD on a number is an atomic counter, so consumers of different shards may count at once
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/example_dynamodb_Scenario_AtomicCounterOperations_section.html,
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.UpdateExpressions.html).
    """
    try:
        client("dynamodb").update_item(
            TableName=_table(table_name),
            Key=to_item({"table_id": table_id, "sk": sk}),
            UpdateExpression="ADD #applied :applied, #stale :stale",
            ConditionExpression="attribute_exists(sk)",
            ExpressionAttributeNames={"#applied": "applied", "#stale": "stale"},
            ExpressionAttributeValues={":applied": to_value(applied), ":stale": to_value(stale)},
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def mark_diverged(table_id: str, entry: dict[str, Any], *, table_name: str | None = None) -> None:
    """Append ``entry`` (a version whose ops partly reached the target: version, files, schema,
    config, location) to the head's ``diverged`` list, creating the head if needed; the next
    applied version reconverges the table and clears the list (``snapcdc.steps.plan``)."""
    client("dynamodb").update_item(
        TableName=_table(table_name),
        Key=to_item({"table_id": table_id, "sk": HEAD_SK}),
        UpdateExpression="SET #diverged = list_append(if_not_exists(#diverged, :none), :entry)",
        ExpressionAttributeNames={"#diverged": "diverged"},
        ExpressionAttributeValues={":none": {"L": []}, ":entry": {"L": [to_value(entry)]}},
    )


def fail_unfinished_upload(
    table_id: str,
    sk: str,
    execution_arn: str,
    values: dict[str, Any],
    *,
    table_name: str | None = None,
) -> dict[str, Any] | None:
    """SET ``values`` (a FAILED status and its reason) on an upload record that this execution
    registered and nothing has finished yet, and return the record; None (nothing changed)
    otherwise.

    The condition keeps a late or repeated report from overwriting an outcome already recorded,
    or the record of another execution of the same object event.
    """
    args = update_expression(values)
    args["ExpressionAttributeNames"]["#execution_arn"] = "execution_arn"
    args["ExpressionAttributeNames"]["#status"] = "status"
    args["ExpressionAttributeValues"].update(
        {":me": to_value(execution_arn), ":registered": to_value("REGISTERED"),
         ":running": to_value("RUNNING"), ":approved": to_value("APPROVED")}
    )  # fmt: skip
    try:
        response = client("dynamodb").update_item(
            TableName=_table(table_name),
            Key=to_item({"table_id": table_id, "sk": sk}),
            # APPROVED: an approve execution (snapcdc.steps.hold) that ended before its head check
            ConditionExpression=(
                "#execution_arn = :me AND #status IN (:registered, :running, :approved)"
            ),
            ReturnValues="ALL_NEW",
            **args,
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return None
        raise
    return from_item(response.get("Attributes") or {})


def get_head(table_id: str, *, table_name: str | None = None) -> dict[str, Any] | None:
    """The table's head record (its last applied version), or None before the first."""
    return find_record(table_id, HEAD_SK, table_name=table_name)


def advance_head(
    table_id: str, version: str, values: dict[str, Any], *, table_name: str | None = None
) -> bool:
    """Make ``version`` the table's last applied version unless a later one already is.

    Returns False (and changes nothing) when the head is at ``version`` or beyond.
    """
    args = update_expression({"last_applied_version": version, **values})
    args["ExpressionAttributeValues"][":new_version"] = to_value(version)
    # placeholder #f0 is last_applied_version (first key above)
    condition = "attribute_not_exists(#f0) OR #f0 < :new_version"
    try:
        client("dynamodb").update_item(
            TableName=_table(table_name),
            Key=to_item({"table_id": table_id, "sk": HEAD_SK}),
            ConditionExpression=condition,
            **args,
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def find_record(table_id: str, sk: str, *, table_name: str | None = None) -> dict[str, Any] | None:
    """One registry record by its key."""
    item = (
        client("dynamodb")
        .get_item(
            TableName=_table(table_name),
            Key=to_item({"table_id": table_id, "sk": sk}),
            ConsistentRead=True,
        )
        .get("Item")
    )
    return from_item(item) if item else None


def find_upload(
    table_id: str, key: str, sequencer: str, *, table_name: str | None = None
) -> dict[str, Any] | None:
    """The record of one upload (``key`` as uploaded, ``sequencer`` from its S3 event)."""
    return find_record(table_id, upload_sk(key, sequencer), table_name=table_name)


def list_uploads(
    table_id: str, *, key: str | None = None, table_name: str | None = None
) -> list[dict[str, Any]]:
    """Every upload record of a table (or of one object key), in key order.

    >>> # list_uploads("tenant/test_table") -> [{"key": ..., "status": "SUCCEEDED", ...}, ...]
    """
    prefix = upload_sk(key, "") if key else "upload#"
    paginator = client("dynamodb").get_paginator("query")
    records = []
    for page in paginator.paginate(
        TableName=_table(table_name),
        KeyConditionExpression="table_id = :t AND begins_with(sk, :p)",
        ExpressionAttributeValues={":t": {"S": table_id}, ":p": {"S": prefix}},
        ConsistentRead=True,
    ):
        records.extend(from_item(item) for item in page["Items"])
    return records


# -- verify records ---------------------------------------------------------------------------
# One per table and verify round: sk "verify#{started_at}#{run_id}#r{round}", so a table's
# verifies sort by when they started (see snapcdc.steps.verify for the record's fields).
VERIFY_PREFIX = "verify#"


def verify_sk(started_at: str, run_id: str, round_: int) -> str:
    """
    >>> verify_sk("2026-12-08T10:00:00.000Z", "0a1b2c3d4e5f", 1)
    'verify#2026-12-08T10:00:00.000Z#0a1b2c3d4e5f#r1'
    """
    return f"{VERIFY_PREFIX}{started_at}#{run_id}#r{round_}"


def put_verify(record: dict[str, Any], *, table_name: str | None = None) -> None:
    """Write a verify record (``table_id``, ``sk`` from :func:`verify_sk`, the rest as is)."""
    client("dynamodb").put_item(TableName=_table(table_name), Item=to_item(record))


def update_verify(
    table_id: str, sk: str, values: dict[str, Any], *, table_name: str | None = None
) -> dict[str, Any]:
    """SET ``values`` on a verify record; return the record."""
    return update_upload(table_id, sk, values, table_name=table_name)


def last_verify(table_id: str, *, table_name: str | None = None) -> dict[str, Any] | None:
    """The table's most recent verify record (the one ``snapcdc status`` shows), or None."""
    found = list_verifies(table_id, limit=1, table_name=table_name)
    return found[0] if found else None


def list_verifies(
    table_id: str,
    *,
    run_id: str | None = None,
    limit: int | None = None,
    table_name: str | None = None,
) -> list[dict[str, Any]]:
    """A table's verify records, newest first (of one run only, with ``run_id``)."""
    args: dict[str, Any] = {
        "TableName": _table(table_name),
        "KeyConditionExpression": "table_id = :t AND begins_with(sk, :p)",
        "ExpressionAttributeValues": {":t": {"S": table_id}, ":p": {"S": VERIFY_PREFIX}},
        "ScanIndexForward": False,
        "ConsistentRead": True,
    }
    if run_id is not None:
        args["FilterExpression"] = "run_id = :r"
        args["ExpressionAttributeValues"][":r"] = {"S": run_id}
    records: list[dict[str, Any]] = []
    for page in client("dynamodb").get_paginator("query").paginate(**args):
        records.extend(from_item(item) for item in page["Items"])
        if limit is not None and len(records) >= limit:
            return records[:limit]
    return records


def table_heads(*, table_name: str | None = None) -> list[str]:
    """Every table with a head record (a version applied or diverged), in table order.

    A Scan of the registry: it holds one small record per upload, so this reads a few
    megabytes where the target holds gigabytes; only the scheduled verify of every table
    needs it.
    """
    paginator = client("dynamodb").get_paginator("scan")
    tables = []
    for page in paginator.paginate(
        TableName=_table(table_name),
        FilterExpression="sk = :h",
        ExpressionAttributeValues={":h": {"S": HEAD_SK}},
        ProjectionExpression="table_id",
        ConsistentRead=True,
    ):
        tables.extend(item["table_id"]["S"] for item in page["Items"])
    return sorted(tables)
