"""The emulation's fast paths give what moto's slow path gives: differential tests.

Two clients make the same calls: one answered by :mod:`snapcdc_local.emulator.fastpath` (moto's
method called from a ``before-call`` hook), one with the hook removed (signed, sent to moto's
stubber, dispatched through its URL patterns and werkzeug). DynamoDB and Kinesis run in two
regions of one moto (same names, separate state); Lambda: ``test_emulator_fastpath_lambda.py``.
Random inputs include failing conditions, invalid expressions and over-limit requests: every
response, every error (code and message) and the final state must be equal.

The condition-parse cache of :mod:`snapcdc_local.emulator.dynamodb` is checked the same way:
cached and uncached parses of random expressions judge random items alike.
"""

from __future__ import annotations

import binascii
import itertools
import json
from contextlib import ExitStack

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from snapcdc_local.emulator import dynamodb, fastpath, kinesis

FAST, SLOW = "us-east-1", "eu-west-1"


class Sends:
    """How many requests a client put on the wire: botocore's ``before-send``, where moto's
    stubber answers the slow path. A call the fast path answered is never sent (its
    ``before-call`` handler returned the response), so this tells which path a call took,
    whatever else runs meanwhile (the fast path's own ``calls`` counts every client's calls)."""

    def __init__(self, client) -> None:
        self.count = 0
        client.meta.events.register_first("before-send", self._sent)

    def _sent(self, **_) -> None:
        self.count += 1


@pytest.fixture(scope="module")
def moto_pair():
    """``(fast_path, client(service, fast: bool))`` under one moto with the emulation's patches;
    ``client.sends[(service, fast)]`` counts what each client sent (:class:`Sends`)."""
    with mock_aws(), dynamodb.installed(), kinesis.installed(), ExitStack() as stack:
        fast_path = stack.enter_context(fastpath.installed(boto3._get_default_session()))
        clients = {}

        def client(service: str, fast: bool):
            if (service, fast) not in clients:
                made = boto3.client(service, region_name=FAST if fast else SLOW)
                made = made if fast else fastpath.on_slow_path(made)
                client.sends[(service, fast)] = Sends(made)
                clients[(service, fast)] = made
            return clients[(service, fast)]

        client.sends = {}
        yield fast_path, client


def outcome(call, region: str):
    """The parsed response (without request ids and dates) or the modelled error (botocore's
    ClientError: code, message, status and its modelled fields), region-neutral. Anything else
    raised is no answer of the service's to compare: it fails the test, on either side."""
    try:
        response = call()
    except ClientError as exc:
        error = exc.response["Error"]
        result = {"error": error.get("Code"), "message": error.get("Message")}
        result["status"] = exc.response["ResponseMetadata"]["HTTPStatusCode"]
        extra = {k: v for k, v in exc.response.items() if k not in ("Error", "ResponseMetadata")}
        result["extra"] = extra
    else:
        result = {k: v for k, v in response.items() if k != "ResponseMetadata"}
        result["status"] = response["ResponseMetadata"]["HTTPStatusCode"]
    text = json.dumps(result, default=str)
    return json.loads(text.replace(region, "REGION") if region else text)


def on_each_path(fast_call, slow_call, fast_sends: Sends, slow_sends: Sends, region=("", "")):
    """Both outcomes, each call proven to have taken its path: the fast one sent nothing (the
    fast path answered it), the slow one was sent (moto's stubber answered it)."""
    sent = fast_sends.count
    fast = outcome(fast_call, region[0])
    assert fast_sends.count == sent, "the fast client's call went to moto's slow path"
    sent = slow_sends.count
    slow = outcome(slow_call, region[1])
    assert slow_sends.count > sent, "the reference client's call did not reach moto's stubber"
    return fast, slow


def both(client, service: str, operation: str, **params):
    return on_each_path(
        lambda: getattr(client(service, True), operation)(**params),
        lambda: getattr(client(service, False), operation)(**params),
        client.sends[(service, True)],
        client.sends[(service, False)],
        (FAST, SLOW),
    )


# -- DynamoDB --------------------------------------------------------------------------------

