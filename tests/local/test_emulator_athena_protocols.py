"""The emulated Athena answers a client in whichever wire protocol its botocore speaks.

botocore up to 1.44.13 speaks Athena's ``json`` protocol, 1.44.18 ``rest-json``; the AWS CLI
brings its own. Each test gives a real botocore client one of the two models
(tests/local/data/athena-models, through a loader search path or AWS_DATA_PATH) and drives the
emulation with it: the requests really go out in that protocol (the front counts them), and
botocore's own parser for that protocol reads the answers and the errors.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError

HERE = Path(__file__).resolve().parent
MODELS = HERE / "data" / "athena-models"
REPO = HERE.parent.parent
PROTOCOLS = ("json", "rest-json")


def athena_client(protocol: str, region: str):
    """A client whose botocore loads Athena's model in ``protocol`` (a session made while the
    emulation runs gets its Athena front, as every session does)."""
    session = botocore.session.get_session()
    session.get_component("data_loader").search_paths.insert(0, str(MODELS / protocol))
    client = boto3.Session(botocore_session=session).client("athena", region_name=region)
    assert client.meta.service_model.protocol == protocol
    return client


def wait(client, query_id):
    while True:
        status = client.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        if status["Status"]["State"] not in ("QUEUED", "RUNNING"):
            return status
        time.sleep(0.01)


@pytest.fixture(scope="module")
def results(plumbing):
    return plumbing.stack.physical_id("Results")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_workgroups_queries_and_pages_in_either_protocol(plumbing, results, protocol):
    client = athena_client(protocol, plumbing.region)
    calls = dict(plumbing.athena.api.calls)
    group = f"wg-{protocol}"
    client.create_work_group(
        Name=group,
        Configuration={
            "ResultConfiguration": {"OutputLocation": f"s3://{results}/{protocol}/"},
            "EnforceWorkGroupConfiguration": True,
        },
        Description="either protocol",
    )
    described = client.get_work_group(WorkGroup=group)["WorkGroup"]
    assert described["Configuration"]["ResultConfiguration"]["OutputLocation"] == (
        f"s3://{results}/{protocol}/"
    )
    assert described["CreationTime"].year >= 2026  # a timestamp, parsed as botocore parses it
    assert group in {g["Name"] for g in client.list_work_groups()["WorkGroups"]}

    query_id = client.start_query_execution(
        QueryString="SELECT x, CAST(x * 2 AS VARCHAR) AS y FROM UNNEST(SEQUENCE(1, 5)) AS t(x)",
        WorkGroup=group,
    )["QueryExecutionId"]
    execution = wait(client, query_id)
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    assert execution["ResultConfiguration"]["OutputLocation"] == (
        f"s3://{results}/{protocol}/{query_id}.csv"
    )
    # MaxResults and NextToken travel in the query string in rest-json, in the body in json.
    rows, token = [], None
    while True:
        page = client.get_query_results(
            QueryExecutionId=query_id, MaxResults=2, **({"NextToken": token} if token else {})
        )
        rows += [[d.get("VarCharValue") for d in r["Data"]] for r in page["ResultSet"]["Rows"]]
        token = page.get("NextToken")
        if not token:
            break
    assert rows == [["x", "y"]] + [[str(i), str(i * 2)] for i in range(1, 6)]
    assert query_id in client.list_query_executions(WorkGroup=group)["QueryExecutionIds"]

    # Errors: the code and message read by botocore's own error parser for the protocol.
    with pytest.raises(ClientError) as missing:
        client.get_query_execution(QueryExecutionId="no-such-query")
    assert missing.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "no-such-query" in missing.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as primary:
        client.delete_work_group(WorkGroup="primary")
    assert primary.value.response["Error"]["Code"] == "InvalidRequestException"

    client.delete_work_group(WorkGroup=group)
    with pytest.raises(ClientError, match="is not found"):
        client.get_work_group(WorkGroup=group)
    assert plumbing.athena.api.calls[protocol] >= calls[protocol] + 12
    other = "json" if protocol == "rest-json" else "rest-json"
    assert plumbing.athena.api.calls[other] == calls[other]


def test_a_request_for_an_operation_not_served_is_refused_by_name(plumbing):
    from snapcdc_local.emulator import athena_api

    status, headers, body = athena_api.answer(
        "GET", "https://athena.us-east-1.amazonaws.com/capacity-reservations", {}, b""
    )
    assert status == 400
    assert headers["x-amzn-ErrorType"] == "UnknownOperationException"
    assert "GET /capacity-reservations" in json.loads(body)["Message"]
    status, _, body = athena_api.answer(
        "POST",
        "https://athena.us-east-1.amazonaws.com/",
        {"X-Amz-Target": "AmazonAthena.CreateNotebook"},
        b"{}",
    )
    assert (status, json.loads(body)["__type"]) == (400, "InvalidRequestException")
    assert "CreateNotebook" in json.loads(body)["Message"]


def installed_protocol() -> str:
    return botocore.session.get_session().get_service_model("athena").protocol


def test_the_pipeline_runs_with_athena_in_the_other_protocol(tmp_path):
    """The whole pipeline, its handlers' Athena clients given by AWS_DATA_PATH the model the
    installed botocore does not have (every other local test runs the installed one)."""
    protocol = next(p for p in PROTOCOLS if p != installed_protocol())
    data = tmp_path / "data" / "tenant" / "people"
    (data / "V1").mkdir(parents=True)
    (data / "V1" / "export.csv.gz").write_bytes(gzip.compress(b"id,name\n1,Ann\n2,Bob\n"))
    (data / "_table.json").write_text('{"key": ["id"]}')
    report = tmp_path / "report.json"
    env = {**os.environ, "AWS_DATA_PATH": str(MODELS / protocol)}
    done = subprocess.run(
        [sys.executable, "-m", "snapcdc_local", "local", "run", str(tmp_path / "data"),
         "--report", str(report)],
        env=env, capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (version,) = json.loads(report.read_text())["versions"]
    assert (version["status"], version["inserts"], version["applied"]) == ("SUCCEEDED", 2, 2)
