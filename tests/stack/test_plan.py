"""Plan: first load, delta against the head, skip, header rows, bad configuration."""

from __future__ import annotations

import json
import random
import re
import string

import pytest
from harness import REFERENCE_CONFIG

from snapcdc.aws.registry import advance_head, find_upload
from snapcdc.model import header
from snapcdc.model.contract import ContractError

EXEC = "arn:aws:states:us-east-1:123456789012:execution:pipeline:plan"
DB = "snapcdc_51af3dc0_tenant"  # prefix derived from the stack id in cfn.yaml


def registered(aws, key, text="PK1;a;b;c\n", config=REFERENCE_CONFIG):
    if config is not None:
        tenant, table = key.split("/")[:2]
        aws.s3.put_object(
            Bucket="imports", Key=f"{tenant}/{table}/_table.json", Body=json.dumps(config)
        )
    event = aws.put_export(key, text)
    return aws.invoke("register", {"event": event, "execution_arn": EXEC})


def plan(aws, upload):
    return aws.invoke("plan", {"upload": upload, "execution_arn": EXEC})


def test_first_load(aws):
    upload = registered(aws, "tenant/test_table/20201230_V0001/export1.csv.gz")

    result = plan(aws, upload)

    assert result["action"] == "first_load"
    assert [q["name"] for q in result["queries"]] == [
        "create_database",
        "drop_new_table",
        "create_new_table",
        "check_export",
        "first_load",
    ]
    assert [q["kind"] for q in result["queries"]][-2:] == ["check", "ops"]
    assert result["schema"] == {"columns": ["PK", "COL_1", "COL_2", "COL_3"], "key": ["PK"]}
    assert result["location"] == "s3://imports/tenant/test_table/20201230_V0001/"
    create = result["queries"][2]["sql"]
    assert f"`{DB}`.`test__table_v20201230___v0001`" in create
    assert "'s3://imports/tenant/test_table/20201230_V0001/'" in create
    assert "';'" in create
    record = find_upload("tenant/test_table", upload["key"], upload["sequencer"])
    assert (record["status"], record["action"]) == ("RUNNING", "first_load")


def test_delta_recreates_the_previous_table_from_the_head(aws):
    previous_config = {**REFERENCE_CONFIG, "delimiter": "|"}
    advance_head(
        "tenant/test_table",
        "20201230_V0001",
        {
            "schema": {"columns": ["PK", "COL_1", "COL_2", "COL_3"], "key": ["PK"]},
            "config": previous_config,
            "location": "s3://imports/tenant/test_table/20201230_V0001/",
            "files": ["s3://imports/tenant/test_table/20201230_V0001/export1.csv.gz"],
        },
    )
    upload = registered(aws, "tenant/test_table/20201230_V0002/export2.csv.gz")

    result = plan(aws, upload)

    assert result["action"] == "delta"
    assert result["previous_version"] == "20201230_V0001"
    names = [q["name"] for q in result["queries"]]
    assert names == [
        "create_database",
        "drop_new_table",
        "create_new_table",
        "create_previous_table",
        "check_export",
        "delta",
        "drop_previous_table",
    ]
    previous = result["queries"][3]["sql"]
    assert "IF NOT EXISTS" in previous and "test__table_v20201230___v0001" in previous
    assert "'|'" in previous  # the previous version is read with its own configuration
    assert "test__table_v20201230___v0001" in result["queries"][6]["sql"]
    # each side reads exactly its applied files, whatever else the prefixes hold
    assert result["files"] == ["s3://imports/tenant/test_table/20201230_V0002/export2.csv.gz"]
    delta = result["queries"][5]["sql"]
    assert (
        "WHERE \"$path\" IN ('s3://imports/tenant/test_table/20201230_V0001/export1.csv.gz')"
        in delta
    )
    assert (
        "WHERE \"$path\" IN ('s3://imports/tenant/test_table/20201230_V0002/export2.csv.gz')"
        in delta
    )
    check = result["queries"][4]["sql"]
    assert check.count("'s3://imports/tenant/test_table/20201230_V0002/export2.csv.gz'") == 1


