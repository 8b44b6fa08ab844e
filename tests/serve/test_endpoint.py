"""``snapcdc local serve`` as any AWS client meets it: boto3 and raw HTTP against the endpoint.

One served emulation (an empty account) for the module, started as a user starts it and
stopped with SIGTERM (the ``served`` fixture checks the exit status 0). What is checked: IAM
decides the calls of an assumed role as AWS would; a Lambda function runs the code that was
deployed, not this checkout's; requests that change state never run at once; malformed and
unsigned requests get AWS-shaped errors and the server keeps serving; Athena answers both wire
protocols botocore speaks.
"""

from __future__ import annotations

import http.client
import io
import json
import socket
import subprocess
import sys
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError

REPO = Path(__file__).resolve().parents[2]
ATHENA_MODELS = REPO / "tests" / "local" / "data" / "athena-models"
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
             "Action": "sts:AssumeRole"}
        ],
    }
)  # fmt: skip

# A deployment package this checkout cannot have written: its own snapcdc package, with a
# module (snapcdc.model.deployed_marker) that exists only here. The handler counts the
# invocations running at once: it waits (at most WAIT seconds) for a second one to arrive.
PROBE = """
import threading
from snapcdc.model.deployed_marker import MARKER

_lock = threading.Lock()
_running = [0]
_second = threading.Event()

def handler(event, context):
    with _lock:
        _running[0] += 1
        if _running[0] > 1:
            _second.set()
    try:
        _second.wait(event.get("wait", 0))
        with _lock:
            seen = _running[0]
        from snapcdc.model import deployed_marker  # imported inside a function, too
        return {"marker": MARKER, "again": deployed_marker.MARKER, "running": seen,
                "module": __name__}
    finally:
        with _lock:
            _running[0] -= 1
"""
WAIT = 1.0


def deployment_package() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("snapcdc/__init__.py", "")
        archive.writestr("snapcdc/model/__init__.py", "")
        archive.writestr("snapcdc/model/deployed_marker.py", "MARKER = 'from the deployed zip'\n")
        archive.writestr("snapcdc/handlers/__init__.py", "")
        archive.writestr("snapcdc/handlers/probe.py", PROBE)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def probe(served):
    iam = served.client("iam")
    role = iam.create_role(RoleName="probe-role", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    served.client("lambda").create_function(
        FunctionName="probe",
        Runtime="python3.12",
        Role=role,
        Handler="snapcdc.handlers.probe.handler",
        Code={"ZipFile": deployment_package()},
        Timeout=30,
    )
    return "probe"


def invoke(served, name: str, event: dict) -> dict:
    response = served.client("lambda").invoke(FunctionName=name, Payload=json.dumps(event))
    assert "FunctionError" not in response, response["Payload"].read()
    return json.loads(response["Payload"].read())


def test_a_function_runs_the_code_that_was_deployed(served, probe):
    answer = invoke(served, probe, {})
    assert answer["marker"] == answer["again"] == "from the deployed zip"
    assert answer["module"].startswith("snapcdc_deployed_")  # beside this process's snapcdc


def test_requests_that_change_state_never_run_at_once(served, probe):
    # Two invokes sent together: served one after the other, each sees itself alone.
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: invoke(served, probe, {"wait": WAIT}), range(2)))
    assert [a["running"] for a in answers] == [1, 1]


def test_concurrent_clients_leave_consistent_state(served):
    s3, dynamodb = served.client("s3"), served.client("dynamodb")
    s3.create_bucket(Bucket="concurrent")
    dynamodb.create_table(
        TableName="counters",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    def work(n: int) -> None:
        client_s3, client_db = served.client("s3"), served.client("dynamodb")
        for i in range(10):
            client_s3.put_object(Bucket="concurrent", Key=f"k/{n}/{i}", Body=b"x" * n)
            client_db.update_item(
                TableName="counters",
                Key={"id": {"S": "c"}},
                UpdateExpression="ADD n :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
            client_s3.list_objects_v2(Bucket="concurrent", Prefix="k/")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))
    item = dynamodb.get_item(TableName="counters", Key={"id": {"S": "c"}}, ConsistentRead=True)
    assert item["Item"]["n"] == {"N": "80"}
    keys = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket="concurrent")
            for o in p.get("Contents", [])]  # fmt: skip
    assert len(keys) == 80


