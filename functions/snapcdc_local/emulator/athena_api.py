"""Athena's API front: an HTTP request in either wire protocol a botocore speaks, answered.

Athena's API has two wire forms. botocore up to 1.44.13 (and the AWS CLI's own, e.g. awscli
1.46's botocore 1.43) speaks the ``json`` protocol: ``POST /`` with ``X-Amz-Target:
AmazonAthena.<Operation>`` and every parameter in the JSON body. botocore 1.44.18 speaks
``rest-json``: the operation is the method and path (``POST /query-executions``, ``GET
/query-executions/{QueryExecutionId}/results?MaxResults=…``), some parameters in the path and
query string, the rest in the body. Clients bring their own botocore, so the emulation answers
both; moto's Athena routes only the first, and runs no query anyway.

So the emulation owns Athena's front. :func:`decode` turns a request into (operation,
parameters, protocol); :class:`AthenaApi` runs the operation (queries on the
:class:`~.athena.AthenaBridge`, workgroups in :class:`~.athena_workgroups.Workgroups`) and
:func:`encode` writes the answer in the protocol the request came in: the same JSON body for
both, an error as ``{"__type", "Message"}`` plus the ``x-amzn-ErrorType`` header that
rest-json clients read the code from.

In process, :meth:`AthenaApi.installed` answers at botocore's ``before-send`` (the signed HTTP
request, after IAM was checked at ``before-parameter-build``), ahead of moto's stubber; a served
endpoint calls :func:`answer` with what came over the wire. Either way botocore parses the
answer with its own parser for its own protocol, and retries what it would retry from Athena.

The rest-json routes (:data:`REST_ROUTES`) are those of botocore 1.44.18's Athena model, for the
operations served here; an operation not served is refused as a bad request naming it.

>>> decode("POST", "https://athena.us-east-1.amazonaws.com/",
...        {"X-Amz-Target": "AmazonAthena.GetQueryExecution"}, b'{"QueryExecutionId": "q"}')
('GetQueryExecution', {'QueryExecutionId': 'q'}, 'json')
>>> decode("GET", "https://athena.us-east-1.amazonaws.com/query-executions/q%201/results"
...        "?MaxResults=5&NextToken=t", {}, b"")
('GetQueryResults', {'QueryExecutionId': 'q 1', 'MaxResults': 5, 'NextToken': 't'}, 'rest-json')
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from snapcdc_local.emulator.athena_executions import AthenaRequestError

JSON_TARGET_PREFIX = "AmazonAthena."
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
REST_CONTENT_TYPE = "application/json"
HOOK_ID = "snapcdc-emulated-athena"


@dataclass(frozen=True)
class Route:
    """One rest-json operation: its method, its path with ``{Label}`` parts, and the members
    carried in the query string with their shape type."""

    operation: str
    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()

    @property
    def pattern(self) -> re.Pattern[str]:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path))
        return re.compile(f"^{regex}/?$")


_PAGED = (("NextToken", "string"), ("MaxResults", "integer"))
REST_ROUTES: tuple[Route, ...] = (
    Route("StartQueryExecution", "POST", "/query-executions"),
    Route("ListQueryExecutions", "GET", "/query-executions", (*_PAGED, ("WorkGroup", "string"))),
    Route("GetQueryExecution", "GET", "/query-executions/{QueryExecutionId}"),
    Route(
        "GetQueryResults",
        "GET",
        "/query-executions/{QueryExecutionId}/results",
        (*_PAGED, ("QueryResultType", "string")),
    ),
    Route("StopQueryExecution", "POST", "/query-executions/{QueryExecutionId}/stop"),
    Route("BatchGetQueryExecution", "POST", "/batch-get-query-executions"),
    Route("CreateWorkGroup", "POST", "/workgroups"),
    Route("ListWorkGroups", "GET", "/workgroups", _PAGED),
    Route("GetWorkGroup", "GET", "/workgroups/{WorkGroup}"),
    Route("UpdateWorkGroup", "PATCH", "/workgroups/{WorkGroup}"),
    Route(
        "DeleteWorkGroup",
        "DELETE",
        "/workgroups/{WorkGroup}",
        (("RecursiveDeleteOption", "boolean"),),
    ),
)
_COMPILED = tuple((route, route.pattern) for route in REST_ROUTES)


class NotServed(AthenaRequestError):
    """A request for an operation (or path) the emulated Athena does not implement."""


def _typed(value: str, kind: str) -> Any:
    if kind == "integer":
        try:
            return int(value)
        except ValueError:
            raise AthenaRequestError(
                f"{value!r} is not an integer", "ValidationException"
            ) from None
    if kind == "boolean":
        return value.lower() == "true"
    return value


def _json_body(body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    try:
        parsed = json.loads(body)
    except ValueError:
        raise AthenaRequestError("the request body is not JSON", "SerializationException") from None
    if not isinstance(parsed, dict):
        raise AthenaRequestError("the request body is not a JSON object", "SerializationException")
    return parsed


def decode(
    method: str, url: str, headers: Mapping[str, str], body: bytes
) -> tuple[str, dict[str, Any], str]:
    """(operation, parameters, protocol) of an Athena HTTP request; :class:`NotServed` or
    :class:`AthenaRequestError` when it cannot be one."""
    target = next((v for k, v in headers.items() if k.lower() == "x-amz-target"), None)
    if target is not None:
        if not target.startswith(JSON_TARGET_PREFIX):
            raise NotServed(f"unknown target {target!r}", "UnknownOperationException")
        return target[len(JSON_TARGET_PREFIX) :], _json_body(body), "json"
    parts = urlsplit(url)
    path = parts.path or "/"
    for route, pattern in _COMPILED:
        match = pattern.match(path)
        if match is None or route.method != method.upper():
            continue
        params = _json_body(body)
        params.update({k: unquote(v) for k, v in match.groupdict().items()})
        wanted = dict(route.query)
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in wanted:
                params[key] = _typed(value, wanted[key])
        return route.operation, params, "rest-json"
    raise NotServed(
        f"the embedded Athena does not serve {method.upper()} {path}", "UnknownOperationException"
    )


def encode(
    protocol: str, status: int, payload: dict[str, Any], request_id: str
) -> tuple[int, dict[str, str], bytes]:
    """The HTTP answer: ``payload`` as the JSON body, headers as the protocol wants them."""
    headers = {
        "Content-Type": REST_CONTENT_TYPE if protocol == "rest-json" else JSON_CONTENT_TYPE,
        "x-amzn-RequestId": request_id,
    }
    if status >= 300 and "__type" in payload:
        headers["x-amzn-ErrorType"] = str(payload["__type"])
    return status, headers, json.dumps(payload, default=str).encode()


Handler = Callable[[dict[str, Any]], dict[str, Any]]


class AthenaApi:
    """The operations served, by name (see the module docstring)."""

    def __init__(self, handlers: Mapping[str, Handler]) -> None:
        self.handlers = dict(handlers)
        self.calls: dict[str, int] = {"json": 0, "rest-json": 0}

    def answer(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | str | None
    ) -> tuple[int, dict[str, str], bytes]:
        raw = body.encode() if isinstance(body, str) else (body or b"")
        request_id = str(uuid.uuid4())
        protocol = "rest-json" if "x-amz-target" not in {k.lower() for k in headers} else "json"
        try:
            operation, params, protocol = decode(method, url, headers, raw)
            handler = self.handlers.get(operation)
            if handler is None:
                raise NotServed(
                    f"the embedded Athena does not implement {operation}", "InvalidRequestException"
                )
            self.calls[protocol] += 1
            return encode(protocol, 200, handler(params), request_id)
        except AthenaRequestError as exc:
            # Athena answers every modelled error with 400, throttling included
            # (https://docs.aws.amazon.com/athena/latest/APIReference/CommonErrors.html).
            return encode(protocol, 400, {"__type": exc.code, "Message": str(exc)}, request_id)

    # -- in process ----------------------------------------------------------------------

    @contextmanager
    def installed(self, session: Any) -> Iterator[AthenaApi]:
        """Answer the Athena calls of clients created from ``session``, and from any session
        made while the block runs, ahead of moto's stubber (which the emulator configures to
        pass Athena through); :func:`answer` reaches this front meanwhile."""
        from botocore import handlers

        spec = ("before-send.athena", _before_send, handlers.REGISTER_FIRST)
        session.events.register_first("before-send.athena", _before_send, HOOK_ID)
        handlers.BUILTIN_HANDLERS.append(spec)
        _ACTIVE.append(self)
        try:
            yield self
        finally:
            _ACTIVE.remove(self)
            handlers.BUILTIN_HANDLERS.remove(spec)
            session.events.unregister("before-send.athena", unique_id=HOOK_ID)


class _Raw:
    """The raw stream botocore reads an answer's body from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body

    def read(self, *_: Any) -> bytes:
        body, self._body = self._body, b""
        return body


_ACTIVE: list[AthenaApi] = []


def answer(
    method: str, url: str, headers: Mapping[str, str], body: bytes | str | None
) -> tuple[int, dict[str, str], bytes]:
    """Answer an Athena HTTP request with the emulation running in this process (a served
    endpoint's entry point). With none running, a 503 that names the reason: an Athena request
    never leaves the machine."""
    if not _ACTIVE:
        payload = {"__type": "ServiceUnavailable", "Message": "no emulated Athena is running"}
        return encode("json", 503, payload, str(uuid.uuid4()))
    return _ACTIVE[-1].answer(method, url, headers, body)


def _before_send(request: Any, **_: Any) -> Any:
    """botocore's ``before-send``: the signed request answered as if it had been sent."""
    from botocore.awsrequest import AWSResponse

    headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
    status, headers, body = answer(request.method, request.url, headers, request.body)
    return AWSResponse(request.url, status, headers, _Raw(body))
