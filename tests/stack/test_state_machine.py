"""The real state_machine.asl.json in moto's Step Functions interpreter, Lambdas run in process.

Each test deploys the definition with cfn.yaml's DefinitionSubstitutions and starts it with a
raw EventBridge event, as the rule does: the routing, the lock loop, the failure path and (with
Athena results supplied as data) the whole pipeline down to Kinesis and the registry.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import boto3
import pytest
from harness import (
    HANDLER_MODULES,
    PHYSICAL,
    REFERENCE_CONFIG,
    SM_ARN,
    STACK,
    _current,
    lambda_context,
)
from moto.awslambda_simple.models import LambdaSimpleBackend
from stacktemplate import ASL

from snapcdc.aws import clients as snapcdc_aws
from snapcdc.aws.aggregation import deaggregate
from snapcdc.aws.registry import advance_head, get_head, list_uploads
from snapcdc.model.events import execution_name, parse_key_parts
from snapcdc.sql.queries import CHECK_COLUMNS

DATA = Path(__file__).parent / "data"
KEY = "tenant/test_table/20201230_V0002/export2.csv.gz"


def dispatch(backend, function_name, qualifier, body, headers, response_headers):
    """moto's docker-less Invoke, running the handler the function names, in this process."""
    fn = backend.get_function(function_name, qualifier)
    module = fn.handler.removeprefix("snapcdc.handlers.").removesuffix(".handler")
    _current.handler = module
    try:
        result = HANDLER_MODULES[module].handler(
            json.loads(body or "{}"), lambda_context(fn.function_name)
        )
        return json.dumps(result).encode()
    except Exception as exc:  # Lambda reports a handler's exception as the invocation's error
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__}).encode()
    finally:
        _current.handler = None


@pytest.fixture
def pipeline(aws, monkeypatch):
    """cfn.yaml's functions and state machine in moto; returns a function that runs one event."""
    monkeypatch.setattr(LambdaSimpleBackend, "invoke", dispatch)
    iam = boto3.client("iam")
    role = iam.create_role(RoleName="lambda", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    awslambda = boto3.client("lambda")
    for logical, props in STACK.functions().items():
        awslambda.create_function(
            FunctionName=PHYSICAL[logical]["Ref"],
            Runtime=props["Runtime"],
            Handler=props["Handler"],
            Role=role,
            Code={"ZipFile": b"in-process"},
            Timeout=props["Timeout"],
            Environment={"Variables": aws.env},
        )
    props = STACK.resources["StateMachine"]["Properties"]
    definition = ASL.read_text()
    for name, value in STACK.resolve(props["DefinitionSubstitutions"]).items():
        definition = definition.replace("${" + name + "}", value)
    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(name="pipeline", definition=definition, roleArn=role)[
        "stateMachineArn"
    ]
    assert arn == SM_ARN
    aws.s3.put_object(
        Bucket="imports", Key="tenant/test_table/_table.json", Body=json.dumps(REFERENCE_CONFIG)
    )

    def run(event, name):
        parent = sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps(event))
        return wait(sfn, parent["executionArn"])

    run.sfn = sfn
    return run


