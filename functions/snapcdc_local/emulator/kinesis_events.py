"""The event Lambda sends a function for a batch of Kinesis records, and how the event source
mapping reads the function's answer (errors, ``ReportBatchItemFailures``).

>>> record = {"Data": b"hi", "PartitionKey": "k", "SequenceNumber": "7",
...           "ApproximateArrivalTimestamp": 1.5}
>>> stream = "arn:aws:kinesis:us-east-1:1:stream/s"
>>> kinesis_event_record(record, "shardId-000000000000", stream, "arn:role", "us-east-1")["eventID"]
'shardId-000000000000:7'
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from typing import Any


def arrival_seconds(value: Any) -> float:
    return value.timestamp() if isinstance(value, dt.datetime) else float(value)


def iso_millis(seconds: float) -> str:
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
            "approximateArrivalTimestamp": arrival_seconds(record["ApproximateArrivalTimestamp"]),
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
