"""What ``snapcdc local run`` prints: a row per upload, the summary per table, the execution
histories, the ``--report`` JSON, and where the Lambda functions' own output goes."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from snapcdc_local.cli.run_driver import RunResult
from snapcdc_local.cli.run_uploads import UNCHANGED, Upload


@dataclass
class Printer:
    """Rows and summaries as fixed-width text on ``out``."""

    out: TextIO
    key_width: int = 40

    def header(self) -> None:
        numbers = "".join(
            f" {name:>9}"
            for name in ("inserts", "updates", "deletes", "published", "applied", "seconds")
        )
        self.line(f"{'key':<{self.key_width}}  {'status':<9}{numbers}")

    def upload(self, upload: Upload) -> None:
        if upload.status in UNCHANGED:  # nothing ran: no figures to show
            self.line(f"{upload.label:<{self.key_width}}  {upload.status}")
        else:
            self.line(
                f"{upload.label:<{self.key_width}}  {upload.status:<9} {upload.inserts:>9} "
                f"{upload.updates:>9} {upload.deletes:>9} {upload.published:>9} "
                f"{upload.applied:>9} {upload.seconds:>9.2f}"
            )
        if upload.error:
            self.line(f"{'':<{self.key_width}}  error: {upload.error}")
        if upload.reason:  # why it is HELD, REJECTED, SKIPPED, IGNORED or REFUSED
            self.line(f"{'':<{self.key_width}}  reason: {upload.reason}")

    def summary(self, result: RunResult) -> None:
        self.line("")
        width = self.key_width
        titles = f"{'succeeded':>9} {'skipped':>8} {'failed':>8} {'rows':>8}"
        held = any(s.get("HELD") or s.get("REJECTED") for s in result.tables.values())
        more = f" {'held':>8} {'rejected':>8}" if held else ""
        self.line(f"{'table':<{width}}  {titles}  {'version':<14}{more}")
        for table_id, s in sorted(result.tables.items()):
            counts = f"{s['SUCCEEDED']:>9} {s['SKIPPED']:>8} {s['FAILED']:>8} {s['rows']:>8}"
            extra = f" {s.get('HELD', 0):>8} {s.get('REJECTED', 0):>8}" if held else ""
            self.line(f"{table_id:<{width}}  {counts}  {s['version'] or '-':<14}{extra}")

    def histories(self, result: RunResult, last_only: bool = False) -> None:
        histories = list(result.histories.items())
        for arn, rows in histories[-1:] if last_only else histories:
            self.line("")
            self.line(f"history of {arn.rsplit(':', 1)[-1]}")
            self.line(f"  {'state':<28} {'type':<10} {'seconds':>8}  error")
            for row in rows:
                self.line(
                    f"  {row.state:<28} {row.type:<10} {row.seconds:>8.3f}  {row.error or ''}"
                )

    def line(self, text: str) -> None:
        self.out.write(text.rstrip() + "\n")
        self.out.flush()


# Handlers the functions' loggers (Powertools) created while their output was redirected:
# pointed at the sink of the current run, and at /dev/null between runs.
_LAMBDA_HANDLERS: set[logging.StreamHandler] = set()
_NOWHERE = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process


@contextlib.contextmanager
def lambda_output(path: Path | None) -> Iterator[None]:
    """Send what the Lambda functions print and log (stdout, logging) to ``path`` or nowhere."""
    sink: TextIO = path.open("a", encoding="utf-8") if path else _NOWHERE
    root = logging.getLogger()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    saved_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for held in _LAMBDA_HANDLERS:
        held.setStream(sink)
    try:
        with contextlib.redirect_stdout(sink):
            yield
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_level)
        # Loggers configured during the run write to the sink; they outlive it (a logger is
        # configured once per process), so they are parked on /dev/null until the next run.
        for logger in logging.root.manager.loggerDict.values():
            for held in getattr(logger, "handlers", []):
                if isinstance(held, logging.StreamHandler) and held.stream is sink:
                    _LAMBDA_HANDLERS.add(held)
        for held in _LAMBDA_HANDLERS:
            held.setStream(_NOWHERE)
        if sink is not _NOWHERE:
            sink.close()


def write_report(result: RunResult, path: Path) -> None:
    """``{"versions": [...], "seconds": {...}}``: one entry per upload, in upload order, and
    where the run's time went (deploying the stack, the uploads, the summary)."""
    report: dict[str, Any] = {"versions": [u.report() for u in result.uploads]}
    report["seconds"] = result.seconds
    if result.redriven is not None:
        report["redriven"] = [r.report() for r in result.redriven]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


class ConsoleWriter:
    """A text stream that prints through a rich console (above its live display)."""

    def __init__(self, console: Any) -> None:
        self.console = console

    def write(self, text: str) -> None:
        self.console.print(text, end="", markup=False, highlight=False, soft_wrap=True)

    def flush(self) -> None:
        pass
