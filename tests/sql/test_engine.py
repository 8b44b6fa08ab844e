"""The embedded engine on its own: reading rules, result format, errors, concurrency."""

from __future__ import annotations

import gzip
import os
import random
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from snapcdc.model.contract import TableConfig
from snapcdc.sql import queries
from snapcdc_local.engine import duckdb_reader as engine_module
from snapcdc_local.engine.engine import AthenaEngine, EngineError, TableFile, read_athena_csv
from snapcdc_local.engine.opencsv import NO_ESCAPE, split_line
from snapcdc_local.engine.storage import storage_name

SERDE = "ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde'"


def ddl(table: str, columns: list[str], location: str, props: str = "", tbl: str = "") -> str:
    cols = ", ".join(f"`{c}` STRING" for c in columns)
    serde = f"{SERDE} WITH SERDEPROPERTIES ({props})" if props else SERDE
    tblprops = f" TBLPROPERTIES ({tbl})" if tbl else ""
    return f"CREATE EXTERNAL TABLE d.{table} ({cols}) {serde} LOCATION '{location}'{tblprops}"


@pytest.fixture
def files(tmp_path: Path):
    """A resolver whose locations are directories under tmp_path (read at query time)."""

    def resolve(location: str) -> list[str]:
        folder = tmp_path / location.removeprefix("s3://bucket/").strip("/")
        return [str(p) for p in sorted(folder.glob("*"))] if folder.is_dir() else []

    def put(location: str, name: str, data: bytes | str) -> Path:
        folder = tmp_path / location.removeprefix("s3://bucket/").strip("/")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        raw = data.encode() if isinstance(data, str) else data
        path.write_bytes(gzip.compress(raw) if name.endswith(".gz") else raw)
        return path

    return resolve, put


@pytest.fixture
def engine(files):
    with AthenaEngine(files[0]) as engine:
        engine.execute("CREATE DATABASE d")
        yield engine


# -- reading ------------------------------------------------------------------------------


FORMATS = [(",", '"', NO_ESCAPE), (",", '"', "\\"), (";", "'", "\\"), ("|", '"', "#")]


@pytest.mark.parametrize("separator,quote,escape", FORMATS)
def test_sql_tiers_split_lines_like_the_python_port(
    engine, files, separator, quote, escape, monkeypatch
):
    """Random lines full of separators, quotes and escapes: the SQL split (tiers 1 and 2) and
    the line-for-line port of Trino's deserializer (tier 3) must agree on every one.

    Tier 3 *is* the port, so its lines agree by construction: the comparison means something
    for the lines the SQL tiers took, and the test checks that they took many (the general
    reader, not pyarrow's, reads the file)."""
    monkeypatch.setattr(AthenaEngine, "arrow_read", False)
    rng = random.Random(f"{separator}{quote}{escape}")
    alphabet = ["a", "0", " ", "é", separator, separator, quote, quote, quote, escape, escape]
    lines = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14))) for _ in range(3000)]
    # plus well-formed quoted lines, which tier 2 handles
    for _ in range(500):
        fields = []
        for _ in range(rng.randint(1, 5)):
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
            inner = text.replace(quote, quote * 2)
            inner = inner.replace(escape, escape * 2)
            fields.append(
                f"{quote}{inner}{quote}"
                if rng.random() < 0.7
                else text.strip(quote + escape + separator)
            )
        lines.append(separator.join(fields))
    _, put = files
    put("s3://bucket/fuzz/", "lines.csv", "\n".join(lines) + "\n")
    columns = ["c1", "c2", "c3", "c4", "extra"]
    hive_quote = quote.replace("'", "\\'")
    props = f"'separatorChar' = '{separator}', 'quoteChar' = '{hive_quote}', " + (
        "'escapeChar' = '\\0'"
        if escape == NO_ESCAPE
        else f"'escapeChar' = '{escape.replace(chr(92), chr(92) * 2)}'"
    )
    engine.execute(ddl("fuzz", columns, "s3://bucket/fuzz/", props))
    got = Counter(engine.execute("SELECT * FROM d.fuzz").rows)
    expected = Counter(tuple(split_line(line, 5, separator, quote, escape)) for line in lines)
    assert got == expected
    # which tier split each line (the reader keeps it: NULL plain, 2 regular quoted, 3 the rest)
    cursor = engine.local_cursor()
    try:
        tiers = dict(
            cursor.execute(
                f"SELECT coalesce(_tier, 1), count(*) FROM {storage_name(('d', 'fuzz'))} GROUP BY 1"
            ).fetchall()
        )
    finally:
        cursor.close()
    assert tiers.get(1, 0) >= 200 and tiers.get(2, 0) >= 200, tiers