def test_a_streamed_upload_stores_the_payload(served):
    # SigV4 streaming (aws-chunked), as SDKs that stream an upload send it; botocore over
    # plain HTTP puts the checksum in a header instead, so the request is written here.
    served.client("s3").create_bucket(Bucket="streamed")
    payload = bytes(range(256)) * 300
    chunks = [payload[i : i + 65536] for i in range(0, len(payload), 65536)]
    body = b"".join(b"%x;chunk-signature=0\r\n%s\r\n" % (len(c), c) for c in chunks)
    body += b"0;chunk-signature=0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n"
    headers = {
        "Authorization": SIGNED.replace("/dynamodb/", "/s3/"),
        "Content-Encoding": "aws-chunked",
        "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "x-amz-decoded-content-length": str(len(payload)),
        "x-amz-trailer": "x-amz-checksum-crc32",
    }
    status, _, answer = raw(served, "PUT", "/streamed/a.bin", body, headers)
    assert status == 200, answer
    stored = served.client("s3").get_object(Bucket="streamed", Key="a.bin")
    assert stored["Body"].read() == payload
    assert "ContentEncoding" not in stored  # aws-chunked is the transfer's, not the object's


def test_an_assumed_role_gets_only_what_its_policy_allows(served):
    s3, iam = served.client("s3"), served.client("iam")
    s3.create_bucket(Bucket="readable")
    s3.put_object(Bucket="readable", Key="a.txt", Body=b"hello")
    role = iam.create_role(RoleName="reader", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    iam.put_role_policy(
        RoleName="reader",
        PolicyName="read-one-bucket",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "s3:GetObject",
                     "Resource": "arn:aws:s3:::readable/*"}
                ],
            }
        ),
    )  # fmt: skip
    creds = served.client("sts").assume_role(RoleArn=role, RoleSessionName="op")["Credentials"]
    as_reader = {
        "key": creds["AccessKeyId"],
        "secret": creds["SecretAccessKey"],
        "token": creds["SessionToken"],
    }
    reader_s3 = served.client("s3", **as_reader)
    assert reader_s3.get_object(Bucket="readable", Key="a.txt")["Body"].read() == b"hello"

    with pytest.raises(ClientError) as denied:
        reader_s3.put_object(Bucket="readable", Key="b.txt", Body=b"no")
    error = denied.value.response
    assert error["Error"]["Code"] == "AccessDenied"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Error"]["Message"] == (
        "User: arn:aws:sts::123456789012:assumed-role/reader/op is not authorized to perform: "
        "s3:PutObject on resource: arn:aws:s3:::readable/b.txt because no identity-based "
        "policy allows the s3:PutObject action"
    )
    with pytest.raises(ClientError) as denied:
        served.client("dynamodb", **as_reader).list_tables()
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert s3.list_objects_v2(Bucket="readable")["KeyCount"] == 1  # nothing was written


def raw(served, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    parts = urlsplit(served.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    return response.status, dict(response.getheaders()), response.read()


SIGNED = (
    "AWS4-HMAC-SHA256 Credential=test/20261208/us-east-1/dynamodb/aws4_request, "
    "SignedHeaders=host, Signature=0"
)


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "code"),
    [
        ("GET", "/", b"", {}, 403, "MissingAuthenticationToken"),
        ("PUT", "/bucket/key", b"x", {"Authorization": "Basic dXNlcg=="}, 400,
         "IncompleteSignature"),
        ("POST", "/", b"{not json", {"Authorization": SIGNED,
         "X-Amz-Target": "DynamoDB_20120810.ListTables"}, 400, "SerializationException"),
        ("POST", "/", b"{}", {"Authorization": SIGNED,
         "X-Amz-Target": "DynamoDB_20120810.NoSuchThing"}, 400, "UnknownOperationException"),
        ("POST", "/", b'{"TableName": 5}', {"Authorization": SIGNED,
         "X-Amz-Target": "DynamoDB_20120810.DescribeTable"}, 400, "ValidationException"),
        ("POST", "/", b"{}", {"Authorization": SIGNED.replace("us-east-1", "eu-west-1"),
         "X-Amz-Target": "DynamoDB_20120810.ListTables"}, 403, "InvalidClientTokenId"),
    ],
)  # fmt: skip
def test_bad_requests_get_aws_shaped_errors_and_the_server_keeps_serving(
    served, method, path, body, headers, status, code
):
    got, answer_headers, _ = raw(served, method, path, body, headers)
    assert (got, answer_headers.get("x-amzn-ErrorType")) == (status, code)
    assert served.client("sts").get_caller_identity()["Account"] == "123456789012"


