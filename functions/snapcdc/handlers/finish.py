"""Finish: record SUCCEEDED/SKIPPED with counts, advance the head (see ``snapcdc.steps.finish``).

Event: ``{"state": <the whole execution state>, "execution_arn": ...}``.
"""

from aws_lambda_powertools import Logger

from snapcdc.aws.leases import utc_now
from snapcdc.model.settings import Settings
from snapcdc.steps.finish import finish

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    settings = Settings.from_env().require("registry_table")
    summary = finish(event["state"], event["execution_arn"], settings, utc_now())
    logger.info("finished", extra={"summary": summary})
    return summary
