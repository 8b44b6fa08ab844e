"""The Kinesis event source mapping poller against the plumbing stack's consumer.

The mapping (tests/local/plumbing/cfn.yaml): BatchSize 4, bisect on error, 2 retries,
ReportBatchItemFailures, on-failure destination an SQS queue; the stream has 2 shards.
"""

from __future__ import annotations

import datetime
import json

from boto3.dynamodb.types import TypeDeserializer


def put(aws, partition_key, **data):
    return aws.client("kinesis").put_record(
        StreamName=aws.stack.physical_id("Stream"),
        PartitionKey=partition_key,
        Data=json.dumps(data).encode(),
    )


def applied(aws, partition_key):
    item = (
        aws.client("dynamodb")
        .get_item(
            TableName=aws.stack.physical_id("Table"), Key={"pk": {"S": f"order#{partition_key}"}}
        )
        .get("Item")
    )
    return [int(n) for n in TypeDeserializer().deserialize(item["ns"])] if item else []


def dlq_messages(aws):
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName=aws.stack.physical_id("DeadLetterQueue").rsplit("/", 1)[-1])[
        "QueueUrl"
    ]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    for message in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return [json.loads(m["Body"]) for m in messages]


def test_records_are_applied_in_order_per_shard_in_batches(plumbing):
    before = plumbing.kinesis.invocations
    keys = [f"order-{i}" for i in range(6)]
    for n in range(5):
        for key in keys:
            put(plumbing, key, id=f"{key}-{n}", n=n)
    plumbing.settle()
    assert all(applied(plumbing, key) == [0, 1, 2, 3, 4] for key in keys)
    # 30 records in batches of at most 4 over two shards: at least 8 invocations.
    assert plumbing.kinesis.invocations - before >= 8


def test_a_batch_item_failure_is_retried_from_that_record(plumbing):
    for n in range(3):
        put(plumbing, "flaky", id=f"flaky-{n}", n=n, flaky=(n == 1))
    plumbing.settle()
    assert applied(plumbing, "flaky") == [0, 1, 2]
    assert dlq_messages(plumbing) == []


def test_a_poison_record_goes_to_the_dlq_and_the_rest_is_applied(plumbing):
    responses = [put(plumbing, "poison", id=f"poison-{n}", n=n, poison=(n == 2)) for n in range(4)]
    plumbing.settle()
    assert applied(plumbing, "poison") == [0, 1, 3]
    [message] = dlq_messages(plumbing)
    poison = responses[2]
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert message["requestContext"]["functionArn"].endswith(plumbing.stack.physical_id("Consumer"))
    assert message["requestContext"]["approximateInvokeCount"] == 3  # first try + 2 retries
    assert message["responseContext"]["functionError"] == "Unhandled"
    info = message["KinesisBatchInfo"]
    assert (
        info["shardId"],
        info["startSequenceNumber"],
        info["endSequenceNumber"],
        info["batchSize"],
    ) == (
        poison["ShardId"],
        poison["SequenceNumber"],
        poison["SequenceNumber"],
        1,
    )
    assert info["streamArn"].endswith(plumbing.stack.physical_id("Stream"))


def test_the_consumer_event_is_shaped_like_lambdas(plumbing):
    seen = []

    def spy(event, context, handler):
        seen.append(event)
        return handler(event, context)

    consumer = plumbing.stack.physical_id("Consumer")
    plumbing.lambdas.overrides[consumer] = spy
    try:
        response = put(plumbing, "shape", id="shape-0", n=0)
        plumbing.settle()
    finally:
        del plumbing.lambdas.overrides[consumer]
    [record] = [r for event in seen for r in event["Records"]]
    assert record["eventID"] == f"{response['ShardId']}:{response['SequenceNumber']}"
    assert record["eventSource"] == "aws:kinesis" and record["eventName"] == "aws:kinesis:record"
    assert record["eventSourceARN"].endswith(f"stream/{plumbing.stack.physical_id('Stream')}")
    assert record["kinesis"]["partitionKey"] == "shape"
    assert record["kinesis"]["sequenceNumber"] == response["SequenceNumber"]
    assert isinstance(record["kinesis"]["approximateArrivalTimestamp"], float)
    assert record["invokeIdentityArn"].startswith("arn:aws:iam::")


