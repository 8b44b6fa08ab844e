"""Which names are legal: tenant, table, version, column, file, and the Glue database and table
names derived from them.

Every name that later reaches SQL passes through here first (``snapcdc.model.contract`` when it
reads a key or a table configuration, ``snapcdc.sql.queries`` before rendering).
"""

from __future__ import annotations

import re
from typing import Any

from snapcdc.model.errors import ContractError

# Athena (Glue) names are lowercase letters, digits and underscores; we keep tenant and table
# names inside that set so they can be used as database/table names without mangling.
NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,62}")
# Versions sort lexicographically in upload order; they become part of a Glue table name
# (lowercased), so only letters, digits and underscores.
VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]{0,63}")
# Column names as they appear in a header or config. Athena folds them to lowercase, so two
# columns differing only in case are rejected as duplicates. At most 255 characters (bytes: the
# names are ASCII), Glue's limit for a column name
# (https://docs.aws.amazon.com/glue/latest/webapi/API_Column.html,
# https://docs.aws.amazon.com/athena/latest/ug/tables-databases-columns-names.html).
MAX_COLUMN_CHARS = 255
COLUMN_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Glue database and table names we derive (prefix + tenant, table + version).
GLUE_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,254}")
# The file part of an export key.
FILE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,254}")


def validate_name(value: Any, what: str) -> str:
    """Return ``value`` if it is a legal tenant or table name, else raise ContractError.

    >>> validate_name("test_table", "table")
    'test_table'
    """
    return _check(NAME_RE, value, what, "lowercase letters, digits and '_', starting with a letter")


def validate_glue_name(value: Any, what: str) -> str:
    """Return ``value`` if it is a legal Glue database or table name we may create."""
    return _check(GLUE_NAME_RE, value, what, "lowercase letters, digits and '_'")


def validate_version(value: Any) -> str:
    """Return ``value`` if it is a legal version name.

    >>> validate_version("20201230_V0001")
    '20201230_V0001'
    """
    return _check(VERSION_RE, value, "version", "letters, digits and '_', at most 64")


def validate_column(value: Any) -> str:
    """Return ``value`` if it is a legal column name (original case is kept).

    >>> validate_column("COL_1")
    'COL_1'
    """
    _check(COLUMN_RE, value, "column", "letters, digits and '_', not starting with a digit")
    if len(value) > MAX_COLUMN_CHARS:
        raise ContractError(
            f"column name {value[:40]}… is too long: {len(value)} characters, at most "
            f"{MAX_COLUMN_CHARS} (Glue's limit for a column name, "
            "https://docs.aws.amazon.com/glue/latest/webapi/API_Column.html)"
        )
    return value


def validate_columns(columns: Any, what: str = "columns") -> tuple[str, ...]:
    """Validate a column list: legal names, at least one, no duplicates (case-insensitively)."""
    if not isinstance(columns, list | tuple) or not columns:
        raise ContractError(f"{what} must be a non-empty list of column names, got {columns!r}")
    names = tuple(validate_column(c) for c in columns)
    seen: dict[str, str] = {}
    for name in names:
        folded = name.lower()
        if folded in seen:
            raise ContractError(
                f"duplicate column {name!r} in {what} "
                f"(Athena folds case: clashes with {seen[folded]!r})"
            )
        seen[folded] = name
    return names


def validate_file_name(value: Any) -> str:
    """Return ``value`` if it is a legal file part of an export key (the suffix aside)."""
    return _check(FILE_RE, value, "file name", "letters, digits, '_', '-' and '.'")


def _check(pattern: re.Pattern[str], value: Any, what: str, rule: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ContractError(f"invalid {what} {value!r}: expected {rule}")
    return value


def parse_table_id(table_id: Any) -> tuple[str, str]:
    """``(tenant, table)`` of a ``tenant/table`` id, both names validated.

    >>> parse_table_id("tenant/test_table")
    ('tenant', 'test_table')
    >>> parse_table_id("tenant")
    Traceback (most recent call last):
    ...
    snapcdc.model.errors.ContractError: invalid table 'tenant': expected TENANT/TABLE
    """
    tenant, sep, table = table_id.partition("/") if isinstance(table_id, str) else ("", "", "")
    if not sep:
        raise ContractError(f"invalid table {table_id!r}: expected TENANT/TABLE")
    return validate_name(tenant, "tenant"), validate_name(table, "table")


def glue_database(prefix: str, tenant: str) -> str:
    """The Glue database that holds a tenant's export tables.

    >>> glue_database("snapcdc_", "tenant")
    'snapcdc_tenant'
    """
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", prefix or ""):
        raise ContractError(f"invalid database prefix {prefix!r}")
    return validate_glue_name(prefix + validate_name(tenant, "tenant"), "database")


# Glue keeps table names lowercase, at most 255 bytes, and Athena lowercases names in DDL
# (https://docs.aws.amazon.com/athena/latest/ug/tables-databases-columns-names.html), so a
# version's case and its runs of '_' must be spelled into the name, not lost. Each character is
# written as one codeword of a prefix-free code: a lowercase letter or digit as itself, '_' as
# '__', an uppercase letter X as '_x'. The table part never holds '_' followed by a letter or
# digit, so the first such pair, TABLE_SEPARATOR, ends it: the name decodes back to exactly one
# (table, version), hence two versions never share a table. Longest case: a 63-character table
# name (125 characters escaped) + 2 + a 64-character version (128) = 255.
TABLE_SEPARATOR = "_v"


def _escape_name(value: str) -> str:
    return "".join("__" if c == "_" else f"_{c.lower()}" if c.isupper() else c for c in value)


def export_table_name(table: str, version: str) -> str:
    """The Glue table for one export version; distinct (table, version) pairs never share one.

    >>> export_table_name("test_table", "20201230_V0001")
    'test__table_v20201230___v0001'
    >>> export_table_name("x", "X_V1") != export_table_name("x", "X_v1")
    True
    """
    name = (
        _escape_name(validate_name(table, "table"))
        + TABLE_SEPARATOR
        + _escape_name(validate_version(version))
    )
    return validate_glue_name(name, "table")
