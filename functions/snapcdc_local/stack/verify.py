"""Running a verify (and repair) on a deployed stack, and reading what it found.

``snapcdc verify`` (against AWS, or any endpoint boto3 is configured for) and the ``verify
TABLE`` / ``repair TABLE`` lines of ``snapcdc local run --sequence`` both come here: a verify is
an execution of the stack's verify state machine (``verify.asl.json``, ``snapcdc.steps.verify``)
started with ``{"tables": [TABLE], "repair": bool}``; what it found is in the execution's output
(one entry per table and round), in the table's verify records in the registry, and, key by key,
in the comparison's result file (``snapcdc.steps.drift``).

>>> verify_execution_name("acme/items", True)  # doctest: +ELLIPSIS
'repair-acme-items-...'
>>> len(verify_execution_name("a" * 63 + "/" + "b" * 63, False)) <= 80
True
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from snapcdc.aws.registry import find_record, get_head
from snapcdc.aws.result_files import iter_records
from snapcdc.model.contract import TableSchema
from snapcdc.model.names import parse_table_id
from snapcdc.steps.drift import KINDS, Drift, parse_drift
from snapcdc_local.stack.follow import wait_for_execution

MAX_EXECUTION_NAME = 80
# exit statuses of snapcdc verify (and the status a verify line reports)
EXIT = {"CLEAN": 0, "DRIFT": 1, "FAILED": 2, "BUSY": 3}


class VerifyError(ValueError):
    """The verify could not be started, or ended without a result for the table."""


def verify_execution_name(table_id: str, repair: bool) -> str:
    """``verify-{tenant}-{table}-{random}`` (or ``repair-...``), at most 80 characters."""
    readable = re.sub(r"[^A-Za-z0-9_-]+", "-", table_id)
    suffix = uuid.uuid4().hex[:12]
    action = "repair" if repair else "verify"
    return f"{action}-{readable}"[: MAX_EXECUTION_NAME - len(suffix) - 1] + f"-{suffix}"


def start_verify(sfn: Any, state_machine_arn: str, table_id: str, repair: bool) -> str:
    """Start a verify of one table; its execution ARN."""
    return sfn.start_execution(
        stateMachineArn=state_machine_arn,
        name=verify_execution_name(table_id, repair),
        input=json.dumps({"tables": [table_id], "repair": repair}),
    )["executionArn"]


def check_table(table_id: str, registry_table: str) -> None:
    """Refuse, before anything starts, a table name that is not one, or a table the pipeline
    has never applied a version of."""
    parse_table_id(table_id)
    head = get_head(table_id, table_name=registry_table)
    if not head or not head.get("last_applied_version"):
        raise VerifyError(f"no version of {table_id} has been applied: nothing to verify against")


def wait(sfn: Any, arn: str, timeout: float, poll: float) -> dict[str, Any]:
    try:
        return wait_for_execution(sfn, arn, timeout, poll)
    except TimeoutError as exc:
        raise VerifyError(f"verify {exc}") from None


@dataclass
class Round:
    """One round of a table's verify: its registry record."""

    record: dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.record.get("status", "FAILED"))

    def counts(self) -> dict[str, int]:
        return {kind: int(self.record.get(kind) or 0) for kind in KINDS}

    @property
    def schema(self) -> TableSchema | None:
        raw = self.record.get("schema")
        return TableSchema.from_dict(raw) if raw else None

    def drifts(self, s3: Any) -> Iterator[Drift]:
        """Every drifted key, in the comparison result's order."""
        uri, schema = self.record.get("result"), self.schema
        if not uri or schema is None:
            return
        for number, (fields, _) in enumerate(iter_records(s3, uri)):
            if number:  # row 0 is the header
                yield parse_drift(fields, schema)


@dataclass
class Outcome:
    """What a verify execution found for one table: its rounds, first to last."""

    table_id: str
    execution_arn: str
    rounds: list[Round] = field(default_factory=list)
    failure: str | None = None  # the execution failed: its error and cause

    @property
    def first(self) -> Round | None:
        return self.rounds[0] if self.rounds else None

    @property
    def last(self) -> Round | None:
        return self.rounds[-1] if self.rounds else None

    @property
    def status(self) -> str:
        """CLEAN, DRIFT, BUSY or FAILED: of the last round (after a repair, the second)."""
        if self.failure or self.last is None:
            return "FAILED"
        status = self.last.status
        return status if status in EXIT else "FAILED"

    @property
    def exit_status(self) -> int:
        return EXIT[self.status]


def outcome(sfn: Any, described: dict[str, Any], table_id: str, registry_table: str) -> Outcome:
    """The verify's outcome for ``table_id``, from its execution and its registry records."""
    result = Outcome(table_id=table_id, execution_arn=described["executionArn"])
    output = json.loads(described.get("output") or "{}") if described.get("output") else {}
    for table in output.get("tables", []):
        if table.get("table_id") != table_id:
            continue
        for brief in table.get("rounds", []):
            record = find_record(table_id, brief["sk"], table_name=registry_table) or brief
            result.rounds.append(Round(record))
    if described["status"] != "SUCCEEDED":
        cause = lambda_message(described.get("cause")) or described.get("error")
        result.failure = f"verify execution {described['status']}: " + " ".join(
            str(cause or described["status"]).split()
        )
    elif not result.rounds:
        result.failure = f"the verify recorded nothing for {table_id}"
    return result


def lambda_message(cause: str | None) -> str | None:
    """``errorType: errorMessage`` of a Lambda error a Catch passed on as the cause (its JSON,
    with a stack trace a user has no use for), else the cause as it is.

    >>> lambda_message('{"errorType": "ExportFailed", "errorMessage": "no", "stackTrace": []}')
    'ExportFailed: no'
    """
    try:
        parsed = json.loads(cause or "")
    except ValueError:
        return cause
    if isinstance(parsed, dict) and parsed.get("errorMessage"):
        return f"{parsed.get('errorType', 'Error')}: {parsed['errorMessage']}"
    return cause
