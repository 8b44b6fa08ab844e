"""cfn.yaml and state_machine.asl.json agree with each other and with the code.

(cfn-lint and checkov run in ``make test``; IAM grants are checked against every handler call
in the handler tests, see conftest.)
"""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import fields

import pytest
from harness import PHYSICAL, STACK, function_environment
from stacktemplate import ASL, Call, asl_states

from snapcdc.handlers import HANDLERS
from snapcdc.model.settings import Settings

DEFINITION = json.loads(ASL.read_text())
SM_PROPS = STACK.resources["StateMachine"]["Properties"]


def test_every_placeholder_is_substituted_and_every_substitution_used():
    placeholders = set(re.findall(r"\$\{(\w+)\}", ASL.read_text()))
    assert placeholders == set(SM_PROPS["DefinitionSubstitutions"])


def test_every_handler_in_the_template_imports_and_is_callable():
    specs = {props["Handler"] for props in STACK.functions().values()}
    assert specs == {f"snapcdc.handlers.{m}.handler" for m in HANDLERS}
    for spec in specs:
        module, _, attribute = spec.rpartition(".")
        assert callable(getattr(importlib.import_module(module), attribute))


def test_functions_are_arm64_python_312_with_one_role_each():
    functions = STACK.functions()
    roles = [STACK.role_of_function(name) for name in functions]
    assert len(set(roles)) == len(functions)
    for props in functions.values():
        assert props["Runtime"] == "python3.12" and props["Architectures"] == ["arm64"]
        assert props["Code"] == "build/lambda"


def test_all_functions_share_one_environment_that_settings_understands():
    environments = [props["Environment"] for props in STACK.functions().values()]
    assert all(env == environments[0] for env in environments)
    settings = {f"SNAPCDC_{f.name.upper()}" for f in fields(Settings)}
    names = set(environments[0]["Variables"])
    assert {n for n in names if n.startswith("SNAPCDC_")} <= settings
    configured = Settings.from_env(function_environment())
    assert configured.require(
        "import_bucket", "registry_table", "lock_table", "target_table", "stream_name"
    )
    assert configured.athena_output == "s3://results/athena/"
    assert configured.glue_database_prefix == "snapcdc_51af3dc0_"


def test_every_lambda_task_invokes_a_function_the_state_machine_may_invoke():
    substitutions = STACK.resolve(SM_PROPS["DefinitionSubstitutions"])
    lambda_tasks = [
        s for _, s in asl_states() if s["Type"] == "Task" and "FunctionArn" in s["Resource"]
    ]
    assert lambda_tasks
    for state in lambda_tasks:
        arn = substitutions[state["Resource"].strip("${}")]
        assert STACK.is_granted("StateMachineRole", "lambda:InvokeFunction", arn), arn


def test_dynamodb_tasks_are_granted_on_the_lock_table():
    lock_arn = PHYSICAL["LockTable"]["Arn"]
    tasks = [
        s for _, s in asl_states() if s.get("Resource", "").startswith("arn:aws:states:::dynamodb:")
    ]
    assert {t["Resource"].rsplit(":", 1)[1] for t in tasks} == {"putItem", "deleteItem"}
    for task in tasks:
        assert task["Parameters"]["TableName"] == "${LockTableName}"
        action = (
            "dynamodb:"
            + task["Resource"].rsplit(":", 1)[1][0].upper()
            + task["Resource"].rsplit(":", 1)[1][1:]
        )
        assert STACK.is_granted("StateMachineRole", action, lock_arn)


def test_every_task_is_caught_by_itself_or_its_map():
    for name, state in DEFINITION["States"].items():
        if state["Type"] in ("Task", "Map"):
            assert state.get("Catch"), f"{name} has no Catch"
    # everything failing ends in the Fail states through MarkFailed
    targets = {c["Next"] for _, s in asl_states() for c in s.get("Catch", [])}
    # (ResumeRefused: approve / reject of an upload that is not HELD changes nothing, so it
    # must not mark that upload FAILED)
    assert targets <= {
        "MarkFailed", "LockBusy", "Unrouted", "Done", "Failed", "FailedUnrecorded", "ResumeRefused",
    }  # fmt: skip


LOG_DELIVERY = {
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}


def test_no_wildcard_actions_and_wildcard_resources_only_where_aws_requires_them():
    for name, resource in STACK.resources.items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for statement in STACK.role_statements(name):
            assert not any("*" in action for action in statement["actions"]), name
            if statement["actions"] == ["cloudwatch:PutMetricData"]:
                # no resource-level permissions either: the namespace condition key scopes it
                # (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/iam-cw-condition-keys-namespace.html)
                assert statement["condition"] == {
                    "StringEquals": {"cloudwatch:namespace": "snapcdc"}
                }, name
            elif "*" in statement["resources"]:
                # Step Functions' log delivery APIs have no resource-level permissions.
                assert set(statement["actions"]) <= LOG_DELIVERY, (name, statement)


def test_permission_check_notices_a_missing_grant():
    registry = PHYSICAL["RegistryTable"]["Arn"]
    assert STACK.missing_permissions([Call("register", "dynamodb:PutItem", registry)]) == []
    assert STACK.missing_permissions([Call("register", "dynamodb:DeleteItem", registry)]) == [
        f"register (RegisterRole) lacks dynamodb:DeleteItem on {registry}"
    ]
    assert STACK.missing_permissions(
        [Call("check", "s3:GetObject", "arn:aws:s3:::imports/x.csv.gz")]
    )


