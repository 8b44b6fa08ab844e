"""``snapcdc local run`` at the edges a new user meets first: keys outside the contract, files
that are no export, a second file in an applied version, an approve the registry refuses, and
the run's outputs (summary, report, dumps, progress without a terminal).

Two runs through the command line. The first reads a whole DATA_DIR: every key outside the
contract ends FAILED with the contract's reason (the run goes on), every file no rule starts on
is IGNORED with why, and nothing is left out without a word. The second follows a sequence
whose approve the registry refuses after a reject: the refusal is a line of the run, which goes
on to the end and writes its report and dump.
"""

from __future__ import annotations

import gzip
import io
import json
import sys
import threading

import pytest
from datasets import read_dump, write_export, write_raw

from snapcdc_local.cli.main import main

HEADER = ["id", "name"]
ROWS = [["1", "a"], ["2", ""], ["3", "c"], ["4", "d"]]
NOT_AN_EXPORT = (
    "not an export: the pipeline starts only on keys ending in .csv.gz (gzip CSV) or "
    "_manifest.json, spelled in lowercase"
)


def gz(rows):
    return gzip.compress(("\n".join(",".join(r) for r in [HEADER, *rows]) + "\n").encode())


TREE = {  # key -> (what the run reports: status, error or reason)
    "acme/t/V1/export.csv.gz": ("SUCCEEDED", None),
    "acme/t/V1/second.csv.gz": (
        "SKIPPED",
        "version V1 is not after the last applied version V1 (applied from export.csv.gz): "
        'each file is a version of its own; for versions made of several files, set "complete_on"'
        ': "manifest" in acme/t/_table.json and upload the parts, then a _manifest.json listing '
        "them",
    ),
    "acme/t/V2/export.csv": (
        "IGNORED",
        f"{NOT_AN_EXPORT}; compress it with gzip and name it acme/t/V2/export.csv.gz",
    ),
    "acme/t/V3/export.CSV.GZ": (
        "IGNORED",
        f"{NOT_AN_EXPORT}; rename it to acme/t/V3/export.csv.gz",
    ),
    "acme/_table.json": (
        "IGNORED",
        "a table's configuration is read only from {tenant}/{table}/_table.json; move it there",
    ),
    "notes.md": ("IGNORED", f"{NOT_AN_EXPORT}; it is stored in the bucket and never read"),
    "Globex/upper/V1/export.csv.gz": (
        "FAILED",
        "ContractError: invalid tenant 'Globex': expected lowercase letters, digits and '_', "
        "starting with a letter (object key 'Globex/upper/V1/export.csv.gz', as the event "
        "delivered it)",
    ),
    # no version folder; and a DATA_DIR one folder too deep gives keys like this one
    "globex/bad/export.csv.gz": (
        "FAILED",
        "ContractError: export key 'globex/bad/export.csv.gz' is not of the form "
        "{tenant}/{table}/{version}/{file}.csv.gz (object key 'globex/bad/export.csv.gz', as "
        "the event delivered it)",
    ),
    "acme/t/V13/my export.csv.gz": (
        "FAILED",
        "ContractError: invalid file name 'my export.csv.gz': expected letters, digits, '_', "
        "'-' and '.' (object key 'acme/t/V13/my export.csv.gz', as the event delivered it)",
    ),
}


