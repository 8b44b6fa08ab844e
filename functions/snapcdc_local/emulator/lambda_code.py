"""A function's deployed code, imported beside the ``snapcdc`` package this process runs.

When a stack is deployed from outside (``aws cloudformation deploy`` against ``snapcdc local
serve``), a function runs the deployment package that was uploaded, not whatever the checkout
holds: its ``snapcdc`` package is extracted and imported under a name of its own
(``snapcdc_deployed_<n>``), so the emulation's own ``snapcdc`` modules and every deployed
version live side by side in one process. Inside the deployed modules, ``import snapcdc...``
(at module level or in a function) resolves to the deployed copy: each module gets builtins whose
``__import__`` renames the package. Third-party libraries come from this environment (the
artifact's are arm64 wheels for the Lambda runtime, built from the same lock).

A handler outside the ``snapcdc`` package cannot be told apart from this process's modules, so
it is refused rather than run from the checkout.
"""

from __future__ import annotations

import builtins
import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import io
import itertools
import sys
import threading
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

PACKAGE = "snapcdc"
_SERIAL = itertools.count(1)


class DeployedCodeError(ValueError):
    """The deployment package cannot be run here; the message says why."""


class _Builtins(dict):
    """Builtins whose ``__import__`` maps ``snapcdc`` to the deployed copy's name."""


def _renaming_import(alias: str) -> Callable[..., ModuleType]:
    original = builtins.__import__

    def deployed_import(
        name: str,
        globals: dict[str, Any] | None = None,  # noqa: A002 - __import__'s own signature
        locals: dict[str, Any] | None = None,  # noqa: A002
        fromlist: Sequence[str] = (),
        level: int = 0,
    ) -> ModuleType:
        if level == 0 and (name == PACKAGE or name.startswith(PACKAGE + ".")):
            name = alias + name[len(PACKAGE) :]
        return original(name, globals, locals, fromlist, level)

    return deployed_import


class _DeployedLoader(importlib.machinery.SourceFileLoader):
    def __init__(self, fullname: str, path: str, namespace: dict[str, Any]) -> None:
        super().__init__(fullname, path)
        self.namespace = namespace

    def exec_module(self, module: ModuleType) -> None:
        module.__dict__["__builtins__"] = self.namespace
        super().exec_module(module)


class _DeployedFinder(importlib.abc.MetaPathFinder):
    """Finds ``<alias>`` and its submodules in one extracted package directory."""

    def __init__(self, alias: str, root: Path) -> None:
        self.alias = alias
        self.root = root
        self.namespace = _Builtins(builtins.__dict__)
        self.namespace["__import__"] = _renaming_import(alias)

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.alias and not fullname.startswith(self.alias + "."):
            return None
        relative = fullname.split(".")[1:]
        directory = self.root.joinpath(*relative)
        if (directory / "__init__.py").is_file():
            init = str(directory / "__init__.py")
            return importlib.util.spec_from_file_location(
                fullname,
                init,
                loader=_DeployedLoader(fullname, init, self.namespace),
                submodule_search_locations=[str(directory)],
            )
        source = directory.with_suffix(".py")
        if source.is_file():
            return importlib.util.spec_from_file_location(
                fullname, str(source), loader=_DeployedLoader(fullname, str(source), self.namespace)
            )
        return None


class DeployedCode:
    """Handlers resolved from the functions' deployment packages, one import per package."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self._aliases: dict[str, str] = {}  # code digest -> the package's name here
        self._finders: list[_DeployedFinder] = []
        self._lock = threading.Lock()

    def handler(self, code: bytes, spec: str) -> Callable[[Any, Any], Any]:
        """The callable ``spec`` (``snapcdc.handlers.x.handler``) names in deployment ``code``."""
        module_name, _, attr = spec.rpartition(".")
        if not module_name.startswith(PACKAGE + "."):
            raise DeployedCodeError(
                f"handler {spec!r} is outside the {PACKAGE} package; the emulation runs only "
                f"{PACKAGE}.* handlers from a deployment package"
            )
        alias = self._alias(code)
        module = importlib.import_module(alias + module_name[len(PACKAGE) :])
        try:
            return getattr(module, attr)
        except AttributeError:
            raise DeployedCodeError(
                f"Lambda handler {spec!r}: module {module_name} has no {attr!r}"
            ) from None

    def _alias(self, code: bytes) -> str:
        digest = hashlib.sha256(code).hexdigest()
        with self._lock:
            if digest not in self._aliases:
                alias = f"{PACKAGE}_deployed_{next(_SERIAL)}"
                root = self.scratch / alias
                extract_package(code, root)
                finder = _DeployedFinder(alias, root)
                sys.meta_path.insert(0, finder)
                self._finders.append(finder)
                self._aliases[digest] = alias
            return self._aliases[digest]

    def close(self) -> None:
        """Forget the deployed modules (a new emulation imports its packages again)."""
        with self._lock:
            for finder in self._finders:
                if finder in sys.meta_path:
                    sys.meta_path.remove(finder)
                for name in [
                    n for n in sys.modules if n == finder.alias or n.startswith(finder.alias + ".")
                ]:
                    del sys.modules[name]
            self._finders.clear()
            self._aliases.clear()


def extract_package(code: bytes, root: Path) -> None:
    """Write the ``snapcdc/`` part of a deployment package (a zip) into ``root``."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(code))
    except zipfile.BadZipFile:
        raise DeployedCodeError("the deployment package is not a zip file") from None
    found = False
    with archive:
        for info in archive.infolist():
            path = PurePosixPath(info.filename)
            if info.is_dir() or not path.parts or path.parts[0] != PACKAGE:
                continue
            if ".." in path.parts or path.is_absolute():
                raise DeployedCodeError(f"the deployment package holds an unsafe path {path}")
            target = root.joinpath(*path.parts[1:])
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(info))
            found = True
    if not found or not (root / "__init__.py").is_file():
        raise DeployedCodeError(f"the deployment package has no {PACKAGE}/ package at its root")
