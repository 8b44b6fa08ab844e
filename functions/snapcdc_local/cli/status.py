"""``snapcdc status --stack NAME [TENANT/TABLE]``: where each table of a deployed stack stands,
read from its registry; what a user sees is in :data:`DESCRIPTION`.

The report is one block per table, made of :data:`SECTIONS`: functions of the table's registry
records (every item of its partition: the head, the uploads, and whatever else the pipeline
records per table) that return their lines. A new line of the report is one more function in
that tuple.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from snapcdc.aws.registry import VERIFY_PREFIX
from snapcdc_local.cli.aws_errors import aws_command
from snapcdc_local.cli.deployed import add_stack_argument, stack_outputs
from snapcdc_local.cli.main import CliError, Command

LAST_VERSIONS = 5
COUNTS = ("inserts", "updates", "deletes", "published", "applied")

DESCRIPTION = """\
Show where each table of a deployed stack stands, from its registry table: the table's head
(the last applied version and its rows); its last versions with their status and counts;
versions HELD and waiting for snapcdc approve / reject; versions that diverged (publishing
began, then they failed: the next version reconverges the table); SUCCEEDED versions whose ops
the consumer has not all applied (yet, or past the stream's maximum record age, as AppliedCheck
flags them); the last verify and what it found. TENANT/TABLE shows one table. The stack is
found where boto3's configuration says: AWS (AWS_PROFILE, AWS_REGION), or snapcdc local serve
(AWS_ENDPOINT_URL).

Exit status 0; 1 with one line when the stack cannot be read or TENANT/TABLE has no records.

Permissions the caller needs: cloudformation:DescribeStacks on the stack; dynamodb:Scan and
dynamodb:Query on the registry table.

examples:
  snapcdc status --stack snapcdc
  snapcdc status --stack snapcdc tenant/orders
