"""cfn.yaml with one permission removed: the version fails as it would in AWS, naming the action.

Each case takes one action away from one role (every statement of the role that lists it),
uploads a two-row export and follows it through the whole pipeline. The unmodified template is
the control: it grants everything the pipeline uses, under the same enforcement (and no call
goes unmapped); it gets a stack of its own, so that what it sees used is only what one version
used.

A permission the pipeline needs while it runs is taken away on one deployed stack shared by
those cases (:func:`role_without`: the role's policies as the deploy left them, less the
action, by the rule :func:`template_without` applies to cfn.yaml; restored after the case), and
each case has a table of its own. What is checked when the stack is deployed (an event source
mapping's role; the consumer's retries, a parameter) is checked on cfn.yaml less the action,
deployed for the case.
"""

from __future__ import annotations

import copy
import importlib
import itertools
import json
import shutil
from contextlib import contextmanager

import pytest
from datasets import REPO, local_stack, write_config, write_export

from snapcdc_local.emulator import stepfunctions
from snapcdc_local.emulator.iam_policy import Decision, statement_applies, statements

COLUMNS = ["id", "name"]
ROWS = [["1", "apple"], ["2", "pear"]]
KEY = "acme/items/V001/part-0.csv.gz"


def remove_action(documents: list[dict], action: str, only_on: str | None = None) -> int:
    """Take ``action`` out of every statement of ``documents`` that lists it (only on the
    resources mentioning ``only_on``, if given), in place; the number of resources it was
    removed from."""
    removed = 0
    for document in documents:
        kept = []
        for statement in document["Statement"]:
            actions = statement["Action"]
            actions = [actions] if isinstance(actions, str) else actions
            if action not in actions:
                kept.append(statement)
                continue
            targets = statement["Resource"]
            targets = targets if isinstance(targets, list) else [targets]
            still = [r for r in targets if only_on and only_on not in json.dumps(r)]
            removed += len(targets) - len(still)
            others = [a for a in actions if a != action]
            if others:
                kept.append({**statement, "Action": others})
            if still:
                kept.append({**statement, "Action": [action], "Resource": still})
        # A policy must keep a statement: deny what was removed (the same refusal, explicit).
        document["Statement"] = kept or [{"Effect": "Deny", "Action": action, "Resource": "*"}]
    return removed


def template_without(role: str, action: str, directory, only_on: str | None = None, source=None):
    """cfn.yaml (with the state machine definition beside it) less ``action`` for ``role``.

    ``only_on``: remove the action only on the resources whose definition mentions it;
    ``source``: start from this template instead of cfn.yaml (to remove a second action).
    """
    from snapcdc_local.emulator.cfn import load_template

    template = load_template(source or REPO / "cfn.yaml")
    resources = template["Resources"]
    documents = [p["PolicyDocument"] for p in resources[role]["Properties"].get("Policies", [])]
    documents += [
        r["Properties"]["PolicyDocument"]
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"]["Roles"]
    ]
    removed = remove_action(documents, action, only_on)
    assert removed, f"{role} is not granted {action} in cfn.yaml"
    path = directory / "cfn.json"
    path.write_text(json.dumps(template))
    for definition in ("state_machine.asl.json", "verify.asl.json"):
        shutil.copy(REPO / definition, directory / definition)
    return path


def run(tmp_path, template, rows=ROWS, parameters=None, config=True):
    from moto.iam.models import iam_backends

    from snapcdc_local.cli.run import RunOptions, run_pipeline

    data = tmp_path / "data"
    if config:
        write_config(data, "acme", "items", {"columns": COLUMNS, "key": ["id"], "header": False})
        write_export(data, KEY, rows, delimiter=",")
    else:  # the defaults: a header row, ','
        write_export(data, KEY, rows, delimiter=",", header=COLUMNS)
    seen = {}

    def keep(aws):
        seen["aws"] = aws

    def after(upload):
        # read while the emulator runs: run_pipeline stops it before returning
        aws = seen["aws"]
        table = aws.stack.outputs["TargetTableName"]
        seen["target"] = aws.client("dynamodb").scan(TableName=table)["Items"]
        roles = iam_backends[aws.iam.where.account]["global"].roles.values()
        seen["policies"] = {role.arn: aws.iam.role_policies(role.arn) for role in roles}
        registry = importlib.import_module("snapcdc.aws.registry")
        seen["head"] = registry.get_head(
            upload.table_id, table_name=aws.stack.outputs["RegistryTableName"]
        )
        sfn = aws.client("stepfunctions")
        seen["history"] = [
            row
            for arn in upload.executions
            for row in stepfunctions.history_rows(stepfunctions.execution_history(sfn, arn))
        ]

    result = run_pipeline(
        RunOptions(data_dir=data, template=template, parameters=parameters or {}),
        emulator_hook=keep,
        on_upload=after,
    )
    (upload,) = result.uploads
    return upload, seen


