"""A target item as the verify comparison reads it: one CSV row of fixed, positional columns.

The verify step turns each item of a DynamoDB export of the target table (DynamoDB JSON,
``{"pk": {"S": ...}, "row": {"M": {...}}, ...}``) that belongs to a verified table into one
row of a CSV file, which Athena then joins with the table's last applied export
(``sql/verify.sql``). The columns are the verify's own, so no column name of the user's table
can collide with them, and Athena folding names to lowercase changes nothing::

    row_key, live, version, k0 .. k{n-1}, c0 .. c{m-1}, extra, attrs

- ``k``: the key values (decoded from ``row_key``: the value itself, or a JSON array for a
  composite key), ``c``: the values of the head's columns in the head's order, taken from the
  item's ``row`` map by their exact names;
- ``live``: ``true`` unless the item is a tombstone (``deleted`` is true);
- ``extra``: names in the ``row`` map that the head's schema does not have;
- ``attrs``: item attributes that disagree with the item's key (``table_id``, ``row_key``), or
  ``row`` when it is not a map.

Every value is written with a one-letter tag, so NULL, an empty string and an absent column
differ, and a value Athena's CSV reader would alter never passes for another one:

- ``S<text>``: a string without CR, LF or NUL (what the pipeline writes for every value);
- ``N``: NULL;
- ``A``: absent (no such column in the row map);
- ``X<json>``: anything else (a number, a boolean, a nested value, or a string holding CR, LF
  or NUL, which OpenCSVSerDe would split or drop), as canonical JSON.

The export side is written the same way in SQL (``'S' || value``, NULL as ``N``), so a value
the pipeline wrote compares equal exactly when it equals the export's value.

>>> encode({"S": ""}), encode({"NULL": True}), encode(None), encode({"N": "5"})
('S', 'N', 'A', 'X{"N":"5"}')
>>> encode({"S": "a\\nb"})
'X{"S":"a\\\\nb"}'
>>> decode_text("Sabc"), decode_text("N"), decode_text('X{"S":"a\\\\nb"}')
('abc', None, 'a\\nb')
>>> key_values('["a","b|c"]', 2), key_values("PK1", 1), key_values('["a", "b"]', 2)
(['a', 'b|c'], ['PK1'], None)
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

UNSAFE = re.compile(r"[\r\n\x00]")
LIVE, DEAD = "true", "false"


def encode(attribute: Any) -> str:
    """One DynamoDB attribute value (or None: absent) as its tagged text."""
    if attribute is None:
        return "A"
    if isinstance(attribute, dict) and len(attribute) == 1:
        ((kind, value),) = attribute.items()
        if kind == "S" and isinstance(value, str) and not UNSAFE.search(value):
            return "S" + value
        if kind == "NULL" and value is True:
            return "N"
    return "X" + json.dumps(attribute, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def encode_text(value: str | None) -> str:
    """A plain value (a key, the pipeline's string or NULL) as :func:`encode` writes it."""
    return encode({"NULL": True} if value is None else {"S": value})


def decode_text(text: str | None) -> str | None:
    """The value a tagged text stands for, as a string (for reports: ``X`` values give their
    string if they hold one, else their JSON)."""
    if text is None or text in ("N", "A"):
        return None
    if text.startswith("S"):
        return text[1:]
    if text.startswith("X"):
        value = json.loads(text[1:])
        if isinstance(value, dict) and isinstance(value.get("S"), str) and len(value) == 1:
            return value["S"]
        return text[1:]
    return text


def key_values(row_key: str, key_count: int) -> list[str] | None:
    """The key values a target ``row_key`` stands for (``snapcdc.steps.consumer.row_key``
    written backwards), or None when the text is not what the consumer writes for a key of
    ``key_count`` columns."""
    if key_count == 1:
        return [row_key]
    try:
        values = json.loads(row_key)
    except ValueError:
        return None
    if (
        not isinstance(values, list)
        or len(values) != key_count
        or not all(isinstance(v, str) for v in values)
        or json.dumps(values, separators=(",", ":"), ensure_ascii=False) != row_key
    ):
        return None
    return values


def column_names(key_count: int, column_count: int) -> list[str]:
    """The CSV's columns (see the module docstring).

    >>> column_names(2, 3)
    ['row_key', 'live', 'version', 'k0', 'k1', 'c0', 'c1', 'c2', 'extra', 'attrs']
    """
    return [
        "row_key",
        "live",
        "version",
        *(f"k{i}" for i in range(key_count)),
        *(f"c{i}" for i in range(column_count)),
        "extra",
        "attrs",
    ]


def table_of(pk: str) -> tuple[str, str] | None:
    """``(table_id, row_key)`` of a target partition key (``tenant/table#rowkey``): the
    partition key, not the ``table_id`` attribute, says which table an item belongs to.

    >>> table_of("acme/items#1"), table_of("nothing")
    (('acme/items', '1'), None)
    """
    table_id, sep, row_key = pk.partition("#")
    return (table_id, row_key) if sep else None


def image(
    item: dict[str, Any], table_id: str, row_key: str, columns: Sequence[str], key_count: int
) -> list[str]:
    """One export item (DynamoDB JSON) of ``table_id`` as its CSV row."""
    values = key_values(row_key, key_count)
    keys = (
        [encode_text(v) for v in values]
        if values is not None
        else [encode({"S": row_key, "invalid_key": True})] * key_count
    )
    attrs = []
    if item.get("table_id") != {"S": table_id}:
        attrs.append("table_id")
    if item.get("row_key") != {"S": row_key}:
        attrs.append("row_key")
    row = item.get("row")
    fields: dict[str, Any] = {}
    if isinstance(row, dict) and isinstance(row.get("M"), dict) and len(row) == 1:
        fields = row["M"]
    elif row is not None:
        attrs.append("row")
    known = set(columns)
    # a name is anything a writer behind the pipeline's back chose: never a raw line end
    extra = sorted(
        json.dumps(name) if UNSAFE.search(name) else name for name in fields if name not in known
    )
    live = DEAD if item.get("deleted") == {"BOOL": True} else LIVE
    return [
        encode_text(row_key),
        live,
        encode(item.get("version")),
        *keys,
        *(encode(fields.get(name)) for name in columns),
        ",".join(extra),
        ",".join(attrs),
    ]
