"""Kinesis in moto, made to refuse and to serve what Kinesis refuses and serves.

moto itself pushes every record put on a mapped stream to the function at once, one record per
invocation and through docker; :func:`installed` turns that off, the poller does it instead.

:func:`installed` also makes ``PutRecord`` and ``PutRecords`` refuse what Kinesis refuses
(https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html): a request of more
than 500 records, a record above the stream's 1 MiB maximum record size (data and partition key
together), a partition key longer than 256 characters: the whole request fails with
``ValidationException`` before any record is stored; a request above 5 MiB with
``InvalidArgumentException`` (moto's figure; the API reference now says 10 MiB). And each shard
takes 1 MiB and 1,000 records per second (a token bucket per shard, refilled in real time, holding
one second's allowance): a record beyond it is refused on its own, as
``ProvisionedThroughputExceededException`` in its entry of the PutRecords response and counted in
``FailedRecordCount`` (a PutRecord call fails with that error), while the request's other records
are stored.

The event source mapping poller that delivers the records is :mod:`.kinesis_poller`.
"""

from __future__ import annotations

import base64
import bisect
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock

from snapcdc_local.emulator.locking import serialized

# moto's shards keep records in an OrderedDict: every put and read walks all of it (a 100,000
# record version is quadratic) and a read that runs while another thread puts fails with
# "mutated during iteration". Kinesis serves reads and writes concurrently, in constant time;
# the shard methods below do the same thing as moto's, serialised and with an index.


def _keys(shard: Any) -> list[int]:
    """The shard's sequence numbers in order, kept beside moto's record dict."""
    keys = shard.__dict__.get("_snapcdc_keys")
    if keys is None or len(keys) != len(shard.records):
        keys = shard.__dict__["_snapcdc_keys"] = list(shard.records)
    return keys


def _put_record(shard: Any, partition_key: str, data: str, explicit_hash_key: str) -> str:
    from moto.kinesis.models import Record

    keys = _keys(shard)
    sequence_number = (keys[-1] if keys else 0) + 1
    shard.records[sequence_number] = Record(partition_key, data, sequence_number, explicit_hash_key)
    keys.append(sequence_number)
    return str(sequence_number)


def _get_records(
    shard: Any, last_sequence_id: str, limit: int | None
) -> tuple[list[Any], int, int]:
    keys = _keys(shard)
    start = bisect.bisect_right(keys, int(last_sequence_id))
    chosen = keys[start : start + limit] if limit else keys[start:]
    records = [shard.records[k] for k in chosen]
    if not records:
        return [], int(last_sequence_id), 0
    behind = _epoch(shard.records[keys[-1]].created_at) - _epoch(records[-1].created_at)
    return records, chosen[-1], int(behind * 1000)


def _epoch(created_at: Any) -> float:
    # moto 5.2.5 keeps a record's arrival as epoch seconds, 5.2.6 as a datetime
    return created_at.timestamp() if hasattr(created_at, "timestamp") else float(created_at)


def _min_sequence(shard: Any) -> int:
    keys = _keys(shard)
    return keys[0] if keys else 0


def _max_sequence(shard: Any) -> int:
    keys = _keys(shard)
    return keys[-1] if keys else 0


# Kinesis' write limits (https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html,
# https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html).
MAX_REQUEST_RECORDS = 500
MAX_RECORD_BYTES = 1024 * 1024  # the stream's default maximum record size
MAX_REQUEST_BYTES = 5 * 1024 * 1024
MAX_PARTITION_KEY = 256
SHARD_RECORDS_PER_SECOND = 1000
SHARD_BYTES_PER_SECOND = 1024 * 1024


