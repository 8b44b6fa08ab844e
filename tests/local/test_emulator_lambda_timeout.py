"""A Lambda function past its Timeout, as Lambda and Step Functions report it (plumbing stack).

Lambda ends the invocation at the function's Timeout and answers ``FunctionError: Unhandled``
with ``{"errorType": "Sandbox.Timedout", "errorMessage": "RequestId: … Error: Task timed out
after N.00 seconds"}`` (https://docs.aws.amazon.com/lambda/latest/dg/troubleshooting-invocation.html).
The handler is made slow with the runtime's override hook and the Timeout lowered through the
Lambda API, as an operator would.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from test_emulator_plumbing import executions_for, upload

SLOW_SECONDS = 2.5


@pytest.fixture
def slow(plumbing):
    """``slow(logical_id)``: the function's Timeout becomes 1 s and its handler sleeps 2.5 s."""
    lam = plumbing.client("lambda")
    changed = []

    def make_slow(logical_id):
        name = plumbing.stack.physical_id(logical_id)
        before = lam.get_function_configuration(FunctionName=name)["Timeout"]
        lam.update_function_configuration(FunctionName=name, Timeout=1)
        changed.append((name, before))

        def sleepy(event, context, handler):
            time.sleep(SLOW_SECONDS)
            return handler(event, context)

        plumbing.lambdas.overrides[name] = sleepy
        return name

    yield make_slow
    for name, before in changed:
        plumbing.lambdas.overrides.pop(name, None)
        lam.update_function_configuration(FunctionName=name, Timeout=before)


def test_invoke_past_the_timeout_answers_sandbox_timedout(plumbing, slow):
    name = slow("Echo")
    started = time.monotonic()

    response = plumbing.client("lambda").invoke(FunctionName=name, Payload=b"{}")

    assert time.monotonic() - started < SLOW_SECONDS  # ended at the Timeout, not when done
    assert response["FunctionError"] == "Unhandled"
    payload = json.loads(response["Payload"].read())
    assert payload["errorType"] == "Sandbox.Timedout"
    assert re.fullmatch(
        r"RequestId: [0-9a-f-]{36} Error: Task timed out after 1\.00 seconds",
        payload["errorMessage"],
    ), payload
    [record] = [i for i in plumbing.lambdas.invocations if i.function_name == name]
    assert record.timed_out and record.error_type == "Sandbox.Timedout"


def test_a_task_past_the_timeout_fails_with_the_lambda_error_and_is_caught(plumbing, slow):
    """moto's Step Functions names the error after the payload's ``errorType`` (AWS's best
    practice page says such errors may also show as ``Lambda.Unknown``: the stack catches
    ``States.ALL`` either way)."""
    slow("Fail")
    key = "t/timeout/v1/export.csv.gz"
    upload(plumbing, key)

    [execution] = executions_for(plumbing, key)

    assert execution["status"] == "SUCCEEDED"  # the plumbing machine catches the Fail task
    error = json.loads(execution["output"])["fail_error"]
    assert error["Error"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in json.loads(error["Cause"])["errorMessage"]
