"""An embedded Athena: the pipeline's Athena SQL executed on DuckDB.

What it does, statement by statement:

- ``CREATE DATABASE``: a DuckDB schema.
- ``CREATE EXTERNAL TABLE`` (OpenCSVSerde, STRING columns): the definition is remembered;
  nothing is read yet. Files are resolved **at query time**, as Athena lists S3 when a query
  runs: the table's ``LOCATION`` goes through ``resolve_location`` to local files, objects whose
  name starts with ``_`` or ``.`` are skipped (Hive's hidden files), ``.gz`` files are gunzipped.
  The rows are then read exactly as Athena's OpenCSVSerde reads them: files without any quoting
  by pyarrow into an Arrow table DuckDB queries in place (:mod:`snapcdc_local.engine.arrow_reader`),
  all others line by line into an in-memory DuckDB table (:mod:`snapcdc_local.engine.opencsv`).
  The rows are reused while the files stay the same (same paths, sizes and modification times).
- ``DROP TABLE``: forgets the definition and the rows.
- ``SELECT`` / ``WITH``: transpiled with sqlglot from Athena (Trino) to DuckDB and run.

Results come out as Athena writes them to S3: a CSV file with a header row, every value in
double quotes, NULL as an empty unquoted field, ``\\n`` line ends, column names lowercased (Trino
folds identifiers). Errors raise :class:`EngineError` with an Athena-like one-line message
(``TABLE_NOT_FOUND: ...``, ``HIVE_BAD_DATA: ...``).

Where Athena's result cannot be reproduced exactly the engine raises instead of computing
something Athena would not: a lone carriage return in a file whose lines end otherwise, bytes
that are not UTF-8 (Athena would substitute U+FFFD), the byte sequence NUL SOH NUL (the engine's
internal line marker), an unsupported SerDe, table property, column type or compression. A
quoted field holding a line end is *not* an error: Athena's line reader splits the row there,
and so does the engine (the data checks then report ragged rows).

>>> import tempfile, pathlib
>>> tmp = pathlib.Path(tempfile.mkdtemp())
>>> _ = (tmp / "e.csv").write_text("k;v\\nPK1;a\\nPK2;\\n")
>>> engine = AthenaEngine(mapping_resolver({"s3://bucket/t/": [tmp / "e.csv"]}))
>>> _ = engine.execute("CREATE DATABASE d")
>>> _ = engine.execute(
...     "CREATE EXTERNAL TABLE d.t (k STRING, v STRING) "
...     "ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde' "
...     "WITH SERDEPROPERTIES ('separatorChar' = ';') LOCATION 's3://bucket/t/' "
...     "TBLPROPERTIES ('skip.header.line.count' = '1')")
>>> result = engine.execute('SELECT "K", v FROM d.t ORDER BY k', output_path=tmp / "r.csv")
>>> print((tmp / "r.csv").read_text(), end="")
"k","v"
"PK1","a"
"PK2",""
>>> (result.columns, result.row_count, result.statement_type)
(('k', 'v'), 2, 'DML')
"""

# DuckDB SQL is assembled here from identifiers and literals quoted by _q / _lit only.
# ruff: noqa: S608

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from snapcdc_local.engine import arrow_reader as engine_arrow
from snapcdc_local.engine.ddl import CreateDatabase, DdlError, DropTable, ExternalTable, parse_ddl
from snapcdc_local.engine.opencsv import NO_ESCAPE, regular_line_patterns, split_line

try:  # ISA-L inflates gzip about twice as fast as DuckDB's built-in reader
    from isal import igzip as _isal_gzip
except ImportError:  # pragma: no cover - optional accelerator
    _isal_gzip = None


@dataclass(frozen=True)
class TableFile:
    """One file a LOCATION holds: where it is on disk and the URI Athena's ``"$path"`` shows."""

    path: str
    uri: str


# A resolver answers a LOCATION with its files: TableFile, or a bare local path whose "$path"
# is then the location joined with the file's name.
Resolver = Callable[[str], Sequence["TableFile | str | os.PathLike[str]"]]

# Where the rows of external tables live; user databases never get this name.
STORAGE_SCHEMA = "snapcdc_engine_storage"
# Athena's pseudo-column naming the S3 object a row was read from
# (https://aws.amazon.com/premiumsupport/knowledge-center/find-s3-source-file-athena-table-row/);
# not part of SELECT *. Stored as an index into the table's files.
PATH_COLUMN = "$path"
FILE_COLUMN = "_file"
DEFAULT_DATABASE = "default"
COMPRESSED_SUFFIXES = {".gz": "gzip", ".zst": "zstd"}
# Lines are read as a single column; the "delimiter" is a byte sequence text never holds (a
# NUL alone may occur and is data to OpenCSVSerde).
LINE_DELIMITER = "chr(0) || chr(1) || chr(0)"
UNSUPPORTED_SUFFIXES = (".bz2", ".snappy", ".lz4", ".deflate", ".zip")
# gzip files at least this big are inflated with ISA-L (when installed) before DuckDB reads them.
FAST_GUNZIP_MIN_BYTES = 1 << 20
# (path, DuckDB compression) of one file to read
Source = tuple[str, str]


