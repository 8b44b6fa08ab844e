"""The end of a pipeline run that failed: FAILED with a readable reason, the table marked
diverged when publishing had begun. ``snapcdc.steps.execution_ended`` does the same for an
execution that ended where its Catch could not see, with the helpers here.

>>> readable_cause('{"errorMessage": "boom", "errorType": "X"}')
'boom'
>>> readable_cause("throttled")
'throttled'
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from snapcdc.aws.leases import iso, lock_holder
from snapcdc.aws.registry import mark_diverged, update_upload, upload_sk
from snapcdc.model.events import EventError, object_event, parse_key_parts
from snapcdc.model.settings import Settings
from snapcdc.model.state import CaughtError, ExecutionState, Failure

# An execution's failure cause is at most 32,768 characters
# (https://docs.aws.amazon.com/step-functions/latest/apireference/API_ExecutionFailedEventDetails.html);
# kept below that with room for the Fail state's own text.
MAX_CAUSE_CHARS = 32000


def readable_cause(cause: Any) -> str:
    """Step Functions' Cause of a Lambda error is the error as JSON; keep its errorMessage.

    Other causes (a service integration's message, say) come back as they are.
    """
    try:
        parsed = json.loads(cause)
    except (TypeError, ValueError):
        return str(cause)
    if isinstance(parsed, dict) and "errorMessage" in parsed:
        return str(parsed["errorMessage"])
    return str(cause)


def upload_ref(state: ExecutionState) -> tuple[str, str] | None:
    """``(table_id, sk)`` of the run's upload record: from the registered upload, the approve /
    reject request, or the S3 event the run started from."""
    upload = state.upload
    if upload is not None and upload.sk:
        return upload.table_id, upload.sk
    if state.resume is not None:
        return state.resume.table_id, state.resume.sk
    try:
        obj = object_event(state.event)
    except EventError:
        return None
    tenant, table, _, _ = parse_key_parts(obj.raw_key)
    return f"{tenant}/{table}", upload_sk(obj.raw_key, obj.object_sequencer)


def failure_values(name: str, cause: str, execution_arn: str, now: datetime) -> dict[str, Any]:
    """The fields a FAILED upload record carries: the error's name and its readable cause."""
    return {
        "status": "FAILED",
        "error": f"{name}: {cause}",
        "error_type": name,
        "execution_arn": execution_arn,
        "failed_at": iso(now),
        "updated_at": iso(now),
    }


def mark_failed(
    state: ExecutionState, execution_arn: str, settings: Settings, now: datetime
) -> Failure:
    """Record FAILED with the error; return the lock to release and the error for the Fail state."""
    error = state.error or CaughtError()
    name = error.Error or "Unknown"
    cause = readable_cause(error.Cause)
    ref = upload_ref(state)
    table_id = ref[0] if ref else ""
    if name == "TableLocked" and table_id:
        holder = lock_holder(settings.lock_table, table_id)
        if holder:
            cause = (
                f"table {table_id} locked by {holder.get('held_by')} "
                f"(lease until {holder.get('expires_at')}); {cause}"
            )
    diverged = False
    if ref:
        record = update_upload(
            ref[0],
            ref[1],
            failure_values(name, cause, execution_arn, now),
            table_name=settings.registry_table,
        )
        diverged = diverge_if_published(record, settings)
    # "-" never matches a lock, so the release step is a harmless no-op without a table.
    return Failure(
        lock_id=table_id or "-", error=name, cause=cause[:MAX_CAUSE_CHARS], diverged=diverged
    )


DIVERGED_FIELDS = ("version", "key", "sk", "files", "schema", "config", "location")


def diverge_if_published(record: dict[str, Any] | None, settings: Settings) -> bool:
    """Mark the table diverged when this FAILED upload had begun publishing (Publish writes
    ``published`` before its first record is sent), so part of its ops may be applied: the
    table's next version then reconverges the target (``snapcdc.steps.plan``). Called before the
    lock is released, so no other version of the table can plan in between."""
    if not record or "published" not in record or not all(f in record for f in DIVERGED_FIELDS):
        return False
    mark_diverged(
        record["table_id"],
        {f: record[f] for f in DIVERGED_FIELDS},
        table_name=settings.registry_table,
    )
    return True
