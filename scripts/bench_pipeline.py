"""Benchmark: the whole pipeline, ``snapcdc local run``, on a generated V1 -> V2 pair.

    .venv/bin/python scripts/bench_pipeline.py                     # 100,000 rows, once
    .venv/bin/python scripts/bench_pipeline.py --rows 1000000 --repeat 3

The table has ``--rows`` rows and 12 columns (the exports of ``scripts/bench_delta.py``: ``id``
plus 11 text columns); V2 updates 1% of V1's rows, inserts 0.5% more and deletes 0.5%, in a
shuffled order. Both versions go to a DATA_DIR laid out like the import bucket
(``bench/wide/_table.json``, ``bench/wide/V0001/export.csv.gz``, ``bench/wide/V0002/...``).

Each repeat runs ``snapcdc local run DATA_DIR --report FILE --dump-target DIR`` as a process of
its own (interpreter start-up, deploying the stack and reading the target back included: that
is what a user waits for), then checks what it did: both versions SUCCEEDED with the generator's
op counts, every op published and applied once, and the target table read back equal to V2, row
for row (redelivered ops, refused as stale, are shown, not failed). Beside it,
``snapcdc diff V1 V2 --key id --out ops.csv``, also a whole process, times the bare delta of
the same pair.

Printed per repeat, from the run's own report: the whole process's wall time, the run's own
split (deploying the stack, the uploads, the summary and dump), and per version its seconds
(upload to settled), the stages (``delta``: Plan to Publish, the Athena queries and checks;
``publish``: Publish's pages; ``apply``: from the first page to the last op counted by the
consumer; see ``snapcdc_local.cli.run_progress.stage_seconds``) and ops/s (ops / apply). Then
the medians over the repeats, and the budget for this size if there is one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from bench_delta import VALUE_COLUMNS, generate  # noqa: E402 - a sibling script

TABLE = "bench/wide"
VERSIONS = ("V0001", "V0002")
# Whole-process seconds for V1 + V2 (issue "Throughput"), on the reference 2-core machine.
BUDGETS = {100_000: 50.0, 1_000_000: 500.0}  # whole process, V1 + V2, on a 2-core machine
STAGES = ("delta", "publish", "apply")


class BenchError(Exception):
    """The pipeline did not do what the benchmark checks; the run's figures do not count."""


def data_dir(workdir: Path, rows: int) -> tuple[Path, dict[str, Any]]:
    """DATA_DIR with the two versions of the table (generated once per size, then reused)."""
    files = generate(workdir, rows)
    data = workdir / f"pipeline_{rows}"
    table = data / TABLE
    for version, name in zip(VERSIONS, ("old_gz", "new_gz"), strict=True):
        target = table / version / "export.csv.gz"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(files[name], target)
    (table / "_table.json").write_text(json.dumps({"key": ["id"]}) + "\n", encoding="utf-8")
    return data, files


def snapcdc_command(*args: str) -> list[str]:
    """The ``snapcdc`` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("snapcdc")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "snapcdc_local", *args]


def run_process(command: list[str]) -> tuple[float, str]:
    """Run ``command`` with this checkout's code first on the path; wall seconds and stdout."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO / "functions"), *filter(None, [os.environ.get("PYTHONPATH")])]
    )}  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise BenchError(
            f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        )
    return seconds, done.stdout


def check_report(report: dict[str, Any], rows: int, expected: dict[str, int]) -> None:
    """Both versions SUCCEEDED with the generator's counts, every op published and applied."""
    versions = report["versions"]
    want = [
        ("V0001", {"inserts": rows, "updates": 0, "deletes": 0}),
        ("V0002", {"inserts": expected["INSERT"], "updates": expected["UPDATE"],
                   "deletes": expected["DELETE"]}),
    ]  # fmt: skip
    got = [(v["version"], v["status"]) for v in versions]
    if got != [(version, "SUCCEEDED") for version, _ in want]:
        errors = [v.get("error") or v.get("reason") for v in versions]
        raise BenchError(f"versions ended {got} (expected both SUCCEEDED): {errors}")
    for version, (_, counts) in zip(versions, want, strict=True):
        ops = sum(counts.values())
        seen = {name: version[name] for name in counts}
        # stale deliveries (a batch redelivered: Lambda retries) cost time but change nothing
        if seen != counts or (version["published"], version["applied"]) != (ops, ops):
            raise BenchError(
                f"{version['version']}: counts {seen}, published {version['published']}, "
                f"applied {version['applied']}; expected {counts}, {ops} published and applied"
            )


def check_target(dump: Path, export: Path) -> None:
    """The target table as read back (``--dump-target``) has exactly the export's rows."""
    if not dump.is_file():
        raise BenchError(f"the run wrote no dump of the target table at {dump}")
    con = duckdb.connect()
    try:
        for name, path in (("target", dump), ("export", export)):
            literal = "'" + str(path).replace("'", "''") + "'"  # (a view takes no parameters)
            con.execute(
                f"CREATE VIEW {name} AS SELECT * FROM read_csv({literal}, header = true, "
                "delim = ',', quote = '\"', all_varchar = true)"
            )
        columns = [[row[0] for row in con.execute(f"DESCRIBE {n}").fetchall()]
                   for n in ("target", "export")]  # fmt: skip
        if columns[0] != columns[1]:
            raise BenchError(f"target columns {columns[0]} != the export's {columns[1]}")
        [(target_rows, export_rows, missing, extra)] = con.execute(
            "SELECT (SELECT count(*) FROM target), (SELECT count(*) FROM export), "
            "(SELECT count(*) FROM (SELECT * FROM export EXCEPT ALL SELECT * FROM target)), "
            "(SELECT count(*) FROM (SELECT * FROM target EXCEPT ALL SELECT * FROM export))"
        ).fetchall()
    finally:
        con.close()
    if missing or extra or target_rows != export_rows:
        raise BenchError(
            f"the target has {target_rows:,} rows, V2 {export_rows:,}: {missing:,} row(s) of V2 "
            f"missing or different, {extra:,} row(s) not in V2"
        )


