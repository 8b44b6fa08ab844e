"""``snapcdc diff``: the delta between two export files, computed the way the pipeline does.

The same templates (:mod:`snapcdc.sql.queries`) run on the same engine
(:class:`~snapcdc_local.engine.engine.AthenaEngine`): a database, one external table per file, the
data checks on both, then the delta. Only the file locations differ: each file is mapped to
an S3 location of its own.

Usage::

    snapcdc diff OLD NEW [--key K1,K2] [--delimiter ';'] [--no-header --columns a,b,c]
                 [--quote '"'] [--escape '\\'] [--out ops.csv]

prints the INSERT / UPDATE / DELETE counts; ``--out`` writes the operations as CSV with the
header ``op,<columns>`` (the new file's columns; a DELETE carries the old row's values).

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
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from snapcdc.model.contract import (
    TABLE_CONFIG_FILE,
    ContractError,
    TableConfig,
    TableSchema,
    export_table_name,
    validate_name,
)
from snapcdc.sql import queries
from snapcdc.steps import check
from snapcdc_local.cli.main import CliError, Command
from snapcdc_local.engine.engine import AthenaEngine, EngineError, mapping_resolver
from snapcdc_local.engine.opencsv import NO_ESCAPE, split_line

DATABASE = "snapcdc_diff"
BUCKET = "s3://snapcdc-local"
GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class DiffResult:
    """Counts per operation plus the schemas and row counts of both sides."""

    counts: dict[str, int]
    old_schema: TableSchema | None
    new_schema: TableSchema
    old_rows: int
    new_rows: int
    out: Path | None = None


@dataclass
class _Export:
    """One side of a diff: the user's file and how it is shown to the engine."""

    role: str  # OLD or NEW
    path: Path
    table: str
    location: str
    staged: Path = field(init=False)


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
        engine.execute(queries.create_database(DATABASE))
        old_schema = _schema(sides[0], config)
        new_schema = _schema(sides[1], config, old_schema.key)
        try:  # rendered first: a changed key fails before any file is read
            sql = queries.delta(DATABASE, sides[0].table, old_schema, sides[1].table, new_schema)
        except ContractError as exc:
            raise CliError(f"OLD and NEW cannot be compared: {exc}") from None
        for side, schema in zip(sides, (old_schema, new_schema), strict=True):
            engine.execute(
                queries.create_export_table(
                    DATABASE, side.table, schema.columns, side.location, config
                )
            )
        # Both checks at once, as two Athena queries would run: each reads its own file.
        with ThreadPoolExecutor(max_workers=2) as pool:
            old_rows, new_rows = pool.map(
                lambda pair: _check(engine, *pair),
                zip(sides, (old_schema, new_schema), strict=True),
            )
        counts = _run_ops(engine, sql, stage, new_schema, out)
    return DiffResult(counts, old_schema, new_schema, old_rows, new_rows, _path(out))


def first_load_counts(
    engine: AthenaEngine, database: str, table: str, schema: TableSchema, stage: Path
) -> dict[str, int]:
    """Counts of a first load (every row an INSERT), through the first_load template."""
    return _run_ops(engine, queries.first_load(database, table, schema), stage, schema, None)


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
    side = _Export(role, path, table, f"{BUCKET}/{table}/")
    # Athena picks the codec by file extension; a user's file is judged by its content.
    suffix = ".csv.gz" if magic == GZIP_MAGIC else ".csv"
    (stage / table).mkdir()
    side.staged = stage / table / f"export{suffix}"
    try:
        side.staged.symlink_to(path.resolve())
    except OSError:
        shutil.copyfile(path, side.staged)
    return side


def _open_text(path: Path):
    with path.open("rb") as fh:
        gzipped = fh.read(2) == GZIP_MAGIC
    if gzipped:
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return path.open("r", encoding="utf-8", newline="")


# -- schema, checks, operations -----------------------------------------------------------------


def _schema(
    side: _Export, config: TableConfig, previous_key: tuple[str, ...] | None = None
) -> TableSchema:
    try:
        if not config.header:
            return config.resolve(None, previous_key)
        return config.resolve(_header_row(side, config), previous_key)
    except ContractError as exc:
        raise CliError(f"{side.role} file {side.path}: {exc}") from None


def _header_row(side: _Export, config: TableConfig) -> list[str]:
    return read_header_row(side.staged, config, f"{side.role} file {side.path}")