def run_cli(capsys, monkeypatch, args):
    # stderr is no terminal here (a log file, CI): a line per stage, no live display
    monkeypatch.setattr(sys, "__stderr__", io.StringIO())
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    code = main(["local", "run", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    data = tmp_path_factory.mktemp("tree")
    for key in TREE:
        write_raw(data, key, gz(ROWS[:2]) if key.endswith(".csv.gz") else b"id,name\n1,a\n")
    return data


def test_every_file_is_uploaded_or_named_and_bad_keys_fail_alone(
    tree, tmp_path, capsys, monkeypatch
):
    report, dump = tmp_path / "report.json", tmp_path / "dump"
    args = [str(tree), "--report", str(report), "--dump-target", str(dump)]
    code, out, err = run_cli(capsys, monkeypatch, [*args, "--dump-format", "jsonl"])
    assert code == 0, err
    versions = json.loads(report.read_text())["versions"]
    got = {v["key"]: (v["status"], v["error"] or v["reason"]) for v in versions}
    assert got == TREE
    assert len(versions) == len(TREE)  # each file once, none left out
    # each is named on its own line too, with its reason under it
    lines = out.splitlines()
    for key, (status, said) in TREE.items():
        row = next(i for i, line in enumerate(lines) if line.startswith(f"{key}  "))
        assert lines[row][len(key) :].split()[0] == status
        if said:
            assert " ".join(lines[row + 1].split()) in (f"error: {said}", f"reason: {said}")
    # the summary counts only tables (an IGNORED file is not one)
    titles = next(i for i, line in enumerate(lines) if line.split()[:1] == ["table"])
    assert [line.split()[0] for line in lines[titles + 1 :]] == [
        "Globex/upper",
        "acme/t",
        "globex/bad",
    ]
    # JSON Lines: an empty string stays one, as null would stay null
    assert (dump / "acme" / "t.jsonl").read_text() == (
        '{"id": "1", "name": "a"}\n{"id": "2", "name": ""}\n'
    )
    # no terminal: each version said where it was while it ran, one line per stage
    assert "acme/t/V1/export.csv.gz: done rows read 2 published 2 applied 2" in err.splitlines()


SEQUENCE = [
    "acme/h1/V1/a.csv.gz",
    "acme/h1/V2/a.csv.gz",  # deletes 3 of 4: HELD
    "approve acme/h1/V2/a.csv.gz",  # SUCCEEDED: the summary counts it so, not as held
    "acme/h2/V1/a.csv.gz",
    "acme/h2/V2/a.csv.gz",  # HELD
    "reject acme/h2/V2/a.csv.gz",
    "approve acme/h2/V2/a.csv.gz",  # refused: it was rejected
    "approve acme/h2/V1/a.csv.gz",  # refused: not held
    "acme/h2/V3/a.csv.gz",  # the run goes on
    "acme/h2/V3/a.csv",  # a plain CSV: uploaded, and named IGNORED
]


def test_a_refused_approve_is_a_line_of_the_run_which_goes_on(tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    for table in ("h1", "h2"):
        write_export(data, f"acme/{table}/V1/a.csv.gz", ROWS, header=HEADER, delimiter=",")
        write_export(data, f"acme/{table}/V2/a.csv.gz", ROWS[:1], header=HEADER, delimiter=",")
    write_export(data, "acme/h2/V3/a.csv.gz", ROWS[:3], header=HEADER, delimiter=",")
    write_raw(data, "acme/h2/V3/a.csv", b"id,name\n")
    sequence = tmp_path / "sequence.txt"
    sequence.write_text("\n".join(SEQUENCE) + "\n")
    report, dump = tmp_path / "report.json", tmp_path / "dump"
    args = [str(data), "--sequence", str(sequence), "--report", str(report)]
    code, out, err = run_cli(capsys, monkeypatch, [*args, "--dump-target", str(dump)])
    assert code == 0, err
    versions = json.loads(report.read_text())["versions"]
    assert [(v["action"], v["key"], v["status"]) for v in versions] == [
        ("upload", "acme/h1/V1/a.csv.gz", "SUCCEEDED"),
        ("upload", "acme/h1/V2/a.csv.gz", "HELD"),
        ("approve", "acme/h1/V2/a.csv.gz", "SUCCEEDED"),
        ("upload", "acme/h2/V1/a.csv.gz", "SUCCEEDED"),
        ("upload", "acme/h2/V2/a.csv.gz", "HELD"),
        ("reject", "acme/h2/V2/a.csv.gz", "REJECTED"),
        ("approve", "acme/h2/V2/a.csv.gz", "REFUSED"),
        ("approve", "acme/h2/V1/a.csv.gz", "REFUSED"),
        ("upload", "acme/h2/V3/a.csv.gz", "SUCCEEDED"),
        ("upload", "acme/h2/V3/a.csv", "IGNORED"),
    ]
    assert [v["reason"] for v in versions if v["status"] == "REFUSED"] == [
        "acme/h2/V2/a.csv.gz is not HELD (its upload is REJECTED); nothing to resume",
        "acme/h2/V1/a.csv.gz is not HELD (its upload is SUCCEEDED); nothing to resume",
    ]
    lines = out.splitlines()
    refused = lines.index("approve acme/h2/V2/a.csv.gz  REFUSED")
    assert " ".join(lines[refused + 1].split()) == (
        "reason: acme/h2/V2/a.csv.gz is not HELD (its upload is REJECTED); nothing to resume"
    )
    # the summary counts each version where it stands now: h1's V2 was approved, h2's rejected
    titles = next(i for i, line in enumerate(lines) if line.split()[:1] == ["table"])
    assert lines[titles].split()[-2:] == ["held", "rejected"]
    summary = {line.split()[0]: line.split()[1:] for line in lines[titles + 1 :]}
    # succeeded skipped failed rows version held rejected
    assert summary == {
        "acme/h1": ["2", "0", "0", "1", "V2", "0", "0"],
        "acme/h2": ["2", "0", "0", "3", "V3", "0", "1"],
    }
    # the dump: CSV with \n line ends
    assert (dump / "acme" / "h2.csv").read_bytes() == b"id,name\n1,a\n2,\n3,c\n"
    assert read_dump(dump / "acme" / "h1.csv") == [HEADER, ROWS[0]]


def test_a_data_dir_one_folder_too_deep_fails_each_key_and_the_run_goes_on(tmp_path):
    """``snapcdc local run good/acme`` (the tenant's folder, not the bucket's): every key is
    ``{table}/{version}/{file}``, which the pipeline fails by its contract. Such an execution
    fails at once, and its "Execution Status Change" event reaches the bus while the run
    follows an upload; each put is held here until its execution's end was delivered, so that
    event surely falls inside the run's look at the bus for the upload's own S3 event."""
    from snapcdc_local.cli.run import RunOptions, run_pipeline

    tenant = tmp_path / "good" / "acme"
    for key in ("t/V1/export.csv.gz", "u/V1/export.csv.gz"):
        write_raw(tenant, key, gz(ROWS))
    write_raw(tenant, "t/_table.json", b'{"key": ["id"]}')

    def ended(aws) -> int:
        return sum(d.event.get("source") == "aws.states" for d in list(aws.events.deliveries))

    def hold_puts_until_their_execution_ended(aws):
        made = aws.client

        def client(service):
            made_client = made(service)
            if service == "s3":
                put = made_client.put_object

                def put_object(**request):
                    before = ended(aws)
                    answer = put(**request)
                    if request["Key"].endswith(".csv.gz"):
                        done = threading.Event()
                        for _ in range(600):  # the execution fails in well under a second
                            if ended(aws) > before or done.wait(0.05):
                                break
                        assert ended(aws) > before, "the execution did not end"
                    return answer

                made_client.put_object = put_object
            return made_client

        aws.client = client

    result = run_pipeline(
        RunOptions(data_dir=tenant), emulator_hook=hold_puts_until_their_execution_ended
    )
    got = {u.key: (u.status, u.error or u.reason) for u in result.uploads}
    form = "is not of the form {tenant}/{table}/{version}/{file}.csv.gz"
    assert got == {
        "t/V1/export.csv.gz": (
            "FAILED",
            f"ContractError: export key 't/V1/export.csv.gz' {form} (object key "
            "'t/V1/export.csv.gz', as the event delivered it)",
        ),
        "u/V1/export.csv.gz": (
            "FAILED",
            f"ContractError: export key 'u/V1/export.csv.gz' {form} (object key "
            "'u/V1/export.csv.gz', as the event delivered it)",
        ),
        "t/_table.json": (
            "IGNORED",
            "a table's configuration is read only from {tenant}/{table}/_table.json; move it there",
        ),
    }
