"""An embedded Athena: the pipeline's Athena SQL executed on DuckDB.

What it does, statement by statement:

- ``CREATE DATABASE``: a DuckDB schema.
- ``CREATE EXTERNAL TABLE`` (OpenCSVSerde, STRING columns): the definition is remembered;
  nothing is read yet. Files are resolved **at query time**, as Athena lists S3 when a query
  runs: the table's ``LOCATION`` goes through ``resolve_location`` to local files, objects whose
  name starts with ``_`` or ``.`` are skipped (Hive's hidden files), ``.gz`` files are gunzipped.
  The rows are then read exactly as Athena's OpenCSVSerde reads them: files without any quoting
  by pyarrow into an Arrow table DuckDB queries in place (:mod:`snapcdc_local.engine.arrow_reader`),
  all others line by line into an in-memory DuckDB table (the general reader,
  :mod:`snapcdc_local.engine.duckdb_reader`).
  The rows are reused while the files stay the same (same paths, sizes and modification times).
- ``DROP TABLE``: forgets the definition and the rows.
- ``SELECT`` / ``WITH``: transpiled with sqlglot from Athena (Trino) to DuckDB and run
  (:mod:`snapcdc_local.engine.transpile`).

Results come out as Athena writes them to S3: a CSV file with a header row, every value in
double quotes, NULL as an empty unquoted field, ``\\n`` line ends, column names lowercased (Trino
folds identifiers). Errors raise :class:`EngineError` with an Athena-like one-line message
(``TABLE_NOT_FOUND: ...``, ``HIVE_BAD_DATA: ...``).

This module holds the statement loop and the cache of tables' rows; the catalog (databases,
tables, LOCATION -> files) is :mod:`snapcdc_local.engine.catalog`.

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

# DuckDB SQL is assembled here from identifiers and literals quoted by ident / literal only.
# ruff: noqa: S608

from __future__ import annotations

import os
import shutil
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from snapcdc_local.engine import arrow_reader as engine_arrow
from snapcdc_local.engine import duckdb_reader
from snapcdc_local.engine.catalog import (
    Catalog,
    Resolver,
    TableFile,
    file_resolver,
    list_files,
    mapping_resolver,
    stat_file,
)
from snapcdc_local.engine.compiled import Compiled, StatementCache
from snapcdc_local.engine.definitions import CreateDatabase, DropTable, ExternalTable
from snapcdc_local.engine.errors import EngineError, duckdb_message, read_error
from snapcdc_local.engine.result_csv import parse_athena_csv, read_athena_csv
from snapcdc_local.engine.storage import (
    DEFAULT_DATABASE,
    FILE_COLUMN,
    PATH_COLUMN,
    STORAGE_SCHEMA,
    Key,
    arrow_name,
    ident,
    literal,
    path_view,
    storage_name,
)

# The engine's API, importable from here whichever module defines it.
__all__ = [
    "DEFAULT_DATABASE",
    "AthenaEngine",
    "EngineError",
    "QueryResult",
    "Resolver",
    "TableFile",
    "file_resolver",
    "mapping_resolver",
    "parse_athena_csv",
    "parse_statement",
    "read_athena_csv",
    "table_references",
]

# Statements compiled by engines that keep no cache on disk, shared by them all.
_STATEMENTS = StatementCache()


def parse_statement(sql: str) -> Any:
    """:func:`snapcdc_local.engine.transpile.parse_statement` (sqlglot loaded on first use)."""
    from snapcdc_local.engine import transpile

    return transpile.parse_statement(sql)


def table_references(query: Any, database: str) -> list[Key]:
    """:func:`snapcdc_local.engine.transpile.table_references` (sqlglot loaded on first use)."""
    from snapcdc_local.engine import transpile

    return transpile.table_references(query, database)


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


class AthenaEngine:
    """Run Athena SQL on DuckDB; see the module docstring for the semantics.

    ``resolve_location`` maps a table's LOCATION URI to local file paths (default:
    :func:`file_resolver`). ``max_cached_tables`` bounds how many tables' rows stay in memory
    between queries (least recently used ones are dropped and re-read when needed).
    ``prefetched`` holds files already being read (:class:`engine_arrow.Prefetch`): a table
    reading the same files takes those rows instead of reading the files again.
    ``statement_cache`` is a directory where compiled statements are kept between processes
    (:mod:`snapcdc_local.engine.compiled`; default: in this process only).

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
        prefetched: engine_arrow.Prefetch | None = None,
        statement_cache: str | os.PathLike[str] | None = None,
    ):
        self._resolve = resolve_location or file_resolver
        self._statements = (
            StatementCache(statement_cache) if statement_cache is not None else _STATEMENTS
        )
        self._prefetched = prefetched
        self._max_cached = max(1, max_cached_tables)
        self._state = threading.Lock()  # guards _catalog, _loaded, _pins, _table_locks
        self._catalog = Catalog()
        self._loaded: OrderedDict[Key, _Loaded] = OrderedDict()
        self._pins: dict[Key, int] = {}
        self._table_locks: dict[Key, threading.Lock] = {}
        self._con = duckdb.connect(":memory:")
        # DuckDB's threads are shared by the statements running at once; see _share_threads
        self._cores = int(threads) if threads else _available_cores()
        self._running = 0
        self._threads = 0
        self._share_threads()
        # Athena promises no row order without ORDER BY; not keeping one lets DuckDB stream.
        self._con.execute("SET preserve_insertion_order = false")
        self._con.execute(f"CREATE SCHEMA {ident(STORAGE_SCHEMA)}")
        self._con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(DEFAULT_DATABASE)}")

    # -- public API -------------------------------------------------------------------------

    def execute(
        self,
        sql: str,
        database: str | None = None,
        output_path: str | os.PathLike[str] | None = None,
    ) -> QueryResult:
        """Run one statement; write the result CSV to ``output_path`` when given."""
        database = (database or DEFAULT_DATABASE).lower()
        compiled = self._statements.compile(sql, database)
        out = Path(output_path) if output_path is not None else None
        if compiled.ddl is None:
            return self._query(compiled, database, out)
        with self._state:
            self._ddl(compiled.ddl, database)
        if out is not None:
            # Athena writes a (here empty) text result for DDL too.
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(b"")
        return QueryResult(statement_type="DDL", output_path=out)

    def local_cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor on the engine's DuckDB for work on local files that is not Athena's, such as
        rewriting a result file (the caller closes it). Not for the tables: their rows are only
        registered on the cursors of the queries that read them."""
        with self._state:
            return self._con.cursor()

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
        change = self._catalog.apply(ddl, database)
        if isinstance(change, CreateDatabase):
            con = self._con.cursor()
            try:
                con.execute(f"CREATE SCHEMA {ident(change.database)}")
            except duckdb.Error:
                self._catalog.databases.discard(change.database)
                raise
            finally:
                con.close()
        elif change is not None and not self._pins.get(change):
            self._unload(change)  # otherwise the last query using it unloads it

    # -- queries --------------------------------------------------------------------------------

    def _query(self, query: Compiled, database: str, out: Path | None) -> QueryResult:
        with self._state:
            self._catalog.require_database(database)
            tables = self._catalog.lookup(list(query.tables))
        if query.sql is None:
            raise EngineError(query.sql_error or "NOT_SUPPORTED")
        sql = query.sql
        with self._state:
            for key in tables:
                self._pins[key] = self._pins.get(key, 0) + 1
        con = self._con.cursor()
        try:
            scanned = sum(
                self._ensure_loaded(key, table, con) for key, table in sorted(tables.items())
            )
            with self._state:
                self._running += 1
                self._share_threads()
            try:
                return self._run(con, sql, database, out, scanned)
            finally:
                with self._state:
                    self._running -= 1
                    self._share_threads()
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
            con.execute(f"SET schema = {literal(database)}")
            relation = con.sql(sql)
            columns = tuple(c.lower() for c in relation.columns)
            if out is None:
                rows = relation.fetchall()
                return QueryResult("DML", columns, len(rows), scanned, None, rows)
            out.parent.mkdir(parents=True, exist_ok=True)
            if len(set(columns)) == len(columns):
                aliases = ", ".join(ident(c) for c in columns)
                (count,) = con.execute(
                    f"COPY (SELECT * FROM ({sql}) AS _result({aliases})) TO {literal(str(out))} "
                    "(FORMAT csv, HEADER true, FORCE_QUOTE *, NEW_LINE '\\n')"
                ).fetchone()
            else:
                count = _copy_with_duplicate_names(con, sql, columns, out)
            return QueryResult("DML", columns, int(count), scanned, out, None)
        except duckdb.Error as exc:
            raise EngineError(duckdb_message(exc)) from None

    def _share_threads(self) -> None:
        """Give each statement running at once an equal share of the cores (state lock held).

        DuckDB's ``threads`` is one pool for the whole database, and every statement's own
        thread works besides it: two statements on a pool as large as the machine make more
        threads than cores, and DuckDB's parallel hash tables cost more to merge than they
        save (measured: the pipeline's two checks of a million-row pair at once, 0.52 CPU-s
        with one thread each against 0.57-0.72 with two). A statement alone gets every core.
        """
        want = max(1, self._cores // max(1, self._running))
        if want != self._threads:
            self._con.execute(f"SET threads = {want}")
            self._threads = want

    # -- reading external tables ------------------------------------------------------------------

    def _ensure_loaded(self, key: Key, table: ExternalTable, con: duckdb.DuckDBPyConnection) -> int:
        """Make the table's rows current; return the bytes its files hold (data scanned)."""
        with self._state:
            lock = self._table_locks.setdefault(key, threading.Lock())
        with lock:
            files = list_files(self._resolve, table)
            signature = tuple((f.path, *stat_file(f)) for f in files)
            with self._state:
                loaded = self._loaded.get(key)
            if loaded is None or loaded.signature != signature or loaded.table is not table:
                arrow = self._materialize(con, key, table, files)
                loaded = _Loaded(table, signature, sum(size for _, size, _ in signature), arrow)
            elif loaded.arrow is not None:
                # registrations belong to one cursor: this query's must know the rows too
                con.register(arrow_name(key), loaded.arrow)
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

    def _materialize(
        self, con: duckdb.DuckDBPyConnection, key: Key, table: ExternalTable, files: list[TableFile]
    ) -> Any:
        """Read the table's files and (re)define its views; return the Arrow rows if any.

        Two views over the same rows: the table's columns (what ``SELECT *`` shows), and the
        columns plus ``"$path"`` (what a query naming ``"$path"`` reads, see with_path).
        """
        storage = storage_name(key)
        n = len(table.columns)
        column_list = ", ".join(ident(c) for c in table.columns)
        columns = ", ".join(f"c{i}" for i in range(n))
        uris = ", ".join(literal(f.uri) for f in files)
        path = f"[{uris}][{FILE_COLUMN} + 1]" if files else "NULL::VARCHAR"
        arrow = self._read_arrow(table, [f.path for f in files])
        try:
            if arrow is not None:
                con.register(arrow_name(key), arrow)
                con.execute(f"DROP TABLE IF EXISTS {storage}")
                source = f"temp.main.{ident(arrow_name(key))}"
            elif files:
                self._read_files(con, storage, table, [f.path for f in files])
                source = storage
            else:
                duckdb_reader.create_empty(con, storage, n)
                source = storage
            con.execute(
                f"CREATE OR REPLACE VIEW {ident(key[0])}.{ident(key[1])} ({column_list}) AS "
                f"SELECT {columns} FROM {source}"
            )
            con.execute(
                f"CREATE OR REPLACE VIEW {path_view(key)} ({column_list}, {ident(PATH_COLUMN)}) AS "
                f"SELECT {columns}, {path} FROM {source}"
            )
            return arrow
        except duckdb.Error as exc:
            con.execute(f"DROP TABLE IF EXISTS {storage}")
            with self._state:
                self._loaded.pop(key, None)
            raise EngineError(read_error(exc, table, files)) from None

    def _read_arrow(self, table: ExternalTable, files: list[str]) -> Any:
        """The fast path's rows, or None when the files need the general reader."""
        if not (self.arrow_read and files):
            return None
        sources = [(f, duckdb_reader.compression(f)) for f in files]
        return engine_arrow.read_plain(
            sources,
            table.csv,
            len(table.columns),
            table.header_lines,
            file_column=FILE_COLUMN,
            prefetched=self._prefetched,
        )

    def _read_files(
        self, con: duckdb.DuckDBPyConnection, storage: str, table: ExternalTable, files: list[str]
    ) -> None:
        """Fill ``storage`` with the files' rows by the general reader (see duckdb_reader)."""
        duckdb_reader.read_files(con, storage, table, files, self.native_read_min_lines)

    def _unload(self, key: Key) -> None:
        """Forget a table's rows (state lock held)."""
        self._loaded.pop(key, None)
        con = self._con.cursor()
        try:
            con.execute(f"DROP VIEW IF EXISTS {ident(key[0])}.{ident(key[1])}")
            con.execute(f"DROP VIEW IF EXISTS {path_view(key)}")
            con.execute(f"DROP TABLE IF EXISTS {storage_name(key)}")
        finally:
            con.close()


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _copy_with_duplicate_names(
    con: duckdb.DuckDBPyConnection, sql: str, columns: tuple[str, ...], out: Path
) -> int:
    """Write a result whose columns share a name, as Athena does: the header keeps every name
    (Trino allows duplicate names in a query's output; DuckDB's COPY would rename them ``x_1``),
    so the body is written under positional names and the header in front of it."""
    aliases = ", ".join(f"c{i}" for i in range(len(columns)))
    body = out.with_name(out.name + ".body")
    try:
        (count,) = con.execute(
            f"COPY (SELECT * FROM ({sql}) AS _result({aliases})) TO {literal(str(body))} "
            "(FORMAT csv, HEADER false, FORCE_QUOTE *, NEW_LINE '\\n')"
        ).fetchone()
        with out.open("wb") as dst, body.open("rb") as src:
            header = ",".join('"' + c.replace('"', '""') + '"' for c in columns) + "\n"
            dst.write(header.encode("utf-8"))
            shutil.copyfileobj(src, dst, 1 << 20)
    finally:
        body.unlink(missing_ok=True)
    return int(count)
