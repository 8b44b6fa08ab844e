"""Repair: write the rows a verify found drifted, a page at a time (``snapcdc.steps.repair``).

Event: ``{"run": <verify round>, "table": <its compare summary>, "cursor": 0}``; returns
``{"cursor", "done", "applied", "stale", "skipped", "failed"}`` (this page's counts, also
ADDed to the table's verify record).
"""

from aws_lambda_powertools import Logger

from snapcdc.model.contract import TableSchema
from snapcdc.model.settings import Settings
from snapcdc.steps.repair import add_counts, repair_page
from snapcdc.steps.verify import table_entry

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    settings = Settings.from_env().require("registry_table", "target_table")
    run, table = event["run"], event["table"]
    entry = table_entry(run, table)
    page = repair_page(
        table["result"],
        TableSchema.from_dict(entry["schema"]),
        entry["table_id"],
        entry["version"],
        run["run_id"],
        int(event.get("cursor") or 0),
        settings,
        context.get_remaining_time_in_millis,
    )
    add_counts(entry["table_id"], entry["sk"], page, table_name=settings.registry_table)
    logger.info("repair", extra={"table_id": entry["table_id"], **page})
    return page
