"""The values the engine's DDL parser (:mod:`snapcdc_local.engine.ddl`) turns statements into.

Apart from the parser so that the catalog, the readers and the statement cache
(:mod:`snapcdc_local.engine.compiled`) use them without importing sqlglot.
"""

from __future__ import annotations

from dataclasses import dataclass

from snapcdc_local.engine.opencsv import CsvFormat


class DdlError(ValueError):
    """A statement the engine does not support; the message is Athena-like."""


@dataclass(frozen=True)
class CreateDatabase:
    database: str
    if_not_exists: bool


@dataclass(frozen=True)
class DropTable:
    database: str | None
    table: str
    if_exists: bool


@dataclass(frozen=True)
class ExternalTable:
    """A ``CREATE EXTERNAL TABLE``: names lowercased as Glue stores them."""

    database: str | None
    table: str
    columns: tuple[str, ...]
    location: str
    csv: CsvFormat
    header_lines: int
    if_not_exists: bool
