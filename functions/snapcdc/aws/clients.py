"""boto3 clients shared by the handlers of one process.

Clients come from boto3's normal configuration (region, credentials, endpoints), with the
standard retry mode so throttling is retried with backoff, and a connection pool as large as
the number of threads that share a client: botocore keeps 10 connections by default
(``max_pool_connections``, https://botocore.amazonaws.com/v1/documentation/api/latest/reference/config.html)
and the consumer writes from ``consumer_workers`` threads at once. They are created once per process
(creating one costs tens of milliseconds) under a lock, because the default session is not
thread-safe and the local emulation runs handlers on several threads.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from snapcdc.model.settings import Settings, SettingsError

_LOCK = threading.Lock()
BOTOCORE_DEFAULT_POOL = 10


def config() -> Config:
    """The clients' configuration (the pool sized from the settings in the environment)."""
    try:
        workers = Settings.from_env().consumer_workers
    except SettingsError:  # reported by the handler that reads the settings
        workers = Settings().consumer_workers
    return Config(
        retries={"mode": "standard", "max_attempts": 5},
        max_pool_connections=max(BOTOCORE_DEFAULT_POOL, workers),
    )


@cache
def _client(service: str) -> Any:
    with _LOCK:
        return boto3.client(service, config=config())


def client(service: str) -> Any:
    """A cached boto3 client, e.g. ``client("dynamodb")``."""
    return _client(service)


def reset_clients() -> None:
    """Forget cached clients (tests do this after changing boto3's default session)."""
    _client.cache_clear()