class EngineError(RuntimeError):
    """A statement failed; ``str(error)`` is a one-line Athena-like reason."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))

    @property
    def error_type(self) -> str:
        """The leading category (``TABLE_NOT_FOUND``, ``HIVE_BAD_DATA``, ...)."""
        head = str(self).split(":", 1)[0]
        return head if head and " " not in head else "GENERIC_INTERNAL_ERROR"


@dataclass
class QueryResult:
    """What one statement produced.

    ``rows`` holds the result in memory when no ``output_path`` was given (for tests and small
    results); otherwise the CSV file is the result.
    """

    statement_type: str  # 'DDL' or 'DML'
    columns: tuple[str, ...] = ()
    row_count: int = 0
    data_scanned_bytes: int = 0
    output_path: Path | None = None
    rows: list[tuple[Any, ...]] | None = None


def file_resolver(location: str) -> list[str]:
    """Default resolver: a ``file://`` URI or a plain directory/file path, listed recursively.

    ``s3://`` locations need a resolver that knows where the objects are, e.g.
    :func:`mapping_resolver` in tests or the emulator's S3-backed one.
    """
    if location.startswith("s3://"):
        raise EngineError(f"HIVE_FILESYSTEM_ERROR: no resolver configured for {location}")
    path = Path(location.removeprefix("file://"))
    if path.is_file():
        return [str(path)]
    if not path.is_dir():
        return []
    return sorted(str(p) for p in path.rglob("*") if p.is_file())


def mapping_resolver(mapping: Mapping[str, Iterable[str | os.PathLike[str]]]) -> Resolver:
    """A resolver from a fixed ``{location: [local files]}`` mapping (tests, ``snapcdc diff``).

    Trailing slashes do not matter; an unknown location holds no files, like an empty prefix.
    """
    table = {k.rstrip("/"): [str(p) for p in v] for k, v in mapping.items()}

    def resolve(location: str) -> list[str]:
        return list(table.get(location.rstrip("/"), []))

    return resolve


@dataclass
class _Loaded:
    """An external table's rows, materialized from a given set of files.

    ``arrow`` holds them when the fast path read them (see :mod:`engine_arrow`); DuckDB
    queries them in place, through a name each query's cursor registers.
    """

    table: ExternalTable
    signature: tuple[tuple[str, int, int], ...]
    scanned_bytes: int
    arrow: Any = None


@dataclass
class _Catalog:
    databases: set[str] = field(default_factory=lambda: {DEFAULT_DATABASE})
    tables: dict[tuple[str, str], ExternalTable] = field(default_factory=dict)


Key = tuple[str, str]


class AthenaEngine:
    """Run Athena SQL on DuckDB; see the module docstring for the semantics.

    ``resolve_location`` maps a table's LOCATION URI to local file paths (default:
    :func:`file_resolver`). ``max_cached_tables`` bounds how many tables' rows stay in memory
    between queries (least recently used ones are dropped and re-read when needed).

    The engine may be shared between threads, as concurrent Step Functions executions share
    Athena: each statement runs on a DuckDB cursor of its own, catalog changes are serialized,
    and a table's files are read by one statement at a time while other tables load alongside.
    """

    # Quoted lines at which re-reading a regular file with DuckDB's CSV reader beats splitting
    # them with regular expressions.
    native_read_min_lines = 20_000
    # Read files without any quoting with pyarrow (when installed): same rows, ~3x faster.
    arrow_read = engine_arrow.available()

    def __init__(
        self,
        resolve_location: Resolver | None = None,
        *,
        max_cached_tables: int = 8,
        threads: int | None = None,
    ):
        self._resolve = resolve_location or file_resolver
        self._max_cached = max(1, max_cached_tables)
        self._state = threading.Lock()  # guards _catalog, _loaded, _pins, _table_locks
        self._catalog = _Catalog()
        self._loaded: OrderedDict[Key, _Loaded] = OrderedDict()
        self._pins: dict[Key, int] = {}
        self._table_locks: dict[Key, threading.Lock] = {}
        self._con = duckdb.connect(":memory:")
        if threads:
            self._con.execute(f"SET threads = {int(threads)}")
        # Athena promises no row order without ORDER BY; not keeping one lets DuckDB stream.
        self._con.execute("SET preserve_insertion_order = false")
        self._con.execute(f"CREATE SCHEMA {_q(STORAGE_SCHEMA)}")
        self._con.execute(f"CREATE SCHEMA IF NOT EXISTS {_q(DEFAULT_DATABASE)}")

    # -- public API -------------------------------------------------------------------------

    def execute(
        self,
        sql: str,
        database: str | None = None,
        output_path: str | os.PathLike[str] | None = None,
    ) -> QueryResult:
        """Run one statement; write the result CSV to ``output_path`` when given."""
        statement = _parse_one(sql)
        database = (database or DEFAULT_DATABASE).lower()
        out = Path(output_path) if output_path is not None else None
        if isinstance(statement, exp.Query):
            return self._query(statement, database, out)
        try:
            ddl = parse_ddl(statement)
        except DdlError as exc:
            raise EngineError(str(exc)) from None
        with self._state:
            self._ddl(ddl, database)
        if out is not None:
            # Athena writes a (here empty) text result for DDL too.
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(b"")
        return QueryResult(statement_type="DDL", output_path=out)

    def tables(self) -> dict[Key, ExternalTable]:
        """The external tables defined so far, by ``(database, table)``."""
        with self._state:
            return dict(self._catalog.tables)

    def close(self) -> None:
        with self._state:
            self._con.close()

    def __enter__(self) -> AthenaEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- DDL (called with the state lock held) ---------------------------------------------------

    def _ddl(self, ddl: CreateDatabase | DropTable | ExternalTable, database: str) -> None:
        catalog = self._catalog
        if isinstance(ddl, CreateDatabase):
            if ddl.database in catalog.databases:
                if not ddl.if_not_exists:
                    raise EngineError(
                        f"AlreadyExistsException: Database {ddl.database} already exists"
                    )
                return
            if ddl.database == STORAGE_SCHEMA:
                raise EngineError(f"NOT_SUPPORTED: {STORAGE_SCHEMA} is reserved by the engine")
            con = self._con.cursor()
            try:
                con.execute(f"CREATE SCHEMA {_q(ddl.database)}")
            finally:
                con.close()
            catalog.databases.add(ddl.database)
        elif isinstance(ddl, ExternalTable):
            db = ddl.database or database
            self._require_database(db)
            key = (db, ddl.table)
            if key in catalog.tables:
                if not ddl.if_not_exists:
                    raise EngineError(
                        f"AlreadyExistsException: Table {db}.{ddl.table} already exists"
                    )
                return
            catalog.tables[key] = ddl
        elif isinstance(ddl, DropTable):
            db = ddl.database or database
            key = (db, ddl.table)
            if key not in catalog.tables:
                if not ddl.if_exists:
                    raise EngineError(f"SemanticException: Table not found {db}.{ddl.table}")
                return
            del catalog.tables[key]
            if not self._pins.get(key):
                self._unload(key)  # otherwise the last query using it unloads it

    def _require_database(self, database: str) -> None:
        if database not in self._catalog.databases:
            raise EngineError(f"SCHEMA_NOT_FOUND: Schema '{database}' does not exist")

    # -- queries --------------------------------------------------------------------------------

    def _query(self, query: exp.Query, database: str, out: Path | None) -> QueryResult:
        with self._state:
            self._require_database(database)
            tables = self._referenced_tables(query, database)
            if any(c.name == PATH_COLUMN for c in query.find_all(exp.Column)):
                query = _with_path(query, database)
        try:
            sql = query.transform(_utf8_length).transform(_count_if).sql(dialect="duckdb")
        except sqlglot.errors.SqlglotError as exc:
            raise EngineError(f"NOT_SUPPORTED: {exc}") from None
        with self._state:
            for key in tables:
                self._pins[key] = self._pins.get(key, 0) + 1
        con = self._con.cursor()
        try:
            scanned = sum(
                self._ensure_loaded(key, table, con) for key, table in sorted(tables.items())
            )
            return self._run(con, sql, database, out, scanned)
        finally:
            con.close()
            with self._state:
                for key in tables:
                    self._pins[key] -= 1
                    if not self._pins[key]:
                        del self._pins[key]
                        if key not in self._catalog.tables:
                            self._unload(key)
                self._evict()

    def _run(
        self,
        con: duckdb.DuckDBPyConnection,
        sql: str,
        database: str,
        out: Path | None,
        scanned: int,
    ) -> QueryResult:
        try:
            con.execute(f"SET schema = {_lit(database)}")
            relation = con.sql(sql)
            columns = tuple(c.lower() for c in relation.columns)
            if out is None:
                rows = relation.fetchall()
                return QueryResult("DML", columns, len(rows), scanned, None, rows)
            out.parent.mkdir(parents=True, exist_ok=True)
            aliases = ", ".join(_q(c) for c in columns)
            (count,) = con.execute(
                f"COPY (SELECT * FROM ({sql}) AS _result({aliases})) TO {_lit(str(out))} "
                "(FORMAT csv, HEADER true, FORCE_QUOTE *, NEW_LINE '\\n')"
            ).fetchone()
            return QueryResult("DML", columns, int(count), scanned, out, None)
        except duckdb.Error as exc:
            raise EngineError(_duckdb_message(exc)) from None

    def _referenced_tables(self, query: exp.Query, database: str) -> dict[Key, ExternalTable]:
        """Catalog tables a query reads; unknown tables raise like Athena does."""
        found: dict[Key, ExternalTable] = {}
        for key in table_references(query, database):
            if key not in self._catalog.tables:
                if key[0] not in self._catalog.databases:
                    raise EngineError(f"SCHEMA_NOT_FOUND: Schema '{key[0]}' does not exist")
                raise EngineError(
                    f"TABLE_NOT_FOUND: Table 'awsdatacatalog.{key[0]}.{key[1]}' does not exist"
                )
            found[key] = self._catalog.tables[key]
        return found

    # -- reading external tables ------------------------------------------------------------------

    def _ensure_loaded(self, key: Key, table: ExternalTable, con: duckdb.DuckDBPyConnection) -> int:
        """Make the table's rows current; return the bytes its files hold (data scanned)."""
        with self._state:
            lock = self._table_locks.setdefault(key, threading.Lock())
        with lock:
            files = self._files(table)
            signature = tuple((f.path, *_stat(f.path)) for f in files)
            with self._state:
                loaded = self._loaded.get(key)
            if loaded is None or loaded.signature != signature or loaded.table is not table:
                arrow = self._materialize(con, key, table, files)
                loaded = _Loaded(table, signature, sum(size for _, size, _ in signature), arrow)
            elif loaded.arrow is not None:
                # registrations belong to one cursor: this query's must know the rows too
                con.register(_arrow_name(key), loaded.arrow)
            with self._state:
                self._loaded[key] = loaded
                self._loaded.move_to_end(key)
            return loaded.scanned_bytes

    def _evict(self) -> None:
        """Drop the least recently used tables' rows beyond the cache size (state lock held)."""
        for key in list(self._loaded):
            if len(self._loaded) <= self._max_cached:
                break
            if not self._pins.get(key):
                self._unload(key)

    def _files(self, table: ExternalTable) -> list[TableFile]:
        try:
            found = [_table_file(table.location, f) for f in self._resolve(table.location)]
        except EngineError:
            raise
        except Exception as exc:  # a resolver failing is an S3 error to the caller
            raise EngineError(
                f"HIVE_FILESYSTEM_ERROR: cannot list {table.location}: {exc}"
            ) from None
        files = []
        for file in sorted(found, key=lambda f: f.uri):
            name = os.path.basename(file.path)
            if name.startswith(("_", ".")):
                continue
            if name.lower().endswith(UNSUPPORTED_SUFFIXES):
                raise EngineError(
                    f"NOT_SUPPORTED: compression of {name} is not supported by the embedded engine"
                )
            files.append(file)
        return files

    def _materialize(
        self, con: duckdb.DuckDBPyConnection, key: Key, table: ExternalTable, files: list[TableFile]
    ) -> Any:
        """Read the table's files and (re)define its views; return the Arrow rows if any.

        Two views over the same rows: the table's columns (what ``SELECT *`` shows), and the
        columns plus ``"$path"`` (what a query naming ``"$path"`` reads, see _with_path).
        """
        storage = _storage_name(key)
        n = len(table.columns)
        column_list = ", ".join(_q(c) for c in table.columns)
        columns = ", ".join(f"c{i}" for i in range(n))
        uris = ", ".join(_lit(f.uri) for f in files)
        path = f"[{uris}][{FILE_COLUMN} + 1]" if files else "NULL::VARCHAR"
        arrow = self._read_arrow(table, [f.path for f in files])
        try:
            if arrow is not None:
                con.register(_arrow_name(key), arrow)
                con.execute(f"DROP TABLE IF EXISTS {storage}")
                source = f"temp.main.{_q(_arrow_name(key))}"
            elif files:
                self._read_files(con, storage, table, [f.path for f in files])
                source = storage
            else:
                fields = ", ".join(f"NULL::VARCHAR AS c{i}" for i in range(n))
                con.execute(
                    f"CREATE OR REPLACE TABLE {storage} AS "
                    f"SELECT NULL::VARCHAR AS _raw, NULL::TINYINT AS _tier, {fields}, "
                    f"NULL::INTEGER AS {FILE_COLUMN} LIMIT 0"
                )
                source = storage
            con.execute(
                f"CREATE OR REPLACE VIEW {_q(key[0])}.{_q(key[1])} ({column_list}) AS "
                f"SELECT {columns} FROM {source}"
            )
            con.execute(
                f"CREATE OR REPLACE VIEW {_path_view(key)} ({column_list}, {_q(PATH_COLUMN)}) AS "
                f"SELECT {columns}, {path} FROM {source}"
            )
            return arrow
        except duckdb.Error as exc:
            con.execute(f"DROP TABLE IF EXISTS {storage}")
            with self._state:
                self._loaded.pop(key, None)
            raise EngineError(_read_error(exc, table)) from None

    def _read_arrow(self, table: ExternalTable, files: list[str]) -> Any:
        """The fast path's rows, or None when the files need the general reader."""
        if not (self.arrow_read and files):
            return None
        sources = [(f, _compression(f)) for f in files]
        return engine_arrow.read_plain(
            sources, table.csv, len(table.columns), table.header_lines, file_column=FILE_COLUMN
        )

    def _read_files(
        self, con: duckdb.DuckDBPyConnection, storage: str, table: ExternalTable, files: list[str]
    ) -> None:
        """Fill ``storage`` with the files' rows, tier by tier (see engine_opencsv).

        One pass reads every line and splits the plain ones (tier 1); quoted lines are split
        afterwards: by DuckDB's own CSV reader when the whole file is regular RFC 4180 with
        doubled quotes (one more, fast pass), else by regular expressions (tier 2), and the
        rest by the Python port (tier 3).
        """
        with tempfile.TemporaryDirectory(prefix="snapcdc-engine-") as scratch:
            self._read_sources(con, storage, table, _sources(files, Path(scratch)))

    def _read_sources(
        self,
        con: duckdb.DuckDBPyConnection,
        storage: str,
        table: ExternalTable,
        files: list[Source],
    ) -> None:
        con.execute(f"CREATE OR REPLACE TABLE {storage} AS {_split_sql(table, files)}")
        regular, irregular, with_nul = con.execute(
            "SELECT count(*) FILTER (_tier = 2), "
            "count(*) FILTER (_tier = 3), count(*) FILTER (_tier = 2 AND contains(_raw, chr(0))) "
            f"FROM {storage}"
        ).fetchone()
        native = not irregular and not with_nul and table.csv.escape == NO_ESCAPE
        if native and regular >= self.native_read_min_lines:
            blank = con.execute(
                f"SELECT {FILE_COLUMN}, count(*) FROM {storage} WHERE _tier = 0 GROUP BY 1"
            ).fetchall()
            con.execute(
                f"CREATE OR REPLACE TABLE {storage} AS {_native_sql(table, files, dict(blank))}"
            )
            return
        if regular:
            _split_regular(con, storage, table)
        if irregular:
            rows = con.execute(f"SELECT rowid, _raw FROM {storage} WHERE _tier = 3").fetchall()
            _fix_irregular(con, storage, table, rows)

    def _unload(self, key: Key) -> None:
        """Forget a table's rows (state lock held)."""
        self._loaded.pop(key, None)
        con = self._con.cursor()
        try:
            con.execute(f"DROP VIEW IF EXISTS {_q(key[0])}.{_q(key[1])}")
            con.execute(f"DROP VIEW IF EXISTS {_path_view(key)}")
            con.execute(f"DROP TABLE IF EXISTS {_storage_name(key)}")
        finally:
            con.close()


