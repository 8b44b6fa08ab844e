"""Holding versions that would delete too much, and approving / rejecting them: the real stack.

``snapcdc local run`` with a sequence file. ``acme/orders`` (header ``id,v``, default guard):
V1 100 rows; V2 keeps 30 (70 DELETEs) and is HELD; V3 (V1 with 5 changes and 1 row gone) is
applied against V1; ``approve`` V2 then ends SKIPPED (its ops were computed against V1, the
head is V3); V4 keeps 40 rows of V3 (60 DELETEs), HELD, approved and applied; V5 keeps 10
(75%), HELD, rejected. ``acme/bins`` (``max_delete_fraction`` 1.0): 2 of 3 rows deleted is
applied, a header-only version is still HELD. ``acme/bags`` (``allow_empty``): a header-only
version is applied.
"""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta

import pytest
from datasets import read_dump, write_config, write_export

HEADER = ["id", "v"]
V1 = [[str(i), f"v{i}"] for i in range(100)]
V2 = V1[:30]
V3 = [[i, f"{v}-changed" if int(i) < 5 else v] for i, v in V1 if i != "99"]
V4 = V3[:40]
V5 = V4[:10]
KEYS = {n: f"acme/orders/V{n}/a.csv.gz" for n in range(1, 6)}
SEQUENCE = [
    KEYS[1],
    KEYS[2],
    KEYS[3],
    f"approve {KEYS[2]}",
    KEYS[4],
    f"approve {KEYS[4]}",
    KEYS[5],
    f"reject {KEYS[5]}",
    "acme/bins/V1/a.csv.gz",
    "acme/bins/V2/a.csv.gz",
    "acme/bins/V3/a.csv.gz",
    "acme/bags/V1/a.csv.gz",
    "acme/bags/V2/a.csv.gz",
]


def build(data):
    for n, rows in zip(range(1, 6), (V1, V2, V3, V4, V5), strict=True):
        write_export(data, KEYS[n], rows, delimiter=",", header=HEADER)
    write_config(data, "acme", "bins", {"max_delete_fraction": 1.0})
    write_export(data, "acme/bins/V1/a.csv.gz", V1[:3], delimiter=",", header=HEADER)
    write_export(data, "acme/bins/V2/a.csv.gz", V1[:1], delimiter=",", header=HEADER)
    write_export(data, "acme/bins/V3/a.csv.gz", [], delimiter=",", header=HEADER)
    write_config(data, "acme", "bags", {"allow_empty": True})
    write_export(data, "acme/bags/V1/a.csv.gz", V1[:2], delimiter=",", header=HEADER)
    write_export(data, "acme/bags/V2/a.csv.gz", [], delimiter=",", header=HEADER)
    (data / "sequence.txt").write_text("\n".join(SEQUENCE) + "\n")


@pytest.fixture(scope="module")
def held(tmp_path_factory):
    from snapcdc_local.cli.run import RunOptions, run_pipeline

    data = tmp_path_factory.mktemp("data")
    build(data)
    out = tmp_path_factory.mktemp("out")
    seen = {"targets": [], "locks": []}

    def after(upload):
        aws = seen["aws"]
        applying = importlib.import_module("snapcdc.steps.consumer")
        rows = applying.read_rows(aws.stack.outputs["TargetTableName"], upload.table_id)
        seen["targets"].append(sorted([row[c] for c in HEADER] for row in rows))
        locks = aws.client("dynamodb").scan(TableName=aws.stack.outputs["LockTableName"])["Items"]
        seen["locks"].append(locks)
        metrics = aws.client("cloudwatch").list_metrics(Namespace="snapcdc")["Metrics"]
        seen["metrics"] = metrics
        now = datetime.now(UTC)
        seen["held_sum"] = sum(
            point["Sum"]
            for point in aws.client("cloudwatch").get_metric_statistics(
                Namespace="snapcdc", MetricName="HeldVersions",
                Dimensions=[{"Name": "Table", "Value": "acme/orders"}],
                StartTime=now - timedelta(hours=1),
                EndTime=now + timedelta(minutes=1), Period=3600, Statistics=["Sum"],
            )["Datapoints"]
        )  # fmt: skip
        registry = importlib.import_module("snapcdc.aws.registry")
        seen["head"] = registry.get_head(
            "acme/orders", table_name=aws.stack.outputs["RegistryTableName"]
        )

    result = run_pipeline(
        RunOptions(data_dir=data, sequence=data / "sequence.txt", history=True),
        on_upload=after,
        emulator_hook=lambda aws: seen.update(aws=aws),
        dump_target=out,
    )
    return result, seen, out


