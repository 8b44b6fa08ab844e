"""The export and table contract: where exports land and how a table is described (which names
are legal: ``snapcdc.model.names``).

Every key and table configuration passes through this module first, every name in them through
``snapcdc.model.names``. Validation is strict and errors name the offending value, so a bad key
or header row is rejected before it gets anywhere near a query.

>>> ref = parse_export_key("tenant/test_table/20201230_V0001/export1.csv.gz")
>>> (ref.tenant, ref.table, ref.version, ref.file)
('tenant', 'test_table', '20201230_V0001', 'export1.csv.gz')
>>> ref.version_prefix
'tenant/test_table/20201230_V0001/'
>>> TableConfig.from_json('{"columns": ["PK", "COL_1"], "header": false}').resolve().key
('PK',)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from snapcdc.model.errors import TABLE_CONFIG_FILE, ContractError, Setting
from snapcdc.model.names import (
    validate_columns,
    validate_file_name,
    validate_name,
    validate_version,
)

EXPORT_SUFFIX = ".csv.gz"
# A multi-part version's completion marker (``complete_on: "manifest"``, snapcdc.model.manifest).
MANIFEST_FILE = "_manifest.json"
COMPLETE_ON = ("file", "manifest")


@dataclass(frozen=True)
class ExportRef:
    """One export object: ``{tenant}/{table}/{version}/{file}.csv.gz`` in the import bucket."""

    tenant: str
    table: str
    version: str
    file: str

    @property
    def table_id(self) -> str:
        """``tenant/table``: the unit that is locked and versioned."""
        return f"{self.tenant}/{self.table}"

    @property
    def version_prefix(self) -> str:
        """The prefix that holds this version's files (the external table's LOCATION)."""
        return f"{self.tenant}/{self.table}/{self.version}/"

    @property
    def key(self) -> str:
        return f"{self.version_prefix}{self.file}"

    @property
    def is_manifest(self) -> bool:
        return self.file == MANIFEST_FILE

    @property
    def config_key(self) -> str:
        return table_config_key(self.tenant, self.table)


def table_config_key(tenant: str, table: str) -> str:
    """Where a table's optional ``_table.json`` lives."""
    return f"{tenant}/{table}/{TABLE_CONFIG_FILE}"


def parse_export_key(key: str) -> ExportRef:
    """Split and validate an export object key.

    >>> parse_export_key("Tenant/t/v1/x.csv.gz")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    snapcdc.model.errors.ContractError: invalid tenant 'Tenant': expected lowercase letters, ...
    """
    if not isinstance(key, str):
        raise ContractError(f"export key must be a string, got {key!r}")
    parts = key.split("/")
    if len(parts) != 4:
        raise ContractError(
            f"export key {key!r} is not of the form "
            f"{{tenant}}/{{table}}/{{version}}/{{file}}{EXPORT_SUFFIX}"
        )
    tenant, table, version, file = parts
    validate_name(tenant, "tenant")
    validate_name(table, "table")
    validate_version(version)
    if file == MANIFEST_FILE:
        return ExportRef(tenant, table, version, file)
    validate_file_name(file)
    if not file.endswith(EXPORT_SUFFIX):
        raise ContractError(f"export file {file!r} does not end in {EXPORT_SUFFIX}")
    return ExportRef(tenant, table, version, file)


_SINGLE_CHAR_OPTIONS = ("delimiter", "quote", "escape")