def _table_refs(query: exp.Query, database: str) -> list[tuple[exp.Table, Key]]:
    """The query's references to tables (not CTEs, table functions or VALUES)."""
    ctes = {cte.alias_or_name.lower() for cte in query.find_all(exp.CTE)}
    refs = []
    for table in query.find_all(exp.Table):
        if not table.name:  # table functions, VALUES, ...
            continue
        name = table.name.lower()
        db = table.db.lower() if table.db else None
        if db is None and name in ctes:
            continue
        refs.append((table, (db or database, name)))
    return refs


def _with_path(query: exp.Query, database: str) -> exp.Query:
    """The query reading each table through its view with ``"$path"`` (see _materialize).

    Athena leaves ``"$path"`` out of ``SELECT *``; with the view it would be in, so a ``*``
    read straight from a table in a query naming ``"$path"`` is refused rather than answered
    differently. A ``*`` over a derived table only passes on the columns that table selected.
    """
    query = query.copy()
    refs = _table_refs(query, database)
    tables = {id(node) for node, _ in refs}
    for star in query.find_all(exp.Star):
        parent = star.parent
        if isinstance(parent, exp.Column):
            parent = parent.parent
        if isinstance(parent, exp.Select) and any(
            id(source.this) in tables for source in _read_from(parent)
        ):
            raise EngineError(
                f'NOT_SUPPORTED: SELECT * from a table in a query naming "{PATH_COLUMN}" '
                "is not supported by the embedded engine; list the columns"
            )
    for node, key in refs:
        alias = node.alias or node.name
        node.replace(
            exp.Table(
                this=exp.to_identifier(_path_view_name(key), quoted=True),
                db=exp.to_identifier(STORAGE_SCHEMA, quoted=True),
                alias=exp.TableAlias(this=exp.to_identifier(alias)),
            )
        )
    return query