def test_the_template_grants_everything_the_pipeline_calls(tmp_path):
    upload, seen = run(tmp_path, REPO / "cfn.yaml")
    assert (upload.status, upload.inserts, upload.error) == ("SUCCEEDED", 2, None)
    assert len(seen["target"]) == 2
    authorizer = seen["aws"].iam
    assert authorizer.unmapped == [] and authorizer.denied == []
    # every role acted, and Athena checked its Glue access on the default database too
    roles = {role.rsplit("/", 1)[-1].split("-")[1] for role, _, _ in authorizer.decisions}
    assert roles >= {
        "RouteRole",
        "RegisterRole",
        "PlanRole",
        "QueryRole",
        "CheckRole",
        "PublishRole",
        "FinishRole",
        "ConsumerRole",
        "StateMachineRole",
        "EventsRole",
    }
    assert any(
        a == "glue:GetDatabase" and r.endswith(":database/default")
        for _, a, r in authorizer.decisions
    )
    # and nothing more: every grant is used, or is used only where the table below says
    unused = set()
    for role, documents in seen["policies"].items():
        for document in documents:
            for statement in statements(document):
                actions = statement["Action"]
                for action in [actions] if isinstance(actions, str) else actions:
                    # logs are written by Lambda and Step Functions themselves, not emulated
                    if action.startswith("logs:"):
                        continue
                    if not any(
                        (r, a) == (role, action)
                        and d is Decision.ALLOW
                        and statement_applies(statement, action, resource)
                        for (r, a, resource), d in authorizer.decisions.items()
                    ):
                        targets = statement["Resource"]
                        for target in [targets] if isinstance(targets, str) else targets:
                            unused.add((role.rsplit("/", 1)[-1].split("-")[1], action, target))
    unexplained = {
        (role, action, target)
        for role, action, target in unused
        if not any(
            (role, action) == (r, a) and where in target for r, a, where in USED_OFF_THE_HAPPY_PATH
        )
    }
    assert not unexplained, sorted(unexplained)


