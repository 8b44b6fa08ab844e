"""Files without quoting are read by pyarrow: the same rows and errors as the general reader.

The general reader (SQL tiers, see engine_opencsv) is the reference; every test reads the
same files with ``arrow_read`` on and off and compares.
"""

from __future__ import annotations

import gzip
import os
import random
import threading
import time
from pathlib import Path

import pytest

from snapcdc_local.engine import arrow_reader as engine_arrow
from snapcdc_local.engine.engine import AthenaEngine, EngineError, mapping_resolver
from snapcdc_local.engine.opencsv import NO_ESCAPE, CsvFormat
from snapcdc_local.engine.text_blocks import whole_characters

pytest.importorskip("pyarrow")

SERDE = "ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde'"
COLUMNS = ["k", "a", "b", "extra"]


def create(engine: AthenaEngine, header: bool, separator: str = ",") -> None:
    engine.execute("CREATE DATABASE IF NOT EXISTS d")
    cols = ", ".join(f"`{c}` STRING" for c in COLUMNS)
    tbl = " TBLPROPERTIES ('skip.header.line.count' = '1')" if header else ""
    engine.execute(
        f"CREATE EXTERNAL TABLE d.t ({cols}) {SERDE} "
        f"WITH SERDEPROPERTIES ('separatorChar' = '{separator}') LOCATION 's3://b/t/'{tbl}"
    )


def read(paths: list[Path], *, arrow: bool, header: bool = False, separator: str = ",") -> list:
    """The rows of ``paths`` as table d.t; the fast path on or off."""
    with AthenaEngine(mapping_resolver({"s3://b/t/": paths})) as engine:
        engine.arrow_read = arrow
        create(engine, header, separator)
        return sorted(engine.execute("SELECT * FROM d.t").rows, key=repr)


def write(path: Path, text: str | bytes) -> Path:
    data = text.encode() if isinstance(text, str) else text
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def random_plain_lines(rng: random.Random, fields: int, count: int) -> list[str]:
    alphabet = ["a", "0", " ", "é", "\t", "—", ";", "|", "'"]
    return [
        ",".join(
            # one field alone is never empty: that line would be blank
            "".join(rng.choice(alphabet) for _ in range(rng.randint(fields == 1, 5)))
            for _ in range(fields)
        )
        for _ in range(count)
    ]


@pytest.fixture
def no_general_reader(monkeypatch):
    """Fail the test if the general reader is used: the rows must come from pyarrow."""

    def refuse(*args, **kwargs):
        raise AssertionError("the general reader was used")

    monkeypatch.setattr(AthenaEngine, "_read_files", refuse)


@pytest.mark.parametrize("fields", [1, 2, 3, 4, 6])
@pytest.mark.parametrize("header", [False, True])
def test_plain_files_read_by_pyarrow_give_the_general_readers_rows(
    tmp_path, fields, header, monkeypatch
):
    """Lines with fewer, as many and more fields than the table's columns (the extra column
    included), several files, gzip members, a last line without a line end."""
    rng = random.Random(f"{fields}{header}")
    head = "h1,h2\n" if header else ""
    lines = random_plain_lines(rng, fields, 2000)
    half = len(lines) // 2
    first = head + "\n".join(lines[:half]) + "\n"
    second = head + "\n".join(lines[half:])  # no line end after the last line
    plain = write(tmp_path / "a.csv", first)
    zipped = tmp_path / "b.csv.gz"
    cut = len(second) // 2
    zipped.write_bytes(gzip.compress(second[:cut].encode()) + gzip.compress(second[cut:].encode()))
    expected = read([plain, zipped], arrow=False, header=header)

    monkeypatch.setattr(AthenaEngine, "_read_files", None)  # pyarrow or nothing
    assert read([plain, zipped], arrow=True, header=header) == expected
    assert len(expected) == len(lines)


