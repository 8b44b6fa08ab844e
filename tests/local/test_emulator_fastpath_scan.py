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
)
def test_paginated_scans_give_moto_s_pages(keys, ranged, limit, filtered, segments):
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
            if ranged:
                item["r"] = {"N": str(r)}
            ddb.put_item(TableName="s", Item=item)
        params: dict = {"TableName": "s", "PaginationConfig": {"PageSize": limit}}
        if filtered:
            params["FilterExpression"] = "v = :v"
            params["ExpressionAttributeValues"] = {":v": {"N": "1"}}
        if segments:
            params["Segment"], params["TotalSegments"] = segments
        slow = scan_pages(ddb, **params)
        with dynamodb._fast_scan_pages():
            fast = scan_pages(ddb, **params)
        assert fast == slow
        if segments is None:  # several pages: the start key was used
            assert len(slow) >= len(keys) // limit