CONSUMER_CONDITION = (
    "attribute_not_exists(pk) OR version < :v OR (version = :v AND "
    "(attribute_not_exists(applied_by) OR applied_by <> :by))"
)
CONDITIONS = [
    None,
    "attribute_not_exists(pk)",
    "attribute_exists(pk)",
    "attribute_not_exists(pk) OR version <= :v",
    CONSUMER_CONDITION,
    "version BETWEEN :v AND :v",
    "begins_with(applied_by, :by)",
    "#n = :v",  # names an attribute through ExpressionAttributeNames
]
keys = st.sampled_from(["a", "b", "c"])
versions = st.integers(min_value=0, max_value=4)
sources = st.sampled_from(["s#1", "s#2"])


@st.composite
def dynamodb_calls(draw):
    kind = draw(st.sampled_from(["put", "put", "put", "delete", "get", "update", "query"]))
    key = {"pk": {"S": draw(keys)}}
    condition = draw(st.sampled_from(CONDITIONS))
    values = {":v": {"N": str(draw(versions))}, ":by": {"S": draw(sources)}}
    params: dict = {"TableName": "t"}
    if condition:
        params["ConditionExpression"] = condition
        used = {k: v for k, v in values.items() if k in condition}
        if used:
            params["ExpressionAttributeValues"] = used
        if "#n" in condition:
            params["ExpressionAttributeNames"] = {"#n": "version"}
    if kind == "put":
        item = {**key, "version": {"N": str(draw(versions))}, "applied_by": {"S": draw(sources)}}
        row = draw(st.sampled_from(["none", "text", "blob"]))
        if row != "none":  # blobs go moto's own parsing way (prepared_requests)
            text = draw(st.text(max_size=5) | st.sampled_from(['"B"', 'say "B": 1', "B"]))
            item["row"] = {"M": {"x": {"S": text}}}
            if row == "blob":
                item["row"]["M"]["b"] = {"B": b"\x00\xff"}
        params["Item"] = item
        if draw(st.booleans()):
            params["ReturnValues"] = "ALL_OLD"
        if draw(st.booleans()):
            params["ReturnConsumedCapacity"] = draw(st.sampled_from(["TOTAL", "INDEXES", "NONE"]))
        return "put_item", params
    if kind == "query":
        query = {"TableName": "t", "KeyConditionExpression": "pk = :k"}
        query["ExpressionAttributeValues"] = {":k": key["pk"]}
        if draw(st.booleans()):
            query["Limit"] = draw(st.integers(min_value=1, max_value=3))
        if draw(st.booleans()):
            query["ReturnConsumedCapacity"] = "TOTAL"
        return "query", query
    params["Key"] = key
    if kind == "delete":
        return "delete_item", params
    if kind == "update":
        params["UpdateExpression"] = "ADD hits :one"
        values = dict(params.get("ExpressionAttributeValues", {}), **{":one": {"N": "1"}})
        params["ExpressionAttributeValues"] = values
        params["ReturnValues"] = "ALL_NEW"
        return "update_item", params
    for name in ("ConditionExpression", "ExpressionAttributeValues", "ExpressionAttributeNames"):
        params.pop(name, None)
    return "get_item", params


def direct_calls(fast_path) -> int:
    """The PutItems answered by moto's backend directly (emulator/dynamodb_direct.py)."""
    return fast_path.direct.calls if fast_path.direct is not None else 0


def make_tables(client):
    for fast in (True, False):
        ddb = client("dynamodb", fast)
        if "t" in ddb.list_tables()["TableNames"]:
            ddb.delete_table(TableName="t")
        ddb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(calls=st.lists(dynamodb_calls(), min_size=1, max_size=15))
def test_dynamodb_item_calls_answer_as_moto_does(moto_pair, calls):
    fast_path, client = moto_pair
    make_tables(client)
    answered, prepared, direct = fast_path.calls, fast_path.prepared, direct_calls(fast_path)
    for operation, params in calls:
        fast, slow = both(client, "dynamodb", operation, **params)
        assert fast == slow, (operation, params)
    assert fast_path.calls >= answered + len(calls)  # the fast client did take the fast path
    without_blobs = [p for _, p in calls if '"B"' not in json.dumps(p, default=str)]
    if fast_path.use_prepared:  # it steps aside where moto changed (emulator/fast_paths.py)
        # and werkzeug was left out: a plain PutItem leaves out moto's handler altogether
        left_out = fast_path.prepared - prepared + direct_calls(fast_path) - direct
        assert left_out >= len(without_blobs)
    else:
        assert fast_path.prepared == prepared
    scans = [
        sorted(client("dynamodb", fast).scan(TableName="t")["Items"], key=lambda i: i["pk"]["S"])
        for fast in (True, False)
    ]
    assert scans[0] == scans[1]


