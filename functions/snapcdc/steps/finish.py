"""The end of a pipeline run: SUCCEEDED / SKIPPED with counts, or FAILED with a readable reason.

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
from snapcdc.aws.registry import advance_head, mark_diverged, update_upload, upload_sk
from snapcdc.model.events import EventError, object_event, parse_key_parts
from snapcdc.model.settings import Settings
from snapcdc.steps.applied_check import watch_published


def finish(
    state: dict[str, Any], execution_arn: str, settings: Settings, now: datetime
) -> dict[str, Any]:
    """Record SUCCEEDED (and advance the head) or SKIPPED; return the summary."""
    upload, plan = state["upload"], state["plan"]
    summary: dict[str, Any] = {
        "table_id": upload["table_id"],
        "version": upload["version"],
        "key": upload["key"],
        "sequencer": upload["sequencer"],
        "action": plan["action"],
        "reason": plan.get("reason", ""),
    }
    if plan["action"] == "skip":
        summary["status"] = "SKIPPED"
    else:
        queries = state.get("queries") or []
        progress = state.get("publish") or {}
        check = next((q.get("check") for q in queries if q.get("kind") == "check"), None) or {}
        summary.update(
            status="SUCCEEDED",
            inserts=int(progress.get("inserts", 0)),
            updates=int(progress.get("updates", 0)),
            deletes=int(progress.get("deletes", 0)),
            records_published=int(progress.get("records", 0)),
            published=int(progress.get("records", 0)),
            rows_read=int(check.get("row_count", 0)),
            query_ids=[q["query_id"] for q in queries],
            bytes_scanned=sum(int(q.get("bytes_scanned", 0)) for q in queries),
        )
        summary["head_advanced"] = advance_head(
            upload["table_id"],
            upload["version"],
            {
                "schema": plan["schema"],
                "config": plan["config"],
                "location": plan["location"],
                "files": plan["files"],
                "rows": summary["rows_read"],
                "applied_at": iso(now),
                "applied_key": upload["key"],
                "execution_arn": execution_arn,
                # this version's ops were all published: whatever a diverged version left
                # is overwritten or deleted by them (reconverge) or was never sent
                "diverged": [],
            },
            table_name=settings.registry_table,
        )
        if summary["published"]:
            watch_published(
                upload["table_id"], upload["sk"], iso(now), table_name=settings.registry_table
            )
        if not summary["head_advanced"]:
            # Only possible when this run's lease was taken over by a later version; the
            # consumer's version check keeps the target right, the head stays at the later one.
            summary["reason"] += "; head not advanced: a later version was applied meanwhile"
    update_upload(
        upload["table_id"],
        upload["sk"],
        {**{k: v for k, v in summary.items() if k not in ("table_id", "key", "sequencer")},
         "finished_at": iso(now), "updated_at": iso(now)},
        table_name=settings.registry_table,
    )  # fmt: skip
    return summary


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


def upload_ref(state: dict[str, Any]) -> tuple[str, str] | None:
    """``(table_id, sk)`` of the run's upload record, from the registered upload or the event."""
    upload = state.get("upload")
    if isinstance(upload, dict) and upload.get("table_id") and upload.get("sk"):
        return upload["table_id"], upload["sk"]
    event = state.get("event")
    try:
        obj = object_event(event if isinstance(event, dict) else state)
    except EventError:
        return None
    tenant, table, _, _ = parse_key_parts(obj.key)
    return f"{tenant}/{table}", upload_sk(obj.key, obj.sequencer)


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
    state: dict[str, Any], execution_arn: str, settings: Settings, now: datetime
) -> dict[str, Any]:
    """Record FAILED with the error; return the lock to release and the error for the Fail state."""
    error = state.get("error") or {}
    name = str(error.get("Error") or "Unknown")
    cause = readable_cause(error.get("Cause") or "")
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
    return {"lock_id": table_id or "-", "error": name, "cause": cause[:32000], "diverged": diverged}


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
