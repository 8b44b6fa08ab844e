"""Publish: one page of ops from the result CSV to Kinesis (see ``snapcdc.steps.publish``).

Event: ``{"upload", "schema": {columns, key}, "queries": [statuses], "progress": {cursor, ...}}``.
"""

from aws_lambda_powertools import Logger

from snapcdc.aws.clients import client
from snapcdc.aws.registry import update_upload
from snapcdc.model.contract import TableSchema
from snapcdc.model.settings import Settings
from snapcdc.model.state import PublishProgress, QueryStatus, Upload
from snapcdc.steps.publish import publish_page, published_ops

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    settings = Settings.from_env().require("stream_name", "registry_table")
    upload = Upload.from_dict(event["upload"])
    previous = PublishProgress.from_dict(event.get("progress") or {})
    if not previous.calls:
        # Publishing begins: recorded before the first record is sent, so a version that fails
        # from here on marks its table diverged (snapcdc.steps.mark_failed.diverge_if_published).
        record_published(upload, previous, settings)
    progress = publish_page(
        client("s3"),
        client("kinesis"),
        settings.stream_name,
        upload,
        TableSchema.from_dict(event["schema"]),
        [QueryStatus.from_dict(q) for q in event["queries"]],
        previous,
        context.get_remaining_time_in_millis,
        reserve_ms=settings.publish_reserve_millis,
        max_records=settings.publish_max_records,
        max_retries=settings.publish_max_retries,
        record_bytes_target=settings.publish_record_bytes,
    )
    record_published(upload, progress, settings)
    logger.info("published", extra={"progress": progress.to_dict()})
    return progress.to_dict()


def record_published(upload: Upload, progress: PublishProgress, settings: Settings) -> None:
    """SET (not ADD: a retried page must not count twice) the records Kinesis took so far."""
    update_upload(
        upload.table_id,
        upload.sk,
        {"published": published_ops(progress)},
        table_name=settings.registry_table,
    )
