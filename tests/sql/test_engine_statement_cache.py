"""The engine's statement cache: what it hands back is what compiling the text gives."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from snapcdc.model.contract import TableConfig, TableSchema
from snapcdc.sql import queries
from snapcdc_local.engine import compiled
from snapcdc_local.engine.compiled import StatementCache
from snapcdc_local.engine.engine import AthenaEngine, EngineError, mapping_resolver

OLD = TableSchema(("PK", "COL_1", "COL_2"), ("PK",))
NEW = TableSchema(("PK", "COL_2", "ADDED"), ("PK",))
LOCATION = "s3://bucket/t/"


def pipeline_statements() -> list[str]:
    """Every kind of statement the pipeline sends, as its templates render them."""
    config = TableConfig(delimiter=";", header=False, columns=OLD.columns)
    return [
        queries.create_database("d"),
        queries.drop_export_table("d", "t1"),
        queries.create_export_table("d", "t1", OLD.columns, LOCATION, config),
        queries.check_export("d", "t1", OLD),
        queries.check_export("d", "t1", OLD, [LOCATION + "a.csv"]),  # names "$path"
        queries.first_load("d", "t1", OLD),
        queries.delta("d", "t1", OLD, "t2", NEW),
    ]


@pytest.mark.parametrize("sql", pipeline_statements())
def test_an_entry_read_from_disk_is_what_compiling_gives(tmp_path, sql):
    fresh = compiled._compile(sql, "d")
    StatementCache(tmp_path).compile(sql, "d")  # writes the entry
    assert len(list(tmp_path.rglob("*.json"))) == 1
    from_disk = StatementCache(tmp_path)  # a new process's cache: memory empty
    assert from_disk.compile(sql, "d") == fresh


def test_the_database_is_part_of_the_key(tmp_path):
    sql = "SELECT k FROM t"
    cache = StatementCache(tmp_path)
    assert cache.compile(sql, "a").tables == (("a", "t"),)
    assert StatementCache(tmp_path).compile(sql, "b").tables == (("b", "t"),)


def test_unreadable_entries_are_recompiled(tmp_path):
    sql = queries.first_load("d", "t1", OLD)
    StatementCache(tmp_path).compile(sql, "d")
    (entry,) = tmp_path.rglob("*.json")
    for damage in ("{not json", json.dumps({"database": "d", "sql_text": "other", "kind": "x"})):
        entry.write_text(damage)
        assert StatementCache(tmp_path).compile(sql, "d") == compiled._compile(sql, "d")


def test_parse_errors_are_raised_and_not_cached(tmp_path):
    cache = StatementCache(tmp_path)
    with pytest.raises(EngineError, match="SYNTAX_ERROR"):
        cache.compile("SELECT FROM WHERE (", "d")
    with pytest.raises(EngineError, match="NOT_SUPPORTED: only CREATE EXTERNAL TABLE"):
        cache.compile("CREATE TABLE d.x (a STRING)", "d")
    assert not list(tmp_path.rglob("*.json"))


def test_a_transpile_error_comes_after_the_catalog_lookup(tmp_path):
    """As before the cache: a missing table is named first, even when the cached entry
    already knows the query cannot be transpiled."""
    (tmp_path / "a.csv").write_text("1;a\n")
    star = "SELECT * FROM d.t WHERE \"$path\" = 's3://bucket/t/a.csv'"
    for _ in range(2):  # compiled, then from the cache
        with AthenaEngine(
            mapping_resolver({LOCATION: [tmp_path / "a.csv"]}), statement_cache=tmp_path / "c"
        ) as engine:
            with pytest.raises(EngineError, match="SCHEMA_NOT_FOUND|does not exist"):
                engine.execute(star)
            engine.execute("CREATE DATABASE d")
            with pytest.raises(EngineError, match="TABLE_NOT_FOUND|does not exist"):
                engine.execute(star)
            engine.execute(
                "CREATE EXTERNAL TABLE d.t (k STRING, v STRING) ROW FORMAT SERDE "
                "'org.apache.hadoop.hive.serde2.OpenCSVSerde' WITH SERDEPROPERTIES "
                f"('separatorChar' = ';') LOCATION '{LOCATION}'"
            )
            with pytest.raises(EngineError, match=r"NOT_SUPPORTED: SELECT \* from a table"):
                engine.execute(star)
            assert engine.execute("SELECT k, v FROM d.t").rows == [("1", "a")]


def test_a_source_change_starts_a_new_cache(tmp_path):
    real = Path(compiled.__file__).resolve().parent
    for name in compiled.SOURCES:
        (tmp_path / name).write_bytes((real / name).read_bytes())
    assert compiled._fingerprint(tmp_path) == compiled._fingerprint()
    with (tmp_path / "transpile.py").open("a") as fh:
        fh.write("# another rewrite\n")
    assert compiled._fingerprint(tmp_path) != compiled._fingerprint()


def test_a_warm_cache_runs_without_sqlglot(tmp_path):
    """The point of the disk cache: a process whose statements are all cached never imports
    sqlglot (its import and the transpiling cost a short run a good part of its time)."""
    (tmp_path / "a.csv").write_text("k;v\n1;a\n2;b\n")
    probe = (
        "import sys\n"
        "from snapcdc.model.contract import TableSchema, TableConfig\n"
        "from snapcdc.sql import queries\n"
        "from snapcdc_local.engine.engine import AthenaEngine, mapping_resolver\n"
        "schema = TableSchema(('k', 'v'), ('k',))\n"
        "config = TableConfig(delimiter=';')\n"
        f"resolver = mapping_resolver({{{LOCATION!r}: [{str(tmp_path / 'a.csv')!r}]}})\n"
        f"with AthenaEngine(resolver, statement_cache={str(tmp_path / 'c')!r}) as engine:\n"
        "    engine.execute(queries.create_database('d'))\n"
        f"    engine.execute(queries.create_export_table('d', 't', schema.columns, {LOCATION!r},"
        " config))\n"
        "    (row,) = engine.execute(queries.check_export('d', 't', schema)).rows\n"
        "print(row[0], 'sqlglot' in sys.modules)\n"
    )
    runs = [
        subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
        for _ in range(2)
    ]
    assert [r.returncode for r in runs] == [0, 0], runs[-1].stderr
    assert [r.stdout.split() for r in runs] == [["2", "True"], ["2", "False"]]
