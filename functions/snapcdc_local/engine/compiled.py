"""Statements compiled once: parsed, interpreted (DDL) or transpiled (queries), cached by text.

Parsing and transpiling with sqlglot costs far more than running a small statement, and the
pipeline sends the same texts again and again (every version of a table plans the same checks
and delta). :class:`StatementCache` keeps what :mod:`snapcdc_local.engine.ddl` and
:mod:`snapcdc_local.engine.transpile` made of a text, in memory and, when given a directory,
on disk as JSON, so that a short-lived process (``snapcdc diff``) need not even import sqlglot.

A cached entry is only ever what those modules computed for the same text and database: the
disk entries sit under a fingerprint of their source code and of the installed sqlglot, so
changing either starts an empty cache. Errors raised while parsing are not cached; an error
transpiling a query is (it is raised where the engine raised it, after the catalog lookups).

>>> cache = StatementCache()
>>> first = cache.compile('SELECT "k" FROM t', "d")
>>> (first.tables, first.sql)
((('d', 't'),), 'SELECT "k" FROM t')
>>> cache.compile('SELECT "k" FROM t', "d") is first
True
>>> type(cache.compile("DROP TABLE IF EXISTS `d`.`t`", "d").ddl).__name__
'DropTable'
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from snapcdc_local.engine.definitions import CreateDatabase, DdlError, DropTable, ExternalTable
from snapcdc_local.engine.errors import EngineError
from snapcdc_local.engine.opencsv import CsvFormat
from snapcdc_local.engine.storage import Key

# The modules whose code decides what a text compiles to.
SOURCES = ("compiled.py", "ddl.py", "definitions.py", "opencsv.py", "storage.py", "transpile.py")
MEMORY_ENTRIES = 512

Ddl = CreateDatabase | DropTable | ExternalTable


@dataclass(frozen=True)
class Compiled:
    """One statement as the engine runs it: a DDL value, or a query's DuckDB SQL and tables."""

    ddl: Ddl | None = None
    sql: str | None = None  # the DuckDB SQL of a query
    tables: tuple[Key, ...] = ()  # the (database, table) names a query reads
    sql_error: str | None = None  # why the query cannot be transpiled (raised on use)


class StatementCache:
    """``compile(sql, database)`` with results kept in memory and, with ``directory``, on disk.

    Safe to share between threads. Disk entries are written atomically (a temporary file
    renamed), so concurrent processes sharing the directory only ever read whole entries;
    one that cannot be read or written is recomputed, never an error.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None):
        self._directory = Path(directory) / _fingerprint() if directory is not None else None
        # in memory: lru_cache is thread-safe and keeps nothing for a compile that raises
        self._cached = functools.lru_cache(maxsize=MEMORY_ENTRIES)(self._load_or_compile)

    def compile(self, sql: str, database: str) -> Compiled:
        """What ``sql`` compiles to with ``database`` as the current database (EngineError if
        it does not parse or is not a statement the engine runs)."""
        found = self._cached(database, sql)
        if isinstance(found.ddl, ExternalTable):
            # a new definition each time it is run, as when it was parsed: the engine tells a
            # re-created table from the one whose rows it holds by identity
            return dataclasses.replace(found, ddl=dataclasses.replace(found.ddl))
        return found

    def _load_or_compile(self, database: str, sql: str) -> Compiled:
        key = (database, sql)
        found = self._load(key)
        if found is None:
            found = _compile(sql, database)
            self._store(key, found)
        return found

    # -- disk ------------------------------------------------------------------------------------

    def _path(self, key: tuple[str, str]) -> Path | None:
        if self._directory is None:
            return None
        digest = hashlib.sha256("\0".join(key).encode("utf-8", "surrogatepass")).hexdigest()
        return self._directory / f"{digest}.json"

    def _load(self, key: tuple[str, str]) -> Compiled | None:
        path = self._path(key)
        if path is None:
            return None
        try:
            entry = json.loads(path.read_text("utf-8"))
            if entry["database"] != key[0] or entry["sql_text"] != key[1]:
                return None  # a digest collision: recompute
            return _from_json(entry)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _store(self, key: tuple[str, str], compiled: Compiled) -> None:
        path = self._path(key)
        if path is None:
            return
        entry = {"database": key[0], "sql_text": key[1], **_to_json(compiled)}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
            partial.write_text(json.dumps(entry), "utf-8")
            os.replace(partial, path)
        except OSError:
            pass  # a read-only or full cache directory only costs the next run a compile


def _compile(sql: str, database: str) -> Compiled:
    # imported here: a process that finds its statements cached never loads sqlglot
    from sqlglot import exp

    from snapcdc_local.engine.ddl import parse_ddl
    from snapcdc_local.engine.transpile import (
        names_path_column,
        parse_statement,
        table_references,
        to_duckdb,
    )

    statement = parse_statement(sql)
    if not isinstance(statement, exp.Query):
        try:
            return Compiled(ddl=parse_ddl(statement))
        except DdlError as exc:
            raise EngineError(str(exc)) from None
    tables = tuple(table_references(statement, database))
    try:
        duckdb_sql = to_duckdb(statement, database, with_path_column=names_path_column(statement))
    except EngineError as exc:
        return Compiled(tables=tables, sql_error=str(exc))
    return Compiled(sql=duckdb_sql, tables=tables)


_KINDS: dict[str, type] = {
    "create_database": CreateDatabase,
    "drop_table": DropTable,
    "external_table": ExternalTable,
}


def _to_json(compiled: Compiled) -> dict[str, object]:
    if compiled.ddl is None:
        return {
            "kind": "query",
            "sql": compiled.sql,
            "tables": [list(t) for t in compiled.tables],
            "sql_error": compiled.sql_error,
        }
    kind = next(k for k, cls in _KINDS.items() if isinstance(compiled.ddl, cls))
    return {"kind": kind, "ddl": dataclasses.asdict(compiled.ddl)}


def _from_json(entry: dict) -> Compiled:
    kind = entry["kind"]
    if kind == "query":
        tables = tuple((str(db), str(table)) for db, table in entry["tables"])
        return Compiled(sql=entry["sql"], tables=tables, sql_error=entry["sql_error"])
    fields = dict(entry["ddl"])
    if kind == "external_table":
        fields["columns"] = tuple(fields["columns"])
        fields["csv"] = CsvFormat(**fields["csv"])
    return Compiled(ddl=_KINDS[kind](**fields))


def _fingerprint(here: Path | None = None) -> str:
    """The code a compilation depends on: this package's sources (in ``here``) and the
    installed sqlglot (its files' sizes and times, read without importing it)."""
    digest = hashlib.sha256()
    here = here or Path(__file__).resolve().parent
    for name in SOURCES:
        digest.update(name.encode() + b"\0" + (here / name).read_bytes())
    spec = importlib.util.find_spec("sqlglot")
    origin = Path(spec.origin) if spec and spec.origin else None
    if origin is not None:
        for path in (origin, origin.with_name("_version.py")):
            try:
                st = path.stat()
            except OSError:
                continue
            digest.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return digest.hexdigest()[:24]
