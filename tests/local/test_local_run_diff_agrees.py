"""``snapcdc diff`` and the pipeline on the same files: the same counts, the same FAILED words.

Each version goes through the real stack (``snapcdc local run``) and through ``snapcdc diff``
against the version before it (a first load against a header-only file). The cases are the
disagreements issue 11 found: a header-only export (``snapcdc diff`` crashed, the engine's
``count_if`` over no rows was NULL), the check's reasons (worded differently by diff), and a
header ``id, name`` (accepted by Plan, refused by diff).
"""

from __future__ import annotations

import gzip

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


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from snapcdc_local.cli.run import RunOptions, run_pipeline

    data = tmp_path_factory.mktemp("data")
    for table in ("empty", "bad", "spaced"):
        write_config(data, "acme", table, {"key": ["id"], "allow_empty": True})
    for key, text in EXPORTS.items():
        write_raw(data, key, gzip.compress(text.encode(), mtime=0))
    (data / "sequence.txt").write_text("\n".join(EXPORTS) + "\n")
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
        assert err == f"snapcdc diff: error: NEW file {data / key}: {reason}\n"
    else:
        assert (code, err) == (0, "")
        assert out.split() == ["INSERT", str(counts[0]), "UPDATE", str(counts[1])] + [
            "DELETE",
            str(counts[2]),
        ]
