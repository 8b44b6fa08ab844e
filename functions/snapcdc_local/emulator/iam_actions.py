"""Which IAM action on which resource ARN each AWS API call needs: one row per operation.

``REQUIREMENTS[(service, operation)]`` gives ``(iam_action, resource)`` pairs, where resource is
a function of the call's parameters. A call with no row is refused with :class:`UnmappedCall`, so
a new call the handlers or the emulation make gets a row here (with its documentation) rather
than passing unchecked. Rows come from the Service Authorization Reference of each service:
https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html

Two S3 operations need an action of another name, as S3 documents:
``HeadObject`` needs ``s3:GetObject`` and ``HeadBucket`` needs ``s3:ListBucket``; multipart upload
parts need ``s3:PutObject``.
https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html
https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadBucket.html
https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html#mpuAndPermissions

>>> where = Where("us-east-1", "123456789012")
>>> requirements("dynamodb", "Query", {"TableName": "t", "IndexName": "i"}, where)
[('dynamodb:Query', 'arn:aws:dynamodb:us-east-1:123456789012:table/t/index/i')]
>>> requirements("s3", "HeadObject", {"Bucket": "b", "Key": "k/1"}, where)
[('s3:GetObject', 'arn:aws:s3:::b/k/1')]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

Requirement = tuple[str, str]  # (IAM action, resource ARN)


class UnmappedCall(RuntimeError):
    """An API call the emulated IAM has no rule for: add a row to ``REQUIREMENTS``."""


@dataclass
class Where:
    """The account and region calls are made in, and lookups some resources need."""

    region: str
    account: str
    # Athena authorises calls on a query against the query's workgroup.
    query_workgroup: Callable[[str], str | None] = field(default=lambda _query_id: None)


Resource = Callable[[dict[str, Any], Where], str]


def s3_bucket(params: dict[str, Any], _: Where) -> str:
    return f"arn:aws:s3:::{params['Bucket']}"


def s3_object(params: dict[str, Any], _: Where) -> str:
    return f"arn:aws:s3:::{params['Bucket']}/{params['Key']}"


def s3_copy_source(params: dict[str, Any], _: Where) -> str:
    source = params["CopySource"]
    if isinstance(source, dict):
        return f"arn:aws:s3:::{source['Bucket']}/{source['Key']}"
    return f"arn:aws:s3:::{str(source).lstrip('/').split('?', 1)[0]}"


def dynamodb_table(params: dict[str, Any], where: Where) -> str:
    name = params["TableName"]
    arn = (
        name
        if name.startswith("arn:")
        else f"arn:aws:dynamodb:{where.region}:{where.account}:table/{name}"
    )
    # A query or scan of an index is authorised on the index's ARN.
    return f"{arn}/index/{params['IndexName']}" if params.get("IndexName") else arn


def kinesis_stream(params: dict[str, Any], where: Where) -> str:
    if params.get("StreamARN"):
        return params["StreamARN"]
    if params.get("StreamName"):
        return f"arn:aws:kinesis:{where.region}:{where.account}:stream/{params['StreamName']}"
    # GetRecords names only an iterator; AWS finds the stream from it, the emulation cannot.
    raise UnmappedCall("Kinesis call without StreamARN or StreamName: pass StreamARN")


def athena_workgroup(params: dict[str, Any], where: Where) -> str:
    name = params.get("WorkGroup")
    if not name and params.get("QueryExecutionId"):
        name = where.query_workgroup(params["QueryExecutionId"])
    return f"arn:aws:athena:{where.region}:{where.account}:workgroup/{name or 'primary'}"


def lambda_function(params: dict[str, Any], where: Where) -> str:
    name = params["FunctionName"]
    arn = (
        name
        if name.startswith("arn:")
        else f"arn:aws:lambda:{where.region}:{where.account}:function:{name}"
    )
    return f"{arn}:{params['Qualifier']}" if params.get("Qualifier") else arn


def sqs_queue_url(params: dict[str, Any], where: Where) -> str:
    # https://sqs.{region}.amazonaws.com/{account}/{name}
    parts = urlparse(params["QueueUrl"]).path.strip("/").split("/")
    account, name = (parts[-2], parts[-1]) if len(parts) >= 2 else (where.account, parts[-1])
    return f"arn:aws:sqs:{where.region}:{account}:{name}"


def sqs_queue_name(params: dict[str, Any], where: Where) -> str:
    account = params.get("QueueOwnerAWSAccountId") or where.account
    return f"arn:aws:sqs:{where.region}:{account}:{params['QueueName']}"


def sns_topic(params: dict[str, Any], _: Where) -> str:
    return params["TopicArn"]


def state_machine(params: dict[str, Any], _: Where) -> str:
    return params["stateMachineArn"]


def execution(params: dict[str, Any], _: Where) -> str:
    return params["executionArn"]


def glue_database(params: dict[str, Any], where: Where) -> str:
    return f"arn:aws:glue:{where.region}:{where.account}:database/{params['Name']}"


def glue_table(params: dict[str, Any], where: Where) -> str:
    return (
        f"arn:aws:glue:{where.region}:{where.account}:table/"
        f"{params['DatabaseName']}/{params['Name']}"
    )


def anything(_params: dict[str, Any], _where: Where) -> str:
    # Actions without resource-level permissions are granted on "*" (e.g. PutMetricData).
    return "*"


def _one(action: str, resource: Resource) -> Callable[[dict[str, Any], Where], list[Requirement]]:
    return lambda params, where: [(action, resource(params, where))]


def _dynamodb_batch(action: str) -> Callable[[dict[str, Any], Where], list[Requirement]]:
    def rule(params: dict[str, Any], where: Where) -> list[Requirement]:
        tables = params.get("RequestItems") or {}
        return [(action, dynamodb_table({"TableName": t}, where)) for t in sorted(tables)]

    return rule


def dynamodb_export(params: dict[str, Any], _: Where) -> str:
    return params["ExportArn"]


def _dynamodb_export(params: dict[str, Any], where: Where) -> list[Requirement]:
    """The export action on the table, and what DynamoDB does in S3 with the caller's
    permissions: "s3:AbortMultipartUpload, s3:PutObject and s3:PutObjectAcl" on the destination
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport_Requesting.html)."""
    objects = f"arn:aws:s3:::{params['S3Bucket']}/{params.get('S3Prefix', '').strip('/')}/*"
    return [
        (
            "dynamodb:ExportTableToPointInTime",
            dynamodb_table({"TableName": params["TableArn"]}, where),
        ),
        ("s3:PutObject", objects),
        ("s3:AbortMultipartUpload", objects),
        ("s3:PutObjectAcl", objects),
    ]


def _s3_copy(params: dict[str, Any], where: Where) -> list[Requirement]:
    return [
        ("s3:GetObject", s3_copy_source(params, where)),
        ("s3:PutObject", s3_object(params, where)),
    ]


REQUIREMENTS: dict[tuple[str, str], Callable[[dict[str, Any], Where], list[Requirement]]] = {
    # S3
    ("s3", "GetObject"): _one("s3:GetObject", s3_object),
    ("s3", "HeadObject"): _one("s3:GetObject", s3_object),
    ("s3", "PutObject"): _one("s3:PutObject", s3_object),
    ("s3", "CreateMultipartUpload"): _one("s3:PutObject", s3_object),
    ("s3", "UploadPart"): _one("s3:PutObject", s3_object),
    ("s3", "CompleteMultipartUpload"): _one("s3:PutObject", s3_object),
    ("s3", "AbortMultipartUpload"): _one("s3:AbortMultipartUpload", s3_object),
    ("s3", "ListParts"): _one("s3:ListMultipartUploadParts", s3_object),
    ("s3", "DeleteObject"): _one("s3:DeleteObject", s3_object),
    ("s3", "CopyObject"): _s3_copy,
    ("s3", "ListObjectsV2"): _one("s3:ListBucket", s3_bucket),
    ("s3", "ListObjects"): _one("s3:ListBucket", s3_bucket),
    ("s3", "HeadBucket"): _one("s3:ListBucket", s3_bucket),
    ("s3", "GetBucketLocation"): _one("s3:GetBucketLocation", s3_bucket),
    ("s3", "ListMultipartUploads"): _one("s3:ListBucketMultipartUploads", s3_bucket),
    # DynamoDB
    **{
        ("dynamodb", op): _one(f"dynamodb:{op}", dynamodb_table)
        for op in (
            "GetItem",
            "PutItem",
            "UpdateItem",
            "DeleteItem",
            "Query",
            "Scan",
            "DescribeTable",
        )
    },
    ("dynamodb", "BatchWriteItem"): _dynamodb_batch("dynamodb:BatchWriteItem"),
    ("dynamodb", "ExportTableToPointInTime"): _dynamodb_export,
    ("dynamodb", "DescribeExport"): _one("dynamodb:DescribeExport", dynamodb_export),
    ("dynamodb", "ListExports"): _one("dynamodb:ListExports", anything),
    ("dynamodb", "BatchGetItem"): _dynamodb_batch("dynamodb:BatchGetItem"),
    # Kinesis
    **{
        ("kinesis", op): _one(f"kinesis:{op}", kinesis_stream)
        for op in (
            "PutRecord",
            "PutRecords",
            "GetRecords",
            "GetShardIterator",
            "ListShards",
            "DescribeStream",
            "DescribeStreamSummary",
        )
    },
    # Athena
    **{
        ("athena", op): _one(f"athena:{op}", athena_workgroup)
        for op in (
            "StartQueryExecution",
            "GetQueryExecution",
            "GetQueryResults",
            "StopQueryExecution",
            "ListQueryExecutions",
        )
    },
    # Glue
    ("glue", "GetDatabase"): _one("glue:GetDatabase", glue_database),
    ("glue", "GetTable"): _one("glue:GetTable", glue_table),
    # Step Functions (botocore's service name is "stepfunctions", the IAM prefix "states")
    ("stepfunctions", "StartExecution"): _one("states:StartExecution", state_machine),
    ("stepfunctions", "DescribeExecution"): _one("states:DescribeExecution", execution),
    ("stepfunctions", "StopExecution"): _one("states:StopExecution", execution),
    # Lambda
    ("lambda", "Invoke"): _one("lambda:InvokeFunction", lambda_function),
    # SQS, SNS, CloudWatch
    ("sqs", "SendMessage"): _one("sqs:SendMessage", sqs_queue_url),
    ("sqs", "GetQueueUrl"): _one("sqs:GetQueueUrl", sqs_queue_name),
    ("sns", "Publish"): _one("sns:Publish", sns_topic),
    ("cloudwatch", "PutMetricData"): _one("cloudwatch:PutMetricData", anything),
    # GetCallerIdentity needs no permission: "No permissions are required to perform this
    # operation." https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html
    ("sts", "GetCallerIdentity"): lambda _params, _where: [],
}


def requirements(
    service: str, operation: str, params: dict[str, Any], where: Where
) -> list[Requirement]:
    """The (action, resource) pairs one call needs; :class:`UnmappedCall` if it has no row."""
    rule = REQUIREMENTS.get((service, operation))
    if rule is None:
        raise UnmappedCall(
            f"the emulated IAM has no rule for {service}:{operation}; add a row to "
            "snapcdc_local.emulator.iam_actions.REQUIREMENTS"
        )
    return rule(params, where)


def request_context(
    service: str, operation: str, params: dict[str, Any]
) -> tuple[tuple[str, str], ...]:
    """The condition keys a request carries that this stack's policies test (lowercase names).

    >>> request_context("cloudwatch", "PutMetricData", {"Namespace": "snapcdc"})
    (('cloudwatch:namespace', 'snapcdc'),)
    >>> request_context("s3", "GetObject", {"Bucket": "b", "Key": "k"})
    ()
    """
    if (service, operation) == ("cloudwatch", "PutMetricData"):
        # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/iam-cw-condition-keys-namespace.html
        return (("cloudwatch:namespace", str(params.get("Namespace", ""))),)
    return ()
