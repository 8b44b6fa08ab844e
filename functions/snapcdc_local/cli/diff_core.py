"""``snapcdc diff``'s work, once its files are staged and being read: the pipeline's core
(Plan's statements and schema, Check's judging, Hold's op counting) on the embedded engine.
See :mod:`snapcdc_local.cli.diff`.
"""

# The DuckDB SQL below only embeds values passed through _sql_text (quotes doubled).
# ruff: noqa: S608

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import duckdb
import jinja2

from snapcdc.aws.result_files import count_leading_in
from snapcdc.model.contract import ContractError, TableConfig, TableSchema
from snapcdc.model.errors import ExportCheckFailed, ResultFormatError
from snapcdc.model.header import gunzipped
from snapcdc.sql import queries, render
from snapcdc.steps.check import evaluate_records
from snapcdc.steps.plan import (
    Version,
    check_statement_sizes,
    header_fields,
    version_schema,
    version_statements,
)
from snapcdc_local.cli.diff import Export, cache_dir, diff_option
from snapcdc_local.cli.main import CliError
from snapcdc_local.engine.arrow_reader import Prefetch
from snapcdc_local.engine.catalog import TableFile
from snapcdc_local.engine.engine import AthenaEngine, EngineError

DATABASE = "snapcdc_diff"
PlannedStatement = tuple[str, str, str]  # (name, kind, sql), as version_statements gives them
BUCKET = "s3://snapcdc-local"
READ_BYTES = 1 << 20
# A header row is read in blocks this small: inflating a whole READ_BYTES block for it would
# cost more than the rest of the planning.
HEADER_READ_BYTES = 1 << 16


def diff_staged(
    sides: Sequence[Export],
    stage: Path,
    config: TableConfig,
    out: str | os.PathLike[str] | None,
    prefetch: Prefetch | None = None,
) -> dict[str, Any]:
    """The diff of two staged files: counts, schemas and row counts (DiffResult's fields)."""
    cache = cache_dir()
    with AthenaEngine(
        _resolver_for(stage, sides),
        prefetched=prefetch,
        statement_cache=cache / "engine" if cache is not None else None,
    ) as engine:
        with _templates_cached(cache):
            old_version, new_version, old_plan, new_plan = _plan(sides, config)
        checked = next(i for i, (_, kind, _) in enumerate(new_plan) if kind == "check")
        for _, kind, sql in old_plan + new_plan[:checked]:
            if kind == "ddl":
                engine.execute(sql)
        # Both checks at once, as two Athena queries would run: each reads its own file.
        checks = [
            (sides[0], old_plan[-1][2], old_version.schema.key),
            (sides[1], new_plan[checked][2], new_version.schema.key),
        ]
        with ThreadPoolExecutor(max_workers=2) as pool:
            old_rows, new_rows = pool.map(lambda pair: _check(engine, *pair), checks)
        counts: dict[str, int] = {}
        for _, kind, sql in new_plan[checked + 1 :]:
            if kind == "ops":
                counts = _run_ops(engine, sql, stage, new_version.schema, out)
            else:
                engine.execute(sql)
    return {
        "counts": counts,
        "old_schema": old_version.schema,
        "new_schema": new_version.schema,
        "old_rows": old_rows,
        "new_rows": new_rows,
    }


def _plan(
    sides: Sequence[Export], config: TableConfig
) -> tuple[Version, Version, list[PlannedStatement], list[PlannedStatement]]:
    """Plan's versions and statements: OLD as a first load (without its ops), NEW as the delta
    against OLD. Planned before anything runs: a changed key fails before any file is read."""
    old_version = _version(sides[0], config)
    # NEW keeps OLD's key when it still has those columns, as a next version would
    new_version = _version(sides[1], config, old_version.schema.key)
    old_plan = [
        s for s in version_statements(DATABASE, old_version, size_limits=False) if s[1] != "ops"
    ]
    try:
        new_plan = version_statements(DATABASE, new_version, old_version, size_limits=False)
    except ContractError as exc:
        raise CliError(f"OLD and NEW cannot be compared: {exc.words(diff_option)}") from None
    for side, plan, version in zip(
        sides, (old_plan, new_plan), (old_version, new_version), strict=True
    ):
        try:
            check_statement_sizes(plan, str(side), version.schema)
        except ContractError as exc:
            raise CliError(exc.words(diff_option)) from None
    return old_version, new_version, old_plan, new_plan


class _TemplateCache(jinja2.FileSystemBytecodeCache):
    """Jinja's compiled templates on disk; one that cannot be written is compiled next time."""

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with suppress(OSError):
            super().dump_bytecode(bucket)


@contextmanager
def _templates_cached(cache: Path | None) -> Iterator[None]:
    """Plan's templates loaded through a cache of their compiled code in ``cache``: compiling
    them costs more than reading both header rows. Jinja checks each template's source against
    the cached code. Only while diff plans: the environment is the process's (render's)."""
    environment = render.environment()
    previous = environment.bytecode_cache
    if cache is not None:
        try:
            (cache / "jinja").mkdir(parents=True, exist_ok=True, mode=0o700)
            environment.bytecode_cache = _TemplateCache(str(cache / "jinja"))
        except OSError:
            pass
    try:
        yield
    finally:
        environment.bytecode_cache = previous