def test_head_without_files_reads_its_applied_key(aws):
    """Heads recorded before ``files`` existed name the one key they were applied from."""
    advance_head(
        "tenant/test_table",
        "20201230_V0001",
        {
            "schema": {"columns": ["PK", "COL_1", "COL_2", "COL_3"], "key": ["PK"]},
            "config": REFERENCE_CONFIG,
            "location": "s3://imports/tenant/test_table/20201230_V0001/",
            "applied_key": "tenant/test_table/20201230_V0001/export1.csv.gz",
        },
    )
    upload = registered(aws, "tenant/test_table/20201230_V0002/export2.csv.gz")

    delta = plan(aws, upload)["queries"][5]["sql"]

    assert "IN ('s3://imports/tenant/test_table/20201230_V0001/export1.csv.gz')" in delta


def test_table_too_wide_for_one_athena_query_fails_at_plan(aws):
    """300 columns of 120 characters: the delta would exceed Athena's 262,144-byte limit."""
    rng = random.Random(3)
    columns = ["c" + "".join(rng.choices(string.ascii_lowercase, k=119)) for _ in range(300)]
    advance_head(
        "tenant/wide",
        "v1",
        {
            "schema": {"columns": columns, "key": [columns[0]]},
            "config": {"header": True},
            "location": "s3://imports/tenant/wide/v1/",
            "files": ["s3://imports/tenant/wide/v1/export.csv.gz"],
        },
    )
    text = ",".join(columns) + "\n" + ",".join("v" for _ in columns) + "\n"
    upload = registered(aws, "tenant/wide/v2/export.csv.gz", text, config=None)

    with pytest.raises(ContractError) as failure:
        plan(aws, upload)

    message = str(failure.value)
    assert "table tenant/wide version v2: the delta statement is " in message
    assert "more than Athena's 262,144-byte query string limit (300 columns)" in message
    size = int(re.search(r"statement is ([\d,]+) bytes", message).group(1).replace(",", ""))
    assert size > 262_144


@pytest.mark.parametrize("head_version", ["20201230_V0002", "20201231_V0001"])
def test_version_not_after_the_head_is_skipped(aws, head_version):
    advance_head("tenant/test_table", head_version, {"schema": {}, "config": {}, "location": ""})
    upload = registered(aws, "tenant/test_table/20201230_V0002/export2.csv.gz")

    result = plan(aws, upload)

    assert result["action"] == "skip"
    assert result["queries"] == []
    assert head_version in result["reason"]


def test_header_row_is_read_from_the_first_bytes(aws):
    config = {"key": ["id"], "delimiter": ","}
    upload = registered(aws, "tenant/people/v1/export.csv.gz", '"id",name,"City"\n1,a,b\n', config)

    result = plan(aws, upload)

    assert result["schema"] == {"columns": ["id", "name", "City"], "key": ["id"]}
    assert "'skip.header.line.count' = '1'" in result["queries"][2]["sql"]


def test_long_header_spanning_several_ranged_reads(aws, monkeypatch):
    # Ranged reads of 4 KiB so that a header Athena can still query (its statements stay under
    # the 262,144-byte query string limit) spans several of them.
    monkeypatch.setattr(header, "HEADER_RANGE_BYTES", 4 * 1024)
    rng = random.Random(7)
    columns = ["c" + "".join(rng.choices(string.ascii_lowercase, k=120)) for _ in range(200)]
    text = ",".join(columns) + "\n" + ",".join("v" for _ in columns) + "\n"
    upload = registered(aws, "tenant/wide/v1/export.csv.gz", text, config=None)
    assert upload["size"] > 3 * 4 * 1024  # several ranged GETs

    result = plan(aws, upload)

    assert result["schema"]["columns"] == columns
    assert result["schema"]["key"] == [columns[0]]  # default key: the first column
    # statements this long travel through S3, not through the execution state
    offloaded = {q["name"]: q["sql_location"] for q in result["queries"] if "sql_location" in q}
    assert set(offloaded) == {"create_new_table", "check_export", "first_load"}
    assert offloaded["first_load"] == "s3://results/plans/plan/04-first_load.sql"
    body = aws.s3.get_object(Bucket="results", Key="plans/plan/04-first_load.sql")["Body"].read()
    assert body.decode().startswith("SELECT\n  'INSERT' AS op,")
    assert len(json.dumps(result["queries"])) < 5_000


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("{not json", "s3://imports/tenant/t/_table.json: table configuration is not valid JSON"),
        (
            {"columns": ["a"], "header": False, "sep": ";"},
            "unknown table configuration option(s) ['sep']",
        ),
        ({"key": ["nope"]}, "key column 'nope' is not among the columns ['id', 'v']"),
        (
            {"columns": ["id", "v", "w"]},
            "the header row has 2 field(s) ['id', 'v'], the configured columns are 3",
        ),
    ],
)
def test_bad_configuration_fails_with_a_clear_message(aws, config, message):
    aws.s3.put_object(
        Bucket="imports",
        Key="tenant/t/_table.json",
        Body=config if isinstance(config, str) else json.dumps(config),
    )
    upload = registered(aws, "tenant/t/v1/export.csv.gz", "id,v\n1,2\n", config=None)

    with pytest.raises(ContractError, match=re.escape(message)):
        plan(aws, upload)


