"""The emulation's DynamoDB table exports, as AWS writes them (S3DataExport.Output), read back
with boto3 and with the verify's own reader (``snapcdc.aws.exports``)."""

from __future__ import annotations

import gzip
import json
import re

import boto3
import pytest
from botocore.exceptions import ClientError

from snapcdc.aws.exports import data_files, describe_export, read_items, request_export
from snapcdc_local.emulator import dynamodb_exports

REGION = "us-east-1"


@pytest.fixture
def aws():
    from moto import mock_aws

    with mock_aws(), dynamodb_exports.installed() as exports:
        ddb = boto3.client("dynamodb", region_name=REGION)
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="results")
        arn = ddb.create_table(
            TableName="target",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )["TableDescription"]["TableArn"]
        yield ddb, s3, arn, exports


def put(ddb, pk, **values):
    item = {"pk": {"S": pk}, **{k: v for k, v in values.items()}}
    ddb.put_item(TableName="target", Item=item)


def test_an_export_needs_point_in_time_recovery(aws):
    ddb, _, arn, _ = aws
    with pytest.raises(ClientError) as raised:
        request_export(ddb, arn, "results", "verify/x", "token-1")
    assert raised.value.response["Error"]["Code"] == "PointInTimeRecoveryUnavailableException"


def test_an_export_is_the_table_at_the_request_with_its_manifests(aws):
    ddb, s3, arn, _ = aws
    ddb.update_continuous_backups(
        TableName="target",
        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
    )
    items = {f"t/x#{i}": {"pk": {"S": f"t/x#{i}"}, "n": {"S": str(i)}} for i in range(25)}
    items["t/x#null"] = {"pk": {"S": "t/x#null"}, "row": {"M": {"a": {"NULL": True}}}}
    for item in items.values():
        ddb.put_item(TableName="target", Item=item)
    started = request_export(ddb, arn, "results", "verify/run", "token-1")
    put(ddb, "t/x#late", n={"S": "after the request"})
    assert started["ExportStatus"] == "IN_PROGRESS"
    assert re.fullmatch(re.escape(arn) + r"/export/\d{14}-[0-9a-f]{8}", started["ExportArn"])
    # the same client token is the same export
    assert (
        request_export(ddb, arn, "results", "verify/run", "token-1")["ExportArn"]
        == (started["ExportArn"])
    )
    described = describe_export(ddb, started["ExportArn"])
    assert (described["ExportStatus"], described["ItemCount"]) == ("COMPLETED", 26)
    export_id = started["ExportArn"].rsplit("/", 1)[1]
    base = f"verify/run/AWSDynamoDB/{export_id}/"
    assert described["ExportManifest"] == base + "manifest-summary.json"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="results")["Contents"]}
    manifests = ("manifest-summary.json", "manifest-files.json", "manifest-summary.checksum",
                 "manifest-files.checksum", "_started")  # fmt: skip
    assert {base + name for name in manifests} <= keys
    summary, files = data_files(s3, "results", described["ExportManifest"])
    assert summary["exportArn"] == started["ExportArn"] and summary["itemCount"] == 26
    assert summary["outputFormat"] == "DYNAMODB_JSON" and summary["exportType"] == "FULL_EXPORT"
    assert len(files) == dynamodb_exports.PARTITIONS
    assert all(f["dataFileS3Key"].startswith(base + "data/") for f in files)
    assert all(f["dataFileS3Key"].endswith(".json.gz") for f in files)
    exported = [i for f in files for i in read_items(s3, "results", f["dataFileS3Key"])]
    assert sorted(exported, key=lambda i: i["pk"]["S"]) == sorted(
        items.values(), key=lambda i: i["pk"]["S"]
    )
    # each line is {"Item": ...} in DynamoDB JSON, and each file's count is its lines'
    for entry in files:
        body = s3.get_object(Bucket="results", Key=entry["dataFileS3Key"])["Body"].read()
        lines = gzip.decompress(body).decode().splitlines()
        assert len(lines) == entry["itemCount"]
        assert all(set(json.loads(line)) == {"Item"} for line in lines)


def test_a_past_export_time_is_refused_not_faked(aws):
    ddb, _, arn, _ = aws
    ddb.update_continuous_backups(
        TableName="target",
        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
    )
    with pytest.raises(ClientError) as raised:
        ddb.export_table_to_point_in_time(
            TableArn=arn, S3Bucket="results", S3Prefix="p", ExportTime=1_700_000_000
        )
    assert "ExportTime" in raised.value.response["Error"]["Message"]


def test_a_missing_bucket_fails_the_export_not_the_request(aws):
    ddb, _, arn, _ = aws
    ddb.update_continuous_backups(
        TableName="target",
        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
    )
    started = request_export(ddb, arn, "no-such-bucket", "p", "token-2")
    from snapcdc.model.errors import ExportFailed

    with pytest.raises(ExportFailed, match="S3NoSuchBucket"):
        describe_export(ddb, started["ExportArn"])
