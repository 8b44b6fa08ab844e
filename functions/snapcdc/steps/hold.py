"""Holding a version that would delete too much, and resuming it: approve or reject.

A short export (truncated at a row boundary, a failed query that wrote only its header) is a
valid CSV, and its delta turns the missing rows into DELETEs. So after the delta ran, before
anything is published, :func:`guard` counts the ops and holds the version when

- it has no rows while the previous version had some, unless the table's ``allow_empty`` is
  true (which then lets an empty version through whatever ``max_delete_fraction`` says); or
- it has rows, and its DELETEs are more than ``max_delete_fraction`` (default 0.5) of the
  previous version's rows.

The previous version's row count is exact from the delta itself: every previous key is either
kept (UPDATE or unchanged) or DELETEd, every new key kept or INSERTed, so
``previous rows = new rows - inserts + deletes``. It needs no head field, so heads written
before ``rows`` was recorded are handled like any other.

A held version publishes nothing: its registry record becomes HELD with the counts and the
reason, and the state machine releases the lock and ends, so the table is never blocked. The
record keeps what Publish and Finish need (``held``: the upload, the plan without its SQL, the
statements' statuses, among them the ops result's location). Resuming starts a new execution
of the same state machine (``snapcdc approve`` / ``snapcdc reject``); :func:`resume` moves the
record from HELD to APPROVED or REJECTED in one conditional write, so a version is resumed at
most once. An approved version takes the table's lock and :func:`check_head` lets it publish
only if the head is still the version its ops were computed against; otherwise it ends
SKIPPED with that reason (a later version was applied meanwhile: these ops no longer fit). The
ops result lives in the results bucket, whose lifecycle rule expires it after
AthenaResultsExpirationDays (default 7): approved later than that, the version ends FAILED
(HeldOpsExpired) and must be uploaded again.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from snapcdc.aws.clients import client
from snapcdc.aws.dynamo import from_item, to_item, to_value, update_expression
from snapcdc.aws.leases import iso, lease_expiry
from snapcdc.aws.registry import get_head, update_upload
from snapcdc.aws.result_files import count_leading
from snapcdc.model.contract import TableConfig
from snapcdc.model.s3paths import object_uri
from snapcdc.model.settings import Settings
from snapcdc.model.state import (
    ExecutionState,
    Plan,
    QueryStatus,
    ResumeRequest,
    StateError,
    Upload,
    rows_read,
)
from snapcdc.sql.queries import OPS
from snapcdc.steps.publish import ops_status

METRIC_NAMESPACE = "snapcdc"
HELD_METRIC = "HeldVersions"
# What of the plan a held version keeps: Publish and Finish read these, never the SQL.
PLAN_FIELDS = ("action", "reason", "previous_version", "schema", "config", "location", "files")
QUERY_FIELDS = ("name", "kind", "query_id", "output_location", "bytes_scanned", "check")


class ResumeRefused(Exception):
    """approve / reject named an upload that is not HELD (or no upload at all)."""


class HeldOpsExpired(Exception):
    """An approved version's ops result has expired from the results bucket."""


def percent(fraction: float) -> str:
    """``0.7`` -> ``'70%'``; two decimals at most, so 50.4% never reads as 50%.

    >>> percent(0.7), percent(0.504), percent(2 / 3)
    ('70%', '50.4%', '66.67%')
    """
    return f"{fraction * 100:.2f}".rstrip("0").rstrip(".") + "%"


def hold_reason(
    config: TableConfig, previous_version: str, previous_rows: int, rows: int, deletes: int
) -> str | None:
    """Why a version must be held, or None when it may be applied.

    >>> hold_reason(TableConfig(), "V1", 100, 30, 70)  # doctest: +ELLIPSIS
    'would delete 70 of 100 rows (70% > 50%) of V1; ...'
    """
    if rows == 0 and previous_rows > 0:
        if config.allow_empty:  # an empty export is declared legitimate: no fraction applies
            return None
        return (
            f"the export has no rows after {previous_version} with {previous_rows}: it would "
            f'delete every row; approve it, or set "allow_empty": true in _table.json'
        )
    limit = config.max_delete_fraction
    if previous_rows and deletes > limit * previous_rows:
        return (
            f"would delete {deletes} of {previous_rows} rows ({percent(deletes / previous_rows)} "
            f"> {percent(limit)}) of {previous_version}; approve it, or raise "
            "max_delete_fraction in _table.json (1.0 turns the guard off)"
        )
    return None


