"""Re-applying the batches the consumer gave up on, from its S3 on-failure destination.

When the consumer's event source mapping exhausts its retries on a batch, or the batch's records
pass ``MaximumRecordAgeInSeconds``, Lambda writes one object to the failed-batches bucket under
``aws/lambda/<ESM-UUID>/<shardID>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<Random UUID>``: the invocation
record (``requestContext``, ``responseContext``, ``KinesisBatchInfo``) plus ``payload``, "the
original invocation record as an escaped JSON string", i.e. the event the function was invoked
with, every Kinesis record in it
(https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html).

:func:`redrive` reads those objects and applies their ops with the consumer's own code
(``steps.consumer.apply_records``: plain and aggregated records alike). Every
write is conditional on the row's stored version, so redriving is idempotent: an op a newer
version has overtaken is refused as ``stale`` and changes nothing, and running it twice applies
nothing the second time. An object whose every record was applied or stale is deleted (the
bucket is versioned: the deleted object stays as a noncurrent version until the lifecycle rule
expires it); an object with a record that still fails (a poison record, a write still refused)
is kept, and the failure reported with the record's sequence number.

>>> document = {"KinesisBatchInfo": {"shardId": "s"}, "payload": '{"Records": []}'}
>>> batch_records(document, "k")
[]
>>> batch_records({"KinesisBatchInfo": {}}, "aws/lambda/u/s/x")
Traceback (most recent call last):
...
snapcdc_local.stack.redrive.RedriveError: aws/lambda/u/s/x is not a stream failure record ...
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from snapcdc.steps.consumer import apply_records, count_outcomes

FAILURE_PREFIX = "aws/lambda/"


class RedriveError(ValueError):
    """A failed-batch object is not what Lambda writes (nothing of it was applied)."""


@dataclass
class Redriven:
    """What became of one failed-batch object."""

    key: str
    condition: str = ""  # RetryAttemptsExhausted / RecordAgeExceeded, from requestContext
    records: int = 0
    applied: int = 0
    stale: int = 0
    failed: list[str] = field(default_factory=list)  # "<sequence number>: <reason>"
    removed: bool = False

    def report(self) -> dict[str, Any]:
        return asdict(self)


def failure_keys(s3: Any, bucket: str, prefix: str = FAILURE_PREFIX) -> Iterator[str]:
    """Keys of the failed-batch objects in ``bucket``, oldest first (the keys sort by time
    within a mapping and shard)."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield item["Key"]


def batch_records(document: Any, key: str) -> list[dict[str, Any]]:
    """The Kinesis event records of one failed-batch object (its ``payload``)."""
    try:
        if not isinstance(document.get("KinesisBatchInfo"), dict):
            raise ValueError("no KinesisBatchInfo")
        payload = json.loads(document["payload"])
        records = payload["Records"]
        if not isinstance(records, list):
            raise ValueError("Records is not a list")
        return records
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise RedriveError(
            f"{key} is not a stream failure record with a payload: {type(exc).__name__}: {exc}"
        ) from None


def redrive_object(
    s3: Any,
    bucket: str,
    key: str,
    table_name: str,
    *,
    workers: int = 16,
    remove: bool = True,
    registry_table: str | None = None,
) -> Redriven:
    """Apply the ops of one failed-batch object; delete it if none failed (and ``remove``).

    With ``registry_table``, the outcomes are counted on each op's upload record, as the
    consumer counts them (``applied`` / ``stale``).
    """
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise RedriveError(f"{key} is not JSON: {exc}") from None
    records = batch_records(document, key)
    result = Redriven(
        key=key,
        condition=str((document.get("requestContext") or {}).get("condition", "")),
        records=len(records),
    )
    by_sequence = {
        str((record.get("kinesis") or {}).get("sequenceNumber") or f"#{index}")
        if isinstance(record, dict)
        else f"#{index}": record
        for index, record in enumerate(records)
    }
    ops, outcomes, per_record = apply_records(table_name, by_sequence, workers)
    if registry_table:
        count_outcomes(ops, outcomes, registry_table)
    for sequence, outcome in per_record.items():
        if isinstance(outcome, BaseException):
            if f"{sequence}:0" in ops:  # an op of the record failed (the first one reported)
                result.failed.append(f"{sequence}: {type(outcome).__name__}: {outcome}")
            else:
                result.failed.append(f"{sequence}: cannot decode the record: {outcome}")
    for outcome in outcomes.values():
        if outcome == "stale":
            result.stale += 1
        elif outcome == "applied":
            result.applied += 1
    if remove and not result.failed:
        s3.delete_object(Bucket=bucket, Key=key)
        result.removed = True
    return result


def redrive(
    s3: Any,
    bucket: str,
    table_name: str,
    *,
    workers: int = 16,
    remove: bool = True,
    prefix: str = FAILURE_PREFIX,
    registry_table: str | None = None,
) -> list[Redriven]:
    """Redrive every failed-batch object under ``prefix``; one :class:`Redriven` per object.

    An object that is not a failure record is reported as failed (and kept), not skipped.
    """
    results = []
    for key in list(failure_keys(s3, bucket, prefix)):
        try:
            results.append(
                redrive_object(
                    s3,
                    bucket,
                    key,
                    table_name,
                    workers=workers,
                    remove=remove,
                    registry_table=registry_table,
                )
            )
        except RedriveError as exc:
            results.append(Redriven(key=key, failed=[str(exc)]))
    return results
