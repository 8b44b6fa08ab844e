"""The deployment workflow of docs/deploy.md, typed as a user types it, with the real AWS CLI
against ``snapcdc local serve``; then the operator commands on the stack it deployed.

The ``workflow`` fixture runs the steps once, in order, each a subprocess of the locked awscli
with only AWS_ENDPOINT_URL and dummy credentials set: build the Lambda artifact, make the
artifact bucket, ``cloudformation package`` and ``deploy`` (a change set with
``--parameter-overrides`` and ``--capabilities``, the template uploaded with ``--s3-bucket``),
read the outputs with ``describe-stacks``, copy ``_table.json`` and the reference exports one
after the other (export3 cut to its first rows, as in test_local_run_reference.py, so the
same statements run in seconds), and a second table's export big enough for ``s3 cp`` to
upload in parts; then ``deploy`` again with a changed parameter (an update change set), and
once more unchanged ("no changes"). The tests read what each step left; the module's last test
deletes the stack.

Between uploads it waits, as a user watching ``list-executions`` would, for the version's
execution to end and the consumer to count its ops applied (boto3 polls; every waited-for
state is asserted by the tests through the CLI).
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data" / "tenant" / "test_table"
EXPORTS = (
    "20201230_V0001/export1.csv.gz",
    "20201230_V0002/export2.csv.gz",
    "20201231_V0001/export3.csv.gz",
)
EXPORT3_ROWS = 1000
# Over the CLI's 8 MiB multipart threshold: uploaded in two parts. Rows of random text (gzip
# cannot shrink them), each well under DynamoDB's 400 KB item and Kinesis' 1 MiB record.
WIDE_ROWS, WIDE_ROW_BYTES = 40, 300_000
STACK = "snapcdc"
ARTIFACTS = "snapcdc-artifacts"
PARAMETERS = [
    "QueryPollSeconds=1", "LockRetrySeconds=1", "ShardCount=8", "ConsumerWorkers=1",
    "VerifySettleSeconds=0", "AlarmEmail=ops@example.com",
]  # fmt: skip
AWS = str(Path(sys.executable).parent / "aws")


class Cli:
    """The AWS CLI and the snapcdc command as a user runs them in a shell, in ``cwd``."""

    def __init__(self, served, cwd: Path) -> None:
        self.served, self.cwd = served, cwd

    def aws(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self._run([AWS, *args], check)

    def aws_json(self, *args: str):
        return json.loads(self.aws(*args, "--output", "json").stdout)

    def snapcdc(self, *args: str, check: bool = False) -> subprocess.CompletedProcess:
        return self._run([sys.executable, "-m", "snapcdc_local", *args], check)

    def _run(self, command: list[str], check: bool) -> subprocess.CompletedProcess:
        done = subprocess.run(
            command, cwd=self.cwd, env=self.served.env(), capture_output=True, text=True
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{command[1:]} exited {done.returncode}: {done.stderr[-3000:]}")
        return done


def wait_for_version(served, outputs: dict, table_id: str, version: str) -> None:
    """Until the version's named execution ended and the consumer applied what it published."""
    sfn, dynamodb = served.client("stepfunctions"), served.client("dynamodb")
    prefix = f"{table_id.replace('/', '-')}-{version}-"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        named = [
            e
            for e in sfn.list_executions(stateMachineArn=outputs["StateMachineArn"])["executions"]
            if e["name"].startswith(prefix)
        ]
        if named and named[0]["status"] != "RUNNING":
            items = dynamodb.query(
                TableName=outputs["RegistryTableName"],
                KeyConditionExpression="table_id = :t AND begins_with(sk, :u)",
                ExpressionAttributeValues={
                    ":t": {"S": table_id},
                    ":u": {"S": f"upload#{table_id}/{version}/"},
                },
                ConsistentRead=True,
            )["Items"]
            counts = [
                {k: int(i.get(k, {}).get("N", 0)) for k in ("published", "applied", "stale")}
                for i in items
            ]
            if counts and all(c["applied"] + c["stale"] >= c["published"] for c in counts):
                return
        time.sleep(0.2)
    raise AssertionError(f"{table_id} {version} did not finish within 120 s")


