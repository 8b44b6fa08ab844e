"""The emulation's Step Functions refuses what AWS refuses and reports what AWS reports.

moto's interpreter in process (no stack): the history-event quota, errors ``States.ALL`` does not
catch, status-change events for EventBridge, StopExecution and ``TimeoutSeconds``.
"""

from __future__ import annotations

import json
import time

import boto3
import pytest

REGION = "us-east-1"


# The quota mechanism proven on a smaller quota: 25,000 events take moto's interpreter ~25 s.
SMALL_QUOTA = 2_000


@pytest.fixture
def sfn(request):
    """moto's executing Step Functions with the emulator's bridge; ``.events`` collects what it
    would send to EventBridge (``@pytest.mark.history_quota(n)``: a smaller quota)."""
    from moto import mock_aws

    from snapcdc_local.emulator import stepfunctions, stepfunctions_limits

    marker = request.node.get_closest_marker("history_quota")
    quota = marker.args[0] if marker else stepfunctions_limits.HISTORY_EVENT_QUOTA
    events = []
    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
        stepfunctions.installed(on_status_change=events.append, history_quota=quota),
    ):
        client = boto3.client("stepfunctions", region_name=REGION)
        client.events = events
        client.role = boto3.client("iam", region_name=REGION).create_role(
            RoleName="sfn", AssumeRolePolicyDocument="{}"
        )["Role"]["Arn"]
        yield client


def run(sfn, definition, execution_input=None, timeout=120.0):
    machine = sfn.create_state_machine(
        name=f"m{len(sfn.list_state_machines()['stateMachines'])}",
        definition=json.dumps(definition),
        roleArn=sfn.role,
    )["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, input=json.dumps(execution_input or {}))[
        "executionArn"
    ]
    return wait(sfn, arn, timeout)


def events_of(sfn, arn, count=2, timeout=10.0):
    """The status-change events sent for ``arn``, once ``count`` of them arrived: EventBridge
    delivers them after the status changed, best effort, so DescribeExecution can tell the end
    before the last event is in."""
    deadline = time.monotonic() + timeout
    while len(mine := [e for e in sfn.events if e["detail"]["executionArn"] == arn]) < count:
        assert time.monotonic() < deadline, f"{len(mine)} of {count} status-change events"
        time.sleep(0.01)
    return mine


def wait(sfn, arn, timeout=120.0):
    deadline = time.monotonic() + timeout
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "execution still running"
        time.sleep(0.05)
    return described


def history(sfn, arn):
    from snapcdc_local.emulator.stepfunctions import execution_history

    return execution_history(sfn, arn)


SPIN = {
    "StartAt": "Spin",
    "States": {
        "Spin": {"Type": "Pass", "Next": "Again"},
        "Again": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.stop", "IsPresent": True, "Next": "Done"}],
            "Default": "Spin",
        },
        "Done": {"Type": "Succeed"},
    },
}


@pytest.mark.history_quota(SMALL_QUOTA)
def test_an_execution_fails_at_the_last_history_event_of_the_quota(sfn):
    described = run(sfn, SPIN)

    assert (described["status"], described["error"]) == ("FAILED", "States.Runtime")
    assert described["cause"] == (
        f"The execution reached the maximum number of history events ({SMALL_QUOTA})."
    )
    events = history(sfn, described["executionArn"])
    assert len(events) == SMALL_QUOTA
    assert (events[-1]["id"], events[-1]["type"]) == (SMALL_QUOTA, "ExecutionFailed")


def test_the_emulated_quota_is_25000_history_events_as_in_aws():
    from snapcdc_local.emulator import stepfunctions_limits

    # https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html
    assert stepfunctions_limits.HISTORY_EVENT_QUOTA == 25_000
    assert stepfunctions_limits.history_quota_cause() == (
        "The execution reached the maximum number of history events (25000)."
    )


def test_states_all_does_not_catch_a_payload_over_256_kib(sfn):
    big = "x" * (256 * 1024)
    definition = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Big",
                    "States": {"Big": {"Type": "Pass", "Result": big, "End": True}},
                },
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Succeed"},
        },
    }
    described = run(sfn, definition, {"items": [1]})

    assert described["status"] == "FAILED"
    assert "Caught" not in [
        e.get("stateEnteredEventDetails", {}).get("name")
        for e in history(sfn, described["executionArn"])
    ]