class ShardThroughput:
    """A shard's write allowance: a token bucket of records and of bytes, refilled in real time.

    >>> clock = [0.0]
    >>> bucket = ShardThroughput(now=lambda: clock[0])
    >>> [bucket.take(100) for _ in range(1001)].count(False)  # 1,000 records a second
    1
    >>> clock[0] = 1.0  # a second later: 1 MiB, whatever the record count
    >>> bucket.take(700 * 1024), bucket.take(400 * 1024), bucket.take(300 * 1024)
    (True, False, True)
    >>> clock[0] = 1.5
    >>> bucket.take(400 * 1024)
    True
    """

    def __init__(self, now: Any = time.monotonic) -> None:
        self._now = now
        self._at = now()
        self.records = float(SHARD_RECORDS_PER_SECOND)
        self.bytes = float(SHARD_BYTES_PER_SECOND)
        self.refused = 0

    def take(self, size: int) -> bool:
        now = self._now()
        elapsed, self._at = now - self._at, now
        self.records = min(
            SHARD_RECORDS_PER_SECOND, self.records + elapsed * SHARD_RECORDS_PER_SECOND
        )
        self.bytes = min(SHARD_BYTES_PER_SECOND, self.bytes + elapsed * SHARD_BYTES_PER_SECOND)
        if self.records < 1 or self.bytes < size:
            self.refused += 1
            return False
        self.records -= 1
        self.bytes -= size
        return True


_THROUGHPUT_LOCK = threading.Lock()


class Arrivals:
    """A count of puts that stored records, for a reader to wait on instead of polling.

    >>> arrivals = Arrivals()
    >>> seen = arrivals.count
    >>> arrivals.wait_after(seen, 0.01)  # nothing arrived: back after the timeout
    False
    >>> arrivals.stored()
    >>> arrivals.wait_after(seen, 10.0)  # something arrived since ``seen``: back at once
    True
    """

    def __init__(self) -> None:
        self.count = 0
        self._changed = threading.Condition()

    def stored(self) -> None:
        with self._changed:
            self.count += 1
            self._changed.notify_all()

    def wake(self) -> None:
        """Wake the waiters without an arrival (a poller being stopped)."""
        with self._changed:
            self._changed.notify_all()

    def wait_after(self, seen: int, timeout: float) -> bool:
        """Wait until a put stored records after ``seen`` was read, a wake, or ``timeout``."""
        with self._changed:
            if self.count == seen:
                self._changed.wait(timeout)
            return self.count != seen


ARRIVALS = Arrivals()


def _throughput(shard: Any) -> ShardThroughput:
    bucket = shard.__dict__.get("_snapcdc_throughput")
    if bucket is None:
        bucket = shard.__dict__["_snapcdc_throughput"] = ShardThroughput()
    return bucket


def _record_size(partition_key: str, data: str | bytes) -> int:
    # moto 5.2.5 hands the backend a record's data as the request's base64 text, 5.2.6 as bytes
    raw = data if isinstance(data, bytes) else base64.b64decode(data or "")
    return len(raw) + len(partition_key.encode())


def _validate_request(records: list[dict[str, Any]], single: bool = False) -> None:
    """Refuse a PutRecords (or, ``single``, a PutRecord) request as Kinesis does, before
    anything is stored."""
    from moto.core.exceptions import JsonRESTError
    from moto.kinesis.exceptions import TooManyRecords, TotalRecordsSizeExceedsLimit

    if len(records) > MAX_REQUEST_RECORDS:
        raise TooManyRecords
    errors = []
    for position, record in enumerate(records, 1):
        where = "" if single else f"records.{position}.member."
        key = record.get("PartitionKey") or ""
        if len(key) > MAX_PARTITION_KEY:
            errors.append(
                f"Value '{key}' at '{where}partitionKey' failed to satisfy "
                f"constraint: Member must have length less than or equal to {MAX_PARTITION_KEY}"
            )
        if _record_size(key, record.get("Data", "")) > MAX_RECORD_BYTES:
            errors.append(
                f"Value at '{where}data' failed to satisfy constraint: "
                f"Member must have length less than or equal to {MAX_RECORD_BYTES}"
            )
    if errors:
        message = f"{len(errors)} validation error{'s' if len(errors) > 1 else ''} detected: "
        raise JsonRESTError("ValidationException", message + "; ".join(errors))
    if sum(_record_size(r.get("PartitionKey") or "", r.get("Data", "")) for r in records) > (
        MAX_REQUEST_BYTES
    ):
        raise TotalRecordsSizeExceedsLimit