def wide_export(path: Path) -> list[list[str]]:
    rng = random.Random(7)
    rows = [
        [f"W{i:03d}", base64.b64encode(rng.randbytes(WIDE_ROW_BYTES * 3 // 4)).decode()]
        for i in range(WIDE_ROWS)
    ]
    path.write_bytes(gzip.compress("".join(f"{k};{v}\n" for k, v in rows).encode(), mtime=0))
    return rows


@pytest.fixture(scope="module")
def workflow(served, tmp_path_factory):
    """Every step of the workflow, in order; what the tests read afterwards."""
    work = tmp_path_factory.mktemp("workflow")
    for path in [REPO / "cfn.yaml", *REPO.glob("*.asl.json")]:  # the template and what it names
        shutil.copy(path, work / path.name)
    cli = Cli(served, work)
    # make lambda, into the copy's build/lambda (--skip-deps: offline; the emulation runs the
    # handlers with its own libraries, see docs/local-endpoint.md)
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "build_lambda.py"), str(work / "build" / "lambda"),
         "--skip-deps"], check=True, capture_output=True,
    )  # fmt: skip
    cli.aws("s3", "mb", f"s3://{ARTIFACTS}")
    cli.aws(
        "cloudformation", "package", "--template-file", "cfn.yaml", "--s3-bucket", ARTIFACTS,
        "--s3-prefix", "snapcdc", "--output-template-file", "build/packaged.yaml",
    )  # fmt: skip
    deploy = [
        "cloudformation", "deploy", "--template-file", "build/packaged.yaml",
        "--stack-name", STACK, "--s3-bucket", ARTIFACTS, "--s3-prefix", "snapcdc",
        "--capabilities", "CAPABILITY_IAM",
    ]  # fmt: skip
    created = cli.aws(*deploy, "--parameter-overrides", *PARAMETERS)
    described = cli.aws_json("cloudformation", "describe-stacks", "--stack-name", STACK)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Stacks"][0]["Outputs"]}
    bucket = outputs["ImportBucketName"]
    alarms_at_create = {
        a["AlarmName"]: a["AlarmActions"]
        for a in served.client("cloudwatch").describe_alarms()["MetricAlarms"]
    }

    data = work / "data" / "tenant" / "test_table"
    shutil.copytree(DATA, data)
    export3 = data / EXPORTS[2]
    lines = gzip.decompress(export3.read_bytes()).splitlines(keepends=True)[:EXPORT3_ROWS]
    export3.write_bytes(gzip.compress(b"".join(lines), mtime=0))
    cli.aws("s3", "cp", str(data / "_table.json"), f"s3://{bucket}/tenant/test_table/_table.json")
    for export in EXPORTS:
        cli.aws("s3", "cp", str(data / export), f"s3://{bucket}/tenant/test_table/{export}")
        wait_for_version(served, outputs, "tenant/test_table", export.split("/")[0])

    wide = work / "data" / "tenant" / "wide_table"
    (wide / "20210101_V0001").mkdir(parents=True)
    config = {"columns": ["PK", "DATA"], "key": ["PK"], "delimiter": ";", "header": False}
    (wide / "_table.json").write_text(json.dumps(config))
    wide_rows = wide_export(wide / "20210101_V0001" / "wide.csv.gz")
    cli.aws("s3", "cp", str(wide / "_table.json"), f"s3://{bucket}/tenant/wide_table/_table.json")
    cli.aws(
        "s3", "cp", str(wide / "20210101_V0001" / "wide.csv.gz"),
        f"s3://{bucket}/tenant/wide_table/20210101_V0001/wide.csv.gz",
    )  # fmt: skip
    wait_for_version(served, outputs, "tenant/wide_table", "20210101_V0001")

    # Two updates: a threshold, then the alarm email taken away (which the alarms name only
    # through conditions, so only CloudFormation's update rules, not a reference, reach them).
    updated = [
        cli.aws(*deploy, "--parameter-overrides", "IteratorAgeAlarmMilliseconds=700000"),
        cli.aws(*deploy, "--parameter-overrides", "AlarmEmail="),
    ]
    unchanged = cli.aws(*deploy, "--no-fail-on-empty-changeset")
    return {
        "cli": cli,
        "outputs": outputs,
        "created": created,
        "alarms_at_create": alarms_at_create,
        "updated": updated,
        "unchanged": unchanged,
        "export3": lines,
        "wide_rows": wide_rows,
        "wide_size": (wide / "20210101_V0001" / "wide.csv.gz").stat().st_size,
    }


