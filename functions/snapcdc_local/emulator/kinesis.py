"""The Kinesis event source mapping poller that moto does not have.

AWS Lambda polls each shard of a mapped stream and invokes the function with batches of
records, in order, shard by shard. :class:`KinesisPoller` does the same for every enabled
Kinesis mapping moto holds (the ones the stack declares), honouring its settings:

- ``BatchSize`` (and Lambda's 6 MB payload limit), ``StartingPosition`` (``TRIM_HORIZON``,
  ``LATEST``: the shard's end when the poller starts, ``AT_TIMESTAMP``);
- function errors: the batch is retried; with ``BisectBatchOnFunctionError`` it is split in
  two first (splitting does not use up retries; a batch whose first record is reported
  failed is split the same way, which isolates a poison record); after
  ``MaximumRetryAttempts`` retries, or once a record is older than
  ``MaximumRecordAgeInSeconds``, the batch is discarded and an invocation record goes to
  ``DestinationConfig.OnFailure`` as AWS sends it: metadata only to SQS or SNS; to an S3
  bucket the same record plus ``payload``, the batch's event as a JSON string, in an object
  named ``aws/lambda/<ESM-UUID>/<shardID>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<Random UUID>``
  (https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html). A
  delivery that fails is counted in :attr:`KinesisPoller.delivery_failures` and the records are
  dropped, as Lambda does (its ``DestinationDeliveryFailures`` metric);
- ``FunctionResponseTypes: [ReportBatchItemFailures]``: the lowest reported sequence number
  is the checkpoint; records from there on are retried; an empty or unknown identifier fails
  the whole batch.

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

Not emulated: ``MaximumBatchingWindowInSeconds`` (batches go out at once),
``ParallelizationFactor`` (one batch per shard at a time), tumbling windows, filters.
With infinite retries (the default -1) a record that always fails would block its shard for a
week in AWS; here :meth:`drain` stops after ``stuck_after`` attempts and raises.

>>> record = {"Data": b"hi", "PartitionKey": "k", "SequenceNumber": "7",
...           "ApproximateArrivalTimestamp": 1.5}
>>> stream = "arn:aws:kinesis:us-east-1:1:stream/s"
>>> kinesis_event_record(record, "shardId-000000000000", stream, "arn:role", "us-east-1")["eventID"]
'shardId-000000000000:7'
"""

from __future__ import annotations

import base64
import bisect
import datetime as dt
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import boto3

from snapcdc_local.emulator import iam
from snapcdc_local.emulator.locking import serialized

log = logging.getLogger(__name__)

PAYLOAD_LIMIT = 6 * 1024 * 1024


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
    behind = shard.records[keys[-1]].created_at - records[-1].created_at
    return records, chosen[-1], int(behind * 1000)


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


def _throughput(shard: Any) -> ShardThroughput:
    bucket = shard.__dict__.get("_snapcdc_throughput")
    if bucket is None:
        bucket = shard.__dict__["_snapcdc_throughput"] = ShardThroughput()
    return bucket


def _record_size(partition_key: str, data: str) -> int:
    return len(base64.b64decode(data or "")) + len(partition_key.encode())


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


class StuckShardError(RuntimeError):
    """A batch kept failing with unlimited retries: the shard cannot make progress."""


def _timestamp(value: Any) -> float:
    return value.timestamp() if isinstance(value, dt.datetime) else float(value)


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def kinesis_event_record(
    record: dict[str, Any], shard_id: str, stream_arn: str, role_arn: str, region: str
) -> dict[str, Any]:
    """One entry of ``Records`` in the event Lambda sends for a Kinesis batch."""
    sequence = record["SequenceNumber"]
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": record["PartitionKey"],
            "sequenceNumber": sequence,
            "data": base64.b64encode(record["Data"]).decode(),
            "approximateArrivalTimestamp": _timestamp(record["ApproximateArrivalTimestamp"]),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{sequence}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": role_arn,
        "awsRegion": region,
        "eventSourceARN": stream_arn,
    }


@dataclass
class Outcome:
    """What one invocation said about its batch: all done, failed from index ``retry_from``."""

    function_error: str | None
    retry_from: int | None  # None: whole batch succeeded
    request_id: str


