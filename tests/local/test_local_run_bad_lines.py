"""Bad lines, awkward names and line endings: one pipeline run, and ``snapcdc diff`` on the
same files, say the same thing about each.

Table ``acme/lines`` (headered, the defaults) gets a good first version, then one version per
kind of bad line (each FAILED, naming the problem and where it is), then a NUL byte and lone-CR
line endings (both loaded as Athena loads them). ``acme/moved`` reorders its columns without a
``_table.json`` (the key stays) and then loses its key column (refused, saying how to recover).
``acme/named`` has columns called ``op`` and ``_snapcdc_extra``; ``acme/long`` a column name
longer than Glue allows.
"""

from __future__ import annotations

import gzip
import re

import pytest
from datasets import read_dump, write_raw

from snapcdc_local.cli.main import main

GOOD = b"id,name\n1,a\n2,b\n"
LINES = {  # version -> (file content, what the pipeline and diff both say, or None: it loads)
    "V001": (GOOD, None),
    "V002": (
        b"id,name\n1,a\n\n2,b\n",
        "1 line(s) with no fields (empty, whitespace only, or the rest of a value cut by a line "
        "break), e.g. in <file>",
    ),
    "V003": (
        b"id,name\n1,a\n\n\n2,b\n",  # two blank lines: no duplicate key, no empty key
        "2 line(s) with no fields (empty, whitespace only, or the rest of a value cut by a line "
        "break), e.g. in <file>",
    ),
    "V004": (
        b"id,name\n1,a\n \t \n2,b\n",
        "1 line(s) with no fields (empty, whitespace only, or the rest of a value cut by a line "
        "break), e.g. in <file>",
    ),
    "V005": (
        b'id,name\n1,"two\nlines"\n2,b\n',
        '1 row(s) with a wrong number of fields, e.g. "1" (1 of 2 fields) in <file>; a value '
        "holding a line break splits its row: Athena ends a row at every line break, even inside "
        "quotes (https://docs.aws.amazon.com/athena/latest/ug/csv-serde.html); 1 line(s) with no "
        "fields (empty, whitespace only, or the rest of a value cut by a line break), e.g. in "
        "<file>",
    ),
    "V006": (
        b"id,name\n1,a,x\n2,b\n",
        '1 row(s) with a wrong number of fields, e.g. "1", "a", "x" (more than 2 fields: an '
        "unquoted value holding the delimiter?) in <file>",
    ),
    "V007": (b'id,name\n1,a\n"",b\n', '1 row(s) with an empty key, e.g. "", "b" in <file>'),
    # Athena's CsvDeserializer takes the escape character '\0' (our "no escape") for a NUL in
    # the data and drops it (tests/sql/test_engine.py::test_nul_is_the_escape_character...)
    "V008": (b"id,name\n1,a\x00b\n2,b\n", None),
    # a lone CR ends a line for Athena's line reader as \n does (Trino's TextLineReader)
    "V009": (b"id,name\r1,ab\r2,c\r", None),
}
LONG = "c" * 256
OTHER = {
    "acme/moved/V001/x.csv.gz": b"id,name\n1,a\n2,b\n",
    "acme/moved/V002/x.csv.gz": b"name,id\na,1\nB,2\n",  # reordered: the key stays id
    "acme/moved/V003/x.csv.gz": b"name,w\na,1\n",  # no id: refused, saying how to recover
    "acme/named/V001/x.csv.gz": b"id,op,_snapcdc_extra\n1,a,x\n2,b,y\n",
    "acme/named/V002/x.csv.gz": b"id,op,_snapcdc_extra\n1,a,x\n2,B,y\n",
    "acme/long/V001/x.csv.gz": f"id,{LONG}\n1,a\n".encode(),
}


def key(version: str) -> str:
    return f"acme/lines/{version}/x.csv.gz"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from snapcdc_local.cli.run import RunOptions, run_pipeline

    data = tmp_path_factory.mktemp("data")
    for version, (body, _) in LINES.items():
        write_raw(data, key(version), gzip.compress(body, mtime=0))
    for name, body in OTHER.items():
        write_raw(data, name, gzip.compress(body, mtime=0))
    out = tmp_path_factory.mktemp("out")
    result = run_pipeline(RunOptions(data_dir=data), dump_target=out)
    reports = {u.report()["key"]: u.report() for u in result.uploads}
    return data, reports, out


def reason(report: dict, uri: str) -> str:
    """The FAILED reason's problems, the object's URI written <file>."""
    assert report["status"] == "FAILED", report
    return report["error"].split("export check failed: ", 1)[1].replace(uri, "<file>")


def diff_error(capsys, old, new, *args: str) -> str:
    assert main(["diff", str(old), str(new), *args]) == 1
    return capsys.readouterr().err.strip()


