"""``snapcdc diff``: the delta between two export files, computed by the pipeline's own core.

The statements are the pipeline's (:func:`snapcdc.steps.plan.version_statements`: OLD planned
as a first load, NEW as a delta against it), run on the embedded engine
(:class:`~snapcdc_local.engine.engine.AthenaEngine`); the header is read and the schema
resolved as Plan does, the checks judged as Check does (so a file fails in the same words as
the pipeline's FAILED reason), the ops counted as Hold counts them. Only the files differ: a
local file (gzip or plain) is mapped to an S3 location of its own, and the AWS size limits are
not checked (nothing is stored in AWS).

``--out`` writes the operations as CSV with the header ``op,<columns>`` (the new file's
columns; a DELETE carries the old row's values).

>>> import tempfile, pathlib
>>> tmp = pathlib.Path(tempfile.mkdtemp())
>>> _ = (tmp / "old.csv").write_text("id,name\\n1,a\\n2,b\\n")
>>> _ = (tmp / "new.csv").write_text("id,name\\n1,a\\n2,B\\n3,c\\n")
>>> diff_files(tmp / "old.csv", tmp / "new.csv", TableConfig()).counts
{'INSERT': 1, 'UPDATE': 1, 'DELETE': 0}
"""

# The DuckDB SQL below only embeds values passed through _sql_text (quotes doubled).
# ruff: noqa: S608

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from snapcdc.aws.result_files import count_leading_in
from snapcdc.model.contract import ContractError, TableConfig, TableSchema
from snapcdc.model.errors import ExportCheckFailed, ResultFormatError
from snapcdc.sql import queries
from snapcdc.steps.check import evaluate_records
from snapcdc.steps.plan import (
    Version,
    check_statement_sizes,
    header_fields,
    version_schema,
    version_statements,
)
from snapcdc_local.cli.main import CliError, Command
from snapcdc_local.engine.engine import AthenaEngine, EngineError

DATABASE = "snapcdc_diff"
BUCKET = "s3://snapcdc-local"
GZIP_MAGIC = b"\x1f\x8b"
READ_BYTES = 1 << 20


@dataclass
class DiffResult:
    """Counts per operation plus the schemas and row counts of both sides."""

    counts: dict[str, int]
    old_schema: TableSchema
    new_schema: TableSchema
    old_rows: int
    new_rows: int
    out: Path | None = None


@dataclass
class _Export:
    """One side of a diff: the user's file, and the file the engine reads (a link to it)."""

    role: str  # OLD or NEW
    path: Path
    staged: Path

    def __str__(self) -> str:
        return f"{self.role} file {self.path}"


def diff_files(
    old: str | os.PathLike[str],
    new: str | os.PathLike[str],
    config: TableConfig,
    out: str | os.PathLike[str] | None = None,
) -> DiffResult:
    """Diff two export files; see the module docstring. Raises CliError on bad input."""
    with _staging() as stage, AthenaEngine(_resolver_for(stage)) as engine:
        sides = [
            _stage(stage, "OLD", Path(old), "old_export"),
            _stage(stage, "NEW", Path(new), "new_export"),
        ]
        old_version, new_version = (_version(side, config) for side in sides)
        # Planned before anything runs: a changed key fails before any file is read.
        old_plan = [
            s for s in version_statements(DATABASE, old_version, size_limits=False) if s[1] != "ops"
        ]
        try:
            new_plan = version_statements(DATABASE, new_version, old_version, size_limits=False)
        except ContractError as exc:
            raise CliError(f"OLD and NEW cannot be compared: {exc}") from None
        for side, plan, version in zip(
            sides, (old_plan, new_plan), (old_version, new_version), strict=True
        ):
            try:
                check_statement_sizes(plan, str(side), version.schema)
            except ContractError as exc:
                raise CliError(str(exc)) from None
        checked = next(i for i, (_, kind, _) in enumerate(new_plan) if kind == "check")
        for _, kind, sql in old_plan + new_plan[:checked]:
            if kind == "ddl":
                engine.execute(sql)
        # Both checks at once, as two Athena queries would run: each reads its own file.
        checks = [(sides[0], old_plan[-1][2]), (sides[1], new_plan[checked][2])]
        with ThreadPoolExecutor(max_workers=2) as pool:
            old_rows, new_rows = pool.map(lambda pair: _check(engine, *pair), checks)
        counts: dict[str, int] = {}
        for _, kind, sql in new_plan[checked + 1 :]:
            if kind == "ops":
                counts = _run_ops(engine, sql, stage, new_version.schema, out)
            else:
                engine.execute(sql)
    return DiffResult(
        counts, old_version.schema, new_version.schema, old_rows, new_rows, _path(out)
    )


