"""``snapcdc local run``: the whole pipeline on this machine, from S3 upload to target table.

The stack in ``cfn.yaml`` is deployed into the embedded AWS emulation
(:class:`~snapcdc_local.emulator.Emulator`: moto in process, DuckDB doing Athena's work); then
every file of DATA_DIR is uploaded to the import bucket like an export landing in S3. What a
user sees is in :data:`DESCRIPTION` (``snapcdc local run --help``); approve / reject lines run
the code of ``snapcdc_local.stack.resume``, ``--redrive`` that of ``snapcdc_local.stack.redrive``.

This module is the command: its arguments and what it runs. The driver (the emulator, the
uploads in sequence, waiting for them to settle) is ``run_driver``, what to upload
``run_uploads``, the progress display ``run_progress``, the printed table and report
``run_output``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from snapcdc_local.cli.main import CliError, Command
from snapcdc_local.cli.outputs import check_writable
from snapcdc_local.cli.run_driver import (
    DEFAULT_TEMPLATE,
    DUMP_FORMATS,
    RunOptions,
    run_pipeline,
)
from snapcdc_local.cli.run_output import ConsoleWriter, Printer, lambda_output, write_report
from snapcdc_local.cli.run_progress import NoProgress, progress_display
from snapcdc_local.cli.run_uploads import plan_uploads
from snapcdc_local.cli.serve import add_serve_parser, serve_command

# -- the command -------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(
        dest="local_command", metavar="SUBCOMMAND", required=True, help="what to run locally"
    )
    run = sub.add_parser(
        "run",
        help="run the whole pipeline on DATA_DIR in the embedded AWS emulation",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "data_dir",
        nargs="?",
        default="data",
        type=Path,
        metavar="DATA_DIR",
        help="the exports, laid out as in the import bucket: {tenant}/{table}/{version}/ "
        "(default: data)",
    )
    run.add_argument(
        "--sequence",
        type=Path,
        metavar="FILE",
        help=(
            "upload the exports listed in FILE, in order (and approve KEY / reject KEY, "
            "verify TENANT/TABLE / repair TENANT/TABLE lines)"
        ),
    )
    run.add_argument(
        "--report", type=Path, metavar="FILE", help="write the outcome of every upload as JSON"
    )
    run.add_argument(
        "--dump-target",
        type=Path,
        metavar="DIR",
        help="write every table's rows in the target to DIR/{tenant}/{table}.csv (or .jsonl)",
    )
    run.add_argument(
        "--dump-format",
        choices=DUMP_FORMATS,
        default="csv",
        help="csv (NULL written as an empty field) or jsonl (one JSON object a row: NULL is "
        "null, apart from an empty string)",
    )
    run.add_argument(
        "--history",
        nargs="?",
        const="all",
        choices=["all", "last"],
        help="print the state history of each execution (or of the last one: --history last)",
    )
    run.add_argument("--concurrent", action="store_true", help="upload everything at once")
    run.add_argument(
        "--redrive",
        action="store_true",
        help="at the end, re-apply the batches the consumer gave up on (as snapcdc redrive)",
    )
    run.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE, help=argparse.SUPPRESS)
    run.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a stack parameter (repeatable)",
    )
    run.add_argument(
        "--lambda-log", type=Path, metavar="FILE", help="append the functions' log output to FILE"
    )
    run.add_argument("--timeout", type=float, default=1800.0, help=argparse.SUPPRESS)
    add_serve_parser(sub)


def parse_parameters(items: list[str]) -> dict[str, str]:
    """``["A=1", "B=x"]`` -> ``{"A": "1", "B": "x"}``.

    >>> parse_parameters(["QueryPollSeconds=2"])
    {'QueryPollSeconds': '2'}
    """
    parameters = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CliError(f"--parameter {item!r} is not KEY=VALUE")
        parameters[name] = value
    return parameters


def run_command(args: argparse.Namespace) -> int:
    check_writable(args.report, "--report")
    check_writable(args.lambda_log, "--lambda-log")
    check_writable(args.dump_target, "--dump-target", directory=True)
    options = RunOptions(
        data_dir=args.data_dir,
        sequence=args.sequence,
        concurrent=args.concurrent,
        template=args.template,
        parameters=parse_parameters(args.parameter),
        timeout=args.timeout,
        history=bool(args.history),
        redrive=args.redrive,
    )
    out = sys.stdout
    with progress_display() as progress:
        keys = plan_uploads(options.data_dir, options.sequence)  # also checks the arguments
        width = max(len("key"), *(len(k) for k in keys))
        printer = Printer(out, width)
        if not isinstance(progress, NoProgress) and out.isatty():
            # Rows share the terminal with the live progress display: print them through it.
            printer = Printer(ConsoleWriter(progress.console), width)
        printer.header()
        try:
            with lambda_output(args.lambda_log):
                result = run_pipeline(
                    options,
                    on_upload=printer.upload,
                    progress=progress,
                    dump_target=args.dump_target,
                    dump_format=args.dump_format,
                )
        except CliError:
            raise
        except Exception as exc:  # the run broke: one line, not a traceback
            raise CliError(
                f"the local run failed: {type(exc).__name__}: {' '.join(str(exc).split())}"
            ) from None
        if result.redriven is not None:
            from snapcdc_local.cli.redrive import print_results

            printer.line("")
            print_results(result.redriven, printer.out)
        printer.summary(result)
        if args.history:
            printer.histories(result, last_only=args.history == "last")
    if args.report:
        write_report(result, args.report)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.local_command == "run":
        return run_command(args)
    if args.local_command == "serve":
        return serve_command(args)
    raise CliError(f"unknown local subcommand {args.local_command!r}")


DESCRIPTION = """\
Run the whole snapcdc pipeline on this machine: the stack in cfn.yaml is deployed into an
embedded AWS emulation (moto in process, DuckDB doing Athena's work), then every file of
DATA_DIR is uploaded to the import bucket like an export landing in S3.

What is uploaded, in which order:
  - every {tenant}/{table}/_table.json first, then every other file in key order (a
    version's manifest after its parts: it completes the version). A file the pipeline
    starts nothing on (not *.csv.gz or _manifest.json: export.csv, export.CSV.GZ, notes.txt,
    a _table.json elsewhere than {tenant}/{table}/) is uploaded all the same and reported
    IGNORED, with why and what to do;
  - or the keys listed in --sequence FILE, in that order: one key relative to DATA_DIR per
    line, # starts a comment, a key may repeat (it is uploaded again); a line "approve KEY"
    or "reject KEY" resumes that key's HELD version at that point, as snapcdc approve /
    reject would; a line "verify TENANT/TABLE" or "repair TENANT/TABLE" verifies (and
    repairs) that table there, as snapcdc verify [--repair] would (with --concurrent, these
    lines run once the uploads have settled); an approve or reject the registry refuses
    (nothing of KEY is HELD: it was rejected, say) is reported REFUSED, with why, and the run
    goes on;
  - a part of a multi-part version (complete_on "manifest" in its table's _table.json) starts
    nothing by itself: the version's _manifest.json is the upload that is followed.

Each upload goes through the whole pipeline (S3 event, EventBridge, the state machine, Athena,
Kinesis, the consumer) and everything settles before the next upload starts; --concurrent
uploads them all at once instead, and the table locks serialise the work.

Per upload it prints the key, the status (SUCCEEDED, SKIPPED, FAILED, HELD or REJECTED;
IGNORED or REFUSED for a line that changed nothing), the inserts, updates and deletes,
published (records Kinesis took), applied (ops the consumer wrote to the target) and seconds,
and why a version FAILED, is HELD, REJECTED or SKIPPED; at the end a summary per target table,
each version counted once by where it stands now (a HELD version approved later counts as
SUCCEEDED). A key outside the export contract fails alone, with the contract's reason.
While an upload runs, a terminal (stderr) shows its rows read, ops published and applied,
polled from the registry; elsewhere (a log file, CI) a line per version and stage is printed
on stderr. --report FILE writes the same as JSON, with rows read and each version's seconds
per stage (delta, publish, apply); --dump-target DIR writes DIR/{tenant}/{table}.csv for every
table with a successful version, read back from the target (--dump-format jsonl: one JSON
object a row, which keeps NULL apart from an empty string); --history prints each
execution's Step Functions history. --redrive re-applies, once every upload has settled, the
batches the consumer gave up on (as snapcdc redrive does).

The Lambda functions' log output goes to --lambda-log FILE (default: discarded), as it would
go to CloudWatch Logs rather than to this terminal.

Exit status 0 when every upload reached a terminal status (FAILED included); 1 with a one-line
reason when the run cannot start (a missing DATA_DIR, a wrong sequence line, an output path
that cannot be written, a --parameter outside the template's bounds) or the run itself broke
(the stack did not deploy, the pipeline did not settle).

examples:
  snapcdc local run data --history last
  snapcdc local run data --sequence order.txt --report report.json
"""

COMMAND = Command(
    name="local",
    help="the pipeline on this machine (embedded AWS emulation)",
    add_arguments=add_arguments,
    run=run,
    description="The snapcdc stack on this machine: moto in process, DuckDB doing Athena's work.",
)
