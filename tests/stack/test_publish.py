"""Publish: Athena's ops CSV streamed from a byte cursor to a real (moto) Kinesis stream."""

from __future__ import annotations

import json
import random
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from harness import lambda_context

from snapcdc.aws import clients as snapcdc_aws
from snapcdc.aws.aggregation import deaggregate
from snapcdc.aws.result_files import RecordScanner, parse_record
from snapcdc.model.errors import PublishFailed, ResultFormatError
from snapcdc.model.state import PublishProgress
from snapcdc.steps.publish import published_ops, retry_delay

DATA = Path(__file__).parent / "data"
UPLOAD = {
    "tenant": "tenant",
    "table": "test_table",
    "table_id": "tenant/test_table",
    "version": "20201230_V0002",
    "key": "tenant/test_table/20201230_V0002/export2.csv.gz",
    "sequencer": "0062E99A88DC407460",
    "sk": "upload#tenant/test_table/20201230_V0002/export2.csv.gz#0062E99A88DC407460",
}
SCHEMA = {"columns": ["PK", "COL_1", "COL_2", "COL_3"], "key": ["PK"]}
RESULT = "s3://results/athena/ops.csv"


def put_result(aws, body: bytes) -> None:
    aws.s3.put_object(Bucket="results", Key="athena/ops.csv", Body=body)


def queries():
    return [
        {"name": "check_export", "kind": "check", "query_id": "q1", "output_location": "x"},
        {"name": "delta", "kind": "ops", "query_id": "q2", "output_location": RESULT},
    ]


def publish(aws, progress=None, remaining_ms=300_000):
    event = {"upload": UPLOAD, "schema": SCHEMA, "queries": queries(), "progress": progress or {}}
    return aws.invoke("publish", event, lambda_context("publish", remaining_ms))


def publish_all(aws, remaining_ms=300_000):
    pages = [publish(aws, remaining_ms=remaining_ms)]
    while not pages[-1]["done"]:
        assert len(pages) < 100
        pages.append(publish(aws, pages[-1], remaining_ms))
    return pages


def user_records(data: bytes) -> list[tuple[str, bytes]]:
    return deaggregate(data) or []


def published(aws):
    """Every op on the stream, in order, taken out of its aggregated record."""
    return [json.loads(d) for r in aws.stream_records() for _, d in user_records(r["Data"])]


@pytest.fixture
def one_op_a_record(monkeypatch):
    """Records of one op each (an aggregate smaller than any op), as before aggregation: for
    the tests of batching, refusal and retries by record."""
    monkeypatch.setenv("SNAPCDC_PUBLISH_RECORD_BYTES", "1")


def generated_result(rows: int, width: int = 10) -> bytes:
    lines = ['"op","pk","col_1","col_2","col_3"']
    for i in range(rows):
        op = ("INSERT", "UPDATE", "DELETE")[i % 3]
        lines.append(f'"{op}","PK{i:06d}","{"v" * width}","line\nbreak",')
    return ("\n".join(lines) + "\n").encode()


def test_records_carry_op_key_and_columns_by_original_name(aws):
    body = (DATA / "ops_result.csv").read_bytes()
    put_result(aws, body)

    [page] = publish_all(aws)

    assert published(aws) == json.loads((DATA / "ops_expected.json").read_text())
    assert page["done"] is True
    assert page["cursor"] == len(body)
    assert (page["inserts"], page["updates"], page["deletes"], page["records"]) == (2, 1, 1, 4)
    [record] = aws.stream_records()  # one aggregated record
    assert page["kinesis_records"] == 1
    assert record["PartitionKey"] == "tenant/test_table|PK1"  # its first op's, as the KPL does
    keys = [pk for pk, _ in user_records(record["Data"])]
    assert keys == [
        "tenant/test_table|PK1",
        "tenant/test_table|PK2",
        "tenant/test_table|PK3",
        "tenant/test_table|PK4",
    ]


def test_pages_resume_at_the_cursor_without_loss_or_repeat(aws, monkeypatch):
    monkeypatch.setenv("SNAPCDC_PUBLISH_MAX_RECORDS", "3")
    body = generated_result(10)
    put_result(aws, body)

    pages = publish_all(aws)

    assert len(pages) == 4
    assert [p["records"] for p in pages] == [3, 6, 9, 10]
    assert pages[-1]["cursor"] == len(body)
    assert [r["key"]["PK"] for r in published(aws)] == [f"PK{i:06d}" for i in range(10)]
    assert [p["calls"] for p in pages] == [1, 2, 3, 4]


