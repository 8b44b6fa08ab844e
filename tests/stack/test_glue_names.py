"""Glue names derived from tenant/table/version never collide and always satisfy Glue/Athena.

Glue stores names lowercase, 1-255 bytes
(https://docs.aws.amazon.com/athena/latest/ug/tables-databases-columns-names.html). The
property tests decode every derived table name back to its (table, version), which proves the
mapping injective for each sample, and check the name against those rules.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snapcdc.model.names import (
    NAME_RE,
    TABLE_SEPARATOR,
    VERSION_RE,
    export_table_name,
    glue_database,
)

GLUE_RULE = re.compile(r"[a-z][a-z0-9_]*")
PREFIX = "snapcdc_51af3dc0_"  # the shape CloudFormation gives the prefix (see test_template)

names = st.from_regex(NAME_RE, fullmatch=True)
# Versions biased towards what collides when names are lowercased: case and '_' runs.
versions = st.from_regex(VERSION_RE, fullmatch=True) | st.text(
    alphabet="xX_1", min_size=1, max_size=64
).filter(VERSION_RE.fullmatch)
tables = names | st.text(alphabet="x_a1", min_size=1, max_size=63).filter(NAME_RE.fullmatch)


def decode(name: str) -> tuple[str, str]:
    """The (table, version) a derived table name spells (the test's own oracle)."""
    parts: list[list[str]] = [[]]
    i = 0
    while i < len(name):
        c = name[i]
        if c != "_":
            parts[-1].append(c)
            i += 1
            continue
        nxt = name[i + 1]
        if nxt == "_":
            parts[-1].append("_")
        elif len(parts) == 1:
            assert name[i : i + 2] == TABLE_SEPARATOR, name
            parts.append([])
        else:
            parts[-1].append(nxt.upper())
        i += 2
    assert len(parts) == 2, name
    return "".join(parts[0]), "".join(parts[1])


def assert_valid(name: str) -> None:
    assert GLUE_RULE.fullmatch(name), name
    assert 1 <= len(name.encode()) <= 255, (name, len(name))


@settings(max_examples=500, deadline=None)
@given(table=tables, version=versions)
def test_table_names_decode_back_to_table_and_version(table, version):
    name = export_table_name(table, version)
    assert_valid(name)
    assert decode(name) == (table, version)


@settings(max_examples=300, deadline=None)
@given(
    a=st.tuples(names, tables, versions),
    b=st.tuples(names, tables, versions),
)
def test_distinct_triples_never_share_a_database_and_table(a, b):
    def glue(triple):
        tenant, table, version = triple
        return glue_database(PREFIX, tenant), export_table_name(table, version)

    for name in glue(a):
        assert_valid(name)
    assert (glue(a) == glue(b)) == (a == b)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("items", "X_V1"), ("items", "X_v1")),  # case (the reproduction)
        (("x", "a__1"), ("x__a", "1")),  # '_' runs moving across the table/version border
        (("x", "bA"), ("x", "b_a")),  # an uppercase letter against its escape spelled out
        (("x_v", "1"), ("x", "v_1")),  # the separator's letters in the names
        (("a", "V1"), ("a_v", "1")),
    ],
)
def test_named_collisions_are_distinct(first, second):
    assert export_table_name(*first) != export_table_name(*second)


def test_longest_names_fit_glue():
    longest = export_table_name("a" + "_" * 62, "A" + "_" * 63)
    assert len(longest) == 255
    assert_valid(longest)
    assert_valid(glue_database(PREFIX, "t" * 63))
