"""``snapcdc history --stack NAME (KEY | --latest)``: one execution's states, durations and
errors, as ``snapcdc local run --history`` prints them; what a user sees is in
:data:`DESCRIPTION`."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from snapcdc_local.cli.aws_errors import aws_command
from snapcdc_local.cli.deployed import add_stack_argument, stack_outputs
from snapcdc_local.cli.main import CliError, Command

# EventBridge starts executions without a name (a UUID); the pipeline's own are named.
_UNNAMED = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

DESCRIPTION = """\
Print the Step Functions history of one execution of a deployed stack's pipeline: each state
entered, its type, how long it ran and the error it raised, as snapcdc local run --history
prints them. KEY is an export's key in the import bucket (its latest upload's execution);
--latest takes the pipeline execution started last. The stack is found where boto3's
configuration says: AWS (AWS_PROFILE, AWS_REGION), or snapcdc local serve (AWS_ENDPOINT_URL).

Exit status 0; 1 with one line when the stack cannot be read or KEY names no upload.

Permissions the caller needs: cloudformation:DescribeStacks on the stack; dynamodb:Query on the
registry table (KEY); states:ListExecutions on the state machine (--latest);
states:GetExecutionHistory on the execution.

examples:
  snapcdc history --stack snapcdc tenant/orders/20240101_V0001/export.csv.gz
  snapcdc history --stack snapcdc --latest
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("key", nargs="?", metavar="KEY", help="an export's key in the bucket")
    add_stack_argument(parser)
    parser.add_argument("--latest", action="store_true", help="the pipeline execution started last")


def execution_of_key(key: str, registry: str, stack: str) -> str:
    from snapcdc.aws.registry import list_uploads
    from snapcdc.model.contract import parse_export_key

    ref = parse_export_key(key)  # a ContractError is the one line
    records = [r for r in list_uploads(ref.table_id, key=key, table_name=registry)]
    arns = [r["execution_arn"] for r in records if r.get("execution_arn")]
    if not arns:
        raise CliError(
            f"no upload of {key} is registered in stack {stack!r}: was it uploaded to this "
            f"stack's import bucket? (snapcdc status --stack {stack} {ref.table_id})"
        )
    return arns[-1]


def latest_execution(sfn: Any, state_machine: str, stack: str) -> str:
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine):
        for execution in page["executions"]:  # newest first
            if not _UNNAMED.match(execution["name"]):
                return execution["executionArn"]
    raise CliError(f"stack {stack!r} has run no pipeline execution yet")


def run(args: argparse.Namespace) -> int:
    from snapcdc.aws.clients import client
    from snapcdc_local.emulator.stepfunctions import execution_history, history_rows

    if bool(args.key) == bool(args.latest):
        raise CliError("give KEY or --latest (one of them)")
    outputs = stack_outputs(args.stack, ("RegistryTableName", "StateMachineArn"))
    sfn = client("stepfunctions")
    if args.latest:
        arn = latest_execution(sfn, outputs["StateMachineArn"], args.stack)
    else:
        arn = execution_of_key(args.key, outputs["RegistryTableName"], args.stack)
    described = sfn.describe_execution(executionArn=arn)
    rows = history_rows(execution_history(sfn, arn))
    out = sys.stdout
    print(f"history of {arn.rsplit(':', 1)[-1]} ({described['status']})", file=out)
    print(f"  {'state':<28} {'type':<10} {'seconds':>8}  error", file=out)
    for row in rows:
        print(f"  {row.state:<28} {row.type:<10} {row.seconds:>8.3f}  {row.error or ''}".rstrip())
    return 0


COMMAND = Command(
    name="history",
    help="an execution's states, durations and errors (by export key, or the latest)",
    add_arguments=add_arguments,
    run=aws_command(run),
    description=DESCRIPTION,
)