def test_a_failed_condition_is_the_error_boto3_raises(moto_pair):
    _, client = moto_pair
    make_tables(client)
    item = {"pk": {"S": "a"}, "version": {"N": "2"}}
    client("dynamodb", True).put_item(TableName="t", Item=item)
    with pytest.raises(client("dynamodb", True).exceptions.ConditionalCheckFailedException):
        client("dynamodb", True).put_item(
            TableName="t", Item=item, ConditionExpression="attribute_not_exists(pk)"
        )


@pytest.mark.xfail(
    strict=True,
    raises=(ValueError, KeyError),
    reason="moto raises a Python error (ValueError, KeyError) for a bad condition, on both "
    "paths, where DynamoDB answers ValidationException; strict: remove this mark once the "
    "emulation answers as DynamoDB does",
)
@pytest.mark.parametrize(
    ("condition", "values"),
    [
        ("version <= :v AND", {":v": {"N": "1"}}),  # a syntax error
        ("version = :missing", None),  # a value that is not given
    ],
)
def test_a_bad_condition_is_dynamodbs_validation_exception(moto_pair, condition, values):
    _, client = moto_pair
    make_tables(client)
    params = {
        "TableName": "t",
        "Item": {"pk": {"S": "a"}, "version": {"N": "1"}},
        "ConditionExpression": condition,
    }
    if values:
        params["ExpressionAttributeValues"] = values
    fast, slow = both(client, "dynamodb", "put_item", **params)
    assert fast == slow
    assert fast["error"] == "ValidationException"


def test_botocore_still_validates_the_request(moto_pair):
    from botocore.exceptions import ParamValidationError

    fast_path, client = moto_pair
    answered = fast_path.calls
    with pytest.raises(ParamValidationError):
        client("dynamodb", True).put_item(TableName="t", Item={"pk": "not an attribute value"})
    assert fast_path.calls == answered


# -- Kinesis ---------------------------------------------------------------------------------


STREAMS = itertools.count()


