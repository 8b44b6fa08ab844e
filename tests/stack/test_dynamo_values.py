"""Attribute values written as boto3's TypeSerializer writes them, and read back as written."""

from __future__ import annotations

from decimal import Decimal

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from hypothesis import given, settings
from hypothesis import strategies as st

from snapcdc.aws.dynamo import _from_dynamo, _to_dynamo, from_item, from_value, to_item, to_value

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=8),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.binary(max_size=4),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(value=values)
def test_a_value_is_written_as_boto3_writes_it(value):
    assert to_value(value) == TypeSerializer().serialize(_to_dynamo(value))


@settings(max_examples=300, deadline=None)
@given(value=values)
def test_a_value_is_read_as_boto3_reads_it(value):
    written = TypeSerializer().serialize(_to_dynamo(value))
    assert from_value(written) == _from_dynamo(TypeDeserializer().deserialize(written))


@settings(max_examples=100, deadline=None)
@given(row=st.dictionaries(st.text(min_size=1, max_size=6), st.none() | st.text(), max_size=6))
def test_a_target_row_reads_back_as_written(row):
    item = {"pk": "t#k", "row": row, "deleted": False}
    assert from_item(to_item(item)) == item


def test_numbers_and_sets_still_go_through_boto3():
    assert to_value(3) == {"N": "3"}
    assert to_value(Decimal("1.5")) == {"N": "1.5"}
    assert to_value({"a", "b"})["SS"] in (["a", "b"], ["b", "a"])
