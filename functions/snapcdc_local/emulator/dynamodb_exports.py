"""DynamoDB table exports to S3 as AWS writes them (moto 5.2.5 writes one data file and nothing
else, under a folder whose id is not the export's, from a thread reading the table while it
changes).

What is reproduced (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport.Output.html,
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_ExportTableToPointInTime.html,
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_ExportDescription.html):

- the export is a snapshot of the table at the request: it is taken while the request holds
  the emulation's DynamoDB lock (``snapcdc_local.emulator.dynamodb``), so no write lands half in
  it (AWS guarantees what was committed a minute before the request, and nothing committed a
  minute after; the emulation's moment is the request itself);
- ``ExportArn`` is ``{table ARN}/export/{ExportId}``, ``ExportId`` a 14-digit time and 8 hex
  digits; every file lies under ``{S3Prefix}/AWSDynamoDB/{ExportId}/``: ``_started``,
  ``data/{random}.json.gz`` (one per partition, an empty partition's file empty; here
  ``PARTITIONS`` partitions by a hash of the partition key), ``manifest-files.json`` (a line per
  data file: ``itemCount``, ``md5Checksum``, ``etag``, ``dataFileS3Key``),
  ``manifest-summary.json`` (``version``, ``exportArn``, times, ``tableArn``, ``tableId``,
  ``s3Bucket``, ``s3Prefix``, ``manifestFilesS3Key``, ``billedSizeBytes``, ``itemCount``,
  ``outputFormat``, ``exportType``) and a ``.checksum`` of each manifest;
- each data line is ``{"Item": {...}}`` in DynamoDB JSON;
- the request answers ``IN_PROGRESS``; ``DescribeExport`` answers ``COMPLETED`` with
  ``ExportManifest``, ``ExportTime``, ``StartTime``, ``EndTime``, ``ItemCount`` and
  ``BilledSizeBytes``; a missing bucket makes the export ``FAILED`` (``S3NoSuchBucket``), as
  AWS reports it, not the request;
- the same ``ClientToken`` gives the same export; point-in-time recovery must be on (and a
  table deployed with ``PointInTimeRecoverySpecification`` has it on, which moto's
  CloudFormation leaves out).

Not reproduced: ``ExportTime`` in the past (the emulation keeps no history; a request naming
one is refused with a ValidationException saying so), ION, incremental exports, the export's
duration. The caller's permission to write the bucket is checked by the emulated IAM on the
request (``snapcdc_local.emulator.iam_actions``), as AWS writes with the caller's credentials.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from unittest import mock

PARTITIONS = 2
MANIFEST_VERSION = "2020-06-30"


@dataclass
class Export:
    """One export and what its description answers."""

    arn: str
    table_arn: str
    table_id: str
    bucket: str
    prefix: str
    client_token: str
    export_time: datetime
    status: str = "IN_PROGRESS"
    item_count: int = 0
    billed_bytes: int = 0
    manifest: str | None = None
    failure: tuple[str, str] | None = None
    end_time: datetime | None = None

    def response(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "ExportArn": self.arn,
            "ExportStatus": self.status,
            "StartTime": self.export_time,
            "TableArn": self.table_arn,
            "TableId": self.table_id,
            "ExportTime": self.export_time,
            "ClientToken": self.client_token,
            "S3Bucket": self.bucket,
            "S3Prefix": self.prefix,
            "S3SseAlgorithm": "AES256",
            "ExportFormat": "DYNAMODB_JSON",
            "ExportType": "FULL_EXPORT",
        }
        if self.status == "COMPLETED":
            answer.update(
                EndTime=self.end_time,
                ExportManifest=self.manifest,
                ItemCount=self.item_count,
                BilledSizeBytes=self.billed_bytes,
            )
        if self.status == "FAILED" and self.failure:
            answer.update(FailureCode=self.failure[0], FailureMessage=self.failure[1])
        return answer


def export_id(moment: datetime) -> str:
    """``{milliseconds since the epoch, 14 digits}-{8 hex digits}``, as AWS names exports.

    >>> len(export_id(datetime(2026, 12, 8, tzinfo=UTC)).split("-")[0])
    14
    """
    return f"{int(moment.timestamp() * 1000):014d}-{secrets.token_hex(4)}"


@contextmanager
def installed() -> Iterator[dict[str, Export]]:
    """While the block runs, DynamoDB's export calls are answered here (moto's request
    handler methods, so the emulation's DynamoDB lock and IAM apply to them as to any call)."""
    from moto.core.responses import ActionResult
    from moto.dynamodb.responses import DynamoHandler

    exports: dict[str, Export] = {}

    def export_table_to_point_in_time(self: Any) -> Any:
        export = start_export(self.dynamodb_backend, self.body, exports)
        return ActionResult({"ExportDescription": export.response()})

    def describe_export(self: Any) -> Any:
        from moto.dynamodb.exceptions import ResourceNotFoundException

        export = exports.get(self.body["ExportArn"])
        if export is None:
            raise ResourceNotFoundException(f"Export not found: {self.body['ExportArn']}")
        if export.status == "IN_PROGRESS":
            # the request answered IN_PROGRESS, as AWS does; the first look finds it ended
            export.status = "FAILED" if export.failure else "COMPLETED"
        return ActionResult({"ExportDescription": export.response()})

    def list_exports(self: Any) -> Any:
        table_arn = self.body.get("TableArn")
        summaries = [
            {"ExportArn": e.arn, "ExportStatus": e.status, "ExportType": "FULL_EXPORT"}
            for e in exports.values()
            if table_arn in (None, e.table_arn)
        ]
        return ActionResult({"ExportSummaries": summaries})

    from moto.dynamodb.models.table import Table

    create = Table.create_from_cloudformation_json

    def create_table(cls: Any, resource_name: str, cloudformation_json: Any, *args, **kwargs):
        # moto's CloudFormation leaves PointInTimeRecoverySpecification out (exports need it)
        table = create.__func__(cls, resource_name, cloudformation_json, *args, **kwargs)
        recovery = (cloudformation_json.get("Properties") or {}).get(
            "PointInTimeRecoverySpecification"
        ) or {}
        if str(recovery.get("PointInTimeRecoveryEnabled")).lower() == "true":
            table.continuous_backups["PointInTimeRecoveryDescription"].update(
                PointInTimeRecoveryStatus="ENABLED"
            )
        return table

    with (
        mock.patch.object(Table, "create_from_cloudformation_json", classmethod(create_table)),
        mock.patch.object(
            DynamoHandler, "export_table_to_point_in_time", export_table_to_point_in_time
        ),
        mock.patch.object(DynamoHandler, "describe_export", describe_export),
        mock.patch.object(DynamoHandler, "list_exports", list_exports),
    ):
        yield exports