def target_rows(cli: Cli, outputs: dict, table_id: str) -> dict[str, dict]:
    items = cli.aws_json(
        "dynamodb", "scan", "--table-name", outputs["TargetTableName"],
        "--filter-expression", "table_id = :t",
        "--expression-attribute-values", json.dumps({":t": {"S": table_id}}),
    )["Items"]  # fmt: skip
    rows = {}
    for item in items:
        if not item["deleted"]["BOOL"]:
            row = {k: v.get("S") for k, v in item["row"]["M"].items()}
            rows[row["PK"]] = row
    return rows


def test_deploy_creates_the_stack_from_the_uploaded_artifacts(workflow, served):
    assert "Successfully created/updated stack - snapcdc" in workflow["created"].stdout
    outputs = workflow["outputs"]
    assert set(outputs) >= {"ImportBucketName", "StateMachineArn", "RegistryTableName"}
    keys = [o["Key"] for o in served.client("s3").list_objects_v2(Bucket=ARTIFACTS)["Contents"]]
    assert any(k.endswith(".template") for k in keys)  # --s3-bucket: the template too
    resources = served.client("cloudformation").describe_stack_resources(StackName=STACK)
    plan = next(
        r for r in resources["StackResources"] if r.get("LogicalResourceId") == "PlanFunction"
    )
    code = served.client("lambda").get_function(FunctionName=plan["PhysicalResourceId"])["Code"]
    assert code["Location"]  # read back from the packaged S3 object
    definition = served.client("stepfunctions").describe_state_machine(
        stateMachineArn=outputs["StateMachineArn"]
    )["definition"]
    # the packaged DefinitionS3Location, its DefinitionSubstitutions applied
    assert '"Route"' in definition and '"Resource": "arn:aws:lambda:' in definition


def test_every_execution_succeeded_with_the_expected_history(workflow):
    cli, outputs = workflow["cli"], workflow["outputs"]
    executions = cli.aws_json(
        "stepfunctions", "list-executions", "--state-machine-arn", outputs["StateMachineArn"]
    )["executions"]
    named = {e["name"].rsplit("-", 1)[0]: e for e in executions if e["name"].startswith("tenant-")}
    assert sorted(named) == [
        "tenant-test_table-20201230_V0001",
        "tenant-test_table-20201230_V0002",
        "tenant-test_table-20201231_V0001",
        "tenant-wide_table-20210101_V0001",
    ]
    assert {e["status"] for e in executions} == {"SUCCEEDED"}
    history = cli.aws_json(
        "stepfunctions", "get-execution-history", "--execution-arn",
        named["tenant-test_table-20201231_V0001"]["executionArn"],
    )["events"]  # fmt: skip
    entered = [
        e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e
    ]
    for state in ("Route", "Register", "Lock", "Plan", "Publish", "Finish", "ReleaseLock", "Done"):
        assert state in entered, state
    assert entered.index("Plan") < entered.index("Publish") < entered.index("Finish")
    assert history[-1]["type"] == "ExecutionSucceeded"


def test_the_target_equals_export3_and_the_registry_says_so(workflow):
    cli, outputs = workflow["cli"], workflow["outputs"]
    expected = {}
    for line in workflow["export3"]:
        values = line.decode().rstrip("\n").split(";")
        expected[values[0]] = dict(zip(["PK", "COL_1", "COL_2", "COL_3"], values, strict=True))
    assert target_rows(cli, outputs, "tenant/test_table") == expected
    records = cli.aws_json(
        "dynamodb", "query", "--table-name", outputs["RegistryTableName"],
        "--key-condition-expression", "table_id = :t",
        "--expression-attribute-values", json.dumps({":t": {"S": "tenant/test_table"}}),
    )["Items"]  # fmt: skip
    uploads = {
        r["key"]["S"].split("/")[2]: r for r in records if r["sk"]["S"].startswith("upload#")
    }
    counts = {v: (r["status"]["S"], int(r["inserts"]["N"]), int(r["updates"]["N"]),
                  int(r["deletes"]["N"])) for v, r in uploads.items()}  # fmt: skip
    assert counts == {
        "20201230_V0001": ("SUCCEEDED", 3, 0, 0),
        "20201230_V0002": ("SUCCEEDED", 1, 1, 1),
        "20201231_V0001": ("SUCCEEDED", EXPORT3_ROWS - 3, 3, 0),
    }
    head = next(r for r in records if r["sk"]["S"] == "head")
    assert head["last_applied_version"]["S"] == "20201231_V0001"


