"""ExecutionEnded: the EventBridge "Execution Status Change" of a run that ended past its Catch.

The event is shaped as Step Functions sends it
(https://docs.aws.amazon.com/step-functions/latest/dg/eventbridge-integration.html): the
execution's input is the routed S3 event, which names the upload record.
"""

from __future__ import annotations

import json

import pytest

from snapcdc.aws.registry import find_upload

KEY = "tenant/test_table/20201230_V0001/export1.csv.gz"
SM = "arn:aws:states:us-east-1:123456789012:stateMachine:pipeline"
EXEC = (
    "arn:aws:states:us-east-1:123456789012:execution:pipeline:tenant-test_table-20201230_V0001-0A"
)
OTHER = "arn:aws:states:us-east-1:123456789012:execution:pipeline:someone-else"


def status_change(s3_event, status, execution=EXEC, error=None, cause=None):
    return {
        "version": "0",
        "id": "315c1398-40ff-a850-213b-158f73e60175",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": "2020-12-30T10:00:00Z",
        "region": "us-east-1",
        "resources": [execution],
        "detail": {
            "executionArn": execution,
            "stateMachineArn": SM,
            "name": execution.rsplit(":", 1)[1],
            "status": status,
            "startDate": 1609322400000,
            "stopDate": 1609322460000,
            "input": json.dumps({"routed": True, "event": s3_event}),
            "inputDetails": {"included": True},
            "output": None,
            "outputDetails": None,
            "error": error,
            "cause": cause,
        },
    }


@pytest.fixture
def registered(aws):
    """An upload registered by EXEC, which also holds the table's lock."""
    event = aws.put_export(KEY, "PK1;a;b;c\n")
    aws.invoke("register", {"event": event, "execution_arn": EXEC})
    aws.dynamodb.put_item(
        TableName="locks",
        Item={"lock_id": {"S": "tenant/test_table"}, "held_by": {"S": EXEC},
              "expires_at": {"S": "2999-01-01T00:00:00Z"}},
    )  # fmt: skip
    return event


def record(event):
    return find_upload("tenant/test_table", KEY, event["detail"]["object"]["sequencer"])


def lock_item(aws):
    return aws.dynamodb.get_item(
        TableName="locks", Key={"lock_id": {"S": "tenant/test_table"}}
    ).get("Item")


def test_an_aborted_run_is_recorded_failed_and_its_lock_released(aws, registered):
    summary = aws.invoke("execution_ended", status_change(registered, "ABORTED"))

    assert summary["upload_marked_failed"] and summary["lock_released"]
    assert record(registered)["status"] == "FAILED"
    assert record(registered)["error"] == (
        "ExecutionAborted: execution tenant-test_table-20201230_V0001-0A ABORTED"
    )
    assert lock_item(aws) is None


def test_a_failure_catch_could_not_see_keeps_its_error_and_readable_cause(aws, registered):
    cause = json.dumps({"errorMessage": "state too large", "errorType": "X"})
    event = status_change(registered, "FAILED", error="States.DataLimitExceeded", cause=cause)

    aws.invoke("execution_ended", event)

    assert record(registered)["error_type"] == "States.DataLimitExceeded"
    assert record(registered)["error"].endswith("FAILED: state too large")


def test_an_outcome_already_recorded_and_another_holders_lock_are_left_alone(aws, registered):
    aws.invoke(
        "mark_failed",
        {"state": {"upload": {"table_id": "tenant/test_table", "key": KEY,
                              "sk": f"upload#{KEY}#{registered['detail']['object']['sequencer']}"},
                   "error": {"Error": "QueryFailed", "Cause": "bad"}},
         "execution_arn": EXEC},
    )  # fmt: skip
    aws.dynamodb.put_item(
        TableName="locks",
        Item={"lock_id": {"S": "tenant/test_table"}, "held_by": {"S": OTHER},
              "expires_at": {"S": "2999-01-01T00:00:00Z"}},
    )  # fmt: skip

    summary = aws.invoke(
        "execution_ended", status_change(registered, "FAILED", error="QueryFailed")
    )

    assert not summary["upload_marked_failed"] and not summary["lock_released"]
    assert record(registered)["error"] == "QueryFailed: bad"
    assert lock_item(aws)["held_by"]["S"] == OTHER