def test_stops_when_the_invocation_runs_low_on_time(aws, one_op_a_record):
    put_result(aws, generated_result(1200))

    pages = publish_all(aws, remaining_ms=1_000)  # below the 30 s reserve: one batch per call

    assert [p["records"] for p in pages] == [500, 1000, 1200]
    assert len(published(aws)) == 1200


def test_batches_stay_within_kinesis_limits(aws, one_op_a_record):
    sizes = []

    def record_batch(params, **_):
        sizes.append(
            (
                len(params["Records"]),
                sum(len(r["Data"]) + len(r["PartitionKey"]) for r in params["Records"]),
            )
        )

    boto3.DEFAULT_SESSION.events.register("before-parameter-build.kinesis.PutRecords", record_batch)
    snapcdc_aws.reset_clients()
    put_result(aws, generated_result(1100) + generated_result(300, width=40_000).split(b"\n", 1)[1])

    [page] = publish_all(aws)

    assert page["records"] == 1400
    assert all(n <= 500 and size <= 5 * 1024 * 1024 for n, size in sizes)
    assert max(n for n, _ in sizes) == 500  # the count limit is reached ...
    assert max(size for _, size in sizes) > 4 * 1024 * 1024  # ... and the byte limit shapes batches
    assert sum(n for n, _ in sizes) == 1400


def test_a_row_above_the_record_limit_fails_the_version(aws):
    put_result(aws, generated_result(1, width=1024 * 1024))

    with pytest.raises(PublishFailed, match=r"the INSERT of key \['PK000000'\] is \d+ bytes"):
        publish(aws)


class PartialFailures:
    """Makes Kinesis refuse chosen records: they are taken out of the real request before it
    is sent and reported back as failed in the real response, as PutRecords does."""

    def __init__(self, fail_calls: int, every: int = 3):
        self.fail_calls, self.every = fail_calls, every
        self.requests: list[list[str]] = []
        self._refused: list[int] = []
        self._sent: list[dict] = []

    REFUSED = {
        "ErrorCode": "ProvisionedThroughputExceededException",
        "ErrorMessage": "Rate exceeded",
    }

    def install(self):
        events = boto3.DEFAULT_SESSION.events
        events.register("before-parameter-build.kinesis.PutRecords", self.before)
        events.register("before-call.kinesis.PutRecords", self.all_refused)
        events.register("after-call.kinesis.PutRecords", self.after)
        snapcdc_aws.reset_clients()
        return self

    def before(self, params, **_):
        records = params["Records"]
        # each record named by its first op's key
        self.requests.append(
            [json.loads(user_records(r["Data"])[0][1])["key"]["PK"] for r in records]
        )
        failing = len(self.requests) <= self.fail_calls
        self._refused = [i for i in range(len(records)) if failing and i % self.every == 0]
        self._count = len(records)
        if len(self._refused) < len(records):
            params["Records"] = [r for i, r in enumerate(records) if i not in self._refused]

    def all_refused(self, **_):
        """Nothing accepted: answer without sending (a request needs at least one record)."""
        if self._refused and len(self._refused) == self._count:
            response = {"FailedRecordCount": self._count, "Records": [self.REFUSED] * self._count}
            return SimpleNamespace(status_code=200, headers={}), response
        return None

    def after(self, parsed, **_):
        if not self._refused or len(self._refused) == self._count:
            return
        accepted = iter(parsed["Records"])
        parsed["Records"] = [
            self.REFUSED if i in self._refused else next(accepted) for i in range(self._count)
        ]
        parsed["FailedRecordCount"] = len(self._refused)


def test_only_refused_records_are_sent_again(aws, one_op_a_record):
    failures = PartialFailures(fail_calls=2).install()
    put_result(aws, generated_result(10))

    [page] = publish_all(aws)

    first, second, third = failures.requests
    assert len(first) == 10
    assert second == first[::3]  # the refused ones, nothing else
    assert third == second[::3]
    assert page["retries"] == 2
    assert sorted(r["key"]["PK"] for r in published(aws)) == [f"PK{i:06d}" for i in range(10)]


def test_gives_up_after_the_bounded_retries(aws, one_op_a_record, monkeypatch):
    monkeypatch.setenv("SNAPCDC_PUBLISH_MAX_RETRIES", "2")
    failures = PartialFailures(fail_calls=100, every=1).install()
    put_result(aws, generated_result(4))

    with pytest.raises(
        PublishFailed, match=r"4 record\(s\) still refused by Kinesis after 2 retries"
    ):
        publish(aws)
    assert len(failures.requests) == 3