def batch_outcome(
    response: dict[str, Any], payload: Any, sequences: list[str], report_failures: bool
) -> Outcome:
    """Interpret a function's response to a batch the way the event source mapping does.

    >>> failed_2 = {"batchItemFailures": [{"itemIdentifier": "2"}]}
    >>> batch_outcome({}, failed_2, ["1", "2", "3"], True).retry_from
    1
    >>> batch_outcome({}, {"batchItemFailures": [{"itemIdentifier": ""}]}, ["1"], True).retry_from
    0
    >>> batch_outcome({}, {"batchItemFailures": []}, ["1"], True).retry_from is None
    True
    """
    request_id = response.get("ResponseMetadata", {}).get("RequestId", "")
    if response.get("FunctionError"):
        return Outcome(response["FunctionError"], 0, request_id)
    if not report_failures or not isinstance(payload, dict):
        return Outcome(None, None, request_id)
    failures = payload.get("batchItemFailures")
    if not failures:
        return Outcome(None, None, request_id)
    positions = {s: i for i, s in enumerate(sequences)}
    indexes = []
    for failure in failures if isinstance(failures, list) else [failures]:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in positions:
            return Outcome(None, 0, request_id)  # malformed report: the whole batch failed
        indexes.append(positions[identifier])
    return Outcome(None, min(indexes), request_id)


@dataclass
class ShardState:
    shard_id: str
    checkpoint: str | None = None  # last sequence number done with (processed or discarded)
    start: dict[str, Any] = field(
        default_factory=dict
    )  # iterator arguments before the first checkpoint


@dataclass
class Mapping:
    """One Kinesis event source mapping and where it is in each shard."""

    config: dict[str, Any]
    role_arn: str
    shards: dict[str, ShardState] = field(default_factory=dict)

    @property
    def stream_arn(self) -> str:
        return self.config["EventSourceArn"]

    @property
    def function_arn(self) -> str:
        return self.config["FunctionArn"]

    def setting(self, name: str, default: Any) -> Any:
        value = self.config.get(name)
        return default if value is None else value


@dataclass
class Discarded:
    """A batch given up on and reported to the on-failure destination."""

    shard_id: str
    sequences: list[str]
    condition: str
    invocation_record: dict[str, Any]


