"""Athena (Trino) queries as the engine runs them: parsed and rewritten with sqlglot for DuckDB.

Rewrites: queries naming ``"$path"`` read each table through its view with that column, and
Trino functions sqlglot renders as something DuckDB refuses are replaced by their equivalent.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from snapcdc_local.engine.errors import EngineError
from snapcdc_local.engine.storage import PATH_COLUMN, STORAGE_SCHEMA, Key, path_view_name


def to_duckdb(query: exp.Query, database: str, *, with_path_column: bool) -> str:
    """The DuckDB SQL of an Athena query (``with_path_column``: it names ``"$path"``)."""
    if with_path_column:
        query = with_path(query, database)
    try:
        return query.transform(utf8_length).transform(count_if).sql(dialect="duckdb")
    except sqlglot.errors.SqlglotError as exc:
        raise EngineError(f"NOT_SUPPORTED: {exc}") from None


def names_path_column(query: exp.Query) -> bool:
    return any(c.name == PATH_COLUMN for c in query.find_all(exp.Column))


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


def with_path(query: exp.Query, database: str) -> exp.Query:
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
                f'NOT_SUPPORTED: SELECT * from a table in a query naming "{PATH_COLUMN}" '  # noqa: S608
                "is not supported by the embedded engine; list the columns"
            )
    for node, key in refs:
        alias = node.alias or node.name
        node.replace(
            exp.Table(
                this=exp.to_identifier(path_view_name(key), quoted=True),
                db=exp.to_identifier(STORAGE_SCHEMA, quoted=True),
                alias=exp.TableAlias(this=exp.to_identifier(alias)),
            )
        )
    return query


def _read_from(select: exp.Select) -> list[exp.Expression]:
    """What a SELECT reads from: its FROM and its JOINs (each wraps a table or a subquery)."""
    from_ = select.args.get("from_")
    return ([from_] if from_ else []) + list(select.args.get("joins") or [])


def utf8_length(node: exp.Expression) -> exp.Expression:
    """Trino's ``length(to_utf8(x))``, the bytes of ``x`` in UTF-8, as DuckDB's ``octet_length``.

    Trino's ``length`` of a varbinary counts bytes (https://trino.io/docs/current/functions/binary.html);
    sqlglot writes it as DuckDB's ``length(encode(x))``, which DuckDB refuses for a BLOB.
    """
    if isinstance(node, exp.Length) and isinstance(node.this, exp.Encode):
        return exp.Anonymous(this="OCTET_LENGTH", expressions=[node.this.copy()])
    return node


def count_if(node: exp.Expression) -> exp.Expression:
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
