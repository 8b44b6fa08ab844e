"""DynamoDB table exports to S3: requesting one, following it, and reading what it wrote.

An export (``ExportTableToPointInTime``) needs point-in-time recovery on the table, uses no read
capacity, and writes under ``{S3Prefix}/AWSDynamoDB/{ExportId}/``: ``manifest-summary.json``
(the export's time, item count, and where ``manifest-files.json`` is), ``manifest-files.json``
(one JSON object a line per data file: ``dataFileS3Key``, ``itemCount``, ``md5Checksum``) and
the data files, gzip DynamoDB JSON, one ``{"Item": {...}}`` a line.
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_ExportTableToPointInTime.html
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport.Output.html

An export holds every change committed more than a minute before it was requested and none
committed more than a minute after; what happened within that minute either side may or may not
be in it
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport.HowItWorks.html).
The verify therefore holds a table still for a minute before and after it asks
(``snapcdc.steps.verify``).

The files are read by the exact keys the manifest lists, never by listing the prefix.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from typing import Any

from snapcdc.model.errors import ExportFailed

EXPORT_STATES = ("IN_PROGRESS", "COMPLETED", "FAILED")


def request_export(
    dynamodb: Any, table_arn: str, bucket: str, prefix: str, client_token: str
) -> dict[str, Any]:
    """Start a full export of the table as it is now; its ``ExportDescription``.

    ``client_token`` makes a retried request the same export (within 8 hours).
    """
    return dynamodb.export_table_to_point_in_time(
        TableArn=table_arn,
        S3Bucket=bucket,
        S3Prefix=prefix,
        ExportFormat="DYNAMODB_JSON",
        ExportType="FULL_EXPORT",
        ClientToken=client_token,
    )["ExportDescription"]


def describe_export(dynamodb: Any, export_arn: str) -> dict[str, Any]:
    """The export's ``ExportDescription``; ExportFailed when it failed."""
    described = dynamodb.describe_export(ExportArn=export_arn)["ExportDescription"]
    if described.get("ExportStatus") == "FAILED":
        raise ExportFailed(
            f"export {export_arn} failed: {described.get('FailureCode', 'unknown')}: "
            f"{described.get('FailureMessage', 'no message')}"
        )
    return described


def data_files(s3: Any, bucket: str, summary_key: str) -> tuple[dict[str, Any], list[dict]]:
    """The manifest summary and the data files it lists (``dataFileS3Key``, ``itemCount``)."""
    summary = _json(s3, bucket, summary_key)
    files_key = summary.get("manifestFilesS3Key")
    if not isinstance(files_key, str) or not files_key:
        raise ExportFailed(f"s3://{bucket}/{summary_key} names no manifestFilesS3Key")
    body = s3.get_object(Bucket=bucket, Key=files_key)["Body"].read().decode("utf-8")
    files = [json.loads(line) for line in body.splitlines() if line.strip()]
    for entry in files:
        if not isinstance(entry.get("dataFileS3Key"), str):
            raise ExportFailed(f"s3://{bucket}/{files_key} lists a file without dataFileS3Key")
    listed = sum(int(entry.get("itemCount", 0)) for entry in files)
    if "itemCount" in summary and int(summary["itemCount"]) != listed:
        raise ExportFailed(
            f"export manifest says {summary['itemCount']} items, its files list {listed}"
        )
    return summary, files


def read_items(s3: Any, bucket: str, key: str) -> Iterator[dict[str, Any]]:
    """The items of one data file (DynamoDB JSON attribute maps), streamed."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        with gzip.open(body, "rt", encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    item = json.loads(line).get("Item")
                    if not isinstance(item, dict):
                        raise ExportFailed(f"s3://{bucket}/{key}: a line without an Item")
                    yield item
    except (OSError, EOFError) as exc:  # gzip's errors: a truncated or foreign file
        raise ExportFailed(f"s3://{bucket}/{key} is not a gzip export data file: {exc}") from None
    finally:
        body.close()


def _json(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    raw = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        value = json.load(io.BytesIO(raw))
    except ValueError:
        raise ExportFailed(f"s3://{bucket}/{key} is not JSON") from None
    if not isinstance(value, dict):
        raise ExportFailed(f"s3://{bucket}/{key} is not a JSON object")
    return value
