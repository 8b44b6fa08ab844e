"""``sql/reconverge.sql`` on the engine: after versions whose ops partly reached the target, the
ops that make the target equal to the new export whatever part of them landed."""

from __future__ import annotations

import gzip

import pytest

from snapcdc.model.contract import ContractError, TableConfig, TableSchema
from snapcdc.sql import queries
from snapcdc.sql.queries import Side
from snapcdc_local.engine.engine import AthenaEngine, TableFile

KV = TableSchema(("k", "v"), ("k",))


def engine_with(tmp_path, versions: dict[str, tuple[TableSchema, bytes]]):
    """An engine with table ``d.t{version}`` over ``s3://bucket/t/{version}/a.csv.gz``."""
    files = {}
    for version, (_, body) in versions.items():
        path = tmp_path / f"{version}.csv.gz"
        path.write_bytes(gzip.compress(body))
        location = f"s3://bucket/t/{version}/"
        files[location] = [TableFile(str(path), location + "a.csv.gz")]
    engine = AthenaEngine(lambda location: files.get(location, []))
    engine.execute(queries.create_database("d"))
    for version, (schema, _) in versions.items():
        config = TableConfig(delimiter=";", header=False, columns=schema.columns)
        engine.execute(
            queries.create_export_table(
                "d", f"t{version}", schema.columns, f"s3://bucket/t/{version}/", config
            )
        )
    return engine


def side(version: str, schema: TableSchema = KV) -> Side:
    return Side(f"t{version}", schema, [f"s3://bucket/t/{version}/a.csv.gz"])


def apply(target: dict[str, tuple], ops: list[tuple]) -> dict[str, tuple]:
    """The target after ``ops`` (what the consumer's writes do, order aside)."""
    target = dict(target)
    for op, key, *values in ops:
        if op == "DELETE":
            target.pop(key, None)
        else:
            target[key] = (key, *values)
    return target


def test_every_new_row_is_written_and_every_key_it_lacks_deleted(tmp_path):
    versions = {
        "v1": (KV, b"1;a\n2;b\n3;c\n"),  # last applied
        "v2": (KV, b"1;A\n2;B\n4;D\n"),  # failed midway: 1 and 4 landed, say
        "v3": (KV, b"1;a\n5;e\n"),  # the next version
    }
    with engine_with(tmp_path, versions) as engine:
        sql = queries.reconverge("d", "tv3", KV, side("v3").files, side("v1"), [side("v2")])
        ops = sorted(engine.execute(sql).rows)
    assert ops == [
        ("DELETE", "2", "b"),  # in v1, not in v3: the last applied row's values
        ("DELETE", "3", "c"),
        ("DELETE", "4", None),  # only the failed version had it
        ("INSERT", "5", "e"),
        ("UPDATE", "1", "a"),  # unchanged since v1, written anyway: v2 may have changed it
    ]
    # whatever part of v2 landed, the target ends equal to v3
    v1 = {"1": ("1", "a"), "2": ("2", "b"), "3": ("3", "c")}
    for landed in ([], [("UPDATE", "1", "A")], [("UPDATE", "1", "A"), ("INSERT", "4", "D")]):
        assert apply(apply(v1, landed), ops) == {"1": ("1", "a"), "5": ("5", "e")}


def test_a_failed_first_load_is_undone_by_the_next_version(tmp_path):
    versions = {"v1": (KV, b"1;a\n2;b\n"), "v2": (KV, b"2;B\n3;c\n")}
    with engine_with(tmp_path, versions) as engine:
        sql = queries.reconverge("d", "tv2", KV, side("v2").files, None, [side("v1")])
        ops = sorted(engine.execute(sql).rows)
    assert ops == [("DELETE", "1", None), ("INSERT", "2", "B"), ("INSERT", "3", "c")]


def test_several_diverged_versions_with_other_columns_and_a_composite_key(tmp_path):
    old = TableSchema(("a", "b", "x"), ("a", "b"))
    wider = TableSchema(("B", "A", "x", "y"), ("A", "B"))  # reordered, a column added
    new = TableSchema(("a", "b", "y"), ("a", "b"))  # x removed
    versions = {
        "v1": (old, b"1;1;p\n1;2;q\n"),
        "v2": (wider, b"9;1;r;s\n"),  # key (1, 9)
        "v3": (old, b"2;2;t\n"),
        "v4": (new, b"1;2;z\n"),
    }
    with engine_with(tmp_path, versions) as engine:
        sql = queries.reconverge(
            "d", "tv4", new, side("v4").files, side("v1", old),
            [side("v2", wider), side("v3", old)],
        )  # fmt: skip
        ops = sorted(engine.execute(sql).rows, key=repr)
    assert ops == sorted(
        [
            ("DELETE", "1", "1", None),  # v1's row: y is not one of its columns
            ("DELETE", "1", "9", None),
            ("DELETE", "2", "2", None),
            ("UPDATE", "1", "2", "z"),
        ],
        key=repr,
    )


def test_a_changed_key_and_no_diverged_version_are_refused():
    with pytest.raises(ContractError, match="key changed"):
        queries.reconverge(
            "d", "tv2", KV, side("v2").files, None, [side("v1", TableSchema(("k", "v"), ("v",)))]
        )
    with pytest.raises(ContractError, match="at least one diverged version"):
        queries.reconverge("d", "tv2", KV, side("v2").files, side("v1"), [])
