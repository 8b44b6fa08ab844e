"""The Athena DDL the embedded engine understands, parsed with sqlglot into plain values.

Only what the pipeline issues is accepted: ``CREATE DATABASE``, ``CREATE EXTERNAL TABLE`` over
OpenCSVSerde text files with STRING columns, and ``DROP TABLE``. Anything whose effect the
engine could not reproduce exactly (another SerDe, partitions, typed columns, a property that
changes how files are read) raises :class:`DdlError` instead of being half understood.

>>> stmt = parse_ddl("CREATE DATABASE IF NOT EXISTS `snapcdc_tenant`")
>>> (type(stmt).__name__, stmt.database, stmt.if_not_exists)
('CreateDatabase', 'snapcdc_tenant', True)
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

# The statements' values live in definitions, which needs no sqlglot; re-exported here.
from snapcdc_local.engine.definitions import CreateDatabase, DdlError, DropTable, ExternalTable
from snapcdc_local.engine.opencsv import NO_ESCAPE, CsvFormat

__all__ = ["CreateDatabase", "DdlError", "DropTable", "ExternalTable", "parse_ddl"]

OPEN_CSV_SERDE = "org.apache.hadoop.hive.serde2.OpenCSVSerde"
# Trino: an absent escapeChar, or an explicit '"', means backslash when reading.
DEFAULT_ESCAPE = "\\"
SERDE_DEFAULTS = {"separatorChar": ",", "quoteChar": '"', "escapeChar": DEFAULT_ESCAPE}
# Table properties that only describe the table; anything else that we do not implement but
# that would change what is read (skip.footer.line.count, projections, encodings) is refused.
HEADER_PROPERTY = "skip.header.line.count"
DESCRIPTIVE_PROPERTIES = {"classification", "comment", "has_encrypted_data", "typeofdata"}


def parse_ddl(statement: exp.Expression | str) -> CreateDatabase | DropTable | ExternalTable:
    """Interpret one parsed DDL statement (or its text)."""
    if isinstance(statement, str):
        statement = sqlglot.parse_one(statement, read="athena")
    if isinstance(statement, exp.Create):
        kind = (statement.args.get("kind") or "").upper()
        if kind in ("DATABASE", "SCHEMA"):
            return CreateDatabase(_name(statement.this), bool(statement.args.get("exists")))
        if kind == "TABLE":
            return _external_table(statement)
    if isinstance(statement, exp.Drop) and (statement.args.get("kind") or "").upper() == "TABLE":
        tables = statement.args.get("tables") or [statement.this]
        if len(tables) != 1:
            raise DdlError("NOT_SUPPORTED: DROP TABLE of more than one table")
        table = tables[0]
        return DropTable(_db(table), _name(table), bool(statement.args.get("exists")))
    raise DdlError(
        f"NOT_SUPPORTED: statement not supported by the embedded engine: {_head(statement)}"
    )


def _external_table(create: exp.Create) -> ExternalTable:
    schema = create.this
    if not isinstance(schema, exp.Schema) or not isinstance(schema.this, exp.Table):
        raise DdlError("NOT_SUPPORTED: CREATE TABLE needs a column list")
    table = schema.this
    properties = create.args.get("properties")
    props = list(properties.expressions) if properties else []
    if not any(isinstance(p, exp.ExternalProperty) for p in props):
        raise DdlError("NOT_SUPPORTED: only CREATE EXTERNAL TABLE is supported")
    if create.expression is not None:
        raise DdlError(
            "NOT_SUPPORTED: CREATE TABLE AS SELECT is not supported by the embedded engine"
        )

    columns = []
    for column in schema.expressions:
        if not isinstance(column, exp.ColumnDef):
            raise DdlError(f"NOT_SUPPORTED: column definition {column.sql('athena')}")
        kind = column.args.get("kind")
        if kind is None or not kind.is_type(exp.DataType.Type.TEXT, exp.DataType.Type.VARCHAR):
            raise DdlError(
                f"NOT_SUPPORTED: column {column.name!r} is "
                f"{kind.sql('athena') if kind else 'untyped'}; "
                "the embedded engine reads OpenCSVSerde columns as STRING only"
            )
        columns.append(column.name.lower())
    if len(set(columns)) != len(columns):
        raise DdlError(f"HIVE_INVALID_METADATA: duplicate column names in {columns}")

    serde = None
    serde_props: dict[str, str] = {}
    location = None
    header_lines = 0
    for prop in props:
        if isinstance(prop, exp.ExternalProperty):
            continue
        if isinstance(prop, exp.RowFormatSerdeProperty):
            serde = prop.this.name
            if prop.args.get("serde_properties"):
                serde_props = _property_map(prop.args["serde_properties"].expressions)
        elif isinstance(prop, exp.LocationProperty):
            location = prop.this.name
        elif isinstance(prop, exp.Property) and isinstance(prop.this, exp.Literal):
            name, value = prop.this.name, _literal(prop.args.get("value"))
            if name == HEADER_PROPERTY:
                header_lines = _header_lines(value)
            elif name.lower() not in DESCRIPTIVE_PROPERTIES:
                raise DdlError(
                    f"NOT_SUPPORTED: table property {name!r} is not supported "
                    "by the embedded engine"
                )
        else:
            raise DdlError(
                f"NOT_SUPPORTED: {prop.sql('athena')} is not supported by the embedded engine"
            )
    if serde != OPEN_CSV_SERDE:
        raise DdlError(
            f"NOT_SUPPORTED: SerDe {serde!r}; the embedded engine reads {OPEN_CSV_SERDE} only"
        )
    if location is None:
        raise DdlError("NOT_SUPPORTED: an external table needs a LOCATION")
    return ExternalTable(
        database=_db(table),
        table=_name(table),
        columns=tuple(columns),
        location=location,
        csv=_csv_format(serde_props),
        header_lines=header_lines,
        if_not_exists=bool(create.args.get("exists")),
    )


def _csv_format(props: dict[str, str]) -> CsvFormat:
    unknown = sorted(set(props) - set(SERDE_DEFAULTS))
    if unknown:
        raise DdlError(
            f"NOT_SUPPORTED: SerDe properties {unknown} are not supported by the embedded engine"
        )
    # Like Hive, only the first character of each property counts.
    separator, quote, escape = (props.get(k, d)[:1] or d for k, d in SERDE_DEFAULTS.items())
    if escape == '"':
        escape = DEFAULT_ESCAPE
    if separator == NO_ESCAPE:
        raise DdlError("HIVE_INVALID_METADATA: separator cannot be the null character")
    if len({separator, quote, escape}) < 3 and not (quote == escape == NO_ESCAPE):
        raise DdlError(
            f"HIVE_INVALID_METADATA: separator {separator!r}, quote {quote!r} "
            f"and escape {escape!r} "
            "must be different characters"
        )
    if quote == NO_ESCAPE:
        raise DdlError("NOT_SUPPORTED: quoting disabled ('quoteChar' = '\\0') is not supported")
    for c in (separator, quote, escape):
        if c in "\r\n":
            raise DdlError(
                f"HIVE_INVALID_METADATA: {c!r} cannot be a separator, quote or escape character"
            )
    return CsvFormat(separator, quote, escape)


def _header_lines(value: str) -> int:
    if not value.isdigit():
        raise DdlError(f"HIVE_INVALID_METADATA: {HEADER_PROPERTY} must be a number, got {value!r}")
    return int(value)


def _property_map(properties: list[exp.Expression]) -> dict[str, str]:
    result = {}
    for prop in properties:
        if not isinstance(prop, exp.Property):
            raise DdlError(f"NOT_SUPPORTED: {prop.sql('athena')}")
        result[prop.this.name if isinstance(prop.this, exp.Literal) else prop.name] = _literal(
            prop.args.get("value")
        )
    return result


def _literal(value: exp.Expression | None) -> str:
    if not isinstance(value, exp.Literal) or not value.is_string:
        raise DdlError(
            "NOT_SUPPORTED: expected a string literal, got "
            f"{value.sql('athena') if value else None}"
        )
    return value.this


def _name(node: exp.Expression) -> str:
    return node.name.lower()


def _db(table: exp.Table) -> str | None:
    return table.db.lower() or None


def _head(statement: exp.Expression) -> str:
    return statement.sql("athena")[:60]
