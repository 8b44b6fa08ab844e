"""Query (start/poll in Athena's workgroup) and Check (judging the export check's result)."""

from __future__ import annotations

import csv

import pytest

from snapcdc.model.errors import ExportCheckFailed, QueryFailed, ResultFormatError
from snapcdc.sql.queries import CHECK_COLUMNS

EXEC = "arn:aws:states:us-east-1:123456789012:execution:pipeline:q"
QUERY = {"name": "delta", "kind": "ops", "sql": "SELECT 1"}


@pytest.fixture
def slow_athena(aws):
    """Athena's statements stay RUNNING until the test releases them (the emulated Athena
    answers the start without waiting for them)."""
    aws.athena_bridge.start_wait = 0
    aws.athena_engine.hold()
    yield aws.athena_engine
    aws.athena_engine.release()


def ended(aws, status):
    """Wait (on the statement itself, not a clock) until the emulated Athena has ended it."""
    aws.athena_bridge._futures[status["query_id"]].result(timeout=60)


def start(aws, query=QUERY, index=0):
    return aws.invoke(
        "query", {"action": "start", "query": query, "index": index, "execution_arn": EXEC}
    )


def poll(aws, status, query=QUERY):
    return aws.invoke("query", {"action": "poll", "query": query, "status": status})


def test_small_statement_finishes_within_the_start_call(aws):
    status = start(aws)

    assert status["state"] == "SUCCEEDED"
    assert status["output_location"] == f"s3://results/athena/{status['query_id']}.csv"
    execution = aws.athena.get_query_execution(QueryExecutionId=status["query_id"])[
        "QueryExecution"
    ]
    assert execution["WorkGroup"] == "snapcdc"
    assert execution["Query"] == "SELECT 1"
    assert (status["name"], status["kind"]) == ("delta", "ops")


def test_long_statement_is_read_from_s3(aws):
    sql = "SELECT " + ", ".join(f"'{i}' AS c{i}" for i in range(2000))
    aws.s3.put_object(Bucket="results", Key="plans/run/05-delta.sql", Body=sql.encode())
    query = {"name": "delta", "kind": "ops", "sql_location": "s3://results/plans/run/05-delta.sql"}

    status = start(aws, query, index=5)

    execution = aws.athena.get_query_execution(QueryExecutionId=status["query_id"])
    assert execution["QueryExecution"]["Query"] == sql


def test_slow_statement_is_handed_to_the_poll_loop(aws, slow_athena, monkeypatch):
    monkeypatch.setenv("SNAPCDC_QUERY_START_WAIT_SECONDS", "0")
    status = start(aws)
    states = [status["state"], poll(aws, status)["state"], poll(aws, status)["state"]]
    slow_athena.release()
    ended(aws, status)
    states.append(poll(aws, status)["state"])

    assert set(states[:3]) <= {"QUEUED", "RUNNING"}
    assert states[-1] == "SUCCEEDED"


def test_failed_statement_raises_with_athenas_reason(aws, slow_athena, monkeypatch):
    monkeypatch.setenv("SNAPCDC_QUERY_START_WAIT_SECONDS", "0")
    status = start(aws)
    slow_athena.release(failure="HIVE_BAD_DATA: Error parsing field value 'x' for field 1")
    ended(aws, status)

    with pytest.raises(QueryFailed) as failed:
        poll(aws, status)

    assert str(failed.value) == (
        f"Athena statement delta ({status['query_id']}) FAILED: "
        "HIVE_BAD_DATA: Error parsing field value 'x' for field 1"
    )


def test_cancelled_statement_without_reason(aws, slow_athena, monkeypatch):
    monkeypatch.setenv("SNAPCDC_QUERY_START_WAIT_SECONDS", "0")
    start(aws)  # holds the engine's one worker: the next statement stays QUEUED
    status = start(aws, index=1)
    aws.athena.stop_query_execution(QueryExecutionId=status["query_id"])
    aws.athena_bridge.executions[status["query_id"]].reason = None  # Athena may give none

    with pytest.raises(QueryFailed, match=r"CANCELLED: no reason given"):
        poll(aws, status)


def test_unknown_action_is_refused(aws):
    with pytest.raises(ValueError, match="unknown action 'stop'"):
        aws.invoke("query", {"action": "stop", "query": QUERY})


# ------------------------------------------------------------------ check

HEADER = ",".join(f'"{c}"' for c in CHECK_COLUMNS) + "\n"
SIZES = ',"420","PK1","1950","PK1","131","PK1"'  # the largest row fits every AWS limit
CLEAN = ',"0",,,,"2",,,'  # no line without fields, so no samples of bad rows


def check(aws, body: str):
    aws.s3.put_object(Bucket="results", Key="athena/check.csv", Body=body.encode())
    status = {
        "name": "check_export",
        "kind": "check",
        "query_id": "q1",
        "output_location": "s3://results/athena/check.csv",
    }
    return aws.invoke("check", {"status": status, "table_id": "tenant/t", "version": "v1"})


def test_clean_export_passes_with_its_row_count(aws):
    assert check(aws, HEADER + '"100000","0",,"0","0"' + SIZES + CLEAN + "\n") == {
        "row_count": 100000
    }


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            '"5","2","PK1, PK3","0","0"',
            "export check failed: 2 duplicate key(s), e.g. PK1, PK3",
        ),
        ('"5","0",,"1","0"', "export check failed: 1 row(s) with an empty key"),
        ('"5","0",,"0","3"', "export check failed: 3 row(s) with a wrong number of fields"),
        (
            '"5","1","PK1","2","1"',
            "export check failed: 1 duplicate key(s), e.g. PK1; 2 row(s) with an empty key; "
            "1 row(s) with a wrong number of fields",
        ),
        (
            '"5","0",,"0","0","420","PK1","1950","PK1","2177","PK9"',
            "export check failed: row with key PK9 is up to 2,177 bytes as the target item's "
            "partition key (tenant/table#key); DynamoDB partition keys are limited to 2,048 bytes "
            "(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html)",
        ),
    ],
)
def test_bad_export_fails_naming_every_problem(aws, row, message):
    if len(next(csv.reader([row]))) == 5:  # the data checks only: the sizes fit
        row += SIZES
    row += CLEAN
    with pytest.raises(ExportCheckFailed) as failed:
        check(aws, HEADER + row + "\n")
    assert str(failed.value) == message


def test_check_result_of_the_wrong_shape_is_refused(aws):
    with pytest.raises(ResultFormatError, match="check result columns"):
        check(aws, '"a","b","c","d","e"\n"1","0",,"0","0"\n')