def start_export(backend: Any, body: dict[str, Any], exports: dict[str, Export]) -> Export:
    """Write the export a request asks for (see the module docstring); the request holds the
    emulation's DynamoDB lock, so the items are one moment's."""
    from moto.dynamodb.exceptions import (
        MockValidationException,
        PointInTimeRecoveryUnavailable,
        TableNotFoundException,
    )
    from moto.dynamodb.models.utilities import dynamo_json_dump

    table_arn = body["TableArn"]
    token = body.get("ClientToken") or secrets.token_hex(16)
    for existing in exports.values():
        if existing.client_token == token and existing.table_arn == table_arn:
            return existing
    if body.get("ExportTime") is not None:
        raise MockValidationException(
            "the emulation exports a table as it is at the request; ExportTime (a moment in "
            "the point-in-time recovery window) is not emulated"
        )
    export_format = body.get("ExportFormat", "DYNAMODB_JSON")
    export_type = body.get("ExportType", "FULL_EXPORT")
    if export_format != "DYNAMODB_JSON" or export_type != "FULL_EXPORT":
        raise MockValidationException(
            f"the emulation writes FULL_EXPORT in DYNAMODB_JSON only, not {export_type} in "
            f"{export_format}"
        )
    table = next((t for t in backend.tables.values() if t.table_arn == table_arn), None)
    if table is None:
        raise TableNotFoundException(name=table_arn)
    recovery = table.continuous_backups["PointInTimeRecoveryDescription"]
    if recovery["PointInTimeRecoveryStatus"] != "ENABLED":
        raise PointInTimeRecoveryUnavailable(name=table.name)
    now = datetime.now(UTC)
    ident = export_id(now)
    export = Export(
        arn=f"{table_arn}/export/{ident}",
        table_arn=table_arn,
        table_id=_table_uuid(table_arn),
        bucket=body["S3Bucket"],
        prefix=body.get("S3Prefix") or "",
        client_token=token,
        export_time=now,
    )
    lines = [dynamo_json_dump(item.to_json(root_attr_name="Item")) for item in table.all_items()]
    _write(export, ident, lines, body.get("S3BucketOwner") or backend.account_id)
    exports[export.arn] = export
    return export


