"""Step Functions executions in moto: the gaps bridged here, and reading executions back.

Gaps: moto's executing backend names an execution started without a name ``None`` (so a
second unnamed start collides with the first); AWS gives it a UUID, and EventBridge starts
executions without a name. moto writes the context object's times in Python's ISO format
rather than AWS's. moto sends no "Step Functions Execution Status Change" events to
EventBridge, and its StopExecution leaves the execution RUNNING until the state in progress
returns. :func:`installed` bridges all four, and installs :mod:`.stepfunctions_limits` (the
errors ``States.ALL`` does not catch, the history-event quota). moto itself enforces
``TimeoutSeconds`` (the execution is TIMED_OUT when it passes) and the 256 KiB payload
(``States.DataLimitExceeded``).

The rest reads what the Step Functions API returns: which executions run, waiting for them,
and :func:`history_rows`, the execution history as (state, type, seconds, error) rows.

>>> rows = history_rows([
...     {"type": "ExecutionStarted", "timestamp": 0},
...     {"type": "TaskStateEntered", "timestamp": 1, "stateEnteredEventDetails": {"name": "Check"}},
...     {"type": "TaskFailed", "timestamp": 3,
...      "taskFailedEventDetails": {"error": "Boom", "cause": "x"}},
...     {"type": "TaskStateExited", "timestamp": 3, "stateExitedEventDetails": {"name": "Check"}},
... ])
>>> [(r.state, r.type, r.seconds, r.error) for r in rows]
[('Check', 'Task', 2.0, 'Boom: x')]
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from unittest import mock

from snapcdc.steps.mark_failed import readable_cause
from snapcdc_local.emulator import asl_cache, history_cache, iam, stepfunctions_limits

TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
STATUS_CHANGE = "Step Functions Execution Status Change"


def aws_time(value: Any) -> str:
    """A time as the context object carries it in AWS: ``2019-03-26T20:14:13.192Z``.

    >>> aws_time("2020-12-30T10:00:00.123456+00:00")
    '2020-12-30T10:00:00.123Z'
    """
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class _Pending:
    """Status changes made but not yet handed to EventBridge (so a settled emulator has no
    event still to deliver)."""

    def __init__(self) -> None:
        self._count = 0
        self.changes = 0  # status changes handed over so far
        self._quiet = threading.Condition()

    def begin(self) -> None:
        with self._quiet:
            self._count += 1

    def done(self) -> None:
        with self._quiet:
            self._count -= 1
            self.changes += 1
            self._quiet.notify_all()

    def wait(self, timeout: float) -> bool:
        with self._quiet:
            return self._quiet.wait_for(lambda: self._count == 0, timeout)

    def wait_change(self, seen: int, timeout: float) -> None:
        """Wait until a status change after ``seen`` (a value of :attr:`changes`) or timeout."""
        with self._quiet:
            self._quiet.wait_for(lambda: self.changes != seen, timeout)


ANNOUNCEMENTS = _Pending()


def _millis(moment: Any) -> int | None:
    return int(moment.timestamp() * 1000) if isinstance(moment, dt.datetime) else None


def status_change_event(execution: Any, status: str | None = None) -> dict[str, Any]:
    """The EventBridge event Step Functions sends when a standard execution changes status.

    Shape as documented in "Automating Step Functions event delivery with EventBridge"
    (https://docs.aws.amazon.com/step-functions/latest/dg/eventbridge-integration.html): dates
    in epoch milliseconds, input and output as JSON text, error and cause as the execution has
    them (null while running or after success). ``status``: the status announced, when the
    execution may have moved on since (a short one can end before its RUNNING event is built).
    """
    status = status or execution.exec_status.value
    running = status == "RUNNING"
    succeeded = status == "SUCCEEDED"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": STATUS_CHANGE,
        "source": "aws.states",
        "account": execution.account_id,
        "time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": execution.region_name,
        "resources": [execution.exec_arn],
        "detail": {
            "executionArn": execution.exec_arn,
            "stateMachineArn": execution.state_machine_arn,
            "name": execution.name,
            "status": status,
            "startDate": _millis(execution.start_date),
            "stopDate": None if running else _millis(execution.stop_date),
            "input": json.dumps(execution.input_data, separators=(",", ":")),
            "inputDetails": {"included": True},
            "output": json.dumps(execution.output, separators=(",", ":")) if succeeded else None,
            "outputDetails": {"included": True} if succeeded else None,
            "error": None if running else execution.error,
            "cause": None if running else execution.cause,
        },
    }


@contextmanager
def installed(
    on_status_change: Callable[[dict[str, Any]], Any] | None = None,
    history_quota: int = stepfunctions_limits.HISTORY_EVENT_QUOTA,
) -> Iterator[None]:
    """While the block runs: unnamed executions get a UUID name and the context object's
    ``$$.State.EnteredTime`` / ``$$.Execution.StartTime`` are written as AWS writes them
    (moto uses Python's ``isoformat``, ``...:00.123456+00:00``); every status change of an
    execution (RUNNING, then SUCCEEDED / FAILED / TIMED_OUT / ABORTED once) is passed to
    ``on_status_change`` as Step Functions' EventBridge event; StopExecution makes the execution
    ABORTED at once, as in AWS, and the state in progress can no longer change that."""
    from moto.stepfunctions.parser.api import ExecutionStatus
    from moto.stepfunctions.parser.asl.component.state import state as state_module
    from moto.stepfunctions.parser.backend import execution as execution_module
    from moto.stepfunctions.parser.backend import execution_worker
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend
    from moto.stepfunctions.responses import StepFunctionResponse

    original = StepFunctionsParserBackend.start_execution
    state_data = state_module.StateData
    execution_data = execution_worker.ExecutionData
    execution_class = execution_module.Execution
    communication = execution_module.BaseExecutionWorkerCommunication
    start, stop, reflect = (
        execution_class.start,
        execution_class.stop,
        communication._reflect_execution_status,
    )
    stop_response = StepFunctionResponse.stop_execution
    stop_request = threading.local()  # moto's backend drops StopExecution's error and cause
    transitions = threading.Lock()  # one status change of one execution at a time
    ended: set[str] = set()  # executions whose terminal status was announced

    def announce(execution: Any, status: str | None = None) -> None:
        try:
            if on_status_change is not None:
                on_status_change(status_change_event(execution, status))
        finally:
            ANNOUNCEMENTS.done()

    def started_execution(self: Any) -> None:
        ANNOUNCEMENTS.begin()
        start(self)
        announce(self, "RUNNING")  # its thread may have ended it already: RUNNING came first

    def stop_execution(self: Any) -> Any:
        stop_request.reason = (self._get_param("error"), self._get_param("cause"))
        try:
            return stop_response(self)
        finally:
            stop_request.reason = (None, None)

    def stopped_execution(self: Any, stop_date: Any, error: Any, cause: Any) -> None:
        requested = getattr(stop_request, "reason", (None, None))
        error, cause = error or requested[0] or None, cause or requested[1] or None
        with transitions:
            running = self.exec_status == ExecutionStatus.RUNNING
            if running:
                self.exec_status, self.stop_date = ExecutionStatus.ABORTED, stop_date
                self.error, self.cause = error, cause
                ended.add(self.exec_arn)
                ANNOUNCEMENTS.begin()
        stop(self, stop_date, error, cause)
        if running:
            announce(self)

    def reflected(self: Any) -> None:
        execution = self.execution
        with transitions:
            if execution.exec_arn in ended:  # aborted while a state was still in progress
                return
            reflect(self)
            ended.add(execution.exec_arn)
            ANNOUNCEMENTS.begin()
        announce(execution)

    def start_execution(
        self: Any, state_machine_arn: str, name: Any = None, *args: Any, **kwargs: Any
    ) -> Any:
        name = name or str(uuid.uuid4())
        # The execution's thread (started here) calls its integrations with the machine's role:
        # https://docs.aws.amazon.com/step-functions/latest/dg/lambda-iam.html
        role = self.describe_state_machine(state_machine_arn).roleArn
        with iam.acting_as(role, name):
            return original(self, state_machine_arn, name, *args, **kwargs)

    def entered(**fields: Any) -> Any:
        return state_data(**{**fields, "EnteredTime": aws_time(fields["EnteredTime"])})

    def started(**fields: Any) -> Any:
        return execution_data(**{**fields, "StartTime": aws_time(fields["StartTime"])})

    with (
        mock.patch.object(StepFunctionsParserBackend, "start_execution", start_execution),
        mock.patch.object(state_module, "StateData", entered),
        mock.patch.object(execution_worker, "ExecutionData", started),
        mock.patch.object(execution_class, "start", started_execution),
        mock.patch.object(execution_class, "stop", stopped_execution),
        mock.patch.object(StepFunctionResponse, "stop_execution", stop_execution),
        mock.patch.object(communication, "_reflect_execution_status", reflected),
        stepfunctions_limits.installed(history_quota),
        asl_cache.installed(),
        history_cache.installed(),
    ):
        yield


def list_all_executions(sfn: Any) -> list[dict[str, Any]]:
    """Every execution of every state machine, oldest first."""
    executions = []
    for page in sfn.get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            for epage in sfn.get_paginator("list_executions").paginate(
                stateMachineArn=machine["stateMachineArn"]
            ):
                executions.extend(epage["executions"])
    return sorted(executions, key=lambda e: e["startDate"])


def wait_until_idle(sfn: Any, timeout: float, poll: float = 0.5) -> list[dict[str, Any]]:
    """Wait until no execution is RUNNING and return all; TimeoutError past ``timeout``.

    Between looks it waits for the next status change (at most ``poll`` seconds): listing every
    execution every few milliseconds would take the CPU from the executions themselves.
    """
    deadline = time.monotonic() + timeout
    while True:
        seen = ANNOUNCEMENTS.changes
        executions = list_all_executions(sfn)
        running = [e for e in executions if e["status"] not in TERMINAL]
        if not running:
            return executions
        if time.monotonic() > deadline:
            names = ", ".join(e["name"] for e in running)
            raise TimeoutError(f"executions still running after {timeout:.0f}s: {names}")
        ANNOUNCEMENTS.wait_change(seen, poll)


@dataclass(frozen=True)
class HistoryRow:
    """One state of an execution: its name, type, how long it ran and the error it raised."""

    state: str
    type: str
    seconds: float
    error: str | None


def _seconds(value: Any) -> float:
    return value.timestamp() if isinstance(value, dt.datetime) else float(value)


def _details(event: dict[str, Any]) -> dict[str, Any]:
    for name, value in event.items():
        if name.endswith("EventDetails") and isinstance(value, dict):
            return value
    return {}


def history_rows(events: Iterable[dict[str, Any]]) -> list[HistoryRow]:
    """Fold ``GetExecutionHistory`` events into one row per state entered, in entry order."""
    events = list(events)
    # [order, name, type, entered, exited or None, errors]
    states: list[list[Any]] = []
    open_states: list[list[Any]] = []
    execution_errors: list[str] = []
    for event in events:
        kind, details = event["type"], _details(event)
        if kind.endswith("StateEntered"):
            state = [len(states), details.get("name", "?"), kind[: -len("StateEntered")]]
            state += [_seconds(event["timestamp"]), None, []]
            states.append(state)
            open_states.append(state)
        elif kind.endswith("StateExited") and open_states:
            name = details.get("name")
            match = [s for s in open_states if s[1] == name] or open_states
            match[-1][4] = _seconds(event["timestamp"])
            open_states.remove(match[-1])
        elif "error" in details and (kind.endswith("Failed") or kind.endswith("TimedOut")):
            text = details["error"]
            if details.get("cause"):
                text += f": {readable_cause(details['cause'])}"
            if kind == "ExecutionFailed":
                execution_errors.append(text)
            elif open_states and text not in open_states[-1][5]:
                open_states[-1][5].append(text)
    last = max((_seconds(e["timestamp"]) for e in events), default=0.0)
    rows = []
    for _, name, state_type, entered, exited, errors in states:
        if exited is None:  # the state the execution failed in
            errors = errors + [e for e in execution_errors if e not in errors]
        seconds = round((exited if exited is not None else last) - entered, 3)
        rows.append(HistoryRow(name, state_type, seconds, "; ".join(errors) or None))
    return rows


def execution_history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events.extend(page["events"])
    return events
