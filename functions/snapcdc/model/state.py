"""The records the state machine passes between its states, typed at each handler's edge.

``state_machine.asl.json`` moves JSON between the Lambda tasks; these classes are that JSON's
shape, stated once. A handler parses its event with ``from_dict`` and returns ``to_dict()``;
the steps in ``snapcdc.steps`` only see attributes. Field names are the JSON keys the ASL's
paths use (``$.upload.table_id``, ``$.status.state``, ``$.publish.done``, ...):
``tests/stack/test_state_records.py`` checks every such path against these fields.

Where a record sits in the execution's state::

    $.upload          Upload          Register's output (or the held upload, on approve)
    $.plan            Plan            Plan's output; $.plan.queries: [Statement]
    $.queries         [QueryStatus]   RunQueries' output: one status per statement
    $.publish         PublishProgress Publish's loop variable (InitPublish starts it)
    $.error           CaughtError     what a Catch put there ({Error, Cause})
    $.failure         Failure         MarkFailed's output
    $.snapcdc_route   Routed          StartNamedExecution's (Route's) output
    $.guard           GuardVerdict    Guard's output (a held one becomes $.result)
    $.result          HeadCheck       CheckHead's output, on an approve execution
    $.result          FinishSummary   Finish's output: the execution's output
    $                 Resumed         Resume's output, on an approve / reject execution
    $                 ExecutionState  what Guard, CheckHead, Finish and MarkFailed read

A field whose value is None is absent from the JSON (``to_dict`` leaves it out) and absent JSON
becomes None (``from_dict``); keys a record does not know are ignored, so a state written by an
older version of the code (a held version's record, say) still reads. A record missing a key
it needs raises :class:`StateError` naming the record and the key.

>>> up = Upload.from_dict({"table_id": "t/x", "key": "t/x/V1/a.csv.gz", "version": "V1"})
>>> (up.table_id, up.version, up.sk)
('t/x', 'V1', None)
>>> up.to_dict()
{'table_id': 't/x', 'key': 't/x/V1/a.csv.gz', 'outcome': 'registered', 'version': 'V1'}
>>> Statement.from_dict({"name": "delta"})
Traceback (most recent call last):
...
snapcdc.model.state.StateError: statement {'name': 'delta'} has no 'kind'
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from snapcdc.model.contract import TableConfig, TableSchema

R = TypeVar("R", bound="Record")


class StateError(ValueError):
    """The state handed to a step is not the shape the state machine gives it."""


class Record:
    """``from_dict`` / ``to_dict`` for the dataclasses below; a field typed as a record (or as
    the contract's TableSchema / TableConfig), or as a list of them, converts through theirs."""

    WHAT: ClassVar[str] = "record"

    @classmethod
    def fields_of(cls, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise StateError(f"{cls.WHAT} must be a JSON object, got {type(data).__name__}")
        names = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        for name, spec in names.items():
            required = (
                spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING
            )
            if required and data.get(name) is None:
                raise StateError(f"{cls.WHAT} {str(data)[:200]} has no {name!r}")
        return {k: v for k, v in data.items() if k in names and v is not None}

    @classmethod
    def from_dict(cls: type[R], data: Any) -> R:
        hints = _hints(cls)
        return cls(**{k: _parsed(hints[k], v) for k, v in cls.fields_of(data).items()})

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: _json(getattr(self, f.name))
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
            if getattr(self, f.name) is not None
        }


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _parsed(hint: Any, value: Any) -> Any:
    """``value`` as the field typed ``hint`` holds it (``X | None`` read as ``X``)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is list and args and hasattr(args[0], "from_dict"):
        return [args[0].from_dict(item) for item in value]
    if isinstance(hint, types.UnionType) and len(args) == 1:
        return _parsed(args[0], value)
    if hasattr(hint, "from_dict"):
        return hint.from_dict(value)
    return value


def _json(value: Any) -> Any:
    """A field's JSON: nested records (and the contract's TableSchema / TableConfig) by their
    own ``to_dict``, lists item by item."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, list):
        return [_json(item) for item in value]
    return value


