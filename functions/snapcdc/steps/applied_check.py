"""Versions whose ops were not all applied within the stream's maximum record age.

Every op Publish sends ends, within the event source mapping's MaximumRecordAgeInSeconds, in one
of two places: applied (or refused as stale) by the consumer, which counts it on the upload's
registry record, or in the failed-batches bucket, where Lambda sends a batch it gave up on
(retries exhausted or records older than the maximum age:
https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html). So once a
SUCCEEDED version is older than that age (plus the time one last batch may take), ``published -
applied - stale`` is the number of its ops that did not reach the target.

Finish writes a watch item per published version (partition ``_watch`` of the registry, sorted
by when the version finished); this check, run on a schedule, reads the watches older than the
age, sets ``unapplied`` (that number) and ``unapplied_reason`` on each version's record where
it is positive, deletes the watch, and publishes the number of such versions as the
``UnappliedVersions`` metric, which an alarm in cfn.yaml watches. ``snapcdc redrive`` counts what
it applies on the same record; a version flagged before its redrive stays flagged (the record
then shows ``applied`` = ``published`` beside it).

A redelivered op counts as stale, so a redelivery can hide a missing op in this sum; the missing
op's batch is then in the failed-batches bucket, which FailedBatchesAlarm reports.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from snapcdc.aws.clients import client
from snapcdc.aws.dynamo import from_item, to_item
from snapcdc.aws.leases import iso
from snapcdc.aws.registry import find_record, update_upload

WATCH_PARTITION = "_watch"  # never a table id: those are tenant/table
METRIC_NAMESPACE = "snapcdc"
METRIC_NAME = "UnappliedVersions"
# a batch taken just before the maximum age may still be applied by a Lambda running 15 minutes
LAST_BATCH_SECONDS = 900


def watch_key(finished_at: str, table_id: str, sk: str) -> dict[str, str]:
    """The registry key of the watch on one version's upload record.

    >>> watch_key("2026-12-01T10:00:00Z", "t/x", "upload#t/x/V1/a.csv.gz#0A")["sk"]
    '2026-12-01T10:00:00Z#t/x#upload#t/x/V1/a.csv.gz#0A'
    """
    return {"table_id": WATCH_PARTITION, "sk": f"{finished_at}#{table_id}#{sk}"}


def watch_published(table_id: str, sk: str, finished_at: str, *, table_name: str) -> None:
    """Finish: have the check look at this version once the maximum record age has passed."""
    key = watch_key(finished_at, table_id, sk)
    update_upload(key["table_id"], key["sk"], {"upload_table_id": table_id, "upload_sk": sk},
                  table_name=table_name)  # fmt: skip


def check_applied(now: datetime, max_record_age_seconds: int, *, table_name: str) -> dict[str, Any]:
    """Check every watch older than the maximum record age; return what was found."""
    dynamodb = client("dynamodb")
    cutoff = iso(now - timedelta(seconds=max_record_age_seconds + LAST_BATCH_SECONDS))
    paginator = dynamodb.get_paginator("query")
    checked, unapplied = 0, []
    for page in paginator.paginate(
        TableName=table_name,
        KeyConditionExpression="table_id = :w AND sk < :cutoff",
        ExpressionAttributeValues={":w": {"S": WATCH_PARTITION}, ":cutoff": {"S": cutoff}},
        ConsistentRead=True,
    ):
        for item in page["Items"]:
            watch = from_item(item)
            record = find_record(
                watch["upload_table_id"], watch["upload_sk"], table_name=table_name
            )
            checked += 1
            missing = _missing(record)
            if missing > 0:
                update_upload(
                    watch["upload_table_id"],
                    watch["upload_sk"],
                    {
                        "unapplied": missing,
                        "unapplied_reason": (
                            f"{missing} of {record.get('published')} published ops were not "
                            f"applied within {max_record_age_seconds} s (the stream's maximum "
                            "record age); they are in the failed-batches bucket: fix the cause, "
                            "then run snapcdc redrive"
                        ),
                        "checked_at": iso(now),
                    },
                    table_name=table_name,
                )
                unapplied.append(watch["upload_sk"])
            dynamodb.delete_item(
                TableName=table_name,
                Key=to_item({"table_id": WATCH_PARTITION, "sk": watch["sk"]}),
            )
    client("cloudwatch").put_metric_data(
        Namespace=METRIC_NAMESPACE,
        MetricData=[
            {
                "MetricName": METRIC_NAME,
                "Dimensions": [{"Name": "RegistryTable", "Value": table_name}],
                "Value": len(unapplied),
                "Unit": "Count",
            }
        ],
    )
    return {"checked": checked, "unapplied": unapplied}


def _missing(record: dict[str, Any] | None) -> int:
    if not record:
        return 0
    published = int(record.get("published") or 0)
    return published - int(record.get("applied") or 0) - int(record.get("stale") or 0)


def unapplied_versions(table_id: str, *, table_name: str) -> list[dict[str, Any]]:
    """The table's published versions whose ops are not all applied (or refused as stale) yet:
    still in the stream, or in the failed-batches bucket. Read from the watches, which cover
    every version published since the check last looked, and the counters on their records.

    The ``_watch`` partition holds one small item per version published within the stream's
    maximum record age, across all tables; the table's are picked by a filter.
    """
    paginator = client("dynamodb").get_paginator("query")
    pending = []
    for page in paginator.paginate(
        TableName=table_name,
        KeyConditionExpression="table_id = :w",
        FilterExpression="upload_table_id = :t",
        ExpressionAttributeValues={":w": {"S": WATCH_PARTITION}, ":t": {"S": table_id}},
        ConsistentRead=True,
    ):
        for item in page["Items"]:
            watch = from_item(item)
            record = find_record(table_id, watch["upload_sk"], table_name=table_name)
            missing = _missing(record)
            if missing > 0 and record:
                pending.append(
                    {
                        "version": record.get("version"),
                        "key": record.get("key"),
                        "published": int(record.get("published") or 0),
                        "missing": missing,
                    }
                )
    return pending
