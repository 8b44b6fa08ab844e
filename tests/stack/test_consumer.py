"""Consumer: ops from a real (moto) Kinesis stream applied to the target table, idempotently."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from snapcdc.aws.aggregation import Aggregate, deaggregate
from snapcdc.steps.consumer import read_items, read_rows

DATA = Path(__file__).parent / "data"
TABLE_ID = "tenant/test_table"


# what RunQueries hands Publish for the ops statement
OPS_STATUS = {"name": "delta", "kind": "ops", "query_id": "q2",
              "output_location": "s3://results/athena/ops.csv"}  # fmt: skip


def op(kind, version, pk, **values):
    row = {"PK": pk, "COL_1": None, "COL_2": None, "COL_3": None, **values}
    return {
        "op": kind,
        "tenant": "tenant",
        "table": "test_table",
        "table_id": TABLE_ID,
        "version": version,
        "key": {"PK": pk},
        "row": row,
        "source": f"tenant/test_table/{version}/export.csv.gz",
    }


def through_stream(aws, payloads: list[bytes]) -> dict:
    """Put ``payloads`` on the stream, read them back, wrap them as Lambda's Kinesis event."""
    aws.kinesis.put_records(
        StreamName="ops", Records=[{"Data": p, "PartitionKey": "pk"} for p in payloads]
    )
    records = aws.stream_records()[-len(payloads) :]
    return lambda_event(records, "shardId-000000000000")


def lambda_event(records, shard_id):
    """Kinesis records as Lambda's event source mapping delivers them from ``shard_id``."""
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r["PartitionKey"],
                    "sequenceNumber": r["SequenceNumber"],
                    "data": base64.b64encode(r["Data"]).decode(),
                    "approximateArrivalTimestamp": r["ApproximateArrivalTimestamp"].timestamp(),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{shard_id}:{r['SequenceNumber']}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/consumer",
                "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/ops",
            }
            for r in records
        ]
    }


def consume(aws, *ops):
    event = through_stream(aws, [json.dumps(o).encode() for o in ops])
    return aws.invoke("consumer", event)


def rows(aws):
    return {r["PK"]: r for r in read_rows("target", TABLE_ID)}


def test_insert_update_delete(aws):
    consume(aws, op("INSERT", "v1", "PK1", COL_1="a"), op("INSERT", "v1", "PK2", COL_1="b"))
    response = consume(
        aws,
        op("UPDATE", "v2", "PK1", COL_1="a2"),
        op("DELETE", "v2", "PK2", COL_1="b"),
        op("INSERT", "v2", "PK3", COL_1="c"),
    )

    assert response == {"batchItemFailures": []}
    assert {pk: r["COL_1"] for pk, r in rows(aws).items()} == {"PK1": "a2", "PK3": "c"}
    tombstone = next(i for i in read_items("target", TABLE_ID) if i["row_key"] == "PK2")
    assert tombstone["deleted"] is True and tombstone["version"] == "v2"
    assert tombstone["pk"] == "tenant/test_table#PK2"


def test_an_older_op_replayed_after_a_newer_one_changes_nothing(aws):
    consume(aws, op("UPDATE", "v2", "PK1", COL_1="new"))

    response = consume(aws, op("INSERT", "v1", "PK1", COL_1="old"))

    assert response == {"batchItemFailures": []}  # stale, skipped, not an error
    assert rows(aws)["PK1"]["COL_1"] == "new"


def test_tombstone_keeps_an_older_insert_from_resurrecting_the_row(aws):
    consume(aws, op("INSERT", "v1", "PK1", COL_1="a"), op("DELETE", "v2", "PK1", COL_1="a"))

    consume(aws, op("INSERT", "v1", "PK1", COL_1="a"))
    assert rows(aws) == {}

    consume(aws, op("INSERT", "v3", "PK1", COL_1="back"))
    assert rows(aws)["PK1"]["COL_1"] == "back"


