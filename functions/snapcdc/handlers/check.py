"""Check: fail the version when the export check found problems (see ``snapcdc.steps.check``).

Event: ``{"status": <the check statement's status>, "query": <the planned check statement>,
"table_id": ..., "version": ...}``; the query's ``expected_rows`` is a manifest's row count,
its ``key`` the key column(s) the check used.
"""

from aws_lambda_powertools import Logger

from snapcdc.aws.clients import client
from snapcdc.model.state import QueryStatus, Statement
from snapcdc.steps.check import evaluate_result

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    status = QueryStatus.from_dict(event.get("status"))
    query = Statement.from_dict(event["query"]) if event.get("query") else None
    expected_rows = query.expected_rows if query else None
    key = query.key if query else None
    result = evaluate_result(client("s3"), status.output_location or "", expected_rows, key)
    logger.info("export check passed", extra={**result, "table_id": event.get("table_id")})
    return result
