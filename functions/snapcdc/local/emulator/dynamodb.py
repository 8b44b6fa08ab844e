"""moto's DynamoDB, made to behave and perform as this pipeline needs DynamoDB to.

**Conditional writes are atomic.** DynamoDB evaluates a write's condition and applies the write
as one step; moto (5.2.5) reads the current item, evaluates the condition, then stores, with
nothing stopping another thread in between. The consumer applies a batch's ops from several
threads and relies on ``version <= :v`` to let the newer of two ops on one row win (and the
table lock is a conditional put too): without atomic writes an older INSERT could land after a
newer DELETE that had checked the same old item. Every item write therefore runs under one lock.

**Item reads are fast.** moto builds every response with a generic, shape-driven serializer that
walks each attribute of each item; a ``Scan`` of 100,000 target rows spends minutes there (moto
5.2.5). DynamoDB answers in JSON and moto's results for item reads are already DynamoDB JSON, so
for ``Scan``, ``Query``, ``GetItem`` and ``BatchGetItem`` the result is written with
``json.dumps`` instead. Anything ``json`` cannot write as is (binary values) goes the generic
way, so the bytes on the wire do not change, only the time it takes.

>>> drop_none({"Items": [], "LastEvaluatedKey": None, "Count": 0})
{'Items': [], 'Count': 0}
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from snapcdc.local.emulator.locking import serialized

FAST_OPERATIONS = frozenset({"Scan", "Query", "GetItem", "BatchGetItem"})
# The backend methods that write items (each checks its conditions before it writes).
WRITE_METHODS = (
    "put_item",
    "update_item",
    "delete_item",
    "transact_write_items",
    "batch_write_item",
)
CONTENT_TYPE = "application/x-amz-json-1.0"


def drop_none(result: dict[str, Any]) -> dict[str, Any]:
    """Top-level members without a value are left out, as the generic serializer does."""
    return {k: v for k, v in result.items() if v is not None}


@contextmanager
def installed() -> Iterator[None]:
    """While the block runs: item writes atomic, item reads serialized with ``json``."""
    from moto.dynamodb.models import DynamoDBBackend

    writes = {name: getattr(DynamoDBBackend, name) for name in WRITE_METHODS}
    with serialized(DynamoDBBackend, writes), _fast_reads():
        yield


@contextmanager
def _fast_reads() -> Iterator[None]:
    from moto.core.responses import ActionResult
    from moto.dynamodb.responses import DynamoHandler, DynamoResult

    original = DynamoHandler.serialized

    def serialized(self: Any, action_result: Any) -> Any:
        result = getattr(action_result, "result", None)
        if (
            type(action_result) in (ActionResult, DynamoResult)
            and isinstance(result, dict)
            and self._get_action() in FAST_OPERATIONS
        ):
            try:
                body = json.dumps(drop_none(result), separators=(",", ":"))
            except (TypeError, ValueError):
                return original(self, action_result)
            headers = {"Content-Type": CONTENT_TYPE}
            headers.update(self.response_headers)
            return 200, headers, body
        return original(self, action_result)

    with mock.patch.object(DynamoHandler, "serialized", serialized):
        yield