@pytest.mark.parametrize("header", [False, True])
def test_native_read_of_regular_files_splits_like_the_python_port(files, header, monkeypatch):
    """Files of regular lines only (doubled quotes, no escape character) are re-read with
    DuckDB's CSV reader: it must agree with the port, blank lines and ragged rows included."""
    resolve, put = files
    rng = random.Random(7)
    alphabet = ["a", " ", "é", ",", '"', "\\", "\t"]
    lines = []
    for _ in range(3000):
        fields = []
        for _ in range(rng.choice([0, 1, 2, 3, 4, 4, 5, 6])):
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 5)))
            quoted = rng.random() < 0.6 or '"' in text or "," in text
            fields.append('"' + text.replace('"', '""') + '"' if quoted else text)
        lines.append(",".join(fields))
    body = "\n".join(lines) + "\n"
    put("s3://bucket/regular/", "a.csv.gz", ("h\n" if header else "") + body)
    put("s3://bucket/regular/", "b.csv", ("h\n" if header else "") + body)
    # the regular-expression split must not be what produced the rows
    monkeypatch.setattr(engine_module, "_split_regular", None)
    with AthenaEngine(resolve) as engine:
        engine.native_read_min_lines = 1
        engine.execute("CREATE DATABASE d")
        tbl = "'skip.header.line.count' = '1'" if header else ""
        cols = ["c1", "c2", "c3", "c4", "extra"]
        engine.execute(ddl("r", cols, "s3://bucket/regular/", "'escapeChar' = '\\0'", tbl))
        got = Counter(engine.execute("SELECT * FROM d.r").rows)
    one = Counter(tuple(split_line(line, 5, ",", '"', NO_ESCAPE)) for line in lines)
    assert got == one + one


def test_header_skipped_per_file_and_hidden_files_ignored(engine, files):
    _, put = files
    put("s3://bucket/t/", "a.csv", "k,v\n1,x\n")
    put("s3://bucket/t/", "b.csv.gz", "k,v\n2,y\n")
    put("s3://bucket/t/", "_SUCCESS", "k,v\nnot,data\n")
    put("s3://bucket/t/", ".hidden.csv", "k,v\nnot,data\n")
    engine.execute(ddl("t", ["k", "v"], "s3://bucket/t/", tbl="'skip.header.line.count' = '1'"))
    result = engine.execute("SELECT k, v FROM d.t ORDER BY k")
    assert result.rows == [("1", "x"), ("2", "y")]


def test_files_under_hidden_folders_are_ignored(tmp_path):
    """The one hidden-file rule (snapcdc.model.s3paths.is_hidden): a file is hidden when any
    part of its path below the LOCATION starts with ``_`` or ``.``, not only its name."""
    data = {"a.csv": "1\n", "sub/b.csv": "2\n", ".tmp/c.csv": "3\n", "_temporary/0/d.csv": "4\n"}
    for name, text in data.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)

    def s3_objects(location: str) -> list[TableFile]:  # as the emulator's S3 listing answers
        return [TableFile(str(tmp_path / name), location + name) for name in data]

    for resolver, location in ((None, f"{tmp_path}/"), (s3_objects, "s3://bucket/t/")):
        with AthenaEngine(resolver) as engine:
            engine.execute("CREATE DATABASE d")
            engine.execute(ddl("t", ["k"], location))
            rows = engine.execute('SELECT k, "$path" FROM d.t ORDER BY k').rows
        assert rows == [("1", f"{location}a.csv"), ("2", f"{location}sub/b.csv")]


def test_byte_order_mark_is_skipped_without_a_header(engine, files):
    _, put = files
    put("s3://bucket/bom/", "x.csv.gz", "\ufeffk1,a\r\nk2,b\r\n")
    engine.execute(ddl("bom", ["k", "v"], "s3://bucket/bom/"))
    assert sorted(engine.execute("SELECT k, v FROM d.bom").rows) == [("k1", "a"), ("k2", "b")]


