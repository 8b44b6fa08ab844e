"""The engine's ``"$path"``: each row's object, from every reader, and the pipeline's filters.

Athena reads every object under a table's LOCATION
(https://docs.aws.amazon.com/athena/latest/ug/tables-location-format.html) and names each
row's object in the ``"$path"`` pseudo-column
(https://aws.amazon.com/premiumsupport/knowledge-center/find-s3-source-file-athena-table-row/);
the templates use it to read a version from exactly its applied files.
"""

from __future__ import annotations

import gzip

import pytest

from snapcdc.model.contract import ContractError, TableConfig, TableSchema
from snapcdc.sql import queries
from snapcdc_local.engine.engine import AthenaEngine, EngineError, TableFile

SCHEMA = TableSchema(("k", "v"), ("k",))
CONFIG = TableConfig(delimiter=";", header=False, columns=SCHEMA.columns)
LOCATION = "s3://bucket/t/v1/"


def engine_over(tmp_path, bodies: dict[str, bytes], **engine_options):
    """An engine whose table ``d.t`` at LOCATION holds ``bodies`` ({key under it: bytes})."""
    files = []
    for name, body in bodies.items():
        path = tmp_path / name.replace("/", "__")
        path.write_bytes(gzip.compress(body) if name.endswith(".gz") else body)
        files.append(TableFile(str(path), LOCATION + name))
    engine = AthenaEngine(lambda location: files if location == LOCATION else [])
    for option, value in engine_options.items():
        setattr(engine, option, value)
    engine.execute(queries.create_database("d"))
    engine.execute(queries.create_export_table("d", "t", SCHEMA.columns, LOCATION, CONFIG))
    return engine


READERS = {
    "arrow": ({}, b"1;a\n2;b\n", b"3;c\n"),
    "lines": ({"arrow_read": False}, b'1;"a"\n\n2;b\n', b"3;c\n"),
    "native": ({"arrow_read": False, "native_read_min_lines": 1}, b'1;"a"\n\n2;"b"\n', b'3;"c"\n'),
}


@pytest.mark.parametrize("reader", list(READERS))
def test_every_reader_names_each_rows_object(tmp_path, reader):
    options, first, second = READERS[reader]
    with engine_over(tmp_path, {"a.csv.gz": first, "sub/b.csv": second}, **options) as engine:
        rows = engine.execute('SELECT k, "$path" FROM d.t').rows
        assert sorted(rows, key=repr) == sorted(
            [(k, LOCATION + "a.csv.gz") for k in ("1", "2")]
            + [(None, LOCATION + "a.csv.gz")] * first.count(b"\n\n")
            + [("3", LOCATION + "sub/b.csv")],
            key=repr,
        )
        assert engine.execute("SELECT * FROM d.t WHERE k = '3'").rows == [("3", "c", None)]


def test_the_templates_read_exactly_the_files_they_are_given(tmp_path):
    stray = {"a.csv.gz": b"1;a\n2;b\n", "b.csv.gz": b"3;c\n", "notes.tmp": b"4;d\n"}
    only_a = [LOCATION + "a.csv.gz"]
    with engine_over(tmp_path, stray) as engine:
        assert engine.execute(queries.first_load("d", "t", SCHEMA, only_a)).row_count == 2
        assert engine.execute(queries.first_load("d", "t", SCHEMA)).row_count == 4
        (check,) = engine.execute(queries.check_export("d", "t", SCHEMA, only_a)).rows
        assert check[0] == 2  # row_count
        every = [LOCATION + name for name in stray]
        ops = engine.execute(queries.delta("d", "t", SCHEMA, "t", SCHEMA, only_a, every)).rows
        assert sorted(ops) == [("INSERT", "3", "c"), ("INSERT", "4", "d")]


def test_a_query_naming_path_with_select_star_is_refused(tmp_path):
    with (
        engine_over(tmp_path, {"a.csv.gz": b"1;a\n"}) as engine,
        pytest.raises(
            EngineError, match=r'NOT_SUPPORTED: SELECT \* from a table in a query naming "\$path"'
        ),
    ):
        engine.execute("SELECT * FROM d.t WHERE \"$path\" = 's3://bucket/t/v1/a.csv.gz'")


def test_select_star_over_a_derived_table_passes_only_its_columns(tmp_path):
    with engine_over(tmp_path, {"a.csv.gz": b"1;a\n"}) as engine:
        result = engine.execute(
            "SELECT * FROM (SELECT k, v FROM d.t WHERE \"$path\" = 's3://bucket/t/v1/a.csv.gz')"
        )
        assert result.rows == [("1", "a")]


@pytest.mark.parametrize("files", [[], "s3://bucket/a.csv.gz", ["s3://bucket/t/"], ["x'y"]])
def test_bad_file_lists_never_reach_sql(files):
    with pytest.raises(ContractError):
        queries.first_load("d", "t", SCHEMA, files)
