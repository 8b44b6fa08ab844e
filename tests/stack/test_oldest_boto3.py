"""The handlers on the oldest boto3 the project claims to support.

The Lambda Python runtime brings its own boto3, whose version depends on the runtime and the
Region (https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html, "Runtime-included SDK
versions"); the artifact does not bundle one. pyproject.toml's lower bound for boto3 is the
oldest the handlers are tested with: this test installs the locked environment with boto3 and
botocore at that bound (uv, in a throwaway venv) and runs the handler tests there, the whole
state machine with every handler included.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# The state machine with every handler (a version published and finished; a version held, then
# approved and resumed) and the consumer's conditional writes replayed. The whole of tests/stack
# passes there too (run it: HANDLER_TESTS=tests/stack in this file's environment).
HANDLER_TESTS = os.environ.get(
    "HANDLER_TESTS",
    "tests/stack/test_state_machine.py::test_whole_pipeline_publishes_and_records_the_outcome "
    "tests/stack/test_state_machine.py::"
    "test_a_version_that_would_delete_too_much_is_held_then_approved "
    "tests/stack/test_consumer.py::test_an_older_op_replayed_after_a_newer_one_changes_nothing",
).split()


def oldest_boto3() -> str:
    """The lower bound of boto3 in pyproject.toml's dependencies, as a version (1.35 -> 1.35.0)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    (spec,) = [d for d in project["dependencies"] if re.match(r"boto3\b", d)]
    bound = re.search(r">=\s*([0-9.]+)", spec).group(1)
    return bound + ".0" * (2 - bound.count("."))


def uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv") or str(REPO / ".venv-uv" / "bin" / "uv")
    if not Path(found).exists() and not shutil.which(found):
        pytest.fail("uv is not installed: run make install")
    return found


def test_the_handlers_run_on_the_oldest_boto3_claimed(tmp_path):
    version = oldest_boto3()
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    locked = subprocess.run(
        [uv(), "export", "--frozen", "--extra", "dev", "--no-emit-project", "--no-hashes",
         "--format", "requirements-txt", "--no-header", "--project", str(REPO),
         "--no-emit-package", "boto3", "--no-emit-package", "botocore",
         "--no-emit-package", "s3transfer"],
        check=True, capture_output=True, text=True, env=env,
    ).stdout  # fmt: skip
    requirements, overrides = tmp_path / "requirements.txt", tmp_path / "overrides.txt"
    requirements.write_text(locked + "boto3\nbotocore\n")
    # An override, not a pin: pyathena (a dev tool) asks for a newer botocore than the
    # handlers need; s3transfer is left to follow boto3's own requirement.
    overrides.write_text(f"boto3=={version}\nbotocore=={version}\n")
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    subprocess.run([uv(), "venv", "--quiet", "--python", sys.executable, str(venv)],
                   check=True, env=env)  # fmt: skip
    for args in (
        ["-r", str(requirements), "--override", str(overrides)],
        ["--no-deps", "-e", str(REPO)],
    ):
        subprocess.run([uv(), "pip", "install", "--quiet", "--python", str(python), *args],
                       check=True, env=env)  # fmt: skip
    probe = "import boto3, botocore; print(boto3.__version__, botocore.__version__)"
    installed = subprocess.run(
        [str(python), "-c", probe], check=True, capture_output=True, text=True
    ).stdout.split()
    assert installed == [version, version]

    tests = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", *HANDLER_TESTS],
        cwd=REPO, capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert re.search(r"\d+ passed", tests.stdout)
