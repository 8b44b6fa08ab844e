"""Registering one uploaded object: validate its key, write its registry record.

An object whose key breaks the contract still gets a record (status FAILED, the ContractError
message as ``error``), filed under the raw key's first two parts, so the uploader can find out
why nothing happened.

One part of a multi-part version (``complete_on: "manifest"``, ``snapcdc.model.manifest``) gets no
record at all: outcome ``part``, and its execution ends at once; the version's manifest is what
registers and runs the version.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from snapcdc.aws.leases import iso, lease_expiry
from snapcdc.aws.registry import put_upload, upload_sk
from snapcdc.model.contract import ContractError, ExportRef, TableConfig, parse_export_key
from snapcdc.model.events import ObjectCreatedEvent, parse_key_parts
from snapcdc.model.manifest import completion
from snapcdc.model.settings import Settings
from snapcdc.model.state import Upload
from snapcdc.steps.plan import read_table_config


def _table_config(s3: Any, bucket: str, ref: ExportRef) -> TableConfig | None:
    """The table's configuration, or None when it is invalid: the version is then registered
    and Plan fails it with the configuration's error, as for any other version."""
    try:
        return read_table_config(s3, bucket, ref)
    except ContractError:
        return None


def register(
    s3: Any, event: ObjectCreatedEvent, execution_arn: str, settings: Settings, now: datetime
) -> Upload:
    """Returns the upload (what later steps need) with ``outcome``: ``registered``,
    ``rejected`` (bad key, FAILED record written), ``duplicate`` or ``part`` (no record)."""
    key, bucket = event.raw_key, event.detail.bucket.name
    tenant, table, version, file = parse_key_parts(key)
    error = None
    try:
        if settings.import_bucket and bucket != settings.import_bucket:
            raise ContractError(
                f"object is in bucket {bucket!r}, not the import bucket {settings.import_bucket!r}"
            )
        ref = parse_export_key(key)
        tenant, table, version, file = ref.tenant, ref.table, ref.version, ref.file
        config = _table_config(s3, bucket, ref)
        if config is not None and completion(config, ref) == "part":
            return Upload(table_id=ref.table_id, key=key, outcome="part")
    except ContractError as exc:
        error = f"{exc} (object key {key!r}, as the event delivered it)"
    obj = event.detail.object
    upload = Upload(
        table_id=f"{tenant}/{table}",
        key=key,
        sk=upload_sk(key, event.object_sequencer),
        tenant=tenant,
        table=table,
        version=version,
        file=file,
        bucket=bucket,
        size=int(obj.size or 0),
        etag=obj.etag,
        sequencer=event.object_sequencer,
        execution_arn=execution_arn,
        registered_at=iso(now),
    )
    record = {
        **{k: v for k, v in upload.to_dict().items() if k != "outcome"},
        "raw_key": key,
        "version_id": str(obj.get("version-id", "")),
        "event_id": str(event.get("id", "")),
        "event_time": str(event.get("time", "")),
        "status": "FAILED" if error else "REGISTERED",
        "updated_at": iso(now),
    }
    if error:
        record.update(error=f"ContractError: {error}", error_type="ContractError")
    existing = put_upload(record, table_name=settings.registry_table)
    if existing is not None:
        return replace(upload, outcome="duplicate", execution_arn=existing.get("execution_arn", ""))
    if error:
        return replace(upload, outcome="rejected", error=error)
    return replace(
        upload,
        lock_expires_at=lease_expiry(now, settings.lock_expiry_seconds),
        lock_retry_seconds=settings.lock_retry_seconds,
        lock_max_attempts=settings.lock_max_attempts,
        query_poll_seconds=settings.query_poll_seconds,
    )
