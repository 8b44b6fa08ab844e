"""The driver of ``snapcdc local run``: the stack deployed into the embedded emulation, the
uploads put in sequence (or all at once), each followed until the pipeline settled, and the
outcome read back from the registry, the executions and the target table."""

from __future__ import annotations

import csv
import importlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import snapcdc
from snapcdc.model.contract import ContractError
from snapcdc.model.events import parse_key_parts
from snapcdc_local.cli.main import CliError
from snapcdc_local.cli.run_progress import Figures, NoProgress, Watcher, stage_seconds
from snapcdc_local.cli.run_uploads import (
    COUNTS,
    TERMINAL,
    UNCHANGED,
    Upload,
    ignored_reason,
    is_export,
    is_part,
    is_table_config,
    plan_uploads,
    resume_line,
)
from snapcdc_local.cli.run_verify import run_verify, verify_line

REPO = Path(__file__).resolve().parents[3]
DEFAULT_TEMPLATE = REPO / "cfn.yaml"
PACKAGE_DIR = Path(snapcdc.__file__).resolve().parent  # functions/snapcdc: the Lambda code
# Template parameters for a run on one machine: the waits between polls are the stack's
# configuration, and a laptop has no reason to wait 5 or 30 seconds for them. ShardCount is the
# user's choice in AWS too (1 MiB/s and 1,000 records/s of writes each, enforced per shard here):
# one shard held publishing a 100,000-row version for ~35 s at 1 MiB/s, eight share the load
# (https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html).
# ConsumerWorkers too: a write in AWS waits ~5 ms on the network, so 16 overlap; an emulated
# write is CPU under one GIL, and overlapping them only adds contention (a 20,000-row first load
# applied in 15.2 s with 1 writer per invocation, 23.2 s with 16; 2026-12-01, idle 2 cores).
# The concurrent consumer is tested on its own (tests/stack/test_consumer.py, 16 writers).
LOCAL_PARAMETERS = {
    "QueryPollSeconds": "1",
    "LockRetrySeconds": "1",
    "ShardCount": "8",
    "ConsumerWorkers": "1",
    # an emulated export is the table at the request: no minute to wait on either side
    "VerifySettleSeconds": "0",
}


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

    def count_rows(self, table_id: str) -> int:
        """The table's rows in the target, tombstones excluded, counted by DynamoDB: a Scan
        with ``Select=COUNT`` counts the items its filter keeps and returns none
        (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Scan.html), where
        reading them back costs moto ~2 ms per item in its response serialiser."""
        if table_id in self._rows:
            return len(self._rows[table_id])
        paginator = self.aws.client("dynamodb").get_paginator("scan")
        pages = paginator.paginate(
            TableName=self.outputs["TargetTableName"],
            Select="COUNT",
            # the rule of read_rows (snapcdc.steps.consumer): the table's items, not tombstones
            FilterExpression="table_id = :t AND deleted = :no",
            ExpressionAttributeValues={":t": {"S": table_id}, ":no": {"BOOL": False}},
            ConsistentRead=True,
        )
        return sum(page["Count"] for page in pages)

    def is_part(self, key: str) -> bool:
        return is_part(self.data_dir, key)

    def put(self, key: str) -> Upload | None:
        """Upload one file. What the pipeline follows (an export, a manifest) becomes an
        :class:`Upload`, as does a file no rule of the stack starts on (IGNORED, with why);
        a table's configuration and the parts of multi-part versions give None."""
        s3 = self.aws.client("s3")
        bucket = self.outputs["ImportBucketName"]
        body = (self.data_dir / key).read_bytes()
        if is_table_config(key) or (is_export(key) and self.is_part(key)):
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            return None
        upload = Upload(key, *parse_key_parts(key)[:3], started=time.monotonic())
        seen = len(self.aws.events.deliveries)
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        # (the bus also delivers other events meanwhile: an execution ending, say)
        deliveries = [d for d in self.aws.events.deliveries[seen:] if d.object_key == key]
        if not deliveries:
            upload.status = "IGNORED"
            upload.reason = ignored_reason(key)
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
        """Approve or reject the HELD version of ``key``: the code snapcdc approve runs. One
        the registry refuses (nothing of ``key`` is HELD, say) is REFUSED, with why: the
        refusal is an outcome of the sequence, and the run goes on."""
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
        except (resuming.ResumeError, ContractError) as exc:
            upload.status, upload.reason = "REFUSED", " ".join(str(exc).split())
            return upload
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
        if upload.status not in TERMINAL + UNCHANGED:
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

    def time_stages(self, upload: Upload, figures: Figures) -> None:
        """The upload's stage times (:func:`stage_seconds`) from its executions' histories."""
        from snapcdc_local.emulator.stepfunctions import execution_history

        sfn = self.aws.client("stepfunctions")
        events = [e for arn in upload.executions for e in execution_history(sfn, arn)]
        upload.stages = stage_seconds(events, figures.applied_at)
        if upload.rows_read == 0 and figures.rows_read:
            upload.rows_read = figures.rows_read  # a FAILED version's check may have counted

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
    seconds: dict[str, float] = field(default_factory=dict)  # deploy, uploads, then the rest


