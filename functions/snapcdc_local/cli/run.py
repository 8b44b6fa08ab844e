"""``snapcdc local run``: the whole pipeline on this machine, from S3 upload to target table.

The stack in ``cfn.yaml`` is deployed into the embedded AWS emulation
(:class:`~snapcdc_local.emulator.Emulator`: moto in process, DuckDB doing Athena's work); then
every file of DATA_DIR is uploaded to the import bucket like an export landing in S3. What a
user sees is in :data:`DESCRIPTION` (``snapcdc local run --help``); approve / reject lines run
the code of ``snapcdc_local.stack.resume``, ``--redrive`` that of ``snapcdc_local.stack.redrive``.

>>> plan_uploads(Path("data"))[:2]
['tenant/test_table/_table.json', 'tenant/test_table/20201230_V0001/export1.csv.gz']
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import snapcdc
from snapcdc.model.contract import (
    EXPORT_SUFFIX,
    MANIFEST_FILE,
    TABLE_CONFIG_FILE,
    ContractError,
    TableConfig,
    parse_export_key,
)
from snapcdc.model.events import parse_key_parts
from snapcdc_local.cli.main import CliError, Command

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[3]
DEFAULT_TEMPLATE = REPO / "cfn.yaml"
PACKAGE_DIR = Path(snapcdc.__file__).resolve().parent  # functions/snapcdc: the Lambda code
# Template parameters for a run on one machine: the waits between polls are the stack's
# configuration, and a laptop has no reason to wait 5 or 30 seconds for them.
LOCAL_PARAMETERS = {"QueryPollSeconds": "1", "LockRetrySeconds": "1"}
TERMINAL = ("SUCCEEDED", "SKIPPED", "FAILED", "HELD", "REJECTED")
# Sequence lines that resume a HELD version (stack.resume), as snapcdc approve / reject do.
RESUME_ACTIONS = ("approve", "reject")


# -- what to upload --------------------------------------------------------------------------


def plan_uploads(data_dir: Path, sequence: Path | None = None) -> list[str]:
    """The keys to upload, in order: every ``_table.json``, then the exports.

    Exports are every ``*.csv.gz`` and ``_manifest.json`` in key order, each manifest after the
    other files of its folder, or the keys listed in ``sequence``.
    """
    if not data_dir.is_dir():
        raise CliError(f"data directory {data_dir} does not exist")
    files = sorted(p.relative_to(data_dir).as_posix() for p in data_dir.rglob("*") if p.is_file())
    configs = [k for k in files if k.rsplit("/", 1)[-1] == TABLE_CONFIG_FILE]
    if sequence is None:
        exports = sorted(
            (k for k in files if is_export(k)),
            key=lambda k: (k.rsplit("/", 1)[0], k.rsplit("/", 1)[-1] == MANIFEST_FILE, k),
        )
    else:
        exports = read_sequence(sequence, data_dir)
    if not exports:
        raise CliError(f"no *{EXPORT_SUFFIX} exports found in {data_dir}")
    return configs + exports


def is_export(key: str) -> bool:
    """An object the pipeline starts on: an export or part, or a version's manifest."""
    return key.endswith(EXPORT_SUFFIX) or key.rsplit("/", 1)[-1] == MANIFEST_FILE


def read_sequence(sequence: Path, data_dir: Path) -> list[str]:
    """Keys listed in a sequence file; every one must be a file under ``data_dir``.

    A line ``approve KEY`` or ``reject KEY`` resumes that key's HELD version at that point.
    """
    try:
        lines = sequence.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CliError(f"cannot read sequence file {sequence}: {exc.strerror}") from None
    keys = []
    for number, line in enumerate(lines, 1):
        key = line.split("#", 1)[0].strip()
        if not key:
            continue
        action, _, rest = key.partition(" ")
        if action in RESUME_ACTIONS and rest.strip():
            key = rest.strip()
        path = data_dir / key
        if key.startswith("/") or ".." in Path(key).parts or not path.is_file():
            raise CliError(f"{sequence}:{number}: {key!r} is not a file under {data_dir}")
        key = Path(key).as_posix()
        keys.append(f"{action} {key}" if action in RESUME_ACTIONS and key != action else key)
    return keys


# the registry record's counters the run reports per upload
COUNTS = ("inserts", "updates", "deletes", "published", "applied", "stale")


