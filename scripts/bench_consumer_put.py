"""Benchmark: what one consumer write costs embedded, where it goes, and whether a second
process would help.

    .venv/bin/python scripts/bench_consumer_put.py              # 20,000 ops, 3 rounds
    .venv/bin/python scripts/bench_consumer_put.py --ops 50000 --rounds 5
    .venv/bin/python scripts/bench_consumer_put.py --worker-process --threads 2

The consumer applies each op with one conditional ``PutItem`` (``snapcdc.steps.consumer.apply_op``:
the item built, serialised for DynamoDB, written if the stored version is not newer). Embedded,
each call is validated and serialised by botocore, then answered by moto's backend through the
emulation's fast path (``snapcdc_local.emulator.dynamodb_direct``: moto's handler steps, no
request layer). This script applies ``--ops`` new rows of the
pipeline benchmark's shape (12 columns) on one thread, in two ways, interleaved over ``--rounds``:

- ``botocore alone``: a client whose ``before-call`` hook answers every call at once with an
  empty success, so the time is the op's own Python and botocore's validation and
  serialisation: the floor for any emulation that keeps botocore's checks on every request;
- ``emulated``: the same calls answered by moto with the emulation's patches installed, as in
  ``snapcdc local run`` (IAM evaluation aside: it is cached per principal and action).

Prints CPU microseconds per op (min over rounds), whether an emulated write is within its budget
(:data:`BUDGET_US`), and what that means for the 100,000 and 1,000,000-row first loads of
``scripts/bench_pipeline.py``; then one more emulated round split by where its wall time goes:
the direct PutItem, and within it moto's backend ``put_item`` (with that fast path off,
``SNAPCDC_FAST_PATHS=-dynamodb-put``: the dispatch to moto's response class and botocore's parse
of its answer).

``--worker-process`` adds the design where the second core takes botocore's half: the ops are
applied in a spawned process (``--threads`` threads, so that one can be in botocore while
another waits), whose ``before-call`` hook sends each validated, serialised request through a
pipe to this process, which answers it with the fast path's dispatch to moto; the worker parses
the answer. A pipe costs less than the HTTP of a local endpoint, so this bounds that design from
below: it prints the wall time per op and each process's CPU per op.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from unittest import mock

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "functions"))

TARGET_TABLE = "bench-target"
BUDGET_US = 250.0  # CPU per emulated write, on a 2-core machine
CREDENTIALS = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}


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


class WallClock:
    """Wall seconds spent inside the callables it wraps (the ops run on one thread)."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()

    def wrap(self, name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started

        return timed


def split_round(fast: Any, batch: list[dict[str, Any]]) -> dict[str, float]:
    """One emulated round's wall time per op: the whole op, the fast path's dispatch to moto,
    moto's backend ``put_item`` within it, and the parse of the answer."""
    from moto.dynamodb.models import DynamoDBBackend

    from snapcdc.steps.consumer import apply_op

    clock = WallClock()
    with ExitStack() as stack:
        stack.enter_context(
            mock.patch.object(fast, "_dispatch", clock.wrap("dispatch", fast._dispatch))
        )
        stack.enter_context(mock.patch.object(fast, "_parse", clock.wrap("parse", fast._parse)))
        stack.enter_context(
            mock.patch.object(
                DynamoDBBackend, "put_item", clock.wrap("backend", DynamoDBBackend.put_item)
            )
        )
        if fast.direct is not None:
            answer = fast.direct.answer
            stack.enter_context(
                mock.patch.object(fast.direct, "answer", clock.wrap("direct", answer))
            )
        started = time.perf_counter()
        for op in batch:
            apply_op(TARGET_TABLE, op)
        clock.seconds["op"] = time.perf_counter() - started
    return {name: seconds / len(batch) * 1e6 for name, seconds in clock.seconds.items()}


# Where an emulated write's CPU goes: (label, the function whose cumulative time it is). Nested
# parts are listed after the part they are in and subtracted from it.
PARTS = (
    ("botocore: validation", "botocore/validate.py", "validate"),
    ("botocore: serialisation", "botocore/serialize.py", "serialize_to_request"),
    ("botocore: endpoint resolution", "botocore/client.py", "_resolve_endpoint_ruleset"),
    ("the emulation's answer", "emulator/fastpath.py", "before_call"),
    ("  of which moto's backend put_item", "moto/dynamodb/models/__init__.py", "put_item"),
    ("the op's own Python (item, values)", "snapcdc/model/target_items.py", "target_item"),
)


def profile_round(batch: list[dict[str, Any]]) -> list[tuple[str, float]]:
    """One emulated round under cProfile: each part of :data:`PARTS` as a share of the op
    (cProfile slows every call alike, roughly: the shares, not the times, are what it tells)."""
    import cProfile
    import pstats

    from snapcdc.steps.consumer import apply_op

    profiler = cProfile.Profile()
    profiler.enable()
    for op in batch:
        apply_op(TARGET_TABLE, op)
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]

    def cumulative(path: str, name: str) -> float:
        return sum(
            row[3] for (file, _, func), row in stats.items() if file.endswith(path) and func == name
        )

    whole = cumulative("snapcdc/steps/consumer.py", "apply_op")
    shares = [(label, cumulative(path, name) / whole) for label, path, name in PARTS]
    rest = 1.0 - sum(share for label, share in shares if not label.startswith("  "))
    shares.append(("the rest of botocore's call (events, context, user agent)", rest))
    return shares


