"""ExecutionEnded: an execution FAILED, TIMED_OUT or ABORTED past its Catch (see
``snapcdc.execution_end``); invoked by EventBridge with the status-change event.
"""

from aws_lambda_powertools import Logger

from snapcdc.execution_end import record_execution_end
from snapcdc.leases import utc_now
from snapcdc.settings import Settings

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    settings = Settings.from_env().require("registry_table", "lock_table")
    summary = record_execution_end(event, settings, utc_now())
    logger.warning("execution ended", extra={"execution_end": summary})
    return summary
