"""Athena's query result files (CSV, every value quoted, NULL an empty unquoted field) read back,
by the pipeline's own reader (:mod:`snapcdc.aws.result_files`): one reader for the engine, the
emulation and the Lambda functions, so what a test reads is what a step reads.
"""

from __future__ import annotations

import os
from pathlib import Path

from snapcdc.aws.result_files import RecordScanner, parse_record


def read_athena_csv(path: str | os.PathLike[str]) -> tuple[list[str], list[list[str | None]]]:
    """Read a result file as Athena wrote it: ``(header, rows)`` with NULL as ``None``.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "r.csv"
    >>> _ = p.write_text('"op","a","b"\\n"INSERT","say ""hi""\\nthere",\\n')
    >>> read_athena_csv(p)
    (['op', 'a', 'b'], [['INSERT', 'say "hi"\\nthere', None]])
    """
    records = parse_athena_csv(Path(path).read_bytes())
    if not records:
        return [], []
    return [h or "" for h in records[0]], records[1:]


def parse_athena_csv(data: str | bytes) -> list[list[str | None]]:
    """Split Athena CSV into records (see :func:`read_athena_csv`); a malformed file raises
    :class:`~snapcdc.model.errors.ResultFormatError` as the pipeline's steps would."""
    scanner = RecordScanner()
    raw = data.encode("utf-8") if isinstance(data, str) else data
    found = scanner.feed(raw) + scanner.finish()
    return [parse_record(record) for record, _ in found]