def read_header_row(path: str | os.PathLike[str], config: TableConfig, what: str = "") -> list[str]:
    """The first line's fields (gzip or plain file), split as the SerDe splits a line.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "e.csv"
    >>> _ = p.write_text('\\ufeffid;"the name"\\r\\n1;x\\r\\n', encoding="utf-8")
    >>> read_header_row(p, TableConfig(delimiter=";"))
    ['id', 'the name']
    """
    what = what or f"file {path}"
    try:
        with _open_text(Path(path)) as fh:
            line = fh.readline()
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {what}: {_reason(exc)}") from None
    line = line.removeprefix("\ufeff").rstrip("\r\n")
    if not line:
        raise CliError(f"{what} has no header row (use --no-header --columns)")
    escape = config.escape if config.escape and config.escape != config.quote else NO_ESCAPE
    fields = split_line(
        line, line.count(config.delimiter) + 1, config.delimiter, config.quote, escape
    )
    if any(f is None for f in fields):
        raise CliError(f"{what}: cannot read the header row {line[:80]!r}")
    return [f for f in fields if f is not None]


def _check(engine: AthenaEngine, side: _Export, schema: TableSchema) -> int:
    try:
        result = engine.execute(
            queries.check_export(DATABASE, side.table, schema, size_limits=False)
        )
    except EngineError as exc:
        raise CliError(f"cannot read {side.role} file {side.path}: {exc}") from None
    assert result.rows is not None
    row = dict(zip(result.columns, result.rows[0], strict=True))
    problems = check.problems(row, file_name=lambda _: str(side.path))
    if problems:
        raise CliError(f"{side.role} file {side.path}: {'; '.join(problems)}")
    return int(row["row_count"])


def check_problems(row: dict, schema: TableSchema) -> list[str]:
    """Readable reasons why a check_export row rejects a version (empty when it passes).

    >>> check_problems({"row_count": 9, "duplicate_keys": 2, "duplicate_sample": "A, B",
    ...                 "empty_keys": 0, "ragged_rows": 1}, TableSchema(("k", "v"), ("k",)))
    ['2 duplicate keys (A, B)', '1 row with missing or extra fields']
    """
    problems = []
    if int(row["duplicate_keys"]):
        n = int(row["duplicate_keys"])
        problems.append(f"{n} duplicate key{'s' if n > 1 else ''} ({row['duplicate_sample']})")
    if int(row["empty_keys"]):
        n = int(row["empty_keys"])
        keys = ", ".join(schema.key)
        problems.append(f"{n} row{'s' if n > 1 else ''} with an empty key ({keys})")
    if int(row["ragged_rows"]):
        n = int(row["ragged_rows"])
        problems.append(f"{n} row{'s' if n > 1 else ''} with missing or extra fields")
    return problems


def _run_ops(
    engine: AthenaEngine,
    sql: str,
    stage: Path,
    schema: TableSchema,
    out: str | os.PathLike[str] | None,
) -> dict[str, int]:
    """Run a delta/first_load query; count its ops and optionally write them as plain CSV."""
    result_csv = stage / "result.csv"
    try:
        engine.execute(sql, output_path=result_csv)
    except EngineError as exc:
        raise CliError(str(exc)) from None
    # The result is Athena's CSV; a second small DuckDB pass counts and rewrites it without
    # Python row loops (the result can have a million rows).
    # read under positional names: a user's column may be called op too
    names = ["op", *schema.columns]
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(names))) + "}"
    con = duckdb.connect()
    try:
        con.execute(
            f"CREATE TEMP VIEW ops AS SELECT * FROM read_csv('{_sql_text(str(result_csv))}', "
            f"columns = {columns}, header = true, auto_detect = false, quote = '\"', "
            "escape = '\"', delim = ',')"
        )
        counts = dict.fromkeys(queries.OPS, 0)
        for op, n in con.execute("SELECT c0, count(*) FROM ops GROUP BY c0").fetchall():
            counts[op] = int(n)
        if out is not None:
            target = Path(out)
            if target.parent and not target.parent.exists():
                raise CliError(f"cannot write {target}: directory {target.parent} does not exist")
            body = stage / "ops_body.csv"
            con.execute(f"COPY ops TO '{_sql_text(str(body))}' (FORMAT csv, HEADER false)")
            with target.open("wb") as dst, body.open("rb") as src:
                dst.write((",".join(names) + "\n").encode())  # names need no quoting
                shutil.copyfileobj(src, dst, 1 << 20)
    except duckdb.IOException as exc:
        raise CliError(f"cannot write {out}: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()
    return counts


def _sql_text(value: str) -> str:
    return value.replace("'", "''")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, gzip.BadGzipFile | zlib.error | EOFError):
        return f"not a readable gzip file ({exc or type(exc).__name__})"
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    return getattr(exc, "strerror", None) or str(exc)


