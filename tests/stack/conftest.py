"""Fixtures of the stack tests: moto with the stack's resources, handlers called for real.

Every AWS call a handler makes during a test is recorded through botocore's
``before-parameter-build`` hook and checked against that handler's role in cfn.yaml when the
test ends, so a missing IAM permission fails the test that needed it.

Each test gets a boto3 session of its own (its hooks, its clients); the service models they are
built from (botocore's JSON files, the same for every test) are read once per process: every
session is given the one :data:`LOADER`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import boto3
import botocore.loaders
import botocore.session
import pytest
from harness import (
    ACCOUNT,
    REGION,
    STACK,
    TEST_OVERRIDES,
    AwsStack,
    CallRecorder,
    HeldEngine,
    create_resources,
    function_environment,
)
from moto import mock_aws

from snapcdc.aws import clients as snapcdc_aws
from snapcdc_local.emulator.athena import AthenaBridge
from snapcdc_local.emulator.dynamodb import installed as atomic_dynamodb_writes
from snapcdc_local.emulator.emulated_aws import MOTO_CONFIG

# botocore's data loader as a session makes it (AWS_DATA_PATH's models first); it keeps what it
# read, so sessions sharing it parse each model once.
LOADER = botocore.loaders.create_loader(os.environ.get("AWS_DATA_PATH"))


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsStack]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        **function_environment(),
        **TEST_OVERRIDES,
    }.items():
        monkeypatch.setenv(name, value)
    # DynamoDB's conditional writes are atomic; moto's are not (it checks, then stores), so the
    # consumer's concurrent version-conditioned writes race there: use the emulation's atomic
    # writes (snapcdc_local.emulator.dynamodb), as every end-to-end run does.
    # Athena is the emulation's (either wire protocol, moto's passed through), over an engine
    # that runs nothing: the start waits for a statement to end unless a test holds it.
    engine = HeldEngine()
    with (
        mock_aws(config=MOTO_CONFIG),
        atomic_dynamodb_writes(),
    ):
        session = botocore.session.get_session()
        session.register_component("data_loader", LOADER)
        boto3.setup_default_session(botocore_session=session, region_name=REGION)
        snapcdc_aws.reset_clients()
        recorder = CallRecorder(boto3.DEFAULT_SESSION, "snapcdc")
        bridge = AthenaBridge(
            lambda _resolve: engine, lambda _uri: [], REGION, ACCOUNT, start_wait=60
        )
        with bridge.installed(boto3.DEFAULT_SESSION):
            create_resources(STACK)
            yield AwsStack(recorder, bridge, engine)
            engine.release()
        snapcdc_aws.reset_clients()
    missing = STACK.missing_permissions(recorder.calls)
    assert not missing, "cfn.yaml does not grant what the handlers did:\n" + "\n".join(missing)
