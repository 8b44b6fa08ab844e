"""The engine's errors: one-line, Athena-like reasons (``TABLE_NOT_FOUND: ...``), and the
translation of DuckDB's own errors into them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import duckdb

from snapcdc_local.engine.definitions import ExternalTable

if TYPE_CHECKING:  # (catalog raises these errors)
    from snapcdc_local.engine.catalog import TableFile


class EngineError(RuntimeError):
    """A statement failed; ``str(error)`` is a one-line Athena-like reason."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))

    @property
    def error_type(self) -> str:
        """The leading category (``TABLE_NOT_FOUND``, ``HIVE_BAD_DATA``, ...)."""
        head = str(self).split(":", 1)[0]
        return head if head and " " not in head else "GENERIC_INTERNAL_ERROR"


def duckdb_message(exc: duckdb.Error) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, duckdb.CatalogException):
        return f"SEMANTIC_ERROR: {first}"
    if isinstance(exc, duckdb.BinderException | duckdb.ParserException):
        return f"SYNTAX_ERROR: {first}"
    return f"GENERIC_INTERNAL_ERROR: {first}"


def read_error(exc: duckdb.Error, table: ExternalTable, files: Sequence[TableFile] = ()) -> str:
    """Athena's reason for a table whose files could not be read. A file is named by its URI
    (its ``"$path"``), never by where the engine keeps it: a local path means nothing to the
    reader of a reason, and is no part of what Athena would say."""
    text = str(exc)
    local = {f.path: f.uri for f in files}
    named = next(
        (
            ln.split("=", 1)[1].strip()
            for ln in text.splitlines()
            if ln.strip().startswith("file =")
        ),
        None,
    )
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    for path in local:
        if path in first:
            named = named or path
            first = first.replace(f": {path}", "").replace(path, local[path])
    first = first.removeprefix("IO Error: ").removeprefix("Invalid Input Error: ")
    if named is None and len(files) == 1:
        named = files[0].path
    uri = local.get(named or "", named and os.path.basename(named))
    where = uri or f"table {table.database}.{table.table} at {table.location}"
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