def test_files_are_resolved_when_a_query_runs(engine, files):
    _, put = files
    engine.execute(ddl("t", ["k"], "s3://bucket/later/"))
    assert engine.execute("SELECT count(*) FROM d.t").rows == [(0,)]
    path = put("s3://bucket/later/", "a.csv", "1\n2\n")
    assert engine.execute("SELECT count(*) FROM d.t").rows == [(2,)]
    path.write_text("1\n2\n3\n")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    assert engine.execute("SELECT count(*) FROM d.t").rows == [(3,)]


def test_cache_eviction_keeps_tables_queryable(files):
    resolve, put = files
    with AthenaEngine(resolve, max_cached_tables=1) as engine:
        engine.execute("CREATE DATABASE d")
        for name in ("a", "b", "c"):
            put(f"s3://bucket/{name}/", "x.csv", f"{name}1\n{name}2\n")
            engine.execute(ddl(name, ["k"], f"s3://bucket/{name}/"))
        for name in ("a", "b", "c", "a"):
            assert sorted(engine.execute(f"SELECT k FROM d.{name}").rows) == [
                (f"{name}1",),
                (f"{name}2",),
            ]


def test_data_scanned_is_the_bytes_of_the_files_read(engine, files):
    _, put = files
    a = put("s3://bucket/a/", "x.csv.gz", "1\n2\n")
    b = put("s3://bucket/b/", "y.csv", "1\n")
    engine.execute(ddl("a", ["k"], "s3://bucket/a/"))
    engine.execute(ddl("b", ["k"], "s3://bucket/b/"))
    result = engine.execute("SELECT * FROM d.a JOIN d.b ON a.k = b.k")
    assert result.data_scanned_bytes == a.stat().st_size + b.stat().st_size


# -- results --------------------------------------------------------------------------------


def test_result_csv_is_written_as_athena_writes_it(engine, tmp_path):
    out = tmp_path / "deep" / "r.csv"
    sql = "SELECT 'a\"b' AS \"Mixed\", NULL AS n, '' AS e, 3 AS i, 'x\ny' AS nl"
    result = engine.execute(sql, output_path=out)
    assert out.read_bytes() == b'"mixed","n","e","i","nl"\n"a""b",,"","3","x\ny"\n'
    assert (result.columns, result.row_count, result.statement_type) == (
        ("mixed", "n", "e", "i", "nl"),
        1,
        "DML",
    )
    assert read_athena_csv(out) == (
        ["mixed", "n", "e", "i", "nl"],
        [['a"b', None, "", "3", "x\ny"]],
    )


def test_ddl_result(engine, tmp_path):
    result = engine.execute("CREATE DATABASE IF NOT EXISTS d", output_path=tmp_path / "ddl.txt")
    assert result.statement_type == "DDL"
    assert (tmp_path / "ddl.txt").read_bytes() == b""


