"""Athena's API in the emulator runs queries on the embedded engine (plumbing stack)."""

from __future__ import annotations

import gzip
import threading
import time

import pytest

CREATE_TABLE = """CREATE EXTERNAL TABLE IF NOT EXISTS `plumbing_db`.`people` (
  `id` STRING, `name` STRING
)
ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde'
WITH SERDEPROPERTIES ('separatorChar' = ';', 'quoteChar' = '"', 'escapeChar' = '\\0')
LOCATION 's3://{bucket}/people/'
TBLPROPERTIES ('skip.header.line.count' = '1')"""


def run(athena, sql, database=None, workgroup="snapcdc-wg"):
    params = {"QueryString": sql, "WorkGroup": workgroup}
    if database:
        params["QueryExecutionContext"] = {"Database": database}
    query_id = athena.start_query_execution(**params)["QueryExecutionId"]
    states = []
    while True:
        execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        states.append(execution["Status"]["State"])
        if states[-1] not in ("QUEUED", "RUNNING"):
            return execution, states
        time.sleep(0.01)


def all_rows(athena, query_id, page_size):
    pages, token = [], None
    while True:
        params = {"QueryExecutionId": query_id, "MaxResults": page_size}
        if token:
            params["NextToken"] = token
        page = athena.get_query_results(**params)
        pages.append(
            [[c.get("VarCharValue") for c in r["Data"]] for r in page["ResultSet"]["Rows"]]
        )
        token = page.get("NextToken")
        if not token:
            return pages, page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]


@pytest.fixture(scope="module")
def people(plumbing):
    bucket = plumbing.stack.physical_id("QuietBucket")
    s3 = plumbing.client("s3")
    body = 'id;name\n1;Ann\n2;\n3;Zoë\n4;"semi;colon"\n5;Eve\n'
    s3.put_object(Bucket=bucket, Key="people/part-1.csv.gz", Body=gzip.compress(body.encode()))
    s3.put_object(Bucket=bucket, Key="people/_table.json", Body=b"{}")  # hidden from Athena
    athena = plumbing.client("athena")
    assert (
        run(athena, CREATE_TABLE.format(bucket=bucket), "plumbing_db")[0]["Status"]["State"]
        == "SUCCEEDED"
    )
    return plumbing


def test_select_runs_on_the_engine_and_pages_like_athena(people):
    athena = people.client("athena")
    execution, states = run(athena, "SELECT id, name FROM people ORDER BY id", "plumbing_db")
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    assert set(states) <= {"QUEUED", "RUNNING", "SUCCEEDED"}
    assert execution["StatementType"] == "DML"
    assert execution["Statistics"]["DataScannedInBytes"] > 0
    results = people.stack.physical_id("Results")
    query_id = execution["QueryExecutionId"]
    assert (
        execution["ResultConfiguration"]["OutputLocation"]
        == f"s3://{results}/athena/{query_id}.csv"
    )
    pages, columns = all_rows(athena, query_id, page_size=2)
    assert pages == [
        [["id", "name"], ["1", "Ann"]],
        [["2", ""], ["3", "Zoë"]],
        [["4", "semi;colon"], ["5", "Eve"]],
    ]
    assert [(c["Name"], c["Type"]) for c in columns] == [("id", "varchar"), ("name", "varchar")]
    body = (
        people.client("s3").get_object(Bucket=results, Key=f"athena/{query_id}.csv")["Body"].read()
    )
    assert body.decode().splitlines()[:2] == ['"id","name"', '"1","Ann"']


def test_ddl_is_mirrored_into_the_glue_catalog(people):
    table = people.client("glue").get_table(DatabaseName="plumbing_db", Name="people")["Table"]
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == ["id", "name"]
    bucket = people.stack.physical_id("QuietBucket")
    assert table["StorageDescriptor"]["Location"] == f"s3://{bucket}/people/"


def test_a_failing_query_reports_the_engines_reason(people):
    athena = people.client("athena")
    execution, _ = run(athena, "SELECT * FROM no_such_table", "plumbing_db")
    status = execution["Status"]
    assert status["State"] == "FAILED"
    assert "no_such_table" in status["StateChangeReason"]
    assert status["AthenaError"]["ErrorMessage"] == status["StateChangeReason"]
    with pytest.raises(
        athena.exceptions.InvalidRequestException, match="Final query state: FAILED"
    ):
        athena.get_query_results(QueryExecutionId=execution["QueryExecutionId"])


