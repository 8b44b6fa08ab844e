"""Register: validate the key, write the upload's registry record (see ``snapcdc.steps.register``).

Event: ``{"event": <EventBridge S3 event>, "execution_arn": ...}``. Reads the table's
``_table.json`` (``complete_on``: is the object a version or one part of one).
"""

from aws_lambda_powertools import Logger

from snapcdc.aws.clients import client
from snapcdc.aws.leases import utc_now
from snapcdc.model.events import object_event
from snapcdc.model.settings import Settings
from snapcdc.steps.register import register

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    settings = Settings.from_env().require("registry_table")
    upload = register(
        client("s3"), object_event(event["event"]), event["execution_arn"], settings, utc_now()
    )
    logger.info("registered", extra={"outcome": upload.outcome, "key": upload.key})
    return upload.to_dict()
