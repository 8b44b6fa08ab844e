"""Every fast path can step aside, and the pipeline gives the same results without it.

A fast path reaches into moto's internals (emulator/fast_paths.py); a moto release may change
them. Each test runs `snapcdc local run` end to end with fast paths turned off
(SNAPCDC_FAST_PATHS), or with moto's internals changed under a fast path the way moto 5.2.6
changed them, and checks the target against the exports.
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest

from snapcdc_local.cli.main import main
from snapcdc_local.emulator import fast_paths

V1 = "id,name,city\n1,Ann,Oslo\n2,Bob,Rome\n3,Cid,Lima\n"
V2 = "id,name,city\n1,Ann,Bergen\n3,Cid,Lima\n4,Dee,\n"
EXPECTED = {("1", "Ann", "Bergen"), ("3", "Cid", "Lima"), ("4", "Dee", "")}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    table = tmp_path / "data" / "acme" / "people"
    for version, body in (("V1", V1), ("V2", V2)):
        (table / version).mkdir(parents=True)
        (table / version / "export.csv.gz").write_bytes(gzip.compress(body.encode()))
    (table / "_table.json").write_text('{"key": ["id"]}')
    return tmp_path / "data"


@pytest.fixture(autouse=True)
def fresh_fast_paths(monkeypatch):
    """What stepped aside is process-wide knowledge of the installed moto: each test starts
    with none, and leaves none behind."""
    monkeypatch.setattr(fast_paths, "stepped_aside", {})


def run(data: Path, tmp_path: Path, capsys) -> tuple[list[dict], set[tuple[str, ...]], str]:
    report, dump = tmp_path / "report.json", tmp_path / "dump"
    status = main(["local", "run", str(data), "--report", str(report), "--dump-target", str(dump)])
    err = capsys.readouterr().err
    assert status == 0, err
    with (dump / "acme" / "people.csv").open(newline="", encoding="utf-8") as f:
        rows = {tuple(r[c] for c in ("id", "name", "city")) for r in csv.DictReader(f)}
    return json.loads(report.read_text())["versions"], rows, err


@pytest.mark.parametrize("off", ["off", *(f"-{name}" for name in fast_paths.NAMES)])
def test_the_pipeline_is_the_same_with_a_fast_path_off(data, tmp_path, capsys, monkeypatch, off):
    monkeypatch.setenv(fast_paths.ENV, off)
    for name in fast_paths.NAMES:
        assert fast_paths.wanted(name) == (off != "off" and off != f"-{name}")
    versions, rows, _ = run(data, tmp_path, capsys)
    assert [(v["status"], v["inserts"], v["updates"], v["deletes"]) for v in versions] == [
        ("SUCCEEDED", 3, 0, 0),
        ("SUCCEEDED", 1, 1, 1),
    ]
    assert rows == EXPECTED


def test_a_name_that_is_no_fast_path_is_named_not_skipped(data, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(fast_paths.ENV, "-scan-pages,-scna-pages,prepared")
    versions, rows, err = run(data, tmp_path, capsys)
    assert [v["status"] for v in versions] == ["SUCCEEDED", "SUCCEEDED"] and rows == EXPECTED
    for name in ("scna-pages", "prepared"):  # a misspelt name; a name without its "-"
        assert f"note: {fast_paths.ENV}: {name!r} turns no fast path off, ignored" in err
    assert "'scan-pages'" not in err  # the known one is taken, not named


def test_a_fast_path_steps_aside_when_moto_changed_under_it(data, tmp_path, capsys, monkeypatch):
    """moto 5.2.6 finds a request's action from the werkzeug request it keeps
    (``normalized_request``), which the prepared handler leaves out: its probe sees the break,
    the prepared handler steps aside, moto's own path answers, the user is told."""
    from moto.core.responses import BaseResponse

    get_action = BaseResponse._get_action

    def reads_the_request(self):
        _ = self.normalized_request.content_type  # as moto 5.2.6's router does
        return get_action(self)

    monkeypatch.setattr(BaseResponse, "_get_action", reads_the_request)
    versions, rows, err = run(data, tmp_path, capsys)
    assert [v["status"] for v in versions] == ["SUCCEEDED", "SUCCEEDED"]
    assert rows == EXPECTED
    assert set(fast_paths.stepped_aside) == {"prepared"}
    assert (
        "'NoneType' object has no attribute 'content_type'" in fast_paths.stepped_aside["prepared"]
    )
    assert "note: the emulation's fast path prepared is off" in err


def test_a_fast_path_whose_method_changed_shape_steps_aside(monkeypatch):
    """A replaced moto method is checked against the parameters it is written for."""
    from moto.dynamodb.models.table import Table

    from snapcdc_local.emulator import dynamodb

    def scan(self, filters, limit, exclusive_start_key, *, page_size):  # a new signature
        raise AssertionError("never called")

    monkeypatch.setattr(Table, "scan", scan)
    assert not fast_paths.usable("scan-pages", *dynamodb.SCAN_PAGES_NEED)
    assert (
        "takes (self, filters, limit, exclusive_start_key, page_size)"
        in (fast_paths.stepped_aside["scan-pages"])
    )
    assert fast_paths.usable("condition-cache", *dynamodb.PARSE_CACHE_NEEDS)
