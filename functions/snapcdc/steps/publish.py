"""Publishing the computed ops to Kinesis, one page per Lambda invocation.

A page streams the ops result CSV from its byte cursor, turns each row into an op (a user
record), packs consecutive ops into aggregated Kinesis records (``snapcdc.aws.aggregation``, the
KPL format) of up to ``record_bytes``, sends them with PutRecords in batches within Kinesis'
limits (500 records, 5 MiB a call), retries only the records Kinesis refused, and returns
before the invocation runs out of time. The state machine calls it again with the returned
cursor until ``done``.

Spread: each aggregated record gets an explicit hash key inside one open shard, the shards taken
in turn (ListShards once a page), so a table's ops spread evenly over every shard whatever the
keys; an op keeps its row's partition key inside the record. Two versions' ops for one row may
therefore land on different shards and be applied in either order: the consumer's
version-conditioned writes make the newer one win (``snapcdc.steps.consumer``).

Throughput: a shard takes 1 MiB and 1,000 records a second; a record beyond that comes back
as ``ProvisionedThroughputExceededException`` in its entry of the response while the others
are stored (https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html). With
records of many ops, bytes are the limit, never the record count. The refused records are sent
again after the time their shard needs to take them at 1 MiB/s (at most 1 s: a shard holds at
most one second of allowance), so every shard is kept busy without hammering it; while Kinesis
takes nothing the wait grows exponentially instead.

Exactly once: each op is sent until Kinesis has taken it exactly once, across pages: a batch is
counted, and the cursor moves past it, only when all of it is in; when the invocation runs low
on time while Kinesis still refuses part of a batch, the page returns the cursor of the batch's
first row and ``sent``, the ordinals (rows after the cursor, from 0) of the batch's ops Kinesis
already took, as ``[first, end)`` ranges, and the next page skips those. ``records`` counts ops,
``kinesis_records`` the aggregated records Kinesis stored. The version fails (PublishFailed) only
when Kinesis accepts nothing for ``max_retries`` attempts in a row. (A Lambda invocation that
fails and is retried by the state machine sends its page again from the cursor it was given:
Kinesis then holds duplicates, which the consumer's version-conditioned writes make harmless.)

Op format (JSON, one per row)::

    {"op": "UPDATE", "tenant": "tenant", "table": "test_table", "table_id": "tenant/test_table",
     "version": "20201230_V0002", "key": {"PK": "PK2"}, "row": {"PK": "PK2", "COL_1": "...", ...},
     "source": "tenant/test_table/20201230_V0002/export2.csv.gz", "sequencer": "0062E99A88DC407460"}

``row`` holds every column of the new version by its original name (Athena lowercases the
result header, so names come from the schema, by position); NULL is ``null``. A DELETE carries
the old row's values. An op's partition key: ``tenant/table|rowkey`` (a SHA-256 when longer
than 256).

>>> partition_key("tenant/t", "PK1")
'tenant/t|PK1'
>>> len(partition_key("tenant/t", "x" * 300))
64
>>> ranges([0, 1, 2, 5, 7, 8]), ordinals([[0, 3], [5, 6], [7, 9]])
([[0, 3], [5, 6], [7, 9]], [0, 1, 2, 5, 7, 8])
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from snapcdc.aws.aggregation import Aggregate, record_bytes, single_record_bytes
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
# A shard's write allowance (https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html)
SHARD_BYTES_PER_SECOND = 1024 * 1024
SHARD_RECORDS_PER_SECOND = 1000
HASH_KEY_SPACE = 2**128


def partition_key(table_id: str, key: str) -> str:
    text = f"{table_id}|{key}"
    if len(text) <= MAX_PARTITION_KEY:
        return text
    return hashlib.sha256(text.encode()).hexdigest()


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


@dataclass(frozen=True)
class Shards:
    """The stream's open shards' hash key ranges, to give each record an explicit hash key."""

    ranges: tuple[tuple[str, int, int], ...]  # shard id, starting and ending hash key

    def hash_key(self, n: int, seed: str) -> tuple[str, str]:
        """The shard and hash key of the ``n``-th record: shards in turn, the point inside the
        shard's range from the seed (so a later split of the shard spreads them too)."""
        shard, low, high = self.ranges[n % len(self.ranges)]
        point = int.from_bytes(hashlib.md5(seed.encode()).digest()) % (high - low + 1)  # noqa: S324
        return shard, str(low + point)


def open_shards(kinesis: Any, stream: str) -> Shards:
    """ListShards, the open ones (a closed shard has an ending sequence number)."""
    found, token = [], None
    while True:
        response = (
            kinesis.list_shards(NextToken=token)
            if token
            else kinesis.list_shards(StreamName=stream)
        )
        for shard in response["Shards"]:
            if "EndingSequenceNumber" in shard.get("SequenceNumberRange", {}):
                continue
            keys = shard["HashKeyRange"]
            found.append(
                (shard["ShardId"], int(keys["StartingHashKey"]), int(keys["EndingHashKey"]))
            )
        token = response.get("NextToken")
        if not token:
            break
    if not found:
        raise PublishFailed(f"stream {stream} has no open shard")
    return Shards(tuple(sorted(found, key=lambda s: s[1])))


