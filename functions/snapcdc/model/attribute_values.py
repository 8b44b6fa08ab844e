"""Plain Python values <-> DynamoDB attribute values (pure: no call to AWS).

Numbers come back from DynamoDB as Decimal; they are turned into int (or float) so results can
go straight into JSON (Step Functions state, logs).

>>> to_item({"n": 3, "s": "x", "none": None, "m": {"a": None}})
{'n': {'N': '3'}, 's': {'S': 'x'}, 'none': {'NULL': True}, 'm': {'M': {'a': {'NULL': True}}}}
>>> from_item({"n": {"N": "3"}, "l": {"L": [{"N": "1.5"}]}})
{'n': 3, 'l': [1.5]}
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: to_value(v) for k, v in values.items()}


def to_value(value: Any) -> dict[str, Any]:
    """One attribute value. Strings, null, booleans and maps of them (every target row) are
    written here; anything else as boto3's ``TypeSerializer`` writes it (it is 4x slower on a
    row, and the consumer writes one item per op)."""
    kind = type(value)
    if kind is str:
        return {"S": value}
    if value is None:
        return {"NULL": True}
    if kind is bool:
        return {"BOOL": value}
    if kind is dict and all(type(k) is str for k in value):
        return {"M": {k: to_value(v) for k, v in value.items()}}
    return _SERIALIZER.serialize(_to_dynamo(value))


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: from_value(v) for k, v in item.items()}


def from_value(value: dict[str, Any]) -> Any:
    """One attribute value read back: the kinds :func:`to_value` writes itself are read here,
    the rest by boto3's ``TypeDeserializer`` (numbers made int or float)."""
    if len(value) == 1:
        if "S" in value:
            return value["S"]
        if "NULL" in value:
            return None
        if "BOOL" in value:
            return value["BOOL"]
        if "M" in value:
            return {k: from_value(v) for k, v in value["M"].items()}
    return _from_dynamo(_DESERIALIZER.deserialize(value))


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return [_from_dynamo(v) for v in value]
    return value
