"""Re-starting a raw S3 event as a named execution of the same state machine.

EventBridge cannot name executions, so the first execution of an event names a second one
after tenant, table, version and the S3 sequencer and stops. A redelivered event produces the
same name and Step Functions refuses it (ExecutionAlreadyExists): one pipeline per object event.

(The start is done by a Lambda rather than the ``states:startExecution`` integration because
the local emulation's interpreter passes that integration's parameters to boto3 unchanged and
boto3 expects ``stateMachineArn``/``name``/``input``; a Lambda behaves the same in both places.)
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from snapcdc.model.events import ObjectCreatedEvent, execution_name, parse_key_parts


def route(
    sfn: Any, event: ObjectCreatedEvent, state_machine_arn: str, parent_arn: str
) -> dict[str, Any]:
    """Start the named execution; outcome ``started``, ``duplicate`` or ``unnamed``.

    ``unnamed`` means: run the pipeline in the calling execution (the registry's conditional
    write still stops duplicates there), as for an event that names no object (the handler's
    EventError).
    """
    name = execution_name(parse_key_parts(event.raw_key), event.object_sequencer)
    child_input = {
        "routed": True,
        "event": event.raw_event,
        # links the two executions in the Step Functions console
        "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID": parent_arn,
    }
    try:
        started = sfn.start_execution(
            stateMachineArn=state_machine_arn, name=name, input=json.dumps(child_input)
        )
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        if code == "ExecutionAlreadyExists":
            return {
                "outcome": "duplicate",
                "name": name,
                "reason": exc.response["Error"]["Message"],
            }
        if code in ("InvalidName", "InvalidExecutionInput"):
            return {"outcome": "unnamed", "name": name, "reason": f"{code}: {exc}"}
        raise
    return {"outcome": "started", "name": name, "execution_arn": started["executionArn"]}