@pytest.mark.parametrize("version", [v for v, (_, said) in LINES.items() if said])
def test_a_bad_line_is_named_alike_by_the_pipeline_and_by_diff(run, capsys, version):
    data, reports, _ = run
    said = LINES[version][1]
    uri = f"s3://{_import_bucket(reports)}/{key(version)}"

    assert reason(reports[key(version)], uri) == said
    new = data / key(version)
    prefix = f"snapcdc diff: error: NEW file {new}: export check failed: "
    assert diff_error(capsys, data / key("V001"), new) == prefix + said.replace("<file>", str(new))


def test_a_nul_byte_and_lone_cr_line_ends_load_as_athena_reads_them(run, capsys):
    data, reports, out = run
    assert reports[key("V008")]["status"] == "SUCCEEDED"
    assert reports[key("V008")]["updates"] == 1  # 1,a -> 1,ab: the NUL is dropped
    assert reports[key("V009")]["status"] == "SUCCEEDED"
    assert (reports[key("V009")]["updates"], reports[key("V009")]["inserts"]) == (1, 0)
    assert read_dump(out / "acme" / "lines.csv") == [["id", "name"], ["1", "ab"], ["2", "c"]]
    # diff reads the same rows: V001 -> V008 updates 1; V008 -> V009 updates 1 (b -> c)
    assert main(["diff", str(data / key("V001")), str(data / key("V008"))]) == 0
    assert capsys.readouterr().out.split()[:6] == ["INSERT", "0", "UPDATE", "1", "DELETE", "0"]
    assert main(["diff", str(data / key("V008")), str(data / key("V009"))]) == 0
    assert capsys.readouterr().out.split()[:6] == ["INSERT", "0", "UPDATE", "1", "DELETE", "0"]


def test_reordered_columns_keep_the_key_and_a_lost_key_says_how_to_recover(run, capsys):
    data, reports, out = run
    moved = {v: reports[f"acme/moved/{v}/x.csv.gz"] for v in ("V001", "V002", "V003")}
    assert [r["status"] for r in moved.values()] == ["SUCCEEDED", "SUCCEEDED", "FAILED"]
    assert (moved["V002"]["updates"], moved["V002"]["inserts"], moved["V002"]["deletes"]) == (
        1,
        0,
        0,
    )
    recovery = (
        "key changed from ['id'] to ['name']: the target holds the table's rows by key, so every "
        "version keeps the key of the version before; to load this export, give it the key "
        'column(s) [\'id\'] (or set "key": ["id"] in the table\'s _table.json) and upload it again'
    )
    assert recovery in moved["V003"]["error"]
    assert read_dump(out / "acme" / "moved.csv") == [["name", "id"], ["a", "1"], ["B", "2"]]
    v1, v2, v3 = (data / f"acme/moved/{v}/x.csv.gz" for v in ("V001", "V002", "V003"))
    assert main(["diff", str(v1), str(v2)]) == 0
    assert capsys.readouterr().out.split()[:6] == ["INSERT", "0", "UPDATE", "1", "DELETE", "0"]
    # diff knows only its two files: OLD's default key is its first column, so diff from V001
    # the same advice, in diff's own option
    in_diff = recovery.replace('set "key": ["id"] in the table\'s _table.json', "give --key id")
    assert diff_error(capsys, v1, v3).endswith(f"cannot be compared: {in_diff}")


def test_columns_named_like_the_pipelines_own_load_like_any_other(run, capsys, tmp_path):
    data, reports, out = run
    v1, v2 = (reports[f"acme/named/{v}/x.csv.gz"] for v in ("V001", "V002"))
    assert (v1["status"], v1["inserts"]) == ("SUCCEEDED", 2), v1
    assert (v2["status"], v2["updates"]) == ("SUCCEEDED", 1), v2
    assert read_dump(out / "acme" / "named.csv") == [
        ["id", "op", "_snapcdc_extra"],
        ["1", "a", "x"],
        ["2", "B", "y"],
    ]
    ops = tmp_path / "ops.csv"
    files = [data / f"acme/named/{v}/x.csv.gz" for v in ("V001", "V002")]
    assert main(["diff", *map(str, files), "--out", str(ops)]) == 0
    assert ops.read_text() == "op,id,op,_snapcdc_extra\nUPDATE,2,B,y\n"


def test_a_column_name_longer_than_glue_allows_is_called_too_long(run, capsys):
    data, reports, _ = run
    report = reports["acme/long/V001/x.csv.gz"]
    said = "is too long: 256 characters, at most 255 (Glue's limit for a column name"
    assert report["status"] == "FAILED" and said in report["error"]
    long = data / "acme/long/V001/x.csv.gz"
    assert said in diff_error(capsys, long, long)


def _import_bucket(reports: dict) -> str:
    """The import bucket's name, from a FAILED reason naming an object in it."""
    for report in reports.values():
        found = re.search(r"s3://([^/]+)/acme/", report.get("error") or "")
        if found:
            return found.group(1)
    raise AssertionError("no reason names an object")
