"""Runs that end where the state machine's Catch cannot see them, and Athena throttling.

On one deployed stack (real handlers, the real state machine, cfn.yaml's rules):

- an execution aborted (StopExecution) or timed out mid-Publish: Step Functions' status-change
  event reaches ExecutionEndedFunction through the stack's rule, the upload is FAILED with the
  reason, the lock is released, and the next version of the table runs at once;
- Athena refusing StartQueryExecution (its active-query quota) is retried by the state machine
  and the version still succeeds.

A few rows per table: the point is the control flow.
"""

from __future__ import annotations

import json
import time

import pytest
from datasets import Held, local_stack, write_config, write_export

V1 = [[str(i), f"name {i}", str(i)] for i in range(1, 5)]
V2 = [[str(i), f"renamed {i}", str(i * 10)] for i in range(1, 5)]
TABLES = ("aborted", "timedout", "throttled", "unpermitted")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    for table in TABLES:
        write_config(data, "acme", table, {"columns": ["id", "name", "qty"], "header": False})
        write_export(data, f"acme/{table}/V1/a.csv.gz", V1, delimiter=",")
        write_export(data, f"acme/{table}/V2/a.csv.gz", V2, delimiter=",")
    with local_stack(data) as stack:
        yield stack


def held_publish(aws, table):
    """Publish of one table blocks until released (the Lambda keeps running, as in AWS)."""
    return Held(aws, "PublishFunction", lambda e: e["upload"]["table_id"] == f"acme/{table}")


def running_execution(aws, table):
    from snapcdc_local.emulator.stepfunctions import list_all_executions

    sfn = aws.client("stepfunctions")
    [execution] = [
        e
        for e in list_all_executions(sfn)
        if e["status"] == "RUNNING" and e["name"].startswith(f"acme-{table}-V1-")
    ]
    return execution["executionArn"]


def lock_of(aws, table):
    return (
        aws.client("dynamodb")
        .get_item(
            TableName=aws.stack.outputs["LockTableName"], Key={"lock_id": {"S": f"acme/{table}"}}
        )
        .get("Item")
    )


def start(stack, table, version):
    _, run = stack
    run.put(f"acme/{table}/_table.json")
    upload = run.put(f"acme/{table}/{version}/a.csv.gz")
    assert upload is not None and upload.executions
    return upload


def finish(stack, upload):
    _, run = stack
    run.settle(120)
    return run.resolve(upload)


def then_the_next_version_runs(stack, table):
    _, run = stack
    result = finish(stack, start(stack, table, "V2"))
    assert (result.status, result.inserts, result.error) == ("SUCCEEDED", 4, None)
    rows = run.applying.read_rows(run.outputs["TargetTableName"], f"acme/{table}")
    assert sorted([r["id"], r["name"], r["qty"]] for r in rows) == sorted(V2)


def test_an_execution_aborted_mid_publish_is_failed_and_frees_its_table(stack):
    aws, _ = stack
    with held_publish(aws, "aborted") as publish:
        upload = start(stack, "aborted", "V1")
        assert publish.entered.wait(60)
        arn = running_execution(aws, "aborted")
        assert lock_of(aws, "aborted")["held_by"]["S"] == arn
        aws.client("stepfunctions").stop_execution(
            executionArn=arn, error="Operator", cause="stopped by the test"
        )
        # ABORTED at once, as in AWS, though Publish is still running
        assert aws.client("stepfunctions").describe_execution(executionArn=arn)["status"] == (
            "ABORTED"
        )
        publish.released.set()
        result = finish(stack, upload)
    assert result.status == "FAILED"
    assert result.error.startswith("Operator: execution acme-aborted-V1-")
    assert result.error.endswith("ABORTED: stopped by the test")
    assert lock_of(aws, "aborted") is None
    [delivery] = [d for d in aws.events.deliveries if d.event.get("source") == "aws.states"
                  and d.event["detail"]["executionArn"] == arn]  # fmt: skip
    assert delivery.rule == aws.stack.physical_id("ExecutionEndedRule")
    assert delivery.event["detail"]["status"] == "ABORTED" and delivery.error is None
    then_the_next_version_runs(stack, "aborted")


