"""Where an event source mapping sends the invocation record of a batch it gave up on.

To SQS or SNS the record itself (metadata only); to an S3 bucket the record plus ``payload``,
the batch's event as a JSON string, in an object named
``aws/lambda/<ESM-UUID>/<shardID>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<Random UUID>``
(https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import boto3

from snapcdc_local.emulator import iam


def failure_object_key(mapping_uuid: str, shard_id: str, now: float) -> str:
    """The S3 key AWS gives an on-failure invocation record of a stream mapping.

    >>> failure_object_key("u-1", "shardId-000000000000", 0.0)[:67]
    'aws/lambda/u-1/shardId-000000000000/1970/01/01/1970-01-01T00.00.00-'
    """
    at = dt.datetime.fromtimestamp(now, dt.UTC)
    stamp = at.strftime("%Y/%m/%d/%Y-%m-%dT%H.%M.%S")
    return f"aws/lambda/{mapping_uuid}/{shard_id}/{stamp}-{uuid.uuid4()}"


def send_to_destination(
    arn: str,
    record: dict[str, Any],
    region: str,
    *,
    payload: dict[str, Any] | None = None,
    object_key: str | None = None,
) -> None:
    """Deliver an on-failure invocation record to an SQS queue, SNS topic or S3 bucket ARN.

    Only an S3 object carries ``payload`` (the invocation's event, as an escaped JSON string).
    """
    service = arn.split(":")[2]
    body = json.dumps(record)
    if service == "s3":
        if payload is None or object_key is None:
            raise ValueError("an S3 on-failure destination needs the payload and an object key")
        document = {**record, "payload": json.dumps(payload)}
        boto3.client("s3", region_name=region).put_object(
            Bucket=arn.split(":")[-1], Key=object_key, Body=json.dumps(document).encode()
        )
    elif service == "sqs":
        _, _, _, queue_region, account, name = arn.split(":")
        sqs = boto3.client("sqs", region_name=queue_region)
        with iam.acting(None):  # Lambda knows its destination's URL: no call of the role
            url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=body)
    elif service == "sns":
        boto3.client("sns", region_name=arn.split(":")[3]).publish(TopicArn=arn, Message=body)
    else:
        raise ValueError(
            f"unsupported on-failure destination {arn!r}: "
            "expected an SQS queue, SNS topic or S3 bucket"
        )
