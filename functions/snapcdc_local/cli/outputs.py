"""Where a command writes its outputs (a report, a dump, a log, ops): checked before the work,
so that a path the command could only fail to write at the end is refused at the start, in one
line naming the option."""

from __future__ import annotations

import os
from pathlib import Path

from snapcdc_local.errors import CliError


def check_writable(path: Path | None, option: str, directory: bool = False) -> None:
    """Refuse an output the command could only fail to write at its end: a file where a
    folder is needed or the reverse, or a folder that cannot be written."""
    if path is None:
        return
    if path.exists() and path.is_dir() != directory:
        kind = "a file" if directory else "a directory"
        raise CliError(f"{option} {path} is {kind}; give a {'folder' if directory else 'file'}")
    if path.exists():  # written over (a file) or into (a folder)
        if not os.access(path, os.W_OK):
            raise CliError(f"{option} {path} is not writable")
        return
    existing = next((p for p in path.parents if p.exists()), Path("."))
    if not existing.is_dir():
        raise CliError(f"{option} {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK):
        raise CliError(f"{option} {path}: {existing} is not writable")
