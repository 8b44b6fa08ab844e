"""``snapcdc diff``: the delta between two export files, computed by the pipeline's own core.

The statements are the pipeline's (:func:`snapcdc.steps.plan.version_statements`: OLD planned
as a first load, NEW as a delta against it), run on the embedded engine
(:class:`~snapcdc_local.engine.engine.AthenaEngine`); the header is read and the schema
resolved as Plan does, the checks judged as Check does (so a file fails in the same words as
the pipeline's FAILED reason), the ops counted as Hold counts them. Only the files differ: a
local file (gzip or plain) is mapped to an S3 location of its own, and the AWS size limits are
not checked (nothing is stored in AWS).

This module is what the command line needs before the files are read; the work is in
:mod:`snapcdc_local.cli.diff_core`, imported only once both files are being read (its imports,
DuckDB, sqlglot, Jinja, take longer than inflating a file, and need not wait for each other).

``--out`` writes the operations as CSV with the header ``op,<columns>`` (the new file's
columns; a DELETE carries the old row's values).

>>> import tempfile, pathlib
>>> tmp = pathlib.Path(tempfile.mkdtemp())
>>> _ = (tmp / "old.csv").write_text("id,name\\n1,a\\n2,b\\n")
>>> _ = (tmp / "new.csv").write_text("id,name\\n1,a\\n2,B\\n3,c\\n")
>>> diff_files(tmp / "old.csv", tmp / "new.csv", TableConfig()).counts
{'INSERT': 1, 'UPDATE': 1, 'DELETE': 0}
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from snapcdc.model.contract import ContractError, TableConfig
from snapcdc.model.errors import Setting, in_table_config
from snapcdc.model.names import validate_columns
from snapcdc_local.cli.main import CliError, Command
from snapcdc_local.cli.outputs import check_writable
from snapcdc_local.engine.arrow_reader import Prefetch
from snapcdc_local.engine.opencsv import NO_ESCAPE, CsvFormat

if TYPE_CHECKING:
    from snapcdc.model.contract import TableSchema

GZIP_MAGIC = b"\x1f\x8b"
CACHE_ENV = "SNAPCDC_CACHE_DIR"


@dataclass
class DiffResult:
    """Counts per operation plus the schemas and row counts of both sides."""

    counts: dict[str, int]
    old_schema: TableSchema
    new_schema: TableSchema
    old_rows: int
    new_rows: int
    out: Path | None = None


@dataclass
class Export:
    """One side of a diff: the user's file, and the file the engine reads (a link to it)."""

    role: str  # OLD or NEW
    path: Path
    staged: Path

    def __str__(self) -> str:
        return f"{self.role} file {self.path}"


def diff_files(
    old: str | os.PathLike[str],
    new: str | os.PathLike[str],
    config: TableConfig,
    out: str | os.PathLike[str] | None = None,
) -> DiffResult:
    """Diff two export files; see the module docstring. Raises CliError on bad input."""
    with _staging() as stage:
        sides = (
            _stage(stage, "OLD", Path(old), "old_export"),
            _stage(stage, "NEW", Path(new), "new_export"),
        )
        prefetch = Prefetch()
        try:
            # The engine takes these reads if its tables turn out to read the files this way
            # (the DDL's SerDe properties); if not, it reads them itself.
            fmt = CsvFormat(config.delimiter, config.quote, config.escape or NO_ESCAPE)
            for side in sides:
                prefetch.start(str(side.staged), fmt, int(config.header))
            from snapcdc_local.cli import diff_core  # now: see the module docstring

            result = diff_core.diff_staged(sides, stage, config, out, prefetch)
        finally:
            prefetch.close()
    return DiffResult(**result, out=_path(out))


# -- staging files for the engine -----------------------------------------------------------------


@contextmanager
def _staging() -> Iterator[Path]:
    stage = Path(tempfile.mkdtemp(prefix="snapcdc-diff-"))
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _stage(stage: Path, role: str, path: Path, table: str) -> Export:
    """Link the user's file under a name the engine reads as Athena would read the object."""
    if not path.exists():
        raise CliError(f"{role} file {path} does not exist")
    if not path.is_file():
        raise CliError(f"{role} file {path} is not a file")
    try:
        with path.open("rb") as fh:
            magic = fh.read(2)
    except OSError as exc:
        raise CliError(f"cannot read {role} file {path}: {exc.strerror}") from None
    # Athena picks the codec by the file's extension: a file named .gz is read as gzip, as the
    # pipeline reads it (and fails as the pipeline fails it when it is not one); any other
    # name is judged by its content (a plain or a gzip CSV: a file to upload compressed).
    gzip_named = path.name.lower().endswith(".gz")
    suffix = ".csv.gz" if gzip_named or magic == GZIP_MAGIC else ".csv"
    (stage / table).mkdir()
    staged = stage / table / f"export{suffix}"
    try:
        staged.symlink_to(path.resolve())
    except OSError:
        shutil.copyfile(path, staged)
    return Export(role, path, staged)


