"""The error every ``snapcdc`` command prints as one line: a problem the user can fix.

It lives below ``cli`` so that ``stack`` (the code approve / reject / redrive share with the
local run) can raise it without importing the command line; ``snapcdc_local.cli.main``
re-exports it as ``CliError``.
"""

from __future__ import annotations


class CliError(Exception):
    """A problem the user can fix; printed as ``snapcdc <command>: error: <message>``."""
