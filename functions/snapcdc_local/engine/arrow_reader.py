"""The engine's fast path: files with no quoting at all, read by pyarrow's CSV reader.

Most exports hold no quote character, no escape character, no carriage return and no NUL
byte. OpenCSVSerde splits every line of such a file with a plain split on the separator
(tier 1 in :mod:`snapcdc_local.engine.opencsv`); pyarrow's multi-threaded CSV reader does
that about three times faster than DuckDB reads the same lines (0.23 against 0.63 CPU-s for
a million 12-column rows), into an Arrow table DuckDB then queries where it is, uncopied.

:func:`read_plain` returns ``None`` whenever the files need more than a plain split -- a
quote, escape, CR or NUL byte anywhere, a byte-order mark, a blank line, lines with unequal
numbers of fields, text that is not UTF-8, a compression other than gzip, a file it cannot
inflate, pyarrow not installed -- and the engine then reads them with its general reader,
which also reports what is wrong with them. So this module only ever decides *how fast*
rows are read, never *which* rows.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "e.csv"
>>> _ = p.write_text("k;v\\nPK1;a\\nPK2;\\n")
>>> rows = read_plain([(str(p), "none")], CsvFormat(";"), column_count=3, header_lines=1)
>>> rows.to_pylist()
[{'c0': 'PK1', 'c1': 'a', 'c2': None}, {'c0': 'PK2', 'c1': '', 'c2': None}]
>>> _ = p.write_text('k;v\\nPK1;"a"\\n')  # a quote: the general reader's job
>>> read_plain([(str(p), "none")], CsvFormat(";"), column_count=3, header_lines=1) is None
True
"""

from __future__ import annotations

import io
import mmap
import os
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from snapcdc_local.engine.opencsv import CsvFormat, compression
from snapcdc_local.engine.text_blocks import CheckedBlocks

try:  # in the `local` extra; without it every file takes the general reader
    import pyarrow as pa
    from pyarrow import csv as pa_csv
except ImportError:  # pragma: no cover - optional accelerator
    pa = None

try:  # ISA-L inflates gzip about twice as fast as zlib (same API as the gzip module)
    from isal import igzip as _gzip
except ImportError:  # pragma: no cover - optional accelerator
    import gzip as _gzip

if TYPE_CHECKING:
    import pyarrow

__all__ = ["CsvFormat", "Prefetch", "available", "read_file", "read_plain"]

UTF8_BOM = b"\xef\xbb\xbf"
# pyarrow parses a file in blocks of this many bytes, one block per task. Blocks that stay in
# the CPU's cache parse faster: on a million-row export (120 MB) 0.34 CPU-s with 1 MiB blocks
# against 0.40-0.48 with 16 MiB ones, and 20% fewer page faults.
BLOCK_SIZE = 1 << 20
# How much of a gzip file is inflated first, to turn away quoted exports cheaply.
GZIP_PROBE_BYTES = 1 << 20


def _memory_pool() -> pyarrow.MemoryPool | None:
    """The pool parsed rows are allocated from: jemalloc where pyarrow has it.

    pyarrow's default pool (mimalloc) returns the parser's short-lived block buffers to the
    kernel and faults them in again: measured on a million-row gzip pair, 1.6 s of system time
    against 0.7 s with jemalloc for the same rows (see scripts/bench_diff.py). Passed to the
    reader only, so nothing else in the process changes allocator.
    """
    try:
        return pa.jemalloc_memory_pool()
    except (NotImplementedError, AttributeError):  # pragma: no cover - a build without it
        return None


_POOL = _memory_pool() if pa is not None else None


def available() -> bool:
    """Whether pyarrow is installed (else :func:`read_plain` always says ``None``)."""
    return pa is not None


def read_plain(
    files: Sequence[tuple[str, str]],
    fmt: CsvFormat,
    column_count: int,
    header_lines: int,
    file_column: str | None = None,
    prefetched: Prefetch | None = None,
) -> pyarrow.Table | None:
    """The rows of ``files`` (``(path, compression)`` pairs) as columns ``c0..c{n-1}``
    (and ``file_column``, when given: each row's file as its index in ``files``).

    Reads them as the SerDe would: ``header_lines`` skipped per file, every value a string,
    an empty field ``''``, fields a line lacks NULL, fields past ``column_count`` dropped.
    ``None`` when any file needs the general reader (see the module docstring). A file
    ``prefetched`` already read the same way is taken from there instead of read again.
    """
    if pa is None or column_count < 1:
        return None
    tables = []
    for index, (path, codec) in enumerate(files):
        found = prefetched.take(path, codec, fmt, header_lines) if prefetched else None
        table = found.result() if found is not None else read_file(path, codec, fmt, header_lines)
        if table is None:
            return None
        table = _columns(table, column_count)
        if file_column:
            table = table.append_column(
                file_column, pa.repeat(pa.scalar(index, pa.int32()), table.num_rows)
            )
        tables.append(table)
    if not tables:
        empty = {f"c{i}": pa.array([], pa.string()) for i in range(column_count)}
        if file_column:
            empty[file_column] = pa.array([], pa.int32())
        return pa.table(empty)
    return pa.concat_tables(tables)


