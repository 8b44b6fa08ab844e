"""The end of a pipeline run that got through: SUCCEEDED (the head advances) or SKIPPED, with
counts. A run that failed ends in ``snapcdc.steps.mark_failed`` instead."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from snapcdc.aws.leases import iso
from snapcdc.aws.registry import advance_head, update_upload
from snapcdc.model.settings import Settings
from snapcdc.model.state import ExecutionState, StateError, rows_read
from snapcdc.steps.applied_check import watch_published


def finish(
    state: ExecutionState, execution_arn: str, settings: Settings, now: datetime
) -> dict[str, Any]:
    """Record SUCCEEDED (and advance the head) or SKIPPED; return the summary."""
    upload, plan = state.upload, state.plan
    if upload is None or plan is None:
        raise StateError("Finish needs the execution state's upload and plan")
    summary: dict[str, Any] = {
        "table_id": upload.table_id,
        "version": upload.version,
        "key": upload.key,
        "sequencer": upload.sequencer,
        "action": plan.action,
        "reason": plan.reason,
    }
    if plan.action == "skip":
        summary["status"] = "SKIPPED"
    else:
        queries = state.queries
        progress = state.publish
        records = progress.records if progress else 0
        summary.update(
            status="SUCCEEDED",
            inserts=progress.inserts if progress else 0,
            updates=progress.updates if progress else 0,
            deletes=progress.deletes if progress else 0,
            records_published=records,
            published=records,
            rows_read=rows_read(queries),
            query_ids=[q.query_id for q in queries],
            bytes_scanned=sum(q.bytes_scanned for q in queries),
        )
        summary["head_advanced"] = advance_head(
            upload.table_id,
            upload.version,
            {
                "schema": plan.schema.to_dict() if plan.schema else None,
                "config": plan.config.to_dict() if plan.config else None,
                "location": plan.location,
                "files": plan.files,
                "rows": summary["rows_read"],
                "applied_at": iso(now),
                "applied_key": upload.key,
                "execution_arn": execution_arn,
                # this version's ops were all published: whatever a diverged version left
                # is overwritten or deleted by them (reconverge) or was never sent
                "diverged": [],
            },
            table_name=settings.registry_table,
        )
        if summary["published"]:
            watch_published(
                upload.table_id, upload.sk or "", iso(now), table_name=settings.registry_table
            )
        if not summary["head_advanced"]:
            # Only possible when this run's lease was taken over by a later version; the
            # consumer's version check keeps the target right, the head stays at the later one.
            summary["reason"] += "; head not advanced: a later version was applied meanwhile"
    update_upload(
        upload.table_id,
        upload.sk,
        {**{k: v for k, v in summary.items() if k not in ("table_id", "key", "sequencer")},
         "finished_at": iso(now), "updated_at": iso(now)},
        table_name=settings.registry_table,
    )  # fmt: skip
    return summary
