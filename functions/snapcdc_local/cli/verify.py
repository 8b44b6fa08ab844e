"""``snapcdc verify TENANT/TABLE [--repair]``: compare a table's live target rows with its last
applied export on a deployed stack (``snapcdc_local.stack.verify``); what a user sees is in
:data:`DESCRIPTION`."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from snapcdc_local.cli.main import CliError, Command
from snapcdc_local.stack.targets import Target, add_target_arguments, resolve_targets

TARGETS = (
    Target("--state-machine", "VerifyStateMachineArn", "the verify state machine", "ARN"),
    Target("--registry", "RegistryTableName", "the registry table", "TABLE"),
)
DEFAULT_LIMIT = 20
KIND_HELP = {
    "missing": "in the export, not live in the target",
    "extra": "live in the target, not in the export (a row that never existed, or a tombstone "
    "brought back)",
    "different": "in both, with other values",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("table", metavar="TENANT/TABLE", help="the table to verify")
    add_target_arguments(parser, TARGETS)
    parser.add_argument(
        "--repair",
        action="store_true",
        help="write the drifted rows as the last applied version's, then verify again",
    )
    parser.add_argument(
        "--keys-file",
        metavar="PATH",
        type=Path,
        help="write every drifted key to PATH, one JSON object a line",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"list every drifted key up to N, else a sample of N (default {DEFAULT_LIMIT})",
    )
    parser.add_argument(
        "--timeout", type=float, default=43200.0, help="seconds to wait (default: 12 hours)"
    )
    parser.add_argument("--poll", type=float, default=5.0, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except Exception as exc:
        if not _reportable(exc):
            raise
        print(f"snapcdc verify: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2


def _reportable(exc: BaseException) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    from snapcdc.model.contract import ContractError
    from snapcdc_local.stack.verify import VerifyError

    return isinstance(
        exc, CliError | ContractError | VerifyError | ClientError | BotoCoreError | OSError
    )


def _run(args: argparse.Namespace) -> int:
    from snapcdc.aws.clients import client
    from snapcdc_local.stack import verify

    if args.limit < 0:
        raise CliError(f"--limit must be 0 or more, got {args.limit}")
    state_machine, registry = resolve_targets(args, TARGETS)
    verify.check_table(args.table, registry)
    sfn = client("stepfunctions")
    arn = verify.start_verify(sfn, state_machine, args.table, args.repair)
    print(f"{'repair' if args.repair else 'verify'} {args.table}: execution {arn}", flush=True)
    described = verify.wait(sfn, arn, args.timeout, args.poll)
    found = verify.outcome(sfn, described, args.table, registry)
    for line in report_lines(found, client("s3"), args.limit, args.keys_file):
        print(line)
    if found.status == "FAILED":
        reason = found.failure or (found.last.record.get("reason") if found.last else None)
        print(f"snapcdc verify: error: {reason or 'the verify failed'}", file=sys.stderr)
    return found.exit_status


def report_lines(found: Any, s3: Any, limit: int, keys_file: Path | None) -> list[str]:
    """What a verify found, for a person: per round its status and counts, the drifted keys of
    the first round (all up to ``limit``, else a sample), the repair's counts; ``keys_file``
    gets every drifted key of the first round."""
    lines: list[str] = []
    for number, found_round in enumerate(found.rounds):
        record = found_round.record
        after = " after the repair" if number else ""
        head = f"{found.table_id}{after}: {found_round.status}"
        if record.get("version"):
            head += f" against version {record['version']}"
        if record.get("export_time"):
            head += f" (target exported {record['export_time']})"
        lines.append(head)
        if found_round.status in ("BUSY", "FAILED") and record.get("reason"):
            lines.append(f"  {record['reason']}")
            continue
        if found_round.status not in ("CLEAN", "DRIFT"):
            continue
        counts = found_round.counts()
        for kind, count in counts.items():
            lines.append(f"  {kind:<10}{count:>10}  {KIND_HELP[kind]}")
        columns = record.get("columns") or {}
        if columns:
            listed = ", ".join(f"{name} ({count})" for name, count in sorted(columns.items()))
            lines.append(f"  columns that differ: {listed}")
        if record.get("reason"):
            lines.append(f"  note: {record['reason']}")
        if number == 0 and sum(counts.values()):
            lines.extend(_keys(found_round, s3, limit, keys_file))
        repair = record.get("repair")
        if repair:
            lines.append(
                f"  repaired: {int(repair.get('applied', 0))} rows written, "
                f"{int(repair.get('stale', 0))} refused as stale (a newer version wrote them), "
                f"{int(repair.get('skipped', 0))} skipped (a key that is not one of the "
                f"table's), {int(repair.get('failed', 0))} failed"
            )
    return lines


def _keys(found_round: Any, s3: Any, limit: int, keys_file: Path | None) -> list[str]:
    total = sum(found_round.counts().values())
    shown: list[Any] = []
    per_kind: Counter = Counter()
    handle = keys_file.open("w", encoding="utf-8") if keys_file else None
    try:
        for drift in found_round.drifts(s3):
            if handle:
                handle.write(json.dumps(drift.to_dict(), ensure_ascii=False) + "\n")
            # a sample keeps some of each kind: the first ones of the result, which is unordered
            fair = total <= limit or per_kind[drift.kind] < max(1, limit // len(KIND_HELP))
            if fair and len(shown) < limit:
                shown.append(drift)
                per_kind[drift.kind] += 1
    finally:
        if handle:
            handle.close()
    title = "keys" if total <= limit else f"a sample of {len(shown)} of {total} keys"
    lines = [f"  {title}:"]
    for drift in shown:
        detail = f"  {', '.join(drift.columns)}" if drift.columns else ""
        lines.append(f"    {drift.kind:<10} {drift.key}{detail}")
    if keys_file:
        lines.append(f"  every drifted key: {keys_file}")
    elif total > limit:
        lines.append("  (--keys-file PATH writes every drifted key)")
    return lines


DESCRIPTION = """\
Verify a table of a deployed stack: compare its live target rows with its last applied export,
key by key, with the caller's usual AWS configuration (AWS_PROFILE, AWS_REGION,
AWS_ENDPOINT_URL).

It starts the stack's verify state machine and waits for it. The verify holds the table's lock
while the target table is exported (a DynamoDB export to S3: no read capacity), so no version
is applied in between; Athena then compares the export with the last applied export. Each
drifted key is missing (in the export, not live in the target), extra (live in the target, not
in the export: a row that never existed, or a tombstone brought back to life) or different
(the columns that differ are named). It prints the counts, then the keys (all of them up to
--limit, else a sample); --keys-file writes every one.

--repair writes exactly the drifted rows through the consumer's version-conditioned writes
(upserts for missing and different, tombstones for extra), as the last applied version's, so a
newer version always wins over them; then it verifies again.

Exit status: 0 no drift (after --repair: the second verify found none), 1 drift, 2 an error,
3 the table is busy (a version is being applied, or its ops are not all applied yet): try
again later.

Permissions the caller needs: states:StartExecution on the verify state machine and
states:DescribeExecution on its executions; dynamodb:GetItem on the registry table;
s3:GetObject on the results bucket's athena/ prefix (the drifted keys);
cloudformation:DescribeStacks with --stack.

examples:
  snapcdc verify tenant/orders --stack snapcdc
  snapcdc verify tenant/orders --stack snapcdc --repair --keys-file drift.jsonl
"""

COMMAND = Command(
    name="verify",
    help="compare a table's target rows with its last applied export (and --repair them)",
    add_arguments=add_arguments,
    run=run,
    description=DESCRIPTION,
)
