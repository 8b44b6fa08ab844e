"""Plan: first load, delta or skip, and the Athena statements (see ``snapcdc.steps.plan``).

Event: ``{"upload": <Register's output>, "execution_arn": ...}``.
"""

from aws_lambda_powertools import Logger

from snapcdc.aws.clients import client
from snapcdc.aws.leases import iso, utc_now
from snapcdc.aws.registry import get_head, update_upload
from snapcdc.model.settings import Settings
from snapcdc.model.state import Upload
from snapcdc.steps.plan import plan_upload, sql_prefix_for

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    settings = Settings.from_env().require("registry_table")
    upload = Upload.from_dict(event["upload"])
    head = get_head(upload.table_id, table_name=settings.registry_table)
    plan = plan_upload(
        client("s3"),
        upload,
        head,
        settings.glue_database_prefix,
        sql_prefix_for(settings.athena_output, event["execution_arn"]),
    )
    planned = plan.to_dict()
    update_upload(
        upload.table_id,
        upload.sk,
        {
            "status": "RUNNING",
            "action": plan.action,
            "reason": plan.reason,
            # what a later reconverge needs if this version fails after publishing began
            **{k: planned[k] for k in ("files", "schema", "config", "location") if k in planned},
            "updated_at": iso(utc_now()),
        },
        table_name=settings.registry_table,
    )
    logger.info(
        "planned", extra={"action": plan.action, "statements": [q.name for q in plan.queries]}
    )
    return planned