def worker(conn: Any, count: int, round_no: int, threads: int) -> None:
    """The worker process: apply ``count`` ops, every call answered through ``conn`` (the
    credentials are main's: a spawned process inherits its environment)."""
    import boto3

    from snapcdc.aws import clients
    from snapcdc.steps.consumer import apply_op
    from snapcdc_local.emulator.fastpath import FastPath

    parse = FastPath()._parse  # botocore's parser for the answer, as the fast path uses it
    send_lock = threading.Lock()
    waiting: dict[int, tuple[threading.Event, list[Any]]] = {}
    numbers = itertools.count()

    def read_answers() -> None:
        while True:
            try:
                number, answer = conn.recv()
            except EOFError:
                return
            done, box = waiting.pop(number)
            box.append(answer)
            done.set()

    def forward(model: Any, params: dict[str, Any], **_: Any) -> Any:
        number, done, box = next(numbers), threading.Event(), []
        waiting[number] = (done, box)
        request = (params["url"], params["method"], dict(params["headers"]), params["body"])
        with send_lock:
            conn.send((number, model.name, request))
        done.wait()
        status, headers, body = box[0]
        return parse(model, status, headers, body, params["url"])

    threading.Thread(target=read_answers, daemon=True).start()
    boto3._get_default_session().events.register_first("before-call", forward, "bench-forward")
    clients.reset_clients()
    batch = ops(count, round_no)
    wall, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(lambda op: apply_op(TARGET_TABLE, op), batch))
    with send_lock:
        conn.send(("done", time.perf_counter() - wall, time.process_time() - cpu))


def worker_round(fast: Any, count: int, round_no: int, threads: int) -> dict[str, float]:
    """``count`` ops applied by a spawned worker process, answered here (see the module)."""
    import multiprocessing

    from snapcdc.aws import clients
    from snapcdc_local.emulator.fastpath import _Routes

    operations = clients.client("dynamodb").meta.service_model
    routes = _Routes("dynamodb")
    context = multiprocessing.get_context("spawn")
    here, there = context.Pipe()
    process = context.Process(target=worker, args=(there, count, round_no, threads))
    process.start()
    cpu = None
    while True:
        message = here.recv()
        if message[0] == "done":
            _, wall, worker_cpu = message
            break
        if cpu is None:  # from the first call: the worker's start-up is not the parent's work
            cpu = time.process_time()
        number, operation, (url, method, headers, body) = message
        params = {"url": url, "method": method, "headers": headers, "body": body}
        model = operations.operation_model(operation)
        here.send((number, fast._dispatch(model, routes.method_for(url), params)))
    parent_cpu = time.process_time() - (cpu or time.process_time())
    process.join()
    return {
        "wall": wall / count * 1e6,
        "parent": parent_cpu / count * 1e6,
        "worker": worker_cpu / count * 1e6,
    }


