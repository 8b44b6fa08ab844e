"""An execution that ended where its own Catch could not see: FAILED, TIMED_OUT or ABORTED.

``States.ALL`` does not catch an execution timeout, an abort (StopExecution), a
``States.DataLimitExceeded`` or a ``States.Runtime`` error, nor the end at the 25,000-event
history quota (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html);
such an execution never reaches MarkFailed and ReleaseLock. Step Functions sends every status
change of a standard workflow's execution to EventBridge ("Step Functions Execution Status
Change", https://docs.aws.amazon.com/step-functions/latest/dg/eventbridge-integration.html), so
a rule on this state machine's FAILED / TIMED_OUT / ABORTED changes runs
:func:`record_execution_end`. It does what MarkFailed and ReleaseLockAfterFailure would have
done, and only where they did not: the upload record is set FAILED only if this execution
registered it and it has no outcome yet, and the lock is deleted only if this execution holds
it. An upload that had begun publishing marks the table diverged first (see
``snapcdc.steps.mark_failed.diverge_if_published``). An event may come twice or late; both
writes are idempotent under their conditions.
EventBridge delivers Step Functions' events best effort
(https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-states.html): if one is lost,
the record stays REGISTERED and the lock's lease (LockExpirySeconds) is the fallback.

The execution's input (``detail.input``, the routed S3 event) names the upload. Step Functions
may leave a large input out of the event (``inputDetails.included`` false); an S3 event is a
few hundred bytes.

>>> failure_reason({"name": "t-x-V1-0A", "status": "ABORTED", "error": None, "cause": None})
('ExecutionAborted', 'execution t-x-V1-0A ABORTED')
>>> failure_reason({"name": "n", "status": "FAILED", "error": "States.DataLimitExceeded",
...                 "cause": "too big"})
('States.DataLimitExceeded', 'execution n FAILED: too big')
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from snapcdc.aws.leases import release_lock
from snapcdc.aws.registry import fail_unfinished_upload
from snapcdc.model.settings import Settings
from snapcdc.model.state import ExecutionState
from snapcdc.steps.mark_failed import (
    MAX_CAUSE_CHARS,
    diverge_if_published,
    failure_values,
    readable_cause,
    upload_ref,
)

ENDED = {
    "FAILED": "ExecutionFailed",
    "TIMED_OUT": "ExecutionTimedOut",
    "ABORTED": "ExecutionAborted",
}


def failure_reason(detail: dict[str, Any]) -> tuple[str, str]:
    """The error name and readable cause recorded for an execution that ended with ``detail``."""
    status = str(detail.get("status"))
    name = str(detail.get("error") or ENDED.get(status, "ExecutionEnded"))
    cause = f"execution {detail.get('name')} {status}"
    if detail.get("cause"):
        cause += f": {readable_cause(detail['cause'])}"
    return name, cause


def execution_input(detail: dict[str, Any]) -> ExecutionState:
    """The execution's input as a state: a routed execution's ``{"routed", "event"}``, an
    approve's ``{"resume"}`` or, for the first execution of an S3 event, the event itself."""
    try:
        value = json.loads(detail.get("input") or "null")
    except (TypeError, ValueError):
        return ExecutionState()
    if not isinstance(value, dict):
        return ExecutionState()
    if "detail" in value:  # the raw EventBridge event
        return ExecutionState(event=value)
    return ExecutionState.readable_parts(value)


def record_execution_end(
    event: dict[str, Any], settings: Settings, now: datetime
) -> dict[str, Any]:
    """Handle one "Step Functions Execution Status Change" event; return what was done."""
    detail = event.get("detail") or {}
    execution_arn = str(detail.get("executionArn") or "")
    summary: dict[str, Any] = {
        "execution_arn": execution_arn,
        "status": detail.get("status"),
        "upload_marked_failed": False,
        "lock_released": False,
    }
    if detail.get("status") not in ENDED or not execution_arn:
        summary["ignored"] = "not an ended execution"
        return summary
    ref = upload_ref(execution_input(detail))
    if ref is None:
        summary["ignored"] = "the execution's input names no upload"
        return summary
    table_id, sk = ref
    name, cause = failure_reason(detail)
    summary.update(table_id=table_id, error=name, cause=cause)
    record = fail_unfinished_upload(
        table_id,
        sk,
        execution_arn,
        failure_values(name, cause[:MAX_CAUSE_CHARS], execution_arn, now),
        table_name=settings.registry_table,
    )
    summary["upload_marked_failed"] = record is not None
    # before the lock goes: the next version must see the table diverged
    summary["diverged"] = diverge_if_published(record, settings)
    summary["lock_released"] = release_lock(settings.lock_table, table_id, execution_arn)
    return summary