def count_ops(s3: Any, output_location: str) -> dict[str, int]:
    """INSERT / UPDATE / DELETE counts of an ops result (one streamed read)."""
    return count_leading(s3, output_location, OPS)


def guard(state: ExecutionState, settings: Settings, now: datetime) -> dict[str, Any]:
    """After the queries, before Publish: hold the version (``held`` true) or let it through."""
    upload, plan, queries = _upload_and_plan(state, "Guard") + (state.queries,)
    if plan.action != "delta":  # a first load deletes nothing
        return {"held": False}
    rows = rows_read(queries)
    counts = count_ops(client("s3"), ops_status(queries).output_location or "")
    inserts, updates, deletes = counts["INSERT"], counts["UPDATE"], counts["DELETE"]
    previous_rows = rows - inserts + deletes
    reason = hold_reason(
        plan.config or TableConfig(), plan.previous_version or "", previous_rows, rows, deletes
    )
    if reason is None:
        return {"held": False, "previous_rows": previous_rows}
    summary = {
        "held": True,
        "status": "HELD",
        "table_id": upload.table_id,
        "version": upload.version,
        "key": upload.key,
        "reason": reason,
        "hold_reason": reason,  # kept when an approved run records its own reason
        "previous_version": plan.previous_version,
        "previous_rows": previous_rows,
        "rows_read": rows,
        "inserts": inserts,
        "updates": updates,
        "deletes": deletes,
    }
    planned = plan.to_dict()
    kept = {
        "upload": upload.to_dict(),
        "plan": {k: planned[k] for k in PLAN_FIELDS if k in planned},
        "queries": [{k: v for k, v in q.to_dict().items() if k in QUERY_FIELDS} for q in queries],
    }
    update_upload(
        upload.table_id,
        upload.sk,
        {**{k: v for k, v in summary.items() if k not in ("held", "table_id", "key")},
         "held": json.dumps(kept, separators=(",", ":")), "held_at": iso(now),
         "updated_at": iso(now)},
        table_name=settings.registry_table,
    )  # fmt: skip
    put_held_metric(upload.table_id)
    return summary


def _upload_and_plan(state: ExecutionState, step: str) -> tuple[Upload, Plan]:
    if state.upload is None or state.plan is None:
        raise StateError(f"{step} needs the execution state's upload and plan")
    return state.upload, state.plan


def put_held_metric(table_id: str) -> None:
    """One ``snapcdc/HeldVersions`` data point per held version, per table and in total (the
    alarm watches the total: a metric alarm needs its exact dimensions)."""
    client("cloudwatch").put_metric_data(
        Namespace=METRIC_NAMESPACE,
        MetricData=[
            {"MetricName": HELD_METRIC, "Value": 1, "Unit": "Count"},
            {
                "MetricName": HELD_METRIC,
                "Dimensions": [{"Name": "Table", "Value": table_id}],
                "Value": 1,
                "Unit": "Count",
            },
        ],
    )


