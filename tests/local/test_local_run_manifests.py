"""Multi-part versions and column names real exports have, through ``snapcdc local run``.

- ``acme/orders`` (``complete_on: "manifest"``): V1 in two parts with a ``rows`` total; V2's
  part without a manifest starts nothing; V3's ``rows`` disagrees with its parts; V4 has a part
  its manifest does not list; V5 is good and is diffed against V1, the last applied version.
- ``acme/people``: V2 renames ``Name`` to ``name`` (case only); the target must end in V3's
  shape with every value, never a mix of both spellings.
- ``acme/contacts``: a header Athena cannot take, named by ``columns``; ``acme/raw``: the same
  header without ``columns`` fails saying which option fixes it.
"""

from __future__ import annotations

import json

import pytest
from datasets import read_dump, write_config, write_raw
from datasets import write_export as write_semicolons

ORDERS = ["id", "item"]


def write_export(data, key, rows, header):
    write_semicolons(data, key, rows, header=header, delimiter=",")


def manifest(data, key: str, files: list, rows: int | None = None) -> None:
    body = {"files": files, **({"rows": rows} if rows is not None else {})}
    write_raw(data, key, json.dumps(body).encode())


def build(data):
    write_config(data, "acme", "orders", {"complete_on": "manifest"})
    write_export(data, "acme/orders/V1/part-0000.csv.gz", [["1", "a"], ["2", "b"]], header=ORDERS)
    write_export(data, "acme/orders/V1/part-0001.csv.gz", [["3", "c"]], header=ORDERS)
    manifest(data, "acme/orders/V1/_manifest.json", ["part-0000.csv.gz", "part-0001.csv.gz"], 3)
    # V2: a part whose manifest never comes
    write_export(data, "acme/orders/V2/part-0000.csv.gz", [["9", "z"]], header=ORDERS)
    # V3: two rows where the manifest says three (a truncated part)
    write_export(data, "acme/orders/V3/part-0000.csv.gz", [["1", "a"], ["2", "b"]], header=ORDERS)
    manifest(data, "acme/orders/V3/_manifest.json", ["part-0000.csv.gz"], 3)
    # V4: a part the manifest does not list
    write_export(data, "acme/orders/V4/part-0000.csv.gz", [["1", "a"]], header=ORDERS)
    write_export(data, "acme/orders/V4/part-0001.csv.gz", [["2", "b"]], header=ORDERS)
    manifest(data, "acme/orders/V4/_manifest.json", ["part-0000.csv.gz"])
    # V5: 1 kept, 2 updated, 3 deleted, 4 inserted; a stray .tmp beside the parts is ignored
    write_export(data, "acme/orders/V5/part-0000.csv.gz", [["1", "a"], ["2", "B"]], header=ORDERS)
    write_export(data, "acme/orders/V5/part-0001.csv.gz", [["4", "d"]], header=ORDERS)
    write_raw(data, "acme/orders/V5/part-0002.csv.gz.tmp", b"not gzip")
    manifest(data, "acme/orders/V5/_manifest.json", ["part-0000.csv.gz", "part-0001.csv.gz"])

    rows = [["1", "Ann"], ["2", "Bob"], ["3", "Cy"]]
    write_export(data, "acme/people/V1/a.csv.gz", rows, header=["id", "Name"])
    write_export(data, "acme/people/V2/a.csv.gz", rows, header=["id", "name"])
    rows[1] = ["2", "Bo"]
    write_export(data, "acme/people/V3/a.csv.gz", rows, header=["id", "name"])

    header = ["Contact ID", "Contact Phone", "e-mail"]
    write_config(data, "acme", "contacts", {"columns": ["contact_id", "phone", "email"]})
    write_export(data, "acme/contacts/V1/a.csv.gz", [["7", "555", "a@x"]], header=header)
    write_export(data, "acme/raw/V1/a.csv.gz", [["7", "555", "a@x"]], header=header)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from snapcdc_local.cli.run import RunOptions, run_pipeline

    data = tmp_path_factory.mktemp("data")
    build(data)
    out = tmp_path_factory.mktemp("out")
    return run_pipeline(RunOptions(data_dir=data), dump_target=out), out


def outcomes(result, table):
    return [
        (u.key.split("/", 2)[2], u.status, u.inserts, u.updates, u.deletes, u.error)
        for u in result.uploads
        if u.table == table
    ]


def test_a_multi_part_version_is_its_manifest_and_exactly_the_listed_parts(run):
    result, out = run
    orders = outcomes(result, "orders")
    assert [o[:5] for o in orders] == [
        ("V1/_manifest.json", "SUCCEEDED", 3, 0, 0),
        ("V3/_manifest.json", "FAILED", 0, 0, 0),
        ("V4/_manifest.json", "FAILED", 0, 0, 0),
        # uploaded beside V5's parts, it starts nothing and is never read (named, though)
        ("V5/part-0002.csv.gz.tmp", "IGNORED", 0, 0, 0),
        ("V5/_manifest.json", "SUCCEEDED", 1, 1, 1),
    ]
    assert "the export has 2 row(s), its manifest says 3" in orders[1][5]
    assert "part part-0001.csv.gz is not listed in the manifest" in orders[2][5]
    assert orders[3][5] is None  # (its reason is the report's reason, not an error)
    # V2's part started nothing; V5 was diffed against V1
    assert read_dump(out / "acme" / "orders.csv") == [ORDERS, ["1", "a"], ["2", "B"], ["4", "d"]]


def test_a_case_only_rename_leaves_the_target_in_the_new_shape(run):
    result, out = run
    assert [o[:5] for o in outcomes(result, "people")] == [
        ("V1/a.csv.gz", "SUCCEEDED", 3, 0, 0),
        ("V2/a.csv.gz", "SUCCEEDED", 0, 3, 0),  # every row rewritten under 'name'
        ("V3/a.csv.gz", "SUCCEEDED", 0, 1, 0),
    ]
    assert read_dump(out / "acme" / "people.csv") == [
        ["id", "name"],
        ["1", "Ann"],
        ["2", "Bo"],
        ["3", "Cy"],
    ]


def test_configured_columns_name_a_header_athena_cannot_take(run):
    result, out = run
    assert [o[:5] for o in outcomes(result, "contacts")] == [("V1/a.csv.gz", "SUCCEEDED", 1, 0, 0)]
    assert read_dump(out / "acme" / "contacts.csv") == [
        ["contact_id", "phone", "email"],
        ["7", "555", "a@x"],
    ]
    [raw] = outcomes(result, "raw")
    assert raw[1] == "FAILED"
    assert "invalid column 'Contact ID'" in raw[5]
    # the advice suggests the legal names, as a _table.json setting
    assert 'set "columns": ["Contact_ID", "Contact_Phone", "e_mail"] in the table' in raw[5]
