"""Each bridge of the emulator against the small plumbing stack (tests/local/plumbing)."""

from __future__ import annotations

import gzip
import json
import re
import uuid

import pytest

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def upload(aws, key, body=b"a;b\n"):
    aws.client("s3").put_object(
        Bucket=aws.stack.physical_id("Bucket"), Key=key, Body=gzip.compress(body)
    )


def executions_for(aws, key):
    sfn = aws.client("stepfunctions")
    found = []
    for execution in aws.settle():
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        if json.loads(described["input"])["detail"]["object"]["key"] == key:
            found.append(described)
    return found


def test_deploy_creates_what_moto_cloudformation_skips(plumbing):
    workgroup = plumbing.client("athena").get_work_group(WorkGroup="snapcdc-wg")["WorkGroup"]
    results = plumbing.stack.physical_id("Results")
    assert (
        workgroup["Configuration"]["ResultConfiguration"]["OutputLocation"]
        == f"s3://{results}/athena/"
    )
    assert (
        plumbing.client("glue").get_database(Name="plumbing_db")["Database"]["Name"]
        == "plumbing_db"
    )
    machine = plumbing.client("stepfunctions").describe_state_machine(
        stateMachineArn=plumbing.stack.outputs["MachineArn"]
    )
    definition = json.loads(machine["definition"])
    assert definition["States"]["Echo"]["Resource"].endswith(plumbing.stack.physical_id("Echo"))
    assert definition["States"]["Wait"]["Seconds"] == 1  # parameter override substituted


def test_s3_upload_starts_an_unnamed_execution_with_the_aws_event(plumbing):
    key = "t/x/v1/export.csv.gz"
    upload(plumbing, key)
    upload(plumbing, "t/x/_table.json")  # does not match the rule's suffix filter
    [execution] = executions_for(plumbing, key)
    assert UUID_RE.fullmatch(execution["name"])
    event = json.loads(execution["input"])
    bucket = plumbing.stack.physical_id("Bucket")
    assert set(event) == {
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    }
    assert (event["source"], event["detail-type"], event["resources"]) == (
        "aws.s3",
        "Object Created",
        [f"arn:aws:s3:::{bucket}"],
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])
    head = plumbing.client("s3").head_object(Bucket=bucket, Key=key)
    detail = event["detail"]
    assert detail["bucket"] == {"name": bucket}
    assert detail["object"]["key"] == key
    assert detail["object"]["size"] == head["ContentLength"]
    assert detail["object"]["etag"] == head["ETag"].strip('"')
    assert re.fullmatch(r"[0-9A-F]+", detail["object"]["sequencer"])
    assert detail["reason"] == "PutObject"
    assert [d.rule for d in plumbing.events.deliveries_for("t/x/_table.json")] == []


def test_lambda_tasks_run_the_handler_with_environment_and_context(plumbing):
    key = "t/echo/v1/export.csv.gz"
    upload(plumbing, key)
    [execution] = executions_for(plumbing, key)
    assert execution["status"] == "SUCCEEDED"
    output = json.loads(execution["output"])
    echo = output["echo"]
    assert echo["function_name"] == plumbing.stack.physical_id("Echo")
    assert echo["memory"] == 256
    assert 0 < echo["remaining_ms"] <= 30_000
    assert echo["env"] == {
        "TABLE_NAME": plumbing.stack.physical_id("Table"),
        "WORKGROUP": "snapcdc-wg",
        "DATABASE": "plumbing_db",
        "AWS_REGION": "us-east-1",
    }
    assert echo["table_at_import"] == plumbing.stack.physical_id("Table")
    event = echo["event"]
    assert (event["event"], event["execution"]) == (
        json.loads(execution["input"]),
        execution["name"],
    )
    # Context object times as AWS writes them, e.g. 2019-03-26T20:14:13.192Z
    for moment in (event["entered"], event["started"]):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", moment), moment
    assert output["invoke"]["payload"]["event"] == {"via": "lambda:invoke"}


def test_errors_reach_catch_as_lambda_and_dynamodb_report_them(plumbing):
    key = "t/errors/v1/export.csv.gz"
    upload(plumbing, key)
    upload(plumbing, key)  # the second claim of the same key fails its condition
    first, second = executions_for(plumbing, key)
    for execution in (first, second):
        error = json.loads(execution["output"])["fail_error"]
        assert error["Error"] == "ValueError"
        cause = json.loads(error["Cause"])
        assert cause["errorType"] == "ValueError"
        assert cause["errorMessage"] == f"cannot handle {key}"
        assert cause["stackTrace"]
    # Both executions run at once: whichever writes second finds the key claimed.
    claims = [json.loads(e["output"]).get("claim_error") for e in (first, second)]
    assert sorted(claims, key=bool)[0] is None
    assert sorted(claims, key=bool)[1]["Error"] == "DynamoDB.ConditionalCheckFailedException"


def test_history_shows_states_and_caught_errors(plumbing):
    from snapcdc_local.emulator.stepfunctions import execution_history, history_rows

    key = "t/wait/v1/export.csv.gz"
    upload(plumbing, key)
    [execution] = executions_for(plumbing, key)
    rows = history_rows(
        execution_history(plumbing.client("stepfunctions"), execution["executionArn"])
    )
    assert [r.state for r in rows] == [
        "Echo",
        "EchoInvoke",
        "Claim",
        "Fail",
        "MaybeWait",
        "Wait",
        "Done",
    ]
    by_state = {r.state: r for r in rows}
    assert by_state["Fail"].error.startswith("ValueError: ")
    assert by_state["Echo"].error is None
    assert 0.9 <= by_state["Wait"].seconds < 5


def test_unknown_handler_fails_the_task_with_a_clear_error(plumbing):
    lam = plumbing.client("lambda")
    name = f"broken-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=lam.get_function(FunctionName=plumbing.stack.physical_id("Echo"))["Configuration"][
            "Role"
        ],
        Handler="plumbing_handlers.nope",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
    )
    response = lam.invoke(FunctionName=name, Payload=b"{}")
    assert response["FunctionError"] == "Unhandled"
    payload = json.loads(response["Payload"].read())
    assert payload["errorType"] == "ValueError"
    assert "has no 'nope'" in payload["errorMessage"]


@pytest.mark.parametrize("missing", ["never-created"])
def test_athena_errors_name_the_problem(plumbing, missing):
    athena = plumbing.client("athena")
    with pytest.raises(
        athena.exceptions.InvalidRequestException, match=f"WorkGroup {missing} is not found"
    ):
        athena.start_query_execution(QueryString="SELECT 1", WorkGroup=missing)
