"""``scripts/bench_pipeline.py``: it runs the pipeline as a process and checks what it did.

Not timed: the budgets are the benchmark's business; here only that it runs and that its
checks refuse a target or a report that is wrong.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import re
import sys

import pytest
from datasets import REPO


@pytest.fixture(scope="module")
def bench():
    path = REPO / "scripts" / "bench_pipeline.py"
    spec = importlib.util.spec_from_file_location("bench_pipeline", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def write_csv(path, rows, compress=False):
    opener = gzip.open if compress else open
    with opener(path, "wt", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


EXPORT = [["id", "a"], ["k1", "x"], ["k2", "y"]]


def test_the_benchmark_runs_the_pipeline_and_checks_the_target(bench, tmp_path, capsys):
    assert bench.main(["--rows", "200", "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "target equal to V2, every op published and applied once" in out
    [v1, v2] = [
        line.split() for line in out.splitlines() if line.split()[:1] in (["V0001"], ["V0002"])
    ]
    assert (v1[1], v2[1]) == ("200", "4")  # ops: a first load of 200 rows; 1 + 2 + 1


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ([["id", "a"], ["k1", "x"]], "the target has 1 rows, V2 2: 1 row(s) of V2 missing"),
        (
            [["id", "a"], ["k1", "x"], ["k2", "z"]],
            "1 row(s) of V2 missing or different, 1 row(s) not in V2",
        ),
        (
            [["id", "b"], ["k1", "x"], ["k2", "y"]],
            "target columns ['id', 'b'] != the export's ['id', 'a']",
        ),
    ],
)
def test_a_target_that_is_not_v2_is_refused(bench, tmp_path, target, message):
    export = write_csv(tmp_path / "v2.csv.gz", EXPORT, compress=True)
    bench.check_target(write_csv(tmp_path / "same.csv", EXPORT), export)
    with pytest.raises(bench.BenchError, match=re.escape(message)):
        bench.check_target(write_csv(tmp_path / "dump.csv", target), export)


def test_a_report_with_ops_not_applied_is_refused(bench):
    expected = {"INSERT": 1, "UPDATE": 2, "DELETE": 1}

    def version(name, inserts, updates, deletes, applied=None):
        ops = inserts + updates + deletes
        applied = ops if applied is None else applied
        counts = {"inserts": inserts, "updates": updates, "deletes": deletes}
        return {"version": name, "status": "SUCCEEDED", **counts, "published": ops,
                "applied": applied, "stale": 0}  # fmt: skip

    good = {"versions": [version("V0001", 200, 0, 0), version("V0002", 1, 2, 1)]}
    bench.check_report(good, 200, expected)
    short = {"versions": [version("V0001", 200, 0, 0), version("V0002", 1, 2, 1, applied=3)]}
    with pytest.raises(bench.BenchError, match="V0002: .* applied 3;"):
        bench.check_report(short, 200, expected)
    skipped = {
        "versions": [
            version("V0001", 200, 0, 0),
            {**version("V0002", 0, 0, 0), "status": "SKIPPED"},
        ]
    }
    with pytest.raises(bench.BenchError, match="expected both SUCCEEDED"):
        bench.check_report(skipped, 200, expected)