def read_file(
    path: str, compression: str, fmt: CsvFormat, header_lines: int
) -> pyarrow.Table | None:
    """One file's rows, as many columns as its first row has fields (no columns when it has
    no rows); ``None`` when it needs the general reader."""
    separator = fmt.separator.encode("utf-8")
    if pa is None or len(separator) != 1 or separator in b"\r\n":
        return None
    special = {c.encode("utf-8") for c in (fmt.quote, fmt.escape, "\r", "\0")}
    if compression == "gzip" and all(len(s) == 1 for s in special):
        streamed = _read_gzip(path, fmt.separator, special, header_lines)
        if streamed is not _TOO_LONG:
            return streamed
    contents = _contents(path, compression, special)
    if contents is None:
        return None
    text, buffer = contents
    if _needs_general_reader(text, special):
        return None
    start = _after_lines(text, header_lines)
    if start >= len(text):
        return pa.table({})  # no rows: empty, or header lines only
    fields = _fields(text, start, separator)
    table = _parse(buffer.slice(start), fmt.separator, fields)
    if table is None or _has_blank_lines(table, len(text) - start, text[-1:] == b"\n"):
        return None
    return table


_TOO_LONG = object()  # the header lines or the first row do not fit in the probe


def _read_gzip(
    path: str, separator: str, special: set[bytes], header_lines: int
) -> pyarrow.Table | None | object:
    """A gzip file's rows, inflated block by block as pyarrow parses them.

    Inflating the whole file first would put all of its text in fresh memory the parse then
    reads back: measured on a million-row export, 42,000 page faults and ~0.1 CPU-s more per
    file than inflating MiB blocks, which the allocator recycles while they are still in the
    CPU's cache. Each block is searched for the bytes only the general reader handles as it
    passes (the first one stops the read). ``_TOO_LONG`` when the header lines and the first
    row are not all in the first MiB (the caller then reads the whole file).
    """
    try:
        if os.path.getsize(path) == 0:
            return None  # not a gzip file: the general reader decides what it holds
        with _gzip.open(path, "rb") as fh:
            try:
                head = fh.read(GZIP_PROBE_BYTES)
            except Exception:  # not gzip, or damaged: the general reader reports it
                return None
            if _needs_general_reader(head, special):
                return None
            whole = len(head) < GZIP_PROBE_BYTES  # the probe holds the whole file
            start = _after_lines(head, header_lines)
            if not whole and head.find(b"\n", start) < 0:
                return _TOO_LONG
            if start >= len(head):
                return pa.table({})  # no rows: empty, or header lines only
            blocks = CheckedBlocks(fh, head[start:], special, BLOCK_SIZE)
            fields = _fields(head, start, separator.encode("utf-8"))
            table = _parse(blocks, separator, fields, check_utf8=False)  # blocks checks it
    except OSError:
        return None
    if blocks.refused or table is None:
        return None
    if _has_blank_lines(table, blocks.size, blocks.last_byte == b"\n"):
        return None
    return table


def _fields(text: bytes | mmap.mmap, start: int, separator: bytes) -> int:
    """The number of fields of the line starting at ``start``."""
    end = text.find(b"\n", start)
    return text[start : None if end < 0 else end].count(separator) + 1


