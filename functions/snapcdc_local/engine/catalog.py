"""The engine's catalog: databases and external table definitions, and the files a table's
LOCATION holds when a query runs (Athena lists S3 at query time).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from snapcdc.model.s3paths import is_hidden
from snapcdc_local.engine.definitions import CreateDatabase, DropTable, ExternalTable
from snapcdc_local.engine.errors import EngineError
from snapcdc_local.engine.storage import DEFAULT_DATABASE, STORAGE_SCHEMA, Key

UNSUPPORTED_SUFFIXES = (".bz2", ".snappy", ".lz4", ".deflate", ".zip")


@dataclass(frozen=True)
class TableFile:
    """One file a LOCATION holds: where it is on disk and the URI Athena's ``"$path"`` shows."""

    path: str
    uri: str


# A resolver answers a LOCATION with its files: TableFile, or a bare local path whose "$path"
# is then the location joined with the file's name.
Resolver = Callable[[str], Sequence["TableFile | str | os.PathLike[str]"]]


def file_resolver(location: str) -> list[TableFile | str]:
    """Default resolver: a ``file://`` URI or a plain directory/file path, listed recursively
    (each file's ``"$path"`` keeps its sub-folders, so the hidden-file rule sees them).

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
    base = location.rstrip("/")
    return [
        TableFile(str(p), f"{base}/{p.relative_to(path).as_posix()}")
        for p in sorted(path.rglob("*"))
        if p.is_file()
    ]


def mapping_resolver(mapping: Mapping[str, Iterable[str | os.PathLike[str]]]) -> Resolver:
    """A resolver from a fixed ``{location: [local files]}`` mapping (tests, ``snapcdc diff``).

    Trailing slashes do not matter; an unknown location holds no files, like an empty prefix.
    """
    table = {k.rstrip("/"): [str(p) for p in v] for k, v in mapping.items()}

    def resolve(location: str) -> list[str]:
        return list(table.get(location.rstrip("/"), []))

    return resolve


def table_file(location: str, found: TableFile | str | os.PathLike[str]) -> TableFile:
    if isinstance(found, TableFile):
        return found
    path = str(found)
    return TableFile(path, location.rstrip("/") + "/" + os.path.basename(path))


def stat_file(file: TableFile) -> tuple[int, int]:
    try:
        st = os.stat(file.path)
    except OSError as exc:  # named by its URI: where the engine keeps it is its own affair
        raise EngineError(
            f"HIVE_FILESYSTEM_ERROR: cannot read {file.uri}: {exc.strerror}"
        ) from None
    return st.st_size, st.st_mtime_ns


def list_files(resolve: Resolver, table: ExternalTable) -> list[TableFile]:
    """The files a table reads now, in ``"$path"`` order: hidden files left out by the
    pipeline's one rule (:func:`snapcdc.model.s3paths.is_hidden`: a name or a folder below the
    LOCATION starting with ``_`` or ``.``), compressions the engine cannot read refused."""
    try:
        found = [table_file(table.location, f) for f in resolve(table.location)]
    except EngineError:
        raise
    except Exception as exc:  # a resolver failing is an S3 error to the caller
        raise EngineError(f"HIVE_FILESYSTEM_ERROR: cannot list {table.location}: {exc}") from None
    files = []
    for file in sorted(found, key=lambda f: f.uri):
        if is_hidden(file.uri, table.location):
            continue
        name = os.path.basename(file.path)
        if name.lower().endswith(UNSUPPORTED_SUFFIXES):
            raise EngineError(
                f"NOT_SUPPORTED: compression of {name} is not supported by the embedded engine"
            )
        files.append(file)
    return files


@dataclass
class Catalog:
    """Databases and table definitions; statements change it through :meth:`apply`."""

    databases: set[str] = field(default_factory=lambda: {DEFAULT_DATABASE})
    tables: dict[Key, ExternalTable] = field(default_factory=dict)

    def apply(
        self, ddl: CreateDatabase | DropTable | ExternalTable, database: str
    ) -> CreateDatabase | Key | None:
        """Apply one DDL statement as Athena does; return what the engine's storage must
        follow: the database created, the table key dropped, or None."""
        if isinstance(ddl, CreateDatabase):
            if ddl.database in self.databases:
                if not ddl.if_not_exists:
                    raise EngineError(
                        f"AlreadyExistsException: Database {ddl.database} already exists"
                    )
                return None
            if ddl.database == STORAGE_SCHEMA:
                raise EngineError(f"NOT_SUPPORTED: {STORAGE_SCHEMA} is reserved by the engine")
            self.databases.add(ddl.database)
            return ddl
        db = ddl.database or database
        key = (db, ddl.table)
        if isinstance(ddl, ExternalTable):
            self.require_database(db)
            if key in self.tables:
                if not ddl.if_not_exists:
                    raise EngineError(
                        f"AlreadyExistsException: Table {db}.{ddl.table} already exists"
                    )
                return None
            self.tables[key] = ddl
            return None
        if key not in self.tables:
            if not ddl.if_exists:
                raise EngineError(f"SemanticException: Table not found {db}.{ddl.table}")
            return None
        del self.tables[key]
        return key

    def require_database(self, database: str) -> None:
        if database not in self.databases:
            raise EngineError(f"SCHEMA_NOT_FOUND: Schema '{database}' does not exist")

    def lookup(self, keys: Iterable[Key]) -> dict[Key, ExternalTable]:
        """The definitions of tables a query reads; unknown tables raise like Athena does."""
        found: dict[Key, ExternalTable] = {}
        for key in keys:
            if key not in self.tables:
                self.require_database(key[0])
                raise EngineError(
                    f"TABLE_NOT_FOUND: Table 'awsdatacatalog.{key[0]}.{key[1]}' does not exist"
                )
            found[key] = self.tables[key]
        return found
