"""How the engine keeps external tables in DuckDB: the schema holding their rows, the views
over them, and the quoting of every name and literal the engine writes into DuckDB SQL.
"""

from __future__ import annotations

# Where the rows of external tables live; user databases never get this name.
STORAGE_SCHEMA = "snapcdc_engine_storage"
# Athena's pseudo-column naming the S3 object a row was read from
# (https://aws.amazon.com/premiumsupport/knowledge-center/find-s3-source-file-athena-table-row/);
# not part of SELECT *. Stored as an index into the table's files.
PATH_COLUMN = "$path"
FILE_COLUMN = "_file"
DEFAULT_DATABASE = "default"

# (database, table)
Key = tuple[str, str]


def storage_name(key: tuple[str, str]) -> str:
    return f"{ident(STORAGE_SCHEMA)}.{ident(key[0] + '.' + key[1])}"


def path_view_name(key: tuple[str, str]) -> str:
    return f"{key[0]}.{key[1]}{PATH_COLUMN}"


def path_view(key: tuple[str, str]) -> str:
    """The view of a table's columns plus ``"$path"`` (a name no user table has)."""
    return f"{ident(STORAGE_SCHEMA)}.{ident(path_view_name(key))}"


def arrow_name(key: tuple[str, str]) -> str:
    """What a cursor registers a table's Arrow rows as (a dotted name no user table has)."""
    return f"{STORAGE_SCHEMA}.{key[0]}.{key[1]}"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def char(c: str) -> str:
    """One character as a DuckDB expression (works for NUL, which a literal cannot hold)."""
    return f"chr({ord(c)})"


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