@dataclass
class Pending:
    """Consecutive rows on their way into one aggregated record (ops and rows already taken)."""

    first: int  # the ordinal of the first row
    aggregate: Aggregate | None = None
    shard: str = ""
    ordinals: list[int] = field(default_factory=list)  # of the ops in the aggregate
    taken: list[int] = field(default_factory=list)  # ordinals Kinesis took on an earlier page
    counts: Counter = field(default_factory=Counter)
    end: int = 0  # cursor just past the last row


@dataclass
class Batch:
    start: int = 0  # cursor of the batch's first row
    first: int = 0  # the ordinal of that row in the page
    entries: list[dict[str, Any]] = field(default_factory=list)
    shards: list[str] = field(default_factory=list)  # the shard each entry is meant for
    ordinals: list[list[int]] = field(default_factory=list)  # the page ordinals of each entry
    taken: list[int] = field(default_factory=list)  # ordinals Kinesis took on an earlier page
    size: int = 0
    ops: int = 0  # ops in the entries
    end: int = 0  # cursor just past the batch's last row
    counts: Counter = field(default_factory=Counter)

    def fits(self, entry_size: int) -> bool:
        return len(self.entries) < MAX_BATCH_RECORDS and self.size + entry_size <= MAX_BATCH_BYTES

    def add(self, pending: Pending) -> None:
        if pending.aggregate is not None:
            entry = pending.aggregate.entry()
            self.entries.append(entry)
            self.shards.append(pending.shard)
            self.ordinals.append(pending.ordinals)
            self.size += record_bytes(entry)
            self.ops += len(pending.ordinals)
        self.taken += pending.taken
        self.counts.update(pending.counts)
        self.end = pending.end


def make_entry(
    fields: list[str | None], schema: TableSchema, upload: Upload
) -> tuple[dict[str, Any], str]:
    """The user record (``Data``, ``PartitionKey``) of one result row, and its op. Raises
    PublishFailed when the op cannot fit a Kinesis record even alone."""
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
    entry = {"Data": data, "PartitionKey": partition_key(upload.table_id, row_key(key_values))}
    size = record_size(entry)
    if size > MAX_RECORD_BYTES:
        raise PublishFailed(
            f"the {op} of key {key_values} is {size} bytes, above Kinesis' 1 MiB record limit"
        )
    return entry, op


def record_size(entry: dict[str, Any]) -> int:
    """The size of the Kinesis record that carries this user record alone (the largest share
    of a record one op needs: the bound the export check computes for every row)."""
    return single_record_bytes(len(entry["Data"]), len(entry["PartitionKey"].encode()))


def retry_delay(idle: int, refused: list[int], sizes: list[int], shards: list[str]) -> float:
    """How long to wait before sending the refused records again.

    While Kinesis takes some, the time the busiest shard needs to take its refused records
    (at most 1 s, all a shard holds); while it takes none, exponential backoff (someone else
    may be writing). Jittered so that concurrent publishers spread out.

    >>> retry_delay(0, [0, 1], [600_000, 600_000], ["s0", "s0"]) >= 0.5
    True
    >>> retry_delay(3, [0], [100], ["s0"]) >= 0.4
    True
    """
    per_shard: dict[str, list[int]] = {}
    for i in refused:
        per_shard.setdefault(shards[i], []).append(sizes[i])
    needed = max(
        max(sum(s) / SHARD_BYTES_PER_SECOND, len(s) / SHARD_RECORDS_PER_SECOND)
        for s in per_shard.values()
    )
    paced = min(max(needed, 0.05), 1.0)
    backoff = min(0.1 * 2**idle, 5.0) if idle else 0.0
    return max(paced, backoff) * (0.75 + random.random() / 4)  # noqa: S311


def put_records(
    kinesis: Any,
    stream: str,
    entries: list[dict[str, Any]],
    max_retries: int,
    sleep: Callable[[float], None] = time.sleep,
    may_wait: Callable[[float], bool] = lambda seconds: True,
    shards: list[str] | None = None,
) -> tuple[int, list[int]]:
    """PutRecords, then again with only the refused records, paced (``retry_delay``).

    Returns the number of retries and the indexes of the entries still refused when
    ``may_wait(delay)`` says there is no time for the next wait (none when all went in). Raises
    PublishFailed after ``max_retries`` attempts in a row in which Kinesis took nothing.
    """
    shards = shards or [""] * len(entries)
    sizes = [record_bytes(e) for e in entries]
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
        delay = retry_delay(idle, refused, sizes, shards)
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
