"""Verify: prove each table's live target rows equal its last applied export, key by key.

One execution of the verify state machine (``verify.asl.json``) verifies one table (``snapcdc
verify``) or every table (the scheduled verify) in rounds; a round is:

1. **begin**: for each table, take its lock (the pipeline's own lock item, with a short lease),
   check that every op of its published versions was applied (the watches of
   ``snapcdc.steps.applied_check``), and read its head under the lock. A table whose lock is
   held, or whose ops are still in flight, is **BUSY**: recorded, not compared, never reported
   as drift. The heads go to ``verify/{run}/r{round}/tables.json`` in the results bucket.
2. **export**: one DynamoDB export of the whole target table (no read capacity), asked for
   ``settle_seconds`` after the locks were taken; the locks are released ``settle_seconds``
   after it, so no op of a verified table lands within the minute around the request that an
   export may or may not hold (``snapcdc.aws.exports``). A version arriving meanwhile waits at
   its Lock state, and is applied after the export's moment: it cannot be mistaken for drift.
3. **convert**: the export's data files, listed by its manifest, are turned into one CSV
   image per verified table (``snapcdc.model.target_image``), in parallel shards of files.
4. **compare** (per table): Athena joins the image with the table's last applied export, read
   from exactly the files its head records (``sql/verify.sql``); **record** counts the drifted
   keys per kind and column and writes the table's verify record and the ``DriftedRows`` metric.
5. with ``repair``, the drifted rows are written (``snapcdc.steps.repair``) and a second round
   verifies the repaired tables again.

Verify record (registry, partition ``table_id``, sk ``verify#{started_at}#{run_id}#r{round}``;
``snapcdc.aws.registry.last_verify`` reads a table's latest)::

    {"table_id", "sk", "run_id", "round", "execution_arn", "started_at", "finished_at",
     "status": RUNNING | CLEAN | DRIFT | BUSY | FAILED, "version", "schema", "reason",
     "export_arn", "export_time", "export_rows", "target_rows",
     "missing", "extra", "different", "drifted", "columns": {name: rows},
     "sample": {kind: [keys]}, "result": "s3://.../id.csv", "diverged": [versions],
     "repair": {"applied", "stale", "skipped", "failed"}}

>>> run_token("arn:aws:states:us-east-1:1:execution:verify:x")
'5338c33f7e1a'
>>> verify_table_names("0a1b2c3d4e5f", 2, 3)
('verify_0a1b2c3d4e5f_r2_3_source', 'verify_0a1b2c3d4e5f_r2_3_target')
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from collections import Counter
from datetime import datetime
from typing import Any

from snapcdc.aws.clients import client
from snapcdc.aws.exports import data_files, describe_export, read_items, request_export
from snapcdc.aws.leases import iso, lease_expiry, release_lock, take_lock
from snapcdc.aws.registry import (
    get_head,
    put_verify,
    table_heads,
    update_verify,
    verify_sk,
)
from snapcdc.aws.result_files import iter_records
from snapcdc.model.contract import TableConfig, TableSchema
from snapcdc.model.errors import ExportFailed, VerifyFailed
from snapcdc.model.names import glue_database, parse_table_id
from snapcdc.model.s3paths import split_s3_uri
from snapcdc.model.settings import Settings
from snapcdc.model.target_image import image, table_of
from snapcdc.sql import queries
from snapcdc.steps.applied_check import unapplied_versions
from snapcdc.steps.drift import KINDS, parse_drift
from snapcdc.steps.plan import applied_files, check_statement_sizes, diverged_versions, statement

RUN_PREFIX = "verify/"
STATUSES = ("RUNNING", "CLEAN", "DRIFT", "BUSY", "FAILED")
METRIC_NAMESPACE = "snapcdc"
METRIC_NAME = "DriftedRows"
SAMPLE_KEYS = 10  # keys per kind kept on the registry record
MAX_SHARDS = 8  # convert lambdas at once (the Map's MaxConcurrency)
EXPORT_POLL_CAP_SECONDS = 60
CONVERT_RESERVE_MILLIS = 120_000  # a data file is converted whole; keep room for one more


def run_token(execution_arn: str) -> str:
    """The run's id: short, hex, the same for every step of one execution."""
    return hashlib.sha256(execution_arn.encode()).hexdigest()[:12]


