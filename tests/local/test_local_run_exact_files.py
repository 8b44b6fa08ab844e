"""A version is read from exactly the files it was applied from; versions never share a table.

One pipeline run (``snapcdc local run`` with a sequence file) over four tables:

- ``acme/items``: V1 from ``a.csv.gz``; a later ``V1/b.csv.gz`` (row 4) is SKIPPED, yet Athena
  reads every object under a LOCATION, so it must not become a row of V1 when V1 is V2's
  previous table. V2 = V1's rows + row 4, so V2 inserts row 4. V3 has a stray ``notes.tmp``
  beside its export, which must not become a row of V3 either.
- ``acme/cased``: ``X_V1`` then ``X_v1`` (one Glue table if names were lowercased).
- ``acme/x`` version ``a__1`` / ``a__2`` and ``acme/x__a`` version ``1``, which would share
  ``x__a__1`` if the name were ``{table}__{version}``.
"""

from __future__ import annotations

import pytest
from datasets import read_dump, write_config, write_export, write_raw

COLUMNS = ["id", "name"]
CONFIG = {"columns": COLUMNS, "key": ["id"], "delimiter": ";", "header": False}
ROWS = [["1", "apple"], ["2", "pear"], ["3", "plum"]]
ROW_4 = ["4", "fig"]
STRAY = b"9;stray\n"
SEQUENCE = [
    ("acme/items/V1/a.csv.gz", "SUCCEEDED", (3, 0, 0)),
    ("acme/items/V1/b.csv.gz", "SKIPPED", (0, 0, 0)),
    ("acme/items/V2/a.csv.gz", "SUCCEEDED", (1, 0, 0)),
    ("acme/items/V3/notes.tmp", "IGNORED", (0, 0, 0)),  # uploaded; starts nothing
    ("acme/items/V3/a.csv.gz", "SUCCEEDED", (0, 1, 0)),
    ("acme/cased/X_V1/a.csv.gz", "SUCCEEDED", (2, 0, 0)),
    ("acme/cased/X_v1/a.csv.gz", "SUCCEEDED", (0, 0, 1)),
    ("acme/x/a__1/a.csv.gz", "SUCCEEDED", (2, 0, 0)),
    ("acme/x__a/1/a.csv.gz", "SUCCEEDED", (1, 0, 0)),
    ("acme/x/a__2/a.csv.gz", "SUCCEEDED", (0, 0, 1)),
]


def build(data):
    for table in ("items", "cased", "x", "x__a"):
        write_config(data, "acme", table, CONFIG)
    write_export(data, "acme/items/V1/a.csv.gz", ROWS)
    write_export(data, "acme/items/V1/b.csv.gz", [ROW_4])
    write_export(data, "acme/items/V2/a.csv.gz", ROWS + [ROW_4])
    write_raw(data, "acme/items/V3/notes.tmp", STRAY)
    write_export(data, "acme/items/V3/a.csv.gz", ROWS + [["4", "fig, ripe"]])
    write_export(data, "acme/cased/X_V1/a.csv.gz", ROWS[:2])
    write_export(data, "acme/cased/X_v1/a.csv.gz", ROWS[:1])
    write_export(data, "acme/x/a__1/a.csv.gz", ROWS[:2])
    write_export(data, "acme/x__a/1/a.csv.gz", ROWS[:1])
    write_export(data, "acme/x/a__2/a.csv.gz", ROWS[:1])
    (data / "sequence.txt").write_text("\n".join(key for key, _, _ in SEQUENCE) + "\n")


@pytest.fixture(scope="module")
def exact(tmp_path_factory):
    from snapcdc_local.cli.run import RunOptions, run_pipeline

    data = tmp_path_factory.mktemp("data")
    build(data)
    out = tmp_path_factory.mktemp("out")
    seen = {}
    result = run_pipeline(
        RunOptions(data_dir=data, sequence=data / "sequence.txt"),
        emulator_hook=lambda aws: seen.update(aws=aws),
        dump_target=out,
    )
    return result, out


def test_each_upload_gets_the_operations_of_exactly_its_files(exact):
    result, _ = exact
    got = [
        (u["key"], u["status"], (u["inserts"], u["updates"], u["deletes"]), u["error"])
        for u in (upload.report() for upload in result.uploads)
    ]
    want = [(key, status, counts, None) for key, status, counts in SEQUENCE if status]
    assert [g[:3] for g in got] == [w[:3] for w in want], got
    assert all(g[3] is None for g in got if g[1] == "SUCCEEDED"), got


def test_the_target_holds_each_tables_last_version(exact):
    _, out = exact
    assert read_dump(out / "acme" / "items.csv") == [COLUMNS, *ROWS, ["4", "fig, ripe"]]
    assert read_dump(out / "acme" / "cased.csv") == [COLUMNS, ROWS[0]]
    assert read_dump(out / "acme" / "x.csv") == [COLUMNS, ROWS[0]]
    assert read_dump(out / "acme" / "x__a.csv") == [COLUMNS, ROWS[0]]
