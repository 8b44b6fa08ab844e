"""Paginated Scans: the start-key bisection of ``snapcdc_local.emulator.dynamodb`` gives moto's
own pages (a file of its own: the other fast-path tests keep the emulation's patches installed for
their module, and here moto's unpatched scan is the reference)."""

from __future__ import annotations

import boto3
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from snapcdc_local.emulator import dynamodb

FAST = "us-east-1"


# -- paginated Scans ------------------------------------------------------------------------


def scan_pages(ddb, **params):
    pages = []
    for page in ddb.get_paginator("scan").paginate(**params):
        pages.append({k: v for k, v in page.items() if k != "ResponseMetadata"})
    return pages


@settings(max_examples=20, deadline=None)
@given(
    keys=st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.integers(-5, 500)),
        min_size=0,
        max_size=60,
        unique=True,
    ),
    ranged=st.booleans(),
    limit=st.integers(1, 7),
    filtered=st.booleans(),
    segments=st.sampled_from([None, (0, 2), (1, 2)]),
    big=st.booleans(),
)
def test_paginated_scans_give_moto_s_pages(keys, ranged, limit, filtered, segments, big):
    """The start-key bisection of ``dynamodb._fast_scan_pages`` gives moto's own pages."""
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=FAST)
        schema = [{"AttributeName": "h", "KeyType": "HASH"}]
        definitions = [{"AttributeName": "h", "AttributeType": "S"}]
        if ranged:
            schema.append({"AttributeName": "r", "KeyType": "RANGE"})
            definitions.append({"AttributeName": "r", "AttributeType": "N"})
        ddb.create_table(
            TableName="s",
            KeySchema=schema,
            AttributeDefinitions=definitions,
            BillingMode="PAY_PER_REQUEST",
        )
        for n, (h, r) in enumerate(keys):
            item = {"h": {"S": h if ranged else f"{h}{r}"}, "v": {"N": str(n % 3)}}
            if big and n < 25:  # ~11 of these fill moto's 1 MB page before the page size does
                item["w"] = {"S": "x" * 90_000}
            if ranged:
                item["r"] = {"N": str(r)}
            ddb.put_item(TableName="s", Item=item)
        params: dict = {"TableName": "s", "PaginationConfig": {"PageSize": limit}}
        if filtered:
            params["FilterExpression"] = "v = :v"
            params["ExpressionAttributeValues"] = {":v": {"N": "1"}}
        if segments:
            params["Segment"], params["TotalSegments"] = segments
        page_size = limit * 5 if big else limit
        params["PaginationConfig"]["PageSize"] = page_size
        slow = scan_pages(ddb, **params)
        writes = [0]
        with dynamodb._fast_scan_pages(writes):
            fast = scan_pages(ddb, **params)
            assert fast == slow
            # A write (counted as the emulation counts them) is seen by the next Scan.
            ddb.put_item(TableName="s", Item={"h": {"S": "a"}, "r": {"N": "7"}, "v": {"N": "1"}})
            writes[0] += 1
            fast = scan_pages(ddb, **params)
        assert fast == scan_pages(ddb, **params)
        if segments is None:  # several pages: the start key was used
            assert len(slow) >= len(keys) // page_size


def test_a_scan_page_ends_at_moto_s_1_mb_as_it_does_without_the_fast_path():
    """30 items of ~90 KB: pages end by size (~11 items), not by the page size of 100."""
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=FAST)
        ddb.create_table(
            TableName="big",
            KeySchema=[{"AttributeName": "h", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "h", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for n in range(30):
            ddb.put_item(TableName="big", Item={"h": {"S": f"k{n:02d}"}, "w": {"S": "x" * 90_000}})
        params = {"TableName": "big", "PaginationConfig": {"PageSize": 100}}
        slow = scan_pages(ddb, **params)
        with dynamodb._fast_scan_pages([0]):
            fast = scan_pages(ddb, **params)
        assert [page["Count"] for page in slow] == [11, 11, 8]
        assert fast == slow