def test_replaying_a_whole_batch_is_idempotent(aws):
    ops = [op("INSERT", "v1", f"PK{i}", COL_1=str(i)) for i in range(5)]
    consume(aws, *ops)
    before = rows(aws)

    consume(aws, *ops)

    assert rows(aws) == before


def test_poison_record_is_reported_and_the_others_applied(aws):
    event = through_stream(
        aws,
        [
            json.dumps(op("INSERT", "v1", "PK1")).encode(),
            b"{not json",
            json.dumps({**op("INSERT", "v1", "PK3"), "op": "MERGE"}).encode(),
            json.dumps(op("INSERT", "v1", "PK4")).encode(),
        ],
    )

    response = aws.invoke("consumer", event)

    poison = [r["kinesis"]["sequenceNumber"] for r in event["Records"][1:3]]
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == poison
    assert sorted(rows(aws)) == ["PK1", "PK4"]


def test_a_batch_of_poison_only_fails_the_invocation(aws):
    event = through_stream(aws, [b"[]", b"null"])

    with pytest.raises(BatchProcessingError):
        aws.invoke("consumer", event)


def test_published_ops_applied_end_to_end(aws):
    """Publish's records, taken from the stream as they are, give the expected target rows."""
    aws.s3.put_object(
        Bucket="results", Key="athena/ops.csv", Body=(DATA / "ops_result.csv").read_bytes()
    )
    upload = {
        "tenant": "tenant",
        "table": "test_table",
        "table_id": TABLE_ID,
        "version": "20201230_V0002",
        "key": "tenant/test_table/20201230_V0002/export2.csv.gz",
        "sequencer": "0062E99A88DC407460",
        "sk": "upload#tenant/test_table/20201230_V0002/export2.csv.gz#0062E99A88DC407460",
    }
    aws.invoke(
        "publish",
        {
            "upload": upload,
            "schema": {"columns": ["PK", "COL_1", "COL_2", "COL_3"], "key": ["PK"]},
            "queries": [OPS_STATUS],
            "progress": {},
        },
    )
    published = [r["Data"] for r in aws.stream_records()]

    consume_raw = through_stream(aws, published)
    aws.invoke("consumer", consume_raw)

    expected = [
        o["row"]
        for o in json.loads((DATA / "ops_expected.json").read_text())
        if o["op"] != "DELETE"
    ]
    assert read_rows("target", TABLE_ID) == expected


def counters(aws, sk):
    item = aws.dynamodb.get_item(
        TableName="registry", Key={"table_id": {"S": TABLE_ID}, "sk": {"S": sk}}
    )["Item"]
    return {
        name: int(item[name]["N"]) for name in ("published", "applied", "stale") if name in item
    }


def test_the_consumer_counts_each_op_once_on_its_upload_record_and_a_redelivery_as_stale(aws):
    """published (Publish), applied and stale (the consumer, atomic ADD) on the upload's record;
    the same records delivered again change no row and count as stale, not applied twice."""
    aws.s3.put_object(
        Bucket="results", Key="athena/ops.csv", Body=(DATA / "ops_result.csv").read_bytes()
    )
    key = "tenant/test_table/20201230_V0002/export2.csv.gz"
    upload = {"tenant": "tenant", "table": "test_table", "table_id": TABLE_ID,
              "version": "20201230_V0002", "key": key, "sequencer": "0A",
              "sk": f"upload#{key}#0A"}  # fmt: skip
    aws.dynamodb.put_item(
        TableName="registry", Item={"table_id": {"S": TABLE_ID}, "sk": {"S": upload["sk"]}}
    )
    aws.invoke(
        "publish",
        {
            "upload": upload,
            "schema": {"columns": ["PK", "COL_1", "COL_2", "COL_3"], "key": ["PK"]},
            "queries": [OPS_STATUS],
            "progress": {},
        },
    )
    records = [r["Data"] for r in aws.stream_records()]  # aggregated: one record of n ops
    ops = [json.loads(data) for r in records for _, data in deaggregate(r)]
    n = len(ops)
    assert len(records) == 1 and n == 4
    assert counters(aws, upload["sk"]) == {"published": n}
    aws.invoke("consumer", through_stream(aws, records))
    assert counters(aws, upload["sk"]) == {"published": n, "applied": n, "stale": 0}
    before = read_items("target", TABLE_ID)
    aws.invoke("consumer", through_stream(aws, records))  # redelivered
    assert counters(aws, upload["sk"]) == {"published": n, "applied": n, "stale": n}
    assert read_items("target", TABLE_ID) == before
    # a re-upload of the same version (another sequencer) is applied again, not stale
    # (sent as plain records, one op each: the consumer takes both kinds)
    again = [json.dumps({**o, "sequencer": "0B"}).encode() for o in ops]
    aws.dynamodb.put_item(
        TableName="registry", Item={"table_id": {"S": TABLE_ID}, "sk": {"S": f"upload#{key}#0B"}}
    )
    aws.invoke("consumer", through_stream(aws, again))
    assert counters(aws, f"upload#{key}#0B") == {"applied": n, "stale": 0}


