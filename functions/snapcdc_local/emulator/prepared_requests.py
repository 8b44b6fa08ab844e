"""A moto response handler set up from botocore's serialised JSON request, without werkzeug.

moto answers a request by building a werkzeug request from the HTTP message, then
``BaseResponse.setup_class`` reads it back: URL, headers, body, region, account, and (for
services with automated parameter parsing, DynamoDB among them) the parameters, parsed from the
body again by walking the operation's input shape. For the consumer's conditional ``PutItem``
that is ~45% of the emulated call (werkzeug ~10%, the parameter walk ~20%, the rest of
``setup_class`` ~15%; py-spy over a 20,000-row local run), for nothing the caller can see: the
request came from botocore, which has just validated the parameters against the same model and
serialised them as JSON.

:func:`prepared` leaves on a fresh handler what ``setup_class`` (moto 5.2) leaves for such a
request -- the same URL parts, headers, region, partition, access key, account, the account
marked as visited -- and as parameters the body's ``json.loads``, which is what moto's parser
makes of a JSON body except where the input shape converts a value: blobs are base64-decoded,
timestamps parsed, floats made ``float``. :func:`converting_members` lists, per input or output
shape, the member names whose shapes convert; a body holding any of them as a JSON string
``"Name"`` goes the usual way (every such key reads so in the raw bytes; quotes inside a string
are escaped, so only a whole string value of that name can be a false alarm, and that costs
nothing but speed).
``None`` means "do it the usual way": a request that is not JSON, not for a region in the URL,
compressed, or mentioning a converting member.

The handler then runs its own ``call_action``: moto's dispatch, its errors, its serializer and
its CRC32 header, unchanged. Proven against the slow path by the differential tests in
``tests/local/test_emulator_fastpath*.py`` (every response, error and final state equal).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any
from urllib.parse import urlparse

JSON_PROTOCOLS = frozenset({"json"})
CONVERTING_TYPES = frozenset({"blob", "timestamp", "float", "double"})


def protocol_of(service_model: Any) -> str:
    """The wire protocol botocore speaks to the service (the resolved one, where it has one)."""
    return getattr(service_model, "resolved_protocol", None) or service_model.protocol


@cache
def converting_members(shape: Any) -> tuple[bytes, ...] | None:
    """``b'"Name"'`` for every member of ``shape`` (an operation's input or output) whose value
    a parser converts, at any depth: a JSON body mentioning none of them parses to its
    ``json.loads``. ``None`` if a member is serialised under another name (then it is not so)."""
    names: set[str] = set()
    seen: set[str] = set()
    renamed: list[str] = []

    def converts(shape: Any) -> bool:
        # A value of this shape is converted itself (a blob, or a list or map of blobs), as
        # opposed to holding structures whose own members are (their names are found below).
        kind = shape.type_name
        if kind == "list":
            return converts(shape.member)
        if kind == "map":
            return converts(shape.value)
        return kind in CONVERTING_TYPES

    def visit(shape: Any) -> None:
        kind = shape.type_name
        if kind == "list":
            visit(shape.member)
        elif kind == "map":
            visit(shape.value)
        elif kind == "structure" and shape.name not in seen:
            seen.add(shape.name)  # AttributeValue holds itself (M, L)
            for member, member_shape in shape.members.items():
                if member_shape.serialization.get("name", member) != member:
                    renamed.append(member)
                if converts(member_shape):
                    names.add(member)
                visit(member_shape)

    if shape is not None:
        visit(shape)
    if renamed:
        return None
    return tuple(f'"{name}"'.encode() for name in sorted(names))


def prepared(handler_class: type, model: Any, params: dict[str, Any]) -> Any:
    """A ``handler_class`` instance ready for ``call_action``, or ``None`` (see the module)."""
    from moto.core.utils import utcnow
    from moto.iam.models import mark_account_as_visited
    from moto.utilities.utils import get_partition
    from werkzeug.datastructures import Headers
    from werkzeug.http import http_date

    if protocol_of(model.service_model) not in JSON_PROTOCOLS:
        return None
    body = params.get("body")
    if not isinstance(body, bytes | str):
        return None
    raw = body.encode() if isinstance(body, str) else body
    converting = converting_members(model.input_shape)
    if converting is None or any(name in raw for name in converting):
        return None
    url = params["url"]
    match = handler_class.region_regex.search(url)
    if match is None:
        return None
    headers = Headers(
        [(k, v.decode() if isinstance(v, bytes) else v) for k, v in params["headers"].items()]
    )
    if headers.get("Content-Encoding"):
        return None
    handler = handler_class()
    text = raw.decode("utf-8")
    parsed_url = urlparse(url)
    # What BaseResponse.setup_class sets, for a JSON request that botocore made.
    handler.is_werkzeug_request = False
    handler.normalized_request = None
    handler.parsed_url = parsed_url
    handler.body = text
    handler.raw_body = raw
    handler.form_data = {}
    handler.uri = url
    handler.path = parsed_url.path
    handler.raw_path = parsed_url.path or "/"
    handler.querystring = {}
    handler.data = handler.querystring
    handler.method = params["method"]
    handler.region = match.group(1)
    handler.partition = get_partition(handler.region)
    handler.uri_match = {}
    handler.headers = headers
    handler.response_headers = {"server": "amazon.com", "date": http_date(utcnow())}
    if handler.automated_parameter_parsing:
        handler.params = json.loads(text or "{}")
    handler.access_key = handler.get_access_key()
    handler.current_account = handler.get_current_account()
    mark_account_as_visited(
        account_id=handler.current_account,
        access_key=handler.access_key,
        service=handler.service_name,
        region=handler.region,
    )
    return handler


def plain_json_parser() -> Any:
    """botocore's JSON response parser, taking a body that holds no value its output shape
    converts (:func:`converting_members`) as ``json.loads`` gives it, top-level members not in
    the shape left out as botocore leaves them out: botocore walks every attribute of every item
    of a Scan page to copy it unchanged (its ``_handle_structure``, ``_handle_map``)."""
    from botocore.parsers import JSONParser

    class PlainJSONParser(JSONParser):
        def _handle_json_body(self, raw_body: Any, shape: Any) -> Any:
            converting = converting_members(shape) if shape is not None else None
            if converting is None or shape.type_name != "structure" or shape.is_document_type:
                return super()._handle_json_body(raw_body, shape)
            raw = raw_body.encode() if isinstance(raw_body, str) else raw_body
            if any(name in raw for name in converting):
                return super()._handle_json_body(raw_body, shape)
            parsed = self._parse_body_as_json(raw_body)
            members = shape.members
            return {k: v for k, v in parsed.items() if k in members and v is not None}

    return PlainJSONParser()