# -- staging files for the engine -----------------------------------------------------------------


@contextmanager
def _staging() -> Iterator[Path]:
    stage = Path(tempfile.mkdtemp(prefix="snapcdc-diff-"))
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _resolver_for(stage: Path):
    """Each side's location holds exactly its staged file (looked up when a query runs)."""

    def resolve(location: str) -> list[str]:
        name = location.rstrip("/").rsplit("/", 1)[-1]
        return [str(p) for p in sorted((stage / name).glob("*"))]

    return resolve


def _stage(stage: Path, role: str, path: Path, table: str) -> _Export:
    """Link the user's file under a name the engine reads as Athena would read the object."""
    if not path.exists():
        raise CliError(f"{role} file {path} does not exist")
    if not path.is_file():
        raise CliError(f"{role} file {path} is not a file")
    try:
        with path.open("rb") as fh:
            magic = fh.read(2)
    except OSError as exc:
        raise CliError(f"cannot read {role} file {path}: {exc.strerror}") from None
    # Athena picks the codec by file extension; a user's file is judged by its content.
    suffix = ".csv.gz" if magic == GZIP_MAGIC else ".csv"
    (stage / table).mkdir()
    staged = stage / table / f"export{suffix}"
    try:
        staged.symlink_to(path.resolve())
    except OSError:
        shutil.copyfile(path, staged)
    return _Export(role, path, staged)


def _chunks(path: Path) -> Iterator[bytes]:
    """The file's bytes, gunzipped if it is gzip, as they are read."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        while chunk := fh.read(READ_BYTES):
            yield chunk


# -- schema, checks, operations: the pipeline's core ----------------------------------------------


def _version(side: _Export, config: TableConfig) -> Version:
    """The side's version as Plan resolves it: its header row read, the configuration applied."""

    def header_of(_: str) -> list[str]:
        try:
            return header_fields(_chunks(side.staged), config, side.path.name)
        except (OSError, EOFError, zlib.error) as exc:
            raise CliError(f"cannot read {side}: {_reason(exc)}") from None

    try:
        schema = version_schema(config, [str(side.path)], header_of)
    except ContractError as exc:
        raise CliError(f"{side}: {exc}") from None
    table = side.staged.parent.name
    return Version(table, schema, config, f"{BUCKET}/{table}/")


def _check(engine: AthenaEngine, side: _Export, sql: str) -> int:
    """Run the check and judge it as Check judges the pipeline's; the file's row count."""
    try:
        result = engine.execute(sql)
    except EngineError as exc:
        raise CliError(f"cannot read {side}: {exc}") from None
    assert result.rows is not None
    # the records Athena's result file holds: values as text, NULL as None
    records = [list(result.columns)]
    records += [[None if v is None else str(v) for v in row] for row in result.rows]
    try:
        return evaluate_records(records, str(side))["row_count"]
    except (ExportCheckFailed, ResultFormatError) as exc:
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
        _write_plain_csv(result_csv, schema, Path(out))
    return counts


