"""More table shapes through the real stack, and ``--concurrent``.

- ``acme/people``: a header row, quoted fields (delimiters and doubled quotes inside), a
  composite key and non-ASCII text; the dump must equal ``expected/headered_people.csv``.
- ``acme/stock``: four versions uploaded one after another and all at once; the table locks
  serialise the concurrent executions and both runs must leave the same target.
"""

from __future__ import annotations

import csv

import pytest
from datasets import HERE, assert_every_op_applied, read_dump, write_config, write_export

PEOPLE = ["region", "id", "name", "note"]
PEOPLE_V1 = [
    ["eu", "1", "Zoë Müller", 'says "hi", then leaves'],
    ["eu", "2", "Łukasz", "semi;colon"],
    ["us", "1", "東京", "emoji 🎉"],
    ["us", "2", "Ann", ""],
]
PEOPLE_V2 = [
    ["us", "1", "東京", "emoji 🎉"],
    ["ap", "1", "Ωmega", "new in V2"],
    ["eu", "2", "Łukasz", "semi;colon, changed"],
    ["eu", "1", "Zoë Müller", 'says "hi", then leaves'],
]


def stock_version(n: int) -> list[list[str]]:
    """30 rows; each version drops one row, changes two, adds one."""
    rows = {str(i): [str(i), f"item {i}", str(i * 10)] for i in range(n, 30 + 2 * n)}
    for changed in (str(n + 5), str(n + 9)):
        rows[changed][2] = f"{n}-{rows[changed][2]}"
    return list(rows.values())


def build(data):
    write_config(data, "acme", "people", {"key": ["region", "id"], "header": True})
    write_export(
        data,
        "acme/people/V1/a.csv.gz",
        PEOPLE_V1,
        delimiter=",",
        header=PEOPLE,
        quoting=csv.QUOTE_ALL,
    )
    write_export(data, "acme/people/V2/a.csv.gz", PEOPLE_V2, delimiter=",", header=PEOPLE)
    write_config(data, "acme", "stock", {"columns": ["sku", "name", "qty"], "header": False})
    for n in range(1, 5):
        write_export(data, f"acme/stock/V{n}/a.csv.gz", stock_version(n), delimiter=",")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from snapcdc_local.cli.run import RunOptions, run_pipeline

    data = tmp_path_factory.mktemp("data")
    build(data)
    results = {}
    for mode in ("sequential", "concurrent"):
        out = tmp_path_factory.mktemp(mode)
        options = RunOptions(data_dir=data, concurrent=mode == "concurrent", history=True)
        result = run_pipeline(options, dump_target=out)
        results[mode] = (result, out)
    return results


def test_headered_quoted_composite_key_table(runs):
    result, out = runs["sequential"]
    people = [u.report() for u in result.uploads if u.table == "people"]
    for mode in runs:
        assert_every_op_applied([u.report() for u in runs[mode][0].uploads])
    assert [
        (u["version"], u["status"], u["inserts"], u["updates"], u["deletes"]) for u in people
    ] == [
        ("V1", "SUCCEEDED", 4, 0, 0),
        ("V2", "SUCCEEDED", 1, 1, 1),
    ]
    assert read_dump(out / "acme" / "people.csv") == read_dump(
        HERE / "expected" / "headered_people.csv"
    )


def test_sequential_versions_apply_one_after_another(runs):
    result, out = runs["sequential"]
    stock = [(u.version, u.status) for u in result.uploads if u.table == "stock"]
    assert stock == [(f"V{n}", "SUCCEEDED") for n in range(1, 5)]
    expected = sorted(stock_version(4), key=lambda row: row[0])
    assert read_dump(out / "acme" / "stock.csv") == [["sku", "name", "qty"], *expected]


def test_concurrent_uploads_leave_the_same_target(runs):
    sequential, sequential_out = runs["sequential"]
    concurrent, concurrent_out = runs["concurrent"]
    statuses = {u.version: u.status for u in concurrent.uploads if u.table == "stock"}
    # Executions race for the lock: an older version that gets it after a newer one is SKIPPED.
    assert statuses["V4"] == "SUCCEEDED"
    assert set(statuses.values()) <= {"SUCCEEDED", "SKIPPED"}
    for table in ("stock", "people"):
        assert read_dump(concurrent_out / "acme" / f"{table}.csv") == read_dump(
            sequential_out / "acme" / f"{table}.csv"
        )
    assert concurrent.tables["acme/stock"]["version"] == "V4"
    # The versions really ran at the same time: some waited for the table lock.
    histories = concurrent.histories.values()
    assert any(r.state == "LockWait" for rows in histories for r in rows)
    assert not any(r.state == "LockWait" for rows in sequential.histories.values() for r in rows)
