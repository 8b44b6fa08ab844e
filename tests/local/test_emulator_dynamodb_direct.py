"""A plain PutItem answered by moto's backend directly gives what moto's full path gives.

:mod:`snapcdc_local.emulator.dynamodb_direct` stands in for moto's request layer and
``DynamoHandler.put_item``. Two clients make the same PutItems: one answered directly, one with
the fast path removed (signed, sent to moto's stubber, its handler, its serializer). Random
items and conditions include what moto's handler refuses before the write (a missing table,
empty key values, empty sets, a null GSI key, unused expression names and values, a bad value
key), what its backend refuses (a failed condition, an item over 400 KB, a key over 2,048 bytes)
and what the direct path leaves to the dispatch (ReturnValues, binary values): every outcome and
the final items must be equal, and every plain request must have been answered directly.
"""

from __future__ import annotations

import threading
from contextlib import ExitStack
from unittest import mock

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from test_emulator_fastpath import FAST, SLOW, Sends, on_each_path

from snapcdc_local.emulator import dynamodb, dynamodb_direct, fast_paths, fastpath

CONDITIONS = [
    None,
    "attribute_not_exists(pk)",
    "attribute_exists(pk)",
    "attribute_not_exists(pk) OR attribute_not_exists(version) OR version <= :v",
    "attribute_not_exists(pk) OR attribute_not_exists(version) OR version < :v OR "
    "(version = :v AND (attribute_not_exists(applied_by) OR applied_by <> :by))",
    "#v <= :v",
]


# These two install the emulation's patches themselves: they run before the module's pair.


def test_it_steps_aside_when_motos_handler_is_not_the_code_it_was_proven_on():
    """A changed ``DynamoHandler.put_item`` (any change: a new check would hide in it) turns the
    direct path off with a reason, and the dispatch answers as moto does."""
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.put_item

    def put_item(self):  # a release whose handler does one thing more
        return original(self)

    with (
        mock.patch.object(DynamoHandler, "put_item", put_item),
        mock.patch.dict(fast_paths.stepped_aside, clear=True),
        mock_aws(),
        dynamodb.installed(),
        fastpath.installed(boto3._get_default_session()) as fast_path,
    ):
        assert fast_path.direct is None
        assert "DynamoHandler.put_item is not the code" in fast_paths.stepped_aside["dynamodb-put"]
        client = boto3.client("dynamodb", region_name=FAST)
        client.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        client.put_item(TableName="t", Item={"pk": {"S": "a"}})
        assert client.get_item(TableName="t", Key={"pk": {"S": "a"}})["Item"] == {"pk": {"S": "a"}}


def test_it_can_be_turned_off(monkeypatch):
    monkeypatch.setenv(fast_paths.ENV, "-dynamodb-put")
    with (
        mock.patch.dict(fast_paths.stepped_aside, clear=True),
        mock_aws(),
        fastpath.installed(boto3._get_default_session()) as fast_path,
    ):
        assert fast_path.direct is None
        answered = fast_path.calls
        boto3.client("dynamodb", region_name=FAST).list_tables()
        assert fast_path.calls == answered + 1  # the rest of the fast path is still on


@pytest.fixture(scope="module")
def pair():
    """``(fast_path, {fast: client})`` under one moto with the emulation's patches (as
    ``snapcdc local run`` installs them), each region with the tables ``t`` (a GSI on ``g``)."""
    with mock_aws(), dynamodb.installed(), ExitStack() as stack:
        fast_path = stack.enter_context(fastpath.installed(boto3._get_default_session()))
        assert fast_path.direct is not None, fast_paths.stepped_aside
        clients = {
            True: boto3.client("dynamodb", region_name=FAST),
            False: fastpath.on_slow_path(boto3.client("dynamodb", region_name=SLOW)),
        }
        clients["sends"] = {fast: Sends(clients[fast]) for fast in (True, False)}
        yield fast_path, clients


def make_table(clients) -> None:
    for fast in (True, False):
        ddb = clients[fast]
        if "t" in ddb.list_tables()["TableNames"]:
            ddb.delete_table(TableName="t")
        ddb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "g", "AttributeType": "S"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by-g",
                    "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )


values = st.one_of(
    st.builds(lambda s: {"S": s}, st.text(max_size=6)),
    st.builds(lambda n: {"N": str(n)}, st.integers(-5, 5)),
    st.just({"NULL": True}),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.just({"SS": []}),  # refused by moto's handler
    st.builds(lambda s: {"SS": sorted(s)}, st.sets(st.sampled_from("xyz"), min_size=1)),
    st.builds(lambda s: {"L": [{"S": s}]}, st.text(max_size=3)),
    st.builds(lambda s: {"M": {"k": {"S": s}}}, st.text(max_size=3)),
    st.just({"S": "x" * 410_000}),  # over DynamoDB's 400 KB item
    st.just({"B": b"\x00\x01"}),  # binary: left to the dispatch
)


