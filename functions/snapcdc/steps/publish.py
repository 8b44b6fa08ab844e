"""Publishing the computed ops to Kinesis, one page per Lambda invocation.

A page streams the ops result CSV from its byte cursor, turns each row into an op (a user
record), packs consecutive ops into aggregated Kinesis records (``snapcdc.aws.aggregation``, the
KPL format) of up to ``record_bytes``, sends them with PutRecords in batches within Kinesis'
limits, spread over the open shards, retrying only the records Kinesis refused
(``snapcdc.aws.kinesis_batches``), and returns before the invocation runs out of time. The state
machine calls it again with the returned cursor until ``done``.

Exactly once: each op is sent until Kinesis has taken it exactly once, across pages: a batch is
counted, and the cursor moves past it, only when all of it is in; when the invocation runs low
on time while Kinesis still refuses part of a batch, the page returns the cursor of the batch's
first row and ``sent``, the ordinals (rows after the cursor, from 0) of the batch's ops Kinesis
already took, as ``[first, end)`` ranges, and the next page skips those. ``records`` counts ops,
``kinesis_records`` the aggregated records Kinesis stored. The version fails (PublishFailed) only
when Kinesis accepts nothing for ``max_retries`` attempts in a row. (A Lambda invocation that
fails and is retried by the state machine sends its page again from the cursor it was given:
Kinesis then holds duplicates, which the consumer's version-conditioned writes make harmless.)

The op records and their partition keys are built by ``snapcdc.model.op_records``.

>>> ranges([0, 1, 2, 5, 7, 8]), ordinals([[0, 3], [5, 6], [7, 9]])
([[0, 3], [5, 6], [7, 9]], [0, 1, 2, 5, 7, 8])
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from snapcdc.aws.aggregation import Aggregate
from snapcdc.aws.kinesis_batches import Batch, Pending, open_shards, put_records
from snapcdc.aws.result_files import iter_records
from snapcdc.model.contract import TableSchema
from snapcdc.model.errors import ResultFormatError
from snapcdc.model.op_records import MAX_RECORD_BYTES, make_entry

# the record builders, re-exported: callers and tests know them as the publisher's
from snapcdc.model.op_records import partition_key as partition_key
from snapcdc.model.op_records import record_size as record_size
from snapcdc.model.state import PublishProgress, QueryStatus, Upload


def ranges(values: Iterable[int]) -> list[list[int]]:
    """Sorted ordinals as ``[first, end)`` ranges (how ``sent`` is kept: short in the state)."""
    out: list[list[int]] = []
    for v in sorted(set(values)):
        if out and out[-1][1] == v:
            out[-1][1] = v + 1
        else:
            out.append([v, v + 1])
    return out


def ordinals(sent: Iterable[Any]) -> list[int]:
    """The ordinals of ``sent`` ranges (a plain ordinal, the format before ranges, is one)."""
    out: list[int] = []
    for item in sent:
        if isinstance(item, int):
            out.append(item)
        else:
            out.extend(range(int(item[0]), int(item[1])))
    return out


def published_ops(progress: PublishProgress) -> int:
    """Ops Kinesis took so far: the counted batches and the ops ``sent`` of the current one."""
    return progress.records + len(ordinals(progress.sent))


def ops_status(queries: list[QueryStatus]) -> QueryStatus:
    """The status of the statement whose result holds the ops (kind ``ops``)."""
    found = [q for q in queries if q.kind == "ops"]
    if len(found) != 1:
        raise ResultFormatError(f"expected one ops statement among the queries, found {len(found)}")
    return found[0]


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
    record_bytes_target: int = 64 * 1024,
    sleep: Callable[[float], None] = time.sleep,
) -> PublishProgress:
    """Send ops from ``progress.cursor`` on; return the new progress (cursor, counts, done).

    ``record_bytes_target``: how full an aggregated record gets (at most Kinesis' 1 MiB).
    """
    if not 0 < record_bytes_target <= MAX_RECORD_BYTES:
        raise ValueError(
            f"the aggregated record size must be 1 to {MAX_RECORD_BYTES} bytes, "
            f"got {record_bytes_target}"
        )
    status = ops_status(queries)
    progress = replace(progress, sent=list(progress.sent))
    progress.calls += 1
    cursor = progress.cursor
    taken_before = set(ordinals(progress.sent))  # ordinals after the cursor Kinesis took
    shards = open_shards(kinesis, stream)
    aggregates = progress.kinesis_records  # turns the shards from where the last left
    sent = 0
    ordinal = 0  # of the next row, counted from the cursor
    batch = Batch(start=cursor, end=cursor)
    pending = Pending(first=0, end=cursor)

    def may_wait(seconds: float) -> bool:
        return time_left_ms() - seconds * 1000 >= reserve_ms

    def flush(next_first: int) -> bool:
        """Send the batch; False when part of it is still refused (the page must end)."""
        nonlocal batch, sent
        retries, refused = (0, [])
        if batch.entries:
            retries, refused = put_records(
                kinesis, stream, batch.entries, max_retries, sleep, may_wait, batch.shards
            )
        progress.retries += retries
        progress.kinesis_records += len(batch.entries) - len(refused)
        still_out = {o for i in refused for o in batch.ordinals[i]}
        sent += batch.ops - len(still_out)
        if refused:
            taken = {*batch.taken, *(o for os in batch.ordinals for o in os)} - still_out
            progress.cursor = batch.start
            progress.sent = ranges(o - batch.first for o in taken)
            return False
        progress.records += batch.ops + len(batch.taken)
        progress.inserts += batch.counts["INSERT"]
        progress.updates += batch.counts["UPDATE"]
        progress.deletes += batch.counts["DELETE"]
        progress.cursor = batch.end
        progress.sent = []
        batch = Batch(start=batch.end, first=next_first, end=batch.end)
        return True

    def close() -> bool:
        """Put the pending record into the batch (sending the batch first when it is full);
        False when the page must end."""
        nonlocal pending, aggregates
        size = pending.aggregate.size if pending.aggregate else 0
        if pending.aggregate and not batch.fits(size):
            if not flush(pending.first):
                return False
            if sent >= max_records or time_left_ms() < reserve_ms:
                return False  # not done: the next page starts at progress.cursor
        batch.add(pending)
        if pending.aggregate:
            aggregates += 1
        pending = Pending(first=ordinal, end=pending.end)
        return True

    expect_header = cursor == 0
    for fields, end in iter_records(s3, status.output_location or "", cursor):
        if expect_header:
            _check_header(fields, schema)
            expect_header = False
            batch.start = batch.end = pending.end = end
            continue
        entry, op = make_entry(fields, schema, upload)
        if ordinal in taken_before:  # Kinesis has it: count it with its batch, do not resend
            pending.taken.append(ordinal)
        else:
            if pending.aggregate is None:
                shard, hash_key = shards.hash_key(aggregates, entry["PartitionKey"])
                pending.aggregate, pending.shard = Aggregate(record_bytes_target, hash_key), shard
            if not pending.aggregate.add(entry["PartitionKey"], entry["Data"]):
                if not close():
                    return progress
                shard, hash_key = shards.hash_key(aggregates, entry["PartitionKey"])
                pending.aggregate, pending.shard = Aggregate(record_bytes_target, hash_key), shard
                pending.aggregate.add(entry["PartitionKey"], entry["Data"])
            pending.ordinals.append(ordinal)
        pending.counts[op] += 1
        pending.end = end
        ordinal += 1
        if sent + batch.ops + len(pending.ordinals) >= max_records:
            if close():
                flush(ordinal)
            return progress
    if close() and flush(ordinal):
        progress.done = True
    return progress


def _check_header(fields: list[str | None], schema: TableSchema) -> None:
    expected = ["op", *(c.lower() for c in schema.columns)]
    got = [(f or "").lower() for f in fields]
    if got != expected:
        raise ResultFormatError(f"ops result header {got} does not match {expected}")
