"""Finish: record SUCCEEDED/SKIPPED with counts, advance the head (see ``snapcdc.steps.finish``).

Event: ``{"state": <the whole execution state>, "execution_arn": ...}``.
"""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from snapcdc.aws.leases import utc_now
from snapcdc.model.settings import Settings
from snapcdc.model.state import ExecutionState
from snapcdc.steps.finish import finish

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict, context: LambdaContext) -> dict:
    settings = Settings.from_env().require("registry_table")
    state = ExecutionState.from_dict(event["state"])
    summary = finish(state, event["execution_arn"], settings, utc_now())
    logger.info("finished", extra={"summary": summary})
    return summary