def _read_from(select: exp.Select) -> list[exp.Expression]:
    """What a SELECT reads from: its FROM and its JOINs (each wraps a table or a subquery)."""
    from_ = select.args.get("from_")
    return ([from_] if from_ else []) + list(select.args.get("joins") or [])


def _fix_irregular(
    con: duckdb.DuckDBPyConnection, storage: str, table: ExternalTable, rows: list[tuple[int, str]]
) -> None:
    """Tier 3: lines the SQL tiers leave alone, split in Python exactly like Trino.

    The fields go back in one statement (Python lists unnested into a temporary table, then one
    UPDATE ... FROM), not row by row: a file can hold many such lines.
    """
    n = len(table.columns)
    fmt = table.csv
    split = [split_line(raw, n, fmt.separator, fmt.quote, fmt.escape) for _, raw in rows]
    columns = [list(column) for column in zip(*split, strict=True)]
    unnests = ", ".join(f"unnest(${i + 2}::VARCHAR[]) AS c{i}" for i in range(n))
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _snapcdc_fix AS "
        f"SELECT unnest($1::BIGINT[]) AS rid, {unnests}",
        [[rowid for rowid, _ in rows], *columns],
    )
    assignments = ", ".join(f"c{i} = f.c{i}" for i in range(n))
    con.execute(
        f"UPDATE {storage} AS s SET {assignments} FROM _snapcdc_fix AS f WHERE s.rowid = f.rid"
    )
    con.execute("DROP TABLE _snapcdc_fix")