def run_once(data: Path, files: dict[str, Any], rows: int, scratch: Path) -> dict[str, Any]:
    """One ``snapcdc local run`` and one ``snapcdc diff``, checked; their figures."""
    report_file, dump = scratch / "report.json", scratch / "dump"
    shutil.rmtree(dump, ignore_errors=True)
    wall, _ = run_process(
        snapcdc_command("local", "run", str(data), "--report", str(report_file),
                        "--dump-target", str(dump))
    )  # fmt: skip
    report = json.loads(report_file.read_text(encoding="utf-8"))
    check_report(report, rows, files["expected"])
    check_target(dump / f"{TABLE}.csv", files["new_gz"])
    diff_wall, diff_out = run_process(
        snapcdc_command("diff", str(files["old_gz"]), str(files["new_gz"]), "--key", "id",
                        "--out", str(scratch / "ops.csv"))
    )  # fmt: skip
    counts = {op: int(n.replace(",", "")) for op, n, *_ in map(str.split, diff_out.splitlines())
              if op in ("INSERT", "UPDATE", "DELETE")}  # fmt: skip
    if counts != files["expected"]:
        raise BenchError(f"snapcdc diff counted {counts}, expected {files['expected']}")
    return {"wall": wall, "diff": diff_wall, "report": report}


def version_figures(version: dict[str, Any]) -> dict[str, float]:
    ops = version["inserts"] + version["updates"] + version["deletes"]
    figures = {"seconds": version["seconds"], **{s: version["stages"].get(s, 0.0) for s in STAGES}}
    figures["ops"] = ops
    figures["stale"] = version["stale"]  # redelivered ops, refused as already applied
    figures["ops/s"] = ops / figures["apply"] if figures["apply"] else 0.0
    return figures


def print_run(label: str, wall: float, diff: float, seconds: dict[str, float],
              versions: list[dict[str, float]]) -> None:  # fmt: skip
    rest = wall - sum(seconds.values())
    print(
        f"{label}: whole process {wall:.2f} s (deploy {seconds.get('deploy', 0):.2f}, uploads "
        f"{seconds.get('uploads', 0):.2f}, summary + dump {seconds.get('summary', 0):.2f}, "
        f"start-up + exit {rest:.2f}); snapcdc diff alone {diff:.2f} s"
    )
    print(f"  {'version':<8} {'ops':>10} {'seconds':>8} {'delta':>7} {'publish':>8} "
          f"{'apply':>7} {'ops/s':>9} {'stale':>7}")  # fmt: skip
    for name, v in zip(VERSIONS, versions, strict=True):
        print(
            f"  {name:<8} {v['ops']:>10,} {v['seconds']:>8.2f} {v['delta']:>7.2f} "
            f"{v['publish']:>8.2f} {v['apply']:>7.2f} {v['ops/s']:>9,.0f} {v['stale']:>7,.0f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows of V1 (default 100000)")
    parser.add_argument("--repeat", type=int, default=1, help="runs to take medians of")
    parser.add_argument("--workdir", type=Path, default=REPO / ".snapcdc" / "bench")
    args = parser.parse_args(argv)
    if args.rows < 200 or args.repeat < 1:
        parser.error("--rows must be at least 200 (V2 changes 1/200 of them) and --repeat >= 1")

    data, files = data_dir(args.workdir, args.rows)
    expected = files["expected"]
    print(
        f"table: {args.rows:,} rows x {VALUE_COLUMNS + 1} columns; V2: {expected['UPDATE']:,} "
        f"updates, {expected['INSERT']:,} inserts, {expected['DELETE']:,} deletes "
        f"(gzip {files['old_gz'].stat().st_size / 1e6:.1f} MB + "
        f"{files['new_gz'].stat().st_size / 1e6:.1f} MB)"
    )
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench_pipeline_") as scratch:
        for n in range(args.repeat):
            try:
                run = run_once(data, files, args.rows, Path(scratch))
            except BenchError as exc:
                print(f"run {n + 1}: FAILED: {exc}", file=sys.stderr)
                return 1
            runs.append(run)
            versions = [version_figures(v) for v in run["report"]["versions"]]
            print_run(f"run {n + 1}", run["wall"], run["diff"], run["report"]["seconds"], versions)
    print("target equal to V2, every op published and applied once: checked on every run")
    if args.repeat > 1:
        median_versions = [
            {k: statistics.median(version_figures(r["report"]["versions"][i])[k] for r in runs)
             for k in ("ops", "seconds", *STAGES, "ops/s", "stale")}
            for i in range(len(VERSIONS))
        ]  # fmt: skip
        median_seconds = {
            k: statistics.median(r["report"]["seconds"].get(k, 0.0) for r in runs)
            for k in ("deploy", "uploads", "summary")
        }
        print_run(
            f"median of {args.repeat}",
            statistics.median(r["wall"] for r in runs),
            statistics.median(r["diff"] for r in runs),
            median_seconds,
            median_versions,
        )
    budget = BUDGETS.get(args.rows)
    if budget is not None:
        wall = statistics.median(r["wall"] for r in runs)
        verdict = "within" if wall <= budget else "OVER"
        print(f"budget: V1 + V2 at most {budget:.0f} s whole process: {wall:.1f} s, {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
