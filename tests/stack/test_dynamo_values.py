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


def check_written(written, value) -> None:
    """``written`` is ``value`` in DynamoDB's attribute-value form, by the wire format's own
    rules (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_AttributeValue.html),
    not by the code under test: a number is its decimal text (a float the shortest text that
    reads back as it), bytes are B, a list L, a map M."""
    if value is None:
        assert written == {"NULL": True}
    elif isinstance(value, bool):
        assert written == {"BOOL": value}
    elif isinstance(value, str):
        assert written == {"S": value}
    elif isinstance(value, bytes):
        assert written == {"B": value}
    elif isinstance(value, int):
        assert written == {"N": str(value)}
    elif isinstance(value, float):
        assert list(written) == ["N"] and Decimal(written["N"]) == Decimal(repr(value)), written
    elif isinstance(value, list):
        assert list(written) == ["L"] and len(written["L"]) == len(value), written
        for item, element in zip(written["L"], value, strict=True):
            check_written(item, element)
    else:
        assert list(written) == ["M"] and set(written["M"]) == set(value), written
        for key, element in value.items():
            check_written(written["M"][key], element)


def decimal(number) -> Decimal:
    return Decimal(repr(number)) if isinstance(number, float) else Decimal(number)


def check_read(read, value) -> None:
    """``read`` is ``value`` as written: numbers as int when whole (JSON-ready), else float."""
    if isinstance(value, bool) or value is None or isinstance(value, str | bytes):
        assert read == value and type(read) is not Decimal
    elif isinstance(value, int | float):
        # the number stored is the decimal text written (a float's shortest repr)
        assert decimal(read) == decimal(value), (read, value)
        assert type(read) is (int if float(value).is_integer() else float), (read, value)
    elif isinstance(value, list):
        assert isinstance(read, list) and len(read) == len(value)
        for got, element in zip(read, value, strict=True):
            check_read(got, element)
    else:
        assert isinstance(read, dict) and set(read) == set(value)
        for key, element in value.items():
            check_read(read[key], element)


@settings(max_examples=300, deadline=None)
@given(value=values)
def test_a_value_is_written_in_dynamodbs_form(value):
    written = to_value(value)
    check_written(written, value)
    # and boto3 (what the resources and the AWS CLI use) reads it as the same value
    check_read(_from_dynamo(TypeDeserializer().deserialize(written)), value)


@settings(max_examples=300, deadline=None)
@given(value=values)
def test_a_value_reads_back_as_written(value):
    check_read(from_value(TypeSerializer().serialize(_to_dynamo(value))), value)
    check_read(from_value(to_value(value)), value)


@settings(max_examples=100, deadline=None)
@given(row=st.dictionaries(st.text(min_size=1, max_size=6), st.none() | st.text(), max_size=6))
def test_a_target_row_reads_back_as_written(row):
    item = {"pk": "t#k", "row": row, "deleted": False}
    assert from_item(to_item(item)) == item


def test_numbers_and_sets_still_go_through_boto3():
    assert to_value(3) == {"N": "3"}
    assert to_value(Decimal("1.5")) == {"N": "1.5"}
    assert to_value({"a", "b"})["SS"] in (["a", "b"], ["b", "a"])
