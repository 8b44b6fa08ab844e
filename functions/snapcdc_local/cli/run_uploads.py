"""What ``snapcdc local run`` uploads, in which order, and the record of one upload.

>>> plan_uploads(Path("data"))[:2]
['tenant/test_table/_table.json', 'tenant/test_table/20201230_V0001/export1.csv.gz']
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from snapcdc.model.contract import EXPORT_SUFFIX, MANIFEST_FILE, TABLE_CONFIG_FILE
from snapcdc_local.cli.main import CliError

TERMINAL = ("SUCCEEDED", "SKIPPED", "FAILED", "HELD", "REJECTED")
# Sequence lines that resume a HELD version (stack.resume), as snapcdc approve / reject do.
RESUME_ACTIONS = ("approve", "reject")
# The fields of an Upload in --report, in this order
REPORTED = (
    "key", "tenant", "table", "version", "status", "rows_read", "inserts", "updates", "deletes",
    "published", "applied", "stale", "error", "reason", "action", "seconds", "stages",
)  # fmt: skip


def plan_uploads(data_dir: Path, sequence: Path | None = None) -> list[str]:
    """The keys to upload, in order: every ``_table.json``, then the exports.

    Exports are every ``*.csv.gz`` and ``_manifest.json`` in key order, each manifest after the
    other files of its folder, or the keys listed in ``sequence``.
    """
    if not data_dir.is_dir():
        raise CliError(f"data directory {data_dir} does not exist")
    files = sorted(p.relative_to(data_dir).as_posix() for p in data_dir.rglob("*") if p.is_file())
    configs = [k for k in files if k.rsplit("/", 1)[-1] == TABLE_CONFIG_FILE]
    if sequence is None:
        exports = sorted(
            (k for k in files if is_export(k)),
            key=lambda k: (k.rsplit("/", 1)[0], k.rsplit("/", 1)[-1] == MANIFEST_FILE, k),
        )
    else:
        exports = read_sequence(sequence, data_dir)
    if not exports:
        raise CliError(f"no *{EXPORT_SUFFIX} exports found in {data_dir}")
    return configs + exports


def is_export(key: str) -> bool:
    """An object the pipeline starts on: an export or part, or a version's manifest."""
    return key.endswith(EXPORT_SUFFIX) or key.rsplit("/", 1)[-1] == MANIFEST_FILE


def is_part(data_dir: Path, key: str) -> bool:
    """Whether ``key`` is one part of a multi-part version, by its table's ``_table.json`` in
    ``data_dir`` (the rule the pipeline applies, ``snapcdc.model.manifest.completion``); a key
    or configuration the pipeline would refuse is followed as an upload, to show why."""
    from snapcdc.model.contract import ContractError, TableConfig, parse_export_key
    from snapcdc.model.manifest import completion

    try:
        ref = parse_export_key(key)
        config_file = data_dir / ref.config_key
        config = (
            TableConfig.from_json(config_file.read_bytes())
            if config_file.is_file()
            else TableConfig()
        )
        return completion(config, ref) == "part"
    except ContractError:
        return False


def read_sequence(sequence: Path, data_dir: Path) -> list[str]:
    """Keys listed in a sequence file; every one must be a file under ``data_dir``.

    A line ``approve KEY`` or ``reject KEY`` resumes that key's HELD version at that point;
    ``verify TABLE`` or ``repair TABLE`` verifies (and repairs) a table there.
    """
    try:
        lines = sequence.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CliError(f"cannot read sequence file {sequence}: {exc.strerror}") from None
    keys = []
    for number, line in enumerate(lines, 1):
        key = line.split("#", 1)[0].strip()
        if not key:
            continue
        # verify TABLE / repair TABLE (snapcdc_local.cli.run_verify)
        from snapcdc_local.cli.run_verify import check_line

        checked = check_line(key, f"{sequence}:{number}")
        if checked:
            keys.append(checked)
            continue
        action, _, rest = key.partition(" ")
        if action in RESUME_ACTIONS and rest.strip():
            key = rest.strip()
        path = data_dir / key
        if key.startswith("/") or ".." in Path(key).parts or not path.is_file():
            raise CliError(f"{sequence}:{number}: {key!r} is not a file under {data_dir}")
        key = Path(key).as_posix()
        keys.append(f"{action} {key}" if action in RESUME_ACTIONS and key != action else key)
    return keys


# the registry record's counters the run reports per upload
COUNTS = ("rows_read", "inserts", "updates", "deletes", "published", "applied", "stale")


def resume_line(entry: str) -> tuple[str, str] | None:
    """``("approve", KEY)`` for a sequence entry ``approve KEY``; None for an upload.

    >>> resume_line("approve t/x/V2/a.csv.gz"), resume_line("t/x/V2/a.csv.gz")
    (('approve', 't/x/V2/a.csv.gz'), None)
    """
    action, _, key = entry.partition(" ")
    return (action, key) if action in RESUME_ACTIONS and key else None


# -- one upload and what became of it --------------------------------------------------------


@dataclass
class Upload:
    """One object put into the import bucket and its outcome in the pipeline."""

    key: str
    tenant: str
    table: str
    version: str
    status: str = "PENDING"
    rows_read: int = 0
    inserts: int = 0
    updates: int = 0
    deletes: int = 0
    published: int = 0
    applied: int = 0
    stale: int = 0
    error: str | None = None
    reason: str | None = None  # why it is HELD, REJECTED or SKIPPED
    action: str = "upload"  # or approve / reject (a sequence line resuming a HELD version)
    seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)  # seconds: delta, publish, apply
    started: float = 0.0
    sequencer: str | None = None
    executions: list[str] = field(default_factory=list)

    @property
    def table_id(self) -> str:
        return f"{self.tenant}/{self.table}"

    def report(self) -> dict[str, Any]:
        fields = asdict(self)
        return {name: fields[name] for name in REPORTED}

    @property
    def label(self) -> str:
        return self.key if self.action == "upload" else f"{self.action} {self.key}"
