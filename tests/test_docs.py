"""The documentation says what is true: its links resolve, its commands run as shown.

For README.md, CHANGELOG.md and every page of docs/:

- every relative link resolves to a file, and a ``#anchor`` to a heading of that file (GitHub's
  anchors: lowercase, punctuation dropped, spaces as hyphens);
- every ``snapcdc ...`` line of a shell block parses with the command line's own parser
  (``snapcdc_local.cli.main.build_parser``), as a user would type it;
- every ``make X`` of a shell block names a Makefile target, and every ``scripts/*.py`` exists;
- the README's command table gives each command's one-line ``--help`` word for word.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from collections import Counter
from pathlib import Path

import pytest

from snapcdc_local.cli.main import build_parser

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", REPO / "CHANGELOG.md", *sorted((REPO / "docs").glob("*.md"))]

# Pages and commands the docs point at that other work brings, not merged yet: a link to one of
# these pages and a command line starting with one of these commands are not checked. Remove an
# entry when its work is merged (test_not_yet_merged_is_still_missing says which).
NOT_YET_MERGED: tuple[str, ...] = ()
PENDING_PAGES = {REPO / entry for entry in NOT_YET_MERGED if entry.endswith(".md")}
PENDING_COMMANDS = tuple(
    entry.split()[1:] for entry in NOT_YET_MERGED if entry.startswith("snapcdc")
)

FENCE = re.compile(r"^(`{3,}|~{3,})\s*([\w-]*)")
SHELLS = {"sh", "bash", "shell", "console"}
LINK = re.compile(r"(?<!!)\[([^\]]*)\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`+[^`]*`+")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def blocks(path: Path) -> tuple[list[tuple[int, str]], list[tuple[str, int, list[str]]]]:
    """The page's prose lines (number, text) and its fenced blocks (language, first line,
    lines)."""
    prose: list[tuple[int, str]] = []
    fenced: list[tuple[str, int, list[str]]] = []
    current: tuple[str, str, int, list[str]] | None = None
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = FENCE.match(line.strip())
        if current is None and match:
            current = (match.group(1), match.group(2).lower(), number, [])
        elif current is not None and line.strip().startswith(current[0]):
            fenced.append((current[1], current[2], current[3]))
            current = None
        elif current is not None:
            current[3].append(line)
        else:
            prose.append((number, line))
    assert current is None, f"{rel(path)}:{current[2]}: code block never closed"
    return prose, fenced


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it."""
    text = LINK.sub(r"\1", heading).replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    prose, _ = blocks(path)
    seen: Counter[str] = Counter()
    found = set()
    for _, line in prose:
        if match := re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line):
            base = slug(match.group(1))
            found.add(base if not seen[base] else f"{base}-{seen[base]}")
            seen[base] += 1
    return found


def links(path: Path) -> list[tuple[int, str]]:
    prose, _ = blocks(path)
    return [
        (number, target)
        for number, line in prose
        for _, target in LINK.findall(CODE_SPAN.sub("", line))
    ]


def shell_lines(path: Path) -> list[tuple[int, str]]:
    """Each command line of the page's shell blocks (continuations joined, a ``$`` prompt
    dropped), with its line number."""
    found = []
    for language, first, lines in blocks(path)[1]:
        if language not in SHELLS:
            continue
        joined, start = "", None
        for offset, line in enumerate(lines, first + 1):
            start = offset if start is None else start
            if line.rstrip().endswith("\\"):
                joined += line.rstrip()[:-1] + " "
                continue
            text = (joined + line).strip()
            joined, number, start = "", start, None
            text = text[2:] if text.startswith("$ ") else text
            if text and not text.startswith("#"):
                found.append((number, text))
    return found


def simple_commands(line: str) -> list[list[str]]:
    """The words of each simple command of a shell line (split at unquoted ``&&``, ``|``, ``;``,
    ``&``, parentheses), the comment dropped, leading ``VAR=value`` assignments and ``time``
    skipped."""
    parts, current, quote = [], "", None
    for position, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (position == 0 or line[position - 1].isspace()):
            break
        elif char in "&|;()<>":
            parts.append(current)
            current = ""
            continue
        current += char
    parts.append(current)
    out = []
    for part in parts:
        words = shlex.split(part)
        while words and (ASSIGNMENT.match(words[0]) or words[0] == "time"):
            words = words[1:]
        if words:
            out.append(words)
    return out


def makefile_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return {
        name
        for match in re.finditer(r"^([A-Za-z0-9_.\- ]+):(?!=)", text, re.MULTILINE)
        for name in match.group(1).split()
    }


def parse_error(argv: list[str]) -> str | None:
    """What the real parser says against ``snapcdc <argv>``, or None when it takes it."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(argv)
    except SystemExit as exc:
        if exc.code:
            return err.getvalue().strip().splitlines()[-1]
    return None


def pending(argv: list[str]) -> bool:
    return any(argv[: len(words)] == words for words in PENDING_COMMANDS)


def leaf_commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[str, str]]:
    """``(command path, one-line help)`` of every command that runs something."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                below = leaf_commands(sub, (*path, name))
                found.extend(below or [(" ".join((*path, name)), helps[name])])
    return found


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_every_relative_link_resolves(page):
    broken = []
    for number, target in links(page):
        if re.match(r"^[a-z]+:", target):  # https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        resolved = (page.parent / file).resolve() if file else page
        if resolved in PENDING_PAGES:
            continue
        if not resolved.is_file():
            broken.append(f"{rel(page)}:{number}: {target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{rel(page)}:{number}: {target}: no heading #{anchor}")
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_every_command_shown_runs_as_shown(page):
    targets = makefile_targets()
    wrong = []
    for number, line in shell_lines(page):
        for words in simple_commands(line):
            program, args = Path(words[0]).name, words[1:]
            where = f"{rel(page)}:{number}: {line}"
            if program == "snapcdc" and not pending(args):
                if (error := parse_error(args)) is not None:
                    wrong.append(f"{where}\n    {error}")
            elif program == "make":
                named = [a for a in args if not a.startswith("-") and "=" not in a]
                wrong.extend(
                    f"{where}\n    no Makefile target {t!r}" for t in named if t not in targets
                )
            for word in words:
                if word.startswith("scripts/") and not (REPO / word).is_file():
                    wrong.append(f"{where}\n    no file {word}")
    assert not wrong, "\n".join(wrong)


def test_the_readme_gives_each_commands_help_in_its_own_words():
    readme = (REPO / "README.md").read_text()
    missing = [
        f"| `snapcdc {path}` | {help_text} |"
        for path, help_text in leaf_commands(build_parser())
        if f"| `snapcdc {path}` | {help_text} |" not in readme
    ]
    assert not missing, "the README's command table lacks these rows:\n" + "\n".join(missing)


def test_not_yet_merged_is_still_missing():
    merged = [rel(page) for page in PENDING_PAGES if page.exists()]
    merged += [
        "snapcdc " + " ".join(words)
        for words in PENDING_COMMANDS
        if parse_error([*words, "--help"]) is None
    ]
    assert not merged, f"merged now, remove from NOT_YET_MERGED in {rel(Path(__file__))}: {merged}"