@st.composite
def put_items(draw):
    key = draw(st.sampled_from(["a", "b", "", "k" * 2049]))  # empty and over-long keys refused
    item = {"pk": {"S": key}, "version": {"N": str(draw(st.integers(0, 3)))}}
    item["applied_by"] = {"S": draw(st.sampled_from(["s#1", "s#2"]))}
    for name in draw(st.lists(st.sampled_from(["note", "row", "g", "g2"]), max_size=3)):
        item[name] = draw(values)
    if draw(st.integers(0, 9)) == 0:
        item["g"] = {"NULL": True}  # a null GSI key: refused
    params = {"TableName": draw(st.sampled_from(["t", "t", "t", "missing"])), "Item": item}
    condition = draw(st.sampled_from(CONDITIONS))
    given_values = {
        ":v": {"N": str(draw(st.integers(0, 3)))},
        ":by": {"S": draw(st.sampled_from(["s#1", "s#2"]))},
    }
    if condition:
        params["ConditionExpression"] = condition
        used = {k: v for k, v in given_values.items() if k in condition}
        if draw(st.integers(0, 9)) == 0:
            used[":unused"] = {"S": "x"}  # refused: a value no expression uses
        if draw(st.integers(0, 14)) == 0:
            used["v"] = {"S": "x"}  # refused: not a :name
        if used:
            params["ExpressionAttributeValues"] = used
        names = {"#v": "version"} if "#v" in condition else {}
        if draw(st.integers(0, 9)) == 0:
            names["#unused"] = "note"  # refused: a name no expression uses
        if names:
            params["ExpressionAttributeNames"] = names
    extra = draw(st.sampled_from([{}, {}, {}, {"ReturnValues": "NONE"}, {"ReturnValues": "ALL_OLD"},
                                  {"ReturnConsumedCapacity": "TOTAL"}]))  # fmt: skip
    params.update(extra)
    return params


def plain(params) -> bool:
    """Whether the direct path is meant to answer ``params`` (see its module)."""
    asks = any(params.get(name, "NONE") != "NONE" for name in dynamodb_direct.NONE_MEMBERS)
    binary = any("B" in value for value in params["Item"].values())
    return not asks and not binary


def scanned(client) -> list:
    items = client.scan(TableName="t")["Items"]
    return sorted(items, key=lambda item: item["pk"]["S"])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(calls=st.lists(put_items(), min_size=1, max_size=12))
def test_plain_put_items_answer_as_motos_full_path(pair, calls):
    fast_path, clients = pair
    make_table(clients)
    direct = fast_path.direct.calls
    for params in calls:
        fast, slow = on_each_path(
            lambda p=params: clients[True].put_item(**p),
            lambda p=params: clients[False].put_item(**p),
            clients["sends"][True],
            clients["sends"][False],
            (FAST, SLOW),
        )
        assert fast == slow, params
    assert fast_path.direct.calls - direct == sum(plain(p) for p in calls)
    assert scanned(clients[True]) == scanned(clients[False])


def test_a_plain_put_item_leaves_out_motos_request_layer(pair):
    """The direct path is taken: moto's response class never runs for a plain PutItem."""
    from moto.dynamodb.responses import DynamoHandler

    fast_path, clients = pair
    make_table(clients)
    with mock.patch.object(DynamoHandler, "put_item", side_effect=AssertionError("dispatched")):
        clients[True].put_item(TableName="t", Item={"pk": {"S": "a"}, "version": {"N": "1"}})
        with pytest.raises(AssertionError, match="dispatched"):  # ReturnValues: not plain
            clients[True].put_item(TableName="t", Item={"pk": {"S": "a"}}, ReturnValues="ALL_OLD")
    assert clients[True].get_item(TableName="t", Key={"pk": {"S": "a"}})["Item"]["version"] == {
        "N": "1"
    }


def test_conditional_puts_from_many_threads_are_atomic(pair):
    """Threads race version-conditioned puts on one row: the newest version is what stays, and
    exactly one put per version succeeds where each carries its own applied_by."""
    fast_path, clients = pair
    make_table(clients)
    client = clients[True]
    condition = "attribute_not_exists(pk) OR version < :v"
    outcomes: list[str] = []

    def put(version: int) -> None:
        try:
            client.put_item(
                TableName="t",
                Item={"pk": {"S": "row"}, "version": {"N": str(version)}},
                ConditionExpression=condition,
                ExpressionAttributeValues={":v": {"N": str(version)}},
            )
            outcomes.append("applied")
        except client.exceptions.ConditionalCheckFailedException:
            outcomes.append("stale")

    direct = fast_path.direct.calls
    threads = [threading.Thread(target=put, args=(v % 20,)) for v in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fast_path.direct.calls - direct == 200
    stored = client.get_item(TableName="t", Key={"pk": {"S": "row"}}, ConsistentRead=True)
    assert stored["Item"]["version"] == {"N": "19"}
    assert len(outcomes) == 200 and outcomes.count("applied") <= 20