def run_pipeline(
    options: RunOptions,
    *,
    on_upload: Any = None,
    progress: Any = None,
    dump_target: Path | None = None,
    emulator_hook: Any = None,
    dump_format: str = "csv",
) -> RunResult:
    """Deploy, upload, follow every upload to its end; optionally dump the target tables.

    ``on_upload(upload)`` is called as each upload's outcome is known; ``emulator_hook(aws)``
    runs once the stack is deployed (tests use it to reach into the emulation).
    """
    from snapcdc_local.emulator import Emulator
    from snapcdc_local.emulator.cfn import DeployError

    keys = plan_uploads(options.data_dir, options.sequence)
    progress = progress or NoProgress()
    parameters = {**LOCAL_PARAMETERS, **options.parameters}
    if not options.template.is_file():
        raise CliError(f"stack template {options.template} not found")
    task = progress.add_task("deploying the stack", total=None, figures="")
    clock = [time.monotonic()]
    seconds: dict[str, float] = {}

    def lap(name: str) -> None:
        now = time.monotonic()
        seconds[name] = round(now - clock[0], 3)
        clock[0] = now

    try:
        aws = Emulator(options.template, parameters=parameters, lambda_code=PACKAGE_DIR).__enter__()
    except DeployError as exc:
        raise CliError(str(exc)) from None
    lap("deploy")
    _note_fast_paths_off()
    try:
        if emulator_hook:
            emulator_hook(aws)
        run = LocalRun(aws, options.data_dir)
        uploads = drive(run, keys, options.concurrent, options.timeout, on_upload, progress, task)
        lap("uploads")
        redriven = None
        if options.redrive:
            progress.update(task, description="redriving failed batches")
            redriven = redrive_failed_batches(aws)
        run.settle(options.timeout)
        for upload in uploads:
            run.read_counts(upload)
        progress.update(task, description="reading the target tables")
        if dump_target is not None:  # first: the summary then counts the rows it read
            dump_tables(run, uploads, dump_target, dump_format)
        result = RunResult(uploads=uploads, tables=summarize(run, uploads), redriven=redriven)
        if options.history:
            result.histories = histories(aws, uploads)
        lap("summary")  # redrive, the summary, --history and --dump-target
        result.seconds = seconds
        return result
    finally:
        aws.__exit__(None, None, None)


