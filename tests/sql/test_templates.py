"""The rendered SQL itself: valid Athena syntax, injection-proof, the documented shapes."""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp

from snapcdc.model.contract import ContractError, TableConfig, TableSchema
from snapcdc.sql import queries
from snapcdc_local.engine.ddl import ExternalTable, parse_ddl

OLD = TableSchema(("PK", "COL_1", "COL_2", "GONE"), ("PK",))
NEW = TableSchema(("COL_2", "PK", "col_1", "ADDED"), ("pk",))
CONFIG = TableConfig(delimiter=";", header=False, columns=OLD.columns)


def rendered() -> dict[str, str]:
    return {
        "create_database": queries.create_database("snapcdc_tenant"),
        "create_export_table": queries.create_export_table(
            "snapcdc_tenant", "t__v1", OLD.columns, "s3://bucket/tenant/t/v1/", CONFIG
        ),
        "check_export": queries.check_export("snapcdc_tenant", "t__v1", OLD),
        "check_export_composite": queries.check_export(
            "snapcdc_tenant", "t__v1", TableSchema(("a", "b", "c"), ("a", "b"))
        ),
        "delta": queries.delta("snapcdc_tenant", "t__v1", OLD, "t__v2", NEW),
        "first_load": queries.first_load("snapcdc_tenant", "t__v1", OLD),
        "reconverge": queries.reconverge(
            "snapcdc_tenant",
            "t__v3",
            NEW,
            ["s3://bucket/tenant/t/v3/a.csv.gz"],
            queries.Side("t__v1", OLD, ["s3://bucket/tenant/t/v1/a.csv.gz"]),
            [queries.Side("t__v2", NEW, ["s3://bucket/tenant/t/v2/a.csv.gz"])],
        ),
        "drop_export_table": queries.drop_export_table("snapcdc_tenant", "t__v1"),
    }


@pytest.mark.parametrize("name", list(rendered()))
def test_every_template_is_one_athena_statement(name):
    sql = rendered()[name]
    statements = sqlglot.parse(sql, read="athena")
    assert len(statements) == 1 and not isinstance(statements[0], exp.Command), sql
    if isinstance(statements[0], exp.Query):
        # what the embedded engine runs
        assert sqlglot.transpile(sql, read="athena", write="duckdb")


def test_create_export_table_declares_strings_and_the_serde():
    ddl = parse_ddl(rendered()["create_export_table"])
    assert isinstance(ddl, ExternalTable)
    assert ddl.columns == ("pk", "col_1", "col_2", "gone", queries.EXTRA_COLUMN)
    assert (ddl.csv.separator, ddl.csv.quote, ddl.csv.escape) == (";", '"', "\0")
    assert (ddl.location, ddl.header_lines) == ("s3://bucket/tenant/t/v1/", 0)
    with_header = queries.create_export_table(
        "d", "t", ["a"], "s3://bucket/p/", TableConfig(escape="\\")
    )
    ddl = parse_ddl(with_header)
    assert (ddl.csv.escape, ddl.header_lines) == ("\\", 1)


def test_escape_equal_to_quote_means_doubled_quotes():
    sql = queries.create_export_table("d", "t", ["a"], "s3://bucket/p/", TableConfig(escape='"'))
    assert "'escapeChar' = '\\0'" in sql
    with pytest.raises(ContractError, match="escape and delimiter must differ"):
        queries.create_export_table("d", "t", ["a"], "s3://bucket/p/", TableConfig(escape=","))


def test_delta_lines_columns_up_by_name():
    parts = queries.delta_columns(OLD, NEW)
    assert parts["key"] == [("PK", "pk")]
    assert parts["output"] == [
        ("COL_2", "COL_2"),
        ("PK", "PK"),
        ("COL_1", "col_1"),
        (None, "ADDED"),
    ]
    assert sorted(parts["compared"], key=repr) == sorted(
        [("COL_2", "COL_2"), ("COL_1", "col_1"), (None, "ADDED"), ("GONE", None)], key=repr
    )
    select = sqlglot.parse_one(rendered()["delta"], read="athena")
    assert [e.alias_or_name for e in select.expressions] == ["op", "COL_2", "PK", "col_1", "ADDED"]
    assert "<>" not in rendered()["delta"] and "||" not in rendered()["delta"]


def test_delta_refuses_a_changed_key():
    with pytest.raises(ContractError, match="key changed"):
        queries.delta("d", "a", OLD, "b", TableSchema(("PK", "COL_1"), ("COL_1",)))


@pytest.mark.parametrize(
    "call",
    [
        lambda: queries.check_export(
            "d", "t", TableSchema(('a"; DROP TABLE x; --',), ('a"; DROP TABLE x; --',))
        ),
        lambda: queries.first_load("d", "t", TableSchema(("a`b",), ("a`b",))),
        lambda: queries.create_export_table(
            "d", "t", ["a`) STRING; --"], "s3://bucket/p/", TableConfig()
        ),
        lambda: queries.create_export_table(
            "d", "t", ["a"], "s3://bucket/p/' ; DROP", TableConfig()
        ),
        lambda: queries.create_export_table("d", "t", ["a"], "https://example.com/", TableConfig()),
        lambda: queries.drop_export_table("d; DROP", "t"),
        lambda: queries.create_database("Tenant"),
        lambda: queries.delta("d", "t1", OLD, "t2`", NEW),
    ],
)
def test_injection_attempts_are_rejected(call):
    with pytest.raises((ContractError, ValueError)):
        call()


def test_config_rejects_hostile_column_names():
    with pytest.raises(ContractError, match="invalid column"):
        TableConfig(columns=('a"; DROP TABLE x; --',), header=False)


def test_literals_are_escaped_not_rejected():
    """A quote character that is itself a quote mark is escaped into the Hive literal."""
    sql = queries.create_export_table(
        "d", "t", ["a"], "s3://bucket/p/", TableConfig(quote="'", escape="\\")
    )
    ddl = parse_ddl(sql)
    assert (ddl.csv.quote, ddl.csv.escape) == ("'", "\\")
