"""Multi-part versions: the ``_manifest.json`` that completes one, and the parts it lists.

A table with ``complete_on: "manifest"`` in its ``_table.json`` receives each version as parts
under the version prefix plus a manifest naming them, relative to that prefix::

    {"files": ["part-0000.csv.gz", {"name": "part-0001.csv.gz", "size": 1043}], "rows": 2000}

A part's arrival starts nothing (see ``completion``); the manifest's arrival starts the
pipeline, which reads exactly the listed parts. Every listed part must exist (with the given
size, when one is given), and a ``.csv.gz`` directly under the version prefix that the manifest
does not list is an *extra* part: the version fails naming it, since the exporter and the
manifest disagree about what the version is. Other objects there (``.tmp``, ``_SUCCESS``, ...)
are ignored: no query reads them (every query names its files through ``"$path"``).
``rows``, when given, must equal the export's row count (checked with the export check).

>>> m = parse_manifest('{"files": ["a.csv.gz", {"name": "b.csv.gz", "size": 3}], "rows": 2}')
>>> (m.files, m.rows)
((('a.csv.gz', None), ('b.csv.gz', 3)), 2)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from snapcdc.model.contract import (
    EXPORT_SUFFIX,
    MANIFEST_FILE,
    ContractError,
    ExportRef,
    TableConfig,
    parse_export_key,
)

MAX_MANIFEST_BYTES = 1024 * 1024
MAX_PARTS = 1000  # every part is one "$path" literal in each statement (262,144-byte limit)


@dataclass(frozen=True)
class Manifest:
    files: tuple[tuple[str, int | None], ...]  # (name relative to the version prefix, size)
    rows: int | None = None


def completion(config: TableConfig, ref: ExportRef) -> str:
    """What an uploaded object is for its table: ``version`` (it starts the pipeline) or
    ``part`` (one part of a manifest version: it starts nothing).

    >>> completion(TableConfig(complete_on="manifest"), parse_export_key("t/x/V1/p.csv.gz"))
    'part'
    >>> completion(TableConfig(), parse_export_key("t/x/V1/_manifest.json"))
    Traceback (most recent call last):
    ...
    snapcdc.model.errors.ContractError: t/x/V1/_manifest.json: table t/x completes ...
    """
    if config.complete_on == "manifest":
        return "version" if ref.is_manifest else "part"
    if ref.is_manifest:
        raise ContractError(
            f"{ref.key}: table {ref.table_id} completes a version on each file "
            f'(complete_on "file"); to load multi-part versions by their {MANIFEST_FILE}, set '
            f'"complete_on": "manifest" in {ref.config_key}'
        )
    return "version"


def parse_manifest(text: str | bytes, where: str = MANIFEST_FILE) -> Manifest:
    """Validate a manifest's JSON; errors name ``where`` and the offending entry."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ContractError(f"{where} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ContractError(f"{where} must be a JSON object with files, got {type(raw).__name__}")
    unknown = sorted(set(raw) - {"files", "rows"})
    if unknown:
        raise ContractError(f"{where}: unknown field(s) {unknown}; known: ['files', 'rows']")
    entries = raw.get("files")
    if not isinstance(entries, list) or not entries:
        raise ContractError(f"{where}: files must be a non-empty list of part names")
    if len(entries) > MAX_PARTS:
        raise ContractError(f"{where} lists {len(entries)} parts, at most {MAX_PARTS} are read")
    files = []
    for entry in entries:
        name, size = _entry(entry, where)
        if name in (f for f, _ in files):
            raise ContractError(f"{where} lists part {name!r} twice")
        files.append((name, size))
    rows = raw.get("rows")
    if rows is not None and (not isinstance(rows, int) or isinstance(rows, bool) or rows < 0):
        raise ContractError(f"{where}: rows must be a non-negative integer, got {rows!r}")
    return Manifest(files=tuple(files), rows=rows)


def _entry(entry: Any, where: str) -> tuple[str, int | None]:
    size = None
    if isinstance(entry, dict):
        unknown = sorted(set(entry) - {"name", "size"})
        if unknown or "name" not in entry:
            raise ContractError(
                f"{where}: a files entry must be a name or {{name, size}}, got {entry!r}"
            )
        name, size = entry["name"], entry.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise ContractError(f"{where}: size of {name!r} must be a byte count, got {size!r}")
    else:
        name = entry
    if not isinstance(name, str) or "/" in name or not name.endswith(EXPORT_SUFFIX):
        raise ContractError(
            f"{where}: part {name!r} must be a file name ending in {EXPORT_SUFFIX}, "
            "relative to the version prefix"
        )
    try:
        parse_export_key(f"t/t/v/{name}")  # the file name rules of an export key
    except ContractError as exc:
        raise ContractError(f"{where}: part {name!r}: {exc}") from None
    return name, size


def read_manifest(s3: Any, bucket: str, ref: ExportRef) -> Manifest:
    text = s3.get_object(Bucket=bucket, Key=ref.key)["Body"].read(MAX_MANIFEST_BYTES + 1)
    if len(text) > MAX_MANIFEST_BYTES:
        raise ContractError(f"{ref.key} is larger than {MAX_MANIFEST_BYTES:,} bytes")
    return parse_manifest(text, ref.key)


def version_parts(s3: Any, bucket: str, ref: ExportRef, manifest: Manifest) -> list[str]:
    """The keys of the manifest's parts, in its order, once each is present with its size and
    no unlisted ``.csv.gz`` lies beside them; else ContractError naming the part."""
    present: dict[str, int] = {}
    # ListObjectsV2 returns up to 1,000 keys per page with a continuation token
    # (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html).
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=ref.version_prefix
    ):
        for obj in page.get("Contents", []):
            name = obj["Key"][len(ref.version_prefix) :]
            if "/" not in name:
                present[name] = int(obj["Size"])
    listed = dict(manifest.files)
    problems = []
    for name, size in manifest.files:
        if name not in present:
            problems.append(f"part {name} is listed but missing")
        elif size is not None and present[name] != size:
            problems.append(f"part {name} is {present[name]:,} bytes, the manifest says {size:,}")
    extra = sorted(n for n in present if n.endswith(EXPORT_SUFFIX) and n not in listed)
    problems += [f"part {name} is not listed in the manifest" for name in extra]
    if problems:
        raise ContractError(
            f"version {ref.version} of {ref.table_id} ({ref.key}): " + "; ".join(problems)
        )
    return [f"{ref.version_prefix}{name}" for name, _ in manifest.files]
