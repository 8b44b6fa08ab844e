"""Query: start an Athena statement (``action: start``) or report its state (``action: poll``).

Raises QueryFailed with Athena's StateChangeReason when the statement failed.
Event: ``{"action": "start", "query": {name, kind, sql | sql_location}, "index": 0,
"execution_arn": ...}``
or ``{"action": "poll", "query": {...}, "status": <previous status>}``.
"""

from aws_lambda_powertools import Logger

from snapcdc.aws.clients import client
from snapcdc.model.settings import Settings
from snapcdc.model.state import QueryStatus, Statement
from snapcdc.steps.plan import statement_sql
from snapcdc.steps.query import poll_query, start_query

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    settings = Settings.from_env()
    athena = client("athena")
    action = event.get("action")
    if action not in ("start", "poll"):
        raise ValueError(f"unknown action {action!r}: expected 'start' or 'poll'")
    query = Statement.from_dict(event.get("query"))
    if action == "start":
        sql = statement_sql(client("s3"), query)
        status = start_query(
            athena, sql, query, event["execution_arn"], int(event["index"]), settings
        )
    else:
        status = poll_query(athena, QueryStatus.from_dict(event.get("status")), query, settings)
    logger.info("statement", extra={"statement": status.to_dict()})
    return status.to_dict()