"""


@dataclass
class TableRecords:
    """Every registry record of one table (``snapcdc.aws.registry``), uploads in key order."""

    table_id: str
    stack: str
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def head(self) -> dict[str, Any]:
        return next((r for r in self.records if r.get("sk") == "head"), {})

    @property
    def uploads(self) -> list[dict[str, Any]]:
        return [r for r in self.records if str(r.get("sk", "")).startswith("upload#")]


def head_line(table: TableRecords) -> list[str]:
    head = table.head
    if not head.get("last_applied_version"):
        return ["head: no version applied yet"]
    return [f"head: {head['last_applied_version']}, {int(head.get('rows') or 0)} rows"]


def last_versions(table: TableRecords) -> list[str]:
    uploads = table.uploads[-LAST_VERSIONS:]
    if not uploads:
        return ["versions: none uploaded"]
    width = max(len("key"), *(len(str(u.get("key", ""))) for u in uploads))
    numbers = "".join(f" {name:>9}" for name in COUNTS)
    lines = [
        f"last {len(uploads)} of {len(table.uploads)} version(s):",
        f"  {'key':<{width}}  {'status':<9}{numbers}",
    ]
    for u in uploads:
        counts = "".join(f" {int(u.get(name) or 0):>9}" for name in COUNTS)
        lines.append(f"  {str(u.get('key', '')):<{width}}  {str(u.get('status')):<9}{counts}")
        if u.get("status") == "FAILED" and u.get("error"):
            lines.append(f"  {'':<{width}}  error: {' '.join(str(u['error']).split())}")
    return lines


def held(table: TableRecords) -> list[str]:
    waiting = [u for u in table.uploads if u.get("status") == "HELD"]
    lines = [f"held: {len(waiting) or 'none'}"]
    for u in waiting:
        lines.append(f"  {u.get('key')}: {u.get('reason') or ''}")
        lines.append(
            f"    snapcdc approve {u.get('key')} --stack {table.stack}   (or: snapcdc reject)"
        )
    return lines


def diverged(table: TableRecords) -> list[str]:
    entries = table.head.get("diverged") or []
    versions = [str(e.get("version", "?")) if isinstance(e, dict) else str(e) for e in entries]
    suffix = " (the next version reconverges the table)" if versions else ""
    return [f"diverged: {', '.join(versions) or 'none'}{suffix}"]


def unapplied(table: TableRecords) -> list[str]:
    from snapcdc_local.stack.follow import applied_all

    late = [
        u
        for u in table.uploads
        if u.get("status") == "SUCCEEDED" and (not applied_all(u) or int(u.get("unapplied") or 0))
    ]
    lines = [f"unapplied: {len(late) or 'none'}"]
    for u in late:
        done = int(u.get("applied") or 0) + int(u.get("stale") or 0)
        line = f"  {u.get('key')}: {done} of {int(u.get('published') or 0)} ops applied"
        if u.get("unapplied_reason"):  # AppliedCheck's verdict, past the maximum record age
            line += f" ({' '.join(str(u['unapplied_reason']).split())})"
        lines.append(line)
    return lines


def last_verify(table: TableRecords) -> list[str]:
    """The newest verify record (``snapcdc verify``, or the scheduled one): its result and
    counts; records sort by their start (``verify#<started_at>#<run>#r<round>``)."""
    verifies = [r for r in table.records if str(r.get("sk", "")).startswith(VERIFY_PREFIX)]
    if not verifies:
        return [f"last verify: never (snapcdc verify {table.table_id} --stack {table.stack})"]
    last = max(verifies, key=lambda r: str(r["sk"]))
    when = last.get("finished_at") or last.get("started_at") or "?"
    line = f"last verify: {last.get('status')} at {when}, version {last.get('version') or '-'}"
    if last.get("status") == "DRIFT":
        counts = ", ".join(
            f"{int(last.get(k) or 0)} {k}" for k in ("missing", "extra", "different")
        )
        line += f" ({counts}; snapcdc verify {table.table_id} --stack {table.stack} --repair)"
    elif last.get("reason"):
        line += f" ({' '.join(str(last['reason']).split())})"
    return [line]


# One block per table: each function gives its lines, in this order.
SECTIONS: tuple[Callable[[TableRecords], list[str]], ...] = (
    head_line,
    last_versions,
    held,
    diverged,
    unapplied,
    last_verify,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "table", nargs="?", metavar="TENANT/TABLE", help="one table (default: every table)"
    )
    add_stack_argument(parser)


def table_ids(registry: str) -> list[str]:
    from snapcdc.aws.clients import client

    found: set[str] = set()
    for page in (
        client("dynamodb")
        .get_paginator("scan")
        .paginate(TableName=registry, ProjectionExpression="table_id")
    ):
        found.update(item["table_id"]["S"] for item in page["Items"] if "table_id" in item)
    # tables are tenant/table; other partitions are the pipeline's own (AppliedCheck's _watch)
    return sorted(t for t in found if "/" in t)


def table_records(registry: str, table_id: str, stack: str) -> TableRecords:
    from snapcdc.aws.clients import client
    from snapcdc.aws.dynamo import from_item

    table = TableRecords(table_id, stack)
    for page in (
        client("dynamodb")
        .get_paginator("query")
        .paginate(
            TableName=registry,
            KeyConditionExpression="table_id = :t",
            ExpressionAttributeValues={":t": {"S": table_id}},
            ConsistentRead=True,
        )
    ):
        table.records.extend(from_item(item) for item in page["Items"])
    return table


def run(args: argparse.Namespace) -> int:
    if args.table is not None and (args.table.count("/") != 1 or "" in args.table.split("/")):
        raise CliError(f"{args.table!r} is not TENANT/TABLE (e.g. tenant/orders)")
    registry = stack_outputs(args.stack, ("RegistryTableName",))["RegistryTableName"]
    ids = [args.table] if args.table else table_ids(registry)
    tables = [table_records(registry, table_id, args.stack) for table_id in ids]
    if args.table and not tables[0].records:
        raise CliError(
            f"table {args.table} has no records in the registry of stack {args.stack!r}: nothing "
            f"was uploaded for it (snapcdc status --stack {args.stack} lists the tables)"
        )
    if not tables:
        print(f"stack {args.stack}: no table has records yet")
    for number, table in enumerate(tables):
        if number:
            print()
        print(table.table_id)
        for section in SECTIONS:
            for line in section(table):
                print(f"  {line}")
    sys.stdout.flush()
    return 0


COMMAND = Command(
    name="status",
    help="where each table of a deployed stack stands: head, last versions, held, diverged",
    add_arguments=add_arguments,
    run=aws_command(run),
    description=DESCRIPTION,
)