def verify_table_names(run_id: str, round_: int, index: int) -> tuple[str, str]:
    """The run's Glue tables for one table: its last applied export and its target image.

    ``export_table_name`` always puts ``_v`` right after the escaped table name (whose ``_``
    are doubled); here the first single ``_`` is followed by a hex digit, so these names can
    never be a version's table.
    """
    stem = f"verify_{run_id}_r{round_}_{index}"
    return f"{stem}_source", f"{stem}_target"


def results_bucket(settings: Settings) -> str:
    if not settings.athena_output:
        raise VerifyFailed("SNAPCDC_ATHENA_OUTPUT is not set: no bucket for the verify's files")
    bucket, _ = split_s3_uri(settings.athena_output)
    return bucket


def round_prefix(run_id: str, round_: int) -> str:
    return f"{RUN_PREFIX}{run_id}/r{round_}/"


# -- 1. begin -----------------------------------------------------------------------------


def begin(
    request: dict[str, Any], execution_arn: str, settings: Settings, now: datetime
) -> dict[str, Any]:
    """Lock and check every requested table; record each; the round's state (small)."""
    settings.require("registry_table", "lock_table", "target_table")
    run_id = run_token(execution_arn)
    round_ = int(request.get("round") or 1)
    wanted = request.get("tables")
    if wanted == "all":
        wanted = table_heads(table_name=settings.registry_table)
    if not isinstance(wanted, list) or not all(isinstance(t, str) for t in wanted):
        raise VerifyFailed(f'"tables" must be a list of tenant/table names or "all": {wanted!r}')
    if settings.verify_lock_seconds < 2 * settings.verify_settle_seconds + 60:
        raise VerifyFailed(
            f"VerifyLockSeconds ({settings.verify_lock_seconds}) must be at least twice "
            f"VerifySettleSeconds ({settings.verify_settle_seconds}) plus a minute: the locks "
            "would end while the export's minute is still open"
        )
    expires = lease_expiry(now, settings.verify_lock_seconds)
    bucket = results_bucket(settings)
    entries: list[dict[str, Any]] = []
    try:
        for table_id in dict.fromkeys(wanted):  # each once, in the order given
            started = iso(now)
            record = {
                "table_id": table_id,
                "sk": verify_sk(started, run_id, round_),
                "run_id": run_id,
                "round": round_,
                "execution_arn": execution_arn,
                "started_at": started,
            }
            entry = _lock_and_read(table_id, execution_arn, expires, settings, now, record)
            if entry is not None:
                entry.update(index=len(entries), sk=record["sk"])
                entries.append(entry)
            put_verify(record, table_name=settings.registry_table)
        prefix = round_prefix(run_id, round_)
        _put_json(bucket, prefix + "tables.json", {"tables": entries, "started_at": iso(now)})
    except Exception:
        # the state machine ends the run: the tables must not wait for the leases to end
        for entry in entries:
            release_lock(settings.lock_table, entry["table_id"], execution_arn)
        raise
    return {
        "run_id": run_id,
        "round": round_,
        "repair": bool(request.get("repair")),
        "bucket": bucket,
        "prefix": prefix,
        # kept small: the state machine carries it everywhere (256 KiB for the whole state)
        "tables": [{"index": e["index"], "table_id": e["table_id"]} for e in entries],
        "settle_seconds": settings.verify_settle_seconds,
    }


