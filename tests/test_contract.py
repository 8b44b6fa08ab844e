"""The export contract: keys, table configuration, names that may reach SQL."""

from __future__ import annotations

from decimal import Decimal

import pytest

from snapcdc.model.contract import (
    ContractError,
    ExportRef,
    TableConfig,
    TableSchema,
    parse_export_key,
    table_config_key,
)
from snapcdc.model.names import (
    export_table_name,
    glue_database,
    validate_column,
    validate_columns,
    validate_name,
    validate_version,
)


def test_parse_export_key():
    ref = parse_export_key("tenant/test_table/20201231_V0001/export3.csv.gz")
    assert ref == ExportRef("tenant", "test_table", "20201231_V0001", "export3.csv.gz")
    assert ref.table_id == "tenant/test_table"
    assert ref.version_prefix == "tenant/test_table/20201231_V0001/"
    assert ref.key == "tenant/test_table/20201231_V0001/export3.csv.gz"
    assert (
        ref.config_key
        == table_config_key("tenant", "test_table")
        == "tenant/test_table/_table.json"
    )


@pytest.mark.parametrize(
    "key,message",
    [
        ("tenant/test_table/export.csv.gz", "is not of the form"),
        ("a/b/c/d/e.csv.gz", "is not of the form"),
        ("Tenant/t/v1/x.csv.gz", "invalid tenant 'Tenant'"),
        ("tenant/Table/v1/x.csv.gz", "invalid table 'Table'"),
        ("tenant/t/v-1/x.csv.gz", "invalid version 'v-1'"),
        ("tenant/t/_v1/x.csv.gz", "invalid version '_v1'"),
        ("tenant/t/v1/x.csv", "does not end in .csv.gz"),
        ("tenant/t/v1/_table.json", "invalid file name '_table.json'"),
        ("tenant/t/v1/a b.csv.gz", "invalid file name 'a b.csv.gz'"),
        ("t'; DROP TABLE x; --/t/v1/x.csv.gz", "invalid tenant"),
        (None, "export key must be a string"),
    ],
)
def test_bad_export_keys(key, message):
    with pytest.raises(ContractError, match=message):
        parse_export_key(key)


def test_names():
    assert validate_name("t_1", "table") == "t_1"
    assert validate_version("20201230_V0001") == "20201230_V0001"
    assert validate_column("COL_1") == "COL_1"
    for bad in ("1t", "t-1", "T", "", "a" * 64, 'a"b', "a`b"):
        with pytest.raises(ContractError):
            validate_name(bad, "table")
    for bad in ('a"; DROP', "a b", "1col", "", "é"):
        with pytest.raises(ContractError, match="invalid column"):
            validate_column(bad)


def test_a_column_name_is_at_most_glues_255_characters_and_a_longer_one_is_called_too_long():
    assert validate_column("c" * 255) == "c" * 255
    with pytest.raises(ContractError, match=r"too long: 256 characters, at most 255 \(Glue's"):
        validate_column("c" * 256)


def test_columns_are_unique_ignoring_case():
    assert validate_columns(["a", "B"]) == ("a", "B")
    with pytest.raises(ContractError, match="duplicate column 'A'.*clashes with 'a'"):
        validate_columns(["a", "A"])
    with pytest.raises(ContractError, match="non-empty list"):
        validate_columns([])
    with pytest.raises(ContractError, match="non-empty list"):
        validate_columns("a,b")


def test_table_config_defaults_and_json():
    config = TableConfig.from_json("{}")
    assert (config.delimiter, config.quote, config.escape, config.header) == (",", '"', None, True)
    config = TableConfig.from_json(
        '{"columns": ["PK", "COL_1"], "key": "pk", "delimiter": ";", "header": false}'
    )
    assert config.key == ("pk",)
    assert config.resolve() == TableSchema(("PK", "COL_1"), ("PK",))
    assert TableConfig.from_dict(config.to_dict()) == config


def test_the_delete_guard_options():
    config = TableConfig.from_json("{}")
    assert (config.max_delete_fraction, config.allow_empty) == (0.5, False)
    config = TableConfig.from_json('{"max_delete_fraction": 1, "allow_empty": true}')
    assert (config.max_delete_fraction, config.allow_empty) == (1.0, True)
    # the head keeps the configuration as DynamoDB returns it (numbers as Decimal)
    assert (
        TableConfig.from_dict({**config.to_dict(), "max_delete_fraction": Decimal("1")}) == config
    )