def test_records_older_than_the_maximum_age_go_to_the_dlq_unprocessed(plumbing):
    from moto.kinesis.models import kinesis_backends

    plumbing.kinesis.stop()  # hold the poller while the record "ages"
    try:
        response = put(plumbing, "aged", id="aged-0", n=0)
        stream = kinesis_backends["123456789012"]["us-east-1"].streams[
            plumbing.stack.physical_id("Stream")
        ]
        record = stream.shards[response["ShardId"]].records[int(response["SequenceNumber"])]
        # Older than the mapping's MaximumRecordAgeInSeconds (3600).
        if hasattr(record, "created_at_datetime"):  # moto 5.2.5: epoch seconds beside it
            record.created_at_datetime -= datetime.timedelta(hours=2)
            record.created_at -= 2 * 3600
        else:  # moto 5.2.6: a datetime
            record.created_at -= datetime.timedelta(hours=2)
        plumbing.settle()
    finally:
        plumbing.kinesis.start()
    assert applied(plumbing, "aged") == []
    [message] = dlq_messages(plumbing)
    assert message["requestContext"]["condition"] == "RecordAgeExceeded"
    assert message["KinesisBatchInfo"]["startSequenceNumber"] == response["SequenceNumber"]


# -- what PutRecords refuses (https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html)


def fresh_stream(aws, name):
    kinesis = aws.client("kinesis")
    kinesis.create_stream(StreamName=name, ShardCount=1)
    return kinesis


def entries(n, size=10, key="k"):
    return [{"Data": b"x" * size, "PartitionKey": f"{key}{i}"} for i in range(n)]


def error_of(call):
    from botocore.exceptions import ClientError

    try:
        call()
    except ClientError as exc:
        return exc.response["Error"]["Code"], exc.response["Error"]["Message"]
    raise AssertionError("the call was accepted")


