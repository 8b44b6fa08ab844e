"""Making moto's models thread-safe where the pipeline needs AWS's concurrency guarantees.

moto's models read and change their state without locks; the emulation runs Lambda handlers,
Step Functions executions and the Kinesis poller on many threads at once. :func:`serialized`
patches methods of a moto class so that they run one at a time, under one lock.

>>> class Counter:
...     value = 0
...     def add(self, n):
...         self.value += n
...         return self.value
>>> with serialized(Counter, {"add": Counter.add}):
...     Counter().add(2)
2
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock


@contextmanager
def serialized(
    owner: type, methods: Mapping[str, Callable[..., Any]], lock: Any = None
) -> Iterator[None]:
    """While the block runs, ``owner.<name>`` is ``methods[name]`` run under one shared lock
    (``lock``, or a new re-entrant one)."""
    lock = lock if lock is not None else threading.RLock()

    def under_lock(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)  # the method stays visible (inspect.unwrap, its source checked)
        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return method(*args, **kwargs)

        return call

    with ExitStack() as stack:
        for name, method in methods.items():
            stack.enter_context(mock.patch.object(owner, name, under_lock(method)))
        yield
