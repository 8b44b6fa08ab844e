"""Big gzip files are inflated with ISA-L before DuckDB reads them: same rows, same errors."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest

from snapcdc_local.engine import duckdb_reader as engine_module
from snapcdc_local.engine.engine import AthenaEngine, EngineError, mapping_resolver

pytest.importorskip("isal")

SERDE = "ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde'"


class Inflations:
    """ISA-L's ``igzip`` as the reader sees it, counting the files it opens (what it
    inflated): the real module, watched."""

    def __init__(self, module) -> None:
        self.module = module
        self.opened: list[str] = []

    def open(self, path, *args, **kwargs):
        self.opened.append(str(path))
        return self.module.open(path, *args, **kwargs)


def _rows(path: Path, threshold: int, monkeypatch, escape: str = "\\0") -> list[tuple]:
    """The table's rows, read by the general (DuckDB) reader: pyarrow's, which reads files
    without quotes itself, is turned off, or ISA-L would never be asked."""
    monkeypatch.setattr(engine_module, "FAST_GUNZIP_MIN_BYTES", threshold)
    monkeypatch.setattr(AthenaEngine, "arrow_read", False)
    with AthenaEngine(mapping_resolver({"s3://b/t/": [path]})) as engine:
        engine.execute("CREATE DATABASE d")
        engine.execute(
            f"CREATE EXTERNAL TABLE d.t (k STRING, v STRING, w STRING) {SERDE} "
            f"WITH SERDEPROPERTIES ('escapeChar' = '{escape}') LOCATION 's3://b/t/' "
            "TBLPROPERTIES ('skip.header.line.count' = '1')"
        )
        result = engine.execute("SELECT k, v, w FROM d.t")
        assert result.rows is not None
        return sorted(result.rows, key=repr)


def _lines(seed: str, n: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = ["a", "0", " ", "é", ",", ",", '"', '"', "\\"]
    lines = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(n)]
    lines += [f"K{i},plain{i},x" for i in range(n)] + ["", "only", "a,b,c,d,e"]
    return lines


@pytest.mark.parametrize("quoted", [False, True])
def test_isal_and_duckdb_read_the_same_rows(tmp_path, monkeypatch, quoted):
    lines = _lines("q", 3000) if quoted else [f"K{i},v{i},w{i}" for i in range(30000)]
    text = "k,v,w\n" + "\n".join(lines) + "\n"
    path = tmp_path / "e.csv.gz"
    # two gzip members, as concatenated uploads produce
    half = len(text) // 2
    path.write_bytes(gzip.compress(text[:half].encode()) + gzip.compress(text[half:].encode()))
    inflations = Inflations(engine_module._isal_gzip)
    monkeypatch.setattr(engine_module, "_isal_gzip", inflations)
    by_isal = _rows(path, 0, monkeypatch)
    assert inflations.opened == [str(path)]  # ISA-L inflated the file...
    by_duckdb = _rows(path, 1 << 62, monkeypatch)
    assert inflations.opened == [str(path)]  # ... and only when it was big enough
    assert len(by_isal) == len(lines) and by_isal == by_duckdb


def test_a_file_isal_cannot_inflate_is_reported_as_duckdb_reports_it(tmp_path, monkeypatch):
    path = tmp_path / "bad.csv.gz"
    path.write_bytes(gzip.compress(b"k,v,w\n1,2,3\n" * 1000)[:-40] + b"garbage")
    messages = []
    for threshold in (0, 1 << 62):
        with pytest.raises(EngineError) as info:
            _rows(path, threshold, monkeypatch)
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    assert messages[0].startswith("HIVE_CURSOR_ERROR: cannot decompress")


def test_errors_name_the_original_file(tmp_path, monkeypatch):
    path = tmp_path / "latin1.csv.gz"
    path.write_bytes(gzip.compress("k,v,w\nZ\u00fcrich,1,2\n".encode("latin-1")))
    with pytest.raises(EngineError) as info:
        _rows(path, 0, monkeypatch)
    assert str(info.value).startswith("HIVE_BAD_DATA") and "latin1.csv.gz" in str(info.value)
