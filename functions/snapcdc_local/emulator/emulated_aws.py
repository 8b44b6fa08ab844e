"""One emulated AWS account running a CloudFormation stack in this process.

:class:`Emulator` starts moto, installs the bridges for what moto does not do by itself, and
deploys the template like ``aws cloudformation package`` + ``deploy`` would:

==========================  =================================================================
gap in moto                 bridged by
==========================  =================================================================
Lambda invoke (no docker)   :mod:`.lambdas`: the handler in ``functions/`` runs in process
Athena runs no query        :mod:`.athena`: the DuckDB engine runs it, results land in S3
CFN skips some resources    :mod:`.cfn_models`: Athena workgroup, Glue database, executable
                            state machine with ``DefinitionSubstitutions``
CFN ignores bucket          :func:`.cfn.apply_bucket_notifications`
notifications
S3 -> EventBridge -> SFN    :mod:`.eventbridge`: the S3 event as AWS sends it, rule matching,
                            ``StartExecution`` without a name; Lambda targets invoked
                            asynchronously (``settle`` waits for them)
unnamed executions,         :mod:`.stepfunctions`: a UUID name like AWS; "Execution Status
no status-change events,    Change" events to EventBridge; StopExecution aborts at once
StopExecution lags          with its error and cause
States.ALL catches all,     :mod:`.stepfunctions_limits`: DataLimitExceeded and Runtime
no history-event quota      escape States.ALL; FAILED at the 25,000th history event
no Kinesis ESM poller       :mod:`.kinesis_poller`: polls shards, batches, retries, bisects, the
(moto pushes each record    on-failure destination (S3 objects with the records, as AWS);
through docker instead)     moto's push switched off; shards thread-safe and indexed
no Kinesis write limits     :mod:`.kinesis`: PutRecords' request limits, 1 MiB/s and 1,000
                            records/s per shard (per-record throttling)
slow item reads             :mod:`.dynamodb`: Scan/Query/GetItem answered with ``json``
exports without manifests   :mod:`.dynamodb_exports`: a table export as AWS writes it
slow dispatch               :mod:`.fastpath`: DynamoDB, Kinesis and Lambda calls handed to
                            moto's methods without signing, URL scan and HTTP; a plain PutItem
                            to moto's backend (:mod:`.dynamodb_direct`)
no IAM enforcement          :mod:`.iam`: every call of a Lambda, the state machine, an
                            EventBridge target, an event source mapping or Athena is
                            authorised against its role's deployed policies
==========================  =================================================================

Every bridge reads its configuration from the deployed stack (rule patterns and targets,
mapping settings, function environment), never from a copy of it.

Usage::

    with Emulator(Path("cfn.yaml"), parameters={"QueryPollSeconds": "1"}) as aws:
        aws.client("s3").put_object(Bucket=aws.stack.physical_id("ImportBucket"), ...)
        aws.settle()
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from unittest import mock

import boto3

from snapcdc_local.emulator import (
    cfn,
    cfn_models,
    dynamodb,
    dynamodb_exports,
    fastpath,
    iam,
    kinesis,
    stepfunctions,
)
from snapcdc_local.emulator.athena import START_WAIT_SECONDS, AthenaBridge, EngineLike
from snapcdc_local.emulator.eventbridge import EventBridgeBridge
from snapcdc_local.emulator.iam_actions import Where
from snapcdc_local.emulator.kinesis_poller import KinesisPoller
from snapcdc_local.emulator.lambda_code import DeployedCode
from snapcdc_local.emulator.lambdas import LambdaRuntime
from snapcdc_local.emulator.s3files import S3Files

log = logging.getLogger(__name__)

MOTO_CONFIG = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
    # moto's "core" defaults, but Athena passed through moto's stubber: the emulation's own
    # front answers it first (.athena_api), so moto must not act on the same request.
    # (moto replaces the whole "core" section with this one: every key is given.)
    "core": {
        "mock_credentials": True,
        "passthrough": {"urls": [], "services": ["athena"]},
        "reset_boto3_session": True,
        "service_whitelist": None,
    },
}
ARTIFACTS_BUCKET = "snapcdc-local-artifacts"


@functools.cache
def _loader() -> Any:
    # As a session makes it: AWS_DATA_PATH's models first (a test gives Athena either protocol).
    from botocore.loaders import create_loader

    return create_loader(os.environ.get("AWS_DATA_PATH"))


def default_engine_factory(resolve_location: Callable[[str], list[str]]) -> EngineLike:
    from snapcdc_local.engine.engine import AthenaEngine

    return AthenaEngine(resolve_location)


class Emulator:
    """moto + bridges + the deployed stack; a context manager (see the module docstring)."""

    def __init__(
        self,
        template: Path | None,
        *,
        parameters: dict[str, str] | None = None,
        stack_name: str = "snapcdc",
        region: str = "us-east-1",
        engine_factory: Callable[[Callable[[str], list[str]]], EngineLike] = default_engine_factory,
        athena_workers: int = 1,
        athena_start_wait: float = START_WAIT_SECONDS,
        poll_kinesis_in_background: bool = True,
        lambda_code: Path | None = None,
        deployed_code: bool = False,
    ) -> None:
        self.template_path = Path(template) if template is not None else None
        self.parameters = dict(parameters or {})
        self.stack_name = stack_name
        self.region = region
        self.engine_factory = engine_factory
        self.athena_workers = athena_workers
        self.athena_start_wait = athena_start_wait
        self.poll_kinesis_in_background = poll_kinesis_in_background
        self.lambda_code = lambda_code
        self.deployed_code = deployed_code
        self._exit = ExitStack()
        self.stack: cfn.Stack
        self.lambdas: LambdaRuntime
        self.events: EventBridgeBridge
        self.athena: AthenaBridge
        self.kinesis: KinesisPoller
        self.iam: iam.Authorizer
        self.fast_path: fastpath.FastPath

    # -- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> Emulator:
        try:
            self._start()
        except BaseException:
            self._exit.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._exit.close()

    def _start(self) -> None:
        from moto import mock_aws

        enter = self._exit.enter_context
        # Lambdas write their environment into os.environ; give it back afterwards. The
        # emulation's own clients are answered in process: an endpoint the caller's environment
        # names (AWS_ENDPOINT_URL, a profile's endpoint_url) is not for them.
        enter(mock.patch.dict(os.environ, {"AWS_DEFAULT_REGION": self.region}))
        for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL")]:
            del os.environ[name]
        os.environ["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "true"
        enter(mock_aws(config=MOTO_CONFIG))
        # moto starts a new default session; every one would read botocore's service models
        # from disk again (a third of a deploy's time): they are the same files, read once.
        boto3._get_default_session()._session.register_component("data_loader", _loader())
        account_id = boto3.client("sts", region_name=self.region).get_caller_identity()["Account"]
        self.account_id = account_id
        scratch = Path(enter(tempfile.TemporaryDirectory(prefix="snapcdc-emulator-")))
        # First, so that every client the stack's code creates from now on is checked.
        self.iam = enter(
            iam.Authorizer(Where(self.region, account_id, self._query_workgroup)).installed(
                boto3._get_default_session()
            )
        )

        # After IAM (registered first, so it authorises every call the fast path answers).
        self.fast_path = enter(fastpath.installed(boto3._get_default_session()))
        enter(cfn_models.installed())
        self.events = EventBridgeBridge()
        enter(stepfunctions.installed(on_status_change=self.events.put_event))
        enter(kinesis.installed())
        enter(dynamodb.installed())
        self.dynamodb_exports = enter(dynamodb_exports.installed())
        deployed = DeployedCode(scratch / "lambda") if self.deployed_code else None
        self.lambdas = enter(LambdaRuntime(deployed).installed())
        enter(self.events.installed())
        files = S3Files(scratch / "s3", self.region)
        self.athena = enter(
            AthenaBridge(
                self.engine_factory,
                files.resolve,
                self.region,
                account_id,
                self.athena_workers,
                authorizer=self.iam,
                start_wait=self.athena_start_wait,
            ).installed(boto3._get_default_session())
        )

        self.kinesis = KinesisPoller(self.region)
        if self.template_path is not None:
            template = cfn.load_template(self.template_path)
            self.client("s3").create_bucket(Bucket=ARTIFACTS_BUCKET)
            packaged = cfn.package(
                template, self.template_path.parent, ARTIFACTS_BUCKET, self.region, self.lambda_code
            )
            self.stack = cfn.deploy(packaged, self.stack_name, self.region, self.parameters)
            cfn.apply_bucket_notifications(self.stack)
            self.kinesis.discover()
            for mapping in self.kinesis.mappings.values():
                try:
                    iam.check_event_source_mapping(
                        self.iam, mapping.role_arn, mapping.function_arn, mapping.stream_arn
                    )
                except ValueError as exc:
                    raise cfn.DeployError(f"CreateEventSourceMapping failed: {exc}") from None
        if self.poll_kinesis_in_background:
            self.kinesis.start()
            self._exit.callback(self.kinesis.stop)

    def stacks_changed(self) -> list[str]:
        """Apply to the stacks as they are now what CloudFormation would have done with them
        (called after a stack was created, updated or deleted from outside, through the served
        endpoint): bucket notifications set, event source mappings polled or forgotten.

        Returns one line per thing that could not be done: a resource the emulation cannot
        create, an event source mapping Lambda would have refused (its role cannot read the
        stream; such a mapping is not polled).
        """
        refused = []
        for name, template in cfn.live_stacks(self.account_id, self.region):
            try:
                cfn.apply_bucket_notifications(cfn.describe(name, self.region, template))
            except cfn.DeployError as exc:
                refused.append(f"stack {name}: {exc}")
        for uuid in self.kinesis.discover():
            mapping = self.kinesis.mappings[uuid]
            try:
                iam.check_event_source_mapping(
                    self.iam, mapping.role_arn, mapping.function_arn, mapping.stream_arn
                )
            except ValueError as exc:
                self.kinesis.forget(uuid)
                refused.append(f"event source mapping {uuid} not started: {exc}")
        return refused

    def _query_workgroup(self, query_id: str) -> str | None:
        execution = self.athena.executions.get(query_id)
        return execution.workgroup if execution else None

    # -- use -----------------------------------------------------------------------------

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region)

    def settle(self, timeout: float = 600.0) -> list[dict[str, Any]]:
        """Wait until no execution runs and every Kinesis consumer has caught up.

        Returns every execution (oldest first). Raises TimeoutError past ``timeout``.
        """
        deadline = time.monotonic() + timeout
        sfn = self.client("stepfunctions")
        while True:
            executions = stepfunctions.wait_until_idle(sfn, max(1.0, deadline - time.monotonic()))
            # Status-change events of ended executions, and the Lambda targets they invoke.
            stepfunctions.ANNOUNCEMENTS.wait(max(1.0, deadline - time.monotonic()))
            events_idle = self.events.wait_idle(max(1.0, deadline - time.monotonic()))
            self.kinesis.drain(timeout=max(1.0, deadline - time.monotonic()))
            # Draining may not start executions, but settle only when all are quiet together.
            again = stepfunctions.list_all_executions(sfn)
            if (
                events_idle
                and all(e["status"] in stepfunctions.TERMINAL for e in again)
                and len(again) == len(executions)
            ):
                return again
            if time.monotonic() > deadline:
                raise TimeoutError(f"the emulator did not settle within {timeout:.0f}s")
