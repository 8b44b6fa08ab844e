"""The ``snapcdc`` command line: one argparse program, one subcommand per module.

A subcommand lives in its own module under ``snapcdc_local.cli`` and exposes ``COMMAND``, a
:class:`Command` (or ``COMMANDS``, a list of them, for siblings such as approve / reject). To
add one (``snapcdc local run``, say), write the module and append its name to
:data:`COMMAND_MODULES`; modules are imported only when the program starts, so a command's
heavy imports stay out of the others' way.

Errors a user can fix (bad input, a missing file, data that fails the checks) are raised as
:class:`CliError` (or :class:`~snapcdc.model.contract.ContractError`, or the engine's
``EngineError``) and printed as one line on stderr with exit status 1; usage errors exit with
status 2 as argparse does.

>>> main(["--version"])
snapcdc 0.1.0
0
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from snapcdc import __version__
from snapcdc_local.errors import CliError as CliError  # re-exported: the commands raise it

# Modules that define a subcommand (each exposes COMMAND or COMMANDS); the order is the help
# order.
COMMAND_MODULES: list[str] = [
    "snapcdc_local.cli.diff",
    "snapcdc_local.cli.run",
    "snapcdc_local.cli.redrive",
    "snapcdc_local.cli.resume",
    "snapcdc_local.cli.verify",
    "snapcdc_local.cli.upload",
    "snapcdc_local.cli.status",
    "snapcdc_local.cli.history",
]


@dataclass(frozen=True)
class Command:
    """One subcommand: its name, one-line help, how it adds its arguments, what it runs.

    ``run`` returns the exit status.
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str | None = None


def commands() -> list[Command]:
    """The registered subcommands, in :data:`COMMAND_MODULES` order."""
    found = []
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        found.extend(getattr(module, "COMMANDS", None) or [module.COMMAND])
    return found


def build_parser(available: Sequence[Command] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snapcdc",
        description="Change data capture from full-table exports.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", help="the command to run (each has its own --help)"
    )
    for command in available if available is not None else commands():
        sub_parser = sub.add_parser(
            command.name,
            help=command.help,
            description=command.description or command.help,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_arguments(sub_parser)
        sub_parser.set_defaults(_command=command)
    return parser


def _requested(argv: Sequence[str]) -> list[Command] | None:
    """The commands of the one module a command line names (``snapcdc diff ...`` -> the diff
    module), when its module is named like the command; else None (import them all). Another
    command's imports (boto3, moto, Powertools for ``local run``) are not ``snapcdc diff``'s
    start-up cost."""
    name = next((a for a in argv if not a.startswith("-")), None)
    module = f"snapcdc_local.cli.{name}"
    if name is None or module not in COMMAND_MODULES:
        return None
    loaded = importlib.import_module(module)
    found = getattr(loaded, "COMMANDS", None) or [loaded.COMMAND]
    return found if any(c.name == name for c in found) else None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``snapcdc`` console script and of ``python -m snapcdc_local``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_requested(argv))
    args = parser.parse_args(argv)
    if args.version:
        print(f"snapcdc {__version__}")
        return 0
    command: Command | None = getattr(args, "_command", None)
    if command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return command.run(args)
    except KeyboardInterrupt:
        print(f"snapcdc {command.name}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line for anything the user can act on, never a traceback
        if not _is_user_error(exc):
            raise
        message = " ".join(str(exc).split())
        print(f"snapcdc {command.name}: error: {message}", file=sys.stderr)
        return 1


def _is_user_error(exc: BaseException) -> bool:
    from snapcdc.model.contract import ContractError
    from snapcdc.model.settings import SettingsError  # a SNAPCDC_* variable set wrong
    from snapcdc_local.engine.engine import EngineError

    return isinstance(exc, CliError | ContractError | EngineError | SettingsError | OSError)