# Grants a two-row first load does not exercise, and who does use them: (role, action, a part
# of the resource).
USED_OFF_THE_HAPPY_PATH = {
    # Athena, as the caller: large results are written with multipart uploads; the output and
    # source buckets' GetBucketLocation and the results' GetObject are in Athena's documented
    # query policy (https://repost.aws/knowledge-center/athena-output-bucket-error); the
    # emulation checks GetBucketLocation on the output bucket only
    ("QueryRole", "s3:AbortMultipartUpload", "/athena/"),
    ("QueryRole", "s3:ListMultipartUploadParts", "/athena/"),
    ("QueryRole", "s3:ListBucketMultipartUploads", "resultsbucket"),
    ("QueryRole", "s3:GetBucketLocation", "importbucket"),
    ("QueryRole", "s3:GetObject", "/athena/"),
    # wide tables' statements go to S3 and are read back (tests/stack/test_plan.py)
    ("PlanRole", "s3:PutObject", "/plans/"),
    ("QueryRole", "s3:GetObject", "/plans/"),
    # a table without _table.json (test_plan_without_list_bucket_...)
    ("PlanRole", "s3:ListBucket", "importbucket"),
    ("RegisterRole", "s3:ListBucket", "importbucket"),
    # the failure path (test_mark_failed_without_its_permission_...)
    ("MarkFailedRole", "dynamodb:UpdateItem", "RegistryTable"),
    ("MarkFailedRole", "dynamodb:GetItem", "LockTable"),
    # the on-failure destination, written with the consumer's role (test_a_consumer_without_...)
    ("ConsumerRole", "s3:PutObject", "failedbatchesbucket"),
    ("ConsumerRole", "s3:ListBucket", "failedbatchesbucket"),
    # executions ended past their Catch (tests/local/test_local_run_execution_end.py)
    ("ExecutionEndedRole", "dynamodb:UpdateItem", "RegistryTable"),
    ("ExecutionEndedRole", "dynamodb:DeleteItem", "LockTable"),
    # the hourly check of versions not fully applied (tests/stack/test_applied_check.py; the
    # schedule is not emulated)
    ("AppliedCheckRole", "dynamodb:Query", "RegistryTable"),
    ("AppliedCheckRole", "dynamodb:GetItem", "RegistryTable"),
    ("AppliedCheckRole", "dynamodb:UpdateItem", "RegistryTable"),
    ("AppliedCheckRole", "dynamodb:DeleteItem", "RegistryTable"),
    ("AppliedCheckRole", "cloudwatch:PutMetricData", "*"),
    # holding a delta that would delete too much, and resuming it (test_local_run_hold.py;
    # a first load is never held)
    ("HoldRole", "cloudwatch:PutMetricData", "*"),
    ("HoldRole", "dynamodb:GetItem", "RegistryTable"),
    ("HoldRole", "dynamodb:UpdateItem", "RegistryTable"),
    ("HoldRole", "s3:GetObject", "/athena/"),
    ("HoldRole", "s3:ListBucket", "resultsbucket"),
    # verify and repair (tests/local/test_verify.py checks that a verify uses them all)
    ("QueryRole", "s3:GetObject", "/verify/"),
    *(("VerifyRole", action, "") for action in (
        "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:Query",
        "dynamodb:UpdateItem", "dynamodb:Scan", "dynamodb:ExportTableToPointInTime",
        "dynamodb:DescribeExport", "s3:PutObject", "s3:AbortMultipartUpload", "s3:PutObjectAcl",
        "s3:GetObject", "s3:ListBucket", "cloudwatch:PutMetricData",
    )),
    *(("RepairRole", action, "") for action in (
        "dynamodb:PutItem", "dynamodb:UpdateItem", "s3:GetObject", "s3:ListBucket",
    )),
    ("VerifyStateMachineRole", "lambda:InvokeFunction", ""),
}  # fmt: skip


# -- checked at deploy, or with a parameter of its own: cfn.yaml less the action, deployed ------


def test_a_consumer_without_put_item_never_applies_and_reports_the_batch(tmp_path):
    template = template_without("ConsumerRole", "dynamodb:PutItem", tmp_path)
    upload, seen = run(tmp_path, template, parameters={"ConsumerMaxRetries": "0"})
    assert upload.status == "SUCCEEDED"  # published; the ESM's function is what fails
    assert seen["target"] == []
    aws = seen["aws"]
    assert aws.kinesis.discarded, "the failed batch went to the on-failure destination"
    assert any("is not authorized to perform: dynamodb:PutItem" in d for d in aws.iam.denied)


def test_a_consumer_that_cannot_write_the_failed_batches_bucket_loses_the_delivery(tmp_path):
    # Lambda writes the S3 on-failure destination with the function's execution role:
    # https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html
    failing = template_without("ConsumerRole", "dynamodb:PutItem", tmp_path)  # batches fail
    template = template_without("ConsumerRole", "s3:PutObject", tmp_path, source=failing)
    upload, seen = run(tmp_path, template, parameters={"ConsumerMaxRetries": "0"})
    aws = seen["aws"]
    assert seen["target"] == []
    assert aws.kinesis.delivery_failures, "the delivery to the bucket was refused"
    assert "is not authorized to perform: s3:PutObject" in aws.kinesis.delivery_failures[0]


@pytest.mark.parametrize("action", ["kinesis:ListShards", "kinesis:GetRecords"])
def test_an_event_source_mapping_whose_role_cannot_read_the_stream_is_refused(tmp_path, action):
    from snapcdc_local.cli.main import CliError

    template = template_without("ConsumerRole", action, tmp_path)
    name = action.split(":")[1]
    with pytest.raises(CliError) as refused:
        run(tmp_path, template)
    message = str(refused.value)
    assert f"The provided execution role does not have permissions to call {name} on Kinesis" in (
        message
    )
    assert f"not authorized to perform: {action} on resource: " in message


# -- one deployed stack, a permission taken away per case ---------------------------------------
# (after the cases that deploy a stack of their own: one emulation runs at a time)

