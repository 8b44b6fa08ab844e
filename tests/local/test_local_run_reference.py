"""``snapcdc local run`` on the reference exports in data/: the real stack, end to end.

Expected ops (shared contract): V0001 first load 3 inserts; V0002 1 insert (PK4), 1 update
(PK2), 1 delete (PK3); 20201231_V0001 99,997 inserts and 3 updates; afterwards the target
holds exactly export3's 100,000 rows. The slowest test of the suite (~3-4 min): 100,000 ops
go through Kinesis and the consumer's conditional writes in moto.
"""

from __future__ import annotations

import importlib
import json

import pytest
from datasets import HERE, REPO, read_dump, read_export

pytestmark = pytest.mark.slow

DATA = REPO / "data"
TABLE = DATA / "tenant" / "test_table"
COLUMNS = ["PK", "COL_1", "COL_2", "COL_3"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
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
        RunOptions(data_dir=DATA),
        on_upload=snapshot,
        emulator_hook=lambda aws: stack.update(aws=aws),
        dump_target=out / "dump",
    )
    write_report(result, out / "report.json")
    return result, targets, out


def test_every_version_reports_the_expected_counts(reference):
    _, _, out = reference
    expected = json.loads((HERE / "expected" / "reference_report.json").read_text())
    assert json.loads((out / "report.json").read_text()) == expected


def test_after_each_version_the_target_holds_that_export(reference):
    _, targets, _ = reference
    for version, export in (("20201230_V0001", "export1"), ("20201230_V0002", "export2")):
        key = f"tenant/test_table/{version}/{export}.csv.gz"
        assert targets[key] == sorted(read_export(TABLE / version / f"{export}.csv.gz"))


def test_the_final_target_is_export3_sorted_by_key(reference):
    _, _, out = reference
    dump = read_dump(out / "dump" / "tenant" / "test_table.csv")
    assert dump[0] == COLUMNS
    export3 = read_export(TABLE / "20201231_V0001" / "export3.csv.gz")
    assert len(dump) - 1 == len(export3) == 100_000
    assert dump[1:] == sorted(export3, key=lambda row: row[0])


def test_the_summary_counts_versions_and_rows(reference):
    result, _, _ = reference
    assert result.tables == {
        "tenant/test_table": {
            "SUCCEEDED": 3,
            "SKIPPED": 0,
            "FAILED": 0,
            "version": "20201231_V0001",
            "rows": 100_000,
        }
    }