def test_retries_are_bounded_only_while_kinesis_takes_nothing(aws, one_op_a_record, monkeypatch):
    # Throttled but draining (each attempt gets some records in): never a failed version.
    monkeypatch.setenv("SNAPCDC_PUBLISH_MAX_RETRIES", "2")
    failures = PartialFailures(fail_calls=3).install()
    put_result(aws, generated_result(10))

    [page] = publish_all(aws)

    assert [len(r) for r in failures.requests] == [10, 4, 2, 1]
    assert page["retries"] == 3 and page["records"] == 10
    assert sorted(r["key"]["PK"] for r in published(aws)) == [f"PK{i:06d}" for i in range(10)]


def test_records_still_refused_when_time_runs_low_go_with_the_next_page_exactly_once(
    aws, one_op_a_record
):
    failures = PartialFailures(fail_calls=2).install()
    put_result(aws, generated_result(10))

    pages = publish_all(aws, remaining_ms=1_000)  # below the reserve: no time to wait

    first, second, third = failures.requests
    assert (len(first), second, third) == (10, first[::3], second[::3])
    assert [p["done"] for p in pages] == [False, False, True]
    # the cursor stays at the batch's first row; "sent" names the rows Kinesis already took
    assert pages[0]["sent"] == [[1, 3], [4, 6], [7, 9]] and pages[0]["records"] == 0
    assert pages[1]["sent"] == [[1, 9]]
    assert pages[0]["cursor"] == pages[1]["cursor"] == len(b'"op","pk","col_1","col_2","col_3"\n')
    last = pages[-1]
    assert (last["records"], last["inserts"], last["updates"], last["deletes"]) == (10, 4, 3, 3)
    assert last["sent"] == []
    keys = [r["key"]["PK"] for r in published(aws)]
    assert sorted(keys) == [f"PK{i:06d}" for i in range(10)]  # each op exactly once


def test_result_with_unexpected_header_is_refused(aws):
    put_result(aws, b'"op","pk","col_1"\n"INSERT","PK1","a"\n')

    with pytest.raises(ResultFormatError, match="ops result header"):
        publish(aws)


def test_empty_delta_publishes_nothing(aws):
    put_result(aws, b'"op","pk","col_1","col_2","col_3"\n')

    [page] = publish_all(aws)

    assert page["done"] and page["records"] == 0
    assert published(aws) == []


# ------------------------------------------------------------------ the scanner alone


def test_scanner_gives_the_same_records_for_any_chunking():
    body = (DATA / "ops_result.csv").read_bytes()
    whole = RecordScanner().feed(body)
    rng = random.Random(3)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(body)), rng.randint(1, 12)))
        scanner = RecordScanner()
        pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
        records = [r for piece in pieces for r in scanner.feed(piece)] + scanner.finish()
        assert records == whole


def test_scanner_resumes_at_a_cursor():
    body = (DATA / "ops_result.csv").read_bytes()
    records = RecordScanner().feed(body)
    cursor = records[1][1]
    assert RecordScanner(cursor).feed(body[cursor:]) == records[2:]


def test_last_record_without_newline_and_unterminated_quote():
    scanner = RecordScanner()
    assert scanner.feed(b'"a"\n"b","c"') == [(b'"a"', 4)]
    assert scanner.finish() == [(b'"b","c"', 11)]
    broken = RecordScanner()
    broken.feed(b'"a\n')
    with pytest.raises(ResultFormatError, match="unterminated quoted field"):
        broken.finish()


@pytest.mark.parametrize(
    ("record", "fields"),
    [
        (b'"a","b"', ["a", "b"]),
        (b",,", [None, None, None]),
        (b'"",""', ["", ""]),
        (b'"x""y",z', ['x"y', "z"]),
    ],
)
def test_fields(record, fields):
    assert parse_record(record) == fields


def test_garbage_after_a_quoted_field():
    with pytest.raises(ResultFormatError, match="unexpected 'x' after field 1"):
        parse_record(b'"a"x,"b"')


# ------------------------------------------------------------------ aggregation and spread