CASES = itertools.count()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with local_stack(tmp_path_factory.mktemp("data")) as (aws, run):
        yield aws, run


@contextmanager
def role_without(aws, role: str, action: str, only_on: str | None = None, keep=None):
    """The deployed ``role`` less ``action`` while the block runs (:func:`remove_action` on
    the policies the stack's deploy gave it; ``keep(resource)``: instead, drop the resources
    it rejects from every statement), then its policies as deployed again."""
    from moto.iam.models import iam_backends

    backend = iam_backends[aws.iam.where.account]["global"]
    deployed = backend.get_role(aws.stack.physical_id(role)).policies
    before = dict(deployed)
    documents = {
        name: copy.deepcopy(json.loads(d) if isinstance(d, str) else d)
        for name, d in before.items()
    }
    if keep is None:
        assert remove_action(list(documents.values()), action, only_on), (role, action)
    else:
        for document in documents.values():
            for statement in document["Statement"]:
                if isinstance(statement["Resource"], list):
                    statement["Resource"] = [r for r in statement["Resource"] if keep(r)]
            document["Statement"] = [s for s in document["Statement"] if s["Resource"]]
        assert documents != {n: json.loads(d) if isinstance(d, str) else d
                             for n, d in before.items()}, role  # fmt: skip
    deployed.update(
        {n: json.dumps(d) if isinstance(before[n], str) else d for n, d in documents.items()}
    )
    aws.iam.decisions.clear()  # decided before: with the policies as deployed
    try:
        yield
    finally:
        deployed.clear()
        deployed.update(before)
        aws.iam.decisions.clear()


class Case:
    """One case's upload on the shared stack (a table of its own), followed to its end, and
    what the stack holds of it afterwards."""

    def __init__(self, stack, rows=ROWS, config=True) -> None:
        aws, run = stack
        self.aws = aws
        tenant = f"case{next(CASES)}"
        key = f"{tenant}/items/V001/part-0.csv.gz"
        denied = len(aws.iam.denied)
        if config:
            write_config(run.data_dir, tenant, "items", {
                "columns": COLUMNS, "key": ["id"], "header": False})  # fmt: skip
            write_export(run.data_dir, key, rows, delimiter=",")
            assert run.put(f"{tenant}/items/_table.json") is None
        else:  # the defaults: a header row, ','
            write_export(run.data_dir, key, rows, delimiter=",", header=COLUMNS)
        started = run.put(key)
        run.settle(120)
        self.upload = run.resolve(started)
        run.read_counts(self.upload)
        self.denied = aws.iam.denied[denied:]
        table_id = self.upload.table_id
        self.target = aws.client("dynamodb").scan(
            TableName=run.outputs["TargetTableName"],
            FilterExpression="table_id = :t",
            ExpressionAttributeValues={":t": {"S": table_id}},
            ConsistentRead=True,
        )["Items"]
        self.head = run.registry.get_head(table_id, table_name=run.outputs["RegistryTableName"])
        sfn = aws.client("stepfunctions")
        self.history = [
            row
            for arn in self.upload.executions
            for row in stepfunctions.history_rows(stepfunctions.execution_history(sfn, arn))
        ]


@pytest.mark.parametrize(
    ("role", "action", "resource_part"),
    [
        ("RegisterRole", "dynamodb:PutItem", "RegistryTable"),
        ("PlanRole", "dynamodb:UpdateItem", "RegistryTable"),
        ("PlanRole", "s3:GetObject", "/items/_table.json"),
        ("QueryRole", "athena:StartQueryExecution", ":workgroup/"),
        # Athena's implicit Glue and S3 checks, with the Query function's role
        ("QueryRole", "glue:GetDatabase", ":catalog"),
        ("QueryRole", "glue:DeleteTable", ":catalog"),
        ("QueryRole", "glue:CreateTable", ":catalog"),
        ("QueryRole", "glue:GetTable", ":catalog"),
        ("QueryRole", "glue:GetTables", ":catalog"),
        ("QueryRole", "s3:GetBucketLocation", "resultsbucket"),
        ("QueryRole", "s3:PutObject", "/athena/"),
        ("QueryRole", "s3:ListBucket", "resultsbucket"),
        ("QueryRole", "s3:GetObject", "importbucket"),
        ("CheckRole", "s3:GetObject", "/athena/"),
        ("PublishRole", "kinesis:PutRecords", ":stream/"),
        ("StateMachineRole", "dynamodb:PutItem", "LockTable"),
        ("EventsRole", "states:StartExecution", ":stateMachine:"),
    ],
)
def test_a_missing_permission_fails_the_version_naming_it(stack, role, action, resource_part):
    with role_without(stack[0], role, action):
        case = Case(stack)
    assert_denied(case.upload, role, action, resource_part)
    assert case.target == []  # a failed version never touches the target