@dataclass(frozen=True)
class Upload(Record):
    """One uploaded object as Register registered it; ``outcome``: ``registered``,
    ``rejected`` (with ``error``), ``duplicate`` or ``part``. The lock fields are set for a
    registered upload only (the ASL's Lock states read them)."""

    WHAT: ClassVar[str] = "upload"

    table_id: str
    key: str
    outcome: str = "registered"
    sk: str | None = None
    tenant: str | None = None
    table: str | None = None
    version: str | None = None
    file: str | None = None
    bucket: str | None = None
    size: int | None = None
    etag: str | None = None
    sequencer: str | None = None
    execution_arn: str | None = None
    registered_at: str | None = None
    error: str | None = None
    lock_expires_at: str | None = None
    lock_retry_seconds: int | None = None
    lock_max_attempts: int | None = None
    query_poll_seconds: int | None = None


@dataclass(frozen=True)
class Statement(Record):
    """One planned Athena statement: its SQL inline or, when long, at ``sql_location``.
    ``kind``: ``ddl``, ``check`` (with the manifest's ``expected_rows`` and the ``key`` it
    checks) or ``ops``."""

    WHAT: ClassVar[str] = "statement"

    name: str
    kind: str
    sql: str | None = None
    sql_location: str | None = None
    expected_rows: int | None = None
    key: list[str] | None = None


@dataclass(frozen=True)
class CheckResult(Record):
    """The export check's verdict (``snapcdc.steps.check``), at ``$.status.check``."""

    WHAT: ClassVar[str] = "check result"

    row_count: int = 0


@dataclass(frozen=True)
class QueryStatus(Record):
    """One statement's state in Athena; ``wait_seconds``: the Wait before the next poll.
    A held version keeps these without ``state``, ``reason`` and ``wait_seconds``."""

    WHAT: ClassVar[str] = "query status"

    name: str
    kind: str
    query_id: str
    state: str | None = None
    reason: str | None = None
    output_location: str | None = None
    bytes_scanned: int = 0
    wait_seconds: int | None = None
    check: CheckResult | None = None


def rows_read(queries: list[QueryStatus]) -> int:
    """The new export's row count, as the export check counted it (0 without a check)."""
    check = next((q.check for q in queries if q.kind == "check" and q.check), None)
    return check.row_count if check else 0


@dataclass(frozen=True)
class Plan(Record):
    """What Plan decided: ``action`` ``skip``, ``first_load``, ``delta`` or ``reconverge``, and
    the statements; the rest describes the new version (absent for ``skip``)."""

    WHAT: ClassVar[str] = "plan"

    action: str
    reason: str = ""
    queries: list[Statement] = field(default_factory=list)
    last_applied_version: str | None = None
    previous_version: str | None = None
    diverged_versions: list[str] | None = None
    expected_rows: int | None = None
    database: str | None = None
    table: str | None = None
    location: str | None = None
    files: list[str] | None = None
    schema: TableSchema | None = None
    config: TableConfig | None = None


@dataclass
class PublishProgress(Record):
    """Publish's position in the ops result and what it sent so far; InitPublish starts it at
    zero and each Publish call returns the next one, until ``done``. ``records``: ops Kinesis
    took (counted per batch); ``kinesis_records``: the aggregated records they went in.
    ``sent``: ``[first, end)`` ranges of the ordinals (rows after ``cursor``) Kinesis already
    took of a batch it partly refused (a plain ordinal, the older format, is read as one)."""

    WHAT: ClassVar[str] = "publish progress"

    cursor: int = 0
    done: bool = False
    calls: int = 0
    records: int = 0
    kinesis_records: int = 0
    retries: int = 0
    inserts: int = 0
    updates: int = 0
    deletes: int = 0
    sent: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class CaughtError(Record):
    """What a Catch with ``ResultPath: $.error`` puts in the state (Step Functions' names)."""

    WHAT: ClassVar[str] = "error"

    Error: str = "Unknown"  # noqa: N815 (Step Functions' key)
    Cause: str = ""  # noqa: N815


@dataclass(frozen=True)
class Failure(Record):
    """MarkFailed's output: the lock ReleaseLockAfterFailure deletes, the Fail state's error
    and cause; ``lock_id`` ``-`` matches no lock (no table was known)."""

    WHAT: ClassVar[str] = "failure"

    lock_id: str
    error: str
    cause: str
    diverged: bool = False


@dataclass(frozen=True)
class Routed(Record):
    """Route's output: ``outcome`` ``started`` (the named execution's ``execution_arn``),
    ``duplicate`` (that name already ran) or ``unnamed`` (the pipeline runs in the calling
    execution), with ``reason`` when not started."""

    WHAT: ClassVar[str] = "route outcome"

    outcome: str
    name: str | None = None
    reason: str | None = None
    execution_arn: str | None = None