def _sources(files: list[str], scratch: Path) -> list[Source]:
    """What DuckDB reads for ``files``: big gzip files inflated by ISA-L into ``scratch``.

    The copy keeps the file's name, so errors name it as before. ISA-L, like DuckDB, reads
    concatenated gzip members; a file it cannot inflate is left to DuckDB (and its errors).
    """
    sources = []
    for i, path in enumerate(files):
        comp = _compression(path)
        if comp == "gzip" and _isal_gzip is not None and _size(path) >= FAST_GUNZIP_MIN_BYTES:
            plain = scratch / str(i) / os.path.basename(path)
            plain.parent.mkdir()
            try:
                with _isal_gzip.open(path, "rb") as src, plain.open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            except Exception:  # DuckDB reads the file instead (and reports what is wrong)
                plain.unlink(missing_ok=True)
            else:
                sources.append((str(plain), "none"))
                continue
        sources.append((path, comp))
    return sources


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _read_csv(files: list[Source], select: str, options: str) -> list[str]:
    """``SELECT {select}, _file FROM read_csv(...)`` of ``files``, one per compression they
    use; ``_file`` is the row's file as its index in ``files``."""
    reads = []
    for comp in sorted({c for _, c in files}):
        paths = ", ".join(_lit(f) for f, c in files if c == comp)
        index = " ".join(f"WHEN {_lit(f)} THEN {i}" for i, (f, c) in enumerate(files) if c == comp)
        reads.append(
            f"SELECT {select}, CASE filename {index} END::INTEGER AS {FILE_COLUMN} "
            f"FROM read_csv([{paths}], {options}, compression = {_lit(comp)}, filename = true)"
        )
    return reads