def _path(value: str | os.PathLike[str] | None) -> Path | None:
    return Path(value) if value is not None else None


# -- demo: the reference exports in sequence ---------------------------------------------------


def demo(data_dir: str | os.PathLike[str]) -> list[tuple[str, str, dict[str, int]]]:
    """Process every table under ``data_dir/{tenant}/{table}/{version}/`` version by version.

    The first version is a first load; every later one is diffed against the one before.
    Returns ``(table id, version, counts)`` per version; prints as it goes.
    """
    root = Path(data_dir)
    tables = sorted(p.parent for p in root.glob(f"*/*/{TABLE_CONFIG_FILE}"))
    if not tables:
        raise CliError(f"no {{tenant}}/{{table}}/{TABLE_CONFIG_FILE} found under {root}")
    report = []
    with _staging() as stage:
        for table_dir in tables:
            report.extend(_demo_table(table_dir, stage))
    return report


def _demo_table(table_dir: Path, stage: Path) -> list[tuple[str, str, dict[str, int]]]:
    tenant, table = (
        validate_name(table_dir.parent.name, "tenant"),
        validate_name(table_dir.name, "table"),
    )
    config = TableConfig.from_json((table_dir / TABLE_CONFIG_FILE).read_text())
    versions = sorted(p for p in table_dir.iterdir() if p.is_dir())
    locations = {f"{BUCKET}/{tenant}/{table}/{v.name}/": sorted(v.glob("*.csv*")) for v in versions}
    database = f"snapcdc_{tenant}"
    report = []
    with AthenaEngine(mapping_resolver(locations)) as engine:
        engine.execute(queries.create_database(database))
        previous: tuple[str, TableSchema] | None = None
        for version in versions:
            name = export_table_name(table, version.name)
            files = locations[f"{BUCKET}/{tenant}/{table}/{version.name}/"]
            side = _Export(f"{tenant}/{table}/{version.name}", version, name, "")
            if not files:
                raise CliError(f"{side.role}: no export files")
            side.staged = files[0]
            schema = _schema(side, config)
            side.location = f"{BUCKET}/{tenant}/{table}/{version.name}/"
            engine.execute(
                queries.create_export_table(database, name, schema.columns, side.location, config)
            )
            check = engine.execute(queries.check_export(database, name, schema))
            assert check.rows is not None
            problems = check_problems(dict(zip(check.columns, check.rows[0], strict=True)), schema)
            if problems:
                raise CliError(f"{side.role}: {'; '.join(problems)}")
            if previous is None:
                counts = first_load_counts(engine, database, name, schema, stage)
                label = "first load"
            else:
                sql = queries.delta(database, previous[0], previous[1], name, schema)
                counts = _run_ops(engine, sql, stage, schema, None)
                label = f"against {previous[0]}"
            print(f"{tenant}/{table} {version.name} ({label}): {format_counts(counts)}")
            report.append((f"{tenant}/{table}", version.name, counts))
            previous = (name, schema)
    return report


def format_counts(counts: dict[str, int]) -> str:
    """``INSERT 1, UPDATE 2, DELETE 0``.

    >>> format_counts({"INSERT": 1, "UPDATE": 2, "DELETE": 0})
    'INSERT 1, UPDATE 2, DELETE 0'
    """
    return ", ".join(f"{op} {counts.get(op, 0):,}" for op in queries.OPS)


# -- the subcommand -----------------------------------------------------------------------------


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "old", nargs="?", metavar="OLD", help="the previous export (CSV, gzip or plain)"
    )
    parser.add_argument("new", nargs="?", metavar="NEW", help="the new export (CSV, gzip or plain)")
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
    # Until the full local pipeline lands, `make demo` runs the reference exports through here.
    parser.add_argument("--demo", metavar="DATA_DIR", help=argparse.SUPPRESS)


def _split_names(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",")]


def _run(args: argparse.Namespace) -> int:
    if args.demo is not None:
        if args.old or args.new:
            raise CliError("--demo takes no OLD/NEW files")
        demo(args.demo)
        return 0
    if not args.old or not args.new:
        raise CliError("OLD and NEW export files are required")
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