def resume_line(entry: str) -> tuple[str, str] | None:
    """``("approve", KEY)`` for a sequence entry ``approve KEY``; None for an upload.

    >>> resume_line("approve t/x/V2/a.csv.gz"), resume_line("t/x/V2/a.csv.gz")
    (('approve', 't/x/V2/a.csv.gz'), None)
    """
    action, _, key = entry.partition(" ")
    return (action, key) if action in RESUME_ACTIONS and key else None


# -- one upload and what became of it --------------------------------------------------------


@dataclass
class Upload:
    """One object put into the import bucket and its outcome in the pipeline."""

    key: str
    tenant: str
    table: str
    version: str
    status: str = "PENDING"
    inserts: int = 0
    updates: int = 0
    deletes: int = 0
    published: int = 0
    applied: int = 0
    stale: int = 0
    error: str | None = None
    reason: str | None = None  # why it is HELD, REJECTED or SKIPPED
    action: str = "upload"  # or approve / reject (a sequence line resuming a HELD version)
    seconds: float = 0.0
    started: float = 0.0
    sequencer: str | None = None
    executions: list[str] = field(default_factory=list)

    @property
    def table_id(self) -> str:
        return f"{self.tenant}/{self.table}"

    def report(self) -> dict[str, Any]:
        return {
            k: v
            for k, v in asdict(self).items()
            if k
            in (
                "key",
                "tenant",
                "table",
                "version",
                "status",
                "inserts",
                "updates",
                "deletes",
                "published",
                "applied",
                "stale",
                "error",
                "reason",
                "action",
            )
        }

    @property
    def label(self) -> str:
        return self.key if self.action == "upload" else f"{self.action} {self.key}"


class LocalRun:
    """Drives the uploads through a deployed :class:`~snapcdc_local.emulator.Emulator`."""

    def __init__(self, aws: Any, data_dir: Path) -> None:
        self.aws = aws
        self.data_dir = data_dir
        self.outputs = aws.stack.outputs
        for name in ("ImportBucketName", "RegistryTableName", "TargetTableName"):
            if name not in self.outputs:
                raise CliError(f"the stack has no output {name}; the local run reads it")
        # Imported after the emulator started: it re-imports the Lambda artifact's modules.
        self.registry = importlib.import_module("snapcdc.aws.registry")
        self.applying = importlib.import_module("snapcdc.steps.consumer")
        self._rows: dict[str, list[dict[str, Any]]] = {}

    def target_rows(self, table_id: str) -> list[dict[str, Any]]:
        """The table's rows in the target (read once, after the run)."""
        if table_id not in self._rows:
            self._rows[table_id] = self.applying.read_rows(
                self.outputs["TargetTableName"], table_id
            )
        return self._rows[table_id]

    def is_part(self, key: str) -> bool:
        """Whether ``key`` is one part of a multi-part version, by its table's ``_table.json``
        in DATA_DIR (the rule the pipeline applies, ``snapcdc.model.manifest.completion``); a key or
        configuration the pipeline would refuse is followed as an upload, to show why."""
        from snapcdc.model.manifest import completion

        try:
            ref = parse_export_key(key)
            config_file = self.data_dir / ref.config_key
            config = (
                TableConfig.from_json(config_file.read_bytes())
                if config_file.is_file()
                else TableConfig()
            )
            return completion(config, ref) == "part"
        except ContractError:
            return False

    def put(self, key: str) -> Upload | None:
        """Upload one file; exports and manifests become an :class:`Upload` to follow,
        configs and the parts of multi-part versions None."""
        s3 = self.aws.client("s3")
        bucket = self.outputs["ImportBucketName"]
        body = (self.data_dir / key).read_bytes()
        if not is_export(key) or self.is_part(key):
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            return None
        upload = Upload(key, *parse_key_parts(key)[:3], started=time.monotonic())
        seen = len(self.aws.events.deliveries)
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        deliveries = [
            d
            for d in self.aws.events.deliveries[seen:]
            if d.event["detail"]["object"]["key"] == key
        ]
        if not deliveries:
            upload.status, upload.error = (
                "FAILED",
                "no EventBridge rule of the stack matched the upload",
            )
            return upload
        delivery = deliveries[0]
        upload.sequencer = delivery.event["detail"]["object"].get("sequencer")
        if delivery.error:
            upload.status, upload.error = (
                "FAILED",
                f"the pipeline could not be started: {delivery.error}",
            )
        elif delivery.execution_arn:
            upload.executions.append(delivery.execution_arn)
        return upload

    def resume(self, action: str, key: str) -> Upload:
        """Approve or reject the HELD version of ``key``: the code snapcdc approve runs."""
        resuming = importlib.import_module("snapcdc_local.stack.resume")
        if "StateMachineArn" not in self.outputs:
            raise CliError("the stack has no output StateMachineArn; approve / reject need it")
        upload = Upload(key, *parse_key_parts(key)[:3], action=action, started=time.monotonic())
        try:
            upload.sequencer = resuming.held_upload(key, self.outputs["RegistryTableName"])[
                "sequencer"
            ]
            arn = resuming.start_resume(
                self.aws.client("stepfunctions"),
                self.outputs["StateMachineArn"],
                self.outputs["RegistryTableName"],
                action,
                key,
            )
        except (resuming.ResumeError, ValueError) as exc:
            raise CliError(f"{action} {key}: {exc}") from None
        upload.executions.append(arn)
        return upload

    def settle(self, timeout: float) -> None:
        try:
            self.aws.settle(timeout=timeout)
        except TimeoutError as exc:
            raise CliError(f"the pipeline did not settle: {exc}") from None

    def resolve(self, upload: Upload) -> Upload:
        """Read the upload's outcome from the registry (or its execution, if it has no record)."""
        if upload.status != "PENDING":
            return upload
        record = self.registry.find_upload(
            upload.table_id,
            upload.key,
            upload.sequencer,
            table_name=self.outputs["RegistryTableName"],
        )
        sfn = self.aws.client("stepfunctions")
        if record:
            arn = record.get("execution_arn")
            # (a reject leaves the record naming the held execution, not its own)
            if arn and arn not in upload.executions and upload.action != "reject":
                upload.executions.append(arn)
            upload.status = record.get("status", "FAILED")
            upload.error = record.get("error") or None
            if upload.status in ("HELD", "REJECTED", "SKIPPED"):
                upload.reason = record.get("reason") or None
            for name in COUNTS:
                setattr(upload, name, int(record.get(name) or 0))
        if upload.status not in TERMINAL:
            upload.error = upload.error or execution_error(sfn, upload.executions)
            upload.status = "FAILED"
        return upload

    def read_counts(self, upload: Upload) -> None:
        """Re-read the counters the consumer adds to after Finish (once the stream drained)."""
        if upload.sequencer is None:
            return
        record = self.registry.find_upload(
            upload.table_id,
            upload.key,
            upload.sequencer,
            table_name=self.outputs["RegistryTableName"],
        )
        for name in COUNTS:
            setattr(upload, name, int((record or {}).get(name) or 0))

    def finished_at(self, upload: Upload) -> float | None:
        sfn = self.aws.client("stepfunctions")
        stops = []
        for arn in upload.executions:
            stop = sfn.describe_execution(executionArn=arn).get("stopDate")
            if stop is not None:
                stops.append(stop.timestamp())
        return max(stops) if stops else None