def test_another_execution_of_the_same_event_does_not_touch_the_record(aws, registered):
    summary = aws.invoke("execution_ended", status_change(registered, "TIMED_OUT", execution=OTHER))

    assert not summary["upload_marked_failed"] and not summary["lock_released"]
    assert record(registered)["status"] == "REGISTERED"
    assert lock_item(aws)["held_by"]["S"] == EXEC


def test_other_statuses_and_inputs_naming_no_upload_are_ignored(aws, registered):
    assert "ignored" in aws.invoke("execution_ended", status_change(registered, "SUCCEEDED"))
    event = status_change(registered, "ABORTED")
    event["detail"]["input"] = "{}"
    assert "ignored" in aws.invoke("execution_ended", event)
    assert record(registered)["status"] == "REGISTERED"


@pytest.mark.parametrize("published", [None, 0, 3])
def test_mark_failed_marks_the_table_diverged_once_publishing_began(aws, published):
    """Publish writes ``published`` before its first record; a version failing after that may
    have part of its ops in the target, so MarkFailed records it in the head's ``diverged``."""
    from snapcdc.aws.registry import get_head

    table_id, sk = "tenant/test_table", f"upload#{KEY}#0A"
    record = {"table_id": {"S": table_id}, "sk": {"S": sk}, "status": {"S": "RUNNING"},
              "version": {"S": "20201230_V0001"}, "key": {"S": KEY},
              "files": {"L": [{"S": f"s3://imports/{KEY}"}]},
              "schema": {"M": {"columns": {"L": [{"S": "PK"}]}, "key": {"L": [{"S": "PK"}]}}},
              "config": {"M": {}},
              "location": {"S": "s3://imports/tenant/test_table/x/"}}  # fmt: skip
    if published is not None:
        record["published"] = {"N": str(published)}
    aws.dynamodb.put_item(TableName="registry", Item=record)
    state = {"upload": {"table_id": table_id, "sk": sk, "key": KEY},
             "error": {"Error": "PublishFailed", "Cause": "Kinesis refused"}}  # fmt: skip
    failure = aws.invoke("mark_failed", {"state": state, "execution_arn": EXEC})
    head = get_head(table_id)
    if published is None:  # failed before Publish: nothing can have landed
        assert failure["diverged"] is False and head is None
    else:
        assert failure["diverged"] is True
        [entry] = head["diverged"]
        assert (entry["version"], entry["files"]) == ("20201230_V0001", [f"s3://imports/{KEY}"])


def test_an_approve_execution_that_ended_before_its_head_check_is_recorded_failed(aws, registered):
    from snapcdc.aws.registry import update_upload, upload_sk

    approve = "arn:aws:states:us-east-1:123456789012:execution:pipeline:approve-tenant-x"
    sk = upload_sk(KEY, registered["detail"]["object"]["sequencer"])
    # what holding.resume leaves: APPROVED, owned by the approve execution
    update_upload("tenant/test_table", sk, {"status": "APPROVED", "execution_arn": approve})
    event = status_change(registered, "TIMED_OUT", execution=approve)
    ref = {"table_id": "tenant/test_table", "sk": sk}
    event["detail"]["input"] = json.dumps({"resume": {"action": "approve", **ref}, "upload": ref})

    summary = aws.invoke("execution_ended", event)

    assert summary["upload_marked_failed"]
    assert record(registered)["status"] == "FAILED"
    assert record(registered)["error"].startswith("ExecutionTimedOut: execution approve-tenant-x")
