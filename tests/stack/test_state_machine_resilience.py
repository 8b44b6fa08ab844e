"""What the state machine does about failures its Catch cannot see and errors worth retrying.

- every Lambda Task retries the transient Lambda service errors Step Functions' best practice
  lists (https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html);
- the Athena statements retry AthenaThrottled with capped backoff and full jitter
  (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html).
"""

from __future__ import annotations

import json

from stacktemplate import ASL

DEFINITION = json.loads(ASL.read_text())

# Lambda.TooManyRequestsException too: Lambda's concurrency limit is as transient.
LAMBDA_TRANSIENT = {
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}


def all_states(states=None):
    states = DEFINITION["States"] if states is None else states
    for name, state in states.items():
        yield name, state
        if state["Type"] == "Map":
            yield from all_states(state["ItemProcessor"]["States"])


def lambda_tasks():
    return {
        name: state
        for name, state in all_states()
        if state["Type"] == "Task" and state["Resource"].endswith("FunctionArn}")
    }


def test_every_lambda_task_retries_every_transient_lambda_error():
    tasks = lambda_tasks()
    assert len(tasks) == 9
    for name, state in tasks.items():
        retried = {e for r in state.get("Retry", []) for e in r["ErrorEquals"]}
        missing = LAMBDA_TRANSIENT - retried
        assert not missing, f"{name} does not retry {sorted(missing)}"
        # before any Catch sees them (States.ALL in a Retry would retry real failures too)
        assert "States.ALL" not in retried, name


def test_athena_throttling_is_retried_with_capped_backoff_and_full_jitter():
    tasks = lambda_tasks()
    for name in ("StartQuery", "PollQuery"):
        [retrier] = [r for r in tasks[name]["Retry"] if "AthenaThrottled" in r["ErrorEquals"]]
        assert retrier["JitterStrategy"] == "FULL"
        assert retrier["BackoffRate"] > 1 and retrier["MaxDelaySeconds"] <= 60
        assert retrier["MaxAttempts"] >= 10  # minutes of waiting for the quota, not seconds
    others = {
        n for n, s in tasks.items() for r in s["Retry"] if "AthenaThrottled" in r["ErrorEquals"]
    }
    assert others == {"StartQuery", "PollQuery"}
