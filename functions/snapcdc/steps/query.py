"""Running one Athena statement: start it, wait briefly in process, report its state.

The state machine polls with a Wait loop (no ``.sync`` integration: the local emulation's
interpreter has none), so the start call waits only a couple of seconds; most DDL finishes in
that time and needs no Wait at all.

A status (``snapcdc.model.state.QueryStatus``) travels through the state machine::

    {"name": "check_export", "kind": "check", "query_id": "...", "state": "SUCCEEDED",
     "reason": "", "output_location": "s3://.../id.csv", "bytes_scanned": 123,
     "wait_seconds": 5}
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from botocore.exceptions import ClientError

from snapcdc.model.errors import AthenaThrottled, QueryFailed
from snapcdc.model.settings import Settings
from snapcdc.model.state import QueryStatus, Statement

RUNNING_STATES = ("QUEUED", "RUNNING")
# The state machine waits ``wait_seconds`` of the last status between polls: QueryPollSeconds
# at first, doubling up to this cap (or QueryPollSeconds if larger). However long the
# statements run, the polls of one execution stay few: within its 21600 s timeout at most
# 21600 / 60 = 360 polls at the cap plus 6 doubling steps per statement (see
# tests/stack/test_state_machine_resilience.py for the history-event budget).
POLL_WAIT_CAP_SECONDS = 60
FAILED_STATES = ("FAILED", "CANCELLED")
# Athena answers a call over its active-query quota (running + queued DDL or DML queries) or
# its API rate with TooManyRequestsException:
# https://docs.aws.amazon.com/athena/latest/ug/service-limits.html
# https://docs.aws.amazon.com/athena/latest/APIReference/API_StartQueryExecution.html
THROTTLED_CODES = ("TooManyRequestsException", "ThrottlingException")


@contextmanager
def throttling_named(operation: str, query: Statement) -> Iterator[None]:
    """Turn Athena's throttling (left after botocore's retries) into AthenaThrottled, the error
    the state machine retries; any other error passes unchanged."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") not in THROTTLED_CODES:
            raise
        reason = exc.response.get("Reason") or error.get("Message") or error.get("Code")
        raise AthenaThrottled(
            f"Athena throttled {operation} of statement {query.name}: {reason}"
        ) from exc


def request_token(execution_arn: str, index: int, name: str) -> str:
    """Idempotency token: a retried start of the same statement in the same execution is one query.

    >>> len(request_token("arn:aws:states:...:execution:sm:x", 3, "delta"))
    64
    """
    return hashlib.sha256(f"{execution_arn}#{index}#{name}".encode()).hexdigest()


def start_query(
    athena: Any, sql: str, query: Statement, execution_arn: str, index: int, settings: Settings
) -> QueryStatus:
    """Start ``sql`` (the statement ``query``) in the stack's workgroup and wait a little."""
    args: dict[str, Any] = {
        "QueryString": sql,
        "WorkGroup": settings.athena_workgroup,
        "ClientRequestToken": request_token(execution_arn, index, query.name),
    }
    if settings.athena_output:
        # The workgroup enforces the same location; passing it keeps callers without an
        # enforcing workgroup (the emulation) writing results to the same place.
        args["ResultConfiguration"] = {"OutputLocation": settings.athena_output}
    with throttling_named("StartQueryExecution", query):
        query_id = athena.start_query_execution(**args)["QueryExecutionId"]
    status = query_status(athena, query_id, query)
    deadline = time.monotonic() + settings.query_start_wait_seconds
    delay = 0.1
    while status.state in RUNNING_STATES and time.monotonic() < deadline:
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
        status = query_status(athena, query_id, query)
    return raise_if_failed(replace(status, wait_seconds=settings.query_poll_seconds))


def next_poll_wait(previous: int, poll_seconds: int) -> int:
    """The wait before the next poll: twice the last one, capped, never below QueryPollSeconds.

    >>> [next_poll_wait(w, 1) for w in (1, 2, 32, 60)]
    [2, 4, 60, 60]
    >>> next_poll_wait(300, 300)
    300
    """
    return max(poll_seconds, min(previous * 2, POLL_WAIT_CAP_SECONDS))


def poll_query(
    athena: Any, status: QueryStatus, query: Statement, settings: Settings
) -> QueryStatus:
    polled = query_status(athena, status.query_id, query)
    previous = settings.query_poll_seconds if status.wait_seconds is None else status.wait_seconds
    wait = next_poll_wait(int(previous), settings.query_poll_seconds)
    return raise_if_failed(replace(polled, wait_seconds=wait))


def query_status(athena: Any, query_id: str, query: Statement) -> QueryStatus:
    with throttling_named("GetQueryExecution", query):
        execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
    state = execution["Status"]["State"]
    return QueryStatus(
        name=query.name,
        kind=query.kind,
        query_id=query_id,
        state=state,
        reason=execution["Status"].get("StateChangeReason", ""),
        output_location=(execution.get("ResultConfiguration") or {}).get("OutputLocation", ""),
        bytes_scanned=int((execution.get("Statistics") or {}).get("DataScannedInBytes", 0)),
    )


def raise_if_failed(status: QueryStatus) -> QueryStatus:
    if status.state in FAILED_STATES:
        reason = status.reason or "no reason given"
        raise QueryFailed(
            f"Athena statement {status.name} ({status.query_id}) {status.state}: {reason}"
        )
    return status
