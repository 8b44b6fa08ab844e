"""The ``verify TABLE`` and ``repair TABLE`` lines of ``snapcdc local run --sequence``: the
verify ``snapcdc verify`` runs (``snapcdc_local.stack.verify``), on the emulated stack, at that
point of the sequence; reported as a row of the run (``action`` verify or repair, ``status``
CLEAN, DRIFT, BUSY or FAILED, ``version`` the last applied version compared with, ``reason``
the counts).

>>> verify_line("repair acme/items"), verify_line("acme/items/V1/a.csv.gz")
(('repair', 'acme/items'), None)
"""

from __future__ import annotations

import time
from typing import Any

from snapcdc.model.names import parse_table_id
from snapcdc_local.cli.main import CliError
from snapcdc_local.cli.run_uploads import Upload

VERIFY_ACTIONS = ("verify", "repair")


def verify_line(entry: str) -> tuple[str, str] | None:
    """``("verify", TABLE)`` for a sequence entry ``verify TABLE``; None for anything else."""
    action, _, table = entry.partition(" ")
    return (action, table.strip()) if action in VERIFY_ACTIONS and table.strip() else None


def check_line(entry: str, where: str) -> str | None:
    """The sequence entry of a ``verify TABLE`` / ``repair TABLE`` line, its table checked;
    None when the line is not one."""
    found = verify_line(entry)
    if found is None:
        return None
    try:
        parse_table_id(found[1])
    except ValueError as exc:
        raise CliError(f"{where}: {exc}") from None
    return f"{found[0]} {found[1]}"


def run_verify(run: Any, action: str, table_id: str, timeout: float) -> Upload:
    """Verify (or repair) one table of the run's stack, once the pipeline has settled."""
    from snapcdc_local.stack import verify

    tenant, table = parse_table_id(table_id)
    upload = Upload(table_id, tenant, table, "", action=action, started=time.monotonic())
    outputs = run.aws.stack.outputs
    if "VerifyStateMachineArn" not in outputs:
        raise CliError("the stack has no output VerifyStateMachineArn; verify / repair need it")
    registry = outputs["RegistryTableName"]
    run.settle(timeout)  # the versions before the line are applied first
    try:
        verify.check_table(table_id, registry)
    except verify.VerifyError as exc:
        upload.status, upload.error = "FAILED", str(exc)
        return upload
    sfn = run.aws.client("stepfunctions")
    arn = verify.start_verify(sfn, outputs["VerifyStateMachineArn"], table_id, action == "repair")
    upload.executions.append(arn)
    run.settle(timeout)
    found = verify.outcome(sfn, verify.wait(sfn, arn, timeout, 0.2), table_id, registry)
    upload.status = found.status
    upload.seconds = round(time.monotonic() - upload.started, 2)
    first = found.first
    upload.version = str((first.record.get("version") if first else "") or "")
    upload.reason = describe(found)
    if found.failure:
        upload.error = found.failure
    return upload


def describe(found: Any) -> str:
    """One line: per round its status and counts, and what a repair wrote."""
    parts = []
    for number, found_round in enumerate(found.rounds):
        record = found_round.record
        label = "after the repair: " if number else ""
        if found_round.status in ("CLEAN", "DRIFT"):
            counts = ", ".join(f"{n} {kind}" for kind, n in found_round.counts().items())
            columns = sorted(record.get("columns") or {})
            differ = f" ({', '.join(columns)})" if columns else ""
            parts.append(f"{label}{found_round.status}: {counts}{differ}")
        else:
            parts.append(f"{label}{found_round.status}: {record.get('reason') or ''}".rstrip())
        repair = record.get("repair")
        if repair:
            parts.append(
                f"repaired {int(repair.get('applied', 0))} rows "
                f"({int(repair.get('stale', 0))} stale, {int(repair.get('skipped', 0))} "
                f"skipped, {int(repair.get('failed', 0))} failed)"
            )
    return "; ".join(parts)