@pytest.mark.parametrize(
    "text,message",
    [
        ("not json", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"delimeter": ";"}', "unknown table configuration option"),
        ('{"delimiter": ";;"}', "delimiter must be a single character"),
        ('{"delimiter": "\\n"}', "delimiter must be a single character"),
        ('{"quote": ""}', "quote must be a single character"),
        ('{"escape": "ab"}', "escape must be a single character"),
        ('{"delimiter": "\\"", "quote": "\\""}', "delimiter and quote must differ"),
        ('{"header": "yes"}', "header must be true or false"),
        ('{"header": false}', "must declare its columns"),
        ('{"columns": ["a", "b"], "key": ["c"]}', "key column 'c' is not among the columns"),
        ('{"columns": ["a", "a b"]}', "invalid column 'a b'"),
        ('{"max_delete_fraction": 1.5}', "max_delete_fraction must be a number from 0 to 1"),
        ('{"max_delete_fraction": -0.1}', "max_delete_fraction must be a number from 0 to 1"),
        ('{"max_delete_fraction": "0.5"}', "max_delete_fraction must be a number from 0 to 1"),
        ('{"max_delete_fraction": true}', "max_delete_fraction must be a number from 0 to 1"),
        ('{"allow_empty": "yes"}', "allow_empty must be true or false"),
    ],
)
def test_bad_table_configs(text, message):
    with pytest.raises(ContractError, match=message):
        TableConfig.from_json(text)


def test_resolve_with_a_header_row():
    config = TableConfig(key=("id",))
    assert config.resolve(["ID", "name"]) == TableSchema(("ID", "name"), ("ID",))
    assert TableConfig().resolve(["a", "b"]).key == ("a",)
    with pytest.raises(ContractError, match="has a header row but none was read"):
        config.resolve(None)
    with pytest.raises(ContractError, match="key column 'id' is not among"):
        config.resolve(["a", "b"])
    with pytest.raises(ContractError) as bad:
        config.resolve(["a", "b c"])
    # the advice names the setting, worded for _table.json (snapcdc diff words it --columns)
    assert str(bad.value).startswith("invalid column 'b c'")
    assert 'set "columns": ["a", "b_c"] in the table\'s _table.json' in str(bad.value)


def test_configured_columns_name_the_header_fields():
    """With ``columns``, the header is only counted: headers Athena cannot take then load."""
    config = TableConfig(columns=("contact_phone", "email"))
    schema = config.resolve(["Contact Phone", "e-mail"])
    assert schema == TableSchema(("contact_phone", "email"), ("contact_phone",))
    assert TableConfig(columns=("A", "B")).resolve(["a", "b"]).columns == ("A", "B")
    too_many = r"header row has 3 field\(s\).*configured columns are 2"
    with pytest.raises(ContractError, match=too_many):
        config.resolve(["Contact Phone", "e-mail", "x"])
    # without columns, the reason says which option fixes it
    with pytest.raises(ContractError, match=r"invalid column 'Contact Phone'.*\"columns\""):
        TableConfig().resolve(["Contact Phone", "e-mail"])


def test_complete_on():
    assert TableConfig().complete_on == "file"
    config = TableConfig.from_json('{"complete_on": "manifest"}')
    assert config.complete_on == "manifest"
    assert TableConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ContractError, match="complete_on must be one of"):
        TableConfig.from_json('{"complete_on": "marker"}')


def test_schema():
    schema = TableSchema(("K1", "v", "K2"), ("K1", "K2"))
    assert TableSchema.from_dict(schema.to_dict()) == schema
    with pytest.raises(ContractError):
        TableSchema.from_dict({"columns": ["a"], "key": ["b"]})


def test_glue_names():
    assert glue_database("snapcdc_", "tenant") == "snapcdc_tenant"
    assert export_table_name("test_table", "20201230_V0001") == "test__table_v20201230___v0001"
    with pytest.raises(ContractError, match="invalid database prefix"):
        glue_database("Snap-", "tenant")
    with pytest.raises(ContractError, match="invalid tenant"):
        glue_database("snapcdc_", "Tenant")
    with pytest.raises(ContractError, match="invalid version"):
        export_table_name("t", "v 1")
