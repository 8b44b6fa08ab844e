"""Route: start the pipeline as a named execution (see ``snapcdc.steps.route``).

Event: ``{"event": <EventBridge S3 event>, "state_machine_arn": ..., "execution_arn": ...}``.
"""

from aws_lambda_powertools import Logger

from snapcdc.aws.clients import client
from snapcdc.model.events import EventError, object_event
from snapcdc.steps.route import route

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    try:
        s3_event = object_event(event["event"])
    except EventError as exc:
        result = {"outcome": "unnamed", "reason": str(exc)}
    else:
        result = route(
            client("stepfunctions"), s3_event, event["state_machine_arn"], event["execution_arn"]
        )
    logger.info("routed", extra={"route": result})
    return result
