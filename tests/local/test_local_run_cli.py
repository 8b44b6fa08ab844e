"""``snapcdc local run`` as a command: its output, report, dump, history and its errors."""

from __future__ import annotations

import json

import pytest
from datasets import assert_every_op_applied, read_dump, write_config, write_export

from snapcdc_local.cli.main import main

ROWS_V1 = [["k1", "one"], ["k2", "two"]]
ROWS_V2 = [["k1", "uno"], ["k3", "three"]]


@pytest.fixture
def data(tmp_path):
    data = tmp_path / "data"
    write_config(data, "shop", "tags", {"columns": ["tag", "label"], "header": False})
    write_export(data, "shop/tags/V1/x.csv.gz", ROWS_V1, delimiter=",")
    write_export(data, "shop/tags/V2/x.csv.gz", ROWS_V2, delimiter=",")
    (data / "README.txt").write_text("not an export: ignored\n")
    return data


def test_a_run_prints_a_row_per_upload_and_writes_report_dump_and_history(data, tmp_path, capsys):
    sequence = tmp_path / "sequence.txt"
    lines = ["shop/tags/V1/x.csv.gz", "shop/tags/V2/x.csv.gz", "", "# again: not newer"]
    sequence.write_text("\n".join([*lines, "shop/tags/V1/x.csv.gz"]) + "\n")
    args = ["local", "run", str(data), "--sequence", str(sequence), "--history", "--redrive"]
    args += ["--report", str(tmp_path / "report.json"), "--dump-target", str(tmp_path / "dump")]
    assert main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == [
        "key", "status", "inserts", "updates", "deletes", "published", "applied", "seconds"
    ]  # fmt: skip
    rows = [line.split()[:7] for line in out[1:4]]
    assert rows == [
        ["shop/tags/V1/x.csv.gz", "SUCCEEDED", "2", "0", "0", "2", "2"],
        ["shop/tags/V2/x.csv.gz", "SUCCEEDED", "1", "1", "1", "3", "3"],
        ["shop/tags/V1/x.csv.gz", "SKIPPED", "0", "0", "0", "0", "0"],
    ]
    # a SKIPPED version says why, under its row (the registry's reason, as HELD ones do)
    skip_reason = "version V1 is not after the last applied version V2"
    assert out[4].split(None, 1) == ["reason:", skip_reason]
    assert "0 object(s): 0 op(s) applied, 0 stale, 0 failed" in out  # nothing to redrive
    titles = next(i for i, line in enumerate(out) if line.split()[:2] == ["table", "succeeded"])
    summary = out[titles + 1].split()
    assert summary == ["shop/tags", "2", "1", "0", "2", "V2"]
    assert any(line.strip().startswith("history of shop-tags-V2-") for line in out)
    assert not any(line.split()[:2] == ["LockWait", "Wait"] for line in out)
    assert any(line.split()[:2] == ["Publish", "Task"] for line in out)

    report = json.loads((tmp_path / "report.json").read_text())
    assert [(v["key"], v["status"], v["error"], v["reason"]) for v in report["versions"]] == [
        ("shop/tags/V1/x.csv.gz", "SUCCEEDED", None, None),
        ("shop/tags/V2/x.csv.gz", "SUCCEEDED", None, None),
        ("shop/tags/V1/x.csv.gz", "SKIPPED", None, skip_reason),
    ]
    assert set(report["versions"][0]) == {
        "key",
        "tenant",
        "table",
        "version",
        "status",
        "rows_read",
        "seconds",
        "stages",
        "inserts",
        "updates",
        "deletes",
        "published",
        "applied",
        "stale",
        "error",
        "reason",
        "action",
    }
    assert_every_op_applied(report["versions"])
    assert [v["rows_read"] for v in report["versions"]] == [2, 2, 0]
    # stage times come from the execution history and the registry polls, inside the upload's
    first, second, skipped = report["versions"]
    for version in (first, second):
        assert set(version["stages"]) == {"delta", "publish", "apply"}, version
        assert 0 < version["stages"]["publish"] <= version["stages"]["apply"] <= version["seconds"]
    assert set(skipped["stages"]) <= {"delta"}
    assert set(report["seconds"]) == {"deploy", "uploads", "summary"}
    assert read_dump(tmp_path / "dump" / "shop" / "tags.csv") == [["tag", "label"], *ROWS_V2]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["missing-dir"], "data directory missing-dir does not exist"),
        (["{data}", "--sequence", "{tmp}/nope.txt"], "cannot read sequence file"),
        (
            ["{data}", "--sequence", "{tmp}/bad.txt"],
            "bad.txt:2: 'shop/tags/V9/x.csv.gz' is not a file under",
        ),
        (
            ["{data}", "--parameter", "NoSuchParameter=1"],
            "parameter(s) ['NoSuchParameter'] not declared by the template",
        ),
        (["{data}", "--parameter", "novalue"], "--parameter 'novalue' is not KEY=VALUE"),
        # the template's own bounds, checked as CloudFormation checks them
        (
            ["{data}", "--parameter", "ShardCount=0"],
            "parameter ShardCount='0' is not allowed: must be at least 1",
        ),
        (
            ["{data}", "--parameter", "StreamMode=FAST"],
            "parameter StreamMode='FAST' is not allowed: must be one of ['PROVISIONED', "
            "'ON_DEMAND']",
        ),
        (["{tmp}/bad.txt"], "data directory {tmp}/bad.txt is not a directory"),
        (
            ["{tmp}/plain"],
            "no *.csv.gz export or _manifest.json in {tmp}/plain; a/t/V1/x.csv: not an export: "
            "the pipeline starts only on keys ending in .csv.gz (gzip CSV) or _manifest.json, "
            "spelled in lowercase; compress it with gzip and name it a/t/V1/x.csv.gz",
        ),
        # sequence lines: each wrong one named with its line, and what was meant if it is clear
        (
            ["{data}", "--sequence", "{tmp}/approve.txt"],
            "approve.txt:1: 'approve': write approve KEY or reject KEY",
        ),
        (
            ["{data}", "--sequence", "{tmp}/cased.txt"],
            "cased.txt:1: 'Shop/tags/V1/x.csv.gz' is "
            "not a file under {data}; did you mean shop/tags/V1/x.csv.gz?",
        ),
        (
            ["{data}", "--sequence", "{tmp}/outside.txt"],
            "outside.txt:1: '../bad.txt' is not a key relative to {data}",
        ),
        (
            ["{data}", "--sequence", "{tmp}/latin1.txt"],
            "sequence file {tmp}/latin1.txt is not UTF-8 text",
        ),
        (["{data}", "--sequence", "{tmp}/empty.txt"], "sequence file {tmp}/empty.txt lists no key"),
        (["{data}", "--report", "{tmp}"], "--report {tmp} is a directory; give a file"),
    ],
)
def test_a_run_that_cannot_start_fails_with_one_line(
    data, tmp_path, capsys, monkeypatch, arguments, message
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.txt").write_text("shop/tags/V1/x.csv.gz\nshop/tags/V9/x.csv.gz\n")
    (tmp_path / "approve.txt").write_text("approve\n")
    (tmp_path / "plain" / "a" / "t" / "V1").mkdir(parents=True)
    (tmp_path / "plain" / "a" / "t" / "V1" / "x.csv").write_text("id\n1\n")
    (tmp_path / "cased.txt").write_text("Shop/tags/V1/x.csv.gz\n")
    (tmp_path / "outside.txt").write_text("../bad.txt\n")
    (tmp_path / "latin1.txt").write_bytes("shop/tags/V1/\xe9.csv.gz\n".encode("latin-1"))
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    args = [a.format(data=data, tmp=tmp_path) for a in arguments]
    assert main(["local", "run", *args]) == 1
    captured = capsys.readouterr()
    [line] = captured.err.strip().splitlines()
    assert line.startswith("snapcdc local: error: ")
    assert message.format(tmp=tmp_path, data=data) in line
    assert "Traceback" not in captured.err


def test_a_run_with_redrive_reapplies_the_batches_the_consumer_gave_up_on(data, tmp_path):
    """--redrive runs stack.redrive on the emulated stack once the uploads have settled."""
    from botocore.exceptions import ClientError

    from snapcdc_local.cli.run import RunOptions, run_pipeline, write_report

    def deny_until_a_batch_is_discarded(aws):
        consumer = aws.stack.physical_id("ConsumerFunction")
        table = aws.stack.outputs["TargetTableName"]

        def deny(params, **kwargs):
            if params.get("TableName") == table and not aws.kinesis.discarded:
                raise ClientError(
                    {"Error": {"Code": "AccessDeniedException", "Message": "denied (injected)"}},
                    "PutItem",
                )

        def consumer_with_fault(event, context, handler):
            from snapcdc.aws.clients import client

            events = client("dynamodb").meta.events
            events.register("provide-client-params.dynamodb.PutItem", deny, unique_id="deny")
            try:
                return handler(event, context)
            finally:
                events.unregister("provide-client-params.dynamodb.PutItem", unique_id="deny")

        aws.lambdas.overrides[consumer] = consumer_with_fault

    sequence = tmp_path / "sequence.txt"
    sequence.write_text("shop/tags/V1/x.csv.gz\n")
    options = RunOptions(
        data_dir=data, sequence=sequence, redrive=True, parameters={"ConsumerMaxRetries": "0"}
    )
    result = run_pipeline(
        options, dump_target=tmp_path / "dump", emulator_hook=deny_until_a_batch_is_discarded
    )
    [upload] = result.uploads
    assert (upload.status, upload.inserts) == ("SUCCEEDED", 2)
    [redriven] = result.redriven
    assert redriven.key.startswith("aws/lambda/")
    assert (redriven.condition, redriven.applied, redriven.failed, redriven.removed) == (
        "RetryAttemptsExhausted",
        2,  # ops: both rows travelled in one aggregated record
        [],
        True,
    )
    assert result.tables["shop/tags"]["rows"] == 2
    assert read_dump(tmp_path / "dump" / "shop" / "tags.csv") == [["tag", "label"], *ROWS_V1]
    write_report(result, tmp_path / "report.json")
    report = json.loads((tmp_path / "report.json").read_text())
    assert [o["applied"] for o in report["redriven"]] == [2]
