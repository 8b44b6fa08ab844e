"""Versions that fail their checks, keys that break the contract, re-uploads: the real stack.

Table ``acme/items`` (headerless, ``;``, key ``id``) receives, in this order: a good first
load, a version with duplicate keys, one with an empty key, one with a ragged row, one that is
not gzip, a good second version, a key with an invalid table name, then re-uploads of the two
good versions. The expected outcome of every upload is in ``expected/failures_report.json``.
"""

from __future__ import annotations

import importlib
import json

import pytest
from datasets import HERE, assert_every_op_applied, read_dump, write_config, write_export, write_raw

from snapcdc.aws.aggregation import deaggregate

COLUMNS = ["id", "name", "qty"]
V1 = [["1", "apple", "3"], ["2", "pear", "5"], ["3", "plum", ""], ["4", "fig", "1"]]
V6 = [["1", "apple", "3"], ["2", "pear", "6"], ["4", "fig", "1"], ["5", "kiwi", "9"]]
SEQUENCE = [
    "acme/items/V001/part-0.csv.gz",
    "acme/items/V002/part-0.csv.gz",
    "acme/items/V003/part-0.csv.gz",
    "acme/items/V004/part-0.csv.gz",
    "acme/items/V005/part-0.csv.gz",
    "acme/items/V006/part-0.csv.gz",
    "acme/Items/V007/part-0.csv.gz",
    "acme/items/V001/part-0.csv.gz",
    "acme/items/V006/part-0.csv.gz",
]


def build(data):
    write_config(
        data,
        "acme",
        "items",
        {"columns": COLUMNS, "key": ["id"], "delimiter": ";", "header": False},
    )
    write_export(data, "acme/items/V001/part-0.csv.gz", V1)
    write_export(data, "acme/items/V002/part-0.csv.gz", V1 + [["2", "pear again", "7"]])
    write_export(data, "acme/items/V003/part-0.csv.gz", V1 + [["", "nameless", "0"]])
    write_export(data, "acme/items/V004/part-0.csv.gz", V1 + [["9", "extra", "1", "surplus"]])
    write_raw(data, "acme/items/V005/part-0.csv.gz", b"1;apple;3\n2;pear;5\n")  # not gzip
    write_export(data, "acme/items/V006/part-0.csv.gz", V6)
    write_export(data, "acme/Items/V007/part-0.csv.gz", V1)
    (data / "sequence.txt").write_text("# upload order\n" + "\n".join(SEQUENCE) + "\n")


@pytest.fixture(scope="module")
def failures(tmp_path_factory):
    from snapcdc_local.cli.run import RunOptions, run_pipeline

    data = tmp_path_factory.mktemp("data")
    build(data)
    out = tmp_path_factory.mktemp("out")
    seen = {}

    def after_upload(upload):
        aws = seen["aws"]
        applying = importlib.import_module("snapcdc.steps.consumer")
        rows = applying.read_rows(aws.stack.outputs["TargetTableName"], "acme/items")
        seen.setdefault("targets", []).append(sorted([row[c] for c in COLUMNS] for row in rows))
        locks = aws.client("dynamodb").scan(TableName=aws.stack.outputs["LockTableName"])["Items"]
        seen.setdefault("locks", []).append(locks)
        seen["published"] = published_versions(aws)  # the emulator is gone after the run

    result = run_pipeline(
        RunOptions(data_dir=data, sequence=data / "sequence.txt"),
        on_upload=after_upload,
        emulator_hook=lambda aws: seen.update(aws=aws),
        dump_target=out,
    )
    return result, seen, out


def published_versions(aws):
    """How many op records each version put on the stream."""
    kinesis = aws.client("kinesis")
    stream = aws.stack.outputs["StreamName"]
    counts: dict[str, int] = {}
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records = kinesis.get_records(ShardIterator=iterator, Limit=10000)["Records"]
        for record in records:
            for _, data in deaggregate(record["Data"]) or [("", record["Data"])]:
                version = json.loads(data)["version"]
                counts[version] = counts.get(version, 0) + 1  # ops, many to a record
    return counts


def test_every_upload_ends_as_expected(failures):
    result, _, _ = failures
    expected = json.loads((HERE / "expected" / "failures_report.json").read_text())["versions"]
    actual = [u.report() for u in result.uploads]
    assert_every_op_applied(actual)
    assert [(a["key"], a["status"]) for a in actual] == [(e["key"], e["status"]) for e in expected]
    for got, want in zip(actual, expected, strict=True):
        counts = {k: got[k] for k in ("inserts", "updates", "deletes")}
        assert counts == {k: want[k] for k in counts}, got["key"]
        if want["error_contains"] is None:
            assert got["error"] is None, got
        else:
            for fragment in want["error_contains"]:
                assert fragment in (got["error"] or ""), (got["key"], got["error"])


def test_failed_versions_publish_nothing_and_release_the_lock(failures):
    _, seen, _ = failures
    assert seen["published"] == {"V001": 4, "V006": 3}  # V006: 1 insert, 1 update, 1 delete
    assert all(locks == [] for locks in seen["locks"])


def test_the_target_follows_the_good_versions_only(failures):
    _, seen, out = failures
    v1, v6 = sorted(V1), sorted(V6)
    assert seen["targets"] == [v1, v1, v1, v1, v1, v6, v6, v6, v6]
    assert read_dump(out / "acme" / "items.csv") == [COLUMNS, *v6]
    assert not (out / "acme" / "Items.csv").exists()


def test_the_summary_counts_each_table(failures):
    result, _, _ = failures
    assert result.tables["acme/items"] == {
        "SUCCEEDED": 2,
        "SKIPPED": 2,
        "FAILED": 4,
        "version": "V006",
        "rows": 4,
    }
    assert result.tables["acme/Items"]["FAILED"] == 1
