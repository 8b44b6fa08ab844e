"""A finished execution's history written once, not at every read.

moto writes a ``GetExecutionHistory`` answer with its generic, shape-driven serializer, which
walks every field of every event: ~0.1 s for one version's execution here, and a local run reads
each finished history two or three times (the stages of the report, the report's histories,
``--history``), the progress display and ``snapcdc history`` more. A history whose last event
ends the execution (succeeded, failed, aborted, timed out) does not change until the execution
is redriven, which appends events; so while :func:`installed` is active, the answer for such a
history is kept, keyed by account, region, execution and number of events, and given again as
written (with this response's own date and request id). A running execution's history is
written every time. moto's ``GetExecutionHistory`` reads nothing but the execution ARN; the
cache is used only while that handler is the code it was proven on (:mod:`.fast_paths`), so a
moto that pages or reverses histories turns it off.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from snapcdc_local.emulator import fast_paths

CACHE_SIZE = 256
TERMINAL_EVENTS = frozenset(
    {"ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"}
)
NEEDS = (
    "moto.core.responses:BaseResponse.serialized(self, action_result)",
    "moto.stepfunctions.responses:StepFunctionResponse",
)
# moto's handler, as proven (5.2.5 and 5.2.6): it reads the execution ARN and nothing else.
PROVEN_SOURCES = {
    "moto.stepfunctions.responses:StepFunctionResponse.get_execution_history": {"3889cc6224ac2f76"},
}


@contextmanager
def installed(size: int = CACHE_SIZE) -> Iterator[dict[str, int] | None]:
    """While the block runs, finished histories are written once; yields the counts
    (``{"hits": n, "writes": n}``, also on the patched method as ``counts``, tests look), or
    ``None`` where the cache steps aside."""
    if not fast_paths.proven("history-cache", PROVEN_SOURCES, *NEEDS):
        yield None
        return
    from moto.stepfunctions.responses import StepFunctionResponse

    original = StepFunctionResponse.serialized
    answers: OrderedDict[tuple[str, ...], tuple[int, dict[str, Any], Any]] = OrderedDict()
    lock = threading.Lock()
    counts = {"hits": 0, "writes": 0}

    @functools.wraps(original)  # moto's own stays reachable (tests compare with it)
    def serialized(self: Any, action_result: Any) -> Any:
        result = getattr(action_result, "result", None)
        events = result.get("events") if isinstance(result, dict) else None
        if (
            not isinstance(events, list)
            or not events
            or not isinstance(events[-1], dict)
            or events[-1].get("type") not in TERMINAL_EVENTS
            or self._get_action() != "GetExecutionHistory"
        ):
            return original(self, action_result)
        key = (
            self.current_account,
            self.region,
            str(self._get_param("executionArn")),
            str(len(events)),
        )
        with lock:
            kept = answers.get(key)
            if kept is not None:
                answers.move_to_end(key)
                counts["hits"] += 1
        if kept is None:
            status, headers, body = original(self, action_result)
            if status == 200:
                with lock:
                    answers[key] = (status, dict(headers), body)
                    counts["writes"] += 1
                    if len(answers) > size:
                        answers.popitem(last=False)
            return status, headers, body
        status, headers, body = kept
        return status, {**headers, **self.response_headers}, body

    serialized.counts = counts  # type: ignore[attr-defined]
    with mock.patch.object(StepFunctionResponse, "serialized", serialized):
        yield counts
