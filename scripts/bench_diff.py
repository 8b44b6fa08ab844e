"""Benchmark: ``snapcdc diff`` as a whole process, beside csv-diff and zcat, in the same run.

    .venv/bin/python scripts/bench_diff.py                      # 1,000,000 rows, 5 rounds
    .venv/bin/python scripts/bench_diff.py --rows 100000 --runs 3 --csv-diff-runs 3

The pair is scripts/bench_delta.py's: ``--rows`` rows of 12 columns, the new export deleting
0.5% of the old rows, updating 1% and inserting 0.5% more, shuffled; each as gzip and plain CSV
(generated once into ``--workdir``). Every command is a subprocess, start-up included, and the
rounds interleave the tools so that other load on the machine falls on all of them alike:

- ``zcat OLD.gz & zcat NEW.gz`` (two parallel processes): the time the gzip files take to read;
- ``snapcdc diff OLD.gz NEW.gz --key id --out ops.csv`` (budget: at most 1.5 s);
- ``snapcdc diff OLD.csv NEW.csv --key id --out ops.csv`` on the plain pair;
- ``snapcdc diff`` on the gzip pair with an empty cache of compiled SQL (its first run for a
  table's shape: the other runs share ``--workdir``/cache, warmed by one untimed run, as a
  second diff of the same table finds it; see ``SNAPCDC_CACHE_DIR`` in docs/performance.md);
- with ``--baseline DIR``, ``snapcdc diff`` on the gzip pair with ``PYTHONPATH=DIR`` (another
  checkout's ``functions/``, e.g. ``git archive main functions sql | tar -x -C /tmp/base``),
  for a before/after under the same load;
- ``csv-diff OLD.csv NEW.csv --key id`` on the same plain pair (budget: snapcdc at least 10x
  faster), in the first ``--csv-diff-runs`` rounds only (it takes tens of seconds).

Prints min and median wall time (and the children's CPU seconds) per command, the ratios, the
load average before and after, and whether the budgets hold. Both tools' counts are checked.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_delta import REPO, generate  # noqa: E402

BUDGET_SECONDS = 1.5
BUDGET_RATIO = 10.0


@dataclass
class Runs:
    """Wall and CPU seconds (user + system of the process tree) of each run of one command."""

    label: str
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.walls)

    def __str__(self) -> str:
        if not self.walls:
            return f"{self.label:<34} not run"
        return (
            f"{self.label:<34} min {min(self.walls):6.3f} s  median {self.median:6.3f} s wall"
            f"  (median {statistics.median(self.cpus):6.3f} s CPU, {len(self.walls)} runs)"
        )


def timed(
    runs: Runs, argv: list[str], shell: bool = False, env: dict[str, str] | None = None
) -> str:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        argv if not shell else argv[0],
        shell=shell,
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{runs.label}: exit {proc.returncode}: {proc.stderr.strip()[:500]}")
    runs.walls.append(wall)
    runs.cpus.append(
        after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime,
    )
    return proc.stdout


def snapcdc_command() -> list[str]:
    script = Path(sys.executable).with_name("snapcdc")
    return [str(script)] if script.exists() else [sys.executable, "-m", "snapcdc_local"]


def snapcdc_counts(stdout: str) -> dict[str, int]:
    counts = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("INSERT", "UPDATE", "DELETE"):
            counts[parts[0]] = int(parts[1].replace(",", ""))
    return counts


def csv_diff_counts(stdout: str) -> dict[str, int]:
    """From csv-diff's summary line, e.g. ``10000 rows changed, 5000 rows added, ...``."""
    found = dict.fromkeys(("INSERT", "UPDATE", "DELETE"), 0)
    names = {"added": "INSERT", "changed": "UPDATE", "removed": "DELETE"}
    first = stdout.splitlines()[0] if stdout else ""
    for n, what in re.findall(r"(\d+) rows? (added|changed|removed)", first):
        found[names[what]] = int(n)
    return found


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f} (1, 5, 15 min) on {os.cpu_count()} CPUs"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--csv-diff-runs", type=int, default=1, help="rounds with csv-diff")
    parser.add_argument("--baseline", type=Path, help="another functions/ dir to time alike")
    parser.add_argument("--workdir", type=Path, default=REPO / ".snapcdc" / "bench")
    args = parser.parse_args(argv)

    files = generate(args.workdir, args.rows)
    expected = files["expected"]
    out = args.workdir / "ops.csv"
    print(f"exports: {args.rows:,} rows x 12 columns; expected {expected}")
    print(f"load average before: {load()}")

    zcat = Runs("2 parallel zcat (gzip pair)")
    gz = Runs("snapcdc diff (gzip pair)")
    plain = Runs("snapcdc diff (plain pair)")
    cold = Runs("snapcdc diff, cold cache (gzip pair)")
    csv_diff = Runs("csv-diff (plain pair)")
    baseline = Runs("baseline snapcdc diff (gzip pair)")
    snapcdc = snapcdc_command()
    csv_diff_exe = shutil.which("csv-diff", path=str(Path(sys.executable).parent)) or "csv-diff"
    zcat_pair = f"zcat '{files['old_gz']}' > /dev/null & zcat '{files['new_gz']}' > /dev/null; wait"
    gz_argv = [*snapcdc, "diff", str(files["old_gz"]), str(files["new_gz"]), "--key", "id"]
    cache = args.workdir / "cache"
    warm = {**os.environ, "SNAPCDC_CACHE_DIR": str(cache)}
    subprocess.run([*gz_argv, "--out", str(out)], env=warm, capture_output=True, check=True)
    for round_ in range(args.runs):
        timed(zcat, [zcat_pair], shell=True)
        for runs, old, new in ((gz, "old_gz", "new_gz"), (plain, "old_csv", "new_csv")):
            argv_ = [*snapcdc, "diff", str(files[old]), str(files[new]), "--key", "id"]
            counts = snapcdc_counts(timed(runs, [*argv_, "--out", str(out)], env=warm))
            assert counts == expected, f"{runs.label}: {counts} != {expected}"
        with tempfile.TemporaryDirectory(prefix="snapcdc-cold-") as empty:
            env = {**os.environ, "SNAPCDC_CACHE_DIR": empty}
            counts = snapcdc_counts(timed(cold, [*gz_argv, "--out", str(out)], env=env))
            assert counts == expected, f"{cold.label}: {counts} != {expected}"
        if args.baseline:
            env = {**os.environ, "PYTHONPATH": str(args.baseline.resolve())}
            argv_ = [*snapcdc, "diff", str(files["old_gz"]), str(files["new_gz"]), "--key", "id"]
            counts = snapcdc_counts(timed(baseline, [*argv_, "--out", str(out)], env=env))
            assert counts == expected, f"{baseline.label}: {counts} != {expected}"
        if round_ < args.csv_diff_runs:
            cmd = [csv_diff_exe, str(files["old_csv"]), str(files["new_csv"]), "--key", "id"]
            counts = csv_diff_counts(timed(csv_diff, cmd))
            assert counts == expected, f"csv-diff: {counts} != {expected}"
    print(f"load average after:  {load()}")
    for runs in (zcat, gz, plain, cold, csv_diff, *([baseline] if args.baseline else [])):
        print(runs)
    print(f"snapcdc diff (gzip) / 2 parallel zcat: {gz.median / zcat.median:.2f}x (medians)")
    ratio = csv_diff.median / plain.median if csv_diff.walls else float("nan")
    best = min(csv_diff.walls) / min(plain.walls) if csv_diff.walls else float("nan")
    print(f"csv-diff / snapcdc diff (plain pair): {ratio:.1f}x (medians), {best:.1f}x (minimums)")
    print(
        f"budget: gzip pair in at most {BUDGET_SECONDS} s: "
        f"{'met' if gz.median <= BUDGET_SECONDS else 'NOT met'} (median), "
        f"{'met' if min(gz.walls) <= BUDGET_SECONDS else 'NOT met'} (minimum); "
        f"at least {BUDGET_RATIO:.0f}x csv-diff: {'met' if ratio >= BUDGET_RATIO else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
