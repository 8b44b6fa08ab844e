"""``snapcdc diff`` through its real entry points: the console script and ``main()``."""

from __future__ import annotations

import csv
import gzip
import subprocess
import sys
from pathlib import Path

import pytest

from snapcdc_local.cli.diff import cache_dir
from snapcdc_local.cli.main import main

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data" / "tenant" / "test_table"
REFERENCE = ["--no-header", "--columns", "PK,COL_1,COL_2,COL_3", "--delimiter", ";"]


def write(path: Path, text: str) -> Path:
    raw = text.encode()
    path.write_bytes(gzip.compress(raw) if path.name.endswith(".gz") else raw)
    return path


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own cache of compiled SQL (not the user's), inherited by subprocesses."""
    path = tmp_path / "cache"
    monkeypatch.setenv("SNAPCDC_CACHE_DIR", str(path))
    return path


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    old = write(tmp_path / "old.csv.gz", "id,name\n1,a\n2,b\n3,c\n")
    new = write(tmp_path / "new.csv", 'id,name\n1,a\n2,"b, changed"\n4,d\n')
    return old, new


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "snapcdc_local", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )


def test_console_script_diffs_and_writes_ops(pair, tmp_path):
    old, new = pair
    out = tmp_path / "ops.csv"
    proc = run_cli("diff", str(old), str(new), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [
        "INSERT",
        "1",
        "UPDATE",
        "1",
        "DELETE",
        "1",
        "wrote",
        "3",
        "operations",
        "to",
        str(out),
    ]
    with out.open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["op", "id", "name"]
    assert sorted(rows[1:]) == [
        ["DELETE", "3", "c"],
        ["INSERT", "4", "d"],
        ["UPDATE", "2", "b, changed"],
    ]


def test_diff_starts_without_the_aws_libraries(pair):
    """``snapcdc diff`` touches no AWS API: importing boto3, botocore, moto or Powertools (the other
    commands' start-up) would cost it a good part of its run on a small pair."""
    old, new = pair
    probe = (
        "import sys\n"
        "from snapcdc_local.cli.main import main\n"
        f"assert main(['diff', {str(old)!r}, {str(new)!r}]) == 0\n"
        "heavy = ('boto3', 'botocore', 'moto', 'aws_lambda_powertools', 'pyarrow.compute')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m in heavy))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "[]"


def test_a_second_diff_of_the_same_shape_compiles_nothing(pair, tmp_path, cache, monkeypatch):
    """The statements of a table's diff are the same every run: the second run takes them
    from the cache, without importing sqlglot or compiling a template, and agrees."""
    old, new = pair
    probe = (
        "import sys, jinja2\n"
        "compiled = []\n"
        "jinja2.Environment._compile = lambda self, *a, real=jinja2.Environment._compile: "
        "compiled.append(1) or real(self, *a)\n"
        "from snapcdc_local.cli.main import main\n"
        f"assert main(['diff', {str(old)!r}, {str(new)!r}, '--out', {str(tmp_path / 'o.csv')!r}])"
        " == 0\n"
        "print('sqlglot' in sys.modules, len(compiled))\n"
    )
    runs = []
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=False
        )
        assert proc.returncode == 0, proc.stderr
        runs.append((proc.stdout.splitlines(), (tmp_path / "o.csv").read_text()))
    (first, first_ops), (second, second_ops) = runs
    assert first[:-1] == second[:-1] and first_ops == second_ops
    assert first[-1].split()[0] == "True" and int(first[-1].split()[1]) > 0
    assert second[-1] == "False 0"
    assert list((cache / "engine").rglob("*.json")) and list((cache / "jinja").iterdir())
    # an empty SNAPCDC_CACHE_DIR turns the cache off
    monkeypatch.setenv("SNAPCDC_CACHE_DIR", "")
    assert main(["diff", str(old), str(new)]) == 0
    assert cache_dir() is None


def test_diff_reads_each_file_once_while_it_plans(pair, monkeypatch):
    """Both exports are read once, by the reads diff starts before its planning, which the
    engine's tables then take (a diff that read them again would be slower, not wrong)."""
    import threading

    from snapcdc.model.contract import TableConfig
    from snapcdc_local.cli.diff import diff_files
    from snapcdc_local.engine import arrow_reader

    threads = []
    real_read_file = arrow_reader.read_file

    def read_file(*args):
        threads.append(threading.current_thread().name.split("_")[0])
        return real_read_file(*args)

    monkeypatch.setattr(arrow_reader, "read_file", read_file)
    assert diff_files(*pair, TableConfig()).counts == {"INSERT": 1, "UPDATE": 1, "DELETE": 1}
    assert threads == ["snapcdc-prefetch", "snapcdc-prefetch"]


def test_console_script_reports_bad_input_in_one_line(tmp_path):
    old = write(tmp_path / "old.csv", "id,v\n1,a\n")
    proc = run_cli("diff", str(old), str(tmp_path / "missing.csv"))
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert (
        proc.stderr == f"snapcdc diff: error: NEW file {tmp_path / 'missing.csv'} does not exist\n"
    )


def test_reference_exports(capsys):
    v1, v2, v3 = (
        sorted((DATA / v).glob("*.csv.gz"))[0]
        for v in ("20201230_V0001", "20201230_V0002", "20201231_V0001")
    )
    assert main(["diff", str(v1), str(v2), *REFERENCE]) == 0
    assert capsys.readouterr().out.split() == ["INSERT", "1", "UPDATE", "1", "DELETE", "1"]
    assert main(["diff", str(v2), str(v3), *REFERENCE]) == 0
    assert capsys.readouterr().out.split() == ["INSERT", "99,997", "UPDATE", "3", "DELETE", "0"]


@pytest.mark.parametrize(
    ("old", "new", "counts"),
    [
        ("id,name\n", "id,name\n1,a\n2,b\n", ["INSERT", "2", "UPDATE", "0", "DELETE", "0"]),
        ("id,name\n1,a\n2,b\n", "id,name\n", ["INSERT", "0", "UPDATE", "0", "DELETE", "2"]),
        ("id,name\n", "id,name\r\n", ["INSERT", "0", "UPDATE", "0", "DELETE", "0"]),
    ],
    ids=["from-header-only", "to-header-only", "both-header-only"],
)
def test_a_header_only_export_is_an_empty_table(tmp_path, capsys, old, new, counts):
    """Was a TypeError traceback: the engine's count_if over no rows was NULL (Trino's is 0)."""
    old_path = write(tmp_path / "old.csv.gz", old)
    new_path = write(tmp_path / "new.csv", new)
    out = tmp_path / "ops.csv"
    assert main(["diff", str(old_path), str(new_path), "--out", str(out)]) == 0
    assert capsys.readouterr().out.split()[:6] == counts
    assert out.read_text().splitlines()[0] == "op,id,name"


def test_header_names_are_stripped_as_the_pipeline_strips_them(tmp_path, capsys):
    """``id, name`` is accepted by Plan (names stripped); diff refused it with its own reader."""
    old = write(tmp_path / "old.csv", "id, name\n1,a\n2,b\n")
    new = write(tmp_path / "new.csv.gz", " id ,name \n1,a\n2,c\n")
    out = tmp_path / "ops.csv"
    assert main(["diff", str(old), str(new), "--out", str(out)]) == 0
    assert capsys.readouterr().out.split()[:6] == ["INSERT", "0", "UPDATE", "1", "DELETE", "0"]
    assert out.read_text() == "op,id,name\nUPDATE,2,c\n"


def test_options(tmp_path, capsys):
    old = write(tmp_path / "old.tsv", "r\tid\tv\nx\t1\t'a\\'b'\ny\t1\tq\n")
    new = write(tmp_path / "new.tsv", "r\tid\tv\nx\t1\t'a\\'B'\ny\t1\tq\n")
    args = [
        "diff",
        str(old),
        str(new),
        "--delimiter",
        "\\t",
        "--quote",
        "'",
        "--escape",
        "\\",
        "--key",
        "r,id",
    ]
    assert main([*args, "--out", str(tmp_path / "o.csv")]) == 0
    assert capsys.readouterr().out.split()[:6] == ["INSERT", "0", "UPDATE", "1", "DELETE", "0"]
    assert (tmp_path / "o.csv").read_text() == "op,r,id,v\nUPDATE,x,1,a'B\n"


BAD_GZIP = b"\x1f\x8b\x08\x00" + b"this is not deflate data" * 4


@pytest.mark.parametrize(
    "old,new,extra,message",
    [
        (
            "id,v\n1,a\n",
            "id,v\n1,a\n1,b\n",
            [],
            "NEW file {new}: export check failed: 1 duplicate key(s) in key column(s) id, e.g. "
            "1; if other columns identify a row, give --key COLUMN[,COLUMN...]",
        ),
        (
            "id,v\n,a\n2,b\n",
            "id,v\n1,a\n",
            [],
            "OLD file {old}: export check failed: "
            '1 row(s) with an empty key, e.g. "", "a" in {old}',
        ),
        (
            "id,v\n1,a\n",
            "id,v\n1\n2,b,c\n",
            [],
            "NEW file {new}: export check failed: 2 row(s) with a wrong number of fields, "
            'e.g. "1" (1 of 2 fields) in {new}; a value holding a line break splits its row',
        ),
        (  # the example: both problems, in the pipeline's words and order
            "id,v\n1,a\n",
            "id,v\n1,a\n1,b\n2\n",
            [],
            "NEW file {new}: export check failed: 1 duplicate key(s) in key column(s) id, e.g. "
            "1; if other columns identify a row, give --key COLUMN[,COLUMN...]; "
            "1 row(s) with a wrong number of fields",
        ),
        (
            "id,v\n1,a\n",
            "id,v\n1,a\n",
            ["--key", "nope"],
            "OLD file {old}: key column 'nope' is not among the columns ['id', 'v']",
        ),
        (
            "id,v\n1,a\n",
            "v,w\na,1\n",
            [],
            "OLD and NEW cannot be compared: key changed from ['id'] to ['v']: the target holds "
            "the table's rows by key",
        ),
        (
            "id,v\n1,a\n",
            "id,v\n1,a\n",
            ["--delimiter", ";;"],
            "delimiter must be a single character (not a newline), got ';;'",
        ),
        ("id,v\n1,a\n", "id,v\n1,a\n", ["--no-header"], "--no-header needs --columns"),
        (
            "id,v\n1,a\n",
            "",
            [],
            "NEW file {new}: export {new} is empty or starts with a blank line; "
            "expected a header row",
        ),
        ("id,bad name\n1,a\n", "id,v\n1,a\n", [], "OLD file {old}: invalid column 'bad name'"),
        (
            "id,v\n1,a\n",
            BAD_GZIP,
            [],
            "NEW file {new}: export {new} is not a readable gzip file (Error -3 while "
            "decompressing data: invalid distance too far back); its name ends in .gz: compress "
            "it with gzip",
        ),
        (
            "1,a\n",
            BAD_GZIP,
            ["--no-header", "--columns", "id,v"],
            "NEW file {new}: HIVE_CURSOR_ERROR: cannot decompress {new}: ",
        ),
        (
            "id,v\n1,a\n",
            b"id,v\n1,\xff\n",
            [],
            "NEW file {new}: HIVE_BAD_DATA: {new} is not valid UTF-8 text",
        ),
        ("id,v\n1,a\n", b"id,\xff\n1,a\n", [], "NEW file {new}: the header row of {new} is not"),
    ],
)
def test_bad_input_is_one_line_on_stderr(tmp_path, capsys, old, new, extra, message):
    old_path = tmp_path / "old.csv"
    new_path = tmp_path / (
        "new.csv.gz" if isinstance(new, bytes) and new.startswith(b"\x1f\x8b") else "new.csv"
    )
    old_path.write_text(old)
    new_path.write_bytes(new if isinstance(new, bytes) else new.encode())
    code = main(["diff", str(old_path), str(new_path), *extra])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    expected = "snapcdc diff: error: " + message.format(old=old_path, new=new_path)
    assert captured.err.startswith(expected), captured.err
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err


def test_a_file_named_gz_is_read_as_gzip_as_the_pipeline_reads_it(tmp_path, capsys):
    """Athena picks the codec by the name: a plain CSV named .csv.gz fails, as in the pipeline
    (its Plan reads the header through the same inflater)."""
    old, new = tmp_path / "old.csv", tmp_path / "new.csv.gz"
    old.write_text("id,v\n1,a\n")
    new.write_text("id,v\n1,a\n")
    assert main(["diff", str(old), str(new)]) == 1
    assert capsys.readouterr().err == (
        f"snapcdc diff: error: NEW file {new}: export {new} is not a readable gzip file (Error -3 "
        "while decompressing data: incorrect header check); its name ends in .gz: compress it "
        "with gzip\n"
    )


def test_advice_names_diffs_own_options(tmp_path, capsys):
    """A header Athena cannot take: diff suggests --columns (it reads no _table.json)."""
    old, new = tmp_path / "old.csv", tmp_path / "new.csv"
    old.write_text("id,Contact Phone,e-mail\n1,5,a\n")
    new.write_text("id,Contact Phone,e-mail\n1,5,b\n")
    assert main(["diff", str(old), str(new)]) == 1
    err = capsys.readouterr().err
    assert "give --columns id,Contact_Phone,e_mail" in err and "_table.json" not in err, err
    assert main(["diff", str(old), str(new), "--columns", "id,Contact_Phone,e_mail"]) == 0
    assert capsys.readouterr().out.split() == ["INSERT", "0", "UPDATE", "1", "DELETE", "0"]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--out", "{tmp}"], "--out {tmp} is a directory; give a file"),
        (["--key", ""], "--key '': invalid column ''"),
        (["--key", "id,,v"], "--key 'id,,v': invalid column ''"),
        (["--columns", "id,2v"], "--columns 'id,2v': invalid column '2v'"),
    ],
)
def test_a_bad_option_is_named(tmp_path, capsys, option, message):
    old = tmp_path / "old.csv"
    old.write_text("id,v\n1,a\n")
    args = [a.format(tmp=tmp_path) for a in option]
    assert main(["diff", str(old), str(old), *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("snapcdc diff: error: " + message.format(tmp=tmp_path)), err
    assert err.count("\n") == 1


def test_a_directory_is_not_a_file(tmp_path, capsys):
    assert main(["diff", str(tmp_path), str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"snapcdc diff: error: OLD file {tmp_path} is not a file\n"


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["diff", "--bogus"])
    assert info.value.code == 2
    assert main([]) == 2