@pytest.mark.parametrize(
    "name,text",
    [
        ("quote.csv", 'k,a\n1,say "hi"\n'),
        ("escape.csv", "k,a\n1,back\\slash\n"),
        ("crlf.csv", "k,a\r\n1,x\r\n"),
        ("nul.csv", "k,a\n1,x\x00y\n"),
        ("bom.csv", "\ufeffk,a\n1,x\n"),
        ("blank_middle.csv", "k,a\n1,x\n\n2,y\n"),
        ("blank_first.csv", "k,a\n\n1,x\n"),
        ("blank_last.csv", "k,a\n1,x\n\n"),
        ("ragged_short.csv", "k,a,b\n1,x,y\n2,x\n"),
        ("ragged_long.csv", "k,a\n1,x\n2,x,y,z\n"),
        ("latin1.csv", "k,a\n1,Z\u00fcrich\n".encode("latin-1")),
        ("not_gzip.csv.gz", b"k,a\n1,x\n"),
        ("empty.csv.gz", b""),
    ],
)
def test_files_that_need_more_than_a_plain_split_take_the_general_reader(tmp_path, name, text):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    sources = [(str(path), "gzip" if name.endswith(".gz") else "none")]
    fmt = CsvFormat(",", '"', "\\")
    assert engine_arrow.read_plain(sources, fmt, len(COLUMNS), header_lines=0) is None

    def outcome(arrow: bool):
        try:
            return read([path], arrow=arrow)
        except EngineError as exc:
            return str(exc)

    assert outcome(True) == outcome(False)


def test_escape_off_still_sends_nul_to_the_general_reader(tmp_path):
    """With no escape character Trino still drops a NUL (see test_engine): not a plain split."""
    path = write(tmp_path / "a.csv", "1,a\x00b\n")
    fmt = CsvFormat(",", '"', NO_ESCAPE)
    assert engine_arrow.read_plain([(str(path), "none")], fmt, 3, 0) is None


@pytest.mark.parametrize(
    "text,header,rows",
    [
        ("", False, []),
        ("k,a\n", True, []),
        ("k,a", True, []),
        ("1", False, [("1", None, None, None)]),
        ("1,,\n", False, [("1", "", "", None)]),
        ("1;x|y\n", False, [("1;x|y", None, None, None)]),
    ],
)
def test_edge_files(tmp_path, text, header, rows, no_general_reader):
    path = write(tmp_path / "a.csv", text)
    assert read([path], arrow=True, header=header) == rows


def test_other_separators(tmp_path, no_general_reader):
    path = write(tmp_path / "a.csv", "1;x;y\n2;;\n")
    assert read([path], arrow=True, separator=";") == [
        ("1", "x", "y", None),
        ("2", "", "", None),
    ]


def test_cached_rows_are_registered_for_every_query_and_thread(tmp_path, no_general_reader):
    """DuckDB knows Arrow rows per cursor: a later query and other threads must see them."""
    path = write(tmp_path / "a.csv", "".join(f"{i},v{i}\n" for i in range(5000)))
    with AthenaEngine(mapping_resolver({"s3://b/t/": [path]})) as engine:
        create(engine, header=False)
        assert engine.execute("SELECT count(*) FROM d.t").rows == [(5000,)]
        results: list = []

        def work() -> None:
            try:
                results.append(engine.execute("SELECT count(DISTINCT k) FROM d.t").rows)
            except Exception as exc:  # reported below
                results.append(exc)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [[(5000,)]] * 8


def test_switching_readers_when_a_file_changes(tmp_path):
    """A file that gains a quote is re-read by the general reader, and back again."""
    path = write(tmp_path / "a.csv", "1,x\n")
    with AthenaEngine(mapping_resolver({"s3://b/t/": [path]})) as engine:
        create(engine, header=False)
        for i, (text, rows) in enumerate(
            [
                ("1,x\n", [("1", "x", None, None)]),
                ('1,"x,y"\n', [("1", "x,y", None, None)]),
                ("2,z\n", [("2", "z", None, None)]),
            ]
        ):
            write(path, text)
            stamp = time.time_ns() + 1_000_000_000 * (i + 1)
            os.utime(path, ns=(stamp, stamp))
            assert engine.execute("SELECT * FROM d.t").rows == rows


def outcome(path: Path, arrow: bool) -> list | str:
    """The rows, or the error reading them."""
    try:
        return read([path], arrow=arrow)
    except EngineError as exc:
        return str(exc)


