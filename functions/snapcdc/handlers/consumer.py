"""Consumer: apply Kinesis ops to the target table (see ``snapcdc.applying``).

Partial batch response: a record that cannot be applied is reported, the ones before it are
kept (Lambda retries from it, bisects, and finally sends it to the DLQ).
"""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from snapcdc.applying import apply_op
from snapcdc.settings import Settings

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    target = Settings.from_env().require("target_table").target_table
    outcomes = {"applied": 0, "stale": 0}

    def apply_record(record: KinesisStreamRecord) -> None:
        outcomes[apply_op(target, record.kinesis.data_as_json())] += 1

    response = process_partial_response(
        event=event,
        record_handler=apply_record,
        processor=BatchProcessor(event_type=EventType.KinesisDataStreams),
        context=context,
    )
    logger.info("applied", extra={**outcomes, "failed": len(response.get("batchItemFailures", []))})
    return response