def _read_lines_sql(table: ExternalTable, files: list[Source]) -> str:
    """Every line of ``files`` as one column ``line`` (headers skipped per file).

    No quoting, and a "delimiter" no text holds; empty lines come through as NULL, which
    OpenCSVSerde also makes a row of NULLs.
    """
    options = (
        f"columns = {{'line': 'VARCHAR'}}, delim = {LINE_DELIMITER}, quote = '', escape = '', "
        f"header = false, auto_detect = false, skip = {table.header_lines}"
    )
    return " UNION ALL ".join(_read_csv(files, "line", options))  # line, _file


def _split_sql(table: ExternalTable, files: list[Source]) -> str:
    """The first pass: read every line, split the plain ones (tier 1), classify the others.

    ``_tier`` is 0 for an empty line, 2 for a regular quoted line, 3 for anything else (both
    keep their text in ``_raw``), NULL for a plain line.
    """
    fmt = table.csv
    n = len(table.columns)
    sep, quote, escape = _chr(fmt.separator), _chr(fmt.quote), _chr(fmt.escape)
    regular, _, _ = regular_line_patterns(fmt)
    fields = ", ".join(f"f[{i + 1}] AS c{i}" for i in range(n))
    return f"""
        SELECT CASE WHEN tier >= 2 THEN line END AS _raw,
               CASE WHEN tier <> 1 THEN tier END::TINYINT AS _tier,
               {fields}, {FILE_COLUMN}
        FROM (
            SELECT line, tier, {FILE_COLUMN},
                CASE WHEN tier = 1 THEN string_split(line, {sep}) END AS f
            FROM (
                SELECT line, {FILE_COLUMN},
                    CASE
                        WHEN line IS NULL THEN 0
                        WHEN NOT (contains(line, {quote}) OR contains(line, {escape})) THEN 1
                        WHEN regexp_full_match(line, {_lit(regular)}) THEN 2
                        ELSE 3
                    END AS tier
                FROM ({_read_lines_sql(table, files)})
            )
        )
    """


