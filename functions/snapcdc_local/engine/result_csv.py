"""Athena's query result files (CSV, every value quoted, NULL an empty unquoted field) read back."""

from __future__ import annotations

import os
from pathlib import Path


def read_athena_csv(path: str | os.PathLike[str]) -> tuple[list[str], list[list[str | None]]]:
    """Read a result file as Athena wrote it: ``(header, rows)`` with NULL as ``None``.

    An unquoted empty field is NULL, a quoted one is the empty string (Python's csv module
    cannot tell them apart before 3.12, hence this small reader).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "r.csv"
    >>> _ = p.write_text('"op","a","b"\\n"INSERT","say ""hi""\\nthere",\\n')
    >>> read_athena_csv(p)
    (['op', 'a', 'b'], [['INSERT', 'say "hi"\\nthere', None]])
    """
    records = parse_athena_csv(Path(path).read_text(encoding="utf-8"))
    if not records:
        return [], []
    return [h or "" for h in records[0]], records[1:]


def parse_athena_csv(text: str) -> list[list[str | None]]:
    """Split Athena CSV text into records (see :func:`read_athena_csv`)."""
    records: list[list[str | None]] = []
    record: list[str | None] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] == '"':
            parts, j = [], i + 1
            while True:
                k = text.find('"', j)
                if k < 0:
                    raise ValueError(f"unterminated quoted field at offset {i}")
                if text.startswith('""', k):
                    parts.append(text[j : k + 1])
                    j = k + 2
                    continue
                parts.append(text[j:k])
                i = k + 1
                break
            record.append("".join(parts))
        else:
            j = i
            while j < n and text[j] not in ",\n":
                j += 1
            record.append(text[i:j] or None)
            i = j
        if i >= n:
            break
        if text[i] == ",":
            i += 1
            if i >= n or text[i] == "\n":
                record.append(None)
        if i < n and text[i] == "\n":
            records.append(record)
            record = []
            i += 1
        elif i < n and text[i] != "," and text[i - 1] != ",":
            raise ValueError(f"unexpected {text[i]!r} after a field at offset {i}")
    if record:
        records.append(record)
    return records