def _lock_and_read(
    table_id: str,
    holder: str,
    expires: str,
    settings: Settings,
    now: datetime,
    record: dict[str, Any],
) -> dict[str, Any] | None:
    """Lock the table and read its head; None (and ``record`` says why) when it cannot be
    verified now."""
    try:
        parse_table_id(table_id)
    except ValueError as exc:
        record.update(status="FAILED", reason=str(exc))
        return None
    held = take_lock(settings.lock_table, table_id, holder, expires, iso(now), acquired_at=iso(now))
    if held is not None:
        record.update(
            status="BUSY",
            reason=(
                f"table {table_id} is locked by {held.get('held_by', 'another holder')} "
                f"until {held.get('expires_at', '?')}: a version is being applied"
            ),
        )
        return None
    try:
        return _read_locked(table_id, holder, settings, record)
    except Exception:
        release_lock(settings.lock_table, table_id, holder)
        raise


def _read_locked(
    table_id: str, holder: str, settings: Settings, record: dict[str, Any]
) -> dict[str, Any] | None:
    """Under the table's lock: no op in flight, then its head (None: ``record`` says why)."""
    pending = unapplied_versions(table_id, table_name=settings.registry_table)
    if pending:
        release_lock(settings.lock_table, table_id, holder)
        first = pending[0]
        record.update(
            status="BUSY",
            reason=(
                f"version {first['version']} of {table_id} has {first['missing']} of "
                f"{first['published']} published ops not applied yet (in the stream, or in the "
                "failed-batches bucket: snapcdc redrive)"
            ),
        )
        return None
    head = get_head(table_id, table_name=settings.registry_table) or {}
    version = head.get("last_applied_version")
    if not version:
        release_lock(settings.lock_table, table_id, holder)
        record.update(status="FAILED", reason=f"no version of {table_id} has been applied yet")
        return None
    diverged = [d["version"] for d in diverged_versions(head)]
    record.update(
        status="RUNNING",
        version=version,
        schema=head["schema"],
        export_rows=int(head.get("rows") or 0),
    )
    if diverged:
        record["diverged"] = diverged
    return {
        "table_id": table_id,
        "version": version,
        "schema": head["schema"],
        "config": head["config"],
        "location": head["location"],
        "files": applied_files(head),
        "rows": int(head.get("rows") or 0),
        "diverged": diverged,
    }


# -- 2. export, then release the locks -------------------------------------------------------


def export(run: dict[str, Any], execution_arn: str, settings: Settings) -> dict[str, Any]:
    """Ask for the export of the target table; ``{export_arn, status, wait_seconds}``."""
    settings.require("target_table_arn")
    described = request_export(
        client("dynamodb"),
        settings.target_table_arn,
        run["bucket"],
        run["prefix"] + "export",
        client_token=f"{run_token(execution_arn)}-r{run['round']}",
    )
    return _export_status(described, settings.query_poll_seconds)


def unlock(run: dict[str, Any], execution_arn: str, settings: Settings) -> dict[str, Any]:
    """Release the round's locks (those still held by this execution)."""
    released = [
        t["table_id"]
        for t in run.get("tables", [])
        if release_lock(settings.lock_table, t["table_id"], execution_arn)
    ]
    return {"released": released}


