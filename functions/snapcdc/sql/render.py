"""Render the Athena SQL templates in ``sql/`` with quoted, validated parameters.

Templates never paste a value as it is: every value they print must go through one of the
quoting filters below, and a bare ``{{ value }}`` of a string raises at render time. So a
template reads like the SQL it produces and still cannot be injected into.

Filters (Athena engine v3: Hive syntax for DDL, Trino syntax for queries):

- ``ident``: a query identifier, ``"name"``.
- ``hive_ident``: a DDL identifier, ```name```.
- ``literal``: a query string literal, ``'it''s'``.
- ``hive_literal``: a DDL string literal, ``'it\\'s'`` (Hive escapes with a backslash).
- ``s3_location``: a DDL ``LOCATION``; only plain ``s3://bucket/prefix/`` URIs pass.

>>> template = "SELECT {{ c | ident }} FROM t WHERE x = {{ v | literal }}"
>>> print(render_string(template, c="PK", v="it's"))
SELECT "PK" FROM t WHERE x = 'it''s'
>>> render_string("SELECT {{ c }}", c="PK")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
snapcdc.sql.render.UnquotedValueError: template printed 'PK' without a quoting filter ...
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
S3_URI_RE = re.compile(r"s3://[a-z0-9][a-z0-9.\-]{1,62}/[A-Za-z0-9_.\-/]*")


class UnquotedValueError(ValueError):
    """A template printed a value without quoting it."""


class Sql(str):
    """A fragment of SQL produced by a quoting filter: safe to print as it is."""


def ident(name: Any) -> Sql:
    """Quote a query identifier (column, table or database name)."""
    return Sql(f'"{_identifier(name)}"')


def hive_ident(name: Any) -> Sql:
    """Quote a DDL identifier."""
    return Sql(f"`{_identifier(name)}`")


def literal(value: Any) -> Sql:
    """A Trino string literal: single quotes doubled."""
    return Sql("'" + _text(value).replace("'", "''") + "'")


def hive_literal(value: Any) -> Sql:
    """A Hive (DDL) string literal: backslash and single quote escaped with a backslash."""
    return Sql("'" + _text(value).replace("\\", "\\\\").replace("'", "\\'") + "'")


def s3_location(uri: Any) -> Sql:
    """A DDL LOCATION literal; only plain ``s3://bucket/prefix/`` URIs are accepted."""
    if not isinstance(uri, str) or not S3_URI_RE.fullmatch(uri):
        raise ValueError(f"invalid S3 location {uri!r}")
    return hive_literal(uri)


def _identifier(name: Any) -> str:
    if not isinstance(name, str) or not IDENT_RE.fullmatch(name):
        raise ValueError(f"invalid SQL identifier {name!r}")
    return name


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"SQL literal must be a string, got {value!r}")
    if "\x00" in value:
        raise ValueError(f"SQL literal must not contain NUL: {value!r}")
    return value


def _finalize(value: Any) -> Any:
    # Integers and booleans cannot carry SQL; anything else must have been quoted.
    if isinstance(value, Sql) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if value is None or value == "":
        return ""
    raise UnquotedValueError(
        f"template printed {value!r} without a quoting filter "
        "(ident, hive_ident, literal, hive_literal, s3_location)"
    )


def sql_dir() -> Path:
    """The templates: ``templates/`` beside this module (a link to the top ``sql/``)."""
    return Path(__file__).resolve().parent / "templates"


def _environment(loader: jinja2.BaseLoader) -> jinja2.Environment:
    env = jinja2.Environment(  # noqa: S701 - output is SQL, quoted by the filters, not HTML
        loader=loader,
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        ident=ident,
        hive_ident=hive_ident,
        literal=literal,
        hive_literal=hive_literal,
        s3_location=s3_location,
    )
    return env


@cache
def environment() -> jinja2.Environment:
    return _environment(jinja2.FileSystemLoader(str(sql_dir())))


def render(template: str, **params: Any) -> str:
    """Render ``sql/{template}.sql`` with ``params``."""
    return environment().get_template(f"{template}.sql").render(**params).strip() + "\n"


def render_string(source: str, **params: Any) -> str:
    """Render a template given as a string (for tests and docs)."""
    return _environment(jinja2.BaseLoader()).from_string(source).render(**params)
