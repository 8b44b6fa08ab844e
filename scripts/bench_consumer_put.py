"""Benchmark: what one consumer write costs embedded, and how much of it is botocore's.

    .venv/bin/python scripts/bench_consumer_put.py              # 20,000 ops, 3 rounds
    .venv/bin/python scripts/bench_consumer_put.py --ops 50000 --rounds 5

The consumer applies each op with one conditional ``PutItem`` (``snapcdc.steps.consumer.apply_op``:
the item built, serialised for DynamoDB, written if the stored version is not newer). Embedded,
each call is validated and serialised by botocore, then answered by moto through the emulation's
fast path (``snapcdc_local.emulator.fastpath``). This script applies ``--ops`` new rows of the
pipeline benchmark's shape (12 columns) on one thread, in two ways, interleaved over ``--rounds``:

- ``botocore alone``: a client whose ``before-call`` hook answers every call at once with an
  empty success, so the time is the op's own Python and botocore's validation and
  serialisation: the floor for any emulation that keeps botocore's checks on every request;
- ``emulated``: the same calls answered by moto with the emulation's patches installed, as in
  ``snapcdc local run`` (IAM evaluation aside: it is cached per principal and action).

Prints CPU microseconds per op (min over rounds) and what that floor means for the 100,000 and
1,000,000-row first loads of ``scripts/bench_pipeline.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "functions"))

TARGET_TABLE = "bench-target"


def ops(count: int, round_no: int) -> list[dict[str, Any]]:
    """New rows (keys unique per round) as the publisher sends them."""
    return [
        {
            "op": "INSERT",
            "table_id": "bench/wide",
            "version": "V0001",
            "key": {"id": f"{round_no}-{n}"},
            "row": {"id": f"{round_no}-{n}"} | {f"c{j:02d}": f"value {n} {j}" for j in range(11)},
            "source": "bench/wide/V0001/export.csv.gz",
            "sequencer": "0062E7A8A9B4A7C1D2",
        }
        for n in range(count)
    ]


def cpu_per_op(batch: list[dict[str, Any]]) -> float:
    from snapcdc.steps.consumer import apply_op

    started = time.process_time()
    for op in batch:
        apply_op(TARGET_TABLE, op)
    return (time.process_time() - started) / len(batch) * 1e6


def answered_at_once(**_: Any) -> Any:
    from botocore.awsrequest import AWSResponse

    return AWSResponse("https://dynamodb", 200, {}, None), {"ResponseMetadata": {}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=20_000, help="ops per round (default 20000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    args = parser.parse_args()
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        os.environ.setdefault(name, value)

    import boto3
    from moto import mock_aws

    from snapcdc.aws import clients
    from snapcdc_local.emulator import dynamodb, fastpath

    floor: list[float] = []
    emulated: list[float] = []
    with mock_aws(), dynamodb.installed(), ExitStack() as stack:
        stack.enter_context(fastpath.installed(boto3._get_default_session()))
        clients.reset_clients()
        clients.client("dynamodb").create_table(
            TableName=TARGET_TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for round_no in range(args.rounds):
            emulated.append(cpu_per_op(ops(args.ops, round_no)))
            events = clients.client("dynamodb").meta.events
            events.register_first("before-call.dynamodb.PutItem", answered_at_once, "bench")
            try:
                floor.append(cpu_per_op(ops(args.ops, round_no)))
            finally:
                events.unregister("before-call.dynamodb.PutItem", unique_id="bench")
    best_floor, best_emulated = min(floor), min(emulated)
    print(f"{args.ops:,} conditional PutItems per round, {args.rounds} rounds, one thread")
    print(f"  botocore alone (validate + serialise): {best_floor:7.0f} us CPU per op")
    print(f"  emulated (moto + the fast path):       {best_emulated:7.0f} us CPU per op")
    for rows in (100_000, 1_000_000):
        print(
            f"  {rows:>9,} ops: at least {rows * best_floor / 1e6:6.1f} s in botocore alone, "
            f"{rows * best_emulated / 1e6:6.1f} s emulated"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
