"""Sending aggregated records to Kinesis: batches within PutRecords' limits (500 records, 5 MiB
a call), spread over the stream's open shards, refused records sent again, paced.

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
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from snapcdc.aws.aggregation import Aggregate, record_bytes
from snapcdc.model.errors import PublishFailed

MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 5 * 1024 * 1024
# A shard's write allowance (https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html)
SHARD_BYTES_PER_SECOND = 1024 * 1024
SHARD_RECORDS_PER_SECOND = 1000


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
