"""Build DATA_DIR trees (laid out like the import bucket) for the local-run tests."""

from __future__ import annotations

import csv
import gzip
import io
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent  # tests/local
REPO = HERE.parents[1]


def write_export(
    data_dir: Path,
    key: str,
    rows: list[list[str]],
    *,
    delimiter: str = ";",
    header: list[str] | None = None,
    quoting: int = csv.QUOTE_MINIMAL,
) -> Path:
    """Write ``rows`` (and ``header``) as a gzip CSV export at ``data_dir/key``."""
    text = io.StringIO()
    writer = csv.writer(text, delimiter=delimiter, quoting=quoting, lineterminator="\n")
    if header:
        writer.writerow(header)
    writer.writerows(rows)
    return write_raw(data_dir, key, gzip.compress(text.getvalue().encode("utf-8"), mtime=0))


def write_raw(data_dir: Path, key: str, body: bytes) -> Path:
    path = data_dir / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return path


def write_config(data_dir: Path, tenant: str, table: str, config: dict) -> Path:
    path = data_dir / tenant / table / "_table.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def read_export(path: Path, delimiter: str = ";", header: bool = False) -> list[list[str]]:
    """The rows of a gzip CSV export as the pipeline reads them (header dropped)."""
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter=delimiter))
    return rows[1:] if header else rows


def read_dump(path: Path) -> list[list[str]]:
    """A ``--dump-target`` file: header first, then the rows."""
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def assert_every_op_applied(reports: list[dict]) -> None:
    """Every SUCCEEDED version's ops were published and applied exactly once: ``published``
    (records Kinesis took) and ``applied`` (ops the consumer wrote) equal the op counts, and no
    op was refused as stale (nothing overtook or redelivered it)."""
    for report in reports:
        if report["status"] == "SUCCEEDED":
            ops = report["inserts"] + report["updates"] + report["deletes"]
            counts = (report["published"], report["applied"], report["stale"])
            assert counts == (ops, ops, 0), report


@contextmanager
def local_stack(data: Path, **parameters: str) -> Iterator[tuple[Any, Any]]:
    """cfn.yaml deployed in a fresh emulator as ``snapcdc local run`` deploys it (its local
    parameters, ``parameters`` on top), and the driver that uploads ``data`` into it."""
    from snapcdc_local.cli.run_driver import (
        DEFAULT_TEMPLATE,
        LOCAL_PARAMETERS,
        PACKAGE_DIR,
        LocalRun,
    )
    from snapcdc_local.emulator import Emulator

    merged = {**LOCAL_PARAMETERS, **parameters}
    with Emulator(DEFAULT_TEMPLATE, parameters=merged, lambda_code=PACKAGE_DIR) as aws:
        yield aws, LocalRun(aws, data)


class Held:
    """Invocations of a stack function (``logical_id``) matching ``when(event)`` wait until the
    test releases them (``released``; ``entered`` is set as one starts waiting), then run; with
    ``lost``, they answer ``lost(event)`` instead, as a Lambda whose execution was stopped and
    that nothing waits for. ``strict``: a hold not released within ``timeout`` fails the
    invocation. Released, and removed, when the ``with`` block ends."""

    def __init__(
        self,
        aws: Any,
        logical_id: str,
        when: Callable[[dict[str, Any]], bool],
        *,
        timeout: float = 60.0,
        lost: Callable[[dict[str, Any]], Any] | None = None,
        strict: bool = False,
    ) -> None:
        self.aws, self.when, self.timeout, self.lost, self.strict = aws, when, timeout, lost, strict
        self.function = aws.stack.physical_id(logical_id)
        self.entered, self.released = threading.Event(), threading.Event()

    def __call__(self, event: dict[str, Any], context: Any, handler: Callable[..., Any]) -> Any:
        if self.when(event):
            self.entered.set()
            released = self.released.wait(self.timeout)
            assert released or not self.strict, f"held longer than {self.timeout}s"
            if self.lost is not None:
                return self.lost(event)
        return handler(event, context)

    def __enter__(self) -> Held:
        self.aws.lambdas.overrides[self.function] = self
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        del self.aws.lambdas.overrides[self.function]