def _note_fast_paths_off() -> None:
    """One line per fast path that stepped aside (moto is not what it expects): the run is
    slower, and the user should know why."""
    from snapcdc_local.emulator import fast_paths

    for name, why in sorted(fast_paths.stepped_aside.items()):
        print(f"note: the emulation's fast path {name} is off ({why}); slower, same results",
              file=sys.stderr)  # fmt: skip
    for name in fast_paths.unknown():
        print(f"note: {fast_paths.ENV}: {name!r} turns no fast path off, ignored (write -NAME, "
              f"NAME one of {', '.join(fast_paths.NAMES)}; or off)", file=sys.stderr)  # fmt: skip


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
    progress = progress or NoProgress()
    uploads: list[Upload] = []
    followed = [k for k in keys if not is_table_config(k) and not (is_export(k) and run.is_part(k))]
    progress.update(task, description="uploading", total=len(followed), completed=0)
    with Watcher(run, progress) as watcher:
        if concurrent:
            for key in keys:
                upload = None if resume_line(key) or verify_line(key) else run.put(key)
                if upload:
                    uploads.append(upload)
                    if upload.status not in UNCHANGED:
                        watcher.follow(upload)
            progress.update(task, description=f"{len(followed)} uploads running concurrently")
            run.settle(timeout)
            for upload in uploads:
                if upload.status not in UNCHANGED:
                    run.resolve(upload)
                    run.time_stages(upload, watcher.done(upload))
                    stop = run.finished_at(upload)
                    upload.seconds = round(
                        max(0.0, (stop or time.time()) - _wall(upload.started)), 2
                    )
                progress.advance(task)
                if on_upload:
                    on_upload(upload)
            # approve / reject (and verify / repair) lines run once the uploads settled, in
            # the order listed
            keys = [k for k in keys if resume_line(k) or verify_line(k)]
        progress.update(task, description="uploads")
        for key in keys:
            checked = verify_line(key)
            if checked:
                uploads.append(run_verify(run, *checked, timeout))
                if on_upload:
                    on_upload(uploads[-1])
                continue
            resume = resume_line(key)
            upload = run.resume(*resume) if resume else run.put(key)
            if upload is None:
                continue
            if upload.status not in UNCHANGED:  # (nothing started: nothing to follow)
                watcher.follow(upload)
                run.settle(timeout)
                run.resolve(upload)
                upload.seconds = round(time.monotonic() - upload.started, 2)
                run.time_stages(upload, watcher.done(upload))
            uploads.append(upload)
            progress.advance(task)
            if on_upload:
                on_upload(upload)
    return uploads


def _wall(monotonic_start: float) -> float:
    return time.time() - (time.monotonic() - monotonic_start)


def summarize(run: LocalRun, uploads: list[Upload]) -> dict[str, dict[str, Any]]:
    """Per target table: how many of its uploads ended in each status, each counted once by
    where it stands now (the last line about it: a HELD version approved later counts as
    SUCCEEDED), the last applied version and the rows in the target. IGNORED and REFUSED lines
    changed nothing and are not counted."""
    current: dict[tuple[str, str, str | None], Upload] = {}
    for upload in uploads:
        if verify_line(upload.label):  # a verify / repair row is not a version's outcome
            continue
        if upload.status not in UNCHANGED:
            current[(upload.table_id, upload.key, upload.sequencer or upload.label)] = upload
    tables: dict[str, dict[str, Any]] = {}
    for upload in current.values():
        summary = tables.setdefault(
            upload.table_id, {"SUCCEEDED": 0, "SKIPPED": 0, "FAILED": 0, "version": None, "rows": 0}
        )
        summary[upload.status] = summary.get(upload.status, 0) + 1
    for table_id, summary in tables.items():
        if not summary["SUCCEEDED"]:
            continue
        head = run.registry.get_head(table_id, table_name=run.outputs["RegistryTableName"]) or {}
        summary["version"] = head.get("last_applied_version")
        summary["rows"] = run.count_rows(table_id)
    return tables


def histories(aws: Any, uploads: list[Upload]) -> dict[str, list[Any]]:
    from snapcdc_local.emulator.stepfunctions import execution_history, history_rows

    sfn = aws.client("stepfunctions")
    return {arn: history_rows(execution_history(sfn, arn)) for u in uploads for arn in u.executions}


DUMP_FORMATS = ("csv", "jsonl")


def dump_tables(
    run: LocalRun, uploads: list[Upload], directory: Path, fmt: str = "csv"
) -> list[Path]:
    """Write ``{tenant}/{table}.csv`` (or ``.jsonl``) for every table with a SUCCEEDED version:
    its rows in the target, sorted by key. CSV writes NULL as an empty field, as Athena's
    OpenCSVSerDe reads one; JSON Lines (one object a row, the columns in order) keeps NULL
    (``null``) apart from an empty string (``""``)."""
    if fmt not in DUMP_FORMATS:
        raise CliError(f"unknown dump format {fmt!r}: expected one of {', '.join(DUMP_FORMATS)}")
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
        path = directory / f"{table_id}.{fmt}"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as handle:
            if fmt == "jsonl":
                for row in rows:
                    record = {c: row.get(c) for c in columns}
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            else:
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow(columns)
                writer.writerows(
                    [["" if row.get(c) is None else row.get(c) for c in columns] for row in rows]
                )
        written.append(path)
    return written
