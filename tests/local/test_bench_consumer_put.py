"""``scripts/bench_consumer_put.py``: it applies the ops it says, in process and from a worker
process, and checks that every one reached the emulated table.

Not timed: the figures are the benchmark's business; here only that both ways write through the
emulation and that the benchmark refuses a count that is wrong.
"""

from __future__ import annotations

import subprocess
import sys

from datasets import REPO

SCRIPT = REPO / "scripts" / "bench_consumer_put.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_both_ways_write_every_op_through_the_emulation():
    result = run("--ops", "40", "--rounds", "1", "--worker-process", "--threads", "2", "--profile")
    assert result.returncode == 0, result.stderr
    assert "40 conditional PutItems per round" in result.stdout
    assert "of which the direct PutItem" in result.stdout  # the consumer's write, answered directly
    assert "moto's backend put_item" in result.stdout
    assert "applied from a worker process (2 threads)" in result.stdout
    assert "botocore: validation" in result.stdout  # --profile's split


# The benchmark's functions, loaded as a module, with the table's count one short.
ONE_SHORT = """
import runpy, sys
bench = runpy.run_path(sys.argv[1], run_name="bench")
bench["main"].__globals__["stored_items"] = lambda: 19
sys.argv = ["bench_consumer_put.py", "--ops", "10", "--rounds", "1"]
sys.exit(bench["main"]())
"""


def test_a_missing_write_fails_the_benchmark():
    result = subprocess.run(
        [sys.executable, "-c", ONE_SHORT, str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "19 items in bench-target, expected 20" in result.stderr
