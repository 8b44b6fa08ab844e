"""Rows too large for AWS, keys outside the contract, a Lambda past its Timeout: the real stack.

Table ``acme/wide`` (headerless, ``;``, key ``id``) receives, in this order: a good first load;
a version with a 500 KB field (too large for a DynamoDB item); one with a 2,100-character key
(too long for a DynamoDB partition key); a good V4; ``V%34``, which URL-decoded is V4's key; a
key with ``+`` and one with a space; a version whose check runs past the Check function's
Timeout (lowered to 1 s, the handler made slow); and a last good version. Every bad one fails
with a reason naming the key or the row, publishes nothing, and does not block the next.
"""

from __future__ import annotations

import importlib
import time

import pytest
from datasets import write_config, write_export
from test_local_run_failures import published_versions

COLUMNS = ["id", "name", "note"]
GOOD = [["1", "apple", "a"], ["2", "pear", ""]]
LAST = [["1", "apple", "b"], ["3", "plum", "c"]]
LONG_KEY = "k" * 2100
SEQUENCE = [
    ("acme/wide/V1/part-0.csv.gz", GOOD, "SUCCEEDED", []),
    (
        "acme/wide/V2/part-0.csv.gz",
        [*GOOD, ["17", "x" * 500_000, ""]],
        "FAILED",
        ["row with key 17 is up to 50", "as a target item", "DynamoDB items are limited"],
    ),
    (
        "acme/wide/V3/part-0.csv.gz",
        [*GOOD, [LONG_KEY, "long", ""]],
        "FAILED",
        ["(2,100 characters) is up to", "DynamoDB partition keys are limited to 2,048 bytes"],
    ),
    ("acme/wide/V4/part-0.csv.gz", GOOD, "SUCCEEDED", []),
    (
        "acme/wide/V%34/part-0.csv.gz",
        GOOD,
        "FAILED",
        ["invalid version 'V%34'", "(object key 'acme/wide/V%34/part-0.csv.gz', as the event"],
    ),
    (
        "acme/wide/V+5/part-0.csv.gz",
        GOOD,
        "FAILED",
        ["(object key 'acme/wide/V+5/part-0.csv.gz', as the event"],
    ),
    (
        "acme/wide/V 6/part-0.csv.gz",
        GOOD,
        "FAILED",
        ["(object key 'acme/wide/V 6/part-0.csv.gz', as the event"],
    ),
    ("acme/wide/V7/part-0.csv.gz", GOOD, "FAILED", ["Task timed out after 1.00 seconds"]),
    ("acme/wide/V8/part-0.csv.gz", LAST, "SUCCEEDED", []),
]
SLOW_CHECK = "acme/wide/V7/part-0.csv.gz"


@pytest.fixture(scope="module")
def limits_run(tmp_path_factory):
    from snapcdc_local.cli.run import RunOptions, run_pipeline

    data = tmp_path_factory.mktemp("data")
    write_config(
        data, "acme", "wide", {"columns": COLUMNS, "key": ["id"], "delimiter": ";", "header": False}
    )
    for key, rows, _, _ in SEQUENCE:
        write_export(data, key, rows)
    (data / "sequence.txt").write_text("\n".join(key for key, *_ in SEQUENCE) + "\n")
    seen: dict = {}
    keys = [key for key, *_ in SEQUENCE]

    def after_upload(upload):
        aws = seen["aws"]
        check = aws.stack.physical_id("CheckFunction")
        lam = aws.client("lambda")
        done = seen.setdefault("done", [])
        done.append(upload.key)
        following = keys[len(done)] if len(done) < len(keys) else None
        if following == SLOW_CHECK:  # the next version's check outlives a 1 s Timeout
            seen["timeout"] = lam.get_function_configuration(FunctionName=check)["Timeout"]
            lam.update_function_configuration(FunctionName=check, Timeout=1)

            def slow(event, context, handler):
                time.sleep(2.5)
                return handler(event, context)

            aws.lambdas.overrides[check] = slow
        elif upload.key == SLOW_CHECK:
            aws.lambdas.overrides.pop(check)
            lam.update_function_configuration(FunctionName=check, Timeout=seen["timeout"])
        seen["published"] = published_versions(aws)
        locks = aws.client("dynamodb").scan(TableName=aws.stack.outputs["LockTableName"])["Items"]
        seen.setdefault("locks", []).append(locks)
        applying = importlib.import_module("snapcdc.steps.consumer")
        rows = applying.read_rows(aws.stack.outputs["TargetTableName"], "acme/wide")
        seen["target"] = sorted([row[c] for c in COLUMNS] for row in rows)
        seen["discarded"] = list(aws.kinesis.discarded)

    result = run_pipeline(
        RunOptions(data_dir=data, sequence=data / "sequence.txt"),
        on_upload=after_upload,
        emulator_hook=lambda aws: seen.update(aws=aws),
    )
    return result, seen


def test_every_upload_ends_as_expected_with_a_reason_naming_the_key(limits_run):
    result, _ = limits_run
    got = [(u.key, u.status) for u in result.uploads]
    assert got == [(key, status) for key, _, status, _ in SEQUENCE]
    for upload, (key, _, _, fragments) in zip(result.uploads, SEQUENCE, strict=True):
        for fragment in fragments:
            assert fragment in (upload.error or ""), (key, upload.error)


def test_bad_versions_publish_nothing_and_never_block_the_next(limits_run):
    _, seen = limits_run
    assert seen["published"] == {"V1": 2, "V8": 3}  # V4 changes nothing; V8: update, delete, insert
    assert all(locks == [] for locks in seen["locks"])
    assert seen["target"] == sorted(LAST)
    assert seen["discarded"] == []  # no record refused by the consumer's writes
