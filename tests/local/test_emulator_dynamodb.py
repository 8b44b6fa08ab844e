"""moto's DynamoDB as the emulation installs it: conditional writes atomic, as DynamoDB's are."""

from __future__ import annotations

import threading
from contextlib import ExitStack

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models import table as moto_table

from snapcdc.aws.clients import reset_clients
from snapcdc.steps.consumer import apply_op, read_items
from snapcdc_local.emulator import dynamodb

TABLE = "target"


@pytest.fixture
def target(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws(), dynamodb.installed():
        reset_clients()
        boto3.client("dynamodb").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield
    reset_clients()


def op(kind: str, version: str) -> dict:
    return {
        "op": kind,
        "table_id": "acme/people",
        "version": version,
        "key": {"id": "2"},
        "row": {"id": "2", "name": "Ann"},
    }


class WatchedLock:
    """A re-entrant lock that says when the thread named ``insert`` has to wait for it."""

    def __init__(self, waiting: threading.Event) -> None:
        self._lock = _RLOCK()
        self._waiting = waiting

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._lock.acquire(blocking=False):
            return True
        if threading.current_thread().name == "insert":
            self._waiting.set()
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()

    __enter__ = acquire

    def __exit__(self, *exc: object) -> None:
        self.release()


_RLOCK = threading.RLock


def test_an_older_insert_racing_a_newer_delete_does_not_resurrect_the_row(monkeypatch):
    """The consumer applies a batch's ops from several threads. The newer DELETE is held
    between evaluating its condition and writing until the older INSERT has gone as far as it
    can: to the emulation's write lock (where it must wait), or, were writes not atomic, to
    its own condition, which would then see the empty table the DELETE saw. The INSERT must
    be judged against the DELETE's tombstone. (Ordered by events: no sleep decides it.)"""
    insert_went_ahead = threading.Event()  # waiting on the lock, or judging its condition
    delete_judged = threading.Event()
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with ExitStack() as stack:
        stack.enter_context(mock_aws())
        # the write lock dynamodb.installed() makes is watched
        monkeypatch.setattr(threading, "RLock", lambda: WatchedLock(insert_went_ahead))
        stack.enter_context(dynamodb.installed())
        monkeypatch.setattr(threading, "RLock", _RLOCK)
        reset_clients()
        boto3.client("dynamodb").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        evaluate = moto_table.get_filter_expression

        def held_condition(*args, **kwargs):
            condition = evaluate(*args, **kwargs)

            class Held:
                def expr(self, item):
                    verdict = condition.expr(item)
                    name = threading.current_thread().name
                    if name == "insert":
                        insert_went_ahead.set()
                    elif name == "delete":
                        delete_judged.set()
                        assert insert_went_ahead.wait(60), "the INSERT never started"
                    return verdict

            return Held()

        monkeypatch.setattr(moto_table, "get_filter_expression", held_condition)
        outcomes: dict[str, str] = {}

        def apply(kind: str, version: str) -> None:
            outcomes[kind] = apply_op(TABLE, op(kind, version))

        delete = threading.Thread(target=apply, args=("DELETE", "V2"), name="delete")
        insert = threading.Thread(target=apply, args=("INSERT", "V1"), name="insert")
        delete.start()
        assert delete_judged.wait(60)
        insert.start()
        delete.join(60)
        insert.join(60)

        assert outcomes == {"DELETE": "applied", "INSERT": "stale"}
        [item] = read_items(TABLE, "acme/people")
        assert (item["version"], item["deleted"]) == ("V2", True)
    reset_clients()


# ------------------------------------------------------------------ item size limits
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Constraints.html (400 KB
# items, KB = 1024 bytes; 2,048-byte partition keys) and CapacityUnitCalculations.html (what
# an item's size counts: names and values, 3 bytes per map plus 1 per element).

ITEM_LIMIT = 400 * 1024


def put(item):
    boto3.client("dynamodb").put_item(TableName=TABLE, Item=item)


def sized_item(total: int) -> dict:
    """An item whose size, as DynamoDB counts it, is ``total`` bytes."""
    # "pk" (2) + "k1" (2) and "v" (1) + the value
    return {"pk": {"S": "k1"}, "v": {"S": "x" * (total - 5)}}


def test_an_item_of_400_kb_is_stored_and_one_byte_more_is_refused(target):
    put(sized_item(ITEM_LIMIT))  # moto alone refuses from 405,000 bytes on
    with pytest.raises(ClientError) as refused:
        put(sized_item(ITEM_LIMIT + 1))
    assert refused.value.response["Error"] == {
        "Code": "ValidationException",
        "Message": "Item size has exceeded the maximum allowed size",
    }


def test_map_overheads_count_towards_the_item_size(target):
    """10,000 map elements add 10,003 bytes DynamoDB counts and moto alone does not."""
    row = {f"c{i:04d}": {"S": ""} for i in range(10_000)}  # names: 50,000 bytes
    item = {"pk": {"S": "k1"}, "row": {"M": row}, "v": {"S": "x" * 350_000}}
    with pytest.raises(ClientError, match="Item size has exceeded the maximum allowed size"):
        put(item)


def test_an_update_past_400_kb_is_refused(target):
    put(sized_item(ITEM_LIMIT - 100))
    with pytest.raises(ClientError) as refused:
        boto3.client("dynamodb").update_item(
            TableName=TABLE,
            Key={"pk": {"S": "k1"}},
            UpdateExpression="SET w = :w",
            ExpressionAttributeValues={":w": {"S": "y" * 200}},
        )
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "exceeded the maximum allowed size" in refused.value.response["Error"]["Message"]


def test_a_partition_key_over_2048_bytes_is_refused(target):
    put({"pk": {"S": "é" * 1024}})  # 2,048 bytes
    with pytest.raises(ClientError) as refused:
        put({"pk": {"S": "é" * 1024 + "x"}})
    assert refused.value.response["Error"] == {
        "Code": "ValidationException",
        "Message": "One or more parameter values were invalid: Size of hashkey has exceeded "
        "the maximum size limit of2048 bytes",
    }
