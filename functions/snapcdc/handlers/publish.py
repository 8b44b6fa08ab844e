"""Publish: one page of ops from the result CSV to Kinesis (see ``snapcdc.publishing``).

Event: ``{"upload", "schema": {columns, key}, "queries": [statuses], "progress": {cursor, ...}}``.
"""

from aws_lambda_powertools import Logger

from snapcdc.aws import client
from snapcdc.contract import TableSchema
from snapcdc.publishing import publish_page
from snapcdc.settings import Settings

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    settings = Settings.from_env().require("stream_name")
    progress = publish_page(
        client("s3"),
        client("kinesis"),
        settings.stream_name,
        event["upload"],
        TableSchema.from_dict(event["schema"]),
        event["queries"],
        event.get("progress") or {},
        context.get_remaining_time_in_millis,
        reserve_ms=settings.publish_reserve_millis,
        max_records=settings.publish_max_records,
        max_retries=settings.publish_max_retries,
    )
    logger.info("published", extra={"progress": progress})
    return progress
