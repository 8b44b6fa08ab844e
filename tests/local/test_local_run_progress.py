"""``snapcdc local run``'s progress: per version, rows read, ops published and applied, as the
pipeline's registry records and execution histories say while the driver waits."""

from __future__ import annotations

import io
import sys

from datasets import write_config, write_export

from snapcdc_local.cli.run_progress import NoProgress, StageLines, progress_display

ROWS_V1 = [["k1", "one"], ["k2", "two"], ["k3", "three"]]
ROWS_V2 = [["k1", "uno"], ["k3", "three"], ["k4", "four"]]  # 1 update, 1 insert, 1 delete


class Recorder:
    """Stands in for rich's Progress; keeps every update of every task."""

    def __init__(self) -> None:
        self.tasks: dict[int, dict] = {}
        self.updates: dict[str, list[dict]] = {}

    def add_task(self, description, **fields):
        ident = len(self.tasks)
        self.tasks[ident] = {"description": description, **fields}
        return ident

    def update(self, task, **fields):
        self.tasks[task].update(fields)
        self.updates.setdefault(self.tasks[task]["description"], []).append(dict(self.tasks[task]))

    def advance(self, task):
        pass

    def remove_task(self, task):
        self.tasks[task]["removed"] = True


def test_each_version_shows_rows_read_ops_published_and_applied(tmp_path):
    from snapcdc_local.cli.run import RunOptions, run_pipeline

    data = tmp_path / "data"
    write_config(data, "shop", "tags", {"columns": ["tag", "label"], "header": False})
    write_export(data, "shop/tags/V1/x.csv.gz", ROWS_V1, delimiter=",")
    write_export(data, "shop/tags/V2/x.csv.gz", ROWS_V2, delimiter=",")
    recorder = Recorder()
    result = run_pipeline(RunOptions(data_dir=data), progress=recorder)
    assert [u.status for u in result.uploads] == ["SUCCEEDED", "SUCCEEDED"]
    # without --dump-target the summary counts the target's rows in DynamoDB (Select=COUNT):
    # k1, k3, k4, not k2's tombstone
    assert result.tables["shop/tags"]["rows"] == 3
    for key, ops in (("shop/tags/V1/x.csv.gz", 3), ("shop/tags/V2/x.csv.gz", 3)):
        updates = recorder.updates[key]
        last = updates[-1]
        # the version's line ends full: every op applied, out of the ops Finish recorded
        assert (last["completed"], last["total"]) == (ops, ops), last
        figures = last["figures"].split()
        assert figures == ["done", "rows", "read", "3", "published", "3", "applied", "3"]
        # and while it ran they only went forward (which polls see which stage depends on
        # timing: a 3-row version can pass from delta to done between two polls)
        running = [u["figures"].split() for u in updates if u["figures"]]
        counts = [[0 if v == "-" else int(v) for v in f[3::2]] for f in running]
        steps = zip(counts, counts[1:], strict=False)
        assert all(a <= b for before, after in steps for a, b in zip(before, after, strict=True)), (
            running
        )
    assert all(task.get("removed") for task in list(recorder.tasks.values())[1:])


def test_a_line_per_stage_when_stderr_is_not_a_terminal(monkeypatch, capsys):
    monkeypatch.setattr(sys, "__stderr__", io.StringIO())
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    with progress_display() as progress:
        assert isinstance(progress, StageLines)
        task = progress.add_task("t/x/V1/a.csv.gz", total=None, figures="")
        for stage in ("waiting", "delta", "delta", "publishing", "done"):
            progress.update(task, figures=f"{stage}  rows read   3", stage=stage)
    assert capsys.readouterr().err.splitlines() == [
        "t/x/V1/a.csv.gz: delta rows read 3",
        "t/x/V1/a.csv.gz: publishing rows read 3",
        "t/x/V1/a.csv.gz: done rows read 3",
    ]


def test_live_on_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "__stderr__", io.StringIO())
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich's own switch: this is a terminal
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    with progress_display() as progress:
        assert not isinstance(progress, NoProgress)
        task = progress.add_task("shop/tags/V1/x.csv.gz", total=3, figures="delta")
        progress.update(task, completed=2, figures="applying   rows read 3")
        progress.refresh()
        assert "rows read 3" in sys.__stderr__.getvalue()
