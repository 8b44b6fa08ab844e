"""Faults the pipeline must ride out, on one deployed stack (real handlers, real state machine).

- a table lock held by another execution: the version waits, then runs once it is released;
  an expired lock is taken over; a lock never released fails the version naming its holder;
- a consumer batch that fails once is retried and applied;
- a poison record on the stream ends in the failed-batches bucket while the rest is applied;
- target writes denied until the consumer gives up: the batches land in the failed-batches
  bucket with their records, and once the fault is cleared ``snapcdc redrive`` applies them.

Parameters: LockMaxAttempts 4 (1 s apart), ConsumerMaxRetries 2.
"""

from __future__ import annotations

import base64
import json
import threading
import time

import pytest
from datasets import local_stack, write_config, write_export

from snapcdc.aws.aggregation import deaggregate
from snapcdc.steps.consumer import decode_record

ROWS = [[str(i), f"name {i}", str(i * 3)] for i in range(1, 11)]
ROWS_V2 = [[str(i), f"renamed {i}", str(i * 3)] for i in range(1, 11)]
HOLDER = "arn:aws:states:us-east-1:123456789012:execution:elsewhere:holder"
TABLES = ("held", "expired", "stuck", "flaky", "poison", "denied")
# ~2.3 MB of ops: more than one shard takes in a second, aggregated or not
BULK = [[str(i), f"n{i}", "1" * 600] for i in range(2500)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    for table in TABLES:
        write_config(data, "acme", table, {"columns": ["id", "name", "qty"], "header": False})
        write_export(data, f"acme/{table}/V1/a.csv.gz", ROWS, delimiter=",")
    write_export(data, "acme/denied/V2/a.csv.gz", ROWS_V2, delimiter=",")
    write_config(data, "acme", "bulk", {"columns": ["id", "name", "qty"], "header": False})
    write_export(data, "acme/bulk/V1/a.csv.gz", BULK, delimiter=",")
    with local_stack(data, ShardCount="1", LockMaxAttempts="4", ConsumerMaxRetries="2") as stack:
        yield stack


def upload(stack, table):
    from snapcdc_local.cli.run_driver import drive

    _, run = stack
    [result] = drive(run, [f"acme/{table}/_table.json", f"acme/{table}/V1/a.csv.gz"], timeout=120)
    return result


def target(stack, table):
    _, run = stack
    return sorted(
        [r["id"], r["name"], r["qty"]]
        for r in run.applying.read_rows(run.outputs["TargetTableName"], f"acme/{table}")
    )


def put_lock(aws, table, expires_at):
    aws.client("dynamodb").put_item(
        TableName=aws.stack.outputs["LockTableName"],
        Item={
            "lock_id": {"S": f"acme/{table}"},
            "held_by": {"S": HOLDER},
            "expires_at": {"S": expires_at},
            "acquired_at": {"S": "2020-01-01T00:00:00.000Z"},
            "version": {"S": "V0"},
        },
    )


def lock_of(aws, table):
    return (
        aws.client("dynamodb")
        .get_item(
            TableName=aws.stack.outputs["LockTableName"], Key={"lock_id": {"S": f"acme/{table}"}}
        )
        .get("Item")
    )


def states(aws, upload):
    from snapcdc_local.emulator.stepfunctions import execution_history, history_rows

    sfn = aws.client("stepfunctions")
    return [r.state for arn in upload.executions for r in history_rows(execution_history(sfn, arn))]


def release_when_waiting(aws, table):
    """Delete the lock once an execution sits in LockWait (as the other holder finishing)."""
    from snapcdc_local.emulator.stepfunctions import execution_history, list_all_executions

    sfn = aws.client("stepfunctions")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for execution in list_all_executions(sfn):
            if execution["status"] == "RUNNING":
                events = execution_history(sfn, execution["executionArn"])
                if any(
                    e.get("stateEnteredEventDetails", {}).get("name") == "LockWait" for e in events
                ):
                    aws.client("dynamodb").delete_item(
                        TableName=aws.stack.outputs["LockTableName"],
                        Key={"lock_id": {"S": f"acme/{table}"}},
                    )
                    return
        time.sleep(0.1)


def test_a_held_lock_delays_the_version_until_it_is_released(stack):
    aws, _ = stack
    put_lock(aws, "held", "2999-01-01T00:00:00Z")
    releaser = threading.Thread(target=release_when_waiting, args=(aws, "held"))
    releaser.start()
    result = upload(stack, "held")
    releaser.join()
    assert (result.status, result.inserts, result.error) == ("SUCCEEDED", 10, None)
    assert "LockWait" in states(aws, result)
    assert target(stack, "held") == sorted(ROWS)
    assert lock_of(aws, "held") is None


def test_an_expired_lock_is_taken_over(stack):
    aws, _ = stack
    put_lock(aws, "expired", "2000-01-01T00:00:00Z")
    result = upload(stack, "expired")
    assert (result.status, result.inserts) == ("SUCCEEDED", 10)
    assert "LockWait" not in states(aws, result)
    assert lock_of(aws, "expired") is None


def test_a_lock_never_released_fails_the_version_naming_the_holder(stack):
    aws, _ = stack
    put_lock(aws, "stuck", "2999-01-01T00:00:00Z")
    result = upload(stack, "stuck")
    assert result.status == "FAILED"
    assert "acme/stuck" in result.error and HOLDER in result.error
    assert states(aws, result).count("LockWait") == 3  # 4 attempts, a wait between each
    assert lock_of(aws, "stuck")["held_by"]["S"] == HOLDER  # not ours to release
    assert target(stack, "stuck") == []


def test_a_consumer_batch_that_fails_once_is_retried(stack):
    aws, _ = stack
    consumer = aws.stack.physical_id("ConsumerFunction")
    calls = []

    def fail_first(event, context, handler):
        calls.append(len(event["Records"]))
        if len(calls) == 1:
            raise ConnectionError("DynamoDB endpoint unreachable (injected)")
        return handler(event, context)

    discarded = len(aws.kinesis.discarded)
    aws.lambdas.overrides[consumer] = fail_first
    try:
        result = upload(stack, "flaky")
    finally:
        del aws.lambdas.overrides[consumer]
    assert (result.status, result.inserts) == ("SUCCEEDED", 10)
    assert len(calls) >= 2  # the failed batch came again (its 10 ops in aggregated records)
    assert target(stack, "flaky") == sorted(ROWS)
    assert len(aws.kinesis.discarded) == discarded


def test_a_poison_record_ends_in_the_failed_batches_bucket_and_the_rest_is_applied(stack):
    aws, _ = stack
    # Hold the poller so the poison record and the version's ops share one batch.
    aws.kinesis.stop()
    try:
        poison = aws.client("kinesis").put_record(
            StreamName=aws.stack.outputs["StreamName"],
            PartitionKey="acme/poison|x",
            Data=b"{not json",
        )
        result = upload(stack, "poison")
    finally:
        aws.kinesis.start()
    assert (result.status, result.inserts) == ("SUCCEEDED", 10)
    assert target(stack, "poison") == sorted(ROWS)
    [(key, document)] = failed_batches(aws)
    assert key.startswith(f"aws/lambda/{mapping_uuid(aws)}/shardId-000000000000/")
    assert document["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert document["requestContext"]["functionArn"].endswith(
        aws.stack.physical_id("ConsumerFunction")
    )
    info = document["KinesisBatchInfo"]
    assert (info["batchSize"], info["startSequenceNumber"], info["endSequenceNumber"]) == (
        1,
        poison["SequenceNumber"],
        poison["SequenceNumber"],
    )
    # Unlike an SQS message, the S3 object holds the record itself: the invocation's event.
    [record] = json.loads(document["payload"])["Records"]
    assert record["kinesis"]["sequenceNumber"] == poison["SequenceNumber"]
    assert base64.b64decode(record["kinesis"]["data"]) == b"{not json"
    # A redrive cannot apply a poison record either: reported, and its object kept.
    code, report = redrive(stack)
    [entry] = report["objects"]
    assert (code, entry["key"], entry["removed"], entry["applied"]) == (1, key, False, 0)
    assert "cannot decode" in entry["failed"][0]
    aws.client("s3").delete_object(Bucket=aws.stack.outputs["FailedBatchesBucketName"], Key=key)


def test_denied_target_writes_land_in_the_failed_batches_bucket_and_redrive_applies_them(stack):
    from botocore.exceptions import ClientError

    from snapcdc_local.cli.run_driver import drive

    aws, _ = stack
    consumer = aws.stack.physical_id("ConsumerFunction")
    table = aws.stack.outputs["TargetTableName"]

    def deny(params, **kwargs):
        if params.get("TableName") == table:
            raise ClientError(
                {
                    "Error": {
                        "Code": "AccessDeniedException",
                        "Message": "PutItem denied (injected)",
                    }
                },
                "PutItem",
            )

    def denied_writes(event, context, handler):
        from snapcdc.aws.clients import client

        events = client("dynamodb").meta.events
        events.register("provide-client-params.dynamodb.PutItem", deny, unique_id="deny")
        try:
            return handler(event, context)
        finally:
            events.unregister("provide-client-params.dynamodb.PutItem", unique_id="deny")

    aws.lambdas.overrides[consumer] = denied_writes
    try:
        result = upload(stack, "denied")
    finally:
        del aws.lambdas.overrides[consumer]
    assert (result.status, result.inserts) == ("SUCCEEDED", 10)
    assert target(stack, "denied") == []
    run = stack[1]
    run.read_counts(result)  # published, none applied: visible on the upload record
    assert (result.published, result.applied, result.stale) == (10, 0, 0)
    batches = failed_batches(aws)
    ops = [
        op
        for _, document in batches
        for r in json.loads(document["payload"])["Records"]
        for op in decode_record(r)  # aggregated records: many ops each
    ]
    assert sorted(op["row"]["id"] for op in ops) == sorted(row[0] for row in ROWS)
    assert {d["requestContext"]["condition"] for _, d in batches} == {"RetryAttemptsExhausted"}

    code, report = redrive(stack, "--keep")
    assert code == 0
    assert sum(o["applied"] for o in report["objects"]) == 10
    assert not any(o["removed"] or o["failed"] for o in report["objects"])
    assert target(stack, "denied") == sorted(ROWS)
    run.read_counts(result)  # the redrive counts as the consumer does
    assert (result.published, result.applied, result.stale) == (10, 10, 0)
    # Once a newer version is applied, redriving the old batches again changes nothing: every
    # write is conditional on the stored version, so they are refused as stale, and removed.
    [v2] = drive(stack[1], ["acme/denied/V2/a.csv.gz"], timeout=120)
    assert (v2.status, v2.updates) == ("SUCCEEDED", 10)
    code, report = redrive(stack)
    assert code == 0
    assert [(o["applied"], o["stale"]) for o in report["objects"]] == [
        (0, sum(len(decode_record(r)) for r in json.loads(d["payload"])["Records"]))
        for _, d in batches
    ]  # stale ops, many to a record
    assert all(o["removed"] for o in report["objects"])
    run.read_counts(result)
    assert (result.published, result.applied, result.stale) == (10, 10, 10)
    assert target(stack, "denied") == sorted(ROWS_V2)
    assert failed_batches(aws) == []


def mapping_uuid(aws):
    [uuid] = list(aws.kinesis.mappings)
    return uuid


def failed_batches(aws):
    """(key, document) of every object in the failed-batches bucket."""
    s3 = aws.client("s3")
    bucket = aws.stack.outputs["FailedBatchesBucketName"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return [(k, json.loads(s3.get_object(Bucket=bucket, Key=k)["Body"].read())) for k in keys]


def redrive(stack, *options):
    """``snapcdc redrive --stack snapcdc``, as against AWS: (exit status, its JSON report)."""
    import tempfile
    from pathlib import Path

    from snapcdc_local.cli.main import main

    aws, _ = stack
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.json"
        code = main(["redrive", "--stack", aws.stack_name, "--report", str(path), *options])
        return code, json.loads(path.read_text())


class FrozenUntilRefused:
    """A shard's clock that stands still until the shard has refused a record, then runs in
    real time: the first second's allowance (1 MiB) is all the publisher gets however fast
    or slow this machine sends, so the version's 2.3 MB is surely throttled, and then the
    allowance refills while the publisher waits, as in AWS."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.thawed: float | None = None
        self.bucket = None

    def __call__(self) -> float:
        if self.thawed is None:
            if self.bucket is None or not self.bucket.refused:
                return self.start
            self.thawed = time.monotonic()
        return self.start + time.monotonic() - self.thawed


@pytest.fixture
def clocked_shard(stack):
    """The stream's one shard on a :class:`FrozenUntilRefused` clock while the test runs."""
    from moto.kinesis.models import kinesis_backends

    from snapcdc_local.emulator.kinesis import ShardThroughput

    aws, _ = stack
    stream = kinesis_backends[aws.stack.account_id][aws.region].streams[
        aws.stack.outputs["StreamName"]
    ]
    [shard] = stream.shards.values()
    before = shard.__dict__.get("_snapcdc_throughput")
    clock = FrozenUntilRefused()
    clock.bucket = shard.__dict__["_snapcdc_throughput"] = ShardThroughput(now=clock)
    yield clock
    if before is None:
        shard.__dict__.pop("_snapcdc_throughput", None)
    else:
        shard.__dict__["_snapcdc_throughput"] = before


def test_a_version_above_one_shards_allowance_is_throttled_and_lands_exactly_once(
    stack, clocked_shard
):
    aws, _ = stack
    result = upload(stack, "bulk")
    assert (result.status, result.inserts, result.error) == ("SUCCEEDED", 2500, None)
    assert target(stack, "bulk") == sorted(BULK)
    # every op is on the stream exactly once ...
    ops = [op for op in stream_ops(aws) if op["table_id"] == "acme/bulk"]
    assert sorted(op["key"]["id"] for op in ops) == sorted(row[0] for row in BULK)
    # ... although Kinesis refused records on the way: the throttled path was taken
    [*_, last] = publish_outputs(aws, result.executions[-1])
    assert (last["records"], last["inserts"], last["done"]) == (2500, 2500, True)
    assert last["retries"] > 0
    assert clocked_shard.bucket.refused > 0  # (Kinesis's refusals, as the shard counted them)


def stream_ops(aws):
    kinesis = aws.client("kinesis")
    stream = aws.stack.outputs["StreamName"]
    ops = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            response = kinesis.get_records(ShardIterator=iterator, Limit=10000)
            ops.extend(op for r in response["Records"] for op in decoded(r))
            if not response["Records"]:
                break
            iterator = response.get("NextShardIterator")
    return ops


def decoded(record):
    """The ops of a stream record (aggregated or plain); none for the poison record."""
    try:
        users = deaggregate(record["Data"])
        return [json.loads(d) for _, d in users] if users else [json.loads(record["Data"])]
    except ValueError:
        return []


def publish_outputs(aws, execution_arn):
    """The publish progress after each Publish state of an execution."""
    from snapcdc_local.emulator.stepfunctions import execution_history

    events = execution_history(aws.client("stepfunctions"), execution_arn)
    return [
        json.loads(e["stateExitedEventDetails"]["output"])["publish"]
        for e in events
        if e.get("stateExitedEventDetails", {}).get("name") == "Publish"
    ]