def _table_uuid(table_arn: str) -> str:
    digest = hashlib.sha256(table_arn.encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def _write(export: Export, ident: str, lines: list[str], owner: str) -> None:
    from moto.s3.models import s3_backends

    partition = export.arn.split(":", 2)[1]
    s3 = s3_backends[owner][partition]
    if export.bucket not in s3.buckets:
        export.failure = ("S3NoSuchBucket", "The specified bucket does not exist")
        return
    base = f"{export.prefix.rstrip('/')}/AWSDynamoDB/{ident}/".lstrip("/")

    def put(key: str, body: bytes) -> str:
        return s3.put_object(export.bucket, key, body).etag.strip('"')

    put(base + "_started", b"")
    parts: list[list[str]] = [[] for _ in range(PARTITIONS)]
    for line in lines:
        # the partition key's hash picks the partition, as DynamoDB spreads items
        pk = json.loads(line)["Item"].get("pk", {})
        digest = hashlib.md5(json.dumps(pk, sort_keys=True).encode()).digest()  # noqa: S324
        parts[digest[0] % PARTITIONS].append(line)
    manifest_lines = []
    for part in parts:
        key = f"{base}data/{secrets.token_hex(13)}.json.gz"
        body = gzip.compress("".join(line + "\n" for line in part).encode(), mtime=0)
        etag = put(key, body)
        manifest_lines.append(
            json.dumps(
                {
                    "itemCount": len(part),
                    "md5Checksum": hashlib.md5(body).hexdigest(),  # noqa: S324 - as AWS writes it
                    "etag": etag,
                    "dataFileS3Key": key,
                }
            )
        )
    files_body = "".join(line + "\n" for line in manifest_lines).encode()
    put(base + "manifest-files.json", files_body)
    put(base + "manifest-files.checksum", hashlib.md5(files_body).hexdigest().encode())  # noqa: S324
    export.item_count = len(lines)
    export.billed_bytes = sum(len(line) for line in lines)
    export.end_time = datetime.now(UTC)
    stamp = "%Y-%m-%dT%H:%M:%S.%fZ"
    summary = {
        "version": MANIFEST_VERSION,
        "exportArn": export.arn,
        "startTime": export.export_time.strftime(stamp),
        "endTime": export.end_time.strftime(stamp),
        "tableArn": export.table_arn,
        "tableId": export.table_id,
        "exportTime": export.export_time.strftime(stamp),
        "s3Bucket": export.bucket,
        "s3Prefix": export.prefix,
        "s3SseAlgorithm": "AES256",
        "s3SseKmsKeyId": None,
        "manifestFilesS3Key": base + "manifest-files.json",
        "billedSizeBytes": export.billed_bytes,
        "itemCount": export.item_count,
        "outputFormat": "DYNAMODB_JSON",
        "exportType": "FULL_EXPORT",
    }
    summary_body = json.dumps(summary).encode()
    put(base + "manifest-summary.json", summary_body)
    put(base + "manifest-summary.checksum", hashlib.md5(summary_body).hexdigest().encode())  # noqa: S324
    export.manifest = base + "manifest-summary.json"