@pytest.fixture
def small_blocks(monkeypatch):
    """gzip files streamed in blocks of a few lines, so small files cross block boundaries."""
    monkeypatch.setattr(engine_arrow, "GZIP_PROBE_BYTES", 64)
    monkeypatch.setattr(engine_arrow, "BLOCK_SIZE", 128)


@pytest.mark.parametrize("header", [False, True])
def test_gzip_streamed_in_blocks_gives_the_general_readers_rows(
    tmp_path, header, small_blocks, monkeypatch
):
    rng = random.Random(f"blocks{header}")
    lines = random_plain_lines(rng, 4, 500)
    text = ("h1,h2,h3,h4\n" if header else "") + "\n".join(lines) + "\n"
    path = write(tmp_path / "a.csv.gz", text)
    expected = read([path], arrow=False, header=header)
    read_whole = engine_arrow._contents
    monkeypatch.setattr(engine_arrow, "_contents", None)  # streamed, never read whole
    monkeypatch.setattr(AthenaEngine, "_read_files", None)  # and by pyarrow
    assert read([path], arrow=True, header=header) == expected
    assert len(expected) == 500
    monkeypatch.setattr(engine_arrow, "_contents", read_whole)


@pytest.mark.parametrize(
    "tail",
    [
        '1,say "hi"\n',  # a quote
        "1,back\\slash\n",  # the escape character
        "1,x\r\n",  # a carriage return
        "1,x\x00y\n",  # NUL
        "\n2,y\n",  # a blank line
        "1,x,y,z,w,v\n",  # more fields than the first row (pyarrow refuses)
    ],
)
def test_gzip_special_bytes_past_the_first_blocks_take_the_general_reader(
    tmp_path, tail, small_blocks
):
    body = "".join(f"{i},v{i}\n" for i in range(200))
    path = write(tmp_path / "a.csv.gz", body + tail + "3,z\n")
    fmt = CsvFormat(",", '"', "\\")
    assert engine_arrow.read_file(str(path), "gzip", fmt, 0) is None
    assert outcome(path, arrow=True) == outcome(path, arrow=False)


def test_gzip_damaged_past_the_first_blocks_fails_as_the_general_reader_fails(
    tmp_path, small_blocks
):
    data = gzip.compress("".join(f"{i},v{i}\n" for i in range(2000)).encode())
    path = tmp_path / "a.csv.gz"
    path.write_bytes(data[: len(data) // 2])  # truncated
    assert engine_arrow.read_file(str(path), "gzip", CsvFormat(), 0) is None
    failed = outcome(path, arrow=True)
    assert isinstance(failed, str) and "a.csv.gz" in failed
    assert failed == outcome(path, arrow=False)


def test_gzip_header_longer_than_the_probe_is_read_whole(tmp_path, small_blocks, monkeypatch):
    header = ",".join(f"column_{i}" for i in range(40))  # longer than the 64-byte probe
    path = write(tmp_path / "a.csv.gz", header + "\n1,a\n2,b\n")
    monkeypatch.setattr(AthenaEngine, "_read_files", None)
    assert read([path], arrow=True, header=True) == [("1", "a", None, None), ("2", "b", None, None)]


@pytest.mark.parametrize(
    "tail",
    [
        b"1,Z\xfcrich\n",  # Latin-1, not UTF-8
        b"1,\xe2\x80\n",  # a 3-byte character cut short mid-file
        b"1,x\xf0\x9f\x98",  # a 4-byte character cut by the end of the file
    ],
)
def test_gzip_bad_utf8_past_the_first_blocks_takes_the_general_reader(tmp_path, tail, small_blocks):
    body = "".join(f"{i},v{i}é\n" for i in range(200)).encode()
    path = write(tmp_path / "a.csv.gz", body + tail)
    assert engine_arrow.read_file(str(path), "gzip", CsvFormat(), 0) is None
    assert outcome(path, arrow=True) == outcome(path, arrow=False)


def test_characters_cut_by_a_block_end_are_told_apart():
    for char in ("é", "—", "😀"):
        data = char.encode()
        for cut in range(1, len(data)):
            assert whole_characters(b"ab" + data[:cut]) == 2
        assert whole_characters(b"ab" + data) == 2 + len(data)
    assert whole_characters(b"abc") == 3
