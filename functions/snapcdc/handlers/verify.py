"""Verify: the steps of one verify round (see ``snapcdc.steps.verify``), one action a call.

Events (``run`` is begin's output, ``table`` an entry of ``run.tables``)::

    {"action": "begin", "request": {"tables": [...] | "all", "repair": bool, "round": n},
     "execution_arn": ...}
    {"action": "export" | "unlock", "run": ..., "execution_arn": ...}
    {"action": "export_state", "export": ...}
    {"action": "files", "run": ..., "export": ...}
    {"action": "convert", "run": ..., "shard": {"shard", "of", "cursor"}}
    {"action": "plan", "run": ..., "table": ...}
    {"action": "record", "run": ..., "table": ..., "export": ..., "queries": [...] | "error": ...}
    {"action": "fail_round", "run": ..., "error": {"Error", "Cause"}}
    {"action": "next_round", "run": ..., "compared": [...]}
    {"action": "report", "request": ..., "execution_arn": ...}
"""

from aws_lambda_powertools import Logger

from snapcdc.aws.leases import utc_now
from snapcdc.model.settings import Settings
from snapcdc.steps import verify

logger = Logger()

ACTIONS = ("begin", "export", "unlock", "export_state", "files", "convert", "plan", "record",
           "fail_round", "next_round", "report")  # fmt: skip


@logger.inject_lambda_context
def handler(event, context):
    settings = Settings.from_env().require("registry_table")
    action = event.get("action")
    if action == "begin":
        result = verify.begin(event["request"], event["execution_arn"], settings, utc_now())
    elif action == "export":
        result = verify.export(event["run"], event["execution_arn"], settings)
    elif action == "unlock":
        result = verify.unlock(event["run"], event["execution_arn"], settings)
    elif action == "export_state":
        result = verify.export_state(event["export"], settings)
    elif action == "files":
        result = verify.list_files(event["run"], event["export"])
    elif action == "convert":
        result = verify.convert(event["run"], event["shard"], context.get_remaining_time_in_millis)
    elif action == "plan":
        result = verify.plan_compare(event["run"], event["table"], settings)
    elif action == "record":
        result = verify.record(
            event["run"],
            event["table"],
            event.get("queries"),
            event.get("export") or {},
            settings,
            utc_now(),
            error=event.get("error"),
        )
    elif action == "fail_round":
        result = verify.fail_round(event["run"], event.get("error") or {}, settings)
    elif action == "next_round":
        result = verify.next_round(event["run"], event.get("compared") or [])
    elif action == "report":
        result = verify.report(event["request"], event["execution_arn"], settings)
    else:
        raise ValueError(f"unknown action {action!r}: expected one of {', '.join(ACTIONS)}")
    logger.info("verify", extra={"action": action})
    return result