def test_an_export_uploaded_in_parts_runs_the_pipeline(workflow, served):
    cli, outputs = workflow["cli"], workflow["outputs"]
    assert workflow["wide_size"] > 8 * 1024 * 1024  # over the CLI's multipart threshold
    head = served.client("s3").head_object(
        Bucket=outputs["ImportBucketName"], Key="tenant/wide_table/20210101_V0001/wide.csv.gz"
    )
    assert head["ETag"].strip('"').endswith("-2")  # a multipart upload's ETag: 2 parts
    rows = target_rows(cli, outputs, "tenant/wide_table")
    assert rows == {k: {"PK": k, "DATA": v} for k, v in workflow["wide_rows"]}


def test_update_with_a_changed_parameter_then_no_changes(workflow, served):
    for updated in workflow["updated"]:
        assert "Successfully created/updated stack - snapcdc" in updated.stdout
    assert "No changes to deploy" in workflow["unchanged"].stdout
    stack = served.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert parameters["AlarmEmail"] == ""
    assert parameters["ShardCount"] == "8"  # kept: UsePreviousValue
    assert parameters["IteratorAgeAlarmMilliseconds"] == "700000"  # kept from the first update
    # Created with AlarmEmail: every alarm notified the stack's topic. The update took it
    # away: the same alarms (updated in place) notify nothing; they name AlarmEmail only
    # through the template's conditions.
    before = workflow["alarms_at_create"]
    assert len(before) == 8 and all(len(actions) == 1 for actions in before.values())
    assert all(":sns:" in actions[0] and "AlarmTopic" in actions[0] for actions in before.values())
    after = served.client("cloudwatch").describe_alarms()["MetricAlarms"]
    assert {a["AlarmName"]: a["AlarmActions"] for a in after} == {name: [] for name in before}
    assert [a["Threshold"] for a in after if "IteratorAge" in a["AlarmName"]] == [700000]


# -- the operator commands on the deployed stack ------------------------------------------------


@pytest.fixture
def snapcdc(workflow, monkeypatch, capsys):
    """``snapcdc ARGS`` in this process (its entry point, main()) with the environment a user
    sets for the endpoint; (exit status, stdout, stderr)."""
    import boto3

    from snapcdc.aws import clients

    def run(*args: str, **env: str) -> tuple[int, str, str]:
        for name in [n for n in os.environ if n.startswith("AWS_")]:
            monkeypatch.delenv(name)
        for name, value in workflow["cli"].served.env(**env).items():
            if name.startswith("AWS_"):
                monkeypatch.setenv(name, value)
        boto3.DEFAULT_SESSION = None  # boto3's configuration read again, as a new process does
        clients.reset_clients()
        from snapcdc_local.cli.main import main

        status = main(list(args))
        out, err = capsys.readouterr()
        return status, out, err

    yield run
    boto3.DEFAULT_SESSION = None
    clients.reset_clients()


def test_status_shows_each_table(snapcdc):
    status, text, err = snapcdc("status", "--stack", STACK)
    assert status == 0, err
    assert "tenant/test_table\n  head: 20201231_V0001, 1000 rows" in text
    assert "tenant/wide_table\n  head: 20210101_V0001, 40 rows" in text
    assert "tenant/other_table" not in text  # (uploaded by a later test)
    assert "held: none" in text and "unapplied: none" in text and "diverged: none" in text
    assert f"last verify: never (snapcdc verify tenant/test_table --stack {STACK})" in text
    assert "_watch" not in text


def test_verify_through_the_endpoint_and_status_shows_it(snapcdc):
    status, text, err = snapcdc("verify", "tenant/test_table", "--stack", STACK)
    assert status == 0, text + err  # the target equals export3's first rows: no drift
    status, text, err = snapcdc("status", "--stack", STACK, "tenant/test_table")
    assert status == 0, err
    assert "last verify: CLEAN at " in text and ", version 20201231_V0001" in text


def test_history_by_key_and_latest(snapcdc):
    status, text, err = snapcdc(
        "history", "--stack", STACK, "tenant/test_table/20201230_V0002/export2.csv.gz"
    )
    assert status == 0, err
    assert text.startswith("history of tenant-test_table-20201230_V0002-")
    assert "(SUCCEEDED)" in text.splitlines()[0]
    states = [line.split()[0] for line in text.splitlines()[2:]]
    assert states[:2] == ["Route", "Register"] and states[-1] == "Done"
    status, text, err = snapcdc("history", "--stack", STACK, "--latest")
    assert text.startswith("history of tenant-wide_table-20210101_V0001-"), err