class KinesisPoller:
    """Polls every enabled Kinesis event source mapping in moto and invokes its function."""

    def __init__(self, region: str, stuck_after: int = 20, idle_sleep: float = 0.02) -> None:
        self.region = region
        self.stuck_after = stuck_after
        self.idle_sleep = idle_sleep
        self.mappings: dict[str, Mapping] = {}
        self.discarded: list[Discarded] = []
        self.delivery_failures: list[str] = []  # why an on-failure delivery failed, one per batch
        self.invocations = 0
        self._kinesis = boto3.client("kinesis", region_name=region)
        self._lambda = boto3.client("lambda", region_name=region)
        self._pass_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    # -- mappings ------------------------------------------------------------------------

    def discover(self) -> None:
        """Pick up the Kinesis mappings moto holds (call after the stack is deployed)."""
        for page in self._lambda.get_paginator("list_event_source_mappings").paginate():
            for esm in page["EventSourceMappings"]:
                if ":kinesis:" not in esm["EventSourceArn"] or esm["UUID"] in self.mappings:
                    continue
                if esm.get("State", "Enabled") not in ("Enabled", "Creating", "Enabling"):
                    continue
                role = self._lambda.get_function_configuration(FunctionName=esm["FunctionArn"])[
                    "Role"
                ]
                mapping = Mapping(config=esm, role_arn=role)
                self._init_shards(mapping)
                self.mappings[esm["UUID"]] = mapping

    def _init_shards(self, mapping: Mapping) -> None:
        position = mapping.setting("StartingPosition", "TRIM_HORIZON")
        for shard in self._list_shards(mapping.stream_arn):
            state = ShardState(shard["ShardId"])
            if position == "LATEST":
                # "LATEST" means records that arrive after the mapping starts polling.
                last = self._last_sequence(mapping.stream_arn, shard["ShardId"])
                state.checkpoint = last
                state.start = {"ShardIteratorType": "TRIM_HORIZON"}
            elif position == "AT_TIMESTAMP":
                state.start = {
                    "ShardIteratorType": "AT_TIMESTAMP",
                    "Timestamp": mapping.config.get("StartingPositionTimestamp"),
                }
            else:
                state.start = {"ShardIteratorType": "TRIM_HORIZON"}
            mapping.shards[shard["ShardId"]] = state

    def _list_shards(self, stream_arn: str) -> list[dict[str, Any]]:
        return self._kinesis.list_shards(StreamARN=stream_arn)["Shards"]

    def _last_sequence(self, stream_arn: str, shard_id: str) -> str | None:
        last = None
        for record in self._read_all(stream_arn, shard_id, {"ShardIteratorType": "TRIM_HORIZON"}):
            last = record["SequenceNumber"]
        return last

    def _read_all(
        self, stream_arn: str, shard_id: str, start: dict[str, Any]
    ) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        iterator = self._kinesis.get_shard_iterator(
            StreamARN=stream_arn, ShardId=shard_id, **start
        )["ShardIterator"]
        while iterator:
            response = self._kinesis.get_records(
                ShardIterator=iterator, Limit=10000, StreamARN=stream_arn
            )
            records.extend(response["Records"])
            if not response["Records"] or response.get("MillisBehindLatest", 0) == 0:
                break
            iterator = response.get("NextShardIterator")
        return records

    # -- polling -------------------------------------------------------------------------

    def poll_once(self) -> int:
        """One pass over every shard of every mapping; return how many records were handled."""
        with self._pass_lock:
            handled = 0
            for mapping in list(self.mappings.values()):
                for shard in mapping.shards.values():
                    with iam.as_event_source_mapping(mapping.role_arn, mapping.function_arn):
                        handled += self._poll_shard(mapping, shard)
            return handled

    def drain(self, timeout: float = 300.0) -> None:
        """Poll until every shard of every mapping is caught up."""
        deadline = time.monotonic() + timeout
        while self.poll_once():
            if time.monotonic() > deadline:
                raise TimeoutError(f"Kinesis consumers not caught up after {timeout:.0f}s")
        if self.error:
            raise self.error

    def start(self) -> None:
        """Poll in a background thread, as the Lambda service does, until :meth:`stop`."""
        if self._thread:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="kinesis-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.poll_once():
                    self._stop.wait(self.idle_sleep)
            except Exception as exc:  # keep the failure for drain(); a dead poller must not hang
                log.exception("Kinesis poller stopped")
                self.error = exc
                return

    def _fetch(self, mapping: Mapping, shard: ShardState, limit: int) -> list[dict[str, Any]]:
        if shard.checkpoint is not None:
            start = {
                "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                "StartingSequenceNumber": shard.checkpoint,
            }
        else:
            start = shard.start
        iterator = self._kinesis.get_shard_iterator(
            StreamARN=mapping.stream_arn, ShardId=shard.shard_id, **start
        )["ShardIterator"]
        response = self._kinesis.get_records(
            ShardIterator=iterator, Limit=limit, StreamARN=mapping.stream_arn
        )
        records, size = [], 0
        for record in response["Records"]:
            size += len(record["Data"]) * 4 // 3 + 200
            if records and size > PAYLOAD_LIMIT:
                break
            records.append(record)
        return records

    def _poll_shard(self, mapping: Mapping, shard: ShardState) -> int:
        batch_size = int(mapping.setting("BatchSize", 100))
        records = self._fetch(mapping, shard, batch_size)
        if not records:
            return 0
        work: deque[tuple[list[dict[str, Any]], int]] = deque([(records, 0)])
        while work:
            batch, retries = work.popleft()
            self._process(mapping, shard, batch, retries, work)
        return len(records)

    def _process(
        self,
        mapping: Mapping,
        shard: ShardState,
        batch: list[dict[str, Any]],
        retries: int,
        work: deque[tuple[list[dict[str, Any]], int]],
    ) -> None:
        max_age = int(mapping.setting("MaximumRecordAgeInSeconds", -1))
        if max_age != -1:
            now = time.time()
            fresh = [
                r for r in batch if now - _timestamp(r["ApproximateArrivalTimestamp"]) <= max_age
            ]
            expired = batch[: len(batch) - len(fresh)] if fresh else batch
            if expired:
                self._discard(mapping, shard, expired, "RecordAgeExceeded", retries, None, "")
                if not fresh:
                    return
                batch = fresh
        outcome = self._invoke(mapping, shard, batch)
        if outcome.retry_from is None:
            shard.checkpoint = batch[-1]["SequenceNumber"]
            return
        if outcome.retry_from > 0:
            # Partial success: checkpoint before the first failed record, retry from it.
            shard.checkpoint = batch[outcome.retry_from - 1]["SequenceNumber"]
            work.appendleft((batch[outcome.retry_from :], retries + 1))
            return
        # A failed batch (an error, or its first record reported failed) is split in two
        # when the mapping bisects; the halves keep the retry count.
        if mapping.setting("BisectBatchOnFunctionError", False) and len(batch) > 1:
            middle = len(batch) // 2
            work.appendleft((batch[middle:], retries))
            work.appendleft((batch[:middle], retries))
            return
        max_retries = int(mapping.setting("MaximumRetryAttempts", -1))
        if max_retries != -1 and retries >= max_retries:
            self._discard(
                mapping,
                shard,
                batch,
                "RetryAttemptsExhausted",
                retries + 1,
                outcome.function_error,
                outcome.request_id,
            )
            return
        if max_retries == -1 and retries + 1 >= self.stuck_after:
            first = batch[0]["SequenceNumber"]
            raise StuckShardError(
                f"{mapping.function_arn} failed {retries + 1} times on {shard.shard_id} "
                f"record {first} and MaximumRetryAttempts is unlimited: the shard is stuck"
            )
        work.appendleft((batch, retries + 1))

    def _event(
        self, mapping: Mapping, shard: ShardState, batch: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """The event Lambda invokes the function with for ``batch``."""
        return {
            "Records": [
                kinesis_event_record(
                    r, shard.shard_id, mapping.stream_arn, mapping.role_arn, self.region
                )
                for r in batch
            ]
        }

    def _invoke(self, mapping: Mapping, shard: ShardState, batch: list[dict[str, Any]]) -> Outcome:
        event = self._event(mapping, shard, batch)
        response = self._lambda.invoke(
            FunctionName=mapping.function_arn, Payload=json.dumps(event).encode()
        )
        self.invocations += 1
        raw = response["Payload"].read()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = None
        report = "ReportBatchItemFailures" in (mapping.setting("FunctionResponseTypes", []) or [])
        return batch_outcome(response, payload, [r["SequenceNumber"] for r in batch], report)

    def _discard(
        self,
        mapping: Mapping,
        shard: ShardState,
        batch: list[dict[str, Any]],
        condition: str,
        invoke_count: int,
        function_error: str | None,
        request_id: str,
    ) -> None:
        """Skip ``batch`` and send the invocation record to the on-failure destination."""
        shard.checkpoint = batch[-1]["SequenceNumber"]
        response_context: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
        if function_error:
            response_context["functionError"] = function_error
        record = {
            "requestContext": {
                "requestId": request_id,
                "functionArn": mapping.function_arn,
                "condition": condition,
                "approximateInvokeCount": invoke_count,
            },
            "responseContext": response_context,
            "version": "1.0",
            "timestamp": _iso(time.time()),
            "KinesisBatchInfo": {
                "shardId": shard.shard_id,
                "startSequenceNumber": batch[0]["SequenceNumber"],
                "endSequenceNumber": batch[-1]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(
                    _timestamp(batch[0]["ApproximateArrivalTimestamp"])
                ),
                "approximateArrivalOfLastRecord": _iso(
                    _timestamp(batch[-1]["ApproximateArrivalTimestamp"])
                ),
                "batchSize": len(batch),
                "streamArn": mapping.stream_arn,
            },
        }
        self.discarded.append(
            Discarded(shard.shard_id, [r["SequenceNumber"] for r in batch], condition, record)
        )
        destination = ((mapping.config.get("DestinationConfig") or {}).get("OnFailure") or {}).get(
            "Destination"
        )
        log.warning("discarding %d record(s) of %s (%s)", len(batch), shard.shard_id, condition)
        if not destination:
            return
        try:
            send_to_destination(
                destination,
                record,
                self.region,
                payload=self._event(mapping, shard, batch),
                object_key=failure_object_key(mapping.config["UUID"], shard.shard_id, time.time()),
            )
        except Exception as exc:  # Lambda drops the records and carries on with the shard
            log.error("on-failure delivery to %s failed: %s", destination, exc)
            self.delivery_failures.append(f"{destination}: {exc}")


def failure_object_key(mapping_uuid: str, shard_id: str, now: float) -> str:
    """The S3 key AWS gives an on-failure invocation record of a stream mapping.

    >>> failure_object_key("u-1", "shardId-000000000000", 0.0)[:67]
    'aws/lambda/u-1/shardId-000000000000/1970/01/01/1970-01-01T00.00.00-'
    """
    at = dt.datetime.fromtimestamp(now, dt.UTC)
    stamp = at.strftime("%Y/%m/%d/%Y-%m-%dT%H.%M.%S")
    return f"aws/lambda/{mapping_uuid}/{shard_id}/{stamp}-{uuid.uuid4()}"


def send_to_destination(
    arn: str,
    record: dict[str, Any],
    region: str,
    *,
    payload: dict[str, Any] | None = None,
    object_key: str | None = None,
) -> None:
    """Deliver an on-failure invocation record to an SQS queue, SNS topic or S3 bucket ARN.

    Only an S3 object carries ``payload`` (the invocation's event, as an escaped JSON string).
    """
    service = arn.split(":")[2]
    body = json.dumps(record)
    if service == "s3":
        if payload is None or object_key is None:
            raise ValueError("an S3 on-failure destination needs the payload and an object key")
        document = {**record, "payload": json.dumps(payload)}
        boto3.client("s3", region_name=region).put_object(
            Bucket=arn.split(":")[-1], Key=object_key, Body=json.dumps(document).encode()
        )
    elif service == "sqs":
        _, _, _, queue_region, account, name = arn.split(":")
        sqs = boto3.client("sqs", region_name=queue_region)
        with iam.acting(None):  # Lambda knows its destination's URL: no call of the role
            url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=body)
    elif service == "sns":
        boto3.client("sns", region_name=arn.split(":")[3]).publish(TopicArn=arn, Message=body)
    else:
        raise ValueError(
            f"unsupported on-failure destination {arn!r}: "
            "expected an SQS queue, SNS topic or S3 bucket"
        )
