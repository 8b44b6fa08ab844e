"""``snapcdc approve KEY`` / ``snapcdc reject KEY``: resume a HELD version (``snapcdc.steps.hold``)
through ``snapcdc_local.stack.resume``; what a user sees is in :data:`DESCRIPTION`.
"""

from __future__ import annotations

import argparse
from typing import Any

from snapcdc_local.cli.aws_errors import aws_command
from snapcdc_local.cli.main import CliError, Command
from snapcdc_local.stack.follow import wait_for_execution
from snapcdc_local.stack.targets import Target, add_target_arguments, resolve_targets

TARGETS = (
    Target("--state-machine", "StateMachineArn", "the pipeline's state machine", "ARN"),
    Target("--registry", "RegistryTableName", "the registry table", "TABLE"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("key", metavar="KEY", help="the held export's key in the import bucket")
    add_target_arguments(parser, TARGETS)
    parser.add_argument(
        "--no-wait", action="store_true", help="start the execution and return at once"
    )
    parser.add_argument(
        "--timeout", type=float, default=21600.0, help="seconds to wait (default: 6 hours)"
    )
    parser.add_argument("--poll", type=float, default=5.0, help=argparse.SUPPRESS)


def wait_for(sfn: Any, arn: str, timeout: float, poll: float) -> dict[str, Any]:
    try:
        return wait_for_execution(sfn, arn, timeout, poll)
    except TimeoutError as exc:
        raise CliError(f"execution {exc}") from None


def resume_command(action: str, args: argparse.Namespace) -> int:
    from snapcdc.aws.clients import client
    from snapcdc.aws.registry import find_upload
    from snapcdc.model.contract import parse_export_key
    from snapcdc_local.stack.resume import ResumeError, held_upload, start_resume

    parse_export_key(args.key)  # a key no upload can have is refused before asking AWS
    state_machine, registry = resolve_targets(args, TARGETS)
    sfn = client("stepfunctions")
    try:
        record = held_upload(args.key, registry)
        arn = start_resume(sfn, state_machine, registry, action, args.key)
    except ResumeError as exc:
        raise CliError(str(exc)) from None
    print(f"{action} {args.key}: execution {arn}")
    if args.no_wait:
        return 0
    described = wait_for(sfn, arn, args.timeout, args.poll)
    outcome = find_upload(record["table_id"], args.key, record["sequencer"], table_name=registry)
    outcome = outcome or {}
    counts = " ".join(f"{n}={outcome.get(n, 0)}" for n in ("inserts", "updates", "deletes"))
    print(f"{args.key}: {outcome.get('status')} {counts}")
    for field in ("reason", "error"):
        if outcome.get(field) and outcome.get("status") in ("SKIPPED", "FAILED", "REJECTED"):
            print(f"  {field}: {outcome[field]}")
    if described["status"] != "SUCCEEDED":
        cause = described.get("cause") or described.get("error") or described["status"]
        print(f"  execution {described['status']}: {' '.join(str(cause).split())}")
        return 1
    return 0 if outcome.get("status") != "FAILED" else 1


DESCRIPTION = """\
Resume a HELD version of a deployed stack, with the caller's usual AWS configuration
(AWS_PROFILE, AWS_REGION): approve publishes the ops computed when it was held, reject ends it
as REJECTED and publishes nothing.

It starts the resume execution, waits for it (--no-wait returns at once) and prints the
version's outcome from the registry: approve ends SUCCEEDED (the held ops published) or SKIPPED
(the table's head moved on since they were computed), reject ends REJECTED. The exit status is
1 when the key has no HELD version or the execution failed. AWS_REGION is read as by the AWS
CLI; a missing region or credentials, an unknown profile, an endpoint that does not answer, a
stack or table that does not exist, a permission the caller lacks: each is one line saying
what to fix, exit status 1.

Permissions the caller needs: dynamodb:Query and dynamodb:GetItem on the registry table;
states:StartExecution on the state machine and states:DescribeExecution on its executions;
cloudformation:DescribeStacks with --stack.

examples:
  snapcdc approve tenant/orders/V2/export.csv.gz --stack snapcdc
  snapcdc reject tenant/orders/V2/export.csv.gz --state-machine ARN --registry TABLE
"""


def _command(action: str, summary: str) -> Command:
    return Command(
        name=action,
        help=summary,
        add_arguments=add_arguments,
        run=aws_command(lambda args: resume_command(action, args)),
        description=DESCRIPTION,
    )


COMMANDS = [
    _command("approve", "publish a HELD version's ops (if the table's head has not moved on)"),
    _command("reject", "end a HELD version as REJECTED; nothing is published"),
]