def test_upload_follows_each_version_to_its_outcome_and_approve_publishes_a_held_one(
    workflow, snapcdc, tmp_path
):
    first, then = tmp_path / "first" / "tenant" / "other_table", tmp_path / "then"
    for version, export in (("20210101_V0001", EXPORTS[0]), ("20210101_V0002", EXPORTS[1])):
        (first / version).mkdir(parents=True)
        shutil.copy(DATA / export, first / version / Path(export).name)
    # export2 deletes one row of three: over this table's max_delete_fraction, so HELD
    config = json.loads((DATA / "_table.json").read_text())
    (first / "_table.json").write_text(json.dumps({**config, "max_delete_fraction": 0.1}))
    status, text, err = snapcdc("upload", str(tmp_path / "first"), "--stack", STACK)
    assert status == 0, err
    rows = [line.split() for line in text.splitlines()]
    assert rows[0][:2] == ["key", "status"]
    assert rows[1][:7] == [
        "tenant/other_table/20210101_V0001/export1.csv.gz",
        "SUCCEEDED",
        "3",
        "0",
        "0",
        "3",
        "3",
    ]
    assert rows[2][:7] == [
        "tenant/other_table/20210101_V0002/export2.csv.gz",
        "HELD",
        "1",
        "1",
        "1",
        "0",
        "0",
    ]
    assert rows[3][0] == "reason:"
    assert rows[-1][:6] == ["tenant/other_table", "1", "0", "0", "3", "20210101_V0001"]

    status, text, err = snapcdc("status", "--stack", STACK, "tenant/other_table")
    assert "held: 1\n    tenant/other_table/20210101_V0002/export2.csv.gz:" in text, err
    key = "tenant/other_table/20210101_V0002/export2.csv.gz"
    status, text, err = snapcdc("approve", key, "--stack", STACK, "--poll", "0.2")
    assert status == 0, err
    assert f"{key}: SUCCEEDED inserts=1 updates=1 deletes=1" in text

    # A version of 1,000 rows: its line comes once the consumer applied every op
    version = then / "tenant" / "other_table" / "20210102_V0001"
    version.mkdir(parents=True)
    shutil.copy(first / "_table.json", then / "tenant" / "other_table" / "_table.json")
    (version / "export3.csv.gz").write_bytes(gzip.compress(b"".join(workflow["export3"])))
    status, text, err = snapcdc("upload", str(then), "--stack", STACK)
    assert status == 0, err
    assert text.splitlines()[1].split()[1:7] == ["SUCCEEDED", "997", "3", "0", "1000", "1000"]

    status, text, err = snapcdc("redrive", "--stack", STACK)
    assert (status, text.splitlines()[-1]) == (0, "0 object(s): 0 op(s) applied, 0 stale, 0 failed")


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["status", "--stack", "nope"], {},
         "snapcdc status: error: DescribeStacks: ValidationError: Stack with id nope does not "
         "exist (region us-east-1): check the name given (--stack"),
        (["history", "--stack", STACK, "not/a/version"], {},
         "snapcdc history: error: export key 'not/a/version' is not of the form"),
        (["history", "--stack", STACK, "tenant/test_table/20201230_V0001/x.csv.gz"], {},
         "no upload of tenant/test_table/20201230_V0001/x.csv.gz is registered"),
        (["status", "--stack", STACK, "tenant/none"], {}, "table tenant/none has no records"),
        (["upload", "no-such-dir", "--stack", STACK], {},
         "snapcdc upload: error: data directory no-such-dir does not exist"),
        (["status", "--stack", STACK], {"AWS_ENDPOINT_URL": "http://127.0.0.1:9",
                                        "AWS_MAX_ATTEMPTS": "1"},
         "snapcdc status: error: cannot reach AWS at http://127.0.0.1:9 "
         "(EndpointConnectionError): check the network, the region, and AWS_ENDPOINT_URL"),
    ],
)  # fmt: skip
def test_bad_input_gets_one_line_and_exit_1(snapcdc, args, env, message):
    status, out, err = snapcdc(*args, **env)
    assert (status, out) == (1, "")
    assert len(err.splitlines()) == 1 and message in err, err


def test_delete_stack_last(workflow, served):
    cli = workflow["cli"]
    cli.aws("cloudformation", "delete-stack", "--stack-name", STACK)
    cli.aws("cloudformation", "wait", "stack-delete-complete", "--stack-name", STACK)
    stacks = served.client("cloudformation").list_stacks()["StackSummaries"]
    assert [s["StackStatus"] for s in stacks if s["StackName"] == STACK] == ["DELETE_COMPLETE"]