def test_an_execution_timed_out_mid_publish_is_failed_and_frees_its_table(stack):
    aws, _ = stack
    sfn = aws.client("stepfunctions")
    machine = aws.stack.outputs["StateMachineArn"]
    definition = sfn.describe_state_machine(stateMachineArn=machine)["definition"]
    # The deployed definition with a timeout a test can wait for (21600 s in the template).
    short = json.loads(definition)
    short["TimeoutSeconds"] = 8
    sfn.update_state_machine(stateMachineArn=machine, definition=json.dumps(short))
    try:
        with held_publish(aws, "timedout") as publish:
            upload = start(stack, "timedout", "V1")
            assert publish.entered.wait(60)
            arn = running_execution(aws, "timedout")
            deadline = time.monotonic() + 30
            while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
                assert time.monotonic() < deadline, "TimeoutSeconds was not enforced"
                time.sleep(0.2)
            assert sfn.describe_execution(executionArn=arn)["status"] == "TIMED_OUT"
            publish.released.set()
            result = finish(stack, upload)
    finally:
        sfn.update_state_machine(stateMachineArn=machine, definition=definition)
    assert result.status == "FAILED"
    assert result.error == f"ExecutionTimedOut: execution {arn.rsplit(':', 1)[1]} TIMED_OUT"
    assert lock_of(aws, "timedout") is None
    then_the_next_version_runs(stack, "timedout")


def test_athena_throttling_is_retried_and_the_version_succeeds(stack):
    from snapcdc_local.emulator.stepfunctions import execution_history

    aws, _ = stack
    # botocore makes 5 attempts per call (snapcdc.aws.clients), so 6 refusals fail one StartQuery
    # invocation and the first call of the next; the state machine retries it.
    aws.athena.throttle_starts = 6
    upload = start(stack, "throttled", "V1")
    result = finish(stack, upload)
    assert aws.athena.throttle_starts == 0
    assert (result.status, result.inserts, result.error) == ("SUCCEEDED", 4, None)
    sfn = aws.client("stepfunctions")
    events = [e for arn in result.executions for e in execution_history(sfn, arn)]
    failures = [
        e["lambdaFunctionFailedEventDetails"] for e in events if e["type"] == "LambdaFunctionFailed"
    ]
    assert [f["error"] for f in failures] == ["AthenaThrottled"]
    assert "TooManyRequestsException" in failures[0]["cause"] or "throttled" in failures[0]["cause"]


def test_execution_ended_needs_its_registry_grant(stack):
    """The deployed ExecutionEndedRole less dynamodb:UpdateItem: the emulation refuses the write
    as AWS would, so the aborted upload is not recorded FAILED (and the lock stays: the function
    failed before releasing it; its lease is what frees the table then)."""
    from moto.iam.models import iam_backends

    aws, _ = stack
    backend = iam_backends[aws.iam.where.account]["global"]
    role = backend.get_role_by_arn(
        aws.client("lambda").get_function(
            FunctionName=aws.stack.physical_id("ExecutionEndedFunction")
        )["Configuration"]["Role"]
    )
    [(name, document)] = role.policies.items()
    policy = json.loads(document) if isinstance(document, str) else document
    reduced = {
        **policy,
        "Statement": [s for s in policy["Statement"] if "dynamodb:UpdateItem" not in s["Action"]],
    }
    assert reduced["Statement"] != policy["Statement"]
    role.policies[name] = json.dumps(reduced)
    aws.iam.decisions.clear()
    try:
        with held_publish(aws, "unpermitted") as publish:
            upload = start(stack, "unpermitted", "V1")
            assert publish.entered.wait(60)
            arn = running_execution(aws, "unpermitted")
            aws.client("stepfunctions").stop_execution(executionArn=arn, error="Operator")
            publish.released.set()
            result = finish(stack, upload)
    finally:
        role.policies[name] = document
        aws.iam.decisions.clear()
    _, run = stack
    record = run.registry.find_upload(
        result.table_id, result.key, result.sequencer,
        table_name=run.outputs["RegistryTableName"],
    )  # fmt: skip
    assert record["status"] == "RUNNING"  # the local run reports it FAILED from the execution
    assert any(
        "is not authorized to perform: dynamodb:UpdateItem" in denial and "ExecutionEnded" in denial
        for denial in aws.iam.denied
    )
    assert lock_of(aws, "unpermitted")["held_by"]["S"] == arn
