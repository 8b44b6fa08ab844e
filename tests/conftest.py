"""Collection rules for every test folder.

``--doctest-modules`` (pyproject) would import each ``conftest.py`` a second time as a module
named ``conftest`` to look for doctests; with two test folders given on the command line
(``pytest tests/local tests/stack``) the second import then clashes with the first ("import
file mismatch"). Conftest files hold fixtures, not doctests, so they are left out of doctest
collection.

``snapcdc diff`` keeps compiled statements in ``$SNAPCDC_CACHE_DIR`` (else the user's cache
folder): a test run gets a folder of its own, so it neither writes into the home directory nor
depends on what an earlier run left there.

Longest modules first: with ``-n`` (``--dist loadfile --no-loadscope-reorder``, pyproject)
files go out to the workers in collection order, so the modules that take longest
(:data:`LONGEST_FIRST`, measured with ``--durations=0``) are collected first and the short
ones fill in behind them: no worker is left running one long module while the other idles.

``served``: ``snapcdc local serve`` started in a process of its own for one test module (see
:class:`Served`), for the tests that drive it as a user does (the AWS CLI, boto3, pyathena).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from _pytest.doctest import DoctestModule


def pytest_configure(config):
    if "SNAPCDC_CACHE_DIR" not in os.environ:
        folder = tempfile.mkdtemp(prefix="snapcdc-test-cache-")
        os.environ["SNAPCDC_CACHE_DIR"] = folder
        config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path, parent):
    collectors = yield
    if file_path.name != "conftest.py":
        return collectors
    return [c for c in collectors if not isinstance(c, DoctestModule)]


# The longest modules, longest first (worker seconds with -n 2, `pytest --durations=0` summed per
# file); every other file keeps its place behind them.
LONGEST_FIRST = (
    "tests/serve/test_aws_cli_workflow.py",
    "tests/local/test_local_run_iam.py",
    "tests/local/test_property_sequences.py",
    "tests/sql/test_fixture_cases_pyathena.py",
    "tests/local/test_local_run_tables.py",
    "tests/local/test_emulator_fast_paths_off.py",
    "tests/local/test_verify.py",
    "tests/local/test_local_run_execution_end.py",
    "tests/serve/test_endpoint.py",
    "tests/stack/test_oldest_boto3.py",
)


def pytest_collection_modifyitems(config, items):
    root = config.rootpath
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}

    def place(item):
        try:
            name = item.path.relative_to(root).as_posix()
        except ValueError:
            name = str(item.path)
        return rank.get(name, len(rank))

    items.sort(key=place)  # stable: within a module, and among the rest, the order stays


# -- a served endpoint ------------------------------------------------------------------------

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
REGION = "us-east-1"


class Served:
    """``snapcdc local serve --port 0`` running in a process of its own, as a user starts it."""

    def __init__(self, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "snapcdc_local", "local", "serve", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            env=env,
        )
        # The first line says where it listens (and only comes once it does).
        self.first_line = self.process.stdout.readline().decode()
        found = re.search(r"AWS_ENDPOINT_URL=(\S+)", self.first_line)
        if not found:
            self.stop()
            raise RuntimeError(f"snapcdc local serve did not start: {self.log.read_text()[-2000:]}")
        self.url = found.group(1)

    def env(self, **extra: str) -> dict[str, str]:
        """An environment for a client of the endpoint: the variables a user sets, and nothing
        from this machine's own AWS configuration."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(CREDENTIALS)
        env.update(
            AWS_ENDPOINT_URL=self.url,
            AWS_DEFAULT_REGION=REGION,
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        )
        env.update(extra)
        return env

    def client(self, service: str, **credentials: str):
        import boto3

        return boto3.Session(
            aws_access_key_id=credentials.get("key", "test"),
            aws_secret_access_key=credentials.get("secret", "test"),
            aws_session_token=credentials.get("token"),
            region_name=REGION,
        ).client(service, endpoint_url=self.url)

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()
        return self.process.returncode


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A served emulation (an empty account) for one test module; stopped with SIGTERM."""
    endpoint = Served(tmp_path_factory.mktemp("served") / "serve.log")
    try:
        yield endpoint
    finally:
        status = endpoint.stop()
        log = endpoint.log.read_text()[-3000:]
        assert status == 0, f"snapcdc local serve exited {status}: {log}"
