"""Consumer: apply Kinesis ops to the target table (see ``snapcdc.steps.consumer``).

The batch's ops are applied concurrently (conditional writes, so order does not matter), then
Powertools' batch processor reports each record's outcome: a record that could not be applied
(bad data, a DynamoDB error) is a batch item failure; Lambda retries from it, bisects, and
finally writes the batch, records included, to the failed-batches bucket (``snapcdc
redrive``). A stale op (a newer version is already there, or this upload already wrote it: a
redelivery) is skipped.

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
from snapcdc.steps.consumer import apply_concurrently, count_outcomes, decode_record

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    settings = Settings.from_env().require("target_table", "registry_table")
    ops = {r["kinesis"]["sequenceNumber"]: decode_record(r) for r in event["Records"]}
    decoded = {k: op for k, op in ops.items() if not isinstance(op, Exception)}
    outcomes = {
        **ops,
        **apply_concurrently(settings.target_table, decoded, settings.consumer_workers),
    }
    counts = {"applied": 0, "stale": 0}

    def report(record: KinesisStreamRecord) -> None:
        outcome = outcomes[record.kinesis.sequence_number]
        if isinstance(outcome, BaseException):
            raise outcome
        counts[outcome] += 1

    response = process_partial_response(
        event=event,
        record_handler=report,
        processor=BatchProcessor(event_type=EventType.KinesisDataStreams),
        context=context,
    )
    logger.info("applied", extra={**counts, "failed": len(response.get("batchItemFailures", []))})
    count_outcomes(decoded, outcomes, settings.registry_table)
    return response