@dataclass(frozen=True)
class GuardVerdict(Record):
    """Guard's output: ``held`` false lets the version publish; ``held`` true comes with the
    summary the registry record and the execution's output get (``status`` ``HELD``)."""

    WHAT: ClassVar[str] = "guard verdict"

    held: bool
    previous_rows: int | None = None
    status: str | None = None
    table_id: str | None = None
    version: str | None = None
    key: str | None = None
    reason: str | None = None
    hold_reason: str | None = None  # kept when an approved run records its own reason
    previous_version: str | None = None
    rows_read: int | None = None
    inserts: int | None = None
    updates: int | None = None
    deletes: int | None = None


@dataclass(frozen=True)
class HeadCheck(Record):
    """CheckHead's output: ``publish`` true (``status`` ``APPROVED``), or false with the
    SKIPPED upload and the reason (the execution's output)."""

    WHAT: ClassVar[str] = "head check"

    status: str
    publish: bool
    table_id: str | None = None
    key: str | None = None
    version: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class FinishSummary(Record):
    """Finish's output (the execution's output) and what the upload's registry record gets:
    ``status`` ``SKIPPED``, or ``SUCCEEDED`` with the counts."""

    WHAT: ClassVar[str] = "finish summary"

    table_id: str
    status: str
    action: str
    reason: str = ""
    version: str | None = None
    key: str | None = None
    sequencer: str | None = None
    inserts: int | None = None
    updates: int | None = None
    deletes: int | None = None
    records_published: int | None = None
    published: int | None = None
    rows_read: int | None = None
    query_ids: list[str] | None = None
    bytes_scanned: int | None = None
    head_advanced: bool | None = None


@dataclass(frozen=True)
class ResumeRequest(Record):
    """What ``snapcdc approve`` / ``reject`` starts an execution with (``$.resume``)."""

    WHAT: ClassVar[str] = "resume request"

    action: str
    table_id: str
    sk: str


@dataclass(frozen=True)
class ResumeResult(Record):
    """What resuming did to the HELD record (a rejected version's execution output)."""

    WHAT: ClassVar[str] = "resume result"

    status: str
    table_id: str
    key: str | None = None
    version: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class Resumed(Record):
    """Resume's output, which becomes the whole state: ``outcome`` ``rejected``, or
    ``approved`` with the held upload (a fresh lock lease), plan and statements the rest of the
    execution runs on (so it reads as an ExecutionState)."""

    WHAT: ClassVar[str] = "resume outcome"

    outcome: str
    result: ResumeResult
    resume: ResumeRequest | None = None
    upload: Upload | None = None
    plan: Plan | None = None
    queries: list[QueryStatus] | None = None


@dataclass(frozen=True)
class ExecutionState(Record):
    """The whole state (``$``) as Guard, CheckHead, Finish and MarkFailed get it; each part is
    present once the state that writes it has run. ``event``: the S3 event the execution
    started from (MarkFailed finds the upload by it when Register did not finish)."""

    WHAT: ClassVar[str] = "execution state"

    upload: Upload | None = None
    plan: Plan | None = None
    queries: list[QueryStatus] = field(default_factory=list)
    publish: PublishProgress | None = None
    error: CaughtError | None = None
    event: dict[str, Any] | None = None
    resume: ResumeRequest | None = None

    @classmethod
    def readable_parts(cls, data: Any) -> ExecutionState:
        """The state or, when part of it does not parse, the parts that name the upload and the
        error: a failure may be why the state is odd, and an approve execution's input names
        its upload by ``table_id`` and ``sk`` only (``snapcdc_local.stack.resume``)."""
        try:
            return cls.from_dict(data)
        except ValueError:  # StateError, or a ContractError from a plan's schema
            pass
        if not isinstance(data, dict):
            return cls()
        parts: dict[str, Any] = {}
        for name, record in (("upload", Upload), ("error", CaughtError), ("resume", ResumeRequest)):
            try:
                parts[name] = record.from_dict(data[name]) if data.get(name) else None
            except ValueError:
                parts[name] = None
        event = data.get("event")
        return cls(event=event if isinstance(event, dict) else None, **parts)
