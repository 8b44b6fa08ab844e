"""Starting approve / reject (``stack.resume``) against Step Functions and the registry in
moto: only a HELD upload is resumed, and a second start of the same resume is the same
execution while it runs and refused once it ended: Step Functions' execution names are unique
per state machine for 90 days, and a start with the name and input of a running execution
returns that execution
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html)."""

from __future__ import annotations

import json
import threading

import boto3
import pytest

from snapcdc.aws.registry import put_upload, update_upload, upload_sk
from snapcdc_local.stack.resume import ResumeError, start_resume

KEY = "tenant/test_table/20201230_V0002/export2.csv.gz"
SK = upload_sk(KEY, "0A")


@pytest.fixture
def machine(aws):
    iam = boto3.client("iam")
    role = iam.create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    definition = {
        # runs until the test stops it: "while it runs" is then a fact, not a race with a timer
        "StartAt": "Wait",
        "States": {"Wait": {"Type": "Wait", "Seconds": 86400, "End": True}},
    }
    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(name="m", definition=json.dumps(definition), roleArn=role)
    put_upload(
        {"table_id": "tenant/test_table", "sk": SK, "key": KEY, "sequencer": "0A",
         "execution_arn": "held-run", "status": "RUNNING", "registered_at": "2020"},
        table_name="registry",
    )  # fmt: skip
    return sfn, arn["stateMachineArn"]


def test_only_a_held_upload_is_resumed(aws, machine):
    sfn, arn = machine
    with pytest.raises(ResumeError, match="is not HELD \\(its upload is RUNNING\\)"):
        start_resume(sfn, arn, "registry", "approve", KEY)
    with pytest.raises(ResumeError, match="no upload of tenant/test_table/V9/x.csv.gz"):
        start_resume(sfn, arn, "registry", "approve", "tenant/test_table/V9/x.csv.gz")
    with pytest.raises(ResumeError, match="unknown action 'accept'"):
        start_resume(sfn, arn, "registry", "accept", KEY)


def stopped(sfn, execution: str) -> str:
    """The execution's status once StopExecution took effect (moto's worker ends it a moment
    after the call; AWS at once): a wait for that change, bounded, not a timed guess."""
    changed = threading.Event()
    for _ in range(3000):
        status = sfn.describe_execution(executionArn=execution)["status"]
        if status != "RUNNING" or changed.wait(0.01):
            return status
    return status


def test_the_same_resume_is_started_once(aws, machine):
    sfn, arn = machine
    update_upload("tenant/test_table", SK, {"status": "HELD"}, table_name="registry")
    execution = start_resume(sfn, arn, "registry", "reject", KEY)
    started = sfn.describe_execution(executionArn=execution)
    assert json.loads(started["input"]) == {
        "resume": {"action": "reject", "table_id": "tenant/test_table", "sk": SK},
        "upload": {"table_id": "tenant/test_table", "sk": SK},
    }
    # while it runs, the same start is the same execution (StartExecution is idempotent) ...
    assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    assert start_resume(sfn, arn, "registry", "reject", KEY) == execution
    # ... and once it ended, Step Functions refuses the name
    sfn.stop_execution(executionArn=execution)
    assert stopped(sfn, execution) == "ABORTED"
    with pytest.raises(ResumeError, match=f"{KEY} was already rejected: execution reject-"):
        start_resume(sfn, arn, "registry", "reject", KEY)
