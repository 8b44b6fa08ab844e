"""What the stack tests share: the stack's physical names, handler modules, events, recorders.

A plain module rather than conftest.py, so test modules import it by a name of its own
(``from harness import ...``); ``conftest`` is a basename every test folder may have.
"""

from __future__ import annotations

import gzip
import os
import threading
import time
import uuid
from typing import Any

# Powertools reads these when a handler module is imported (at collection, below).
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "snapcdc")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "INFO")

import boto3  # noqa: E402
from stacktemplate import ACCOUNT, REGION, Call, Stack

# Imported once at collection: tests and handlers share these module objects.
from snapcdc.handlers import (
    applied_check,
    check,
    consumer,
    execution_ended,
    finish,
    hold,
    mark_failed,
    plan,
    publish,
    query,
    register,
    route,
)
from snapcdc_local.emulator.iam_actions import Where, requirements
from snapcdc_local.emulator.lambdas import LambdaContext

HANDLER_MODULES = {
    m.__name__.rsplit(".", 1)[1]: m
    for m in (
        route,
        register,
        plan,
        query,
        check,
        publish,
        finish,
        hold,
        mark_failed,
        execution_ended,
        consumer,
        applied_check,
    )
}

SM_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:pipeline"
# The reference exports' _table.json (data/tenant/test_table/): headerless, ';', four columns.
REFERENCE_CONFIG = {
    "columns": ["PK", "COL_1", "COL_2", "COL_3"],
    "key": ["PK"],
    "delimiter": ";",
    "header": False,
}