def test_results_of_an_unknown_query_are_refused(people):
    athena = people.client("athena")
    with pytest.raises(athena.exceptions.InvalidRequestException, match="was not found"):
        athena.get_query_execution(QueryExecutionId="00000000-0000-0000-0000-000000000000")


def test_a_table_reads_every_object_under_its_location_with_its_path(people):
    """Athena reads all data under a LOCATION, sub-folders included, skipping names starting
    with '_' or '.'; "$path" names each row's object, and restricts a query to some."""
    bucket = people.stack.physical_id("QuietBucket")
    s3 = people.client("s3")
    s3.put_object(Bucket=bucket, Key="shelf/a.csv.gz", Body=gzip.compress(b"id;name\n1;Ann\n"))
    s3.put_object(Bucket=bucket, Key="shelf/later/b.csv", Body=b"id;name\n2;Bob\n")
    s3.put_object(Bucket=bucket, Key="shelf/notes.tmp", Body=b"id;name\n3;stray\n")
    s3.put_object(Bucket=bucket, Key="shelf/.hidden", Body=b"id;name\n4;no\n")
    s3.put_object(Bucket=bucket, Key="shelf/_manifest", Body=b"id;name\n5;no\n")
    athena = people.client("athena")
    create = CREATE_TABLE.replace("`people`", "`shelf`").replace("/people/", "/shelf/")
    assert run(athena, create.format(bucket=bucket), "plumbing_db")[0]["Status"]["State"] == (
        "SUCCEEDED"
    )

    def rows(sql):
        execution, _ = run(athena, sql, "plumbing_db")
        assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
        return all_rows(athena, execution["QueryExecutionId"], 1000)[0][0][1:]

    assert rows('SELECT id, name, "$path" FROM shelf ORDER BY id') == [
        ["1", "Ann", f"s3://{bucket}/shelf/a.csv.gz"],
        ["2", "Bob", f"s3://{bucket}/shelf/later/b.csv"],
        ["3", "stray", f"s3://{bucket}/shelf/notes.tmp"],
    ]
    assert rows(
        f"SELECT s.id FROM shelf AS s WHERE s.\"$path\" IN ('s3://{bucket}/shelf/a.csv.gz')"
    ) == [["1"]]
    assert rows("SELECT * FROM shelf ORDER BY id")[0] == ["1", "Ann"]  # "$path" is not in *


def test_a_query_string_longer_than_athenas_limit_is_refused(people):
    athena = people.client("athena")
    head = "SELECT 1 AS x -- "
    at_limit = head + "x" * (262_144 - len(head))
    execution, _ = run(athena, at_limit, "plumbing_db")
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    with pytest.raises(
        athena.exceptions.InvalidRequestException,
        match="'queryString' failed to satisfy constraint: "
        "Member must have length less than or equal to 262144",
    ):
        athena.start_query_execution(QueryString=at_limit + "x", WorkGroup="snapcdc-wg")


def test_a_quick_query_has_ended_when_its_start_answers(people):
    """The start waits for the engine (up to ``start_wait``): a caller's first status check
    finds a quick statement done, with no sleep before it."""
    athena = people.client("athena")
    query_id = athena.start_query_execution(
        QueryString="SELECT count(*) FROM people",
        WorkGroup="snapcdc-wg",
        QueryExecutionContext={"Database": "plumbing_db"},
    )["QueryExecutionId"]
    first = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
    assert first["Status"]["State"] == "SUCCEEDED"


def test_a_start_answers_after_start_wait_when_the_query_runs_longer(people, monkeypatch):
    bridge = people.athena
    release = threading.Event()
    run_query = bridge._run

    def slow_run(execution):
        release.wait(10)
        run_query(execution)

    monkeypatch.setattr(bridge, "_run", slow_run)
    monkeypatch.setattr(bridge, "start_wait", 0.2)
    athena = people.client("athena")
    started = time.monotonic()
    query_id = athena.start_query_execution(QueryString="SELECT 1", WorkGroup="snapcdc-wg")[
        "QueryExecutionId"
    ]
    waited = time.monotonic() - started
    state = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
    release.set()
    assert 0.2 <= waited < 5
    assert state["State"] in ("QUEUED", "RUNNING")
