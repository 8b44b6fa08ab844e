"""Every case under fixtures/: the real templates, rendered and run by the embedded engine.

A case directory holds ``old`` and ``new`` exports (a file ``old.csv`` or a directory ``old/``
of objects; no ``old`` means a first load), an optional ``_table.json``, ``case.json`` with the
expected ``check_export`` row of each side, and ``expected_ops.csv`` (Athena's result format)
when both sides pass the checks. Operations are compared order-insensitively.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from snapcdc.model.contract import TableConfig, TableSchema
from snapcdc.sql import queries
from snapcdc_local.cli.diff import read_header_row
from snapcdc_local.engine.engine import AthenaEngine, mapping_resolver, read_athena_csv

FIXTURES = Path(__file__).parent / "fixtures"
CASES = sorted(p.name for p in FIXTURES.iterdir() if (p / "case.json").exists())
DB = "snapcdc_fixtures"


def objects(case: Path, side: str) -> list[Path]:
    if (case / side).is_dir():
        return sorted((case / side).iterdir())
    return sorted(case.glob(f"{side}.csv*"))


def location(case: str, side: str) -> str:
    return f"s3://fixtures/{case}/{side}/"


def schema_of(files: list[Path], config: TableConfig) -> TableSchema:
    if not config.header:
        return config.resolve()
    visible = [f for f in files if not f.name.startswith(("_", "."))]
    return config.resolve(read_header_row(visible[0], config))


@pytest.fixture(scope="module", params=["sql-split", "native-read", "arrow-read"])
def engine(request):
    """Every case three times: lines split in SQL; quoted lines re-read by DuckDB's CSV reader
    where the engine allows it (a regular file with doubled quotes; forced here even for one
    line); and files without any quoting read by pyarrow (the default when it is installed)."""
    resolver = mapping_resolver(
        {location(c, s): objects(FIXTURES / c, s) for c in CASES for s in ("old", "new")}
    )
    with AthenaEngine(resolver) as engine:
        engine.arrow_read = request.param == "arrow-read"
        if request.param == "native-read":
            engine.native_read_min_lines = 1
        engine.execute(queries.create_database(DB))
        yield engine


@pytest.mark.parametrize("name", CASES)
def test_case(engine: AthenaEngine, name: str, tmp_path: Path):
    case = FIXTURES / name
    spec = json.loads((case / "case.json").read_text())
    config_file = case / "_table.json"
    config = (
        TableConfig.from_json(config_file.read_text()) if config_file.exists() else TableConfig()
    )

    schemas: dict[str, TableSchema] = {}
    for side in ("old", "new"):
        files = objects(case, side)
        if not files:
            continue
        schema = schemas[side] = schema_of(files, config)
        table = f"{name}__{side}"
        engine.execute(
            queries.create_export_table(DB, table, schema.columns, location(name, side), config)
        )
        check = engine.execute(queries.check_export(DB, table, schema))
        assert check.columns == queries.CHECK_COLUMNS
        # the data checks; the size bounds that follow are tested in test_check_limits.py
        expected = spec["checks"][side]
        assert [list(r)[: len(expected)] for r in check.rows] == [expected], f"checks of {side}"

    expected_file = case / "expected_ops.csv"
    if not expected_file.exists():
        return
    if "old" in schemas:
        sql = queries.delta(DB, f"{name}__old", schemas["old"], f"{name}__new", schemas["new"])
    else:
        sql = queries.first_load(DB, f"{name}__new", schemas["new"])
    result = engine.execute(sql, output_path=tmp_path / "ops.csv")
    header, rows = read_athena_csv(tmp_path / "ops.csv")
    expected_header, expected_rows = read_athena_csv(expected_file)
    assert header == expected_header == [c.lower() for c in ("op", *schemas["new"].columns)]
    assert sorted(rows, key=repr) == sorted(expected_rows, key=repr)
    assert result.row_count == len(expected_rows)
    assert (tmp_path / "ops.csv").read_bytes().count(b"\r") == 0
