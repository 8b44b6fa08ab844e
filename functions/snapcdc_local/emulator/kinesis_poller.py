"""The Kinesis event source mapping poller that moto does not have (moto's own push is off,
see :mod:`.kinesis`).

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

An idle poller waits for the next put (:data:`.kinesis.ARRIVALS`), at most ``idle_sleep``
seconds: Lambda polls an idle shard once a second
(https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html); here records that arrive are
read at once and an idle shard costs no calls in between.

Not emulated: ``MaximumBatchingWindowInSeconds`` (batches go out at once),
``ParallelizationFactor`` (one batch per shard at a time), tumbling windows, filters.
With infinite retries (the default -1) a record that always fails would block its shard for a
week in AWS; here :meth:`drain` stops after ``stuck_after`` attempts and raises.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import boto3

from snapcdc_local.emulator import iam
from snapcdc_local.emulator.kinesis import ARRIVALS
from snapcdc_local.emulator.kinesis_events import (
    Outcome,
    arrival_seconds,
    batch_outcome,
    iso_millis,
    kinesis_event_record,
)
from snapcdc_local.emulator.kinesis_failures import failure_object_key, send_to_destination

log = logging.getLogger(__name__)

PAYLOAD_LIMIT = 6 * 1024 * 1024


class StuckShardError(RuntimeError):
    """A batch kept failing with unlimited retries: the shard cannot make progress."""


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

    def __init__(self, region: str, stuck_after: int = 20, idle_sleep: float = 1.0) -> None:
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

    def discover(self) -> list[str]:
        """Pick up the Kinesis mappings moto holds (call after a stack is deployed, updated or
        deleted): new ones are polled from their starting position, gone ones are forgotten.
        Returns the UUIDs of the new ones."""
        found: dict[str, dict[str, Any]] = {}
        for page in self._lambda.get_paginator("list_event_source_mappings").paginate():
            for esm in page["EventSourceMappings"]:
                if ":kinesis:" not in esm["EventSourceArn"]:
                    continue
                if esm.get("State", "Enabled") not in ("Enabled", "Creating", "Enabling"):
                    continue
                found[esm["UUID"]] = esm
        added = []
        with self._pass_lock:
            for uuid in [u for u in self.mappings if u not in found]:
                del self.mappings[uuid]
            for uuid, esm in found.items():
                if uuid in self.mappings:
                    continue
                role = self._lambda.get_function_configuration(FunctionName=esm["FunctionArn"])[
                    "Role"
                ]
                mapping = Mapping(config=esm, role_arn=role)
                self._init_shards(mapping)
                self.mappings[uuid] = mapping
                added.append(uuid)
        return added

    def forget(self, uuid: str) -> None:
        """Stop polling one mapping (Lambda refused to create it)."""
        with self._pass_lock:
            self.mappings.pop(uuid, None)

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
        ARRIVALS.wake()
        if self._thread:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            seen = ARRIVALS.count  # read before the pass: a put during it is not missed
            try:
                handled = self.poll_once()
            except Exception as exc:  # keep the failure for drain(); a dead poller must not hang
                log.exception("Kinesis poller stopped")
                self.error = exc
                return
            if not handled and not self._stop.is_set():
                ARRIVALS.wait_after(seen, self.idle_sleep)

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
                r
                for r in batch
                if now - arrival_seconds(r["ApproximateArrivalTimestamp"]) <= max_age
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
            "timestamp": iso_millis(time.time()),
            "KinesisBatchInfo": {
                "shardId": shard.shard_id,
                "startSequenceNumber": batch[0]["SequenceNumber"],
                "endSequenceNumber": batch[-1]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": iso_millis(
                    arrival_seconds(batch[0]["ApproximateArrivalTimestamp"])
                ),
                "approximateArrivalOfLastRecord": iso_millis(
                    arrival_seconds(batch[-1]["ApproximateArrivalTimestamp"])
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
