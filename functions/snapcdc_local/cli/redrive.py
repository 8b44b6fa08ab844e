"""``snapcdc redrive``: re-apply the batches the consumer gave up on (``stack.redrive``), against a
deployed stack; what a user sees is in :data:`DESCRIPTION` (``snapcdc redrive --help``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from snapcdc_local.cli.aws_errors import aws_command
from snapcdc_local.cli.main import Command
from snapcdc_local.stack.targets import (
    Target,
    add_target_arguments,
    resolve_targets,
    stack_outputs,
)

TARGETS = (
    Target("--bucket", "FailedBatchesBucketName", "the failed-batches bucket"),
    Target("--table", "TargetTableName", "the target table"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_target_arguments(parser, TARGETS)
    parser.add_argument(
        "--registry",
        metavar="NAME",
        help="the registry table, to count the ops on their upload records (with --stack: its own)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="leave every object in place, even when applied"
    )
    parser.add_argument("--report", type=Path, metavar="FILE", help="write the outcome as JSON")


def print_results(results: list[Any], out: TextIO) -> None:
    width = max([len("object"), *(len(r.key) for r in results)])
    print(f"{'object':<{width}}  records  applied    stale   failed  removed", file=out)
    for r in results:
        removed = "yes" if r.removed else "no"
        print(
            f"{r.key:<{width}}  {r.records:>7}  {r.applied:>7}  {r.stale:>7}  "
            f"{len(r.failed):>7}  {removed:>7}",
            file=out,
        )
        for failure in r.failed:
            print(f"  failed: {failure}", file=out)
    applied = sum(r.applied for r in results)
    stale = sum(r.stale for r in results)
    failed = sum(len(r.failed) for r in results)
    print(
        f"{len(results)} object(s): {applied} op(s) applied, {stale} stale, {failed} failed",
        file=out,
    )


def run(args: argparse.Namespace) -> int:
    from snapcdc.aws.clients import client
    from snapcdc.model.settings import Settings
    from snapcdc_local.stack.redrive import redrive

    bucket, table = resolve_targets(args, TARGETS)
    registry = args.registry or (
        stack_outputs(args.stack).get("RegistryTableName") if args.stack else None
    )
    results = redrive(
        client("s3"),
        bucket,
        table,
        workers=Settings.from_env().consumer_workers,
        remove=not args.keep,
        registry_table=registry,
    )
    print_results(results, sys.stdout)
    if args.report:
        report = {"bucket": bucket, "table": table, "objects": [r.report() for r in results]}
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 1 if any(r.failed for r in results) else 0


DESCRIPTION = """\
Re-apply the ops the consumer gave up on, from the stack's failed-batches bucket, with the
caller's usual AWS configuration (AWS_PROFILE, AWS_REGION). A configuration AWS cannot be
asked with (no region or credentials, an unknown profile, an endpoint that does not answer)
or a name that points at nothing is one line saying what to fix, exit status 1.

Fix what made the consumer fail first: the redrive applies the ops exactly as the consumer
would, and fails the same way while the cause lasts. Every failed-batch object is read, its
ops applied with version-conditioned writes (an op a newer version has overtaken is refused as
stale, so redriving twice is harmless), and the object deleted once nothing in it failed;
--keep leaves every object in place. It prints one line per object, then the totals; the exit
status is 1 when a record still failed (its object is kept).

With --stack, or with --registry, the redriven ops are also counted on their upload records in
the registry, as the consumer counts them, so a version's applied count reaches published.

Permissions the caller needs: s3:ListBucket, s3:GetObject and s3:DeleteObject on the bucket;
dynamodb:PutItem on the target table; cloudformation:DescribeStacks with --stack;
dynamodb:UpdateItem on the registry table with --stack or --registry.

examples:
  snapcdc redrive --stack snapcdc
  snapcdc redrive --bucket FAILED_BATCHES_BUCKET --table TARGET_TABLE
"""

COMMAND = Command(
    name="redrive",
    help="re-apply the ops the consumer gave up on, from the failed-batches bucket",
    add_arguments=add_arguments,
    run=aws_command(run),
    description=DESCRIPTION,
)
