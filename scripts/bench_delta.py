"""Benchmark: ``snapcdc diff`` against ``csv-diff`` on two generated exports.

    .venv/bin/python scripts/bench_delta.py                 # 1,000,000 rows, 3 runs each
    .venv/bin/python scripts/bench_delta.py --rows 100000 --csv-diff-rows 100000

The exports have ``--rows`` rows and 12 columns (``id`` plus 11 text columns); the new one
deletes 0.5% of the old rows, updates 1% and inserts 0.5% more, in a shuffled order. Each is
written twice: as plain CSV and as gzip CSV (what the pipeline receives).

Timed, median of ``--runs`` runs each:

- ``snapcdc diff`` in process on the plain files, the very files csv-diff reads (csv-diff reads
  no gzip): :func:`snapcdc_local.cli.diff.diff_files` (engine start, DDL, the data checks on both
  files, the delta, counting the operations). The ratio is taken on these same files;
- ``snapcdc diff`` in process on the gzip files (plus inflating them);
- ``snapcdc diff`` as a subprocess on the gzip files: the console script, i.e. plus interpreter
  start and imports;
- ``csv-diff`` in process: ``csv_diff.load_csv`` + ``csv_diff.compare``. With
  ``--csv-diff-rows`` smaller than ``--rows`` it runs on a prefix-sized pair of exports and its
  time is extrapolated linearly to ``--rows`` (labelled as such in the output).

Both tools' counts are checked against the generator's.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
VALUE_COLUMNS = 11


def generate(directory: Path, rows: int) -> dict[str, Path | dict[str, int]]:
    """Write old/new exports (gzip and plain) of ``rows`` rows; return paths and expected counts.

    Deterministic: values are hashes of (id, column), so reruns produce the same files.
    """
    directory.mkdir(parents=True, exist_ok=True)
    names = {
        k: directory / f"{k}_{rows}{ext}"
        for k, ext in (
            ("old_gz", ".csv.gz"),
            ("new_gz", ".csv.gz"),
            ("old_csv", ".csv"),
            ("new_csv", ".csv"),
        )
    }
    values = ", ".join(
        f"'v{j}_' || (hash(id * {VALUE_COLUMNS + 1} + {j}) % 1000000)::VARCHAR AS col_{j}"
        for j in range(1, VALUE_COLUMNS + 1)
    )
    # new: ids % 200 == 0 deleted, ids % 100 == 1 get a new col_3, rows/200 ids appended
    new_values = values.replace(
        f"'v3_' || (hash(id * {VALUE_COLUMNS + 1} + 3) % 1000000)::VARCHAR AS col_3",
        f"CASE WHEN id % 100 = 1 THEN 'changed_' || id::VARCHAR "
        f"ELSE 'v3_' || (hash(id * {VALUE_COLUMNS + 1} + 3) % 1000000)::VARCHAR END AS col_3",
    )
    inserts = rows // 200
    old_sql = f"SELECT 'K' || lpad(id::VARCHAR, 10, '0') AS id, {values} FROM range({rows}) t(id)"
    new_sql = (
        f"SELECT 'K' || lpad(id::VARCHAR, 10, '0') AS id, {new_values} "
        f"FROM range({rows + inserts}) t(id) WHERE id >= {rows} OR id % 200 <> 0 "
        "ORDER BY hash(id + 7)"
    )
    expected = {
        "INSERT": inserts,
        "UPDATE": sum(1 for _ in range(1, rows, 100) if _ % 200 != 0),
        "DELETE": len(range(0, rows, 200)),
    }
    if all(p.exists() for p in names.values()):
        return {**names, "expected": expected}
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    for key, sql in (("old", old_sql), ("new", new_sql)):
        con.execute(f"COPY ({sql}) TO '{names[key + '_gz']}' (FORMAT csv, HEADER true)")
        con.execute(f"COPY ({sql}) TO '{names[key + '_csv']}' (FORMAT csv, HEADER true)")
    con.close()
    return {**names, "expected": expected}


@dataclass
class Timing:
    """Median wall-clock seconds and median CPU seconds of this process (all its threads)."""

    wall: float
    cpu: float
    runs: int

    def __str__(self) -> str:
        return f"median {self.wall:.3f} s wall, {self.cpu:.3f} s CPU, of {self.runs}"


def time_runs(runs: int, fn) -> tuple[Timing, object]:
    walls, cpus, result = [], [], None
    for _ in range(runs):
        start, cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return Timing(statistics.median(walls), statistics.median(cpus), runs), result


def snapcdc_in_process(old: Path, new: Path) -> dict[str, int]:
    from snapcdc.model.contract import TableConfig
    from snapcdc_local.cli.diff import diff_files

    return diff_files(old, new, TableConfig(key=("id",))).counts


def snapcdc_subprocess(old: Path, new: Path) -> dict[str, int]:
    exe = Path(sys.executable).with_name("snapcdc")
    out = subprocess.run(
        [str(exe), "diff", str(old), str(new), "--key", "id"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    counts = {}
    for line in out.splitlines():
        op, n = line.split()
        counts[op] = int(n.replace(",", ""))
    return counts


def csv_diff_in_process(old: Path, new: Path) -> dict[str, int]:
    from csv_diff import compare, load_csv

    with old.open(newline="") as a, new.open(newline="") as b:
        diff = compare(load_csv(a, key="id"), load_csv(b, key="id"))
    return {
        "INSERT": len(diff["added"]),
        "UPDATE": len(diff["changed"]),
        "DELETE": len(diff["removed"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--csv-diff-rows",
        type=int,
        default=None,
        help="time csv-diff at this many rows and extrapolate linearly (default: --rows)",
    )
    parser.add_argument("--workdir", type=Path, default=REPO / ".snapcdc" / "bench")
    parser.add_argument("--skip-subprocess", action="store_true")
    args = parser.parse_args(argv)

    files = generate(args.workdir, args.rows)
    expected = files["expected"]
    print(f"exports: {args.rows:,} rows x {VALUE_COLUMNS + 1} columns; expected {expected}")
    print(
        f"  gzip sizes: old {files['old_gz'].stat().st_size / 1e6:.1f} MB, "
        f"new {files['new_gz'].stat().st_size / 1e6:.1f} MB"
    )

    snapcdc_s, counts = time_runs(
        args.runs, lambda: snapcdc_in_process(files["old_csv"], files["new_csv"])
    )
    assert counts == expected, f"snapcdc counts {counts} != expected {expected}"
    print(f"snapcdc diff (in process, plain CSV input):  {snapcdc_s}")
    gzip_s, counts = time_runs(
        args.runs, lambda: snapcdc_in_process(files["old_gz"], files["new_gz"])
    )
    assert counts == expected, f"snapcdc counts {counts} != expected {expected}"
    print(f"snapcdc diff (in process, gzip input):       {gzip_s}")
    if not args.skip_subprocess:
        sub_s, counts = time_runs(
            args.runs, lambda: snapcdc_subprocess(files["old_gz"], files["new_gz"])
        )
        assert counts == expected, f"snapcdc CLI counts {counts} != expected {expected}"
        print(
            f"snapcdc diff (subprocess, gzip input):       "
            f"median {sub_s.wall:.3f} s wall of {sub_s.runs}"
        )

    csv_rows = args.csv_diff_rows or args.rows
    small = files if csv_rows == args.rows else generate(args.workdir, csv_rows)
    csv_runs = 1 if csv_rows >= 500_000 else args.runs
    csv_s, counts = time_runs(
        csv_runs, lambda: csv_diff_in_process(small["old_csv"], small["new_csv"])
    )
    assert counts == small["expected"], f"csv-diff counts {counts} != expected {small['expected']}"
    if csv_rows == args.rows:
        label = f"csv-diff (in process, plain CSV input):  {csv_s}"
        scale = 1.0
    else:
        scale = args.rows / csv_rows
        label = (
            f"csv-diff (in process, plain CSV input):  {csv_s} at {csv_rows:,} rows "
            f"-> EXTRAPOLATED linearly to {args.rows:,} rows: {csv_s.wall * scale:.3f} s wall, "
            f"{csv_s.cpu * scale:.3f} s CPU"
        )
    print(label)
    print(
        f"ratio csv-diff / snapcdc (in process, same plain files): "
        f"{csv_s.wall * scale / snapcdc_s.wall:.1f}x wall, "
        f"{csv_s.cpu * scale / snapcdc_s.cpu:.1f}x CPU"
    )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "functions"))
    raise SystemExit(main())
