"""The rows of a verify's comparison result (``sql/verify.sql``), one per drifted key.

Result columns, by position (Athena lowercases the header, so names are not relied on)::

    kind, columns, target_row_key, target_version, target_k0 .. target_k{n-1}, <export columns>

- ``kind``: ``missing`` (in the export, not live in the target), ``extra`` (live in the target,
  not in the export: a row that never existed, or a tombstone brought back), ``different``
  (both, with other values);
- ``columns``: for ``different``, the names of the columns that differ (comma-separated), then
  any column the target row has and the export lacks, and item attributes that disagree with
  the item's key (``snapcdc.model.target_image``);
- ``target_*``: the target item's row key, version and key values, tagged as
  ``snapcdc.model.target_image`` writes them (NULL for ``missing``);
- then the export's row (NULL for ``extra``): what a repair writes.

>>> from snapcdc.model.contract import TableSchema
>>> schema = TableSchema(columns=("id", "name"), key=("id",))
>>> drift = parse_drift(["different", "name", "S1", "SV1", "S1", "1", "apple"], schema)
>>> (drift.kind, drift.key, drift.columns, drift.target_version, drift.row)
('different', '1', ['name'], 'V1', {'id': '1', 'name': 'apple'})
>>> parse_drift(["extra", None, "S9", "SV1", "S9", None, None], schema).key_values
['9']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from snapcdc.model.contract import TableSchema
from snapcdc.model.errors import ResultFormatError
from snapcdc.model.target_image import decode_text
from snapcdc.steps.consumer import row_key

KINDS = ("missing", "extra", "different")
LEADING = 4  # kind, columns, target row key, target version


@dataclass(frozen=True)
class Drift:
    """One drifted key: how it drifted, and what the export says it should be."""

    kind: str
    key: str  # the row key as the target stores it (a JSON array for a composite key)
    key_values: list[str] | None  # None: the target item's key is not one of this table's
    columns: list[str] = field(default_factory=list)
    target_version: str | None = None
    row: dict[str, str | None] | None = None  # the export's row (missing / different)

    def to_dict(self) -> dict[str, Any]:
        """The entry of the full list (``--keys-file``), one JSON object a line."""
        entry: dict[str, Any] = {"kind": self.kind, "key": self.key}
        if self.key_values is not None and len(self.key_values) > 1:
            entry["key_values"] = self.key_values
        if self.columns:
            entry["columns"] = self.columns
        if self.target_version is not None:
            entry["target_version"] = self.target_version
        return entry


def result_width(schema: TableSchema) -> int:
    return LEADING + len(schema.key) + len(schema.columns)


def parse_drift(fields: list[str | None], schema: TableSchema) -> Drift:
    """One result row as a :class:`Drift`; ResultFormatError when it is not of this shape."""
    if len(fields) != result_width(schema):
        raise ResultFormatError(
            f"verify result row has {len(fields)} fields, expected {result_width(schema)}"
        )
    kind = fields[0]
    if kind not in KINDS:
        raise ResultFormatError(f"unknown drift kind {kind!r} in the verify result")
    columns = [c for c in (fields[1] or "").split(",") if c]
    keys = len(schema.key)
    target_keys = fields[LEADING : LEADING + keys]
    exported = fields[LEADING + keys :]
    if kind == "extra":
        decoded = [decode_text(k) for k in target_keys]
        valid = all(k is not None and k.startswith("S") for k in target_keys)
        key_values = [str(v) for v in decoded] if valid else None
        key = decode_text(fields[2]) or ""
        row = None
    else:
        row = dict(zip(schema.columns, exported, strict=True))
        key_values = [row[k] or "" for k in schema.key]
        key = row_key(list(key_values))
    return Drift(
        kind=kind,
        key=key,
        key_values=key_values,
        columns=columns,
        target_version=decode_text(fields[3]) if fields[3] is not None else None,
        row=row,
    )