def test_a_port_in_use_is_one_line_and_exit_1(served):
    port = str(urlsplit(served.url).port)
    done = subprocess.run(
        [sys.executable, "-m", "snapcdc_local", "local", "serve", "--port", port],
        env=served.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        f"snapcdc local: error: cannot listen on 127.0.0.1:{port}: Address already in use "
        "(another server there? --port 0 takes a free port)\n"
    )


def test_virtual_host_addressing_under_localhost(served):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    served.client("s3").create_bucket(Bucket="virtual-host")
    port = urlsplit(served.url).port
    request = AWSRequest(method="PUT", url=f"http://virtual-host.localhost:{port}/a/b.txt",
                         data=b"hi", headers={"Content-Type": "text/plain"})  # fmt: skip
    SigV4Auth(Credentials("test", "test"), "s3", "us-east-1").add_auth(request)
    headers = {**request.headers, "Host": f"virtual-host.localhost:{port}"}
    status, _, _ = raw(served, "PUT", "/a/b.txt", b"hi", headers)
    assert status == 200
    body = served.client("s3").get_object(Bucket="virtual-host", Key="a/b.txt")["Body"].read()
    assert body == b"hi"


def test_a_malformed_http_request_line_is_refused_and_the_server_keeps_serving(served):
    parts = urlsplit(served.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as s:
        s.sendall(b"NONSENSE\r\n\r\n")
        answer = b""
        while chunk := s.recv(4096):  # the server closes the connection after it
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400") and b"<Code>BadRequest</Code>" in answer
    assert served.client("sts").get_caller_identity()["Account"] == "123456789012"


@pytest.mark.parametrize("protocol", ["json", "rest-json"])
def test_athena_answers_the_protocol_the_client_speaks(served, protocol):
    session = botocore.session.get_session()
    session.get_component("data_loader").search_paths.insert(0, str(ATHENA_MODELS / protocol))
    athena = boto3.Session(
        botocore_session=session,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    ).client("athena", endpoint_url=served.url)
    assert athena.meta.service_model.protocol == protocol
    served.client("s3").create_bucket(Bucket=f"results-{protocol}")
    athena.create_work_group(
        Name=f"wg-{protocol}",
        Configuration={"ResultConfiguration": {"OutputLocation": f"s3://results-{protocol}/"}},
    )
    query = athena.start_query_execution(
        QueryString="SELECT x FROM UNNEST(SEQUENCE(1, 3)) AS t(x)", WorkGroup=f"wg-{protocol}"
    )["QueryExecutionId"]
    deadline = time.monotonic() + 60
    while (state := athena.get_query_execution(QueryExecutionId=query)["QueryExecution"])["Status"][
        "State"
    ] in ("QUEUED", "RUNNING"):
        assert time.monotonic() < deadline
        threading.Event().wait(0.05)
    assert state["Status"]["State"] == "SUCCEEDED", state["Status"]
    rows = athena.get_query_results(QueryExecutionId=query)["ResultSet"]["Rows"]
    assert [r["Data"][0].get("VarCharValue") for r in rows] == ["x", "1", "2", "3"]
    with pytest.raises(ClientError) as missing:
        athena.get_query_execution(QueryExecutionId="no-such-query")
    assert missing.value.response["Error"]["Code"] == "InvalidRequestException"