def assert_denied(upload, role, action, resource_part):
    assert upload.status == "FAILED"
    assert f"is not authorized to perform: {action} on resource: " in upload.error
    assert f"assumed-role/snapcdc-{role}-" in upload.error
    resource = upload.error.split(" on resource: ", 1)[1].split(" ", 1)[0]
    assert resource_part.lower() in resource.lower(), upload.error


def test_finish_without_its_permission_fails_the_version_after_publishing(stack):
    with role_without(stack[0], "FinishRole", "dynamodb:UpdateItem"):
        case = Case(stack)
    upload = case.upload
    assert_denied(upload, "FinishRole", "dynamodb:UpdateItem", "RegistryTable")
    # after publishing: Publish ended, and Kinesis took both ops, before Finish was refused
    states = [(row.state, row.error) for row in case.history]
    publish = [i for i, (state, error) in enumerate(states) if state == "Publish" and not error]
    finish = [i for i, (state, error) in enumerate(states) if state == "Finish" and error]
    assert publish and finish and publish[-1] < finish[0], states
    assert upload.published == 2
    # so the version is recorded as diverged (its ops partly or wholly landed), and the
    # consumer applied what was published
    head = case.head or {}
    assert [d["version"] for d in head.get("diverged", [])] == ["V001"], head
    assert len(case.target) == 2


def test_a_state_machine_that_may_not_invoke_plan_fails_the_version(stack):
    with role_without(stack[0], "StateMachineRole", "lambda:InvokeFunction", "PlanFunction"):
        case = Case(stack)
    assert_denied(case.upload, "StateMachineRole", "lambda:InvokeFunction", "PlanFunction")
    assert case.target == []


def test_a_route_that_may_not_start_the_named_execution_runs_the_pipeline_unnamed(stack):
    # By design: routing is an optimisation; the raw execution runs the pipeline itself.
    with role_without(stack[0], "RouteRole", "states:StartExecution"):
        case = Case(stack)
    assert (case.upload.status, case.upload.inserts) == ("SUCCEEDED", 2)
    assert any("RouteRole" in d and "states:StartExecution" in d for d in case.denied)


def test_mark_failed_without_its_permission_still_ends_failed_naming_it(stack):
    duplicate_keys = ROWS + [["1", "again"]]
    with role_without(stack[0], "MarkFailedRole", "dynamodb:UpdateItem"):
        case = Case(stack, rows=duplicate_keys)
    assert case.upload.status == "FAILED"
    # The registry record stays RUNNING; the reason is in the execution's history.
    (mark_failed,) = [r for r in case.history if r.state == "MarkFailed"]
    assert "is not authorized to perform: dynamodb:UpdateItem" in mark_failed.error
    assert "MarkFailedRole" in mark_failed.error


def test_athena_needs_the_default_database_as_its_documentation_says(stack):
    """Audit row 1: without GetDatabase on database/default the first statement fails."""
    with role_without(stack[0], "QueryRole", "", keep=lambda r: "database/default" not in str(r)):
        case = Case(stack)
    upload = case.upload
    assert upload.status == "FAILED"
    assert "Insufficient permissions to execute the query." in upload.error
    assert "not authorized to perform: glue:GetDatabase on resource: " in upload.error
    assert ":database/default because no identity-based policy allows" in upload.error


def test_plan_without_list_bucket_cannot_tell_a_missing_table_config_from_a_refusal(stack):
    """S3 answers a missing key 403, not 404, to a caller that may not list the bucket."""
    control = Case(stack, config=False).upload
    assert (control.status, control.inserts) == ("SUCCEEDED", 2)
    with role_without(stack[0], "PlanRole", "s3:ListBucket"):
        upload = Case(stack, config=False).upload
    assert_denied(upload, "PlanRole", "s3:ListBucket", "importbucket")