def test_each_version_and_resume_ends_as_expected(held):
    result, _, _ = held
    got = [(u.action, u.key, u.status, u.inserts, u.updates, u.deletes) for u in result.uploads]
    assert got == [
        ("upload", KEYS[1], "SUCCEEDED", 100, 0, 0),
        ("upload", KEYS[2], "HELD", 0, 0, 70),
        ("upload", KEYS[3], "SUCCEEDED", 0, 5, 1),
        ("approve", KEYS[2], "SKIPPED", 0, 0, 70),
        ("upload", KEYS[4], "HELD", 0, 0, 59),
        ("approve", KEYS[4], "SUCCEEDED", 0, 0, 59),
        ("upload", KEYS[5], "HELD", 0, 0, 30),
        ("reject", KEYS[5], "REJECTED", 0, 0, 30),
        ("upload", "acme/bins/V1/a.csv.gz", "SUCCEEDED", 3, 0, 0),
        ("upload", "acme/bins/V2/a.csv.gz", "SUCCEEDED", 0, 0, 2),
        ("upload", "acme/bins/V3/a.csv.gz", "HELD", 0, 0, 1),
        ("upload", "acme/bags/V1/a.csv.gz", "SUCCEEDED", 2, 0, 0),
        ("upload", "acme/bags/V2/a.csv.gz", "SUCCEEDED", 0, 0, 2),
    ]


def test_held_and_resumed_versions_say_why(held):
    result, _, _ = held
    reasons = {(u.action, u.key): u.reason for u in result.uploads}
    assert reasons[("upload", KEYS[2])].startswith("would delete 70 of 100 rows (70% > 50%) of V1")
    assert "computed against V1 and the table's head is now V3" in reasons[("approve", KEYS[2])]
    assert reasons[("upload", KEYS[5])].startswith("would delete 30 of 40 rows (75% > 50%) of V4")
    assert "no rows after V2 with 1" in reasons[("upload", "acme/bins/V3/a.csv.gz")]
    assert "allow_empty" in reasons[("upload", "acme/bins/V3/a.csv.gz")]
    # each version counted once, where it stands now: V2 approved too late (SKIPPED), V4
    # approved (SUCCEEDED), V5 rejected; none is still HELD
    orders = result.tables["acme/orders"]
    assert (orders["SUCCEEDED"], orders["SKIPPED"], orders.get("HELD", 0)) == (3, 1, 0)
    assert orders["REJECTED"] == 1


def test_a_held_version_leaves_the_target_and_releases_the_lock(held):
    _, seen, out = held
    orders = seen["targets"][:8]
    assert orders[1] == orders[0] == sorted(V1)  # V2 HELD: untouched
    assert orders[2] == orders[3] == sorted(V3)  # V3 against V1; approving V2 changes nothing
    assert orders[4] == sorted(V3)  # V4 HELD
    assert orders[5] == orders[6] == orders[7] == sorted(V4)  # approved; V5 held, rejected
    assert all(locks == [] for locks in seen["locks"])
    assert read_dump(out / "acme" / "orders.csv") == [HEADER, *sorted(V4)]
    assert read_dump(out / "acme" / "bags.csv") == [HEADER]
    assert seen["head"]["last_applied_version"] == "V4"
    assert seen["head"]["rows"] == 40


def test_a_held_version_raises_the_alarmed_metric(held):
    _, seen, _ = held
    dimensions = {
        tuple((d["Name"], d["Value"]) for d in m["Dimensions"])
        for m in seen["metrics"]
        if m["MetricName"] == "HeldVersions"
    }
    assert dimensions == {(), (("Table", "acme/bins"),), (("Table", "acme/orders"),)}
    assert seen["held_sum"] == 3  # V2, V4, V5 of acme/orders


def test_history_shows_the_hold_and_the_resume(held):
    result, _, _ = held
    [held_run] = [u for u in result.uploads if u.action == "upload" and u.key == KEYS[2]]
    states = [row.state for row in result.histories[held_run.executions[-1]]]
    assert "Held" in states and "Publish" not in states and "ReleaseLock" in states
    [approve] = [u for u in result.uploads if u.action == "approve" and u.key == KEYS[4]]
    states = [row.state for row in result.histories[approve.executions[-1]]]
    assert states[:2] == ["Route", "Resume"]
    assert "CheckHead" in states and "Publish" in states and "Plan" not in states