def stored_items() -> int:
    """The items in the target table, counted by the emulated DynamoDB."""
    from snapcdc.aws import clients

    pages = (
        clients.client("dynamodb")
        .get_paginator("scan")
        .paginate(TableName=TARGET_TABLE, Select="COUNT")
    )
    return sum(page["Count"] for page in pages)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=20_000, help="ops per round (default 20000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument(
        "--worker-process",
        action="store_true",
        help="also apply the ops from a second process (see the module docstring)",
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="the worker process's threads (default 2)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also split one emulated round's CPU by part, under cProfile",
    )
    args = parser.parse_args()
    for name, value in CREDENTIALS.items():
        os.environ.setdefault(name, value)

    import boto3
    from moto import mock_aws

    from snapcdc.aws import clients
    from snapcdc_local.emulator import dynamodb, fastpath

    floor: list[float] = []
    emulated: list[float] = []
    with mock_aws(), dynamodb.installed(), ExitStack() as stack:
        fast = stack.enter_context(fastpath.installed(boto3._get_default_session()))
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
        split = split_round(fast, ops(args.ops, args.rounds))
        profile = profile_round(ops(args.ops, args.rounds + 2)) if args.profile else None
        in_worker = (
            worker_round(fast, args.ops, args.rounds + 1, args.threads)
            if args.worker_process
            else None
        )
        written = stored_items()
    expected = args.ops * (args.rounds + 1 + (in_worker is not None) + (profile is not None))
    if written != expected:  # every emulated op (split and worker rounds included) written once
        print(f"error: {written:,} items in {TARGET_TABLE}, expected {expected:,}", file=sys.stderr)
        return 1
    best_floor, best_emulated = min(floor), min(emulated)
    print(f"{args.ops:,} conditional PutItems per round, {args.rounds} rounds, one thread")
    print(f"  botocore alone (validate + serialise): {best_floor:7.0f} us CPU per op")
    print(f"  emulated (moto + the fast path):       {best_emulated:7.0f} us CPU per op")
    verdict = "within" if best_emulated <= BUDGET_US else "OVER"
    print(f"  budget: an emulated write at most {BUDGET_US:.0f} us CPU: {verdict}")
    for rows in (100_000, 1_000_000):
        print(
            f"  {rows:>9,} ops: at least {rows * best_floor / 1e6:6.1f} s in botocore alone, "
            f"{rows * best_emulated / 1e6:6.1f} s emulated"
        )
    if split.get("direct"):
        print(
            f"one more emulated round, wall us per op: {split['op']:.0f}, of which the direct "
            f"PutItem {split['direct']:.0f} (moto's backend put_item {split['backend']:.0f})"
        )
    else:
        print(
            f"one more emulated round, wall us per op: {split['op']:.0f}, of which the dispatch "
            f"to moto {split.get('dispatch', 0):.0f} (moto's backend put_item "
            f"{split['backend']:.0f}), the parse of its answer {split.get('parse', 0):.0f}"
        )
    if profile is not None:
        print(f"where an emulated write's {best_emulated:.0f} us CPU go (cProfile shares):")
        for label, share in profile:
            print(f"  {label:<60} {share * 100:5.1f}%  ~{share * best_emulated:4.0f} us")
    if in_worker is not None:
        print(
            f"applied from a worker process ({args.threads} thread{'s' * (args.threads != 1)}), "
            f"answered here: wall {in_worker['wall']:.0f} us per op; "
            f"CPU per op {in_worker['parent']:.0f} us here (moto), "
            f"{in_worker['worker']:.0f} us in the worker (botocore)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
