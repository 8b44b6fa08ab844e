"""Lambda handlers of the plumbing fixture stack (``tests/local/plumbing/cfn.yaml``)."""

from __future__ import annotations

import base64
import json
import os

import boto3
from botocore.exceptions import ClientError

# Read at import time, as Lambda code does: a new deployment must import this module afresh.
TABLE_NAME = os.environ["TABLE_NAME"]


def echo(event, context):
    return {
        "event": event,
        "function_name": context.function_name,
        "arn": context.invoked_function_arn,
        "memory": context.memory_limit_in_mb,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "request_id": context.aws_request_id,
        "env": {k: os.environ[k] for k in ("TABLE_NAME", "WORKGROUP", "DATABASE", "AWS_REGION")},
        "table_at_import": TABLE_NAME,
    }


def fail(event, context):
    raise ValueError(f"cannot handle {event.get('what')}")


def consume(event, context):
    """Apply records ``{"id", "n", ...}``: append n to the item of the record's partition key.

    ``poison``: the whole batch fails every time (before anything is written).
    ``flaky``: reported as a batch item failure the first time it is seen.
    """
    table = boto3.resource("dynamodb").Table(TABLE_NAME)
    records = [(r, json.loads(base64.b64decode(r["kinesis"]["data"]))) for r in event["Records"]]
    if any(data.get("poison") for _, data in records):
        raise RuntimeError("poison record in batch")
    for record, data in records:
        sequence = record["kinesis"]["sequenceNumber"]
        if data.get("flaky"):
            try:
                table.put_item(
                    Item={"pk": f"flaky#{data['id']}"},
                    ConditionExpression="attribute_not_exists(pk)",
                )
                return {"batchItemFailures": [{"itemIdentifier": sequence}]}
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
        table.update_item(
            Key={"pk": f"order#{record['kinesis']['partitionKey']}"},
            UpdateExpression="SET ns = list_append(if_not_exists(ns, :empty), :n)",
            ExpressionAttributeValues={":empty": [], ":n": [data["n"]]},
        )
    return {"batchItemFailures": []}
