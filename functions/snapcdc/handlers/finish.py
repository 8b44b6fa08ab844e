"""Finish: record SUCCEEDED/SKIPPED with counts, advance the head (see ``snapcdc.outcomes``).

Event: ``{"state": <the whole execution state>, "execution_arn": ...}``.
"""

from aws_lambda_powertools import Logger

from snapcdc.leases import utc_now
from snapcdc.outcomes import finish
from snapcdc.settings import Settings

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    settings = Settings.from_env().require("registry_table")
    summary = finish(event["state"], event["execution_arn"], settings, utc_now())
    logger.info("finished", extra={"summary": summary})
    return summary