class Prefetch:
    """Files being read in the background, before the table that reads them is queried.

    ``snapcdc diff`` starts reading its two exports as soon as it knows their format, while
    its SQL is still being planned and transpiled (Python work that would otherwise leave a
    core idle). A read is taken only by a table whose files are the very same (path, size,
    modification time) read with the same format and header lines, so a wrong guess costs a
    second read, never other rows.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="snapcdc-prefetch")
        self._reads: dict[tuple[object, ...], Future[pyarrow.Table | None]] = {}

    def start(self, path: str, fmt: CsvFormat, header_lines: int) -> None:
        if pa is None:
            return
        codec = compression(path)
        key = _identity(path, codec, fmt, header_lines)
        if key is not None and key not in self._reads:
            self._reads[key] = self._pool.submit(read_file, path, codec, fmt, header_lines)

    def take(
        self, path: str, compression: str, fmt: CsvFormat, header_lines: int
    ) -> Future[pyarrow.Table | None] | None:
        """The read of this file started earlier, if any (each is taken once)."""
        key = _identity(path, compression, fmt, header_lines)
        return self._reads.pop(key, None) if key is not None else None

    def close(self) -> None:
        for read in self._reads.values():
            read.cancel()
        self._reads.clear()
        self._pool.shutdown(wait=True)


def _identity(
    path: str, compression: str, fmt: CsvFormat, header_lines: int
) -> tuple[object, ...] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (os.path.realpath(path), st.st_size, st.st_mtime_ns, compression, fmt, header_lines)


def _needs_general_reader(text: bytes | mmap.mmap, special: set[bytes]) -> bool:
    """A byte-order mark, or a byte only the general reader handles (``find`` stops at the
    first, so a quoted file is turned away as soon as its first quote)."""
    return text[:3] == UTF8_BOM or any(text.find(s) >= 0 for s in special)


def _contents(
    path: str, compression: str, special: set[bytes]
) -> tuple[bytes | mmap.mmap, pyarrow.Buffer] | None:
    """A file's text twice: to search with ``find`` and as the buffer pyarrow parses.

    A plain file is memory-mapped rather than read: both views share the page cache, and the
    copy a read would make costs as much as pyarrow's parse of a third of the file. A gzip
    file (only read whole when :func:`_read_gzip` cannot stream it) has its first MiB inflated
    first: a quoted export shows a quote there, and is then left to the general reader without
    being inflated twice.
    """
    try:
        if compression == "none":
            with open(path, "rb") as fh:
                if os.fstat(fh.fileno()).st_size == 0:
                    return b"", pa.py_buffer(b"")
                text = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            return text, pa.memory_map(path).read_buffer()
        if compression == "gzip":
            with _gzip.open(path, "rb") as head:
                if _needs_general_reader(head.read(GZIP_PROBE_BYTES), special):
                    return None
            raw = Path(path).read_bytes()
            if raw:
                text = _gzip.decompress(raw)
                return text, pa.py_buffer(text)
    except Exception:  # unreadable or not gzip: the general reader reports it
        return None
    return None


def _after_lines(data: bytes | mmap.mmap, count: int) -> int:
    """The offset just past the first ``count`` lines (``len(data)`` if there are fewer)."""
    offset = 0
    for _ in range(count):
        end = data.find(b"\n", offset)
        if end < 0:
            return len(data)
        offset = end + 1
    return offset


def _parse(
    body: pyarrow.Buffer | io.RawIOBase, separator: str, fields: int, check_utf8: bool = True
) -> pyarrow.Table | None:
    """Split ``body`` (a buffer, or a stream of blocks) into ``fields`` string columns;
    ``None`` unless every line has them all.

    Blank lines are skipped here (pyarrow would make them rows of ``''``; the SerDe makes them
    rows of NULLs): :func:`_has_blank_lines` then tells whether there were any.
    """
    names = [f"c{i}" for i in range(fields)]
    try:
        source = pa.BufferReader(body) if isinstance(body, pa.Buffer) else body
        return pa_csv.read_csv(
            source,
            read_options=pa_csv.ReadOptions(
                column_names=names, use_threads=True, block_size=BLOCK_SIZE
            ),
            parse_options=pa_csv.ParseOptions(
                delimiter=separator,
                quote_char=False,
                double_quote=False,
                escape_char=False,
                newlines_in_values=False,
                ignore_empty_lines=True,
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                check_utf8=check_utf8,
            ),
            memory_pool=_POOL,
        )
    except pa.ArrowException:  # a line with another number of fields, bad UTF-8, ...
        return None


def _has_blank_lines(table: pyarrow.Table, body_size: int, ends_with_newline: bool) -> bool:
    """Whether the parsed body held blank lines, told from byte counts instead of a scan.

    Every line pyarrow parsed is its fields, the separators between them and a line end (the
    last one may lack it); with no CR in the file, whatever bytes that leaves out are the line
    ends of blank lines. Summing value lengths costs far less than searching the text for them.
    """
    rows = table.num_rows
    separators = rows * (table.num_columns - 1)
    line_ends = rows if ends_with_newline else rows - 1
    values = sum(_value_bytes(chunk) for column in table.columns for chunk in column.chunks)
    return values + separators + line_ends != body_size


def _value_bytes(strings: pyarrow.StringArray) -> int:
    """The bytes a string array's values hold, read off its offsets (importing
    ``pyarrow.compute`` for a sum would cost more start-up time than the whole sum)."""
    offsets = pa.Array.from_buffers(
        pa.int32(), len(strings) + 1, [None, strings.buffers()[1]], offset=strings.offset
    )
    return offsets[len(strings)].as_py() - offsets[0].as_py()


def _columns(table: pyarrow.Table, column_count: int) -> pyarrow.Table:
    """Exactly ``column_count`` columns: fields past them dropped, missing ones NULL."""
    table = table.select(range(min(table.num_columns, column_count)))
    for i in range(table.num_columns, column_count):
        table = table.append_column(f"c{i}", pa.nulls(table.num_rows, pa.string()))
    return table