@st.composite
def kinesis_records(draw):
    records = []
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        # (an empty key is refused by botocore before either path: nothing to compare)
        key = draw(st.sampled_from(["k1", "k2", "x" * 257]))
        records.append({"Data": draw(st.binary(max_size=40)), "PartitionKey": key})
    return records


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(requests=st.lists(kinesis_records(), min_size=1, max_size=6), limit=st.integers(1, 20))
def test_kinesis_put_and_get_records_answer_as_moto_does(moto_pair, requests, limit):
    _, client = moto_pair
    name = f"s{next(STREAMS)}"  # (hypothesis may replay an example: a new stream each time)
    for fast in (True, False):
        client("kinesis", fast).create_stream(StreamName=name, ShardCount=2)
    for records in requests:
        fast, slow = both(client, "kinesis", "put_records", StreamName=name, Records=records)
        assert fast == slow
    for shard in client("kinesis", True).list_shards(StreamName=name)["Shards"]:
        reads = []
        for fast in (True, False):
            kin = client("kinesis", fast)
            iterator = kin.get_shard_iterator(
                StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            got = kin.get_records(ShardIterator=iterator, Limit=limit)
            reads.append(
                [(r["SequenceNumber"], r["PartitionKey"], r["Data"]) for r in got["Records"]]
            )
        assert reads[0] == reads[1]


@pytest.mark.xfail(
    strict=True,
    raises=binascii.Error,
    reason="moto fails to decode a malformed shard iterator (binascii.Error), on both paths, "
    "where Kinesis answers InvalidArgumentException; strict: remove this mark once the "
    "emulation answers as Kinesis does",
)
def test_a_malformed_shard_iterator_is_kinesis_invalid_argument(moto_pair):
    _, client = moto_pair
    fast, slow = both(client, "kinesis", "get_records", ShardIterator="bogus" * 10)
    assert fast == slow
    assert fast["error"] == "InvalidArgumentException"


def test_kinesis_put_record_keeps_the_slow_path(moto_pair):
    fast_path, client = moto_pair
    client("kinesis", True).create_stream(StreamName="single", ShardCount=1)
    answered = fast_path.calls
    client("kinesis", True).put_record(StreamName="single", Data=b"x", PartitionKey="k")
    assert fast_path.calls == answered  # botocore retries its throttling error: slow path


# -- the condition-parse cache -------------------------------------------------------------

paths = st.sampled_from(["version", "applied_by", "pk", "#n", "row.x"])
# Operands of one type: moto's evaluator raises TypeError comparing a number with a string
# (DynamoDB's comparison is false), a gap of moto's that both parses share; not what the cache
# is tested for, so comparisons and ranges keep to one type.
TYPED = {
    "N": (["version", "#n"], ":v"),
    "S": (["applied_by", "pk", "row.x"], ":by"),
}


@st.composite
def typed_operand(draw, kind):
    names, value = TYPED[kind]
    return draw(st.sampled_from([*names, value]))


@st.composite
def conditions(draw, depth=0):
    kind = draw(
        st.sampled_from(["cmp", "fn", "between", "in"] + (["and", "or", "not"] * (depth < 2)))
    )
    if kind == "cmp":
        comparator = draw(st.sampled_from(["=", "<>", "<", "<=", ">", ">="]))
        kind_of = draw(st.sampled_from(sorted(TYPED)))
        return f"{draw(typed_operand(kind_of))} {comparator} {draw(typed_operand(kind_of))}"
    if kind == "fn":
        fn = draw(st.sampled_from(["attribute_exists", "attribute_not_exists"]))
        return f"{fn}({draw(paths)})"
    if kind == "between":
        names, value = TYPED[draw(st.sampled_from(sorted(TYPED)))]
        return f"{draw(st.sampled_from(names))} BETWEEN {value} AND {value}"
    if kind == "in":
        return f"{draw(paths)} IN (:v, :by)"
    if kind == "not":
        return f"NOT ({draw(conditions(depth + 1))})"
    joiner = " AND " if kind == "and" else " OR "
    return "(" + draw(conditions(depth + 1)) + joiner + draw(conditions(depth + 1)) + ")"


items = st.fixed_dictionaries(
    {"pk": st.just({"S": "a"})},
    optional={
        "version": st.integers(0, 3).map(lambda n: {"N": str(n)}),
        "applied_by": sources.map(lambda s: {"S": s}),
        "row": st.just({"M": {"x": {"S": "1"}}}),
    },
)


def judge(expression, names, values, item):
    """The verdict on ``item``, or the error moto answers (a modelled DynamoDB error, which
    the client would get); anything else raised fails the test."""
    from moto.core.exceptions import JsonRESTError
    from moto.dynamodb.comparisons import ConditionExpressionParser
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    parser = ConditionExpressionParser(expression, names, values)
    try:
        op = parser.parse()
    except JsonRESTError as exc:  # the error itself is compared
        return ("unparsed", type(exc).__name__, str(exc))
    try:
        verdict = op.expr(Item(DynamoType({"S": "a"}), None, item) if item is not None else None)
    except JsonRESTError as exc:
        verdict = ("error", type(exc).__name__, str(exc))
    return (verdict, parser.expr_attr_names_found, parser.expr_attr_values_found)


@settings(max_examples=300, deadline=None)
@given(
    expression=conditions(),
    item=st.one_of(st.none(), items),
    value_sets=st.lists(st.tuples(st.integers(0, 3), sources), min_size=1, max_size=4),
)
def test_cached_condition_parses_judge_items_as_fresh_parses(expression, item, value_sets):
    names = {"#n": "version"}
    calls = [{":v": {"N": str(v)}, ":by": {"S": by}} for v, by in value_sets]
    fresh = [judge(expression, names, values, item) for values in calls]
    with dynamodb._parse_cache(size=2) as cache:
        # Twice over: the first round fills the cache, the second is answered from it.
        for _ in range(2):
            for values, expected in zip(calls, fresh, strict=True):
                assert judge(expression, names, values, item) == expected
        parsed = {
            json.dumps(values, sort_keys=True)
            for values, result in zip(calls, fresh, strict=True)
            if result[0] != "unparsed"
        }
        assert len(cache) == min(2, len(parsed))
