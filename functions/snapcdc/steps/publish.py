"""Publishing the computed ops to Kinesis, one page per Lambda invocation.

A page streams the ops result CSV from its byte cursor, turns each row into a Kinesis record,
sends them with PutRecords in batches within Kinesis' limits, retries only the records Kinesis
refused, with backoff, and returns before the invocation runs out of time. The state machine
calls it again with the returned cursor until ``done``.

Kinesis refuses records one by one: a shard takes 1 MiB and 1,000 records a second, and a record
beyond that comes back as ``ProvisionedThroughputExceededException`` in its entry of the
response while the others are stored
(https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html). Each op is sent
until Kinesis has taken it exactly once, across pages: a batch is counted, and the cursor moves
past it, only when all of it is in; when the invocation runs low on time while Kinesis still
refuses part of a batch, the page returns the cursor of the batch's first row and ``sent``, the
ordinals (rows after the cursor, from 0) of the batch's rows Kinesis already took, and the next
page skips those. The version fails (PublishFailed) only when Kinesis accepts nothing for
``max_retries`` attempts in a row. (A Lambda invocation that fails and is retried by the state
machine sends its page again from the cursor it was given: Kinesis then holds duplicates, which
the consumer's version-conditioned writes make harmless.)

Record format (JSON, one per row)::

    {"op": "UPDATE", "tenant": "tenant", "table": "test_table", "table_id": "tenant/test_table",
     "version": "20201230_V0002", "key": {"PK": "PK2"}, "row": {"PK": "PK2", "COL_1": "...", ...},
     "source": "tenant/test_table/20201230_V0002/export2.csv.gz", "sequencer": "0062E99A88DC407460"}

``row`` holds every column of the new version by its original name (Athena lowercases the
result header, so names come from the schema, by position); NULL is ``null``. A DELETE carries
the old row's values. Partition key: ``tenant/table|rowkey`` (a SHA-256 when longer than 256).

>>> partition_key("tenant/t", "PK1")
'tenant/t|PK1'
>>> len(partition_key("tenant/t", "x" * 300))
64
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from snapcdc.aws.result_files import iter_records
from snapcdc.model.contract import TableSchema
from snapcdc.model.errors import PublishFailed, ResultFormatError
from snapcdc.model.limits import KINESIS_RECORD_BYTES
from snapcdc.model.state import PublishProgress, QueryStatus, Upload
from snapcdc.sql.queries import OPS
from snapcdc.steps.consumer import row_key

MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 5 * 1024 * 1024
MAX_RECORD_BYTES = KINESIS_RECORD_BYTES  # data + partition key
MAX_PARTITION_KEY = 256


def partition_key(table_id: str, key: str) -> str:
    text = f"{table_id}|{key}"
    if len(text) <= MAX_PARTITION_KEY:
        return text
    return hashlib.sha256(text.encode()).hexdigest()


def ops_status(queries: list[QueryStatus]) -> QueryStatus:
    """The status of the statement whose result holds the ops (kind ``ops``)."""
    found = [q for q in queries if q.kind == "ops"]
    if len(found) != 1:
        raise ResultFormatError(f"expected one ops statement among the queries, found {len(found)}")
    return found[0]


@dataclass
class Batch:
    start: int = 0  # cursor of the batch's first row
    first: int = 0  # the ordinal of that row in the page
    entries: list[dict[str, Any]] = field(default_factory=list)
    ordinals: list[int] = field(default_factory=list)  # the page ordinal of each entry
    taken: list[int] = field(default_factory=list)  # ordinals Kinesis took on an earlier page
    size: int = 0
    end: int = 0  # cursor just past the batch's last record
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OPS, 0))

    def fits(self, entry_size: int) -> bool:
        return len(self.entries) < MAX_BATCH_RECORDS and self.size + entry_size <= MAX_BATCH_BYTES


def make_entry(
    fields: list[str | None], schema: TableSchema, upload: Upload
) -> tuple[dict[str, Any], str]:
    """The PutRecords entry for one result row, and its op."""
    if len(fields) != len(schema.columns) + 1:
        raise ResultFormatError(
            f"ops row has {len(fields)} fields, expected op + {len(schema.columns)} columns"
        )
    op = fields[0]
    if op not in OPS:
        raise ResultFormatError(f"unknown op {op!r} in the ops result")
    row = dict(zip(schema.columns, fields[1:], strict=True))
    key_values = [row[k] for k in schema.key]
    record = {
        "op": op,
        "tenant": upload.tenant,
        "table": upload.table,
        "table_id": upload.table_id,
        "version": upload.version,
        "key": {k: row[k] for k in schema.key},
        "row": row,
        "source": upload.key,
    }
    if upload.sequencer:
        # with source, names the upload's registry record (the consumer counts there) and
        # tells a redelivered op from a re-upload of the same version
        record["sequencer"] = upload.sequencer
    data = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()
    pk = partition_key(upload.table_id, row_key(key_values))
    size = len(data) + len(pk.encode())
    if size > MAX_RECORD_BYTES:
        raise PublishFailed(
            f"the {op} of key {key_values} is {size} bytes, above Kinesis' 1 MiB record limit"
        )
    return {"Data": data, "PartitionKey": pk}, op


def put_records(
    kinesis: Any,
    stream: str,
    entries: list[dict[str, Any]],
    max_retries: int,
    sleep: Callable[[float], None] = time.sleep,
    may_wait: Callable[[float], bool] = lambda seconds: True,
) -> tuple[int, list[int]]:
    """PutRecords, then again with only the refused records, with backoff.

    Returns the number of retries and the indexes of the entries still refused when
    ``may_wait(delay)`` says there is no time for the next wait (none when all went in). Raises
    PublishFailed after ``max_retries`` attempts in a row in which Kinesis took nothing.
    """
    pending = list(range(len(entries)))
    retries = idle = 0
    while True:
        response = kinesis.put_records(StreamName=stream, Records=[entries[i] for i in pending])
        results = response["Records"]
        refused = [i for i, r in zip(pending, results, strict=True) if r.get("ErrorCode")]
        if not refused:
            return retries, []
        first = next(r for r in results if r.get("ErrorCode"))
        last_error = f"{first['ErrorCode']}: {first.get('ErrorMessage', '')}"
        idle = idle + 1 if len(refused) == len(pending) else 0
        if idle > max_retries:
            raise PublishFailed(
                f"{len(refused)} record(s) still refused by Kinesis after {max_retries} retries "
                f"without progress ({last_error})"
            )
        pending = refused
        # A shard's allowance refills continuously: wait longer only while nothing gets in,
        # with jitter so that retries of parallel pages spread out.
        delay = min(0.1 * 2**idle, 5.0) * (0.5 + random.random() / 2)  # noqa: S311
        if not may_wait(delay):
            return retries, pending
        sleep(delay)
        retries += 1


def publish_page(
    s3: Any,
    kinesis: Any,
    stream: str,
    upload: Upload,
    schema: TableSchema,
    queries: list[QueryStatus],
    progress: PublishProgress,
    time_left_ms: Callable[[], int],
    *,
    reserve_ms: int,
    max_records: int,
    max_retries: int,
    sleep: Callable[[float], None] = time.sleep,
) -> PublishProgress:
    """Send ops from ``progress.cursor`` on; return the new progress (cursor, counts, done)."""
    status = ops_status(queries)
    progress = replace(progress, sent=list(progress.sent))
    progress.calls += 1
    cursor = progress.cursor
    taken_before = set(progress.sent)  # ordinals after the cursor Kinesis already took
    sent = 0
    ordinal = 0  # of the next row, counted from the cursor
    batch = Batch(start=cursor, end=cursor)

    def may_wait(seconds: float) -> bool:
        return time_left_ms() - seconds * 1000 >= reserve_ms

    def flush() -> bool:
        """Send the batch; False when part of it is still refused (the page must end)."""
        nonlocal batch, sent
        retries, refused = (0, [])
        if batch.entries:
            retries, refused = put_records(
                kinesis, stream, batch.entries, max_retries, sleep, may_wait
            )
        progress.retries += retries
        sent += len(batch.entries) - len(refused)
        if refused:
            still_out = {batch.ordinals[i] for i in refused}
            taken = sorted({*batch.taken, *batch.ordinals} - still_out)
            progress.cursor = batch.start
            progress.sent = [o - batch.first for o in taken]
            return False
        progress.records += len(batch.entries) + len(batch.taken)
        progress.inserts += batch.counts["INSERT"]
        progress.updates += batch.counts["UPDATE"]
        progress.deletes += batch.counts["DELETE"]
        progress.cursor = batch.end
        progress.sent = []
        batch = Batch(start=batch.end, first=ordinal, end=batch.end)
        return True

    expect_header = cursor == 0
    for fields, end in iter_records(s3, status.output_location or "", cursor):
        if expect_header:
            _check_header(fields, schema)
            expect_header = False
            batch.start = batch.end = end
            continue
        entry, op = make_entry(fields, schema, upload)
        if ordinal in taken_before:  # Kinesis has it: count it with its batch, do not resend
            batch.taken.append(ordinal)
            batch.counts[op] += 1
            batch.end = end
            ordinal += 1
            continue
        size = len(entry["Data"]) + len(entry["PartitionKey"].encode())
        if not batch.fits(size):
            if not flush():
                return progress  # not done: the next page resends what is still refused
            if sent >= max_records or time_left_ms() < reserve_ms:
                return progress  # not done: the next page starts at progress.cursor
        batch.entries.append(entry)
        batch.ordinals.append(ordinal)
        batch.size += size
        batch.counts[op] += 1
        batch.end = end
        ordinal += 1
        if sent + len(batch.entries) >= max_records:
            flush()
            return progress
    if flush():
        progress.done = True
    return progress


def _check_header(fields: list[str | None], schema: TableSchema) -> None:
    expected = ["op", *(c.lower() for c in schema.columns)]
    got = [(f or "").lower() for f in fields]
    if got != expected:
        raise ResultFormatError(f"ops result header {got} does not match {expected}")
