"""Route: start the pipeline as a named execution (see ``snapcdc.steps.route``).

Event: ``{"event": <EventBridge S3 event>, "state_machine_arn": ..., "execution_arn": ...}``.
"""

from aws_lambda_powertools import Logger

from snapcdc.aws.clients import client
from snapcdc.steps.route import route

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    result = route(
        client("stepfunctions"), event["event"], event["state_machine_arn"], event["execution_arn"]
    )
    logger.info("routed", extra={"route": result})
    return result