def test_put_records_refuses_what_kinesis_refuses_before_storing_anything(plumbing):
    kinesis = fresh_stream(plumbing, "limits")
    too_long_key = [*entries(2), {"Data": b"x", "PartitionKey": "p" * 257}]
    code, message = error_of(lambda: kinesis.put_records(StreamName="limits", Records=too_long_key))
    assert code == "ValidationException"
    assert "'records.3.member.partitionKey'" in message and "less than or equal to 256" in message
    too_big = [{"Data": b"x" * (1024 * 1024 - 2), "PartitionKey": "abc"}]  # data + key > 1 MiB
    code, message = error_of(lambda: kinesis.put_records(StreamName="limits", Records=too_big))
    assert code == "ValidationException" and "'records.1.member.data'" in message
    code, _ = error_of(lambda: kinesis.put_records(StreamName="limits", Records=entries(501)))
    assert code == "ValidationException"
    six_mib = entries(6, size=1024 * 1024 - 100)
    code, _ = error_of(lambda: kinesis.put_records(StreamName="limits", Records=six_mib))
    assert code == "InvalidArgumentException"
    code, message = error_of(
        lambda: kinesis.put_record(StreamName="limits", Data=b"x", PartitionKey="p" * 257)
    )
    assert code == "ValidationException" and "at 'partitionKey'" in message
    shard = kinesis.list_shards(StreamName="limits")["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName="limits", ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    assert kinesis.get_records(ShardIterator=iterator)["Records"] == []  # nothing was stored


class Clock:
    """The shards' clock, moved by the test: a shard's allowance refills only when it says so,
    so what a shard takes does not depend on how fast the machine puts records."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def clocked_stream(aws, name):
    """A one-shard stream whose write allowance runs on a :class:`Clock`, and a client that
    does not retry (botocore retries a throttled PutRecord: the first refusal is the answer)."""
    import boto3
    from botocore.config import Config
    from moto.kinesis.models import kinesis_backends

    from snapcdc_local.emulator.kinesis import ShardThroughput

    fresh_stream(aws, name)
    clock = Clock()
    stream = kinesis_backends[aws.stack.account_id][aws.region].streams[name]
    for shard in stream.shards.values():
        shard.__dict__["_snapcdc_throughput"] = ShardThroughput(now=clock)
    client = boto3.client(
        "kinesis", region_name=aws.region, config=Config(retries={"total_max_attempts": 1})
    )
    return client, clock


def test_a_shard_takes_1000_records_a_second_and_refuses_the_rest_one_by_one(plumbing):
    kinesis, clock = clocked_stream(plumbing, "records-per-second")
    put = lambda key: kinesis.put_records(  # noqa: E731
        StreamName="records-per-second", Records=entries(500, key=key)
    )
    first, second, third = put("a"), put("b"), put("c")
    # one second's allowance to start with: 1,000 records, then every record refused
    assert [r["FailedRecordCount"] for r in (first, second, third)] == [0, 0, 500]
    account = plumbing.stack.account_id
    assert third["Records"][0] == {
        "ErrorCode": "ProvisionedThroughputExceededException",
        "ErrorMessage": f"Rate exceeded for shard shardId-000000000000 in stream "
        f"records-per-second under account {account}.",
    }
    assert all("SequenceNumber" in r for r in first["Records"] + second["Records"])
    clock.now += 0.6  # 600 records' worth of allowance again
    again, more = put("d"), put("e")
    assert (again["FailedRecordCount"], more["FailedRecordCount"]) == (0, 400)
    # refused one by one: the records that fit were stored, in order, the rest refused
    assert all("SequenceNumber" in r for r in more["Records"][:100])
    assert all("ErrorCode" in r for r in more["Records"][100:])


def test_a_shard_takes_1_mib_a_second(plumbing):
    kinesis, clock = clocked_stream(plumbing, "bytes-per-second")

    def put_one(i) -> str:
        try:
            kinesis.put_record(
                StreamName="bytes-per-second", Data=b"y" * 900 * 1024, PartitionKey=f"{i}"
            )
        except kinesis.exceptions.ProvisionedThroughputExceededException:
            return "refused"
        return "stored"

    response = kinesis.put_records(StreamName="bytes-per-second", Records=entries(3, 600 * 1024))
    # 1 MiB to start with: the first 600 KiB record fits, the other two do not
    assert ["ErrorCode" in r for r in response["Records"]] == [False, True, True]
    assert [put_one(i) for i in range(2)] == ["refused", "refused"]  # 424 KiB left
    clock.now += 1.0  # 1 MiB again (the bucket holds at most one second's worth)
    assert [put_one(i) for i in range(2, 4)] == ["stored", "refused"]
    clock.now += 0.5  # half a MiB: not enough for 900 KiB
    assert put_one(4) == "refused"
    clock.now += 0.5
    assert put_one(5) == "stored"


def test_an_idle_poller_reads_a_new_record_at_once(plumbing, monkeypatch):
    """The background poller waits for the next put, not for its idle interval: with that
    interval 60 s, a record put while it waits is applied long before (the wait below is a
    bound at half the interval, not a measure: the poller is known to be waiting first)."""
    import threading
    import time

    from snapcdc_local.emulator.kinesis import ARRIVALS

    monkeypatch.setattr(plumbing.kinesis, "idle_sleep", 60.0)
    waiting = threading.Event()
    wait_after = ARRIVALS.wait_after

    def watched(seen, timeout):
        if timeout == 60.0:
            waiting.set()
        return wait_after(seen, timeout)

    monkeypatch.setattr(ARRIVALS, "wait_after", watched)
    plumbing.settle()
    assert waiting.wait(30), "the poller never went idle"
    put(plumbing, "woken", id="woken-0", n=0)
    applied_in_time = threading.Event()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not applied_in_time.is_set():
        if applied(plumbing, "woken"):
            applied_in_time.set()
        else:
            applied_in_time.wait(0.05)
    assert applied(plumbing, "woken") == [0]