def test_rule_sends_exports_and_manifests_of_the_import_bucket_to_the_state_machine():
    from moto.events.models import EventPattern

    rule = STACK.resources["ExportCreatedRule"]["Properties"]
    pattern = STACK.resolve(rule["EventPattern"])
    assert pattern["source"] == ["aws.s3"] and pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["bucket"]["name"] == ["imports"]
    matcher = EventPattern.load(json.dumps(pattern))

    def matches(key: str, bucket: str = "imports") -> bool:
        event = {
            "source": "aws.s3",
            "detail-type": "Object Created",
            "detail": {"bucket": {"name": bucket}, "object": {"key": key}},
        }
        return matcher.matches_event(event)

    assert matches("t/x/V1/export.csv.gz") and matches("t/x/V1/part-0001.csv.gz")
    assert matches("t/x/V1/_manifest.json")  # a multi-part version's completion marker
    for ignored in ("t/x/_table.json", "t/x/V1/part-0001.csv.gz.tmp", "t/x/V1/manifest.json"):
        assert not matches(ignored), ignored
    assert not matches("t/x/V1/export.csv.gz", bucket="elsewhere")
    [target] = rule["Targets"]
    assert target["Arn"] == {"Ref": "StateMachine"} and "InputTransformer" not in target
    assert STACK.is_granted("EventsRole", "states:StartExecution", PHYSICAL["StateMachine"]["Ref"])


def test_consumer_mapping_reports_partial_failures_bisects_and_keeps_failed_batches_in_s3():
    esm = STACK.resources["ConsumerEventSourceMapping"]["Properties"]
    assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert esm["BisectBatchOnFunctionError"] is True
    assert esm["BatchSize"] == {"Ref": "ConsumerBatchSize"}
    assert esm["MaximumRetryAttempts"] == {"Ref": "ConsumerMaxRetries"}
    # An S3 destination gets the records (payload); SQS and SNS get metadata only.
    bucket = PHYSICAL["FailedBatchesBucket"]["Arn"]
    assert STACK.resolve(esm["DestinationConfig"]["OnFailure"]["Destination"]) == bucket
    # "For an S3 destination: s3:PutObject and s3:ListBucket", with the function's role.
    role = STACK.role_of_function("ConsumerFunction")
    assert STACK.is_granted(role, "s3:PutObject", f"{bucket}/aws/lambda/u/shardId-0/2026/x")
    assert STACK.is_granted(role, "s3:ListBucket", bucket)
    assert not STACK.is_granted(role, "s3:PutObject", f"{bucket}/elsewhere")
    assert esm["MetricsConfig"] == {"Metrics": ["EventCount"]}


def test_no_parameter_combination_lets_the_stream_trim_records_before_their_maximum_age():
    parameters = STACK.template["Parameters"]
    retention = parameters["StreamRetentionHours"]
    max_age = parameters["ConsumerMaxRecordAgeSeconds"]
    assert retention["MinValue"] * 3600 >= 2 * max_age["MaxValue"]
    assert retention["Default"] * 3600 >= 2 * max_age["Default"]
    esm = STACK.resources["ConsumerEventSourceMapping"]["Properties"]
    stream = STACK.resources["Stream"]["Properties"]
    assert esm["MaximumRecordAgeInSeconds"] == {"Ref": "ConsumerMaxRecordAgeSeconds"}
    assert stream["RetentionPeriodHours"] == {"Ref": "StreamRetentionHours"}


def test_alarms_watch_failed_batches_arriving_and_failing_to_arrive():
    alarms = {
        STACK.resources[name]["Properties"]["MetricName"]: STACK.resources[name]["Properties"]
        for name, r in STACK.resources.items()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    delivered = alarms["OnFailureDestinationDeliveredEventCount"]
    assert delivered["Dimensions"] == [
        {"Name": "EventSourceMappingUUID", "Value": {"Ref": "ConsumerEventSourceMapping"}}
    ]
    failures = alarms["DestinationDeliveryFailures"]
    assert failures["Dimensions"] == [
        {"Name": "FunctionName", "Value": {"Ref": "ConsumerFunction"}}
    ]
    assert "ApproximateNumberOfMessagesVisible" in alarms  # the EventBridge target's DLQ only
    assert not any(
        r["Type"] == "AWS::SQS::Queue" and n != "EventsDeadLetterQueue"
        for n, r in STACK.resources.items()
    )


@pytest.mark.parametrize(
    "name", ["ShardCount", "ConsumerBatchSize", "LockExpirySeconds", "LogRetentionDays"]
)
def test_parameters_have_defaults_and_bounds(name):
    parameter = STACK.template["Parameters"][name]
    assert "Default" in parameter
    assert "AllowedValues" in parameter or "MinValue" in parameter


def test_every_store_says_which_key_encrypts_it():
    """Each SSE setting names its key explicitly, and the checkov notes say the same (audit
    row 10: ``SSEEnabled: true`` alone is KMS with the AWS managed key, not the owned key)."""
    by_type: dict[str, list[tuple[str, dict]]] = {}
    for name, resource in STACK.resources.items():
        by_type.setdefault(resource["Type"], []).append((name, resource))
    for name, table in by_type["AWS::DynamoDB::Table"]:
        # KMS with the AWS managed key aws/dynamodb: no KMSMasterKeyId for the default key
        assert table["Properties"]["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS"}
        notes = [s["comment"] for s in table["Metadata"]["checkov"]["skip"]]
        assert any("AWS managed key aws/dynamodb" in n for n in notes), name
        assert not any("owned key" in n for n in notes), name
    [(_, stream)] = by_type["AWS::Kinesis::Stream"]
    assert stream["Properties"]["StreamEncryption"] == {
        "EncryptionType": "KMS",
        "KeyId": "alias/aws/kinesis",
    }
    for name, bucket in by_type["AWS::S3::Bucket"]:
        [rule] = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}, name
    for name, queue in by_type["AWS::SQS::Queue"]:
        assert queue["Properties"]["SqsManagedSseEnabled"] is True, name
