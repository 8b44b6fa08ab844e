"""Every case under fixtures/: the real templates, rendered and run by the embedded engine.

A case directory holds ``old`` and ``new`` exports (a file ``old.csv`` or a directory ``old/``
of objects; no ``old`` means a first load), an optional ``_table.json``, ``case.json`` with the
expected ``check_export`` row of each side, and ``expected_ops.csv`` (Athena's result format)
when both sides pass the checks. Operations are compared order-insensitively.

The header is read, the schema resolved and the statements planned by Plan's own functions
(``snapcdc.steps.plan``): the old side as a first load, the new one as a delta against it (or
a first load); the header comes from a side's first visible file, as Plan reads a version's
first part.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from snapcdc.model.contract import TableConfig, TableSchema
from snapcdc.sql import queries
from snapcdc.steps.plan import Version, header_fields, version_schema, version_statements
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
    visible = [f for f in files if not f.name.startswith(("_", "."))]

    def header_of(name: str) -> list[str]:
        path = Path(name)
        data = path.read_bytes()
        return header_fields(
            [gzip.decompress(data) if path.suffix == ".gz" else data], config, name
        )

    return version_schema(config, [str(visible[0])], header_of)


def case_versions(name: str, where) -> tuple[dict, dict[str, Version]]:
    """A fixture case's ``case.json`` and its versions (old, new: those it has), each read with
    the case's ``_table.json`` and located by ``where(case, side)``."""
    case = FIXTURES / name
    spec = json.loads((case / "case.json").read_text())
    config_file = case / "_table.json"
    config = (
        TableConfig.from_json(config_file.read_text()) if config_file.exists() else TableConfig()
    )
    versions: dict[str, Version] = {}
    for side in ("old", "new"):
        if files := objects(case, side):
            schema = schema_of(files, config)
            versions[side] = Version(f"{name}__{side}", schema, config, where(name, side))
    return spec, versions


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
    spec, versions = case_versions(name, location)
    # Plan's statements: the old side as a first load, the new one as a delta against it
    plans = {side: version_statements(DB, v) for side, v in versions.items() if side == "old"}
    plans["new"] = version_statements(DB, versions["new"], versions.get("old"))
    expected_file = case / "expected_ops.csv"
    ran_ops = False
    for side, plan in plans.items():
        for _, kind, sql in plan:
            if kind == "check":
                check = engine.execute(sql)
                assert check.columns == queries.CHECK_COLUMNS
                # the data checks; the size bounds that follow are tested in test_check_limits.py
                expected = spec["checks"][side]
                assert [list(r)[: len(expected)] for r in check.rows] == [expected], side
            elif kind == "ops":
                if side == "new" and expected_file.exists():
                    assert_ops(engine, sql, expected_file, versions["new"].schema, tmp_path)
                    ran_ops = True
            else:
                engine.execute(sql)
    assert ran_ops == expected_file.exists()


def assert_ops(
    engine: AthenaEngine, sql: str, expected_file: Path, schema: TableSchema, tmp_path: Path
) -> None:
    result = engine.execute(sql, output_path=tmp_path / "ops.csv")
    header, rows = read_athena_csv(tmp_path / "ops.csv")
    expected_header, expected_rows = read_athena_csv(expected_file)
    assert header == expected_header == [c.lower() for c in ("op", *schema.columns)]
    assert sorted(rows, key=repr) == sorted(expected_rows, key=repr)
    assert result.row_count == len(expected_rows)
    assert (tmp_path / "ops.csv").read_bytes().count(b"\r") == 0