def cache_dir() -> Path | None:
    """Where compiled SQL is kept between runs (the same statements come back every run):
    ``$SNAPCDC_CACHE_DIR``, else ``snapcdc`` in the user's cache directory (XDG); ``None``, no
    cache, when ``SNAPCDC_CACHE_DIR`` is set empty."""
    configured = os.environ.get(CACHE_ENV)
    if configured is not None:
        return Path(configured) if configured else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "snapcdc"


def _path(value: str | os.PathLike[str] | None) -> Path | None:
    return Path(value) if value is not None else None


# -- the subcommand -----------------------------------------------------------------------------


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("old", metavar="OLD", help="the previous export (CSV, gzip or plain)")
    parser.add_argument("new", metavar="NEW", help="the new export (CSV, gzip or plain)")
    parser.add_argument("--key", help="key column(s), comma separated (default: the first column)")
    parser.add_argument("--delimiter", default=",", help="field delimiter (default ',')")
    parser.add_argument("--quote", default='"', help="quote character (default '\"')")
    parser.add_argument(
        "--escape",
        default=None,
        help="escape character (default none: a quote inside a quoted field is doubled)",
    )
    parser.add_argument(
        "--no-header", action="store_true", help="the files have no header row (needs --columns)"
    )
    parser.add_argument("--columns", help="column names in file order, comma separated")
    parser.add_argument("--out", metavar="OPS_CSV", help="write the operations to this CSV file")


def diff_option(setting: Setting) -> str:
    """A table option a reason advises, worded as snapcdc diff takes it: its own options, not
    a ``_table.json`` it never reads (``snapcdc.model.errors``).

    >>> diff_option(Setting("columns", ["id", "Contact_Phone"]))
    'give --columns id,Contact_Phone'
    >>> diff_option(Setting("key"))
    'give --key COLUMN[,COLUMN...]'
    """
    value = setting.value
    if setting.option in ("columns", "key"):
        return f"give --{setting.option} " + (",".join(value) if value else "COLUMN[,COLUMN...]")
    if setting.option in ("delimiter", "quote", "escape") and value:
        return f"give --{setting.option} {value!r}"
    if setting.option == "header":
        return "give --no-header --columns ..." if value is False else "leave out --no-header"
    return in_table_config(setting)


def _split_names(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",")]


def _run(args: argparse.Namespace) -> int:
    if args.columns is None and args.no_header:
        raise CliError("--no-header needs --columns")
    check_writable(Path(args.out) if args.out else None, "--out")
    for option, given in (("--columns", args.columns), ("--key", args.key)):
        if given is not None:
            try:
                validate_columns(_split_names(given), option)
            except ContractError as exc:
                raise CliError(f"{option} {given!r}: {exc}") from None
    raw = {
        "columns": _split_names(args.columns),
        "key": _split_names(args.key),
        "delimiter": _unescape(args.delimiter),
        "quote": _unescape(args.quote),
        "escape": _unescape(args.escape) if args.escape else None,
        "header": not args.no_header,
    }
    try:
        config = TableConfig.from_dict(raw)
    except ContractError as exc:
        raise CliError(exc.words(diff_option)) from None
    result = diff_files(args.old, args.new, config, args.out)
    for op, count in result.counts.items():  # in the pipeline's order (queries.OPS)
        print(f"{op:<7}{count:>12,}")
    if result.out is not None:
        print(f"wrote {sum(result.counts.values()):,} operations to {result.out}")
    return 0


def _unescape(value: str) -> str:
    r"""Let ``--delimiter '\t'`` mean a tab, as users type it in a shell."""
    return {"\\t": "\t", "tab": "\t", "\\\\": "\\"}.get(value, value)


DESCRIPTION = """\
Compute the operations that turn export OLD into export NEW the way the pipeline does: the
same Athena SQL templates, run by the embedded engine, with the same data checks (duplicate
keys, empty keys, rows with missing or extra fields). Files may be gzip or plain CSV.

Prints the INSERT, UPDATE and DELETE counts. --out writes the operations as CSV: op, then
NEW's columns in file order; a DELETE carries OLD's values. Columns are matched by name, so
reordering them changes nothing; when a column was added or removed, every row kept is an
UPDATE carrying the new shape.

examples:
  snapcdc diff v1.csv.gz v2.csv.gz --key id --out ops.csv
  snapcdc diff a.csv b.csv --no-header --columns PK,COL_1,COL_2 --delimiter ';'
"""

COMMAND = Command(
    name="diff",
    help="compute the INSERT/UPDATE/DELETE operations between two export files",
    description=DESCRIPTION,
    add_arguments=_add_arguments,
    run=_run,
)
