"""``snapcdc upload DATA_DIR --stack NAME``: the exports of DATA_DIR put into a deployed stack's
import bucket in sequence, each followed to its outcome (``snapcdc_local.stack.follow``); what
a user sees is in :data:`DESCRIPTION`."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from snapcdc_local.cli.aws_errors import aws_command
from snapcdc_local.cli.deployed import add_stack_argument, stack_outputs
from snapcdc_local.cli.main import CliError, Command

NEEDED = ("ImportBucketName", "RegistryTableName", "StateMachineArn")

DESCRIPTION = """\
Upload the exports of DATA_DIR (laid out as in the import bucket: {tenant}/{table}/{version}/)
to a deployed stack, one after the other, and follow each to its outcome: the _table.json files
first, then every *.csv.gz and _manifest.json in key order (a version's manifest after its
parts), as snapcdc local run orders them. The stack is found where boto3's configuration says:
AWS (AWS_PROFILE, AWS_REGION), or snapcdc local serve (AWS_ENDPOINT_URL).

After each upload it waits for the version's registry record and the execution it names (by
name: {tenant}-{table}-{version}-{sequencer}), and for a SUCCEEDED version until the consumer
has applied every op Kinesis took; then it prints the key, status, inserts, updates, deletes,
published, applied and seconds (and why a version is HELD, REJECTED, SKIPPED or FAILED), and at
the end the table's head version and rows. A part of a multi-part version starts nothing by
itself and gets no line of its own.

Exit status 0 when every upload reached an outcome (FAILED included); 1 with one line when one
did not within --timeout, or the stack cannot be read.

Permissions the caller needs: cloudformation:DescribeStacks on the stack; s3:PutObject on the
import bucket; dynamodb:Query and dynamodb:GetItem on the registry table;
states:ListExecutions on the state machine and states:DescribeExecution on its executions.

examples:
  snapcdc upload data --stack snapcdc
  AWS_ENDPOINT_URL=http://127.0.0.1:4566 snapcdc upload data --stack snapcdc
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "data_dir", type=Path, metavar="DATA_DIR", help="the exports, laid out as in the bucket"
    )
    add_stack_argument(parser)
    parser.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        help="seconds to wait for each upload's outcome (default: 3600)",
    )
    parser.add_argument("--poll", type=float, default=0.5, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    from snapcdc.aws.clients import client
    from snapcdc.aws.registry import get_head
    from snapcdc.model.events import parse_key_parts
    from snapcdc_local.cli.run_driver import RunResult
    from snapcdc_local.cli.run_output import Printer
    from snapcdc_local.cli.run_uploads import COUNTS, Upload, is_export, is_part, plan_uploads
    from snapcdc_local.stack.follow import FollowTimeout, follow, registered

    keys = plan_uploads(args.data_dir)  # checks DATA_DIR before any AWS call
    outputs = stack_outputs(args.stack, NEEDED)
    bucket, registry = outputs["ImportBucketName"], outputs["RegistryTableName"]
    s3, sfn = client("s3"), client("stepfunctions")
    printer = Printer(sys.stdout, max(len("key"), *(len(k) for k in keys)))
    printer.header()
    uploads: list[Upload] = []
    for key in keys:
        body = (args.data_dir / key).read_bytes()
        if not is_export(key) or is_part(args.data_dir, key):
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            continue
        upload = Upload(key, *parse_key_parts(key)[:3], started=time.monotonic())
        before = registered(registry, upload.table_id, key)
        put_at = time.time()
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        try:
            outcome = follow(
                sfn,
                registry,
                outputs["StateMachineArn"],
                upload.table_id,
                key,
                before,
                put_at,
                args.timeout,
                args.poll,
            )
        except FollowTimeout as exc:
            raise CliError(f"{exc}; see snapcdc status --stack {args.stack}") from None
        _record_outcome(upload, outcome, COUNTS)
        upload.seconds = round(time.monotonic() - upload.started, 2)
        uploads.append(upload)
        printer.upload(upload)
    tables = _tables(uploads, lambda table_id: get_head(table_id, table_name=registry))
    printer.summary(RunResult(uploads=uploads, tables=tables))
    return 0


def _record_outcome(upload: Any, outcome: Any, counts: tuple[str, ...]) -> None:
    record = outcome.record or {}
    upload.executions = outcome.executions
    upload.sequencer = record.get("sequencer")
    upload.status = str(record.get("status") or "FAILED")
    upload.error = record.get("error") or outcome.error
    if upload.status in ("HELD", "REJECTED", "SKIPPED"):
        upload.reason = record.get("reason") or None
    for name in counts:
        setattr(upload, name, int(record.get(name) or 0))


def _tables(uploads: list[Any], head_of: Any) -> dict[str, dict[str, Any]]:
    """Per table: its uploads' statuses, and its head's version and rows (the registry's count,
    not a scan of the target)."""
    tables: dict[str, dict[str, Any]] = {}
    for upload in uploads:
        summary = tables.setdefault(
            upload.table_id, {"SUCCEEDED": 0, "SKIPPED": 0, "FAILED": 0, "version": None, "rows": 0}
        )
        summary[upload.status] = summary.get(upload.status, 0) + 1
    for table_id, summary in tables.items():
        head = head_of(table_id) or {}
        summary["version"] = head.get("last_applied_version")
        summary["rows"] = int(head.get("rows") or 0)
    return tables


COMMAND = Command(
    name="upload",
    help="upload exports to a deployed stack in sequence and follow each to its outcome",
    add_arguments=add_arguments,
    run=aws_command(run),
    description=DESCRIPTION,
)