def execution_error(sfn: Any, arns: list[str]) -> str:
    """Why the pipeline left no registry record: the last execution's failure, or its status."""
    if not arns:
        return "no pipeline execution was started"
    described = sfn.describe_execution(executionArn=arns[-1])
    if described["status"] == "FAILED":
        return f"{described.get('error', 'States.Failed')}: {described.get('cause', '')}".strip()
    return f"execution {described['name']} ended {described['status']} without a registry record"


# -- the run -----------------------------------------------------------------------------------


@dataclass
class RunOptions:
    data_dir: Path
    sequence: Path | None = None
    concurrent: bool = False
    template: Path = DEFAULT_TEMPLATE
    parameters: dict[str, str] = field(default_factory=dict)
    timeout: float = 1800.0
    history: bool = False
    redrive: bool = False


@dataclass
class RunResult:
    uploads: list[Upload]
    tables: dict[str, dict[str, Any]]  # table_id -> summary
    histories: dict[str, list[Any]] = field(default_factory=dict)  # execution ARN -> rows
    redriven: list[Any] | None = None  # stack.redrive.Redriven per object, with --redrive


def run_pipeline(
    options: RunOptions,
    *,
    on_upload: Any = None,
    progress: Any = None,
    dump_target: Path | None = None,
    emulator_hook: Any = None,
) -> RunResult:
    """Deploy, upload, follow every upload to its end; optionally dump the target tables.

    ``on_upload(upload)`` is called as each upload's outcome is known; ``emulator_hook(aws)``
    runs once the stack is deployed (tests use it to reach into the emulation).
    """
    from snapcdc_local.emulator import Emulator
    from snapcdc_local.emulator.cfn import DeployError

    keys = plan_uploads(options.data_dir, options.sequence)
    progress = progress or _NoProgress()
    parameters = {**LOCAL_PARAMETERS, **options.parameters}
    if not options.template.is_file():
        raise CliError(f"stack template {options.template} not found")
    task = progress.add_task("deploying the stack", total=None)
    try:
        aws = Emulator(options.template, parameters=parameters, lambda_code=PACKAGE_DIR).__enter__()
    except DeployError as exc:
        raise CliError(str(exc)) from None
    try:
        if emulator_hook:
            emulator_hook(aws)
        run = LocalRun(aws, options.data_dir)
        uploads = drive(run, keys, options.concurrent, options.timeout, on_upload, progress, task)
        redriven = None
        if options.redrive:
            progress.update(task, description="redriving failed batches")
            redriven = redrive_failed_batches(aws)
        run.settle(options.timeout)
        for upload in uploads:
            run.read_counts(upload)
        progress.update(task, description="reading the target tables")
        result = RunResult(uploads=uploads, tables=summarize(run, uploads), redriven=redriven)
        if options.history:
            result.histories = histories(aws, uploads)
        if dump_target is not None:
            dump_tables(run, uploads, dump_target)
        return result
    finally:
        aws.__exit__(None, None, None)


