"""The three reference exports in data/, processed in sequence through the real templates and
the embedded engine; expected counts from the seed exports' README."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from snapcdc.model.contract import TableConfig
from snapcdc.sql import queries
from snapcdc.steps.check import evaluate
from snapcdc_local.engine.engine import AthenaEngine, mapping_resolver, read_athena_csv

DATA = Path(__file__).resolve().parents[2] / "data" / "tenant" / "test_table"
VERSIONS = ["20201230_V0001", "20201230_V0002", "20201231_V0001"]
DB = "snapcdc_tenant"


def location(version: str) -> str:
    return f"s3://imports/tenant/test_table/{version}/"


@pytest.fixture(scope="module")
def loaded():
    config = TableConfig.from_json((DATA / "_table.json").read_text())
    schema = config.resolve()
    engine = AthenaEngine(
        mapping_resolver({location(v): sorted((DATA / v).glob("*.csv.gz")) for v in VERSIONS})
    )
    engine.execute(queries.create_database(DB))
    for v in VERSIONS:
        engine.execute(
            queries.create_export_table(
                DB, f"test_table__{v.lower()}", schema.columns, location(v), config
            )
        )
    yield engine, schema
    engine.close()


def table(version: str) -> str:
    return f"test_table__{version.lower()}"


@pytest.mark.parametrize(
    "version,rows", [(VERSIONS[0], 3), (VERSIONS[1], 3), (VERSIONS[2], 100_000)]
)
def test_checks_pass(loaded, version, rows):
    engine, schema = loaded
    result = engine.execute(queries.check_export(DB, table(version), schema))
    assert result.columns == queries.CHECK_COLUMNS
    assert result.rows[0][:5] == (rows, 0, None, 0, 0)
    assert evaluate([None if v is None else str(v) for v in result.rows[0]]) == {"row_count": rows}


def test_first_load_inserts_every_row(loaded, tmp_path):
    engine, schema = loaded
    result = engine.execute(
        queries.first_load(DB, table(VERSIONS[0]), schema), output_path=tmp_path / "r.csv"
    )
    header, rows = read_athena_csv(tmp_path / "r.csv")
    assert header == ["op", "pk", "col_1", "col_2", "col_3"]
    assert result.row_count == 3
    assert sorted(rows) == [
        ["INSERT", f"PK{i}", "0", "this is a test", "how are you today"] for i in (1, 2, 3)
    ]


def test_second_version(loaded, tmp_path):
    engine, schema = loaded
    engine.execute(
        queries.delta(DB, table(VERSIONS[0]), schema, table(VERSIONS[1]), schema),
        output_path=tmp_path / "r.csv",
    )
    _, rows = read_athena_csv(tmp_path / "r.csv")
    assert sorted(rows) == [
        ["DELETE", "PK3", "0", "this is a test", "how are you today"],
        ["INSERT", "PK4", "0", "this is a test", "how are you today"],
        ["UPDATE", "PK2", "1", "this is a test", "how are you today"],
    ]


def test_third_version(loaded, tmp_path):
    engine, schema = loaded
    result = engine.execute(
        queries.delta(DB, table(VERSIONS[1]), schema, table(VERSIONS[2]), schema),
        output_path=tmp_path / "r.csv",
    )
    _, rows = read_athena_csv(tmp_path / "r.csv")
    assert result.row_count == len(rows) == 100_000
    assert Counter(r[0] for r in rows) == {"INSERT": 99_997, "UPDATE": 3}
    assert sorted(r[1] for r in rows if r[0] == "UPDATE") == ["PK1", "PK2", "PK4"]


def test_applying_all_three_yields_the_last_export(loaded, tmp_path):
    """Replaying the ops into a dict ends with exactly export 3's rows."""
    engine, schema = loaded
    target: dict[str, list[str | None]] = {}
    steps = [queries.first_load(DB, table(VERSIONS[0]), schema)] + [
        queries.delta(DB, table(a), schema, table(b), schema)
        for a, b in zip(VERSIONS, VERSIONS[1:], strict=False)
    ]
    for i, sql in enumerate(steps):
        engine.execute(sql, output_path=tmp_path / f"{i}.csv")
        for op, *values in read_athena_csv(tmp_path / f"{i}.csv")[1]:
            if op == "DELETE":
                del target[values[0]]
            else:
                assert (values[0] in target) == (op == "UPDATE")
                target[values[0]] = values
    last = engine.execute(f'SELECT * FROM "{DB}"."{table(VERSIONS[2])}"').rows
    assert target == {r[0]: list(r[:4]) for r in last}
    assert len(target) == 100_000
