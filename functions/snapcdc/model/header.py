"""What an export declares before any query runs: its table's ``_table.json`` and the header row
its files start with, resolved into the version's schema.

Plan reads them from S3 (a header with ranged GETs: only the first few KiB of a large export);
Register reads the table configuration; ``snapcdc diff`` reads a local file's header and
resolves its schema through the same functions, so both judge a header alike.
"""

from __future__ import annotations

import csv
import io
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from snapcdc.model.contract import ContractError, ExportRef, TableConfig, TableSchema

HEADER_RANGE_BYTES = 64 * 1024
MAX_HEADER_BYTES = 1024 * 1024


def read_table_config(s3: Any, bucket: str, ref: ExportRef) -> TableConfig:
    """The table's ``_table.json``, or the defaults (header row, ``,``) when there is none."""
    from botocore.exceptions import ClientError  # here: snapcdc diff runs without botocore

    try:
        body = s3.get_object(Bucket=bucket, Key=ref.config_key)["Body"].read()
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
            return TableConfig()
        raise
    try:
        return TableConfig.from_json(body)
    except ContractError as exc:
        raise ContractError(f"s3://{bucket}/{ref.config_key}: {exc}") from None


def read_header(s3: Any, bucket: str, key: str, config: TableConfig) -> list[str]:
    """The column names in the export's first line: ranged GETs of the gzip, decompressed as
    they arrive, until the first newline (only the first few KiB are read)."""
    return header_fields(gunzipped(_ranges(s3, bucket, key), key), config, key)


def _ranges(s3: Any, bucket: str, key: str) -> Iterator[bytes]:
    from botocore.exceptions import ClientError  # here: snapcdc diff runs without botocore

    start = 0
    while True:
        if start >= MAX_HEADER_BYTES:
            raise ContractError(f"no header line in the first {MAX_HEADER_BYTES} bytes of {key}")
        end = start + HEADER_RANGE_BYTES - 1
        try:
            chunk = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end}")[
                "Body"
            ].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "InvalidRange":
                return  # read past the end: the file is one line without a newline
            raise
        yield chunk
        if len(chunk) < HEADER_RANGE_BYTES:
            return
        start += len(chunk)


def gunzipped(chunks: Iterable[bytes], name: str) -> Iterator[bytes]:
    """The decompressed bytes of a gzip export given as it is read (up to the end of its first
    gzip member, which holds the header row). ``snapcdc diff`` reads a ``.gz`` file through
    here too, so both say the same of a file that is not gzip.

    >>> list(gunzipped([b"id,name\\n"], "x.csv.gz"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    snapcdc.model.errors.ContractError: export x.csv.gz is not a readable gzip file (...); ...
    """
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    for chunk in chunks:
        try:
            yield inflater.decompress(chunk)
        except zlib.error as exc:
            raise ContractError(
                f"export {name} is not a readable gzip file ({exc}); its name ends in .gz: "
                "compress it with gzip"
            ) from None
        if inflater.eof:
            return


def header_fields(chunks: Iterable[bytes], config: TableConfig, name: str) -> list[str]:
    """The column names in an export's first line, given its (decompressed) bytes as they
    arrive; chunks are consumed only until the first newline. ``name`` names the export in
    errors. ``snapcdc diff`` reads a local file's header through here too.

    >>> chunks = [b'\\xef\\xbb\\xbfid ;"the', b' name"\\r\\n1;x\\n']
    >>> header_fields(chunks, TableConfig(delimiter=";"), "export.csv")
    ['id', 'the name']
    """
    text = b""
    for chunk in chunks:
        text += chunk
        # \n, \r\n or a lone \r ends a line, as in Athena's line reader (Trino's TextLineReader)
        if b"\n" in text or b"\r" in text:
            break
    first_line = re.split(rb"\r\n|\r|\n", text, maxsplit=1)[0]
    if not first_line.strip():
        raise ContractError(
            f"export {name} is empty or starts with a blank line; expected a header row"
        )
    try:
        line = first_line.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ContractError(f"the header row of {name} is not UTF-8") from None
    reader = csv.reader(
        io.StringIO(line),
        delimiter=config.delimiter,
        quotechar=config.quote,
        escapechar=config.escape,
        doublequote=config.escape is None,
    )
    try:
        return [name.strip() for name in next(reader)]
    except csv.Error as exc:
        raise ContractError(f"cannot read the header row of {name} {line[:80]!r}: {exc}") from None


def version_schema(
    config: TableConfig,
    keys: list[str],
    header_of: Callable[[str], list[str]],
    previous_key: list[str] | tuple[str, ...] | None = None,
) -> TableSchema:
    """The version's columns and key: the table configuration resolved with the header row
    every file of the version starts with (Athena's skip.header.line.count skips the first line
    of each file, https://docs.aws.amazon.com/athena/latest/ug/csv-serde.html), read with
    ``header_of(key)``; parts whose headers differ fail naming the first that does.
    ``previous_key``: the key of the version applied before (see ``TableConfig.resolve``).
    ``snapcdc diff`` resolves a local file's schema through here too."""
    if not config.header:
        return config.resolve(None, previous_key)
    first = header_of(keys[0])
    for key in keys[1:]:
        header = header_of(key)
        if header != first:
            raise ContractError(
                f"the header row of {key} is {header}, the version's first part {keys[0]} "
                f"has {first}; every part must start with the same header row"
            )
    return config.resolve(first, previous_key)