def test_default_database_and_ctes(engine, files):
    _, put = files
    put("s3://bucket/t/", "x.csv", "1\n")
    engine.execute(ddl("t", ["k"], "s3://bucket/t/"))
    sql = "WITH t2 AS (SELECT k FROM t) SELECT count(*) FROM t2"
    assert engine.execute(sql, database="d").rows == [(1,)]


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql,error",
    [
        (
            "SELECT * FROM d.missing",
            "TABLE_NOT_FOUND: Table 'awsdatacatalog.d.missing' does not exist",
        ),
        ("SELECT * FROM nodb.t", "SCHEMA_NOT_FOUND: Schema 'nodb' does not exist"),
        ("SELECT 1; SELECT 2", "INVALID_INPUT: Only one sql statement is allowed"),
        ("SELEC 1", "SYNTAX_ERROR"),
        ("SELECT nosuchcolumn FROM (SELECT 1 AS a)", "SYNTAX_ERROR"),
        ("CREATE DATABASE d", "AlreadyExistsException: Database d already exists"),
        ("DROP TABLE d.nope", "SemanticException: Table not found d.nope"),
        ("MSCK REPAIR TABLE d.t", "NOT_SUPPORTED"),
        (
            "CREATE EXTERNAL TABLE d.x (a STRING) ROW FORMAT SERDE "
            "'org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe' LOCATION 's3://bucket/x/'",
            "NOT_SUPPORTED: SerDe 'org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe'",
        ),
        (
            f"CREATE EXTERNAL TABLE d.x (a INT) {SERDE} LOCATION 's3://bucket/x/'",
            "NOT_SUPPORTED: column 'a' is INT",
        ),
        (
            f"CREATE EXTERNAL TABLE d.x (a STRING) {SERDE} LOCATION 's3://bucket/x/' "
            "TBLPROPERTIES ('skip.footer.line.count' = '1')",
            "NOT_SUPPORTED: table property 'skip.footer.line.count'",
        ),
        (
            f"CREATE EXTERNAL TABLE d.x (a STRING) {SERDE} "
            "WITH SERDEPROPERTIES ('separatorChar' = '\"') LOCATION 's3://bucket/x/'",
            "HIVE_INVALID_METADATA",
        ),
        (
            f"CREATE EXTERNAL TABLE nodb.x (a STRING) {SERDE} LOCATION 's3://bucket/x/'",
            "SCHEMA_NOT_FOUND",
        ),
    ],
)
def test_statement_errors(engine, sql, error):
    with pytest.raises(EngineError) as info:
        engine.execute(sql)
    assert str(info.value).startswith(error)
    assert info.value.error_type == error.split(":")[0]
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "name,data,error",
    [
        ("bad.csv.gz", b"this is not gzip", "HIVE_CURSOR_ERROR"),
        ("nul.csv", b"a,b\n1,\x00\x01\x00x\n", "NOT_SUPPORTED"),
        ("latin1.csv", "k\nZ\u00fcrich\n".encode("latin-1"), "HIVE_BAD_DATA"),
        ("mixed.csv", b"a\rb\nc\n", "NOT_SUPPORTED"),
    ],
)
def test_unreadable_files(engine, files, name, data, error):
    _, put = files
    path = put("s3://bucket/bad/", name, b"")
    path.write_bytes(data)
    engine.execute(ddl("bad", ["k", "v"], "s3://bucket/bad/"))
    with pytest.raises(EngineError) as info:
        engine.execute("SELECT * FROM d.bad")
    message = str(info.value)
    assert message.startswith(error) and name in message and "\n" not in message


def test_nul_is_the_escape_character_when_escaping_is_off(engine, files):
    """Trino compares every character with the escape character, NUL included: a NUL not
    followed by a quote is dropped, like a backslash with the default escape character."""
    _, put = files
    put("s3://bucket/nul/", "x.csv", b'1,a\x00b\n2,"c\x00"d"\n3,e\x00\n')
    engine.execute(ddl("nul", ["k", "v"], "s3://bucket/nul/", "'escapeChar' = '\\0'"))
    rows = sorted(engine.execute("SELECT k, v FROM d.nul").rows)
    assert rows == [("1", "ab"), ("2", 'c"d'), ("3", "e")]


def test_create_twice_and_drop(engine, files):
    _, put = files
    put("s3://bucket/t/", "x.csv", "1\n")
    engine.execute(ddl("t", ["k"], "s3://bucket/t/"))
    with pytest.raises(EngineError, match="AlreadyExistsException"):
        engine.execute(ddl("t", ["k"], "s3://bucket/t/"))
    engine.execute(ddl("t", ["k"], "s3://bucket/t/").replace("TABLE d.", "TABLE IF NOT EXISTS d."))
    assert engine.execute("SELECT * FROM d.t").rows == [("1",)]
    engine.execute("DROP TABLE d.t")
    engine.execute("DROP TABLE IF EXISTS d.t")
    with pytest.raises(EngineError, match="TABLE_NOT_FOUND"):
        engine.execute("SELECT * FROM d.t")


# -- concurrency ----------------------------------------------------------------------------------


