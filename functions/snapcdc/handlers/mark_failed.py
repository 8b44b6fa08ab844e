"""MarkFailed: record FAILED with a readable reason (see ``snapcdc.outcomes``).

Event: ``{"state": <the execution state with "error": {Error, Cause}>, "execution_arn": ...}``.
"""

from aws_lambda_powertools import Logger

from snapcdc.leases import utc_now
from snapcdc.outcomes import mark_failed
from snapcdc.settings import Settings

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    settings = Settings.from_env().require("registry_table")
    failure = mark_failed(event["state"], event["execution_arn"], settings, utc_now())
    logger.warning("failed", extra={"failure": failure})
    return failure
