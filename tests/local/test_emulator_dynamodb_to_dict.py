"""moto's items made plain dicts by type (:mod:`snapcdc_local.emulator.dynamodb`, fast path
``dynamodb-to-dict``) give what moto's ``dynamo_to_dict`` gives, for every kind of value.

Random items of every attribute type, nested maps and lists, binary values and sets included,
are stored by moto; each item answer moto builds from them (a Scan page, a GetItem, the
``Attributes`` of a write) is converted both ways and compared, Python types included
(``bytes`` stays ``bytes``, ``True`` stays ``True``, not ``1``).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from snapcdc_local.emulator import dynamodb, fast_paths

scalars = st.one_of(
    st.builds(lambda s: {"S": s}, st.text(max_size=4)),
    st.builds(lambda n: {"N": str(n)}, st.integers(-99, 99)),
    st.builds(lambda b: {"B": base64.b64encode(b).decode()}, st.binary(max_size=4)),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.just({"NULL": True}),
    st.builds(lambda s: {"SS": sorted(s)}, st.sets(st.text(max_size=3), min_size=1, max_size=3)),
    st.builds(lambda s: {"NS": sorted(map(str, s))}, st.sets(st.integers(0, 9), min_size=1)),
    st.builds(
        lambda s: {"BS": [base64.b64encode(b).decode() for b in s]},
        st.sets(st.binary(min_size=1, max_size=3), min_size=1, max_size=2),
    ),
)
attribute_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.builds(lambda v: {"L": v}, st.lists(inner, max_size=3)),
        st.builds(lambda v: {"M": v}, st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    ),
    max_leaves=8,
)
items = st.dictionaries(st.text(min_size=1, max_size=4), attribute_values, max_size=5)


def as_typed(value):
    """``value`` with every leaf's Python type beside it: ``1 == True`` must not pass."""
    if isinstance(value, dict):
        return {k: as_typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_typed(v) for v in value]
    return (type(value).__name__, value)


@settings(max_examples=150, deadline=None)
@given(attrs=st.lists(items, max_size=4), count=st.integers(0, 5))
def test_items_convert_as_motos_dynamo_to_dict_does(attrs, count):
    from moto.dynamodb import responses
    from moto.dynamodb.models.dynamo_type import Item

    original = responses.dynamo_to_dict
    stored = [Item(hash_key=None, range_key=None, attrs=a) for a in attrs]
    result = {
        "Items": [item.attrs for item in stored],
        "Count": count,
        "LastEvaluatedKey": stored[-1].attrs if stored else None,
        "Attributes": stored[0] if stored else {},  # an object with to_json: moto's own way
        "When": datetime(2026, 12, 8, tzinfo=UTC),
    }
    with dynamodb._fast_to_dict():
        assert responses.dynamo_to_dict is not original  # the fast conversion is the one used
        fast = responses.dynamo_to_dict(result)
    assert as_typed(fast) == as_typed(original(result))


def test_the_moto_code_it_stands_in_for_is_the_code_it_was_proven_on():
    assert fast_paths.changed_source(dynamodb.TO_DICT_SOURCES) is None