def test_export_that_is_not_gzip_fails_clearly(aws):
    aws.s3.put_object(Bucket="imports", Key="tenant/t/v1/export.csv.gz", Body=b"id,v\n1,2\n")
    from harness import s3_event

    event = s3_event("imports", "tenant/t/v1/export.csv.gz", 9, "e")
    upload = aws.invoke("register", {"event": event, "execution_arn": EXEC})

    with pytest.raises(ContractError, match="is not a readable gzip file"):
        plan(aws, upload)


def test_key_change_against_the_head_fails(aws):
    advance_head(
        "tenant/test_table",
        "20201230_V0001",
        {
            "schema": {"columns": ["PK", "COL_1"], "key": ["COL_1"]},
            "config": REFERENCE_CONFIG,
            "location": "s3://imports/x/",
            "files": ["s3://imports/x/export.csv.gz"],
        },
    )
    upload = registered(aws, "tenant/test_table/20201230_V0002/export2.csv.gz")

    with pytest.raises(ContractError, match=r"key changed from \['COL_1'\] to \['PK'\]"):
        plan(aws, upload)


def diverged_head(aws, failed_version="20201230_V0002"):
    """V0001 applied, then ``failed_version`` failed after publishing began (MarkFailed's mark)."""
    from snapcdc.aws.registry import mark_diverged

    schema = {"columns": REFERENCE_CONFIG["columns"], "key": ["PK"]}
    advance_head(
        "tenant/test_table",
        "20201230_V0001",
        {
            "schema": schema,
            "config": REFERENCE_CONFIG,
            "location": "s3://imports/tenant/test_table/20201230_V0001/",
            "files": ["s3://imports/tenant/test_table/20201230_V0001/export1.csv.gz"],
        },
    )
    key = f"tenant/test_table/{failed_version}/export2.csv.gz"
    entry = {"version": failed_version, "key": key, "sk": f"upload#{key}#0A",
             "files": [f"s3://imports/{key}"], "schema": schema, "config": REFERENCE_CONFIG,
             "location": f"s3://imports/tenant/test_table/{failed_version}/"}  # fmt: skip
    mark_diverged("tenant/test_table", entry)
    mark_diverged("tenant/test_table", entry)  # a retried MarkFailed: counted once


def test_a_diverged_head_plans_a_reconverge_of_the_next_version(aws):
    diverged_head(aws)
    upload = registered(aws, "tenant/test_table/20201231_V0001/export3.csv.gz")

    result = plan(aws, upload)

    assert result["action"] == "reconverge"
    assert (result["previous_version"], result["diverged_versions"]) == (
        "20201230_V0001",
        ["20201230_V0002"],
    )
    names = [q["name"] for q in result["queries"]]
    assert names == [
        "create_database",
        "drop_new_table",
        "create_new_table",
        "create_test__table_v20201230___v0001",
        "create_test__table_v20201230___v0002",
        "check_export",
        "reconverge",
        "drop_test__table_v20201230___v0001",
        "drop_test__table_v20201230___v0002",
    ]
    sql = result["queries"][names.index("reconverge")]["sql"]
    assert "'s3://imports/tenant/test_table/20201230_V0002/export2.csv.gz'" in sql
    record = find_upload("tenant/test_table", upload["key"], upload["sequencer"])
    assert record["files"] == [f"s3://imports/{upload['key']}"]  # for a reconverge of its own


def test_a_version_before_a_diverged_one_is_skipped(aws):
    diverged_head(aws, failed_version="20201231_V0001")
    upload = registered(aws, "tenant/test_table/20201230_V0002/export2.csv.gz")

    result = plan(aws, upload)

    assert result["action"] == "skip"
    assert result["reason"] == (
        "version 20201230_V0002 is before 20201231_V0001, whose ops partly reached the target; "
        "upload a version not before 20201231_V0001 to reconverge the table"
    )
