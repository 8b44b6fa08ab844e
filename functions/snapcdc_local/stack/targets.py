"""What a command against a deployed stack acts on: read from the stack's outputs (``--stack``)
or named directly, one or the other. ``snapcdc redrive`` and ``snapcdc approve`` / ``reject``
share it."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from snapcdc_local.errors import CliError


@dataclass(frozen=True)
class Target:
    """One resource a command acts on: its option, the stack output naming it, its help line."""

    option: str  # "--state-machine"
    output: str  # "StateMachineArn"
    help: str
    metavar: str = "NAME"

    @property
    def dest(self) -> str:
        return self.option.removeprefix("--").replace("-", "_")


def add_target_arguments(parser: argparse.ArgumentParser, targets: Sequence[Target]) -> None:
    """``--stack NAME``, and one option per target naming it directly instead."""
    parser.add_argument("--stack", metavar="NAME", help="the deployed snapcdc stack's name")
    for target in targets:
        parser.add_argument(target.option, metavar=target.metavar, help=target.help)


def stack_outputs(stack: str) -> dict[str, str]:
    """The outputs of a deployed CloudFormation stack, by key."""
    from snapcdc.aws.clients import client

    # a stack that does not exist is botocore's ClientError: the command's aws_errors says so
    [description] = client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}


def resolve_targets(args: argparse.Namespace, targets: Sequence[Target]) -> list[str]:
    """The targets' names, in order, from ``--stack``'s outputs or from their options.

    >>> given = argparse.Namespace(stack=None, bucket="b", table="t")
    >>> resolve_targets(given, [Target("--bucket", "B", ""), Target("--table", "T", "")])
    ['b', 't']
    """
    options = " and ".join(t.option for t in targets)
    values = [getattr(args, t.dest) for t in targets]
    if args.stack:
        if any(values):
            raise CliError(f"give either --stack or {options}, not both")
        outputs = stack_outputs(args.stack)
        missing = [t.output for t in targets if t.output not in outputs]
        if missing:
            raise CliError(f"stack {args.stack!r} has no output {', '.join(missing)}")
        return [outputs[t.output] for t in targets]
    if not all(values):
        raise CliError(f"give --stack NAME, or {options}")
    return [str(value) for value in values]