def _physical() -> dict[str, dict[str, str]]:
    def table(name: str) -> dict[str, str]:
        return {"Ref": name, "Arn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"}

    physical = {
        "ImportBucket": {"Ref": "imports", "Arn": "arn:aws:s3:::imports"},
        "ResultsBucket": {"Ref": "results", "Arn": "arn:aws:s3:::results"},
        "RegistryTable": table("registry"),
        "LockTable": table("locks"),
        "TargetTable": table("target"),
        "Stream": {"Ref": "ops", "Arn": f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/ops"},
        "AthenaWorkGroup": {"Ref": "snapcdc"},
        "StateMachine": {"Ref": SM_ARN, "Name": "pipeline"},
        "FailedBatchesBucket": {"Ref": "failed-batches", "Arn": "arn:aws:s3:::failed-batches"},
    }
    stack = Stack({})
    for name, resource in stack.resources.items():
        if resource["Type"] == "AWS::Logs::LogGroup":
            group = f"/snapcdc/{name}"
            physical[name] = {
                "Ref": group,
                "Arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}:*",
            }
        if resource["Type"] == "AWS::Lambda::Function":
            fn = f"snapcdc-{name}"
            physical[name] = {
                "Ref": fn,
                "Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{fn}",
            }
    return physical


PHYSICAL = _physical()
STACK = Stack(PHYSICAL)

# Faster loops than the template's defaults; everything else as cfn.yaml sets it.
TEST_OVERRIDES = {
    "SNAPCDC_QUERY_START_WAIT_SECONDS": "0.2",
    "SNAPCDC_LOCK_RETRY_SECONDS": "0",
    "SNAPCDC_QUERY_POLL_SECONDS": "0",
    "POWERTOOLS_LOG_LEVEL": "INFO",  # every log call runs (a bad `extra` key raises)
}


def function_environment() -> dict[str, str]:
    """The one environment every function gets, resolved with the test resource names."""
    any_function = next(iter(STACK.functions().values()))
    variables = STACK.resolve(any_function["Environment"]["Variables"])
    return {k: str(v) for k, v in variables.items()}


# ------------------------------------------------------------------ call recording

_current = threading.local()


class CallRecorder:
    """Records (handler, IAM action, resource ARN) of every call made while a handler runs.

    The action and resource of a call come from the emulation's mapping
    (:mod:`snapcdc_local.emulator.iam_actions`), so a call without a row there fails the test.
    """

    def __init__(self, session: boto3.Session, workgroup: str) -> None:
        self.calls: list[Call] = []
        # every query of these tests runs in the one workgroup
        self.where = Where(REGION, ACCOUNT, query_workgroup=lambda _query_id: workgroup)
        session.events.register("before-parameter-build", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        handler = getattr(_current, "handler", None)
        if handler is None:
            return
        service = model.service_model.service_name
        for action, resource in requirements(service, model.name, params, self.where):
            self.calls.append(Call(handler, action, resource))


def lambda_context(function_name: str = "test", remaining_ms: int = 300_000) -> LambdaContext:
    """The emulation's Lambda context, for a function with ``remaining_ms`` left from now."""
    return LambdaContext(
        function_name=function_name,
        invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}",
        memory_limit_in_mb=128,
        timeout_seconds=remaining_ms / 1000,
    )


class HeldEngine:
    """Athena's engine in the handler tests: it runs no statement (the engine is not part of
    these tests; results are supplied as data where Athena would write them), but a test can
    hold statements RUNNING until it releases them, or have the next one fail with a reason,
    as the emulated Athena reports the engine's error."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.failure: str | None = None

    def hold(self) -> None:
        self.gate.clear()

    def release(self, failure: str | None = None) -> None:
        self.failure = failure
        self.gate.set()

    def execute(self, sql: str, database: str | None = None, output_path: str | None = None):
        self.gate.wait(timeout=60)
        failure, self.failure = self.failure, None
        if failure:
            raise RuntimeError(failure)
        return None


class AwsStack:
    """The moto account of one test, with helpers to call handlers as Lambda would."""

    def __init__(self, recorder: CallRecorder, athena: Any, engine: HeldEngine) -> None:
        self.recorder = recorder
        self.athena_bridge = athena  # the emulated Athena (snapcdc_local.emulator.athena)
        self.athena_engine = engine
        self.s3 = boto3.client("s3")
        self.dynamodb = boto3.client("dynamodb")
        self.kinesis = boto3.client("kinesis")
        self.athena = boto3.client("athena")
        self.env = function_environment()

    def invoke(self, handler: str, event: Any, context: LambdaContext | None = None) -> Any:
        """Call ``snapcdc.handlers.<handler>.handler`` with its calls recorded for the IAM check."""
        _current.handler = handler
        try:
            return HANDLER_MODULES[handler].handler(event, context or lambda_context(handler))
        finally:
            _current.handler = None

    def put_export(self, key: str, text: str, bucket: str = "imports") -> dict[str, Any]:
        """Upload a gzip export; return the EventBridge event S3 would send for it."""
        body = gzip.compress(text.encode())
        put = self.s3.put_object(Bucket=bucket, Key=key, Body=body)
        return s3_event(bucket, key, len(body), put["ETag"].strip('"'))

    def stream_records(self, stream: str = "ops") -> list[dict[str, Any]]:
        shards = self.kinesis.list_shards(StreamName=stream)["Shards"]
        records = []
        for shard in shards:
            iterator = self.kinesis.get_shard_iterator(
                StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            while iterator:
                page = self.kinesis.get_records(ShardIterator=iterator, Limit=10000)
                records.extend(page["Records"])
                if not page["Records"]:
                    break
                iterator = page.get("NextShardIterator")
        return records


_SEQUENCE = iter(range(1, 1 << 30))


def s3_event(
    bucket: str, key: str, size: int, etag: str, sequencer: str | None = None
) -> dict[str, Any]:
    """An EventBridge 'Object Created' event as S3 sends it."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": REGION,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {
                "key": key,
                "size": size,
                "etag": etag,
                "sequencer": sequencer or f"{next(_SEQUENCE):018X}",
            },
            "request-id": "REQ",
            "requester": ACCOUNT,
            "reason": "PutObject",
        },
    }


def create_resources(stack: Stack) -> None:
    """The stack's data resources in moto, tables keyed as cfn.yaml declares them."""
    s3 = boto3.client("s3")
    for bucket in ("ImportBucket", "ResultsBucket"):
        s3.create_bucket(Bucket=PHYSICAL[bucket]["Ref"])
    dynamodb = boto3.client("dynamodb")
    for name in ("RegistryTable", "LockTable", "TargetTable"):
        props = stack.resources[name]["Properties"]
        dynamodb.create_table(
            TableName=PHYSICAL[name]["Ref"],
            AttributeDefinitions=props["AttributeDefinitions"],
            KeySchema=props["KeySchema"],
            BillingMode="PAY_PER_REQUEST",
        )
    boto3.client("kinesis").create_stream(StreamName="ops", ShardCount=1)
    boto3.client("athena").create_work_group(
        Name="snapcdc",
        Configuration={"ResultConfiguration": {"OutputLocation": "s3://results/athena/"}},
    )
    boto3.client("s3").create_bucket(Bucket="failed-batches")