def _native_sql(table: ExternalTable, files: list[Source], blank_lines: dict[int, int]) -> str:
    """All rows through DuckDB's CSV reader, for files whose every line is regular RFC 4180.

    On such lines it splits exactly as the SerDe does, given: no NULL string (an empty field is
    ''), quoted empty strings kept, missing fields NULL, fields past the extra column dropped.
    It skips empty lines, so their all-NULL rows are added back (``blank_lines``: how many
    each file holds, by its index).
    """
    fmt = table.csv
    n = len(table.columns)
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(n)) + "}"
    options = (
        f"columns = {columns}, delim = {_chr(fmt.separator)}, quote = {_chr(fmt.quote)}, "
        f"escape = {_chr(fmt.quote)}, header = false, auto_detect = false, "
        f"skip = {table.header_lines}, null_padding = true, nullstr = {LINE_DELIMITER}, "
        "allow_quoted_nulls = false, strict_mode = false"
    )
    reads = _read_csv(files, ", ".join(f"c{i}" for i in range(n)), options)
    nulls = ", ".join(f"NULL::VARCHAR AS c{i}" for i in range(n))
    for index, count in sorted(blank_lines.items()):
        reads.append(
            f"SELECT {nulls}, {int(index)}::INTEGER AS {FILE_COLUMN} FROM range({int(count)})"
        )
    rows = " UNION ALL ".join(reads)
    return f"SELECT NULL::VARCHAR AS _raw, NULL::TINYINT AS _tier, * FROM ({rows})"


def _split_regular(con: duckdb.DuckDBPyConnection, storage: str, table: ExternalTable) -> None:
    """Tier 2: regular quoted lines, split with regular expressions."""
    fmt = table.csv
    n = len(table.columns)
    sep, quote = _chr(fmt.separator), _chr(fmt.quote)
    _, field_re, pair_re = regular_line_patterns(fmt)
    decoded = (
        f"list_transform(regexp_extract_all({sep} || _raw, {_lit(field_re)}, 1), "
        f"lambda x: CASE WHEN starts_with(x, {quote}) "
        f"THEN regexp_replace(x[2:-2], {_lit(pair_re)}, '\\1', 'g') ELSE x END)"
    )
    assignments = ", ".join(f"c{i} = r.f[{i + 1}]" for i in range(n))
    con.execute(
        f"UPDATE {storage} AS s SET {assignments} "
        f"FROM (SELECT rowid AS rid, {decoded} AS f FROM {storage} WHERE _tier = 2) AS r "
        "WHERE s.rowid = r.rid"
    )


def _compression(path: str) -> str:
    suffix = Path(path).suffix.lower()
    return COMPRESSED_SUFFIXES.get(suffix, "none")


def _stat(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise EngineError(f"HIVE_FILESYSTEM_ERROR: cannot read {path}: {exc.strerror}") from None
    return st.st_size, st.st_mtime_ns


def _utf8_length(node: exp.Expression) -> exp.Expression:
    """Trino's ``length(to_utf8(x))``, the bytes of ``x`` in UTF-8, as DuckDB's ``octet_length``.

    Trino's ``length`` of a varbinary counts bytes (https://trino.io/docs/current/functions/binary.html);
    sqlglot writes it as DuckDB's ``length(encode(x))``, which DuckDB refuses for a BLOB.
    """
    if isinstance(node, exp.Length) and isinstance(node.this, exp.Encode):
        return exp.Anonymous(this="OCTET_LENGTH", expressions=[node.this.copy()])
    return node


def _count_if(node: exp.Expression) -> exp.Expression:
    """Trino's ``count_if(x)`` as ``count(CASE WHEN x THEN 1 END)``, the equivalent its docs give.

    Over no rows Trino's count_if is 0 (it is one of the aggregates that do not return null for
    no input, https://trino.io/docs/current/functions/aggregate.html); DuckDB's is NULL.
    """
    if isinstance(node, exp.CountIf) and not isinstance(node.this, exp.Distinct):
        case = exp.Case(ifs=[exp.If(this=node.this.copy(), true=exp.Literal.number(1))])
        return exp.Count(this=case)
    return node


def table_references(query: exp.Query, database: str) -> list[Key]:
    """The ``(database, table)`` names a query reads, CTEs left out, in order of appearance."""
    return list(dict.fromkeys(key for _, key in _table_refs(query, database)))


def parse_statement(sql: str) -> exp.Expression:
    """One Athena statement parsed as the engine parses it (EngineError when it cannot)."""
    return _parse_one(sql)


def _parse_one(sql: str) -> exp.Expression:
    if not isinstance(sql, str) or not sql.strip():
        raise EngineError("INVALID_INPUT: empty statement")
    try:
        statements = [s for s in sqlglot.parse(sql, read="athena") if s is not None]
    except ParseError as exc:
        errors = exc.errors[0] if exc.errors else {}
        where = f"line {errors.get('line', 1)}:{errors.get('col', 1)}: " if errors else ""
        raise EngineError(f"SYNTAX_ERROR: {where}{errors.get('description', str(exc))}") from None
    if len(statements) != 1:
        raise EngineError("INVALID_INPUT: Only one sql statement is allowed")
    statement = statements[0]
    if isinstance(statement, exp.Command):
        raise EngineError(
            f"NOT_SUPPORTED: statement not supported by the embedded engine: {sql.strip()[:60]}"
        )
    return statement


def _storage_name(key: tuple[str, str]) -> str:
    return f"{_q(STORAGE_SCHEMA)}.{_q(key[0] + '.' + key[1])}"


def _path_view_name(key: tuple[str, str]) -> str:
    return f"{key[0]}.{key[1]}{PATH_COLUMN}"


def _path_view(key: tuple[str, str]) -> str:
    """The view of a table's columns plus ``"$path"`` (a name no user table has)."""
    return f"{_q(STORAGE_SCHEMA)}.{_q(_path_view_name(key))}"


def _table_file(location: str, found: TableFile | str | os.PathLike[str]) -> TableFile:
    if isinstance(found, TableFile):
        return found
    path = str(found)
    return TableFile(path, location.rstrip("/") + "/" + os.path.basename(path))


def _arrow_name(key: tuple[str, str]) -> str:
    """What a cursor registers a table's Arrow rows as (a dotted name no user table has)."""
    return f"{STORAGE_SCHEMA}.{key[0]}.{key[1]}"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _chr(c: str) -> str:
    """One character as a DuckDB expression (works for NUL, which a literal cannot hold)."""
    return f"chr({ord(c)})"


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _duckdb_message(exc: duckdb.Error) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, duckdb.CatalogException):
        return f"SEMANTIC_ERROR: {first}"
    if isinstance(exc, duckdb.BinderException | duckdb.ParserException):
        return f"SYNTAX_ERROR: {first}"
    return f"GENERIC_INTERNAL_ERROR: {first}"