def _rate_exceeded(stream: Any, shard: Any) -> str:
    # the message of the API reference's example response
    return (
        f"Rate exceeded for shard {shard.shard_id} in stream {stream.stream_name} "
        f"under account {stream.account_id}."
    )


def _backend_put_records(
    backend: Any, stream_arn: str, stream_name: str, records: list[dict[str, Any]]
) -> dict[str, Any]:
    stream = backend.describe_stream(stream_arn=stream_arn, stream_name=stream_name)
    _validate_request(records)
    response: dict[str, Any] = {"FailedRecordCount": 0, "Records": []}
    accepted_bytes = 0
    for record in records:
        key, hash_key, data = (
            record.get("PartitionKey"),
            record.get("ExplicitHashKey"),
            record.get("Data"),
        )
        shard = stream.get_shard_for_key(key, hash_key)
        size = _record_size(key, data)
        with _THROUGHPUT_LOCK:
            allowed = _throughput(shard).take(size)
        if not allowed:
            response["FailedRecordCount"] += 1
            response["Records"].append(
                {
                    "ErrorCode": "ProvisionedThroughputExceededException",
                    "ErrorMessage": _rate_exceeded(stream, shard),
                }
            )
            continue
        sequence_number, shard_id = stream.put_record(key, hash_key, data)
        response["Records"].append({"SequenceNumber": sequence_number, "ShardId": shard_id})
        accepted_bytes += size
    backend._send_stream_metrics(
        stream.stream_name,
        incoming_bytes=accepted_bytes,
        incoming_records=len(records) - response["FailedRecordCount"],
    )
    if response["FailedRecordCount"] < len(records):
        ARRIVALS.stored()
    return response


def _backend_put_record(
    backend: Any,
    stream_arn: str,
    stream_name: str,
    partition_key: str,
    explicit_hash_key: str,
    data: str,
) -> tuple[str, str]:
    from moto.core.exceptions import JsonRESTError

    stream = backend.describe_stream(stream_arn=stream_arn, stream_name=stream_name)
    record = {"PartitionKey": partition_key, "Data": data}
    _validate_request([record], single=True)
    shard = stream.get_shard_for_key(partition_key, explicit_hash_key)
    with _THROUGHPUT_LOCK:
        allowed = _throughput(shard).take(_record_size(partition_key, data))
    if not allowed:
        raise JsonRESTError("ProvisionedThroughputExceededException", _rate_exceeded(stream, shard))
    sequence_number, shard_id = stream.put_record(partition_key, explicit_hash_key, data)
    backend._send_stream_metrics(
        stream.stream_name, incoming_bytes=_record_size(partition_key, data), incoming_records=1
    )
    ARRIVALS.stored()
    return sequence_number, shard_id


@contextmanager
def installed() -> Iterator[None]:
    """While the block runs: no per-record push by moto; thread-safe, indexed moto shards;
    Kinesis' request limits and per-shard write throughput."""
    from moto.awslambda.models import LambdaBackend
    from moto.kinesis.models import KinesisBackend, Shard

    def send_kinesis_message(self: Any, **kwargs: Any) -> None:
        return None  # the poller delivers, in batches, with the mapping's settings

    replacements = {
        "get_records": _get_records,
        "put_record": _put_record,
        "get_min_sequence_number": _min_sequence,
        "get_max_sequence_number": _max_sequence,
        "get_sequence_number_at": Shard.get_sequence_number_at,
        "to_json": Shard.to_json,
    }
    with ExitStack() as stack:
        stack.enter_context(
            mock.patch.object(LambdaBackend, "send_kinesis_message", send_kinesis_message)
        )
        stack.enter_context(serialized(Shard, replacements))
        stack.enter_context(mock.patch.object(KinesisBackend, "put_records", _backend_put_records))
        stack.enter_context(mock.patch.object(KinesisBackend, "put_record", _backend_put_record))
        yield
