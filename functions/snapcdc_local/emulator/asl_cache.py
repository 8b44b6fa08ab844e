"""Each state machine definition parsed once, not once per execution.

moto's Step Functions interpreter (LocalStack's, with an ANTLR grammar in pure Python) parses a
state machine's definition when it is created (to validate it) and again at the start of every
execution, ~0.09 s of CPU for ``state_machine.asl.json`` each time: a test suite that runs a few
hundred executions spends tens of seconds there. While :func:`installed` is active,
``AmazonStateLanguageParser.parse`` answers a definition it parsed before from a cache, with a
deep copy of the evaluation components (~0.007 s), so that every execution still gets a program
of its own, as a fresh parse would give it (components are not shared between executions). A
definition that fails to parse is never cached: it fails again, with the same error. The parse
tree (second item) is shared: its callers only read it.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from snapcdc_local.emulator import fast_paths

CACHE_SIZE = 16
# What the cache replaces, as it is (.fast_paths).
PARSE_NEEDS = (
    "moto.stepfunctions.parser.asl.parse.asl_parser:AmazonStateLanguageParser.parse(definition)"
)


@contextmanager
def installed(size: int = CACHE_SIZE) -> Iterator[Any]:
    """While the block runs, parses come from the cache; yields the cached parse (its
    ``cache_info()`` tells the hits; ``functools.lru_cache`` keeps nothing for a call that
    raises, and is thread-safe), or ``None`` where the cache steps aside."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    if not fast_paths.usable("asl-cache", PARSE_NEEDS):
        yield None
        return
    parsed = functools.lru_cache(maxsize=size)(AmazonStateLanguageParser.parse)

    def cached_parse(definition: str) -> tuple[Any, Any]:
        program, tree = parsed(definition)
        return copy.deepcopy(program), tree

    with mock.patch.object(AmazonStateLanguageParser, "parse", staticmethod(cached_parse)):
        yield parsed