def export_state(export_: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The export's state; the next wait doubles up to a minute (exports take minutes)."""
    described = describe_export(client("dynamodb"), export_["export_arn"])
    wait = min(
        max(settings.query_poll_seconds, int(export_.get("wait_seconds") or 1) * 2),
        max(EXPORT_POLL_CAP_SECONDS, settings.query_poll_seconds),
    )
    return _export_status(described, wait)


def _export_status(described: dict[str, Any], wait: int) -> dict[str, Any]:
    status = {
        "export_arn": described["ExportArn"],
        "status": described.get("ExportStatus", "IN_PROGRESS"),
        "wait_seconds": wait,
    }
    if described.get("ExportManifest"):
        status["manifest"] = described["ExportManifest"]
    if described.get("ExportTime"):
        status["export_time"] = iso(described["ExportTime"])
    return status


# -- 3. convert the export into one image per table ------------------------------------------


def list_files(run: dict[str, Any], export_: dict[str, Any]) -> dict[str, Any]:
    """The export's data files (from its manifest) saved beside the run; the convert shards."""
    if export_.get("status") != "COMPLETED" or not export_.get("manifest"):
        raise ExportFailed(f"export {export_.get('export_arn')} has not completed")
    summary, files = data_files(client("s3"), run["bucket"], export_["manifest"])
    _put_json(
        run["bucket"],
        run["prefix"] + "files.json",
        {"files": [f["dataFileS3Key"] for f in files], "items": summary.get("itemCount")},
    )
    shards = max(1, min(MAX_SHARDS, len(files)))
    return {
        "items": int(summary.get("itemCount") or 0),
        "files": len(files),
        "shards": [{"shard": i, "of": shards, "cursor": 0} for i in range(shards)],
    }


def convert(run: dict[str, Any], shard: dict[str, Any], remaining_millis: Any) -> dict[str, Any]:
    """Convert the shard's data files (every ``of``-th from ``shard``), a whole file at a time,
    while time is left; the shard with its next ``cursor`` (a file number) and ``done``."""
    s3 = client("s3")
    tables = _tables(run)
    by_id = {t["table_id"]: t for t in tables}
    files = _get_json(run["bucket"], run["prefix"] + "files.json")["files"]
    cursor = int(shard.get("cursor") or 0)
    numbers = list(range(int(shard["shard"]), len(files), int(shard["of"])))
    for number in [n for n in numbers if n >= cursor]:
        if number > cursor and remaining_millis() < CONVERT_RESERVE_MILLIS:
            return {**shard, "cursor": number, "done": False}
        _convert_file(s3, run, files[number], number, by_id)
        cursor = number + 1
    return {**shard, "cursor": cursor, "done": True}


def _convert_file(
    s3: Any, run: dict[str, Any], key: str, number: int, by_id: dict[str, dict[str, Any]]
) -> None:
    """One data file's items of the verified tables, one image file per table that has any."""
    images: dict[str, _Image] = {}
    for item in read_items(s3, run["bucket"], key):
        pk = item.get("pk", {}).get("S")
        found = table_of(pk) if isinstance(pk, str) else None
        if found is None or found[0] not in by_id:
            continue
        table_id, row_key = found
        schema = by_id[table_id]["schema"]
        images.setdefault(table_id, _Image()).write(
            image(item, table_id, row_key, schema["columns"], len(schema["key"]))
        )
    for table_id, written in images.items():
        s3.put_object(
            Bucket=run["bucket"],
            Key=f"{_image_prefix(run, by_id[table_id]['index'])}{number:06d}.csv.gz",
            Body=written.close(),
        )


class _Image:
    """A gzip CSV being written in memory: every field quoted, quotes doubled, ``\\n``."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()
        self.text = io.TextIOWrapper(
            gzip.GzipFile(fileobj=self.buffer, mode="wb", mtime=0), encoding="utf-8", newline=""
        )
        self.writer = csv.writer(self.text, quoting=csv.QUOTE_ALL, lineterminator="\n")

    def write(self, row: list[str]) -> None:
        self.writer.writerow(row)

    def close(self) -> bytes:
        self.text.close()  # flushes the gzip stream, and ends it
        return self.buffer.getvalue()


def _image_prefix(run: dict[str, Any], index: int) -> str:
    return f"{run['prefix']}target/{index}/"


# -- 4. compare and record -------------------------------------------------------------------


def plan_compare(run: dict[str, Any], table: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The Athena statements comparing one table's image with its last applied export."""
    entry = table_entry(run, table)
    schema = TableSchema.from_dict(entry["schema"])
    config = TableConfig.from_dict(entry["config"])
    ref = parse_table_id(entry["table_id"])
    database = glue_database(settings.glue_database_prefix, ref[0])
    source, target = verify_table_names(run["run_id"], run["round"], entry["index"])
    image_location = f"s3://{run['bucket']}/{_image_prefix(run, entry['index'])}"
    statements = [
        # the run's own names: no table of an earlier attempt to drop first
        ("create_database", "ddl", queries.create_database(database)),
        ("create_source", "ddl", queries.create_export_table(
            database, source, schema.columns, entry["location"], config)),
        ("create_target", "ddl", queries.create_target_image_table(
            database, target, schema, image_location)),
        ("verify", "verify", queries.verify(database, source, schema, entry["files"], target)),
        ("drop_source", "ddl", queries.drop_export_table(database, source)),
        ("drop_target", "ddl", queries.drop_export_table(database, target)),
    ]  # fmt: skip
    check_statement_sizes(statements, f"verify of {entry['table_id']}", schema)
    sql_prefix = (
        f"s3://{run['bucket']}/plans/verify-{run['run_id']}-r{run['round']}-{entry['index']}/"
    )
    stem = f"r{run['round']}_t{entry['index']}_"
    return {
        "queries": [
            statement(client("s3"), i, stem + name, kind, sql, sql_prefix)
            for i, (name, kind, sql) in enumerate(statements)
        ]
    }


def record(
    run: dict[str, Any],
    table: dict[str, Any],
    statuses: list[dict[str, Any]] | None,
    export_: dict[str, Any],
    settings: Settings,
    now: datetime,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Count the drift found for one table, write its verify record and the metric; a small
    summary for the state machine."""
    entry = table_entry(run, table)
    values: dict[str, Any] = {
        "finished_at": iso(now),
        "export_arn": export_.get("export_arn"),
    }
    if export_.get("export_time"):
        values["export_time"] = export_["export_time"]
    if error is not None:
        cause = error.get("Cause") or error.get("Error") or "unknown error"
        values.update(status="FAILED", reason=_cause(cause))
        update_verify(entry["table_id"], entry["sk"], values, table_name=settings.registry_table)
        return {"index": entry["index"], "status": "FAILED"}
    result = next((s for s in statuses or [] if s.get("kind") == "verify"), None)
    if result is None or not result.get("output_location"):
        raise VerifyFailed(f"verify of {entry['table_id']} has no comparison result")
    counts, columns, sample = summarize(
        client("s3"), result["output_location"], TableSchema.from_dict(entry["schema"])
    )
    drifted = sum(counts.values())
    values.update(
        status="DRIFT" if drifted else "CLEAN",
        result=result["output_location"],
        drifted=drifted,
        target_rows=entry["rows"] - counts["missing"] + counts["extra"],
        columns=dict(columns),
        sample=sample,
        **counts,
    )
    if entry.get("diverged"):
        values["reason"] = (
            f"versions {', '.join(entry['diverged'])} failed after their ops began to reach "
            "the target; the table's next version reconverges it"
        )
    update_verify(entry["table_id"], entry["sk"], values, table_name=settings.registry_table)
    put_metric(entry["table_id"], drifted)
    # small, as the round's state; the repair reads the result it names
    summary = {"index": entry["index"], "status": values["status"]}
    if drifted and run.get("repair"):
        summary["result"] = result["output_location"]
    return summary


def summarize(
    s3: Any, result_uri: str, schema: TableSchema
) -> tuple[dict[str, int], Counter, dict[str, list[str]]]:
    """Per kind the drifted keys, per column the rows that differ in it, a sample of keys."""
    counts = dict.fromkeys(KINDS, 0)
    columns: Counter = Counter()
    sample: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for number, (fields, _) in enumerate(iter_records(s3, result_uri)):
        if number == 0:
            continue  # the header
        drift = parse_drift(fields, schema)
        counts[drift.kind] += 1
        columns.update(drift.columns)
        if len(sample[drift.kind]) < SAMPLE_KEYS:
            sample[drift.kind].append(drift.key[:200])
    return counts, columns, {k: v for k, v in sample.items() if v}


def put_metric(table_id: str, drifted: int) -> None:
    """``snapcdc/DriftedRows``: a dimensionless point for the alarm, one per table."""
    data = {"MetricName": METRIC_NAME, "Value": drifted, "Unit": "Count"}
    client("cloudwatch").put_metric_data(
        Namespace=METRIC_NAMESPACE,
        MetricData=[data, {**data, "Dimensions": [{"Name": "Table", "Value": table_id}]}],
    )


def fail_round(run: dict[str, Any], error: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Record every table of the round that is still RUNNING as FAILED, with the cause."""
    from botocore.exceptions import ClientError

    reason = _cause(error.get("Cause") or error.get("Error") or "unknown error")
    failed = []
    for table in _tables(run) if run.get("tables") else []:
        try:
            client("dynamodb").update_item(
                TableName=settings.registry_table,
                Key={"table_id": {"S": table["table_id"]}, "sk": {"S": table["sk"]}},
                UpdateExpression="SET #s = :failed, #r = :reason",
                ConditionExpression="#s = :running",
                ExpressionAttributeNames={"#s": "status", "#r": "reason"},
                ExpressionAttributeValues={
                    ":failed": {"S": "FAILED"},
                    ":reason": {"S": reason},
                    ":running": {"S": "RUNNING"},
                },
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            continue
        failed.append(table["table_id"])
    return {"failed": failed}


def next_round(run: dict[str, Any], compared: list[dict[str, Any]]) -> dict[str, Any]:
    """After a repair: verify the repaired tables again (round 2), else end."""
    names = {t["index"]: t["table_id"] for t in run.get("tables", [])}
    repaired = [names[c["index"]] for c in compared if c.get("status") == "DRIFT"]
    if not run.get("repair") or run["round"] != 1 or not repaired:
        return {"again": False}
    return {"again": True, "request": {"tables": repaired, "repair": False, "round": 2}}


def report(request: dict[str, Any], execution_arn: str, settings: Settings) -> dict[str, Any]:
    """The execution's output: every record this run wrote, per table, round by round."""
    from snapcdc.aws.registry import list_verifies

    run_id = run_token(execution_arn)
    wanted = request.get("tables")
    if wanted == "all":
        wanted = table_heads(table_name=settings.registry_table)
    tables, statuses = [], Counter()
    for table_id in dict.fromkeys(wanted or []):
        records = list_verifies(table_id, run_id=run_id, table_name=settings.registry_table)
        rounds = sorted(records, key=lambda r: int(r.get("round") or 0))
        if not rounds:
            continue
        statuses[str(rounds[-1].get("status"))] += 1
        # every table ("all"): the clean ones only counted, so the output stays under 256 KiB
        if request.get("tables") != "all" or rounds[-1].get("status") != "CLEAN":
            tables.append({"table_id": table_id, "rounds": [_brief(r) for r in rounds]})
    return {"run_id": run_id, "statuses": dict(statuses), "tables": tables}


def _brief(record: dict[str, Any]) -> dict[str, Any]:
    keys = ("sk", "round", "status", "version", "reason", "missing", "extra", "different",
            "drifted", "result", "repair", "diverged")  # fmt: skip
    return {k: record[k] for k in keys if k in record}


# -- helpers ------------------------------------------------------------------------------


def _cause(cause: str) -> str:
    """A Lambda error's message from a Catch's Cause (its JSON), or the cause itself."""
    try:
        parsed = json.loads(cause)
    except ValueError:
        return cause
    if isinstance(parsed, dict) and parsed.get("errorMessage"):
        return f"{parsed.get('errorType', 'Error')}: {parsed['errorMessage']}"
    return cause


def _tables(run: dict[str, Any]) -> list[dict[str, Any]]:
    return _get_json(run["bucket"], run["prefix"] + "tables.json")["tables"]


def table_entry(run: dict[str, Any], table: dict[str, Any]) -> dict[str, Any]:
    for entry in _tables(run):
        if entry["index"] == table["index"]:
            return entry
    raise VerifyFailed(f"table {table} is not one of this verify's tables")


def _put_json(bucket: str, key: str, value: Any) -> None:
    client("s3").put_object(
        Bucket=bucket, Key=key, Body=json.dumps(value).encode(), ContentType="application/json"
    )


def _get_json(bucket: str, key: str) -> Any:
    return json.loads(client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