@pytest.mark.parametrize("workers", ["1", "16"])
def test_one_row_changed_twice_in_one_batch_ends_at_the_newer_version(aws, monkeypatch, workers):
    monkeypatch.setenv("SNAPCDC_CONSUMER_WORKERS", workers)
    batch = []
    for i in range(40):  # every row: v2's op arrives before v1's (a replay after a retry)
        batch += [
            op("UPDATE", "v2", f"PK{i}", COL_1="new"),
            op("INSERT", "v1", f"PK{i}", COL_1="old"),
        ]
    batch += [op("DELETE", "v3", "PK0"), op("INSERT", "v1", "PK0", COL_1="old")]

    response = consume(aws, *batch)

    assert response == {"batchItemFailures": []}
    current = rows(aws)
    assert sorted(current) == sorted(f"PK{i}" for i in range(1, 40))
    assert {r["COL_1"] for r in current.values()} == {"new"}


@pytest.mark.parametrize("workers", [None, "40"])
def test_the_clients_keep_a_connection_for_every_consumer_thread(aws, monkeypatch, workers):
    """botocore pools 10 connections per client by default; the consumer writes from
    ``consumer_workers`` threads through one DynamoDB client (audit row 11)."""
    from snapcdc.aws import clients as snapcdc_aws
    from snapcdc.model.settings import Settings

    if workers:
        monkeypatch.setenv("SNAPCDC_CONSUMER_WORKERS", workers)
    snapcdc_aws.reset_clients()
    wanted = Settings.from_env().consumer_workers
    assert wanted == int(workers or 16)
    dynamodb = snapcdc_aws.client("dynamodb")
    assert dynamodb.meta.config.max_pool_connections >= wanted
    snapcdc_aws.reset_clients()


# ------------------------------------------------------------------ aggregated records


def aggregated(ops, hash_key="1"):
    agg = Aggregate(limit=1024 * 1024, hash_key=hash_key)
    for o in ops:
        assert agg.add(f"{TABLE_ID}|{o['key']['PK']}", json.dumps(o).encode())
    return agg.entry()["Data"]


def test_an_aggregated_record_with_a_bad_op_is_reported_whole_and_the_others_applied(aws):
    good = aggregated([op("INSERT", "v1", "PK1"), op("INSERT", "v1", "PK2")])
    bad = aggregated([op("INSERT", "v1", "PK3"), {**op("INSERT", "v1", "PK4"), "op": "MERGE"}])
    corrupt = aggregated([op("INSERT", "v1", "PK5")])[:-1] + b"\x00"  # digest no longer matches
    plain = json.dumps(op("INSERT", "v1", "PK6")).encode()
    event = through_stream(aws, [good, bad, corrupt, plain])

    response = aws.invoke("consumer", event)

    failed = [r["kinesis"]["sequenceNumber"] for r in event["Records"][1:3]]
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == failed
    # PK3 was written too: redelivered with its record, it is then stale (counted once)
    assert sorted(rows(aws)) == ["PK1", "PK2", "PK3", "PK6"]


