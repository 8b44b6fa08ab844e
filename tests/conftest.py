"""Collection rules for every test folder.

``--doctest-modules`` (pyproject) would import each ``conftest.py`` a second time as a module
named ``conftest`` to look for doctests; with two test folders given on the command line
(``pytest tests/local tests/stack``) the second import then clashes with the first ("import
file mismatch"). Conftest files hold fixtures, not doctests, so they are left out of doctest
collection.

``snapcdc diff`` keeps compiled statements in ``$SNAPCDC_CACHE_DIR`` (else the user's cache
folder): a test run gets a folder of its own, so it neither writes into the home directory nor
depends on what an earlier run left there.
"""

from __future__ import annotations

import os
import shutil
import tempfile

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
