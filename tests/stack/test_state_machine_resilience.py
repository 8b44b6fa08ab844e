"""What the state machine does about failures its Catch cannot see and errors worth retrying.

- every Lambda Task retries the transient Lambda service errors Step Functions' best practice
  lists (https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html);
- the Athena statements retry AthenaThrottled with capped backoff and full jitter
  (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html).
"""

from __future__ import annotations

import json

from stacktemplate import ASL, asl_states

DEFINITION = json.loads(ASL.read_text())

# Lambda.TooManyRequestsException too: Lambda's concurrency limit is as transient.
LAMBDA_TRANSIENT = {
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}


def lambda_tasks():
    return {
        name: state
        for name, state in asl_states()
        if state["Type"] == "Task" and state["Resource"].endswith("FunctionArn}")
    }


def test_every_lambda_task_retries_every_transient_lambda_error():
    tasks = lambda_tasks()
    assert tasks
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


# -- Step Functions' 25,000-event history quota ------------------------------------------------
# https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html ; past it the
# execution FAILS with States.Runtime, which no Catch sees. Events per state as Step Functions
# writes them: a Task enters, is scheduled, starts, succeeds or fails, exits (5); a Pass, Choice
# or Wait enters and exits (2); every retry of a Task adds scheduled, started, failed (3).
HISTORY_QUOTA = 25_000
EVENTS = {"Task": 5, "Pass": 2, "Choice": 2, "Wait": 2}
MAX_STATEMENTS = 10  # the plan has at most 7 (planning.py); room for more


def loop_events(states, start, first_exit):
    """History events of one turn of the loop that leaves ``start`` by ``first_exit``."""
    events, name, step = 0, start, first_exit
    while True:
        events += EVENTS[states[name]["Type"]]
        name = step(states[name])
        if name == start:
            return events
        step = lambda s: s.get("Next") or s["Default"]  # noqa: E731


def test_no_parameter_combination_reaches_the_history_event_quota():
    from stacktemplate import load_template

    from snapcdc.steps.query import POLL_WAIT_CAP_SECONDS

    states = DEFINITION["States"]
    busy = next(
        c["Next"]
        for c in states["Lock"]["Catch"]
        if "DynamoDB.ConditionalCheckFailedException" in c["ErrorEquals"]
    )
    lock_turn = loop_events(states, "Lock", lambda s: busy)
    items = states["RunQueries"]["ItemProcessor"]["States"]
    poll_turn = loop_events(items, "QueryState", lambda s: s["Default"])
    assert (lock_turn, poll_turn) == (11, 9)

    parameters = load_template()["Parameters"]
    lock_attempts = parameters["LockMaxAttempts"]["MaxValue"]
    # Polls: the waits double from QueryPollSeconds to the cap, so within the execution's
    # timeout there are at most TimeoutSeconds / cap polls at the cap, plus the doubling steps
    # (log2 of cap / 1 s, 6) of every statement.
    doubling = (POLL_WAIT_CAP_SECONDS - 1).bit_length()
    polls = DEFINITION["TimeoutSeconds"] // POLL_WAIT_CAP_SECONDS + doubling * MAX_STATEMENTS
    # Everything else once: every state of the definition, each statement's Map iteration
    # (StartQuery, QueryState, IsCheck, EvaluateCheck, QueryDone, 2 iteration events), and
    # every Lambda retry (5 per Task at most; AthenaThrottled 12 per statement).
    once = sum(EVENTS.get(s["Type"], 4) for s in states.values())
    per_statement = 5 + 2 + 2 + 5 + 2 + 2 + 3 * (5 + 12)
    retries = 3 * 5 * len(lambda_tasks())
    # Publish pages: each page but the last runs until 30 s before the function's 300 s
    # timeout or sends 1,000,000 records; 21600 s / 270 s = 80 pages of Publish + Published.
    publish = 80 * (5 + 2)
    total = (
        lock_attempts * lock_turn
        + polls * poll_turn
        + once
        + MAX_STATEMENTS * per_statement
        + retries
        + publish
    )
    assert lock_attempts * lock_turn == 16_500
    assert polls * poll_turn == 3_780
    assert total < HISTORY_QUOTA, total
    print(f"history events at most {total} of {HISTORY_QUOTA}")


def test_poll_waits_double_from_query_poll_seconds_up_to_the_cap(aws, monkeypatch):
    monkeypatch.setenv("SNAPCDC_QUERY_START_WAIT_SECONDS", "0")
    monkeypatch.setenv("SNAPCDC_QUERY_POLL_SECONDS", "5")
    aws.athena_bridge.start_wait = 0
    aws.athena_engine.hold()  # the statement runs until released: eight polls see it running
    try:
        query = {"name": "delta", "kind": "ops", "sql": "SELECT 1"}
        status = aws.invoke(
            "query",
            {"action": "start", "query": query, "index": 0,
             "execution_arn": "arn:aws:states:us-east-1:123456789012:execution:pipeline:q"},
        )  # fmt: skip
        waits = [status["wait_seconds"]]
        for _ in range(8):
            status = aws.invoke("query", {"action": "poll", "query": query, "status": status})
            waits.append(status["wait_seconds"])
    finally:
        aws.athena_engine.release()
    assert status["state"] in ("QUEUED", "RUNNING")
    assert waits[:5] == [5, 10, 20, 40, 60] and set(waits[4:]) == {60}