@pytest.mark.parametrize("workers", ["1", "16"])
def test_two_versions_in_two_aggregated_records_of_one_batch_end_at_the_newer(
    aws, monkeypatch, workers
):
    monkeypatch.setenv("SNAPCDC_CONSUMER_WORKERS", workers)
    newer = aggregated([op("UPDATE", "v2", f"PK{i}", COL_1="new") for i in range(60)])
    older = aggregated([op("INSERT", "v1", f"PK{i}", COL_1="old") for i in range(60)])

    response = aws.invoke("consumer", through_stream(aws, [newer, older]))

    assert response == {"batchItemFailures": []}
    assert {r["COL_1"] for r in rows(aws).values()} == {"new"}
    assert len(rows(aws)) == 60


def publish_version(aws, version, body, sequencer):
    key = f"tenant/test_table/{version}/export.csv.gz"
    aws.s3.put_object(Bucket="results", Key=f"athena/{version}.csv", Body=body)
    upload = {"tenant": "tenant", "table": "test_table", "table_id": TABLE_ID,
              "version": version, "key": key, "sequencer": sequencer,
              "sk": f"upload#{key}#{sequencer}"}  # fmt: skip
    progress = {}
    while not progress.get("done"):
        progress = aws.invoke(
            "publish",
            {
                "upload": upload,
                "schema": {"columns": ["PK", "COL_1", "COL_2", "COL_3"], "key": ["PK"]},
                "queries": [
                    {
                        "name": "delta",
                        "kind": "ops",
                        "query_id": f"q-{version}",
                        "output_location": f"s3://results/athena/{version}.csv",
                    }
                ],
                "progress": progress,
            },
        )


@pytest.mark.parametrize("order", [1, -1])
def test_a_rows_versions_on_different_shards_converge_in_any_shard_order(aws, monkeypatch, order):
    """Publish spreads records over every shard regardless of the rows' keys, so V1's and V2's
    ops for one row land on different shards, and each shard's consumer runs on its own: the
    version condition of every write, not the shard order, makes V2 win."""
    monkeypatch.setenv("SNAPCDC_PUBLISH_RECORD_BYTES", "4096")
    aws.kinesis.delete_stream(StreamName="ops")
    aws.kinesis.create_stream(StreamName="ops", ShardCount=4)
    header = '"op","pk","col_1","col_2","col_3"\n'
    v1 = header + "".join(f'"INSERT","PK{i}","v1",,\n' for i in range(200))
    v2 = header + "".join(f'"UPDATE","PK{i}","v2",,\n' for i in range(0, 200, 2))
    v2 += "".join(f'"DELETE","PK{i}","v1",,\n' for i in range(1, 200, 4))
    publish_version(aws, "V1", v1.encode(), "0A")
    publish_version(aws, "V2", v2.encode(), "0B")
    shards = [s["ShardId"] for s in aws.kinesis.list_shards(StreamName="ops")["Shards"]]
    by_shard = {}
    for shard in shards:
        iterator = aws.kinesis.get_shard_iterator(
            StreamName="ops", ShardId=shard, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        by_shard[shard] = aws.kinesis.get_records(ShardIterator=iterator, Limit=10000)["Records"]
    where = {}  # (row, version) -> shard
    for shard, records in by_shard.items():
        for r in records:
            for _, data in deaggregate(r["Data"]):
                o = json.loads(data)
                where[(o["key"]["PK"], o["version"])] = shard
    apart = [i for i in range(0, 200, 2) if where[(f"PK{i}", "V1")] != where[(f"PK{i}", "V2")]]
    assert len(apart) > 50  # most rows' two versions are on different shards

    for shard in shards[::order]:  # each shard's batches in turn, in either shard order
        response = aws.invoke("consumer", lambda_event(by_shard[shard], shard))
        assert response == {"batchItemFailures": []}

    expected = {f"PK{i}": "v2" if i % 2 == 0 else "v1" for i in range(200) if i % 4 != 1}
    assert {pk: r["COL_1"] for pk, r in rows(aws).items()} == expected
