"""AppliedCheck: versions whose ops were not all applied within the stream's maximum record age
(see ``snapcdc.steps.applied_check``); invoked by an EventBridge schedule.

The scheduled event's ``time`` is the check's "now" (the time the schedule fired).
"""

from datetime import datetime

from aws_lambda_powertools import Logger

from snapcdc.aws.leases import utc_now
from snapcdc.model.settings import Settings
from snapcdc.steps.applied_check import check_applied

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    settings = Settings.from_env().require("registry_table")
    when = (event or {}).get("time")
    now = datetime.fromisoformat(when.replace("Z", "+00:00")) if when else utc_now()
    found = check_applied(
        now, settings.consumer_max_record_age_seconds, table_name=settings.registry_table
    )
    logger.info("applied check", extra=found)
    return found
