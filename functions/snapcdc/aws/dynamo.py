"""DynamoDB request pieces built from plain values.

The attribute values themselves are ``snapcdc.model.attribute_values`` (pure, shared with the
size limits); they are re-exported here for the adapters that build requests.

>>> update_expression({"status": "FAILED"})["ExpressionAttributeValues"]
{':v0': {'S': 'FAILED'}}
"""

from __future__ import annotations

from typing import Any

# re-exported, the two private ones too: tests compare them with boto3's own converters
from snapcdc.model.attribute_values import _from_dynamo as _from_dynamo
from snapcdc.model.attribute_values import _to_dynamo as _to_dynamo
from snapcdc.model.attribute_values import from_item as from_item
from snapcdc.model.attribute_values import from_value as from_value
from snapcdc.model.attribute_values import to_item as to_item
from snapcdc.model.attribute_values import to_value


def update_expression(values: dict[str, Any]) -> dict[str, Any]:
    """UpdateItem arguments that SET every field of ``values`` (names and values as placeholders).

    >>> update_expression({"status": "FAILED"})["UpdateExpression"]
    'SET #f0 = :v0'
    """
    names, vals, sets = {}, {}, []
    for i, (name, value) in enumerate(values.items()):
        names[f"#f{i}"] = name
        vals[f":v{i}"] = to_value(value)
        sets.append(f"#f{i} = :v{i}")
    return {
        "UpdateExpression": "SET " + ", ".join(sets),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": vals,
    }
