"""What Step Functions refuses and moto's interpreter lets through.

- ``States.ALL`` (and ``States.TaskFailed``) catch neither ``States.DataLimitExceeded`` nor
  ``States.Runtime`` (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html);
  moto's catch everything. Named explicitly in ``ErrorEquals``, they still match.
- An execution fails at 25,000 history events
  (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html): event 25,000 is
  ``ExecutionFailed`` with ``States.Runtime`` and "The execution reached the maximum number of
  history events (25000)." (the shape from field reports, e.g.
  https://github.com/loads/ardere/issues/86); moto has no quota.

:func:`installed` patches both into moto while the block runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

HISTORY_EVENT_QUOTA = 25_000


def history_quota_cause(quota: int = HISTORY_EVENT_QUOTA) -> str:
    """
    >>> history_quota_cause()
    'The execution reached the maximum number of history events (25000).'
    """
    return f"The execution reached the maximum number of history events ({quota})."


@contextmanager
def installed(history_quota: int = HISTORY_EVENT_QUOTA) -> Iterator[None]:
    """``history_quota``: AWS's, unless a test proves the mechanism on a smaller one."""
    from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType
    from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import (
        ErrorEqualsDecl,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
        StatesErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    matches_error = ErrorEqualsDecl._eval_body
    uncatchable_by_all = (
        StatesErrorNameType.StatesStatesDataLimitExceeded,
        StatesErrorNameType.StatesRuntime,
    )

    def match_error(self: Any, env: Any) -> None:
        error_name = env.stack[-1]
        named = any(n == error_name for n in self.error_names)
        matches_error(self, env)  # pops the error name, pushes whether it matched
        if (
            isinstance(error_name, StatesErrorName)
            and error_name.typ in uncatchable_by_all
            and not named
        ):
            env.stack[-1] = False

    add_event = EventManager.add_event
    terminal_events = {
        HistoryEventType.ExecutionFailed,
        HistoryEventType.ExecutionAborted,
        HistoryEventType.ExecutionTimedOut,
        HistoryEventType.ExecutionSucceeded,
    }
    environment = ExecutionWorker._get_evaluation_environment

    def evaluation_environment(self: Any) -> Any:
        env = environment(self)
        env.event_manager.execution_env = env  # frames share the manager; this is the root
        return env

    def add_history_event(self: Any, *args: Any, **kwargs: Any) -> int:
        event_type = kwargs.get("event_type", args[1] if len(args) > 1 else None)
        if getattr(self, "history_capped", False) and event_type not in terminal_events:
            return -1  # the execution already ended at the quota: nothing more is recorded
        event_id = add_event(self, *args, **kwargs)
        root = getattr(self, "execution_env", None)
        if event_id == history_quota - 1 and root is not None:
            # the state in progress stops here; the next event, 25,000, is the ExecutionFailed
            self.history_capped = True
            cause = history_quota_cause(history_quota)
            root.set_error(ExecutionFailedEventDetails(error="States.Runtime", cause=cause))
        return event_id

    with (
        mock.patch.object(ErrorEqualsDecl, "_eval_body", match_error),
        mock.patch.object(EventManager, "add_event", add_history_event),
        mock.patch.object(ExecutionWorker, "_get_evaluation_environment", evaluation_environment),
    ):
        yield
