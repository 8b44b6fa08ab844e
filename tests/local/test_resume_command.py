"""``snapcdc approve`` / ``snapcdc reject`` against a deployed stack (the emulation's, found by
``--stack`` as against AWS), and the state machine refusing to resume what is not HELD."""

from __future__ import annotations

import json

import pytest
from datasets import local_stack, write_export

HEADER = ["id", "name"]
V1 = [["1", "a"], ["2", "b"], ["3", "c"], ["4", "d"]]
V2 = [["1", "a2"]]  # 3 of 4 rows deleted: HELD


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    for table in ("approved", "rejected", "expired"):
        for version, rows in (("V1", V1), ("V2", V2)):
            write_export(
                data, f"acme/{table}/{version}/a.csv.gz", rows, delimiter=",", header=HEADER
            )
    with local_stack(data) as stack:
        yield stack


def upload(stack, table):
    from snapcdc_local.cli.run_driver import drive

    _, run = stack
    return drive(run, [f"acme/{table}/V1/a.csv.gz", f"acme/{table}/V2/a.csv.gz"], timeout=120)


def target(stack, table):
    _, run = stack
    rows = run.applying.read_rows(run.outputs["TargetTableName"], f"acme/{table}")
    return sorted([r["id"], r["name"]] for r in rows)


def record(stack, table, key):
    _, run = stack
    [found] = run.registry.list_uploads(
        f"acme/{table}", key=key, table_name=run.outputs["RegistryTableName"]
    )
    return found


def cli(stack, *args):
    from snapcdc_local.cli.main import main

    aws, _ = stack
    code = main([*args, "--stack", aws.stack_name, "--poll", "0.2"])
    aws.settle(timeout=120)
    return code


def test_approve_publishes_the_held_ops(stack, capsys):
    key = "acme/approved/V2/a.csv.gz"
    v1, v2 = upload(stack, "approved")
    assert (v1.status, v2.status, v2.deletes) == ("SUCCEEDED", "HELD", 3)
    assert target(stack, "approved") == V1
    assert cli(stack, "approve", key) == 0
    assert f"{key}: SUCCEEDED inserts=0 updates=1 deletes=3" in capsys.readouterr().out
    assert target(stack, "approved") == V2
    done = record(stack, "approved", key)
    assert done["status"] == "SUCCEEDED" and done["hold_reason"].startswith("would delete 3 of 4")
    _, run = stack
    head = run.registry.get_head("acme/approved", table_name=run.outputs["RegistryTableName"])
    assert (head["last_applied_version"], head["rows"]) == ("V2", 1)
    # approving again: nothing is HELD any more
    assert cli(stack, "approve", key) == 1
    assert "is not HELD (its upload is SUCCEEDED)" in capsys.readouterr().err


def test_reject_ends_it_and_the_state_machine_refuses_a_late_approve(stack, capsys):
    aws, run = stack
    key = "acme/rejected/V2/a.csv.gz"
    upload(stack, "rejected")
    assert cli(stack, "reject", key) == 0
    assert f"{key}: REJECTED" in capsys.readouterr().out
    held = record(stack, "rejected", key)
    assert held["status"] == "REJECTED"
    # an approve racing the reject (started before the CLI's own check could see it):
    sfn = aws.client("stepfunctions")
    ref = {"table_id": held["table_id"], "sk": held["sk"]}
    arn = sfn.start_execution(
        stateMachineArn=run.outputs["StateMachineArn"],
        input=json.dumps({"resume": {"action": "approve", **ref}, "upload": ref}),
    )["executionArn"]
    aws.settle(timeout=120)
    described = sfn.describe_execution(executionArn=arn)
    assert (described["status"], described["error"]) == ("FAILED", "ResumeRefused")
    assert "is REJECTED, not HELD" in described["cause"]
    assert record(stack, "rejected", key)["status"] == "REJECTED"
    assert target(stack, "rejected") == V1
    locks = aws.client("dynamodb").scan(TableName=run.outputs["LockTableName"])["Items"]
    assert locks == []


def test_a_key_that_was_never_uploaded_is_refused(stack, capsys):
    assert cli(stack, "approve", "acme/approved/V9/a.csv.gz") == 1
    assert "no upload of acme/approved/V9/a.csv.gz is registered" in capsys.readouterr().err


def test_approving_after_the_ops_result_expired_fails_saying_so(stack, capsys):
    aws, run = stack
    key = "acme/expired/V2/a.csv.gz"
    upload(stack, "expired")
    held = json.loads(record(stack, "expired", key)["held"])
    [ops] = [q for q in held["queries"] if q["kind"] == "ops"]
    bucket, _, path = ops["output_location"].removeprefix("s3://").partition("/")
    aws.client("s3").delete_object(Bucket=bucket, Key=path)  # as the lifecycle rule does
    assert cli(stack, "approve", key) == 1
    assert f"{key}: FAILED" in capsys.readouterr().out
    failed = record(stack, "expired", key)
    assert failed["error"].startswith(
        f"HeldOpsExpired: the held version's ops result s3://{bucket}"
    )
    assert "upload the version again" in failed["error"]
    assert target(stack, "expired") == V1
    assert aws.client("dynamodb").scan(TableName=run.outputs["LockTableName"])["Items"] == []
