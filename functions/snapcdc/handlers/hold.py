"""Hold: hold a version that would delete too much, and resume it (see ``snapcdc.steps.hold``).

Events: ``{"action": "guard", "state": <the execution state after the queries>}``,
``{"action": "resume", "resume": {"action": "approve" | "reject", "table_id", "sk"},
"execution_arn": ...}`` and ``{"action": "check_head", "state": <the approved state>}``.
"""

from aws_lambda_powertools import Logger

from snapcdc.aws.leases import utc_now
from snapcdc.model.settings import Settings
from snapcdc.model.state import ExecutionState, ResumeRequest, StateError
from snapcdc.steps.hold import ResumeRefused, check_head, guard, resume

logger = Logger()


@logger.inject_lambda_context
def handler(event, context):
    settings = Settings.from_env().require("registry_table")
    action = event.get("action")
    if action == "guard":
        result = guard(ExecutionState.from_dict(event["state"]), settings, utc_now())
    elif action == "resume":
        try:
            request = ResumeRequest.from_dict(event["resume"])
        except StateError as exc:
            raise ResumeRefused(str(exc)) from None
        result = resume(request, event["execution_arn"], settings, utc_now())
    elif action == "check_head":
        result = check_head(ExecutionState.from_dict(event["state"]), settings, utc_now())
    else:
        raise ValueError(f"unknown action {action!r}: expected guard, resume or check_head")
    logger.info(
        "hold", extra={"action": action, "status": result.get("status"), "held": result.get("held")}
    )
    return result