def four_shards(aws):
    """The stack's stream again, with four shards (its name, so the role's grant applies)."""
    aws.kinesis.delete_stream(StreamName="ops")
    aws.kinesis.create_stream(StreamName="ops", ShardCount=4)
    return {
        s["ShardId"]: (
            int(s["HashKeyRange"]["StartingHashKey"]),
            int(s["HashKeyRange"]["EndingHashKey"]),
        )
        for s in aws.kinesis.list_shards(StreamName="ops")["Shards"]
    }


def shard_records(aws, shard_id):
    iterator = aws.kinesis.get_shard_iterator(
        StreamName="ops", ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return aws.kinesis.get_records(ShardIterator=iterator, Limit=10000)["Records"]


def test_ops_are_aggregated_and_spread_evenly_over_every_shard(aws, monkeypatch):
    monkeypatch.setenv("SNAPCDC_PUBLISH_RECORD_BYTES", str(16 * 1024))
    shards = four_shards(aws)
    put_result(aws, generated_result(2000))

    [page] = publish_all(aws)

    per_shard = {s: shard_records(aws, s) for s in shards}
    counts = [len(records) for records in per_shard.values()]
    assert max(counts) - min(counts) <= 1  # the shards taken in turn
    assert sum(counts) == page["kinesis_records"] < 2000 / 40  # many ops to a record
    ops = []
    for shard, records in per_shard.items():
        low, high = shards[shard]
        for record in records:
            users = deaggregate(record["Data"])
            assert len(record["Data"]) + len(record["PartitionKey"]) <= 16 * 1024
            assert record["PartitionKey"] == users[0][0]
            for pk, data in users:
                op = json.loads(data)
                assert pk == f"tenant/test_table|{op['key']['PK']}"  # the row's own key
                ops.append(op["key"]["PK"])
        # each record's explicit hash key lies in the shard it went to (the KCL checks)
        assert all(low <= int(r.get("ExplicitHashKey", low)) <= high for r in records)
    assert sorted(ops) == [f"PK{i:06d}" for i in range(2000)]
    assert (page["records"], page["inserts"], page["updates"], page["deletes"]) == (
        2000,
        667,
        667,
        666,
    )


def test_records_fill_up_to_the_1_mib_limit_with_the_partition_key_counted(aws, monkeypatch):
    monkeypatch.setenv("SNAPCDC_PUBLISH_RECORD_BYTES", str(1024 * 1024))
    put_result(aws, generated_result(3000, width=1000))

    [page] = publish_all(aws)

    records = aws.stream_records()
    sizes = [len(r["Data"]) + len(r["PartitionKey"].encode()) for r in records]
    assert all(size <= 1024 * 1024 for size in sizes)
    assert max(sizes) > 1024 * 1024 - 2000  # full but for less than one op
    assert page["records"] == len(published(aws)) == 3000


def test_refused_aggregated_records_go_with_the_next_page_exactly_once(aws, monkeypatch):
    monkeypatch.setenv("SNAPCDC_PUBLISH_RECORD_BYTES", "2000")  # a few ops a record
    failures = PartialFailures(fail_calls=3).install()
    body = generated_result(60)
    put_result(aws, body)

    pages = publish_all(aws, remaining_ms=1_000)  # below the reserve: no time to wait

    assert len(failures.requests) == 4 and [p["done"] for p in pages] == [False] * 3 + [True]
    first = pages[0]
    # what Kinesis took is kept as ranges of ops, whole records at a time
    assert first["sent"] and all(isinstance(r, list) and len(r) == 2 for r in first["sent"])
    assert first["records"] == 0 and 0 < published_ops(PublishProgress.from_dict(first)) < 60
    keys = [op["key"]["PK"] for op in published(aws)]
    assert sorted(keys) == [f"PK{i:06d}" for i in range(60)]  # each op exactly once
    last = pages[-1]
    assert (last["records"], last["inserts"], last["updates"], last["deletes"]) == (60, 20, 20, 20)
    assert last["cursor"] == len(body) and last["sent"] == []
    assert last["kinesis_records"] == len(aws.stream_records())


def test_the_refused_records_wait_for_their_shard_to_refill():
    # 3 MiB refused on one shard: a full second (all a shard holds), not a 0.1 s retry loop
    sizes = [1024 * 1024] * 4
    assert 0.75 <= retry_delay(0, [1, 2, 3], sizes, ["a"] * 4) <= 1.0
    # the same spread over three shards: each needs a third of that
    assert retry_delay(0, [1, 2, 3], [350_000] * 4, ["a", "a", "b", "c"]) <= 0.34
    # nothing taken for a while: backoff takes over
    assert retry_delay(5, [0], [100], ["a"]) >= 2.4
