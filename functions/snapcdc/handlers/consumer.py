"""Consumer: apply Kinesis ops to the target table (see ``snapcdc.steps.consumer``).

A record may be aggregated (many ops, ``snapcdc.aws.aggregation``) or plain (one op); Lambda
delivers either as it is. The batch's ops are applied concurrently (conditional writes, so order
does not matter), then Powertools' batch processor reports each Kinesis record's outcome: a
record with an op that could not be applied (bad data, a DynamoDB error) is a batch item
failure; Lambda retries from it, bisects, and finally writes the batch, records included, to the
failed-batches bucket (``snapcdc redrive``). A stale op (a newer version is already there, or
this upload already wrote it: a redelivery, e.g. the other ops of a record retried for one) is
skipped.

Each batch's outcomes are then counted on the registry record of the upload each op comes from
(``applied`` / ``stale``, see ``snapcdc.aws.registry.count_applied``). A counter that cannot be
written is logged, not retried (``snapcdc.steps.consumer.count_outcomes``).
"""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from snapcdc.model.settings import Settings
from snapcdc.steps.consumer import apply_records, count_outcomes

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    settings = Settings.from_env().require("target_table", "registry_table")
    ops, outcomes, per_record = apply_records(
        settings.target_table,
        {r["kinesis"]["sequenceNumber"]: r for r in event["Records"]},
        settings.consumer_workers,
    )
    counts = {"applied": 0, "stale": 0}

    def report(record: KinesisStreamRecord) -> None:
        outcome = per_record[record.kinesis.sequence_number]
        if isinstance(outcome, BaseException):
            raise outcome
        for op_outcome in outcome:
            counts[op_outcome] += 1

    response = process_partial_response(
        event=event,
        record_handler=report,
        processor=BatchProcessor(event_type=EventType.KinesisDataStreams),
        context=context,
    )
    logger.info("applied", extra={**counts, "failed": len(response.get("batchItemFailures", []))})
    count_outcomes(ops, outcomes, settings.registry_table)
    return response
