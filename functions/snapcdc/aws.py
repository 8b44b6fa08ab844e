"""boto3 clients shared by the handlers of one process.

Clients come from boto3's normal configuration (region, credentials, endpoints), with the
standard retry mode so throttling is retried with backoff. They are created once per process
(creating one costs tens of milliseconds) under a lock, because the default session is not
thread-safe and the local emulation runs handlers on several threads.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

import boto3
from botocore.config import Config

_LOCK = threading.Lock()
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})


@cache
def _client(service: str) -> Any:
    with _LOCK:
        return boto3.client(service, config=_CONFIG)


def client(service: str) -> Any:
    """A cached boto3 client, e.g. ``client("dynamodb")``."""
    return _client(service)


def reset_clients() -> None:
    """Forget cached clients (tests do this after changing boto3's default session)."""
    _client.cache_clear()
