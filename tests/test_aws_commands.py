"""The commands that call AWS with the caller's configuration (approve, reject, redrive) when
that configuration is wrong: one line naming what to fix, exit status 1, never a traceback.

The configuration comes from the environment, so each case runs the ``snapcdc`` command as a
user does, in a process of its own; the cases that need an AWS to answer (a stack, table or
bucket that does not exist) run against moto in this process.
"""

from __future__ import annotations

import os
import subprocess
import sys

import boto3
import pytest
from moto import mock_aws

from snapcdc.aws import clients
from snapcdc_local.cli.main import main

KEY = "acme/orders/V2/export.csv.gz"
ARN = "arn:aws:states:eu-west-1:123456789012:stateMachine:snapcdc"
COMMANDS = {
    "approve": ["approve", KEY, "--stack", "snapcdc"],
    "reject": ["reject", KEY, "--state-machine", ARN, "--registry", "registry"],
    "redrive": ["redrive", "--bucket", "failed", "--table", "target"],
}


def snapcdc(tmp_path, args, **env):
    """``snapcdc ARGS`` with no AWS configuration but ``env``: no profile files, no instance
    metadata, no AWS_* variables of this machine."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    clean.update(
        AWS_CONFIG_FILE=str(tmp_path / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        **env,
    )
    done = subprocess.run(
        [sys.executable, "-m", "snapcdc_local", *args],
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("command", ["approve", "reject"])  # (S3 needs no region: redrive)
def test_no_region(tmp_path, command):
    code, out, err = snapcdc(tmp_path, COMMANDS[command])
    assert code == 1, err
    assert one_line(err) == (
        f"snapcdc {command}: error: no AWS region is configured: set AWS_REGION (or "
        "AWS_DEFAULT_REGION), or a region in your AWS profile (aws configure)"
    )


@pytest.mark.parametrize("command", list(COMMANDS))
def test_no_credentials(tmp_path, command):
    # AWS_REGION alone is a region, as for the AWS CLI v2 and the SDKs
    code, out, err = snapcdc(tmp_path, COMMANDS[command], AWS_REGION="eu-west-1")
    assert code == 1, err
    assert one_line(err) == (
        f"snapcdc {command}: error: no AWS credentials found: set AWS_PROFILE to a configured "
        "profile, run aws configure, or aws sso login for an SSO profile"
    )


def test_unknown_profile(tmp_path):
    code, _, err = snapcdc(tmp_path, COMMANDS["approve"], AWS_PROFILE="nope")
    assert code == 1
    assert one_line(err) == (
        "snapcdc approve: error: AWS profile 'nope' is not configured: check AWS_PROFILE, or "
        "create it with aws configure --profile nope"
    )


def test_endpoint_down(tmp_path):
    code, _, err = snapcdc(
        tmp_path,
        COMMANDS["redrive"],
        AWS_REGION="eu-west-1",
        AWS_ACCESS_KEY_ID="x",
        AWS_SECRET_ACCESS_KEY="y",
        AWS_ENDPOINT_URL="http://127.0.0.1:9",  # the discard port: nothing listens
    )
    assert code == 1
    assert one_line(err) == (
        "snapcdc redrive: error: cannot reach AWS at http://127.0.0.1:9 "
        "(EndpointConnectionError): check the network, the region, and AWS_ENDPOINT_URL if it "
        "is set"
    )


def test_a_snapcdc_variable_set_wrong(tmp_path):
    code, _, err = snapcdc(
        tmp_path, COMMANDS["redrive"], AWS_REGION="eu-west-1", SNAPCDC_CONSUMER_WORKERS="many"
    )
    assert code == 1
    assert one_line(err) == (
        "snapcdc redrive: error: SNAPCDC_CONSUMER_WORKERS='many' is not a valid int"
    )


def test_a_key_no_upload_can_have_is_refused_before_asking_aws(capsys):
    code = main(["approve", "orders/V2/export.csv.gz", "--stack", "snapcdc"])
    assert code == 1
    assert capsys.readouterr().err == (
        "snapcdc approve: error: export key 'orders/V2/export.csv.gz' is not of the form "
        "{tenant}/{table}/{version}/{file}.csv.gz\n"
    )


# -- AWS answers: what the names given point at does not exist ----------------------------------


@pytest.fixture
def moto_aws(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_REGION", raising=False)
    with mock_aws():
        boto3.setup_default_session(region_name="eu-west-1")
        clients.reset_clients()
        yield
        clients.reset_clients()


def run(capsys, args):
    code = main(args)
    captured = capsys.readouterr()
    return code, one_line(captured.err)


def test_stack_that_does_not_exist(moto_aws, capsys):
    code, line = run(capsys, ["approve", KEY, "--stack", "nope"])
    assert code == 1
    assert line == (
        "snapcdc approve: error: DescribeStacks: ValidationError: Stack with id nope does not "
        "exist (region eu-west-1): check the name given (--stack, or the resource's option) "
        "and the region"
    )


def test_registry_that_does_not_exist(moto_aws, capsys):
    code, line = run(capsys, ["reject", KEY, "--state-machine", ARN, "--registry", "nope"])
    assert code == 1
    assert line.startswith("snapcdc reject: error: Query: ResourceNotFoundException: ")
    assert line.endswith("(region eu-west-1): check the name given (--stack, or the resource's "
                         "option) and the region")  # fmt: skip


def test_bucket_that_does_not_exist(moto_aws, capsys):
    code, line = run(capsys, ["redrive", "--bucket", "nope", "--table", "target"])
    assert code == 1
    assert line.startswith("snapcdc redrive: error: ListObjectsV2: NoSuchBucket: ")
