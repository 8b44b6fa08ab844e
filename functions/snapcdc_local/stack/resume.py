"""Starting the execution that approves or rejects a HELD version (``snapcdc.steps.hold``).

``snapcdc approve KEY`` / ``snapcdc reject KEY`` (against a deployed stack) and the ``approve
KEY`` / ``reject KEY`` lines of ``snapcdc local run --sequence`` both come here. Resuming is a
new execution of the pipeline's state machine, not a task token the held execution waits on: a
waiting execution would keep the table's lock (or give it up and have to take it again, with a
head that may have moved meanwhile), count against the execution's one-year limit and the
lock lease. A new execution takes the lock like any
version, checks the head under it, and publishes from the ops result the held run left
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html).

Its name is derived from the action and the upload, so the same resume runs once: started
again while it runs, Step Functions returns the running execution (same name, same input);
after it ended, it refuses the name (unique per state machine for 90 days:
``ExecutionAlreadyExists``). The registry's conditional HELD -> APPROVED / REJECTED write
refuses an approve after a reject and the reverse.

>>> resume_execution_name("approve", "upload#tenant/t/V2/x.csv.gz#0A")  # doctest: +ELLIPSIS
'approve-tenant-t-V2-...'
>>> len(resume_execution_name("reject", "upload#" + "x" * 300)) <= 80
True
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from botocore.exceptions import ClientError

from snapcdc.aws.registry import list_uploads
from snapcdc.model.contract import parse_export_key

ACTIONS = ("approve", "reject")
PAST = {"approve": "approved", "reject": "rejected"}
MAX_EXECUTION_NAME = 80


class ResumeError(ValueError):
    """The key names no HELD upload, or its execution could not be started."""


def resume_execution_name(action: str, sk: str) -> str:
    """``{action}-{tenant}-{table}-{version}-{hash of the upload}``, at most 80 characters."""
    key = sk.removeprefix("upload#").rsplit("#", 1)[0]
    readable = re.sub(r"[^A-Za-z0-9_-]+", "-", "-".join(key.split("/")[:3]))
    digest = hashlib.sha256(sk.encode()).hexdigest()[:16]
    return f"{action}-{readable}"[: MAX_EXECUTION_NAME - 17] + f"-{digest}"


def held_upload(key: str, registry_table: str) -> dict[str, Any]:
    """The HELD record of an export key (the latest, if it was uploaded and held twice)."""
    ref = parse_export_key(key)
    records = list_uploads(ref.table_id, key=key, table_name=registry_table)
    held = [r for r in records if r.get("status") == "HELD"]
    if not held:
        if not records:
            raise ResumeError(f"no upload of {key} is registered in table {ref.table_id}")
        statuses = ", ".join(sorted({str(r.get("status")) for r in records}))
        raise ResumeError(f"{key} is not HELD (its upload is {statuses}); nothing to resume")
    return max(held, key=lambda r: str(r.get("registered_at", "")))


def start_resume(
    sfn: Any, state_machine_arn: str, registry_table: str, action: str, key: str
) -> str:
    """Start the approve / reject execution of ``key``'s HELD upload; return its ARN."""
    if action not in ACTIONS:
        raise ResumeError(f"unknown action {action!r}: expected approve or reject")
    record = held_upload(key, registry_table)
    ref = {"table_id": record["table_id"], "sk": record["sk"]}
    name = resume_execution_name(action, record["sk"])
    try:
        return sfn.start_execution(
            stateMachineArn=state_machine_arn,
            name=name,
            # "upload" names the record for ExecutionEnded, as a routed S3 event does
            input=json.dumps({"resume": {"action": action, **ref}, "upload": ref}),
        )["executionArn"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ExecutionAlreadyExists":
            raise ResumeError(
                f"{key} was already {PAST[action]}: execution {name} exists"
            ) from None
        raise