def test_concurrent_queries_from_threads(engine, files):
    _, put = files
    for i in range(4):
        put(f"s3://bucket/c{i}/", "x.csv", "".join(f"{i}-{n}\n" for n in range(1000 * (i + 1))))
        engine.execute(ddl(f"c{i}", ["k"], f"s3://bucket/c{i}/"))
    results: dict[int, object] = {}

    def work(n: int) -> None:
        table = f"c{n % 4}"
        try:
            results[n] = engine.execute(f"SELECT count(*) FROM d.{table}").rows
        except Exception as exc:  # reported below
            results[n] = exc

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {n: [(1000 * (n % 4 + 1),)] for n in range(16)}


# -- templates through the engine ----------------------------------------------------------------


def test_quote_and_delimiter_literals_survive_the_ddl(engine, files):
    """A single quote as the quote character and a backslash escape go through Hive literals."""
    _, put = files
    put("s3://bucket/q/", "x.csv", "k;v\n1;'it''s; fine'\n2;'a\\'b'\n")
    config = TableConfig(delimiter=";", quote="'", escape="\\")
    sql = queries.create_export_table("d", "q", ["k", "v"], "s3://bucket/q/", config)
    assert "'quoteChar' = '\\''" in sql
    engine.execute(sql)
    assert sorted(engine.execute("SELECT k, v FROM d.q").rows) == [
        ("1", "it's; fine"),
        ("2", "a'b"),
    ]


def test_prefetched_reads_are_taken_only_for_the_same_files_read_the_same_way(
    tmp_path, monkeypatch
):
    """A read started early (snapcdc diff's) is used by a table reading the same file with the
    same format; another format, or a file changed since, is read again, never reused."""
    from snapcdc_local.engine import arrow_reader
    from snapcdc_local.engine.opencsv import CsvFormat

    reads = []
    real_read_file = arrow_reader.read_file

    def read_file(path, codec, fmt, header_lines):
        reads.append((threading.current_thread().name.startswith("snapcdc-prefetch"), fmt))
        return real_read_file(path, codec, fmt, header_lines)

    monkeypatch.setattr(arrow_reader, "read_file", read_file)
    same, other, changed = (tmp_path / n for n in ("same", "other", "changed"))
    for folder in (same, other, changed):
        folder.mkdir()
        (folder / "a.csv").write_text("k,v\n1,x\n2,y\n")
    prefetch = arrow_reader.Prefetch()
    comma, semicolon = CsvFormat(",", '"', NO_ESCAPE), CsvFormat(";", '"', NO_ESCAPE)
    prefetch.start(str(same / "a.csv"), comma, 1)
    prefetch.start(str(other / "a.csv"), semicolon, 1)
    prefetch.start(str(changed / "a.csv"), comma, 1)
    for read in list(prefetch._reads.values()):
        read.result()
    (changed / "a.csv").write_text("k,v\n1,x\n2,y\n3,z\n")
    tbl = "'skip.header.line.count' = '1'"
    props = "'escapeChar' = '\\0'"
    with AthenaEngine(prefetched=prefetch) as engine:
        engine.execute("CREATE DATABASE d")
        for name, folder in (("s", same), ("o", other), ("c", changed)):
            engine.execute(ddl(name, ["k", "v"], f"{folder}/", props, tbl))
        assert engine.execute("SELECT k, v FROM d.s ORDER BY k").rows == [("1", "x"), ("2", "y")]
        assert reads == [(True, comma), (True, semicolon), (True, comma)]
        assert engine.execute("SELECT k, v FROM d.o ORDER BY k").rows == [("1", "x"), ("2", "y")]
        assert reads[-1] == (False, comma)  # read again, by the table's format
        assert len(engine.execute("SELECT k FROM d.c").rows) == 3
        assert reads[-1] == (False, comma)  # changed since: read again
    prefetch.close()


def test_statements_running_at_once_share_duckdbs_threads(files):
    """DuckDB's thread pool is one for the database: a statement alone gets every core, two at
    once half each (more threads than cores only costs the parallel operators' merging)."""
    with AthenaEngine(files[0], threads=4) as engine:

        def threads_seen() -> int:
            ((value,),) = engine.execute("SELECT current_setting('threads')").rows
            return int(value)

        assert threads_seen() == 4
        with engine._state:
            engine._running += 1  # another statement is running
        assert threads_seen() == 2
        with engine._state:
            engine._running += 2
        assert threads_seen() == 1
        with engine._state:
            engine._running -= 3
        assert threads_seen() == 4
