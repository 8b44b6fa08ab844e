"""Progress of ``snapcdc local run``: per version, rows read, ops published and applied.

The figures are what the pipeline itself records, polled by the driver while it waits for
an upload to settle; nothing is added to the handlers for them:

- the upload's registry record: ``published`` (Publish sets it from its first page on),
  ``applied`` and ``stale`` (the consumer adds to them per batch), the op counts and
  ``rows_read`` (Finish writes them);
- the execution's Step Functions history, until the check query has counted the rows: the
  ``EvaluateCheck`` state's exit event carries its JSON output with the check's ``row_count``
  (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StateExitedEventDetails.html),
  the version's rows read, long before Finish writes them.

The same polls date the end of applying (``applied_at``): the first poll that finds a finished
record with every op counted (applied or stale). The stage times of the report
(:func:`stage_seconds`) take the other boundaries from the execution history.

On a terminal (rich's ``Console.is_terminal`` on stderr) a live display shows one line per
version being followed; elsewhere (a log file, CI) a line is printed on stderr each time a
version's stage changes (:class:`StageLines`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

# Often enough to date the end of applying to a quarter of a second; rare enough that the
# polls (a GetItem) cost next to nothing.
POLL_SECONDS = 0.25
# The history is read more rarely: it grows with the execution (a whole page per read, moto
# has no reverse order), and the rows read are a figure to show, not a date to take.
HISTORY_SECONDS = 1.0


@dataclass
class Figures:
    """What the records say about one upload so far."""

    stage: str = "waiting"
    rows_read: int | None = None
    published: int = 0
    applied: int = 0
    ops: int | None = None  # inserts + updates + deletes, once Finish recorded them
    applied_at: float | None = None  # epoch seconds of the poll that found every op counted

    def text(self) -> str:
        rows = "-" if self.rows_read is None else f"{self.rows_read:,}"
        return (
            f"{self.stage:<10} rows read {rows:>11}  published {self.published:>11,}  "
            f"applied {self.applied:>11,}"
        )


class NoProgress:
    """A stand-in for rich's Progress that shows nothing."""

    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def update(self, *args: Any, **kwargs: Any) -> None:
        pass

    def advance(self, *args: Any, **kwargs: Any) -> None:
        pass

    def remove_task(self, *args: Any, **kwargs: Any) -> None:
        pass


class StageLines(NoProgress):
    """Where no live display can be drawn (stderr is not a terminal: a log file, CI), a line
    on ``out`` whenever a version's stage changes, so a long version shows it is moving long
    before its row is printed. (Nothing else: a run that cannot start says only why.)"""

    def __init__(self, out: Any) -> None:
        self.out = out
        self._labels: dict[int, str] = {}
        self._shown: dict[int, str] = {}
        self._lock = threading.Lock()

    def add_task(self, description: str, *args: Any, **fields: Any) -> int:
        with self._lock:
            task = len(self._labels)
            self._labels[task] = description
        return task

    def update(self, task: int, *args: Any, **fields: Any) -> None:
        stage = fields.get("stage")
        if not stage or stage == "waiting":  # (waiting: no record of it yet)
            return
        with self._lock:
            if self._shown.get(task) == stage:
                return
            self._shown[task] = stage
            figures = " ".join(str(fields.get("figures") or stage).split())
            print(f"{self._labels.get(task, '')}: {figures}", file=self.out, flush=True)


