"""MarkFailed: record FAILED with a readable reason (see ``snapcdc.steps.finish``).

Event: ``{"state": <the execution state with "error": {Error, Cause}>, "execution_arn": ...}``.
"""

from aws_lambda_powertools import Logger

from snapcdc.aws.leases import utc_now
from snapcdc.model.settings import Settings
from snapcdc.steps.finish import mark_failed

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    settings = Settings.from_env().require("registry_table")
    failure = mark_failed(event["state"], event["execution_arn"], settings, utc_now())
    logger.warning("failed", extra={"failure": failure})
    return failure
