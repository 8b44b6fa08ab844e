"""How Athena's OpenCSVSerde splits a line into fields, reproduced for the embedded engine.

Athena (engine v3, Trino) reads a text file line by line (``\\n``, ``\\r\\n`` or ``\\r`` end a
line; a quoted field cannot span lines) and hands each line to a deserializer that is "bug for
bug compatible" with Hive's OpenCSVSerde (``io.trino.hive.formats.line.csv.CsvDeserializer``):

- every value is a string; an empty field is ``''``; a field the line does not have is NULL;
  an empty line is a row of NULLs;
- fields past the table's last column are dropped;
- inside a quoted field a doubled quote is one quote; the escape character (default ``\\``!)
  followed by the quote or escape character yields that character, and is dropped otherwise;
- quotes in the middle of an unquoted field, text after a closing quote and an unterminated
  quoted field follow the quirks of the opencsv parser it was forked from.

The engine splits lines in three tiers, all giving exactly what the deserializer gives:

1. a line with no quote and no escape character: a plain split on the separator (SQL);
2. a line that is well-formed RFC 4180 (each field either unquoted without quote/escape
   characters, or quoted from separator to separator): a regular-expression split (SQL);
3. anything else: :func:`split_line`, a line-for-line port of the deserializer (Python).

>>> split_line('a;"b;c";"d""e"', 4, ";", '"', "\\\\")
['a', 'b;c', 'd"e', None]
>>> split_line('PK1;5" screen;x', 3, ";", '"', "\\\\")  # a lone quote opens a quoted field
['PK1', None, None]
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# Trino's spelling of "no escape character" (and the value our DDL uses for it).
NO_ESCAPE = "\0"


@dataclass(frozen=True)
class CsvFormat:
    """The SerDe properties that decide how a line is split."""

    separator: str = ","
    quote: str = '"'
    escape: str = "\\"


# Athena picks a file's codec by its extension.
COMPRESSED_SUFFIXES = {".gz": "gzip", ".zst": "zstd"}


def compression(path: str) -> str:
    """The codec a file is read with: ``gzip``, ``zstd`` or ``none``."""
    return COMPRESSED_SUFFIXES.get(os.path.splitext(path)[1].lower(), "none")


def split_line(line: str, column_count: int, separator: str, quote: str, escape: str) -> list:
    """Split one line as Trino's ``CsvDeserializer.parseLine`` does.

    Returns ``column_count`` values; ``None`` where the line has no such field.

    >>> split_line('a,bc"d"ef,g', 3, ",", '"', "\\\\")
    ['a', 'bc"d"ef', 'g']
    >>> split_line('x,"unterminated', 2, ",", '"', "\\\\")
    ['x', None]
    >>> split_line('a\\\\b,"c\\\\"d"', 2, ",", '"', "\\\\")
    ['ab', 'c"d']
    """
    values: list[str | None] = [None] * column_count
    if not line or column_count == 0:
        return values
    buffer: list[str] = []
    column = 0
    in_quotes = False
    in_field = False
    position = 0
    length = len(line)
    while position < length and column < column_count:
        c = line[position]
        following = line[position + 1] if position + 1 < length else None
        if c == escape:
            # the escape character only ever protects a quote or another escape character;
            # anywhere else it is dropped
            if (in_quotes or in_field) and following in (quote, escape):
                buffer.append(following)
                position += 1
        elif c == quote:
            if (in_quotes or in_field) and following == quote:
                buffer.append(following)
                position += 1
            else:
                # a quote in the middle of a field (not in the line's first three characters,
                # not next to a separator) is kept, unless only whitespace precedes it
                if (
                    position > 2
                    and line[position - 1] != separator
                    and following is not None
                    and following != separator
                ):
                    if buffer and "".join(buffer).isspace():
                        buffer.clear()
                    else:
                        buffer.append(c)
                in_quotes = not in_quotes
            in_field = not in_field
        elif c == separator and not in_quotes:
            values[column] = "".join(buffer)
            column += 1
            buffer.clear()
            in_field = False
        else:
            buffer.append(c)
            in_field = True
        position += 1
    # an unterminated quoted last field is dropped (left NULL)
    if column < column_count and not in_quotes:
        values[column] = "".join(buffer)
    return values


def _re_char(c: str) -> str:
    """A character as an RE2 escape, safe inside and outside a character class."""
    return f"\\x{{{ord(c):X}}}"


def regular_line_patterns(fmt: CsvFormat) -> tuple[str, str, str]:
    """RE2 patterns for tier 2: (whole line is regular, one field after a separator, pair).

    ``pair`` matches the two-character sequences that stand for one character inside a quoted
    field (doubled quote; escape + quote or escape). "No escape character" is NUL, and Trino
    treats a NUL in the data as an escape character, so it gets no special case here either.

    >>> line, field, pair = regular_line_patterns(CsvFormat(";", '"', "\\\\"))
    >>> field
    '\\\\x{3B}(\\\\x{22}(?:[^\\\\x{22}\\\\x{5C}]|\\\\x{22}\\\\x{22}|\\\\x{5C}[\\\\x{22}\\\\x{5C}])*\\\\x{22}|[^\\\\x{3B}\\\\x{22}\\\\x{5C}]*)'
    """
    s, q, e = _re_char(fmt.separator), _re_char(fmt.quote), _re_char(fmt.escape)
    quoted = f"{q}(?:[^{q}{e}]|{q}{q}|{e}[{q}{e}])*{q}"
    unquoted = f"[^{s}{q}{e}]*"
    field = f"(?:{quoted}|{unquoted})"
    return f"{field}(?:{s}{field})*", f"{s}({quoted}|{unquoted})", f"[{q}{e}]([{q}{e}])"
