"""ExecutionEnded: an execution FAILED, TIMED_OUT or ABORTED past its Catch (see
``snapcdc.steps.execution_ended``); invoked by EventBridge with the status-change event.
"""

from aws_lambda_powertools import Logger

from snapcdc.aws.leases import utc_now
from snapcdc.model.settings import Settings
from snapcdc.steps.execution_ended import record_execution_end

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    settings = Settings.from_env().require("registry_table", "lock_table")
    summary = record_execution_end(event, settings, utc_now())
    logger.warning("execution ended", extra={"execution_end": summary})
    return summary
