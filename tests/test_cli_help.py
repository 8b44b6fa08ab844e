"""Every ``--help`` of the ``snapcdc`` console script is plain text for a terminal.

The subcommands are found by walking the program's argparse tree (so a new one is covered
without editing this file); each ``--help`` is then printed by the installed console script,
as a user runs it.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from snapcdc_local.cli.main import build_parser

REPO = Path(__file__).resolve().parents[1]
# reST / Sphinx markup: ``literal``, :role:`target`, a literal block's "::", doctest prompts
MARKUP = re.compile(r"``|:[a-z]+:`|::\s*$|^\s*>>>|`~", re.MULTILINE)


def subcommand_paths(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    yield path
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from subcommand_paths(sub, (*path, name))


PATHS = list(subcommand_paths(build_parser()))


def console_script() -> list[str]:
    found = Path(sys.executable).with_name("snapcdc")
    if not found.exists():
        found = Path(shutil.which("snapcdc") or "snapcdc")
    return [str(found)]


def positional_entries(help_text: str) -> list[tuple[str, str]]:
    """``(name, help)`` of every entry of the "positional arguments:" section: an entry is
    indented 2 spaces, a subcommand choice under it 4; a long name's help is on the next line."""
    lines = help_text.split("positional arguments:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    entries: list[list[str]] = []
    current: list[str] | None = None
    for line in lines:
        if re.match(r"  \S", line):
            name, _, rest = line.strip().partition("  ")
            current = [name, rest.strip()]
            entries.append(current)
        elif re.match(r"    \S", line):
            current = None  # a subcommand choice and its help, not the entry's
        elif current is not None and not current[1]:
            current[1] = line.strip()
    return [(name, text) for name, text in entries]


def test_every_subcommand_is_walked():
    assert {" ".join(p) for p in PATHS} >= {"", "diff", "local", "local run", "redrive"}
    assert {"approve", "reject"} <= {" ".join(p) for p in PATHS}


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "snapcdc")
def test_help_is_plain_text_and_names_every_positional(path):
    proc = subprocess.run(
        [*console_script(), *path, "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert text.startswith(f"usage: snapcdc {' '.join(path)}".rstrip())
    found = MARKUP.search(text)
    assert found is None, f"markup {found.group()!r} in:\n{text}"
    if "positional arguments:" in text:
        entries = positional_entries(text)
        assert entries, text
        assert [name for name, help_line in entries if not help_line] == [], text