def redrive_failed_batches(aws: Any) -> list[Any]:
    """``snapcdc redrive`` on the emulated stack: the same function, the same clients' calls."""
    from snapcdc.model.settings import Settings
    from snapcdc_local.stack.redrive import redrive

    outputs = aws.stack.outputs
    return redrive(
        aws.client("s3"),
        outputs["FailedBatchesBucketName"],
        outputs["TargetTableName"],
        workers=Settings.from_env().consumer_workers,
        registry_table=outputs["RegistryTableName"],
    )


def drive(
    run: LocalRun,
    keys: list[str],
    concurrent: bool = False,
    timeout: float = 1800.0,
    on_upload: Any = None,
    progress: Any = None,
    task: Any = None,
) -> list[Upload]:
    """Upload ``keys`` one by one (each settled before the next) or all at once."""
    progress = progress or _NoProgress()
    uploads: list[Upload] = []
    exports = [k for k in keys if is_export(k) and not run.is_part(k)]
    progress.update(task, description="uploading", total=len(exports), completed=0)
    if concurrent:
        for key in keys:
            upload = None if resume_line(key) else run.put(key)
            if upload:
                uploads.append(upload)
        progress.update(task, description=f"{len(exports)} uploads running concurrently")
        run.settle(timeout)
        for upload in uploads:
            run.resolve(upload)
            stop = run.finished_at(upload)
            upload.seconds = round(max(0.0, (stop or time.time()) - _wall(upload.started)), 2)
            progress.advance(task)
            if on_upload:
                on_upload(upload)
        # approve / reject lines run once the uploads settled, in the order listed
        keys = [k for k in keys if resume_line(k)]
    for key in keys:
        if is_export(key):
            progress.update(task, description=key)
        resume = resume_line(key)
        upload = run.resume(*resume) if resume else run.put(key)
        if upload is None:
            continue
        run.settle(timeout)
        run.resolve(upload)
        upload.seconds = round(time.monotonic() - upload.started, 2)
        uploads.append(upload)
        progress.advance(task)
        if on_upload:
            on_upload(upload)
    return uploads


def _wall(monotonic_start: float) -> float:
    return time.time() - (time.monotonic() - monotonic_start)


def summarize(run: LocalRun, uploads: list[Upload]) -> dict[str, dict[str, Any]]:
    """Per target table: statuses of its uploads, last applied version, rows in the target."""
    tables: dict[str, dict[str, Any]] = {}
    for upload in uploads:
        summary = tables.setdefault(
            upload.table_id, {"SUCCEEDED": 0, "SKIPPED": 0, "FAILED": 0, "version": None, "rows": 0}
        )
        summary[upload.status] = summary.get(upload.status, 0) + 1
    for table_id, summary in tables.items():
        if not summary["SUCCEEDED"]:
            continue
        head = run.registry.get_head(table_id, table_name=run.outputs["RegistryTableName"]) or {}
        summary["version"] = head.get("last_applied_version")
        summary["rows"] = len(run.target_rows(table_id))
    return tables


