"""All or nothing per version: a version stopped after publishing began, and the next version.

On one deployed stack (real handlers, the real state machine, cfn.yaml's rules), Publish sends
two ops per page (``SNAPCDC_PUBLISH_MAX_RECORDS``) and its second page is held while the test
stops the execution (StopExecution), so part of the version's ops reached the target. The
upload is FAILED by ExecutionEnded, which marks the table diverged; the table's next version
is planned as a reconverge and the target ends equal to it, whatever part of the stopped
version landed: for a delta (the next export equal to the last applied one, which a delta
would turn into 0 ops) and for a first load.
"""

from __future__ import annotations

import pytest
from datasets import Held, local_stack, write_config, write_export

V1 = [[str(i), f"name {i}", str(i)] for i in range(1, 7)]
V2 = [[str(i), f"renamed {i}", str(i * 10)] for i in range(1, 6)] + [
    ["7", "n7", "7"],
    ["8", "", "8"],
]
TABLES = ("stopped", "firstload")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    for table in TABLES:
        write_config(data, "acme", table, {"columns": ["id", "name", "qty"], "header": False})
    write_export(data, "acme/stopped/V1/a.csv.gz", V1, delimiter=",")
    write_export(data, "acme/stopped/V2/a.csv.gz", V2, delimiter=",")
    write_export(data, "acme/stopped/V3/a.csv.gz", V1, delimiter=",")  # equal to V1
    write_export(data, "acme/firstload/V1/a.csv.gz", V1, delimiter=",")
    write_export(data, "acme/firstload/V2/a.csv.gz", V2[3:], delimiter=",")
    with local_stack(data) as stack:
        yield stack


@pytest.fixture
def two_ops_per_page(monkeypatch):
    monkeypatch.setenv("SNAPCDC_PUBLISH_MAX_RECORDS", "2")


def second_page_held(aws, table_id, version):
    """Publish of one table's version runs its first page, then blocks on the second until
    released, and is then lost (as a Lambda whose execution was stopped: nothing waits for it)."""

    def second_page(event):
        upload = event["upload"]
        return (upload["table_id"], upload["version"]) == (table_id, version) and bool(
            (event.get("progress") or {}).get("calls")
        )

    return Held(aws, "PublishFunction", second_page, lost=lambda event: event["progress"])


def running_execution(aws, prefix):
    from snapcdc_local.emulator.stepfunctions import list_all_executions

    [execution] = [
        e
        for e in list_all_executions(aws.client("stepfunctions"))
        if e["status"] == "RUNNING" and e["name"].startswith(prefix)
    ]
    return execution["executionArn"]


def upload_and_finish(run, key):
    upload = run.put(key)
    run.settle(120)
    return run.resolve(upload)


def rows_of(run, table_id):
    rows = run.applying.read_rows(run.outputs["TargetTableName"], table_id)
    return sorted([r["id"], r["name"], r["qty"]] for r in rows)


def head_of(run, table_id):
    return run.registry.get_head(table_id, table_name=run.outputs["RegistryTableName"])


def stop_mid_publish(stack, table, version):
    aws, run = stack
    with second_page_held(aws, f"acme/{table}", version) as publish:
        upload = run.put(f"acme/{table}/{version}/a.csv.gz")
        assert publish.entered.wait(60)
        arn = running_execution(aws, f"acme-{table}-{version}-")
        aws.client("stepfunctions").stop_execution(
            executionArn=arn, error="Operator", cause="stopped mid-publish"
        )
        publish.released.set()
        run.settle(120)
        result = run.resolve(upload)
    assert result.status == "FAILED" and result.error.endswith("stopped mid-publish")
    run.read_counts(result)
    assert result.published == 2  # the first page's records, recorded by Publish
    return result


def test_the_version_after_one_stopped_mid_publish_reconverges_the_target(stack, two_ops_per_page):
    aws, run = stack
    run.put("acme/stopped/_table.json")
    first = upload_and_finish(run, "acme/stopped/V1/a.csv.gz")
    assert (first.status, first.inserts) == ("SUCCEEDED", 6)

    stop_mid_publish(stack, "stopped", "V2")
    landed = rows_of(run, "acme/stopped")
    assert landed != sorted(V1) and landed != sorted(V2)  # part of V2's ops were applied
    [diverged] = head_of(run, "acme/stopped")["diverged"]
    assert diverged["version"] == "V2"
    assert diverged["files"] == [f"s3://{run.outputs['ImportBucketName']}/acme/stopped/V2/a.csv.gz"]

    third = upload_and_finish(run, "acme/stopped/V3/a.csv.gz")  # the same rows as V1
    assert (third.status, third.error) == ("SUCCEEDED", None)
    # a delta against V1 would be 0 ops; the reconverge writes every row, deletes 7 and 8
    assert (third.inserts, third.updates, third.deletes) == (0, 6, 2)
    run.read_counts(third)
    assert (third.published, third.applied, third.stale) == (8, 8, 0)
    assert rows_of(run, "acme/stopped") == sorted(V1)
    head = head_of(run, "acme/stopped")
    assert (head["last_applied_version"], head["diverged"]) == ("V3", [])


def test_a_first_load_stopped_mid_publish_is_undone_by_the_next_version(stack, two_ops_per_page):
    aws, run = stack
    run.put("acme/firstload/_table.json")
    stop_mid_publish(stack, "firstload", "V1")
    assert len(rows_of(run, "acme/firstload")) == 2
    head = head_of(run, "acme/firstload")
    assert "last_applied_version" not in head and head["diverged"][0]["version"] == "V1"

    second = upload_and_finish(run, "acme/firstload/V2/a.csv.gz")
    assert (second.status, second.error) == ("SUCCEEDED", None)
    assert rows_of(run, "acme/firstload") == sorted(V2[3:])
    # every V1 key that V2 lacks is deleted, whether or not it had landed
    assert (second.inserts, second.updates, second.deletes) == (4, 0, 4)