def _write_plain_csv(result_csv: Path, schema: TableSchema, target: Path) -> None:
    """Athena's result CSV (every value quoted) rewritten as plain CSV by DuckDB, no Python loop
    over the rows (there can be millions)."""
    if target.parent and not target.parent.exists():
        raise CliError(f"cannot write {target}: directory {target.parent} does not exist")
    names = ["op", *schema.columns]
    columns = "{" + ", ".join(f"'{_sql_text(n)}': 'VARCHAR'" for n in names) + "}"
    con = duckdb.connect()
    try:
        con.execute(
            f"COPY (SELECT * FROM read_csv('{_sql_text(str(result_csv))}', "
            f"columns = {columns}, header = true, auto_detect = false, quote = '\"', "
            f"escape = '\"', delim = ',')) TO '{_sql_text(str(target))}' (FORMAT csv, HEADER true)"
        )
    except duckdb.IOException as exc:
        raise CliError(f"cannot write {target}: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()


def _sql_text(value: str) -> str:
    return value.replace("'", "''")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, gzip.BadGzipFile | zlib.error | EOFError):
        return f"not a readable gzip file ({exc or type(exc).__name__})"
    return getattr(exc, "strerror", None) or str(exc)


def _path(value: str | os.PathLike[str] | None) -> Path | None:
    return Path(value) if value is not None else None


# -- the subcommand -----------------------------------------------------------------------------


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("old", metavar="OLD", help="the previous export (CSV, gzip or plain)")
    parser.add_argument("new", metavar="NEW", help="the new export (CSV, gzip or plain)")
    parser.add_argument("--key", help="key column(s), comma separated (default: the first column)")
    parser.add_argument("--delimiter", default=",", help="field delimiter (default ',')")
    parser.add_argument("--quote", default='"', help="quote character (default '\"')")
    parser.add_argument(
        "--escape",
        default=None,
        help="escape character (default none: a quote inside a quoted field is doubled)",
    )
    parser.add_argument(
        "--no-header", action="store_true", help="the files have no header row (needs --columns)"
    )
    parser.add_argument("--columns", help="column names in file order, comma separated")
    parser.add_argument("--out", metavar="OPS_CSV", help="write the operations to this CSV file")


def _split_names(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",")]


def _run(args: argparse.Namespace) -> int:
    if args.columns is None and args.no_header:
        raise CliError("--no-header needs --columns")
    raw = {
        "columns": _split_names(args.columns),
        "key": _split_names(args.key),
        "delimiter": _unescape(args.delimiter),
        "quote": _unescape(args.quote),
        "escape": _unescape(args.escape) if args.escape else None,
        "header": not args.no_header,
    }
    config = TableConfig.from_dict(raw)
    result = diff_files(args.old, args.new, config, args.out)
    for op in queries.OPS:
        print(f"{op:<7}{result.counts[op]:>12,}")
    if result.out is not None:
        print(f"wrote {sum(result.counts.values()):,} operations to {result.out}")
    return 0


def _unescape(value: str) -> str:
    r"""Let ``--delimiter '\t'`` mean a tab, as users type it in a shell."""
    return {"\\t": "\t", "tab": "\t", "\\\\": "\\"}.get(value, value)


DESCRIPTION = """\
Compute the operations that turn export OLD into export NEW the way the pipeline does: the
same Athena SQL templates, run by the embedded engine, with the same data checks (duplicate
keys, empty keys, rows with missing or extra fields). Files may be gzip or plain CSV.

Prints the INSERT, UPDATE and DELETE counts. --out writes the operations as CSV: op, then
NEW's columns in file order; a DELETE carries OLD's values. Columns are matched by name, so
reordering them changes nothing; when a column was added or removed, every row kept is an
UPDATE carrying the new shape.

examples:
  snapcdc diff v1.csv.gz v2.csv.gz --key id --out ops.csv
  snapcdc diff a.csv b.csv --no-header --columns PK,COL_1,COL_2 --delimiter ';'
"""

COMMAND = Command(
    name="diff",
    help="compute the INSERT/UPDATE/DELETE operations between two export files",
    description=DESCRIPTION,
    add_arguments=_add_arguments,
    run=_run,
)