def _resolver_for(stage: Path, sides: Sequence[Export]):
    """Each side's location holds exactly its staged file (looked up when a query runs), known
    by the user's path: what the engine says of a file (it cannot be read, a bad row is in it)
    names the file the user gave, never the staged copy or its made-up S3 location."""
    given = {side.staged.parent.name: str(side.path) for side in sides}

    def resolve(location: str) -> list[TableFile]:
        name = location.rstrip("/").rsplit("/", 1)[-1]
        return [
            TableFile(str(p), given.get(name, str(p))) for p in sorted((stage / name).glob("*"))
        ]

    return resolve


def _chunks(path: Path, size: int = READ_BYTES) -> Iterator[bytes]:
    """The file's bytes as they are read."""
    with path.open("rb") as fh:
        while chunk := fh.read(size):
            yield chunk


def _version(
    side: Export, config: TableConfig, previous_key: tuple[str, ...] | None = None
) -> Version:
    """The side's version as Plan resolves it: its header row read, the configuration applied."""

    def header_of(_: str) -> list[str]:
        chunks = _chunks(side.staged, HEADER_READ_BYTES)
        if side.staged.name.endswith(".gz"):  # inflated as Plan inflates an export's start
            chunks = gunzipped(chunks, str(side.path))
        try:
            return header_fields(chunks, config, str(side.path))
        except OSError as exc:
            raise CliError(f"cannot read {side}: {exc.strerror or exc}") from None

    try:
        schema = version_schema(config, [str(side.path)], header_of, previous_key)
    except ContractError as exc:
        raise CliError(f"{side}: {exc.words(diff_option)}") from None
    table = side.staged.parent.name
    return Version(table, schema, config, f"{BUCKET}/{table}/")


def _check(engine: AthenaEngine, side: Export, sql: str, key: tuple[str, ...]) -> int:
    """Run the check and judge it as Check judges the pipeline's; the file's row count."""
    try:
        result = engine.execute(sql)
    except EngineError as exc:  # Athena's reason, naming the user's file (see _resolver_for)
        raise CliError(f"{side}: {exc}") from None
    assert result.rows is not None
    # the records Athena's result file holds: values as text, NULL as None
    records = [list(result.columns)]
    records += [[None if v is None else str(v) for v in row] for row in result.rows]
    try:
        # a bad row's sample names the user's file, not the staged copy the engine read
        return evaluate_records(records, str(side), file_name=lambda _: str(side.path), key=key)[
            "row_count"
        ]
    except ExportCheckFailed as exc:
        raise CliError(f"{side}: {exc.words(diff_option)}") from None
    except ResultFormatError as exc:
        raise CliError(f"{side}: {exc}") from None


def _run_ops(
    engine: AthenaEngine,
    sql: str,
    stage: Path,
    schema: TableSchema,
    out: str | os.PathLike[str] | None,
) -> dict[str, int]:
    """Run the delta; count its ops as Hold counts them; optionally write them as plain CSV."""
    result_csv = stage / "result.csv"
    try:
        engine.execute(sql, output_path=result_csv)
    except EngineError as exc:
        raise CliError(str(exc)) from None
    counts = count_leading_in(_chunks(result_csv), queries.OPS)
    if out is not None:
        _write_plain_csv(engine, result_csv, schema, Path(out))
    return counts


def _write_plain_csv(
    engine: AthenaEngine, result_csv: Path, schema: TableSchema, target: Path
) -> None:
    """Athena's result CSV (every value quoted) rewritten as plain CSV by the engine's DuckDB
    (a database of its own would cost another ~20 ms to start), no Python loop over the rows
    (there can be millions)."""
    if target.parent and not target.parent.exists():
        raise CliError(f"cannot write {target}: directory {target.parent} does not exist")
    # read under positional names: a user's column may be called op too
    names = ["op", *schema.columns]
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(names))) + "}"
    body = result_csv.parent / "ops_body.csv"
    con = engine.local_cursor()
    try:
        con.execute(
            f"COPY (SELECT * FROM read_csv('{_sql_text(str(result_csv))}', "
            f"columns = {columns}, header = true, auto_detect = false, quote = '\"', "
            f"escape = '\"', delim = ',')) TO '{_sql_text(str(body))}' (FORMAT csv, HEADER false)"
        )
        with target.open("wb") as dst, body.open("rb") as src:
            dst.write((",".join(names) + "\n").encode())  # validated names need no quoting
            shutil.copyfileobj(src, dst, 1 << 20)
    except duckdb.IOException as exc:
        raise CliError(f"cannot write {target}: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()


def _sql_text(value: str) -> str:
    return value.replace("'", "''")
