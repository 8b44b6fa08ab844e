"""``snapcdc local run`` on the reference exports in data/: the real stack, end to end.

Expected ops (shared contract): V0001 first load 3 inserts; V0002 1 insert (PK4), 1 update
(PK2), 1 delete (PK3); 20201231_V0001 99,997 inserts and 3 updates; afterwards the target
holds exactly export3's 100,000 rows.

By default export3 is cut to its first :data:`SAMPLE_ROWS` lines (bytes as they are: PK0-PK4
among them, so the 3 updates and the insert of the deleted PK3 stay): the same statements
and the same path through publisher and consumer, in seconds rather than minutes (throttling is
proven by ``test_local_run_faults.py``). The SQL on the whole
100,000-row pair is checked in ``tests/sql/test_reference_exports.py``; this end-to-end check on
all of it runs with ``SNAPCDC_REFERENCE_ROWS=all`` (``make demo`` runs the same data).
"""

from __future__ import annotations

import gzip
import importlib
import json
import os
import shutil

import pytest
from datasets import HERE, REPO, read_dump, read_export

pytestmark = pytest.mark.slow

DATA = REPO / "data"
COLUMNS = ["PK", "COL_1", "COL_2", "COL_3"]
EXPORT3 = "tenant/test_table/20201231_V0001/export3.csv.gz"
SAMPLE_ROWS = 3000
TIMINGS = ("seconds", "stages")  # per version, as --report writes them
ROWS = os.environ.get("SNAPCDC_REFERENCE_ROWS", str(SAMPLE_ROWS))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """data/ as it is, or with export3 cut to its first ROWS lines."""
    if ROWS == "all":
        return DATA
    copy = tmp_path_factory.mktemp("reference-data") / "data"
    shutil.copytree(DATA, copy)
    lines = gzip.decompress((DATA / EXPORT3).read_bytes()).splitlines(keepends=True)
    (copy / EXPORT3).write_bytes(gzip.compress(b"".join(lines[: int(ROWS)]), mtime=0))
    return copy


def export3_rows(data):
    return len(read_export(data / EXPORT3))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data):
    from snapcdc_local.cli.run import RunOptions, run_pipeline, write_report

    out = tmp_path_factory.mktemp("reference")
    targets: dict[str, list[list[str]]] = {}
    stack = {}

    def snapshot(upload):
        # The target after each version (the 100,000-row one is checked through the dump).
        if upload.version != "20201231_V0001":
            applying = importlib.import_module("snapcdc.steps.consumer")
            rows = applying.read_rows(
                stack["aws"].stack.outputs["TargetTableName"], upload.table_id
            )
            targets[upload.key] = sorted([row[c] for c in COLUMNS] for row in rows)

    result = run_pipeline(
        RunOptions(data_dir=data),
        on_upload=snapshot,
        emulator_hook=lambda aws: stack.update(aws=aws),
        dump_target=out / "dump",
    )
    write_report(result, out / "report.json")
    return result, targets, out


def test_every_version_reports_the_expected_counts(reference, data):
    _, _, out = reference
    expected = json.loads((HERE / "expected" / "reference_report.json").read_text())
    last = expected["versions"][-1]
    rows = export3_rows(data)  # 100,000 unless cut: PK1, PK2, PK4 updated, the rest inserted
    last.update(rows_read=rows, inserts=rows - 3, published=rows, applied=rows)
    report = json.loads((out / "report.json").read_text())
    # what took how long differs run to run; what happened does not
    assert set(report.pop("seconds")) == {"deploy", "uploads", "summary"}
    for version in report["versions"]:
        for timing in TIMINGS:
            version.pop(timing, None)
    assert report == expected


def test_after_each_version_the_target_holds_that_export(reference, data):
    _, targets, _ = reference
    for version, export in (("20201230_V0001", "export1"), ("20201230_V0002", "export2")):
        key = f"tenant/test_table/{version}/{export}.csv.gz"
        assert targets[key] == sorted(read_export(data / key))


def test_the_final_target_is_export3_sorted_by_key(reference, data):
    _, _, out = reference
    dump = read_dump(out / "dump" / "tenant" / "test_table.csv")
    assert dump[0] == COLUMNS
    export3 = read_export(data / EXPORT3)
    assert len(dump) - 1 == len(export3) == (100_000 if ROWS == "all" else int(ROWS))
    assert dump[1:] == sorted(export3, key=lambda row: row[0])


def test_the_summary_counts_versions_and_rows(reference, data):
    result, _, _ = reference
    assert result.tables == {
        "tenant/test_table": {
            "SUCCEEDED": 3,
            "SKIPPED": 0,
            "FAILED": 0,
            "version": "20201231_V0001",
            "rows": export3_rows(data),
        }
    }
