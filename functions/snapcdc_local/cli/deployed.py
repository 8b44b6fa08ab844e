"""The deployed stack an operator command (``snapcdc upload``, ``status``, ``history``) acts on:
named by ``--stack``, found where boto3's own configuration says (``AWS_PROFILE``,
``AWS_REGION``, ``AWS_ENDPOINT_URL``: AWS, or ``snapcdc local serve``), read through its
outputs."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from snapcdc_local.cli.main import CliError


def add_stack_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stack", metavar="NAME", required=True, help="the deployed snapcdc stack's name"
    )


def stack_outputs(stack: str, needed: Sequence[str]) -> dict[str, str]:
    """The stack's outputs by key; one line (CliError) if an output is missing (a stack that
    does not exist is the command's aws_command line)."""
    from snapcdc.aws.clients import client

    [description] = client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    status = description.get("StackStatus", "")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}
    missing = [name for name in needed if name not in outputs]
    if missing:
        raise CliError(
            f"stack {stack!r} ({status}) has no output {', '.join(missing)}: is it a snapcdc "
            "stack, and has its deployment finished?"
        )
    return outputs