def resume(
    request: ResumeRequest, execution_arn: str, settings: Settings, now: datetime
) -> dict[str, Any]:
    """The first step of an approve / reject execution: HELD -> APPROVED or REJECTED.

    Returns the state the rest of the execution runs on: for approve, the held upload (with a
    fresh lock lease), plan and statements; for reject, the result.
    """
    action = request.action
    if action not in ("approve", "reject"):
        raise ResumeRefused(f"unknown action {action!r}: expected approve or reject")
    table_id, sk = request.table_id, request.sk
    status = "APPROVED" if action == "approve" else "REJECTED"
    values = {
        "status": status,
        f"{status.lower()}_at": iso(now),
        "resumed_by": execution_arn,
        "updated_at": iso(now),
    }
    if action == "approve":
        # From here on this execution owns the record: ExecutionEnded marks it FAILED if the
        # execution ends where its Catch cannot see.
        values["execution_arn"] = execution_arn
    record = _transition(table_id, sk, "HELD", values, settings.registry_table)
    result = {
        "status": status,
        "table_id": table_id,
        "key": record.get("key"),
        "version": record.get("version"),
        "reason": record.get("reason", ""),
    }
    if action == "reject":
        return {"outcome": "rejected", "result": result}
    kept = json.loads(record["held"])
    upload = replace(
        Upload.from_dict(kept["upload"]),
        execution_arn=execution_arn,
        lock_expires_at=lease_expiry(now, settings.lock_expiry_seconds),
        lock_retry_seconds=settings.lock_retry_seconds,
        lock_max_attempts=settings.lock_max_attempts,
    )
    return {
        "outcome": "approved",
        "resume": request.to_dict(),
        "upload": upload.to_dict(),
        "plan": Plan.from_dict(kept["plan"]).to_dict(),
        "queries": [QueryStatus.from_dict(q).to_dict() for q in kept["queries"]],
        "result": result,
    }


def check_head(state: ExecutionState, settings: Settings, now: datetime) -> dict[str, Any]:
    """Under the table's lock: may the approved ops be published? SKIPPED (recorded) if not."""
    upload, plan = _upload_and_plan(state, "CheckHead")
    head = get_head(upload.table_id, table_name=settings.registry_table) or {}
    current = head.get("last_applied_version")
    computed = plan.previous_version
    if current == computed:
        _require_ops_result(ops_status(state.queries).output_location or "")
        update_upload(
            upload.table_id, upload.sk, {"status": "RUNNING", "updated_at": iso(now)},
            table_name=settings.registry_table,
        )  # fmt: skip
        return {"status": "APPROVED", "publish": True}
    reason = (
        f"approved, but its ops were computed against {computed} and the table's head is now "
        f"{current}: not applied (upload the version again to apply it against {current})"
    )
    update_upload(
        upload.table_id,
        upload.sk,
        {"status": "SKIPPED", "reason": reason, "finished_at": iso(now), "updated_at": iso(now)},
        table_name=settings.registry_table,
    )
    return {
        "status": "SKIPPED",
        "publish": False,
        "table_id": upload.table_id,
        "key": upload.key,
        "version": upload.version,
        "reason": reason,
    }


def _require_ops_result(location: str) -> None:
    """Raise HeldOpsExpired when the held ops result is gone: the results bucket's lifecycle
    rule expires Athena's results after AthenaResultsExpirationDays."""
    bucket, key = object_uri(location)
    try:
        client("s3").head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
            raise
        raise HeldOpsExpired(
            f"the held version's ops result {location} no longer exists (Athena results are "
            "kept AthenaResultsExpirationDays days); upload the version again to recompute it"
        ) from None


def _transition(
    table_id: str, sk: str, expected: str, values: dict[str, Any], table_name: str
) -> dict[str, Any]:
    """SET ``values`` (a ``status`` and ``resumed_by``) on an upload record whose status is
    ``expected``; the new record."""
    args = update_expression(values)
    args["ExpressionAttributeNames"].update({"#status_now": "status", "#by": "resumed_by"})
    args["ExpressionAttributeValues"].update(
        {":expected": to_value(expected), ":target": to_value(values["status"]),
         ":me": to_value(values["resumed_by"])}
    )  # fmt: skip
    try:
        response = client("dynamodb").update_item(
            TableName=table_name,
            Key=to_item({"table_id": table_id, "sk": sk}),
            # or already done by this execution: a retried Lambda invocation
            ConditionExpression="#status_now = :expected OR (#status_now = :target AND #by = :me)",
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
            **args,
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        old = exc.response.get("Item")
        status = from_item(old).get("status") if old else None
        raise ResumeRefused(
            f"upload {sk.removeprefix('upload#')} of {table_id} is "
            + (f"{status}, not {expected}" if status else "not registered")
        ) from None
    return from_item(response["Attributes"])
