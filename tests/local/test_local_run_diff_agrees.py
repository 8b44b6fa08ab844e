"""``snapcdc diff`` and the pipeline on the same files: the same counts, the same FAILED words.

Each version goes through the real stack (``snapcdc local run``) and through ``snapcdc diff``
against the version before it (a first load against a header-only file). The cases are the
disagreements issue 11 found: a header-only export (``snapcdc diff`` crashed, the engine's
``count_if`` over no rows was NULL), the check's reasons (worded differently by diff), and a
header ``id, name`` (accepted by Plan, refused by diff).
"""

from __future__ import annotations

import gzip
import re

import pytest
from datasets import write_config, write_raw

from snapcdc_local.cli.main import main

EXPORTS = {
    # header-only first load, a delta from it, a delta back to it (allow_empty: not held)
    "acme/empty/V1/export.csv.gz": "id,name\n",
    "acme/empty/V2/export.csv.gz": "id,name\n1,a\n2,b\n",
    "acme/empty/V3/export.csv.gz": "id,name\n",
    # a duplicate key and a ragged row: the version fails its check
    "acme/bad/V1/export.csv.gz": "id,name\n1,a\n1,b\n2\n",
    # names with spaces around them: Plan strips them
    "acme/spaced/V1/export.csv.gz": "id, name\n1,a\n",
    "acme/spaced/V2/export.csv.gz": " id ,name \n1,b\n2,c\n",
}
EXPECTED = {
    "acme/empty/V1/export.csv.gz": ("SUCCEEDED", 0, 0, 0),
    "acme/empty/V2/export.csv.gz": ("SUCCEEDED", 2, 0, 0),
    "acme/empty/V3/export.csv.gz": ("SUCCEEDED", 0, 0, 2),
    "acme/bad/V1/export.csv.gz": ("FAILED", 0, 0, 0),
    "acme/spaced/V1/export.csv.gz": ("SUCCEEDED", 1, 0, 0),
    "acme/spaced/V2/export.csv.gz": ("SUCCEEDED", 1, 1, 0),
}


GOOD = gzip.compress(b"id,name\n" + b"".join(b"%d,n%d\n" % (i, i) for i in range(500)), mtime=0)
# Files that fail, each diffed against V1 (no _table.json: the defaults)
BAD = {
    "acme/edge/V1/export.csv.gz": GOOD,
    "acme/edge/V2/export.csv.gz": b"id,name\n1,a\n",  # named .gz, not gzip
    "acme/edge/V3/export.csv.gz": GOOD[: len(GOOD) // 2],  # cut short
    "acme/edge/V4/export.csv.gz": gzip.compress(b"id,Contact Phone\n1,a\n"),
    "acme/edge/V5/export.csv.gz": gzip.compress(b"id,name\n1,a\n1,b\n"),
    "acme/edge/V6/export.csv.gz": gzip.compress(b"id,name\n1,a\xff\n"),  # not UTF-8
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from snapcdc_local.cli.run import RunOptions, run_pipeline

    data = tmp_path_factory.mktemp("data")
    for table in ("empty", "bad", "spaced"):
        write_config(data, "acme", table, {"key": ["id"], "allow_empty": True})
    for key, text in EXPORTS.items():
        write_raw(data, key, gzip.compress(text.encode(), mtime=0))
    for key, body in BAD.items():
        write_raw(data, key, body)
    (data / "sequence.txt").write_text("\n".join([*EXPORTS, *BAD]) + "\n")
    result = run_pipeline(RunOptions(data_dir=data, sequence=data / "sequence.txt"))
    empty = data / "header-only.csv"
    empty.write_text("id,name\n")
    return data, empty, {u.report()["key"]: u.report() for u in result.uploads}


def diff(capsys, old, new) -> tuple[int, str, str]:
    code = main(["diff", str(old), str(new), "--key", "id"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("key", list(EXPECTED))
def test_diff_and_the_pipeline_agree(run, capsys, key):
    data, empty, reports = run
    report = reports[key]
    status, *counts = EXPECTED[key]
    assert (report["status"], report["inserts"], report["updates"], report["deletes"]) == (
        status,
        *counts,
    ), report
    version = int(key.split("/")[2].removeprefix("V"))
    previous = data / key.replace(f"/V{version}/", f"/V{version - 1}/")
    old = previous if previous.exists() else empty
    code, out, err = diff(capsys, old, data / key)
    if status == "FAILED":
        reason = report["error"].removeprefix("ExportCheckFailed: ")
        assert reason.startswith("export check failed: 1 duplicate key(s)"), report["error"]
        assert (code, out) == (1, "")
        # the same sentence; a bad row's sample names the object as each reader knows it
        shown = re.sub(rf"s3://[^/]+/{re.escape(key)}", str(data / key), reason)
        # advice on the key, in the words of each one's configuration
        shown = shown.replace(*ADVICE["acme/edge/V5/export.csv.gz"])
        assert err == f"snapcdc diff: error: NEW file {data / key}: {shown}\n"
    else:
        assert (code, err) == (0, "")
        assert out.split() == ["INSERT", str(counts[0]), "UPDATE", str(counts[1])] + [
            "DELETE",
            str(counts[2]),
        ]


# The pipeline's reason and diff's, for what each reader configures a table with
ADVICE = {
    "acme/edge/V4/export.csv.gz": (
        'set "columns": ["id", "Contact_Phone"] in the table\'s _table.json',
        "give --columns id,Contact_Phone",
    ),
    "acme/edge/V5/export.csv.gz": (
        'set "key": [...] in the table\'s _table.json',
        "give --key COLUMN[,COLUMN...]",
    ),
}


@pytest.mark.parametrize("key", list(BAD)[1:])
def test_diff_fails_a_file_as_the_pipeline_fails_it(run, capsys, key):
    """The same sentence, the file named as each reader knows it (the object, the path);
    advice about a setting in the words of each one's configuration; no internal location."""
    data, _, reports = run
    report = reports[key]
    assert report["status"] == "FAILED", report
    reason = re.sub(
        r"^(ContractError|ExportCheckFailed|QueryFailed: Athena statement check_export "
        r"\([0-9a-f-]+\) FAILED): ",
        "",
        report["error"],
    )
    assert "/tmp/" not in reason and "snapcdc-emulator" not in reason, reason
    code, out, err = diff(capsys, data / "acme/edge/V1/export.csv.gz", data / key)
    assert (code, out) == (1, ""), err
    path = str(data / key)
    shown = re.sub(rf"s3://[^/ ]+/{re.escape(key)}|\b{re.escape(key)}", path, reason)
    if key in ADVICE:
        in_pipeline, in_diff = ADVICE[key]
        assert in_pipeline in shown, shown
        shown = shown.replace(in_pipeline, in_diff)
    assert err == f"snapcdc diff: error: NEW file {path}: {shown}\n"
    assert "snapcdc-local" not in err and "/tmp/" not in err.replace(str(data), "")