def test_status_changes_are_sent_as_step_functions_sends_them(sfn):
    described = run(sfn, {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})

    arn = described["executionArn"]
    mine = events_of(sfn, arn)
    # EventBridge delivers best effort and in no guaranteed order (the RUNNING event is sent
    # from the starting thread, the terminal one from the execution's), so no order is asserted.
    assert sorted(e["detail"]["status"] for e in mine) == ["RUNNING", "SUCCEEDED"]
    [event] = [e for e in mine if e["detail"]["status"] == "SUCCEEDED"]
    assert (event["source"], event["detail-type"]) == (
        "aws.states",
        "Step Functions Execution Status Change",
    )
    assert event["resources"] == [arn]
    detail = event["detail"]
    assert detail["stateMachineArn"] == described["stateMachineArn"]
    assert isinstance(detail["startDate"], int) and detail["stopDate"] >= detail["startDate"]
    assert (detail["input"], detail["output"]) == ("{}", "{}")


def test_stop_execution_aborts_at_once_with_its_error_and_cause(sfn):
    machine = sfn.create_state_machine(
        name="waits",
        definition=json.dumps(
            {"StartAt": "Sleep", "States": {"Sleep": {"Type": "Wait", "Seconds": 30, "End": True}}}
        ),
        roleArn=sfn.role,
    )["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine)["executionArn"]

    sfn.stop_execution(executionArn=arn, error="Operator", cause="not needed")

    described = sfn.describe_execution(executionArn=arn)
    assert (described["status"], described["error"], described["cause"]) == (
        "ABORTED",
        "Operator",
        "not needed",
    )
    [ended] = [e["detail"] for e in events_of(sfn, arn) if e["detail"]["status"] != "RUNNING"]
    assert (ended["status"], ended["error"], ended["cause"]) == (
        "ABORTED",
        "Operator",
        "not needed",
    )


def test_timeout_seconds_ends_the_execution_timed_out(sfn):
    definition = {
        "StartAt": "Sleep",
        "TimeoutSeconds": 1,
        "States": {"Sleep": {"Type": "Wait", "Seconds": 30, "End": True}},
    }
    started = time.monotonic()
    described = run(sfn, definition, timeout=10)

    assert described["status"] == "TIMED_OUT"
    assert time.monotonic() - started < 5
    arn = described["executionArn"]
    statuses = [e["detail"]["status"] for e in events_of(sfn, arn)]
    assert sorted(statuses) == ["RUNNING", "TIMED_OUT"]


def test_a_definition_is_parsed_once_and_every_execution_gets_its_own_program():
    from moto.stepfunctions.parser.asl.parse.asl_parser import (
        AmazonStateLanguageParser,
        ASLParserException,
    )

    from snapcdc_local.emulator import asl_cache

    definition = json.dumps(
        {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"a": 1}, "End": True}}}
    )
    with asl_cache.installed() as parsed:
        first, tree = AmazonStateLanguageParser.parse(definition)
        second, again = AmazonStateLanguageParser.parse(definition)
        assert (parsed.cache_info().hits, parsed.cache_info().currsize) == (1, 1)
        assert first is not second and tree is again  # components copied, the tree shared
        assert type(first) is type(second)
        for _ in range(2):  # a bad definition fails every time and is never cached
            with pytest.raises(ASLParserException):
                AmazonStateLanguageParser.parse('{"StartAt": ')
        assert parsed.cache_info().currsize == 1


WAIT_THEN_FAIL = {
    "StartAt": "Wait",
    "States": {
        "Wait": {"Type": "Wait", "Seconds": 1, "Next": "Pass"},
        "Pass": {"Type": "Pass", "Result": {"x": [1, "two", None]}, "Next": "Fail"},
        "Fail": {"Type": "Fail", "Error": "Boom", "Cause": "on purpose"},
    },
}


def test_a_finished_history_is_written_once_and_read_as_moto_writes_it(sfn):
    """history_cache: a running execution's history is written at every read (it grows); once
    the execution ended, the answer is written once and every later read gets what moto's own
    serializer writes (compared with the cache off)."""
    from unittest import mock

    from moto.stepfunctions.responses import StepFunctionResponse

    machine = sfn.create_state_machine(
        name="cached", definition=json.dumps(WAIT_THEN_FAIL), roleArn=sfn.role
    )["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    serialized = StepFunctionResponse.serialized
    counts = serialized.counts
    running = history(sfn, arn)
    assert running[-1]["type"] != "ExecutionFailed"  # still running: written, not kept
    assert counts["writes"] == 0
    assert wait(sfn, arn)["status"] == "FAILED"
    first, second = history(sfn, arn), history(sfn, arn)
    assert counts == {"writes": 1, "hits": 1}
    assert len(first) > len(running) and first[-1]["type"] == "ExecutionFailed"
    with mock.patch.object(StepFunctionResponse, "serialized", serialized.__wrapped__):
        uncached = history(sfn, arn)
    assert first == second == uncached