class Watcher:
    """Polls the registry records (and execution histories) of the uploads being followed, on
    a thread of its own, and shows their figures on ``progress`` (a rich Progress or
    :class:`NoProgress`)."""

    def __init__(self, run: Any, progress: Any, interval: float = POLL_SECONDS) -> None:
        self.run = run
        self.progress = progress
        self.interval = interval
        self.figures: dict[int, Figures] = {}
        self._followed: dict[int, tuple[Any, Any]] = {}  # id(upload) -> (upload, task)
        self._lock = threading.Lock()
        self._polling = threading.Lock()  # one poll-and-show at a time (see done)
        self._history_read: dict[str, float] = {}  # execution ARN -> when it was last read
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="local-run-progress", daemon=True)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def follow(self, upload: Any) -> None:
        task = self.progress.add_task(upload.label, total=None, figures="")
        with self._lock:
            self.figures[id(upload)] = Figures()
            self._followed[id(upload)] = (upload, task)

    def done(self, upload: Any) -> Figures:
        """Stop following ``upload`` (it settled) after a last poll; return its figures."""
        with self._polling:  # a poll of the loop in flight ends first, or it could show older
            with self._lock:  # figures after these last ones
                _, task = self._followed.pop(id(upload), (None, None))
                figures = self.figures.setdefault(id(upload), Figures())
            self.poll(upload, figures)  # (the end of applying may fall between two polls)
            if task is not None:
                self._show(task, figures)
                self.progress.remove_task(task)
        return figures

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                followed = list(self._followed.values())
            for upload, task in followed:
                with self._polling:
                    if id(upload) not in self._followed:
                        continue  # done() took its last poll meanwhile
                    figures = self.figures[id(upload)]
                    try:
                        self.poll(upload, figures)
                    except Exception:  # a poll racing the end of the run; the next one tells
                        log.debug("progress poll of %s failed", upload.key, exc_info=True)
                        continue
                    self._show(task, figures)

    def _show(self, task: Any, figures: Figures) -> None:
        self.progress.update(
            task,
            total=figures.ops,
            completed=figures.applied,
            figures=figures.text(),
            stage=figures.stage,
        )

    def poll(self, upload: Any, figures: Figures) -> None:
        if upload.sequencer is None:
            return
        record = self.run.registry.find_upload(
            upload.table_id,
            upload.key,
            upload.sequencer,
            table_name=self.run.outputs["RegistryTableName"],
        )
        if not record:
            return
        status = record.get("status", "")
        figures.published = int(record.get("published") or 0)
        figures.applied = int(record.get("applied") or 0) + int(record.get("stale") or 0)
        if record.get("rows_read") is not None:
            figures.rows_read = int(record["rows_read"])
        elif figures.rows_read is None and record.get("execution_arn"):
            arn = record["execution_arn"]
            now = time.monotonic()
            if now - self._history_read.get(arn, -HISTORY_SECONDS) >= HISTORY_SECONDS:
                self._history_read[arn] = now
                figures.rows_read = self._rows_counted(arn)
        if status == "SUCCEEDED":
            figures.ops = sum(int(record.get(n) or 0) for n in ("inserts", "updates", "deletes"))
            if figures.applied >= figures.ops:
                figures.applied_at = figures.applied_at or time.time()
                figures.stage = "done"
            else:
                figures.stage = "applying"
        elif status in ("REGISTERED", "RUNNING", "APPROVED"):
            figures.stage = "publishing" if figures.published else "delta"
        else:
            figures.stage = status.lower()

    def _rows_counted(self, execution_arn: str) -> int | None:
        events = self.run.aws.client("stepfunctions").get_execution_history(
            executionArn=execution_arn
        )["events"]
        return rows_counted(events)


def rows_counted(events: Iterable[dict[str, Any]]) -> int | None:
    """The check query's row count: the ``EvaluateCheck`` state's output, where the ASL puts
    the check's result (``ResultPath: $.status.check``).

    >>> rows_counted([{"type": "TaskStateExited", "stateExitedEventDetails": {
    ...     "name": "EvaluateCheck", "output": '{"status": {"check": {"row_count": 7}}}'}}])
    7
    """
    for event in events:
        details = event.get("stateExitedEventDetails") or {}
        if details.get("name") == "EvaluateCheck":
            with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
                output = json.loads(details.get("output") or "{}")
                return int(output["status"]["check"]["row_count"])
    return None


def stage_seconds(events: Iterable[dict[str, Any]], applied_at: float | None) -> dict[str, float]:
    """Seconds per stage of one upload, from its executions' history events:

    - ``delta``: from Plan entered to the first Publish entered (Finish, without ops to
      publish): planning, the Athena queries, the data checks, the guard;
    - ``publish``: from the first Publish entered to the last Publish exited;
    - ``apply``: from the first Publish entered (the consumer starts on the first records) to
      ``applied_at``, when every op was counted applied or stale.
    """
    entered: dict[str, float] = {}
    exited: dict[str, float] = {}
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            entered.setdefault(name, _epoch(event["timestamp"]))
        elif kind.endswith("StateExited"):
            exited[event["stateExitedEventDetails"]["name"]] = _epoch(event["timestamp"])
    stages: dict[str, float] = {}
    publish = entered.get("Publish")
    delta_end = publish or entered.get("Finish")
    if "Plan" in entered and delta_end:
        stages["delta"] = round(delta_end - entered["Plan"], 3)
    if publish and "Publish" in exited:
        stages["publish"] = round(exited["Publish"] - publish, 3)
        if applied_at is not None:
            stages["apply"] = round(max(0.0, applied_at - publish), 3)
    return stages


def _epoch(value: Any) -> float:
    return value.timestamp() if isinstance(value, dt.datetime) else float(value)


@contextlib.contextmanager
def progress_display(enabled: bool = True) -> Iterator[Any]:
    """A rich live display on stderr (only if it is a terminal), or :class:`NoProgress`."""
    if not enabled or sys.__stderr__ is None:
        yield NoProgress()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(file=sys.__stderr__)
    if not console.is_terminal:
        yield StageLines(sys.stderr)
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[figures]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        redirect_stdout=False,
        redirect_stderr=False,
    ) as progress:
        yield progress
