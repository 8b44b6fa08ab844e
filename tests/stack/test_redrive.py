"""stack.redrive against moto: failed-batch objects in the shape Lambda writes them to S3.

The shape (https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html):
the invocation record plus ``payload``, the invocation's event as an escaped JSON string, under
``aws/lambda/<ESM-UUID>/<shardID>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<Random UUID>``.
"""

from __future__ import annotations

import base64
import json

from test_consumer import consume, op, rows

from snapcdc_local.stack.redrive import redrive

BUCKET = "failed-batches"
KEY = "aws/lambda/0a1b/shardId-000000000000/2026/12/01/2026-12-01T09.00.00-5c1f"


def failure_object(aws, key, ops, condition="RetryAttemptsExhausted"):
    records = [
        {
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": f"tenant/test_table|{o['key']['PK']}",
                "sequenceNumber": str(100 + i),
                "data": base64.b64encode(json.dumps(o).encode()).decode(),
                "approximateArrivalTimestamp": 1764579600.0,
            },
            "eventSource": "aws:kinesis",
            "eventID": f"shardId-000000000000:{100 + i}",
        }
        for i, o in enumerate(ops)
    ]
    document = {
        "requestContext": {"condition": condition, "approximateInvokeCount": 3},
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
        "version": "1.0",
        "KinesisBatchInfo": {"shardId": "shardId-000000000000", "batchSize": len(records)},
        "payload": json.dumps({"Records": records}),
    }
    aws.s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(document).encode())


def keys(aws):
    return [o["Key"] for o in aws.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def test_a_failed_batch_is_applied_and_its_object_removed(aws):
    failure_object(aws, KEY, [op("INSERT", "V1", "PK1", COL_1="a"), op("INSERT", "V1", "PK2")])

    [result] = redrive(aws.s3, BUCKET, "target")

    assert (result.key, result.condition, result.records) == (KEY, "RetryAttemptsExhausted", 2)
    assert (result.applied, result.stale, result.failed, result.removed) == (2, 0, [], True)
    assert rows(aws)["PK1"]["COL_1"] == "a" and set(rows(aws)) == {"PK1", "PK2"}
    assert keys(aws) == []


def test_an_op_a_newer_version_overtook_is_stale_and_changes_nothing(aws):
    consume(aws, op("UPDATE", "V2", "PK1", COL_1="new"))
    failure_object(aws, KEY, [op("INSERT", "V1", "PK1", COL_1="old")], "RecordAgeExceeded")

    [result] = redrive(aws.s3, BUCKET, "target")

    assert (result.condition, result.applied, result.stale, result.removed) == (
        "RecordAgeExceeded",
        0,
        1,
        True,
    )
    assert rows(aws)["PK1"]["COL_1"] == "new"


def test_what_cannot_be_applied_is_reported_and_kept(aws):
    failure_object(aws, KEY, [op("INSERT", "V1", "PK1")])
    poison = KEY.replace("5c1f", "0001")
    aws.s3.put_object(
        Bucket=BUCKET,
        Key=poison,
        Body=json.dumps(
            {
                "KinesisBatchInfo": {},
                "payload": json.dumps(
                    {"Records": [{"kinesis": {"sequenceNumber": "7", "data": "e30="}}]}
                ),
            }
        ).encode(),
    )
    junk = KEY.replace("5c1f", "0002")
    aws.s3.put_object(Bucket=BUCKET, Key=junk, Body=b"not json")
    aws.s3.put_object(Bucket=BUCKET, Key="elsewhere/x", Body=b"ignored: not a failure record")

    results = {r.key: r for r in redrive(aws.s3, BUCKET, "target")}

    assert set(results) == {KEY, poison, junk}
    assert results[KEY].removed and results[KEY].applied == 1
    assert not results[poison].removed
    assert results[poison].failed == ["7: OpError: op record without op: {}"]
    assert not results[junk].removed and "is not JSON" in results[junk].failed[0]
    assert sorted(keys(aws)) == sorted([poison, junk, "elsewhere/x"])
