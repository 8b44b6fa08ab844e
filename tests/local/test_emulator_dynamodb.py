"""moto's DynamoDB as the emulation installs it: conditional writes atomic, as DynamoDB's are."""

from __future__ import annotations

import threading
import time

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models import table as moto_table

from snapcdc.applying import apply_op, read_items
from snapcdc.aws import reset_clients
from snapcdc.local.emulator import dynamodb

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


def test_an_older_insert_racing_a_newer_delete_does_not_resurrect_the_row(target, monkeypatch):
    """The consumer applies a batch's ops from several threads. moto is made to pause between
    evaluating a condition and writing, and the older INSERT starts while the newer DELETE is
    in that pause: the INSERT must be judged against the DELETE's tombstone, not the empty
    table both saw before."""
    evaluate = moto_table.get_filter_expression

    def slow_condition(*args, **kwargs):
        condition = evaluate(*args, **kwargs)

        class Paused:
            def expr(self, item):
                verdict = condition.expr(item)
                time.sleep(0.3)
                return verdict

        return Paused()

    monkeypatch.setattr(moto_table, "get_filter_expression", slow_condition)
    outcomes: dict[str, str] = {}

    def apply(kind: str, version: str) -> None:
        outcomes[kind] = apply_op(TABLE, op(kind, version))

    delete = threading.Thread(target=apply, args=("DELETE", "V2"))
    insert = threading.Thread(target=apply, args=("INSERT", "V1"))
    delete.start()
    time.sleep(0.1)
    insert.start()
    delete.join()
    insert.join()

    assert outcomes == {"DELETE": "applied", "INSERT": "stale"}
    [item] = read_items(TABLE, "acme/people")
    assert (item["version"], item["deleted"]) == ("V2", True)
