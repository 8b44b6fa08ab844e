"""Following one upload on a deployed stack, through the AWS API only: the registry record its
object event got, the named execution that record names, until the execution ended and (for a
SUCCEEDED version) the consumer counted every op Kinesis took as applied or stale.

``snapcdc upload`` waits with it; it works the same against AWS and ``snapcdc local serve``.
When no record appears (no rule matched the key, the execution failed before Register), the
state machine's executions started since the upload say why.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from snapcdc.aws.registry import list_uploads

# Statuses an upload record ends in (snapcdc.aws.registry).
RECORD_TERMINAL = ("SUCCEEDED", "SKIPPED", "FAILED", "HELD", "REJECTED")
EXECUTION_TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
# An upload whose executions all ended without a record: how long to wait for a late record.
UNREGISTERED_GRACE_SECONDS = 5.0
# An upload that started no execution at all within this time matched no rule.
NOTHING_STARTED_SECONDS = 30.0


class FollowTimeout(TimeoutError):
    """The upload did not reach an outcome in time; the message says where it stands."""


def wait_for_execution(sfn: Any, arn: str, timeout: float, poll: float) -> dict[str, Any]:
    """DescribeExecution every ``poll`` seconds until the execution ended; ``TimeoutError``
    ("ARN still STATUS after Ns") past ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] in EXECUTION_TERMINAL:
            return described
        if time.monotonic() > deadline:
            raise TimeoutError(f"{arn} still {described['status']} after {timeout:.0f}s")
        time.sleep(poll)


@dataclass
class Outcome:
    record: dict[str, Any] | None
    executions: list[str]
    error: str | None = None


def registered(registry: str, table_id: str, key: str) -> set[str]:
    """The sort keys of the key's upload records (taken before an upload, to tell its own)."""
    return {r["sk"] for r in list_uploads(table_id, key=key, table_name=registry)}


def applied_all(record: dict[str, Any]) -> bool:
    """Every op Kinesis took was written or refused as stale by the consumer."""
    published = int(record.get("published") or 0)
    return int(record.get("applied") or 0) + int(record.get("stale") or 0) >= published


def follow(
    sfn: Any,
    registry: str,
    state_machine: str,
    table_id: str,
    key: str,
    before: set[str],
    put_at: float,
    timeout: float,
    poll: float = 0.5,
) -> Outcome:
    """Wait for the outcome of the upload of ``key`` made at ``put_at`` (epoch seconds)."""
    deadline = time.monotonic() + timeout
    quiet_since: float | None = None
    where = "not registered yet"
    while True:
        records = [
            r for r in list_uploads(table_id, key=key, table_name=registry) if r["sk"] not in before
        ]
        if records:
            record = records[-1]
            arn = record.get("execution_arn")
            status = str(record.get("status"))
            where = f"registered, {status}"
            ended = not arn or _execution_status(sfn, arn) in EXECUTION_TERMINAL
            if status in RECORD_TERMINAL and ended:
                if status != "SUCCEEDED" or applied_all(record):
                    return Outcome(record, [arn] if arn else [])
                where = "SUCCEEDED, the consumer still applying its ops"
        else:
            started = _started_since(sfn, state_machine, put_at)
            running = [e for e in started if e["status"] not in EXECUTION_TERMINAL]
            if started and not running:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > UNREGISTERED_GRACE_SECONDS:
                    last = max(started, key=lambda e: e["startDate"])
                    return Outcome(None, [last["executionArn"]], _why(sfn, last))
            elif not started and time.time() - put_at > NOTHING_STARTED_SECONDS:
                return Outcome(
                    None,
                    [],
                    f"no execution of the state machine started within "
                    f"{NOTHING_STARTED_SECONDS:.0f}s of the upload (does the stack's rule "
                    "match this key?)",
                )
        if time.monotonic() > deadline:
            raise FollowTimeout(f"{key}: no outcome after {timeout:.0f}s ({where})")
        time.sleep(poll)


def _execution_status(sfn: Any, arn: str) -> str:
    return sfn.describe_execution(executionArn=arn)["status"]


def _started_since(sfn: Any, state_machine: str, since: float) -> list[dict[str, Any]]:
    """Executions started at or after ``since`` (newest first, as ListExecutions returns)."""
    found = []
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine):
        for execution in page["executions"]:
            if execution["startDate"].timestamp() < since - 1.0:
                return found
            found.append(execution)
    return found


def _why(sfn: Any, execution: dict[str, Any]) -> str:
    described = sfn.describe_execution(executionArn=execution["executionArn"])
    if described["status"] == "FAILED":
        cause = " ".join(str(described.get("cause", "")).split())
        return f"{described.get('error', 'States.Failed')}: {cause}".strip()
    return (
        f"execution {described['name']} ended {described['status']} without registering the "
        "upload (a duplicate event, or a key the pipeline does not take)"
    )
