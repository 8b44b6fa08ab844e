"""Collection rules for every test folder.

``--doctest-modules`` (pyproject) would import each ``conftest.py`` a second time as a module
named ``conftest`` to look for doctests; with two test folders given on the command line
(``pytest tests/local tests/stack``) the second import then clashes with the first ("import
file mismatch"). Conftest files hold fixtures, not doctests, so they are left out of doctest
collection.
"""

from __future__ import annotations

import pytest
from _pytest.doctest import DoctestModule


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path, parent):
    collectors = yield
    if file_path.name != "conftest.py":
        return collectors
    return [c for c in collectors if not isinstance(c, DoctestModule)]
