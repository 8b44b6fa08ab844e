"""A plain ``PutItem`` answered by moto's DynamoDB backend, without moto's request layer.

The consumer applies every op with one validated, version-conditioned ``PutItem``. Through the
dispatch of :mod:`.fastpath`, moto still sets a response handler up for each (URL, headers,
region, account, the parameters parsed again), runs its generic ``call_action`` (action lookup,
request id, CRC32 of the body, JSON serialisation of an empty answer) and botocore parses that
answer back: about two thirds of the emulated call, none of it a check the caller could see.

:func:`answer` does what moto's ``DynamoHandler.put_item`` does for such a request, in the same
order and with moto's own functions -- the table looked up, empty keys and attributes refused,
GSI keys set to null refused, ``ExpressionAttributeValues`` checked, the condition parsed and its
names checked, then the backend's ``put_item`` (condition evaluated and item stored as one step,
item-size limit, under the DynamoDB lock of :mod:`.dynamodb`) -- and builds the answer as
botocore parses moto's: no body members, the same ``ResponseMetadata`` headers. moto's errors are
answered as ``call_action`` answers them and parsed by botocore's own parser.

A request is "plain" when it asks for nothing back (``ReturnValues``, ``ReturnConsumedCapacity``
and ``ReturnItemCollectionMetrics`` absent or ``NONE``), has no legacy ``Expected`` /
``ConditionalOperator``, no ``ReturnValuesOnConditionCheckFailure``, and its body holds no value
moto's parser would convert (binary: :func:`.prepared_requests.converting_members`). Any other
``PutItem`` goes through the dispatch as before.

moto's handler can change without any name changing, so this path is used only while the source
of every moto function it stands in for hashes to a release it was proven on
(:data:`PROVEN_SOURCES`); otherwise it steps aside (:mod:`.fast_paths`). The differential tests
(``tests/local/test_emulator_dynamodb_direct.py``) compare it with moto's full path: outcomes,
errors, stored items, on random items and conditions.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from contextlib import nullcontext
from types import SimpleNamespace
from typing import Any

from snapcdc_local.emulator import dynamodb, prepared_requests

# The request members a plain PutItem may carry, and those that may only say NONE.
PLAIN_MEMBERS = frozenset(
    {"TableName", "Item", "ConditionExpression", "ExpressionAttributeNames",
     "ExpressionAttributeValues", "ReturnValues", "ReturnConsumedCapacity",
     "ReturnItemCollectionMetrics"}
)  # fmt: skip
NONE_MEMBERS = ("ReturnValues", "ReturnConsumedCapacity", "ReturnItemCollectionMetrics")

# sha256 (first 16 hex digits) of the source of each moto function this module stands in for, in
# the releases the differential tests passed on (moto 5.2.5 and 5.2.6).
PROVEN_SOURCES = {
    "moto.dynamodb.responses:DynamoHandler.put_item": {"4c9efb73275195ec"},
    "moto.dynamodb.responses:DynamoHandler._get_expr_attr_values": {"85f89ffa4e2cb7c9"},
    "moto.dynamodb.responses:DynamoHandler.call_action": {"ce5f57cf83cde340"},
    "moto.dynamodb.responses:include_consumed_capacity": {"d47fb3fb1cbf270b"},
    # 5.2.6 serialises an action's result inside the try (its errors answered as errors): the
    # same answer for a PutItem, whose result is an empty dict
    "moto.core.responses:BaseResponse.call_action": {"26076963fd17fd1a", "33ccca5a96e6eda6"},
}
NEEDS = (
    "moto.dynamodb.models:dynamodb_backends",
    "moto.dynamodb.responses:validate_put_has_empty_keys",
    "moto.dynamodb.responses:validate_put_has_empty_attrs",
    "moto.dynamodb.responses:validate_put_has_gsi_keys_set_to_none",
    "moto.dynamodb.responses:validate_attributes_used",
    "moto.dynamodb.responses:create_condition_expression_parser",
    "moto.core.responses:BaseResponse.access_key_regex",
    "moto.iam.models:get_account_id_from",
    "moto.iam.models:mark_account_as_visited",
    "moto.utilities.aws_headers:gen_amz_crc32",
    "moto.core.exceptions:HTTPException",
)
EMPTY_BODY = b"{}"
JSON_CONTENT_TYPE = "application/x-amz-json-1.0"


class _Clock:
    """The ``date`` header, made once a second (``http_date`` costs more than the write)."""

    def __init__(self) -> None:
        self.second = -1
        self.text = ""

    def now(self) -> str:
        from werkzeug.http import http_date

        second = int(time.time())
        if second != self.second:
            self.text, self.second = http_date(second), second
        return self.text


class DirectPut:
    """Answers plain ``PutItem`` requests (see the module); :meth:`answer` returns ``None`` for
    any other request. ``calls`` counts the answered ones."""

    def __init__(self, parse_error: Any) -> None:
        # parse_error(model, status, headers, body, url) -> (http, parsed): the dispatch's parse
        self.parse_error = parse_error
        self.calls = 0
        self._clock = _Clock()
        self._accounts: dict[str, str] = {}  # access key -> account
        self._visited: set[tuple[str, str, str]] = set()
        self._visited_lock = threading.Lock()

    def answer(self, model: Any, params: dict[str, Any]) -> Any:
        if model.name != "PutItem":
            return None
        body = params.get("body")
        if not isinstance(body, bytes) or params.get("method") != "POST":
            return None
        converting = prepared_requests.converting_members(model.input_shape)
        if converting is None or any(name in body for name in converting):
            return None
        from moto.dynamodb.responses import DynamoHandler

        match = DynamoHandler.region_regex.search(params["url"])
        if match is None or params["headers"].get("Content-Encoding"):
            return None
        request = json.loads(body)
        if not PLAIN_MEMBERS.issuperset(request) or any(
            request.get(name, "NONE") != "NONE" for name in NONE_MEMBERS
        ):
            return None
        region = match.group(1)
        account = self._account(params["headers"], region)
        self.calls += 1
        headers = {"server": "amazon.com", "date": self._clock.now()}
        try:
            lock = dynamodb.request_lock()
            with lock if lock is not None else nullcontext():
                put_item(account, region, request)
        except Exception as exc:
            from moto.core.exceptions import HTTPException

            if not isinstance(exc, HTTPException):
                raise
            return self._error(model, params["url"], headers, exc)
        return self._success(params["url"], headers)

    def _account(self, headers: Any, region: str) -> str:
        """The account moto's handler would act for (``BaseResponse.get_current_account``), and
        the account marked as seen in this region, as its ``setup_class`` marks it."""
        from moto.core.responses import BaseResponse
        from moto.iam.models import get_account_id_from, mark_account_as_visited

        access_key = "AKIAEXAMPLE"
        authorization = headers.get("Authorization")
        if authorization:
            found = BaseResponse.access_key_regex.search(
                authorization.decode() if isinstance(authorization, bytes) else authorization
            )
            if found:
                access_key = found.group(1)
        account = os.environ.get("MOTO_ACCOUNT_ID") or headers.get("x-moto-account-id")
        if account is None:
            account = self._accounts.get(access_key)
            if account is None:
                account = self._accounts[access_key] = get_account_id_from(access_key)
        key = (account, access_key, region)
        if key not in self._visited:
            with self._visited_lock:
                mark_account_as_visited(
                    account_id=account, access_key=access_key, service="dynamodb", region=region
                )
                self._visited.add(key)
        return account

    def _success(self, url: str, headers: dict[str, str]) -> Any:
        from botocore.awsrequest import AWSResponse
        from moto.core.botocore_stubber import MockRawResponse
        from moto.utilities.aws_headers import gen_amz_crc32

        request_id = _request_id()
        headers = {"content-type": JSON_CONTENT_TYPE, **headers, "x-amzn-requestid": request_id}
        gen_amz_crc32(EMPTY_BODY, headers)
        http = AWSResponse(url, 200, headers, MockRawResponse(EMPTY_BODY))
        metadata = {
            "RequestId": request_id,
            "HTTPStatusCode": 200,
            "HTTPHeaders": dict(headers),
            "RetryAttempts": 0,
        }
        return http, {"ResponseMetadata": metadata}

    def _error(self, model: Any, url: str, headers: dict[str, str], exc: Any) -> Any:
        # As BaseResponse.call_action answers an HTTPException, then amz_crc32.
        from moto.utilities.aws_headers import gen_amz_crc32

        body = exc.description
        headers.update(exc.get_headers() or [])
        headers["status"] = str(exc.code)
        headers["x-amzn-requestid"] = _request_id()
        gen_amz_crc32(body, headers)
        return self.parse_error(model, exc.code, headers, body, url)


def put_item(account: str, region: str, request: dict[str, Any]) -> None:
    """moto's ``DynamoHandler.put_item`` for a plain request (see the module), step by step."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.responses import (
        DynamoHandler,
        create_condition_expression_parser,
        validate_attributes_used,
        validate_put_has_empty_attrs,
        validate_put_has_empty_keys,
        validate_put_has_gsi_keys_set_to_none,
    )

    backend = dynamodb_backends[account][region]
    name = request["TableName"]
    item = request["Item"]
    table = backend.get_table(name)
    validate_put_has_empty_keys(item, table)
    validate_put_has_empty_attrs(item, table)
    validate_put_has_gsi_keys_set_to_none(item, table)
    condition = request.get("ConditionExpression")
    names = request.get("ExpressionAttributeNames", {})
    values = DynamoHandler._get_expr_attr_values(SimpleNamespace(body=request))  # type: ignore[arg-type]
    parser = create_condition_expression_parser(condition, names, values)
    parser.parse()
    validate_attributes_used(names, parser.expr_attr_names_found)
    backend.put_item(name, item, None, condition, names, values, not condition, None)


def _request_id() -> str:
    """52 characters of [0-9A-F], as a DynamoDB request id looks (not a secret: ``random``)."""
    return f"{random.getrandbits(208):052X}"
