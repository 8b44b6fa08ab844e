"""What ``snapcdc local run`` uploads, in which order, and the record of one upload.

>>> plan_uploads(Path("data"))[:2]
['tenant/test_table/_table.json', 'tenant/test_table/20201230_V0001/export1.csv.gz']
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from snapcdc.model.contract import EXPORT_SUFFIX, MANIFEST_FILE, TABLE_CONFIG_FILE
from snapcdc_local.cli.main import CliError

TERMINAL = ("SUCCEEDED", "SKIPPED", "FAILED", "HELD", "REJECTED")
# What became of a sequence line or file that changed nothing: an object no rule of the stack
# starts on (IGNORED), an approve / reject the registry refused (REFUSED). Each is named with
# its reason; neither counts in a table's summary.
UNCHANGED = ("IGNORED", "REFUSED")
# Sequence lines that resume a HELD version (stack.resume), as snapcdc approve / reject do.
RESUME_ACTIONS = ("approve", "reject")
# The fields of an Upload in --report, in this order
REPORTED = (
    "key", "tenant", "table", "version", "status", "rows_read", "inserts", "updates", "deletes",
    "published", "applied", "stale", "error", "reason", "action", "seconds", "stages",
)  # fmt: skip


def plan_uploads(data_dir: Path, sequence: Path | None = None) -> list[str]:
    """The keys to upload, in order: every table's ``_table.json``, then every other file.

    The other files go in key order, each manifest after the other files of its folder, or
    as ``sequence`` lists them. Every file is uploaded, as a copy of the folder to the import
    bucket would be: one that no rule of the stack starts on is reported IGNORED, with why
    (:func:`ignored_reason`), never left out without a word.
    """
    if not data_dir.exists():
        raise CliError(f"data directory {data_dir} does not exist")
    if not data_dir.is_dir():
        raise CliError(f"data directory {data_dir} is not a directory")
    files = sorted(p.relative_to(data_dir).as_posix() for p in data_dir.rglob("*") if p.is_file())
    configs = [k for k in files if is_table_config(k)]
    if sequence is None:
        if not any(is_export(k) for k in files):
            stray = [k for k in files if not is_table_config(k)]
            said = f"; {stray[0]}: {ignored_reason(stray[0])}" if stray else " (it is empty)"
            if files and not stray:
                said = " (it holds table configurations only)"
            raise CliError(f"no *{EXPORT_SUFFIX} export or {MANIFEST_FILE} in {data_dir}{said}")
        others = sorted(
            (k for k in files if not is_table_config(k)),
            key=lambda k: (k.rsplit("/", 1)[0], k.rsplit("/", 1)[-1] == MANIFEST_FILE, k),
        )
    else:
        others = read_sequence(sequence, data_dir)
        if not others:
            raise CliError(f"sequence file {sequence} lists no key")
    return configs + others


def is_export(key: str) -> bool:
    """An object the pipeline starts on: the stack's rule matches keys by these suffixes (an
    export or part, or a version's manifest; cfn.yaml, ``ExportCreatedRule``)."""
    return key.endswith((EXPORT_SUFFIX, MANIFEST_FILE))


def is_table_config(key: str) -> bool:
    """A table's configuration, where the pipeline reads it: ``{tenant}/{table}/_table.json``."""
    return key.count("/") == 2 and key.rsplit("/", 1)[-1] == TABLE_CONFIG_FILE


def ignored_reason(key: str) -> str:
    """Why the pipeline starts nothing on ``key`` (a file that is no export), and what to do.

    >>> ignored_reason("acme/t/V1/export.CSV.GZ")  # doctest: +ELLIPSIS
    'not an export: ... rename it to acme/t/V1/export.csv.gz'
    """
    name = key.rsplit("/", 1)[-1]
    lowered = name.lower()
    starts = (
        f"not an export: the pipeline starts only on keys ending in {EXPORT_SUFFIX} (gzip CSV) "
        f"or {MANIFEST_FILE}, spelled in lowercase"
    )
    folder = key[: len(key) - len(name)]
    if name == TABLE_CONFIG_FILE:
        return (
            f"a table's configuration is read only from {{tenant}}/{{table}}/{TABLE_CONFIG_FILE}; "
            "move it there"
        )
    if lowered.endswith((EXPORT_SUFFIX, MANIFEST_FILE)):
        fixed = name[: -len(EXPORT_SUFFIX)] + EXPORT_SUFFIX
        if lowered.endswith(MANIFEST_FILE):
            fixed = name[: -len(MANIFEST_FILE)] + MANIFEST_FILE
        return f"{starts}; rename it to {folder}{fixed}"
    if lowered.endswith((".csv", ".txt", ".tsv")):
        return (
            f"{starts}; compress it with gzip and name it {folder}{name.rsplit('.', 1)[0]}.csv.gz"
        )
    if lowered.endswith(".gz"):
        return f"{starts}; if it is a gzip CSV, name it {folder}{name[:-3]}.csv.gz"
    return f"{starts}; it is stored in the bucket and never read"


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
    except UnicodeDecodeError:
        raise CliError(f"sequence file {sequence} is not UTF-8 text") from None
    except OSError as exc:
        raise CliError(f"cannot read sequence file {sequence}: {exc.strerror}") from None
    keys = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        where = f"{sequence}:{number}"
        # verify TABLE / repair TABLE (snapcdc_local.cli.run_verify)
        from snapcdc_local.cli.run_verify import check_line

        checked = check_line(text, where)
        if checked:
            keys.append(checked)
            continue
        action, _, rest = text.partition(" ")
        if action.lower() in RESUME_ACTIONS:
            if action not in RESUME_ACTIONS or not rest.strip():
                raise CliError(f"{where}: {text!r}: write approve KEY or reject KEY")
            key = rest.strip()
        else:
            action, key = "", text
        path = data_dir / key
        if key.startswith("/") or ".." in Path(key).parts:
            raise CliError(f"{where}: {key!r} is not a key relative to {data_dir}")
        if not path.is_file():
            near = _near(data_dir, key)
            raise CliError(
                f"{where}: {key!r} is not a file under {data_dir}" + (f"; {near}" if near else "")
            )
        key = Path(key).as_posix()
        keys.append(f"{action} {key}" if action else key)
    return keys


def _near(data_dir: Path, key: str) -> str | None:
    """A file of ``data_dir`` the key may have meant: the same name in another case, or the
    key relative to DATA_DIR when it was written relative to the current folder."""
    inside = Path(key)
    with contextlib.suppress(ValueError, OSError):
        inside = Path(key).resolve().relative_to(data_dir.resolve())
        if (data_dir / inside).is_file():
            return f"keys are relative to {data_dir}: did you mean {inside.as_posix()}?"
    folded = key.lower()
    with contextlib.suppress(OSError):
        for path in data_dir.rglob("*"):
            relative = path.relative_to(data_dir).as_posix()
            if relative.lower() == folded and path.is_file():
                return f"did you mean {relative}?"
    return None


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