def histories(aws: Any, uploads: list[Upload]) -> dict[str, list[Any]]:
    from snapcdc_local.emulator.stepfunctions import execution_history, history_rows

    sfn = aws.client("stepfunctions")
    return {arn: history_rows(execution_history(sfn, arn)) for u in uploads for arn in u.executions}


def dump_tables(run: LocalRun, uploads: list[Upload], directory: Path) -> list[Path]:
    """Write ``{tenant}/{table}.csv`` for every table with a SUCCEEDED version."""
    written = []
    for table_id in sorted({u.table_id for u in uploads if u.status == "SUCCEEDED"}):
        head = run.registry.get_head(table_id, table_name=run.outputs["RegistryTableName"])
        if not head or "schema" not in head:
            raise CliError(
                f"table {table_id} has a successful version but no schema in the registry"
            )
        columns, key = head["schema"]["columns"], head["schema"]["key"]
        rows = sorted(
            run.target_rows(table_id), key=lambda row: tuple(row.get(k) or "" for k in key)
        )
        path = directory / f"{table_id}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            writer.writerows(
                [["" if row.get(c) is None else row.get(c) for c in columns] for row in rows]
            )
        written.append(path)
    return written


# -- output ------------------------------------------------------------------------------------


class _NoProgress:
    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def update(self, *args: Any, **kwargs: Any) -> None:
        pass

    def advance(self, *args: Any, **kwargs: Any) -> None:
        pass


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
        self.line(
            f"{upload.label:<{self.key_width}}  {upload.status:<9} {upload.inserts:>9} "
            f"{upload.updates:>9} {upload.deletes:>9} {upload.published:>9} "
            f"{upload.applied:>9} {upload.seconds:>9.2f}"
        )
        if upload.error:
            self.line(f"{'':<{self.key_width}}  error: {upload.error}")
        if upload.reason and (upload.status != "SKIPPED" or upload.action != "upload"):
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


@contextlib.contextmanager
def progress_display(enabled: bool) -> Iterator[Any]:
    """A rich progress bar on stderr, or a stand-in that shows nothing."""
    if not enabled:
        yield _NoProgress()
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

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(file=sys.__stderr__),
        transient=True,
        redirect_stdout=False,
        redirect_stderr=False,
    ) as progress:
        yield progress


# -- the command -------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(
        dest="local_command", metavar="SUBCOMMAND", required=True, help="what to run locally"
    )
    run = sub.add_parser(
        "run",
        help="run the whole pipeline on DATA_DIR in the embedded AWS emulation",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "data_dir",
        nargs="?",
        default="data",
        type=Path,
        metavar="DATA_DIR",
        help="the exports, laid out as in the import bucket: {tenant}/{table}/{version}/ "
        "(default: data)",
    )
    run.add_argument(
        "--sequence",
        type=Path,
        metavar="FILE",
        help="upload the exports listed in FILE, in order (and approve KEY / reject KEY lines)",
    )
    run.add_argument(
        "--report", type=Path, metavar="FILE", help="write the outcome of every upload as JSON"
    )
    run.add_argument(
        "--dump-target", type=Path, metavar="DIR", help="write DIR/{tenant}/{table}.csv"
    )
    run.add_argument(
        "--history",
        nargs="?",
        const="all",
        choices=["all", "last"],
        help="print the state history of each execution (or of the last one: --history last)",
    )
    run.add_argument("--concurrent", action="store_true", help="upload everything at once")
    run.add_argument(
        "--redrive",
        action="store_true",
        help="at the end, re-apply the batches the consumer gave up on (as snapcdc redrive)",
    )
    run.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE, help=argparse.SUPPRESS)
    run.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a stack parameter (repeatable)",
    )
    run.add_argument(
        "--lambda-log", type=Path, metavar="FILE", help="append the functions' log output to FILE"
    )
    run.add_argument("--timeout", type=float, default=1800.0, help=argparse.SUPPRESS)


def parse_parameters(items: list[str]) -> dict[str, str]:
    """``["A=1", "B=x"]`` -> ``{"A": "1", "B": "x"}``.

    >>> parse_parameters(["QueryPollSeconds=2"])
    {'QueryPollSeconds': '2'}
    """
    parameters = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CliError(f"--parameter {item!r} is not KEY=VALUE")
        parameters[name] = value
    return parameters