def wait(sfn, execution_arn, timeout=60):
    deadline = time.monotonic() + timeout
    while (described := sfn.describe_execution(executionArn=execution_arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"{execution_arn} still running"
        time.sleep(0.05)
    return described


def child_of(run, event):
    obj = event["detail"]["object"]
    name = execution_name(parse_key_parts(obj["key"]), obj["sequencer"])
    return wait(run.sfn, f"arn:aws:states:us-east-1:123456789012:execution:pipeline:{name}")


def history_states(sfn, execution_arn):
    events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    return [
        e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e
    ]


def test_event_is_routed_to_a_named_execution_and_a_duplicate_is_refused(aws, pipeline):
    advance_head(
        "tenant/test_table", "20201231_V0001", {"schema": {}, "config": {}, "location": ""}
    )
    event = aws.put_export(KEY, "PK1;a;b;c\n")

    parent = pipeline(event, "event-1")
    child = child_of(pipeline, event)
    duplicate = pipeline(event, "event-1-redelivered")

    assert parent["status"] == "SUCCEEDED"
    assert history_states(pipeline.sfn, parent["executionArn"])[-1] == "Routed"
    assert child["status"] == "SUCCEEDED"
    assert (
        child["name"]
        == f"tenant-test_table-20201230_V0002-{event['detail']['object']['sequencer']}"
    )
    assert duplicate["status"] == "SUCCEEDED"
    assert history_states(pipeline.sfn, duplicate["executionArn"])[-1] == "DuplicateEvent"
    [record] = list_uploads("tenant/test_table")
    assert record["status"] == "SKIPPED"
    assert record["execution_arn"] == child["executionArn"]
    assert "not after the last applied version 20201231_V0001" in record["reason"]
    assert aws.dynamodb.scan(TableName="locks")["Items"] == []  # released


def test_invalid_key_fails_with_its_registry_record(aws, pipeline):
    event = aws.put_export("tenant/Bad-Table/v1/export.csv.gz", "x\n")

    pipeline(event, "event-bad")
    child = child_of(pipeline, event)

    assert (child["status"], child["error"]) == ("FAILED", "InvalidExport")
    [record] = list_uploads("tenant/Bad-Table")
    assert record["status"] == "FAILED"
    assert "invalid table 'Bad-Table'" in record["error"]


def test_busy_table_fails_naming_the_lock_holder(aws, pipeline, monkeypatch):
    monkeypatch.setenv("SNAPCDC_LOCK_MAX_ATTEMPTS", "3")
    holder = "arn:aws:states:us-east-1:123456789012:execution:pipeline:other"
    aws.dynamodb.put_item(
        TableName="locks",
        Item={
            "lock_id": {"S": "tenant/test_table"},
            "held_by": {"S": holder},
            "expires_at": {"S": "2999-01-01T00:00:00Z"},
        },
    )
    event = aws.put_export(KEY, "PK1;a;b;c\n")

    pipeline(event, "event-locked")
    child = child_of(pipeline, event)

    assert (child["status"], child["error"]) == ("FAILED", "TableLocked")
    assert child["cause"].startswith(
        f"table tenant/test_table locked by {holder} (lease until 2999"
    )
    assert history_states(pipeline.sfn, child["executionArn"]).count("LockWait") == 2
    [record] = list_uploads("tenant/test_table")
    assert record["status"] == "FAILED"
    assert record["error"] == "TableLocked: " + child["cause"]
    [lock] = aws.dynamodb.scan(TableName="locks")["Items"]
    assert lock["held_by"]["S"] == holder  # not ours to release


def test_expired_lock_is_taken_over(aws, pipeline):
    advance_head(
        "tenant/test_table", "20201231_V0001", {"schema": {}, "config": {}, "location": ""}
    )
    aws.dynamodb.put_item(
        TableName="locks",
        Item={
            "lock_id": {"S": "tenant/test_table"},
            "held_by": {"S": "dead"},
            "expires_at": {"S": "2001-01-01T00:00:00Z"},
        },
    )
    event = aws.put_export(KEY, "PK1;a;b;c\n")

    pipeline(event, "event-takeover")

    assert child_of(pipeline, event)["status"] == "SUCCEEDED"
    assert aws.dynamodb.scan(TableName="locks")["Items"] == []


class AthenaResults:
    """Athena's result files for the statements the pipeline starts: the engine is not part of
    these tests, so results are supplied as data where Athena would write them."""

    def __init__(self, ops_csv: bytes, check_row: str = '"4","0",,"0","0"'):
        self.ops_csv, self.check_row = ops_csv, check_row
        self.sql = {}
        events = boto3.DEFAULT_SESSION.events
        events.register("before-parameter-build.athena.StartQueryExecution", self.remember)
        events.register("after-call.athena.StartQueryExecution", self.write)
        snapcdc_aws.reset_clients()

    def remember(self, params, **_):
        _current.sql = params["QueryString"]

    def write(self, parsed, **_):
        sql, query_id = _current.sql, parsed["QueryExecutionId"]
        self.sql[query_id] = sql
        if "duplicate_keys" in sql:
            header = ",".join(f'"{c}"' for c in CHECK_COLUMNS)
            sizes = ',"420","PK1","1950","PK1","131","PK1"'  # the largest row fits AWS's limits
            clean = ',"0",,,,"2",,,'  # no line without fields, no samples of bad rows
            body = (header + "\n" + self.check_row + sizes + clean + "\n").encode()
        elif "AS op" in sql:
            body = self.ops_csv
        else:
            return
        boto3.client("s3").put_object(Bucket="results", Key=f"athena/{query_id}.csv", Body=body)


def test_whole_pipeline_publishes_and_records_the_outcome(aws, pipeline):
    AthenaResults((DATA / "ops_result.csv").read_bytes())
    advance_head(
        "tenant/test_table",
        "20201230_V0001",
        {
            "schema": {"columns": REFERENCE_CONFIG["columns"], "key": ["PK"]},
            "config": REFERENCE_CONFIG,
            "location": "s3://imports/tenant/test_table/20201230_V0001/",
            "files": ["s3://imports/tenant/test_table/20201230_V0001/export1.csv.gz"],
        },
    )
    event = aws.put_export(KEY, "PK1;a;b;c\n")

    pipeline(event, "event-delta")
    child = child_of(pipeline, event)

    assert child["status"] == "SUCCEEDED", child.get("cause")
    summary = json.loads(child["output"])
    assert (summary["status"], summary["action"]) == ("SUCCEEDED", "delta")
    assert (summary["inserts"], summary["updates"], summary["deletes"]) == (2, 1, 1)
    assert summary["rows_read"] == 4 and len(summary["query_ids"]) == 7
    [record] = list_uploads("tenant/test_table")
    assert record["status"] == "SUCCEEDED"
    assert (record["inserts"], record["updates"], record["deletes"]) == (2, 1, 1)
    head = get_head("tenant/test_table")
    assert head["last_applied_version"] == "20201230_V0002"
    assert head["files"] == [f"s3://imports/{KEY}"]  # what the next delta reads it from
    sequencer = record["sk"].rsplit("#", 1)[1]
    expected = [
        {**op, "sequencer": sequencer}
        for op in json.loads((DATA / "ops_expected.json").read_text())
    ]
    assert stream_ops(aws) == expected
    assert record["published"] == len(expected)  # written by Publish and by Finish
    assert aws.dynamodb.scan(TableName="locks")["Items"] == []


def test_failed_check_fails_the_version_before_anything_is_published(aws, pipeline):
    AthenaResults((DATA / "ops_result.csv").read_bytes(), check_row='"4","1","PK1","0","0"')
    event = aws.put_export(KEY, "PK1;a;b;c\n")

    pipeline(event, "event-dupes")
    child = child_of(pipeline, event)

    assert (child["status"], child["error"]) == ("FAILED", "ExportCheckFailed")
    duplicates = (
        "export check failed: 1 duplicate key(s) in key column(s) PK, e.g. PK1; if other "
        'columns identify a row, set "key": [...] in the table\'s _table.json'
    )
    assert child["cause"] == duplicates
    assert aws.stream_records() == []
    [record] = list_uploads("tenant/test_table")
    assert record["error"] == f"ExportCheckFailed: {duplicates}"
    assert get_head("tenant/test_table") is None
    assert aws.dynamodb.scan(TableName="locks")["Items"] == []


def test_a_part_of_a_multi_part_version_ends_at_once_without_a_record(aws, pipeline):
    """complete_on manifest: a part's execution ends in AwaitingManifest; nothing registered,
    no lock taken; the version's manifest is what runs it."""
    aws.s3.put_object(
        Bucket="imports",
        Key="tenant/parts/_table.json",
        Body=json.dumps({"complete_on": "manifest"}),
    )
    event = aws.put_export("tenant/parts/V1/part-0000.csv.gz", "id,v\n1,a\n")

    pipeline(event, "event-part")
    child = child_of(pipeline, event)

    assert child["status"] == "SUCCEEDED"
    states = history_states(pipeline.sfn, child["executionArn"])
    assert states[-1] == "AwaitingManifest" and "InitLock" not in states
    assert list_uploads("tenant/parts") == []
    assert aws.dynamodb.scan(TableName="locks")["Items"] == []


HELD_OPS = (
    b'"op","pk","col_1","col_2","col_3"\n"UPDATE","PK1","a","b","c"\n'
    b'"DELETE","PK2","x","y","z"\n"DELETE","PK3","x","y","z"\n"DELETE","PK4","x","y","z"\n'
)


def test_a_version_that_would_delete_too_much_is_held_then_approved(aws, pipeline):
    from snapcdc_local.stack.resume import start_resume

    AthenaResults(HELD_OPS, check_row='"1","0",,"0","0"')  # 1 row left: 3 of 4 deleted
    previous = {
        "schema": {"columns": REFERENCE_CONFIG["columns"], "key": ["PK"]},
        "config": REFERENCE_CONFIG,
        "location": "s3://imports/tenant/test_table/20201230_V0001/",
        "files": ["s3://imports/tenant/test_table/20201230_V0001/export1.csv.gz"],
    }
    advance_head("tenant/test_table", "20201230_V0001", previous)
    event = aws.put_export(KEY, "PK1;a;b;c\n")

    pipeline(event, "event-held")
    child = child_of(pipeline, event)

    assert child["status"] == "SUCCEEDED", child.get("cause")
    summary = json.loads(child["output"])
    assert (summary["status"], summary["deletes"], summary["previous_rows"]) == ("HELD", 3, 4)
    assert summary["reason"].startswith("would delete 3 of 4 rows (75% > 50%) of 20201230_V0001")
    states = history_states(pipeline.sfn, child["executionArn"])
    assert "Held" in states and "Publish" not in states
    assert aws.stream_records() == []
    [record] = list_uploads("tenant/test_table")
    assert record["status"] == "HELD"
    assert get_head("tenant/test_table")["last_applied_version"] == "20201230_V0001"
    assert aws.dynamodb.scan(TableName="locks")["Items"] == []

    arn = start_resume(pipeline.sfn, SM_ARN, "registry", "approve", KEY)
    approved = wait(pipeline.sfn, arn)

    assert approved["status"] == "SUCCEEDED", approved.get("cause")
    assert json.loads(approved["output"])["status"] == "SUCCEEDED"
    assert [op["op"] for op in stream_ops(aws)] == [
        "UPDATE", "DELETE", "DELETE", "DELETE",
    ]  # fmt: skip
    [record] = list_uploads("tenant/test_table")
    assert (record["status"], record["deletes"], record["execution_arn"]) == ("SUCCEEDED", 3, arn)
    head = get_head("tenant/test_table")
    assert (head["last_applied_version"], head["rows"]) == ("20201230_V0002", 1)
    assert aws.dynamodb.scan(TableName="locks")["Items"] == []


def stream_ops(aws):
    """The ops on the stream, out of their aggregated records, in order."""
    return [json.loads(d) for r in aws.stream_records() for _, d in deaggregate(r["Data"])]
