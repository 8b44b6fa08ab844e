"""snapcdc verify / --repair on the deployed stack (cfn.yaml, verify.asl.json, the real
handlers), with the target tampered with behind the pipeline's back.

One emulated stack for the module; every test has tables of its own. The verify exports the
target table (the emulation's export: ``snapcdc_local.emulator.dynamodb_exports``), Athena (the
engine) compares it with the last applied export, and the CLI reports what it found.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from datasets import Held, local_stack, write_config, write_export

from snapcdc_local.cli.main import main

ITEMS = {"columns": ["id", "name", "note"], "key": ["id"], "header": False}
ITEMS_V1 = [
    ["1", "apple", "red"],
    ["2", "pear", ""],
    ["3", "fig", "green"],
    ["4", "plum", "purple"],
    ["5", "kiwi", ""],
    ["6", "lime", "green"],
]
# V2: 4 deleted (a tombstone), 3 updated, 7 inserted
ITEMS_V2 = [r for r in ITEMS_V1 if r[0] not in ("3", "4")] + [
    ["3", "fig", "dark"],
    ["7", "date", "brown"],
]
PAIRS = {"columns": ["region", "code", "label"], "key": ["region", "code"], "header": False}
PAIRS_V1 = [["eu", "a|b", "x"], ["eu", "c", ""], ["us", "a|b", "y"], ["us", "d", "z"]]
# one table for the versions in flight; each test uploads a later version of its own
FLIGHT = {"columns": ["id", "name"], "key": ["id"], "header": False}
FLIGHT_VERSIONS = {
    "V1": [["1", "one"], ["2", "two"]],
    "V2": [["1", "one"], ["2", "deux"], ["3", "three"]],
    "V3": [["1", "uno"], ["2", "deux"], ["3", "tres"]],
    "V4": [["1", "uno"], ["2", "dos"], ["4", "cuatro"]],
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    write_config(data, "acme", "items", ITEMS)
    write_export(data, "acme/items/V1/a.csv.gz", ITEMS_V1, delimiter=",")
    write_export(data, "acme/items/V2/a.csv.gz", ITEMS_V2, delimiter=",")
    write_config(data, "acme", "pairs", PAIRS)
    write_export(data, "acme/pairs/V1/a.csv.gz", PAIRS_V1, delimiter=",")
    write_config(data, "acme", "seq", FLIGHT)
    write_export(data, "acme/seq/V1/a.csv.gz", FLIGHT_VERSIONS["V1"], delimiter=",")
    write_config(data, "acme", "flight", FLIGHT)
    for version, rows in FLIGHT_VERSIONS.items():
        write_export(data, f"acme/flight/{version}/a.csv.gz", rows, delimiter=",")
    with local_stack(data) as (aws, run):
        # the tables' versions at once (their locks keep each table's in order)
        for versions in (("acme/items/V1", "acme/pairs/V1", "acme/flight/V1"), ("acme/items/V2",)):
            for key, result in zip(versions, upload(run, *versions), strict=True):
                assert result.status == "SUCCEEDED", key
        yield aws, run


def upload(run, *version_prefixes):
    started = []
    for prefix in version_prefixes:
        tenant, table, _ = prefix.split("/")
        run.put(f"{tenant}/{table}/_table.json")
        started.append(run.put(f"{prefix}/a.csv.gz"))
    run.settle(120)
    return [run.resolve(s) for s in started]


def verify(capsys, table, *options):
    capsys.readouterr()
    status = main(["verify", table, "--stack", "snapcdc", "--poll", "0.1", *options])
    out, err = capsys.readouterr()
    return status, out, err


def target(aws):
    return aws.client("dynamodb"), aws.stack.outputs["TargetTableName"]


def rows_of(run, table_id, columns):
    rows = run.applying.read_rows(run.outputs["TargetTableName"], table_id)
    return sorted([row.get(c) for c in columns] for row in rows)


def last_verify(run, table_id):
    return run.registry.last_verify(table_id, table_name=run.outputs["RegistryTableName"])


# -- tampering ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tampered_items(stack):
    aws, _ = stack
    ddb, table = target(aws)

    def key(k):
        return {"pk": {"S": f"acme/items#{k}"}}

    def set_note(k, expression, values=None):
        extra = {"ExpressionAttributeValues": values} if values else {}
        ddb.update_item(TableName=table, Key=key(k), UpdateExpression=expression,
                        ExpressionAttributeNames={"#r": "row"}, **extra)  # fmt: skip

    # a live row deleted
    ddb.delete_item(TableName=table, Key=key("1"))
    # an empty value made NULL, a value changed, a column removed, a column added
    set_note("2", "SET #r.note = :n", {":n": {"NULL": True}})
    set_note("3", "SET #r.note = :n", {":n": {"S": "light"}})
    set_note("5", "REMOVE #r.note")
    set_note("6", "SET #r.colour = :c", {":c": {"S": "x"}})
    # the tombstone of 4 brought back to life
    tombstone = ddb.get_item(TableName=table, Key=key("4"))["Item"]
    assert tombstone["deleted"] == {"BOOL": True}
    ddb.put_item(TableName=table, Item={**tombstone, "deleted": {"BOOL": False}, "row": {"M": {
        "id": {"S": "4"}, "name": {"S": "plum"}, "note": {"S": "purple"}}}})  # fmt: skip
    # a row that never existed, written without a version as a person would
    ddb.put_item(TableName=table, Item={
        "pk": {"S": "acme/items#8"}, "table_id": {"S": "acme/items"}, "row_key": {"S": "8"},
        "deleted": {"BOOL": False},
        "row": {"M": {"id": {"S": "8"}, "name": {"S": "ghost"}, "note": {"S": ""}}}})  # fmt: skip
    return stack


EXPECTED_ITEMS = {
    ("missing", "1", ()),
    ("extra", "4", ()),
    ("extra", "8", ()),
    ("different", "2", ("note",)),
    ("different", "3", ("note",)),
    ("different", "5", ("note",)),
    ("different", "6", ("colour",)),
}


def test_verify_names_exactly_the_tampered_keys_and_how_each_drifted(
    tampered_items, capsys, tmp_path
):
    _, run = tampered_items
    keys_file = tmp_path / "drift.jsonl"
    status, out, err = verify(capsys, "acme/items", "--keys-file", str(keys_file))
    assert status == 1, (out, err)
    listed = [json.loads(line) for line in keys_file.read_text().splitlines()]
    assert {(d["kind"], d["key"], tuple(d.get("columns", ()))) for d in listed} == EXPECTED_ITEMS
    assert len(listed) == len(EXPECTED_ITEMS)
    assert "acme/items: DRIFT against version V2" in out
    assert "  missing            1" in out and "  extra              2" in out
    assert "columns that differ: colour (1), note (3)" in out
    record = last_verify(run, "acme/items")
    assert (record["status"], record["version"], record["drifted"]) == ("DRIFT", "V2", 7)
    assert (record["missing"], record["extra"], record["different"]) == (1, 2, 4)
    assert record["export_rows"] == 6 and record["target_rows"] == 7
    assert sorted(record["sample"]["extra"]) == ["4", "8"]


def test_repair_writes_exactly_the_drift_and_the_target_equals_the_export(tampered_items, capsys):
    aws, run = tampered_items
    status, out, err = verify(capsys, "acme/items", "--repair")
    assert status == 0, (out, err)
    assert "acme/items after the repair: CLEAN against version V2" in out
    assert rows_of(run, "acme/items", ITEMS["columns"]) == sorted(ITEMS_V2)
    records = run.registry.list_verifies(
        "acme/items", table_name=run.outputs["RegistryTableName"], limit=2
    )
    second, first = records
    assert (first["round"], first["status"], second["round"], second["status"]) == (
        1, "DRIFT", 2, "CLEAN",
    )  # fmt: skip
    assert first["repair"] == {"applied": 7, "stale": 0, "skipped": 0, "failed": 0}
    # repaired rows are the head version's, marked as the repair's; extra ones are tombstones
    ddb, table = target(aws)
    ghost = ddb.get_item(TableName=table, Key={"pk": {"S": "acme/items#8"}})["Item"]
    assert ghost["deleted"] == {"BOOL": True} and ghost["version"] == {"S": "V2"}
    assert ghost["applied_by"]["S"] == f"repair#{first['run_id']}"


def test_composite_keys_and_null_against_empty(stack, capsys, tmp_path):
    aws, run = stack
    ddb, table = target(aws)
    ddb.delete_item(TableName=table, Key={"pk": {"S": 'acme/pairs#["us","d"]'}})
    ddb.update_item(
        TableName=table,
        Key={"pk": {"S": 'acme/pairs#["eu","c"]'}},
        UpdateExpression="SET #r.label = :n",
        ExpressionAttributeNames={"#r": "row"},
        ExpressionAttributeValues={":n": {"NULL": True}},
    )
    row = {"region": {"S": "ap"}, "code": {"S": "a|b"}, "label": {"S": "w"}}
    ddb.put_item(TableName=table, Item={
        "pk": {"S": 'acme/pairs#["ap","a|b"]'}, "table_id": {"S": "acme/pairs"},
        "row_key": {"S": '["ap","a|b"]'}, "version": {"S": "V1"}, "deleted": {"BOOL": False},
        "row": {"M": row}})  # fmt: skip
    keys_file = tmp_path / "pairs.jsonl"
    status, out, _ = verify(capsys, "acme/pairs", "--keys-file", str(keys_file))
    assert status == 1
    listed = {
        (d["kind"], d["key"], tuple(d.get("key_values", ())), tuple(d.get("columns", ())))
        for d in map(json.loads, keys_file.read_text().splitlines())
    }
    assert listed == {
        ("missing", '["us","d"]', ("us", "d"), ()),
        ("different", '["eu","c"]', ("eu", "c"), ("label",)),
        ("extra", '["ap","a|b"]', ("ap", "a|b"), ()),
    }
    status, out, _ = verify(capsys, "acme/pairs", "--repair")
    assert status == 0, out
    assert rows_of(run, "acme/pairs", PAIRS["columns"]) == sorted(PAIRS_V1)


def test_what_cannot_be_verified_is_one_line_and_status_2(stack, capsys):
    for table, message in [
        ("acme", "invalid table 'acme': expected TENANT/TABLE"),
        ("acme/Items", "invalid table 'Items': expected lowercase letters"),
        ("acme/never", "no version of acme/never has been applied: nothing to verify against"),
    ]:
        status, out, err = verify(capsys, table)
        assert status == 2 and out == "", (table, out)
        assert err.startswith(f"snapcdc verify: error: {message}") and err.count("\n") == 1, err
    status, _, err = verify(capsys, "acme/items", "--limit", "-1")
    assert (status, err) == (2, "snapcdc verify: error: --limit must be 0 or more, got -1\n")


# -- a version in flight is never drift -------------------------------------------------------

# A hold the test does not release within two minutes fails the held invocation.
STRICT = {"timeout": 120.0, "strict": True}


def until(condition, what, seconds=60):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_table_whose_version_is_being_applied_is_busy_not_drifted(stack, capsys):
    aws, run = stack
    publishing = Held(
        aws, "PublishFunction", lambda e: e["upload"]["table_id"] == "acme/flight", **STRICT
    )
    with publishing:
        run.put("acme/flight/V2/a.csv.gz")
        assert publishing.entered.wait(60)
        status, out, err = verify(capsys, "acme/flight")
        assert status == 3, (out, err)
        assert "acme/flight: BUSY" in out and "is locked by arn:aws:states:" in out
        assert last_verify(run, "acme/flight")["status"] == "BUSY"
    run.settle(120)  # (the next tests verify the table once V2 is applied)


def test_ops_published_but_not_yet_applied_make_the_table_busy(stack, capsys):
    aws, run = stack
    consumer = Held(aws, "ConsumerFunction", lambda event: True, **STRICT)
    with consumer:
        started = run.put("acme/flight/V3/a.csv.gz")
        assert consumer.entered.wait(60)

        def finished():
            record = run.registry.find_upload(
                "acme/flight", started.key, started.sequencer,
                table_name=run.outputs["RegistryTableName"],
            )  # fmt: skip
            return (record or {}).get("status") == "SUCCEEDED"

        until(finished, "V3 to finish while its ops wait for the consumer")
        status, out, err = verify(capsys, "acme/flight")
        assert status == 3, (out, err)
        assert "version V3 of acme/flight has" in out and "published ops not applied yet" in out
    run.settle(120)


def test_a_version_arriving_during_a_verify_waits_and_is_not_mistaken_for_drift(stack, capsys):
    aws, run = stack
    sfn = aws.client("stepfunctions")
    exporting = Held(
        aws,
        "VerifyFunction",
        lambda e: (
            e.get("action") == "export"
            and [t["table_id"] for t in e["run"]["tables"]] == ["acme/flight"]
        ),
        **STRICT,
    )
    result = {}
    before = last_verify(run, "acme/flight")
    head = run.registry.get_head("acme/flight", table_name=run.outputs["RegistryTableName"])
    with exporting:
        cli = threading.Thread(target=lambda: result.update(rc=main(
            ["verify", "acme/flight", "--stack", "snapcdc", "--poll", "0.1"])))  # fmt: skip
        cli.start()
        assert exporting.entered.wait(60)  # the table is locked, its export not yet asked for
        arriving = run.put("acme/flight/V4/a.csv.gz")

        def waiting_at_the_lock():
            from snapcdc_local.emulator.stepfunctions import execution_history, list_all_executions

            # the execution Route started under the version's name
            named = [e["executionArn"] for e in list_all_executions(sfn)
                     if e["name"].startswith("acme-flight-V4-")]  # fmt: skip
            return any(
                e.get("stateEnteredEventDetails", {}).get("name") == "LockBusy"
                for arn in named
                for e in execution_history(sfn, arn)
            )

        until(waiting_at_the_lock, "the arriving version to find the table locked")
    cli.join(120)
    # compared with the head when the table was locked, not with V4
    assert result["rc"] == 0
    during = last_verify(run, "acme/flight")
    assert during["sk"] != (before or {}).get("sk")
    assert (during["status"], during["version"]) == ("CLEAN", head["last_applied_version"])
    run.settle(120)
    assert run.resolve(arriving).status == "SUCCEEDED"
    status, out, _ = verify(capsys, "acme/flight")
    assert status == 0 and "CLEAN against version V4" in out, out


# -- snapcdc local run --sequence ----------------------------------------------------------


def test_verify_and_repair_lines_of_a_local_run_sequence(stack, tmp_path):
    from snapcdc_local.cli.main import CliError
    from snapcdc_local.cli.run_driver import drive
    from snapcdc_local.cli.run_uploads import plan_uploads

    aws, run = stack
    sequence = tmp_path / "sequence.txt"
    sequence.write_text("acme/seq/V1/a.csv.gz\nverify acme/seq   # clean\nrepair acme/seq\n")
    ddb, table = target(aws)

    verified = []

    def tamper_after_the_first_verify(upload):
        if upload.action == "verify" and not verified:
            verified.append(upload)
            ddb.delete_item(TableName=table, Key={"pk": {"S": "acme/seq#2"}})

    keys = plan_uploads(run.data_dir, sequence)
    assert keys[-2:] == ["verify acme/seq", "repair acme/seq"]
    reported = drive(run, keys, on_upload=tamper_after_the_first_verify)
    rows = [(u.label, u.status, u.version) for u in reported]
    assert rows == [
        ("acme/seq/V1/a.csv.gz", "SUCCEEDED", "V1"),
        ("verify acme/seq", "CLEAN", "V1"),
        ("repair acme/seq", "CLEAN", "V1"),
    ]
    assert reported[2].reason == (
        "DRIFT: 1 missing, 0 extra, 0 different; repaired 1 rows (0 stale, 0 skipped, 0 failed)"
        "; after the repair: CLEAN: 0 missing, 0 extra, 0 different"
    )
    assert reported[2].report()["action"] == "repair"
    sequence.write_text("verify acme\n")
    with pytest.raises(CliError, match=r"sequence.txt:1: invalid table 'acme': expected"):
        plan_uploads(run.data_dir, sequence)


# -- every table, the metric, the grants ----------------------------------------------------


def test_every_table_at_once_as_the_schedule_starts_it(stack):
    aws, run = stack
    from snapcdc_local.stack.verify import wait

    sfn = aws.client("stepfunctions")
    arn = sfn.start_execution(
        stateMachineArn=aws.stack.outputs["VerifyStateMachineArn"],
        input=json.dumps({"tables": "all", "repair": False}),
    )["executionArn"]
    described = wait(sfn, arn, 120, 0.1)
    assert described["status"] == "SUCCEEDED", described
    report = json.loads(described["output"])
    # every table with a head (acme/seq too, once the sequence test ran), each clean by now:
    # counted, not listed
    assert report["tables"] == [] and report["statuses"]["CLEAN"] >= 3, report
    records = [last_verify(run, f"acme/{t}") for t in ("flight", "items", "pairs")]
    assert {(r["run_id"], r["status"]) for r in records} == {(report["run_id"], "CLEAN")}
    # DriftedRows: a point per verify, with and without the table's dimension
    metrics = aws.client("cloudwatch").list_metrics(Namespace="snapcdc", MetricName="DriftedRows")
    tables = {d["Value"] for m in metrics["Metrics"] for d in m.get("Dimensions", [])}
    assert {"acme/items", "acme/pairs"} <= tables


VERIFY_ROLES = ("VerifyRole", "RepairRole", "VerifyStateMachineRole")
# Grants a verify on the happy path does not exercise: (role, action, a part of the resource)
VERIFY_OFF_THE_HAPPY_PATH = {
    # a wide table's statements go to S3 (snapcdc.steps.plan.statement), read back by Query
    ("VerifyRole", "s3:PutObject", "/plans/"),
    # a missing object answers 404 rather than 403 with ListBucket
    ("VerifyRole", "s3:ListBucket", "resultsbucket"),
    ("RepairRole", "s3:ListBucket", "resultsbucket"),
}


def test_verify_calls_are_all_granted_and_every_verify_grant_is_used(stack):
    """Run after the module's other tests (repairs included), as a module runs."""
    from moto.iam.models import iam_backends

    from snapcdc_local.emulator.iam_policy import Decision, statement_applies, statements

    aws, _ = stack
    authorizer = aws.iam
    assert authorizer.denied == [] and authorizer.unmapped == []
    unused = set()
    for role in iam_backends[authorizer.where.account]["global"].roles.values():
        name = role.arn.rsplit("/", 1)[-1].split("-")[1]
        if name not in VERIFY_ROLES:
            continue
        for document in authorizer.role_policies(role.arn):
            for statement in statements(document):
                actions = statement["Action"]
                for action in [actions] if isinstance(actions, str) else actions:
                    if action.startswith("logs:"):
                        continue
                    if not any(
                        (r, a) == (role.arn, action)
                        and d is Decision.ALLOW
                        and statement_applies(
                            statement, action, resource, role.arn.split(":")[4], dict(context)
                        )
                        for (r, a, resource, *context), d in authorizer.decisions.items()
                    ):
                        targets = statement["Resource"]
                        for target_ in [targets] if isinstance(targets, str) else targets:
                            unused.add((name, action, target_))
    unexplained = {
        (role, action, target_)
        for role, action, target_ in unused
        if not any(
            (role, action) == (r, a) and where in target_
            for r, a, where in VERIFY_OFF_THE_HAPPY_PATH
        )
    }
    assert not unexplained, sorted(unexplained)