def run_command(args: argparse.Namespace) -> int:
    options = RunOptions(
        data_dir=args.data_dir,
        sequence=args.sequence,
        concurrent=args.concurrent,
        template=args.template,
        parameters=parse_parameters(args.parameter),
        timeout=args.timeout,
        history=bool(args.history),
        redrive=args.redrive,
    )
    out = sys.stdout
    show_progress = sys.__stderr__ is not None and sys.__stderr__.isatty()
    with progress_display(show_progress) as progress:
        keys = plan_uploads(options.data_dir, options.sequence)  # also checks the arguments
        width = max(len("key"), *(len(k) for k in keys))
        printer = Printer(out, width)
        if show_progress and out.isatty():
            # Rows share the terminal with the live progress display: print them through it.
            printer = Printer(_ConsoleWriter(progress.console), width)
        printer.header()
        try:
            with lambda_output(args.lambda_log):
                result = run_pipeline(
                    options,
                    on_upload=printer.upload,
                    progress=progress,
                    dump_target=args.dump_target,
                )
        except CliError:
            raise
        except Exception as exc:  # the run broke: one line, not a traceback
            raise CliError(
                f"the local run failed: {type(exc).__name__}: {' '.join(str(exc).split())}"
            ) from None
        if result.redriven is not None:
            from snapcdc_local.cli.redrive import print_results

            printer.line("")
            print_results(result.redriven, printer.out)
        printer.summary(result)
        if args.history:
            printer.histories(result, last_only=args.history == "last")
    if args.report:
        write_report(result, args.report)
    return 0


def write_report(result: RunResult, path: Path) -> None:
    """``{"versions": [...]}``: one entry per upload, in upload order."""
    report: dict[str, Any] = {"versions": [u.report() for u in result.uploads]}
    if result.redriven is not None:
        report["redriven"] = [r.report() for r in result.redriven]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


class _ConsoleWriter:
    """A text stream that prints through a rich console (above its live display)."""

    def __init__(self, console: Any) -> None:
        self.console = console

    def write(self, text: str) -> None:
        self.console.print(text, end="", markup=False, highlight=False, soft_wrap=True)

    def flush(self) -> None:
        pass


def run(args: argparse.Namespace) -> int:
    if args.local_command == "run":
        return run_command(args)
    raise CliError(f"unknown local subcommand {args.local_command!r}")


DESCRIPTION = """\
Run the whole snapcdc pipeline on this machine: the stack in cfn.yaml is deployed into an
embedded AWS emulation (moto in process, DuckDB doing Athena's work), then every file of
DATA_DIR is uploaded to the import bucket like an export landing in S3.

What is uploaded, in which order:
  - _table.json files first, then every *.csv.gz and _manifest.json in key order (a
    version's manifest after its parts: it completes the version);
  - or the keys listed in --sequence FILE, in that order: one key relative to DATA_DIR per
    line, # starts a comment, a key may repeat (it is uploaded again); a line "approve KEY"
    or "reject KEY" resumes that key's HELD version at that point, as snapcdc approve /
    reject would (with --concurrent, once the uploads have settled);
  - a part of a multi-part version (complete_on "manifest" in its table's _table.json) starts
    nothing by itself: the version's _manifest.json is the upload that is followed.

Each upload goes through the whole pipeline (S3 event, EventBridge, the state machine, Athena,
Kinesis, the consumer) and everything settles before the next upload starts; --concurrent
uploads them all at once instead, and the table locks serialise the work.

Per upload it prints the key, the status (SUCCEEDED, SKIPPED, FAILED, HELD or REJECTED), the
inserts, updates and deletes, published (records Kinesis took), applied (ops the consumer wrote
to the target) and seconds, and why a version is HELD, REJECTED or SKIPPED; at the end a
summary per target table. --report FILE writes the same as JSON; --dump-target DIR writes
DIR/{tenant}/{table}.csv for every table with a successful version, read back from the
target; --history prints each execution's Step Functions history. --redrive re-applies, once
every upload has settled, the batches the consumer gave up on (as snapcdc redrive does).

The Lambda functions' log output goes to --lambda-log FILE (default: discarded), as it would
go to CloudWatch Logs rather than to this terminal.

Exit status 0 when every upload reached a terminal status (FAILED included); 1 with a one-line
reason when the run itself broke (the stack did not deploy, the pipeline did not settle).

examples:
  snapcdc local run data --history last
  snapcdc local run data --sequence order.txt --report report.json
"""

COMMAND = Command(
    name="local",
    help="the pipeline on this machine (embedded AWS emulation)",
    add_arguments=add_arguments,
    run=run,
    description="The snapcdc stack on this machine: moto in process, DuckDB doing Athena's work.",
)
