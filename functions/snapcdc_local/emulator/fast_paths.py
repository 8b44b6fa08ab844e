"""The emulation's fast paths, and how each steps aside when moto is not what it expects.

A fast path answers what moto answers, faster, by reaching into moto's (or botocore's)
internals: the dispatch straight to moto's response method (:mod:`.fastpath`), the handler set
up without werkzeug (:mod:`.prepared_requests`), the JSON parse of a plain answer, DynamoDB
answers written with ``json`` and condition expressions parsed once, Scan pages from a sorted
copy (:mod:`.dynamodb`), state machine definitions parsed once (:mod:`.asl_cache`). Internals
change between releases without notice, so a fast path is used only when

- it is wanted: ``SNAPCDC_FAST_PATHS=off`` turns all of them off,
  ``SNAPCDC_FAST_PATHS=-scan-pages,-prepared`` the named ones (the tests run the pipeline with
  each one off);
- what it relies on is there (:func:`usable` names the attributes), and
- where a missing attribute would not show the change, its probe agrees with moto's own path
  (:func:`probe`: one harmless call both ways, at start-up).

Otherwise it steps aside, with one warning naming it and the reason, and moto's own path
answers: an upgrade of moto may make the emulation slower, never wrong.

>>> wanted("prepared", "off"), wanted("prepared", "-prepared,-asl-cache"), wanted("prepared", "")
(False, False, True)
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

ENV = "SNAPCDC_FAST_PATHS"
NAMES = (
    "dispatch",  # .fastpath: a call handed to moto's response method, no HTTP in between
    "prepared",  # .prepared_requests: that handler set up without werkzeug
    "json-parse",  # .prepared_requests.plain_json_parser: a plain answer read with json.loads
    "dynamodb-json",  # .dynamodb: item answers written with json.dumps
    "condition-cache",  # .dynamodb: a condition expression parsed once
    "scan-pages",  # .dynamodb: Scan pages from a sorted copy, found by bisection
    "asl-cache",  # .asl_cache: a state machine definition parsed once
    "dynamodb-put",  # .dynamodb_direct: a plain PutItem answered by moto's backend directly
    "dynamodb-to-dict",  # .dynamodb: moto's items made plain dicts by type, not by probing
    "history-cache",  # .history_cache: a finished execution's history written once
)

_lock = threading.Lock()
stepped_aside: dict[str, str] = {}  # name -> why, for every fast path that stepped aside


def wanted(name: str, setting: str | None = None) -> bool:
    """Whether ``SNAPCDC_FAST_PATHS`` (or ``setting``) leaves ``name`` on."""
    if name not in NAMES:
        raise ValueError(f"unknown fast path {name!r}")
    value = os.environ.get(ENV, "") if setting is None else setting
    value = value.strip().lower()
    if value in ("off", "none", "0", "false"):
        return False
    return f"-{name}" not in {part.strip() for part in value.split(",")}


def unknown(setting: str | None = None) -> list[str]:
    """What ``SNAPCDC_FAST_PATHS`` (or ``setting``) says that turns no fast path off: a
    ``-name`` that is no fast path's, or a part without its ``-``.

    >>> unknown("-scan-pages,-scna-pages,prepared"), unknown("off"), unknown("")
    (['scna-pages', 'prepared'], [], [])
    """
    value = (os.environ.get(ENV, "") if setting is None else setting).strip().lower()
    if value in ("off", "none", "0", "false"):
        return []
    parts = (part.strip() for part in value.split(","))
    return [
        part[1:] if part.startswith("-") else part
        for part in parts
        if part and not (part.startswith("-") and part[1:] in NAMES)
    ]


def resolve(dotted: str) -> Any:
    """What ``module:attr.attr`` names (``ImportError`` or ``AttributeError`` if nothing).

    >>> resolve("json:JSONDecoder.decode").__qualname__
    'JSONDecoder.decode'
    """
    module_name, _, path = dotted.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in path.split(".") if path else ():
        obj = getattr(obj, part)
    return obj


def missing(dotted: str) -> str | None:
    """``None`` if ``module:attr.attr`` resolves (and, written ``module:Class.method(a, b)``,
    takes exactly those parameters), else what does not.

    >>> missing("json:dumps"), missing("json:nothing"), missing("json:JSONDecoder.decode(self, s)")
    (None, 'json:nothing', 'json:JSONDecoder.decode(self, s) takes (self, s, _w)')
    """
    module_name, _, rest = dotted.partition(":")
    path, _, params = rest.partition("(")
    try:
        obj = resolve(f"{module_name}:{path}")
    except ImportError:
        return module_name
    except AttributeError:
        return f"{module_name}:{path}"
    if params:
        expected = [p.strip() for p in params.rstrip(")").split(",") if p.strip()]
        try:
            found = list(inspect.signature(obj).parameters)
        except (TypeError, ValueError):
            return f"{dotted} has no signature"
        if found != expected:
            return f"{dotted} takes ({', '.join(found)})"
    return None


def step_aside(name: str, reason: str) -> None:
    """Turn ``name`` off for this process, saying so once."""
    with _lock:
        if name in stepped_aside:
            return
        stepped_aside[name] = reason
    log.warning("fast path %s steps aside (moto's own path answers instead): %s", name, reason)


def usable(name: str, *requires: str) -> bool:
    """Whether fast path ``name`` is wanted, has not stepped aside, and every ``module:attr``
    it relies on is there (else it steps aside)."""
    if not wanted(name) or name in stepped_aside:
        return False
    for dotted in requires:
        gone = missing(dotted)
        if gone is not None:
            step_aside(name, f"{gone} is not there in the installed release")
            return False
    return True


def probe(name: str, check: Callable[[], str | None]) -> bool:
    """Run ``check`` (``None`` if the fast path agrees with moto's own path, else why not); an
    exception is a disagreement too. Steps ``name`` aside unless it agrees."""
    if not usable(name):
        return False
    try:
        reason = check()
    except Exception as exc:  # a changed internal shows as any error: step aside, say which
        reason = f"{type(exc).__name__}: {exc}"
    if reason is not None:
        step_aside(name, reason)
        return False
    return True


def source_digest(dotted: str) -> str:
    """The first 16 hex digits of the sha256 of ``module:attr.attr``'s source (unwrapped)."""
    source = inspect.getsource(inspect.unwrap(resolve(dotted)))
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def changed_source(proven: dict[str, set[str]]) -> str | None:
    """``None`` if each ``module:attr`` of ``proven`` has one of its digests
    (:func:`source_digest`), else which does not. A fast path that stands in for what a moto
    function does (not only for what it is called) is proven on that code, and on no other:
    any change to it, a new check included, steps the fast path aside."""
    for dotted, digests in proven.items():
        try:
            found = source_digest(dotted)
        except (AttributeError, ImportError, OSError, TypeError) as exc:
            return f"{dotted}: {type(exc).__name__}"
        if found not in digests:
            return f"{dotted} is not the code this fast path was proven on (sha256 {found}...)"
    return None


def proven(name: str, sources: dict[str, set[str]], *requires: str) -> bool:
    """Whether fast path ``name`` is usable (``requires`` as for :func:`usable`) and the moto
    code it stands in for is the code it was proven on (:func:`changed_source`); else it steps
    aside."""
    if not usable(name, *requires):
        return False
    changed = changed_source(sources)
    if changed is not None:
        step_aside(name, changed)
        return False
    return True
