"""Check: fail the version when the export check found problems (see ``snapcdc.checking``).

Event: ``{"status": <the check statement's status>, "table_id": ..., "version": ...}``.
"""

from aws_lambda_powertools import Logger

from snapcdc.aws import client
from snapcdc.checking import evaluate_result

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    result = evaluate_result(client("s3"), event["status"]["output_location"])
    logger.info("export check passed", extra={**result, "table_id": event.get("table_id")})
    return result