@dataclass(frozen=True)
class TableConfig:
    """A table's ``_table.json``; every field optional.

    - ``columns``: column names in file order (required when ``header`` is false). With a
      header row and no ``columns``, the header names the columns; with ``columns``, the header
      row is only checked to have as many fields and the columns take the configured names
      (so a header such as ``Contact Phone`` or ``e-mail`` can be loaded).
    - ``key``: key columns (composite keys allowed); default: the key of the version applied
      before when the export still has its columns, else the first column.
    - ``delimiter`` (default ``,``), ``quote`` (default ``"``), ``escape`` (default none: a
      quote inside a quoted field is doubled), each a single character.
    - ``header`` (default true): the first line of each file names the columns.
    - ``complete_on`` (default ``"file"``): ``"file"``, each ``.csv.gz`` is a version;
      ``"manifest"``, a version is complete when its ``_manifest.json`` arrives and is the
      parts that manifest lists (``snapcdc.model.manifest``).
    - ``max_delete_fraction`` (default 0.5): a delta that would DELETE more than this fraction
      of the previous version's rows is held for approval (``snapcdc.steps.hold``); 1.0 turns
      the guard off.
    - ``allow_empty`` (default false): a version with no rows after a non-empty one is held
      unless this is true; when true, such a version is applied whatever
      ``max_delete_fraction`` says.
    """

    columns: tuple[str, ...] | None = None
    key: tuple[str, ...] | None = None
    delimiter: str = ","
    quote: str = '"'
    escape: str | None = None
    header: bool = True
    complete_on: str = "file"
    max_delete_fraction: float = 0.5
    allow_empty: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.columns is not None:
            object.__setattr__(self, "columns", validate_columns(self.columns, "columns"))
        if self.key is not None:
            object.__setattr__(self, "key", validate_columns(self.key, "key"))
        for option in _SINGLE_CHAR_OPTIONS:
            value = getattr(self, option)
            if option == "escape" and value is None:
                continue
            if not isinstance(value, str) or len(value) != 1 or value in "\r\n":
                raise ContractError(
                    f"{option} must be a single character (not a newline), got {value!r}"
                )
        if self.delimiter == self.quote:
            raise ContractError(f"delimiter and quote must differ, both are {self.delimiter!r}")
        if not isinstance(self.header, bool):
            raise ContractError(f"header must be true or false, got {self.header!r}")
        if self.complete_on not in COMPLETE_ON:
            raise ContractError(
                f"complete_on must be one of {list(COMPLETE_ON)}, got {self.complete_on!r}"
            )
        fraction = self.max_delete_fraction
        if (
            isinstance(fraction, bool)
            or not isinstance(fraction, int | float | Decimal)
            or not 0 <= fraction <= 1
        ):
            raise ContractError(
                f"max_delete_fraction must be a number from 0 to 1 (1.0 turns the guard off), "
                f"got {fraction!r}"
            )
        object.__setattr__(self, "max_delete_fraction", float(fraction))
        if not isinstance(self.allow_empty, bool):
            raise ContractError(f"allow_empty must be true or false, got {self.allow_empty!r}")
        if not self.header and self.columns is None:
            raise ContractError("a table without a header row must declare its columns")
        if self.columns is not None and self.key is not None:
            check_key(self.key, self.columns)

    @classmethod
    def from_dict(cls, raw: Any) -> TableConfig:
        if not isinstance(raw, dict):
            raise ContractError(
                f"table configuration must be a JSON object, got {type(raw).__name__}"
            )
        known = {
            "columns", "key", "delimiter", "quote", "escape", "header",
            "complete_on", "max_delete_fraction", "allow_empty",
        }  # fmt: skip
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ContractError(
                f"unknown table configuration option(s) {unknown}; known: {sorted(known)}"
            )
        args = dict(raw)
        for name in ("columns", "key"):
            if name in args and args[name] is not None:
                if isinstance(args[name], str):
                    args[name] = [args[name]]
                args[name] = tuple(args[name]) if isinstance(args[name], list) else args[name]
        return cls(**args)

    @classmethod
    def from_json(cls, text: str | bytes) -> TableConfig:
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise ContractError(f"table configuration is not valid JSON: {exc}") from None
        return cls.from_dict(raw)

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": list(self.columns) if self.columns else None,
            "key": list(self.key) if self.key else None,
            "delimiter": self.delimiter,
            "quote": self.quote,
            "escape": self.escape,
            "header": self.header,
            "complete_on": self.complete_on,
            "max_delete_fraction": self.max_delete_fraction,
            "allow_empty": self.allow_empty,
        }

    def resolve(
        self,
        header_columns: list[str] | tuple[str, ...] | None = None,
        previous_key: tuple[str, ...] | list[str] | None = None,
    ) -> TableSchema:
        """Combine the configuration with the export's header row (if any) into a schema.

        Without a configured ``key``, the key is ``previous_key`` (the key of the version applied
        before) when the export still has those columns, so reordering a headered export's
        columns keeps its key; else the first column.

        >>> TableConfig().resolve(["name", "id"], previous_key=("id",)).key
        ('id',)
        """
        if self.header:
            if header_columns is None:
                raise ContractError("the table has a header row but none was read")
            columns = self._header_columns(list(header_columns))
        else:
            assert self.columns is not None  # enforced in __post_init__
            columns = self.columns
        key = self.key or _still_present(previous_key, columns) or (columns[0],)
        return TableSchema(columns=columns, key=check_key(key, columns))

    def _header_columns(self, header: list[str]) -> tuple[str, ...]:
        """The columns of an export with a header row: ``columns`` when configured (the header
        only has to have as many fields), else the header's names, which must be legal."""
        if self.columns is not None:
            if len(header) != len(self.columns):
                raise ContractError(
                    f"the header row has {len(header)} field(s) {header}, the configured "
                    f"columns are {len(self.columns)}: {list(self.columns)}"
                )
            return self.columns
        try:
            return validate_columns(header, "header row")
        except ContractError as exc:
            raise ContractError(
                f"{exc}; to load this export, ",
                Setting("columns", legal_names(header)),
                ", one legal name per header field (the header row is then only checked for "
                "its number of fields)",
            ) from None


def legal_names(header: list[str]) -> list[str] | None:
    """The header's names made legal column names (``Contact Phone`` -> ``Contact_Phone``), to
    suggest as ``columns``; None when that gives no valid list (names that then clash).

    >>> legal_names(["id", "Contact Phone", "e-mail", "2nd"])
    ['id', 'Contact_Phone', 'e_mail', 'c_2nd']
    >>> legal_names(["a b", "a-b"]) is None
    True
    """
    names = []
    for number, name in enumerate(header, 1):
        legal = re.sub(r"[^A-Za-z0-9_]+", "_", name.strip()).strip("_") or f"column_{number}"
        names.append(f"c_{legal}" if legal[0].isdigit() else legal)
    try:
        return list(validate_columns(names, "header row"))
    except ContractError:
        return None


def _still_present(
    key: tuple[str, ...] | list[str] | None, columns: tuple[str, ...]
) -> tuple[str, ...] | None:
    folded = {c.lower() for c in columns}
    if key and all(k.lower() in folded for k in key):
        return tuple(key)
    return None


def check_key(key: tuple[str, ...], columns: tuple[str, ...]) -> tuple[str, ...]:
    """Return the key with each column spelled as in ``columns``; raise if one is missing."""
    by_folded = {c.lower(): c for c in columns}
    resolved = []
    for k in key:
        if k.lower() not in by_folded:
            raise ContractError(f"key column {k!r} is not among the columns {list(columns)}")
        resolved.append(by_folded[k.lower()])
    return tuple(resolved)


@dataclass(frozen=True)
class TableSchema:
    """The columns (file order, original spelling) and key of one export version."""

    columns: tuple[str, ...]
    key: tuple[str, ...]

    def to_dict(self) -> dict[str, list[str]]:
        return {"columns": list(self.columns), "key": list(self.key)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TableSchema:
        columns = validate_columns(raw["columns"])
        return cls(columns=columns, key=check_key(validate_columns(raw["key"], "key"), columns))
