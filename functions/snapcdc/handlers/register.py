"""Register: validate the key, write the upload's registry record (see ``snapcdc.registration``).

Event: ``{"event": <EventBridge S3 event>, "execution_arn": ...}``. Reads the table's
``_table.json`` (``complete_on``: is the object a version or one part of one).
"""

from aws_lambda_powertools import Logger

from snapcdc.aws import client
from snapcdc.leases import utc_now
from snapcdc.registration import register
from snapcdc.settings import Settings

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    settings = Settings.from_env().require("registry_table")
    upload = register(client("s3"), event["event"], event["execution_arn"], settings, utc_now())
    logger.info("registered", extra={"outcome": upload["outcome"], "key": upload["key"]})
    return upload
