"""MarkFailed: record FAILED with a readable reason (see ``snapcdc.steps.mark_failed``).

Event: ``{"state": <the execution state with "error": {Error, Cause}>, "execution_arn": ...}``.
"""

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from snapcdc.aws.leases import utc_now
from snapcdc.model.settings import Settings
from snapcdc.model.state import ExecutionState
from snapcdc.steps.mark_failed import mark_failed

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict, context: LambdaContext) -> dict:
    settings = Settings.from_env().require("registry_table")
    failure = mark_failed(
        ExecutionState.readable_parts(event["state"]), event["execution_arn"], settings, utc_now()
    )
    logger.warning("failed", extra={"failure": failure.to_dict()})
    return failure.to_dict()