def _read_error(exc: duckdb.Error, table: ExternalTable) -> str:
    text = str(exc)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    where = f"table {table.database}.{table.table} at {table.location}"
    file = next(
        (
            ln.split("=", 1)[1].strip()
            for ln in text.splitlines()
            if ln.strip().startswith("file =")
        ),
        None,
    )
    if file:
        where += f" (file {os.path.basename(file)})"
    lowered = text.lower()
    if "gzip" in lowered or "zlib" in lowered or "compress" in lowered:
        return f"HIVE_CURSOR_ERROR: cannot decompress {where}: {first}"
    if "unicode" in lowered or "utf" in lowered:
        return f"HIVE_BAD_DATA: {where} is not valid UTF-8 text"
    if "expected number of columns" in lowered:
        return (
            f"NOT_SUPPORTED: {where} contains the byte sequence NUL SOH NUL, "
            "which the embedded engine cannot read"
        )
    if "invalid state" in lowered or "new_line" in lowered or "newline" in lowered:
        return (
            f"NOT_SUPPORTED: {where} mixes line terminators (e.g. a lone carriage return), "
            "which the embedded engine does not read"
        )
    return f"HIVE_CURSOR_ERROR: cannot read {where}: {first}"


def read_athena_csv(path: str | os.PathLike[str]) -> tuple[list[str], list[list[str | None]]]:
    """Read a result file as Athena wrote it: ``(header, rows)`` with NULL as ``None``.

    An unquoted empty field is NULL, a quoted one is the empty string (Python's csv module
    cannot tell them apart before 3.12, hence this small reader).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "r.csv"
    >>> _ = p.write_text('"op","a","b"\\n"INSERT","say ""hi""\\nthere",\\n')
    >>> read_athena_csv(p)
    (['op', 'a', 'b'], [['INSERT', 'say "hi"\\nthere', None]])
    """
    records = parse_athena_csv(Path(path).read_text(encoding="utf-8"))
    if not records:
        return [], []
    return [h or "" for h in records[0]], records[1:]


def parse_athena_csv(text: str) -> list[list[str | None]]:
    """Split Athena CSV text into records (see :func:`read_athena_csv`)."""
    records: list[list[str | None]] = []
    record: list[str | None] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] == '"':
            parts, j = [], i + 1
            while True:
                k = text.find('"', j)
                if k < 0:
                    raise ValueError(f"unterminated quoted field at offset {i}")
                if text.startswith('""', k):
                    parts.append(text[j : k + 1])
                    j = k + 2
                    continue
                parts.append(text[j:k])
                i = k + 1
                break
            record.append("".join(parts))
        else:
            j = i
            while j < n and text[j] not in ",\n":
                j += 1
            record.append(text[i:j] or None)
            i = j
        if i >= n:
            break
        if text[i] == ",":
            i += 1
            if i >= n or text[i] == "\n":
                record.append(None)
        if i < n and text[i] == "\n":
            records.append(record)
            record = []
            i += 1
        elif i < n and text[i] != "," and text[i - 1] != ",":
            raise ValueError(f"unexpected {text[i]!r} after a field at offset {i}")
    if record:
        records.append(record)
    return records
