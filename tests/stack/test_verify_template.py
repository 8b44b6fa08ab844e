"""cfn.yaml's verify pieces and verify.asl.json agree with each other and with the code: every
placeholder filled, every Lambda task one the verify state machine may invoke, every failure
caught where the round holds table locks, least privilege on the target table, the schedule off
by default, the drift alarm on the metric the code emits."""

from __future__ import annotations

import json
import re

from harness import PHYSICAL, STACK
from stacktemplate import REPO, asl_states

from snapcdc.steps import verify

VERIFY_ASL = REPO / "verify.asl.json"
DEFINITION = json.loads(VERIFY_ASL.read_text())
PROPS = STACK.resources["VerifyStateMachine"]["Properties"]
LAMBDA_TASK = re.compile(r"\$\{(\w+FunctionArn)\}")


def states():
    return list(asl_states(DEFINITION["States"]))


def test_every_placeholder_is_substituted_and_every_substitution_used():
    placeholders = set(re.findall(r"\$\{(\w+)\}", VERIFY_ASL.read_text()))
    assert placeholders == set(PROPS["DefinitionSubstitutions"])
    assert PROPS["DefinitionS3Location"] == "verify.asl.json"


def test_every_lambda_task_invokes_a_function_its_state_machine_may_invoke():
    substitutions = STACK.resolve(PROPS["DefinitionSubstitutions"])
    tasks = [s for _, s in states() if s["Type"] == "Task"]
    assert tasks and all(LAMBDA_TASK.fullmatch(t["Resource"]) for t in tasks)
    for task in tasks:
        arn = substitutions[task["Resource"].strip("${}")]
        assert STACK.is_granted("VerifyStateMachineRole", "lambda:InvokeFunction", arn), arn
    # and nothing else: the pipeline's functions other than Query are not the verify's
    pipeline = STACK.resolve({"Fn::GetAtt": ["PublishFunction", "Arn"]})
    assert not STACK.is_granted("VerifyStateMachineRole", "lambda:InvokeFunction", pipeline)


def test_a_failure_while_tables_are_locked_releases_them_before_the_run_fails():
    top = DEFINITION["States"]
    # between Begin (locks taken) and Unlock, every task's failure goes to ReleaseAfterFailure
    assert [c["Next"] for c in top["Export"]["Catch"]] == ["ReleaseAfterFailure"]
    assert top["ReleaseAfterFailure"]["Parameters"]["action"] == "unlock"
    assert top["ReleaseAfterFailure"]["Next"] == "FailRound"
    # every top-level Task and Map is caught; every Catch ends in a known state
    for name, state in top.items():
        if state["Type"] in ("Task", "Map"):
            assert state.get("Catch"), f"{name} has no Catch"
    targets = {c["Next"] for _, s in states() for c in s.get("Catch", [])}
    assert targets == {"ReleaseAfterFailure", "FailRound", "Failed", "RecordFailure"}
    assert top["Failed"]["Type"] == "Fail"
    # the settle waits read the round's setting; the verify handler knows every action used
    assert top["SettleBefore"]["SecondsPath"] == top["SettleAfter"]["SecondsPath"]
    from snapcdc.handlers.verify import ACTIONS

    used = {s["Parameters"]["action"] for _, s in states() if "action" in s.get("Parameters", {})}
    assert used - {"start", "poll"} <= set(ACTIONS)


def test_only_repair_writes_the_target_and_only_verify_exports_it():
    target = PHYSICAL["TargetTable"]["Arn"]
    assert STACK.is_granted("RepairRole", "dynamodb:PutItem", target)
    assert not STACK.is_granted("VerifyRole", "dynamodb:PutItem", target)
    assert STACK.is_granted("VerifyRole", "dynamodb:ExportTableToPointInTime", target)
    assert not STACK.is_granted("RepairRole", "dynamodb:ExportTableToPointInTime", target)
    assert STACK.is_granted("VerifyRole", "dynamodb:DescribeExport", f"{target}/export/0-a")
    # the export and the run's files: the results bucket's verify/ prefix, nothing else
    assert STACK.is_granted("VerifyRole", "s3:PutObject", "arn:aws:s3:::results/verify/x/y")
    assert not STACK.is_granted("VerifyRole", "s3:PutObject", "arn:aws:s3:::results/athena/x")
    assert not STACK.is_granted("VerifyRole", "s3:PutObject", "arn:aws:s3:::imports/x")
    # Athena reads the images as the Query function's caller
    assert STACK.is_granted("QueryRole", "s3:GetObject", "arn:aws:s3:::results/verify/x/t/0.gz")
    # the target table has point-in-time recovery, which exports need
    recovery = STACK.resources["TargetTable"]["Properties"]["PointInTimeRecoverySpecification"]
    assert recovery == {"PointInTimeRecoveryEnabled": True}


def test_the_schedule_is_off_by_default_and_verifies_every_table():
    parameter = STACK.template["Parameters"]["VerifySchedule"]
    assert parameter["Default"] == ""
    assert re.fullmatch(parameter["AllowedPattern"], "")
    assert re.fullmatch(parameter["AllowedPattern"], "rate(1 day)")
    assert re.fullmatch(parameter["AllowedPattern"], "cron(0 3 * * ? *)")
    assert not re.fullmatch(parameter["AllowedPattern"], "daily")
    assert STACK.template["Conditions"]["VerifyScheduled"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "VerifySchedule"}, ""]}]
    }
    rule = STACK.resources["VerifyScheduleRule"]
    assert rule["Condition"] == "VerifyScheduled"
    assert STACK.resources["VerifyScheduleRole"]["Condition"] == "VerifyScheduled"
    [target] = rule["Properties"]["Targets"]
    assert json.loads(target["Input"]) == {"tables": "all", "repair": False}
    assert target["Arn"] == {"Ref": "VerifyStateMachine"}


def test_the_drift_alarm_watches_the_metric_verify_emits():
    alarm = STACK.resources["VerifyDriftAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (
        verify.METRIC_NAMESPACE,
        verify.METRIC_NAME,
    )
    # the dimensionless point (each table's has a Table dimension as well)
    assert "Dimensions" not in alarm
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"].startswith("GreaterThan")
