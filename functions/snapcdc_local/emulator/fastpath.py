"""The hot AWS calls answered by moto without the HTTP round trip in between.

A boto3 call under moto goes: parameter validation and serialisation (botocore), the endpoint's
retry loop, SigV4 signing, moto's ``before-send`` stubber (it matches the URL against every
service's patterns, recompiling them, builds a werkzeug request), moto's response class and
backend, then botocore parses the response. Profiled on the consumer's conditional ``PutItem``:
moto's dispatch ~55% of the call, botocore's signing and sending ~35%.

:func:`installed` registers a ``before-call`` handler (it runs after botocore has validated and
serialised the request, and after the IAM hook of :mod:`.iam` authorised it) that, for the
services in :data:`FAST_SERVICES`, hands the serialised request straight to the moto method its
URL maps to (the same method moto's stubber would pick, patterns compiled once) and parses the
answer with botocore's own parser for the service's protocol, modelled error fields included.
What is left out is what only a network needs: signing (moto does not check signatures here;
the account comes out the same), the HTTP send, and the retry loop.

Retries: botocore retries throttling and 5xx answers. The operations answered here get neither
from this emulation, except Kinesis ``PutRecord`` refused for throughput
(``ProvisionedThroughputExceededException``), which is why it keeps the slow path
(:data:`SLOW_OPERATIONS`). A fast answer that botocore would have retried is a bug: it raises
:class:`FastPathError` instead of being returned.

Each fast path is proven against moto's slow path by differential tests
(``tests/local/test_emulator_fastpath.py``): the same calls with random inputs, failing
conditions included, through a client with and a client without the hook, give the same
responses, errors and final state.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from snapcdc_local.emulator import dynamodb_direct, fast_paths, prepared_requests

HOOK_ID = "snapcdc-emulated-fast-path"
FAST_SERVICES = frozenset({"dynamodb", "kinesis", "lambda"})
SLOW_OPERATIONS = frozenset({("kinesis", "PutRecord")})


class FastPathError(RuntimeError):
    """A fast answer the slow path would have handled differently (see the module docstring)."""


class _Routes:
    """moto's URL patterns of one service, compiled once (moto's stubber compiles per call)."""

    def __init__(self, service: str) -> None:
        import moto.backends as backends
        from moto.core import DEFAULT_ACCOUNT_ID

        backend_dict = backends.get_backend(service)  # type: ignore[call-overload]
        regions = backend_dict[DEFAULT_ACCOUNT_ID]
        backend = regions["us-east-1"] if "us-east-1" in regions else regions["aws"]
        self.patterns = [(re.compile(url), method) for url, method in backend.urls.items()]

    def method_for(self, url: str) -> Any:
        clean = url.split("?", 1)[0]
        for pattern, method in self.patterns:
            if pattern.match(clean):
                return method
        return None


class FastPath:
    """The ``before-call`` handler; ``calls`` counts the calls it answered, ``prepared`` those
    of them answered by a handler set up without werkzeug (:mod:`.prepared_requests`)."""

    def __init__(self) -> None:
        from botocore.parsers import ResponseParserFactory

        self.hook_id = f"{HOOK_ID}-{id(self)}"  # emulators may nest: one hook each
        self._routes: dict[str, _Routes] = {}
        self._parsers = ResponseParserFactory()
        self._protocol_parsers: dict[str, Any] = {}
        self.calls = 0
        self.prepared = 0
        # Each part steps aside on its own (.fast_paths): set by installed() after its probe.
        self.use_prepared = False
        self.use_plain_json = False
        self.direct: dynamodb_direct.DirectPut | None = None  # a plain PutItem to moto's backend

    def _parser(self, protocol: str) -> Any:
        # botocore makes a parser per response; a parser keeps nothing of a parse (only its
        # timestamp and blob parsers are set, when made), so one per protocol serves every call.
        parser = self._protocol_parsers.get(protocol)
        if parser is None:
            if protocol == "json" and self.use_plain_json:
                parser = prepared_requests.plain_json_parser()
            else:
                parser = self._parsers.create_parser(protocol)
            self._protocol_parsers[protocol] = parser
        return parser

    def before_call(self, model: Any, params: dict[str, Any], **_: Any) -> Any:
        service = model.service_model.service_name
        if service not in FAST_SERVICES or (service, model.name) in SLOW_OPERATIONS:
            return None
        if self.direct is not None and service == "dynamodb":
            answer = self.direct.answer(model, params)
            if answer is not None:
                self.calls += 1
                return answer
        routes = self._routes.get(service)
        if routes is None:
            routes = self._routes[service] = _Routes(service)
        method = routes.method_for(params["url"])
        if method is None:
            return None
        self.calls += 1
        status, headers, body = self._dispatch(model, method, params)
        return self._parse(model, status, headers, body, params["url"])

    def _dispatch(
        self, model: Any, method: Any, params: dict[str, Any]
    ) -> tuple[int, dict[str, Any], Any]:
        # As moto's BotocoreStubber.process_request does once it has found ``method``; for a
        # JSON request to a response class, without the werkzeug round trip (prepared_requests).
        from moto.core.exceptions import HTTPException
        from moto.core.request import Request
        from moto.core.responses import BaseResponse

        handler_class = getattr(method, "__self__", None)
        try:
            if (
                self.use_prepared
                and isinstance(handler_class, type)
                and issubclass(handler_class, BaseResponse)
                and getattr(method, "__func__", None) is BaseResponse.dispatch.__func__
            ):
                handler = prepared_requests.prepared(handler_class, model, params)
                if handler is not None:
                    self.prepared += 1
                    return handler.call_action()
            body = params.get("body")
            if isinstance(body, dict):  # botocore leaves an empty body as {} for some protocols
                body = b""
            request = Request.from_primitives(
                params["method"], params["url"], params["headers"], body
            )
            return method(request, request.raw_url, request.headers)
        except HTTPException as exc:
            return exc.code, exc.get_headers(), exc.get_body()

    def _parse(self, model: Any, status: int, headers: Any, body: Any, url: str) -> Any:
        # botocore's Endpoint._do_get_response, from the HTTP response on.
        from botocore.awsrequest import AWSResponse
        from botocore.endpoint import Endpoint, convert_to_response_dict
        from moto.core.botocore_stubber import MockRawResponse

        http = AWSResponse(url, status, headers, MockRawResponse(body or b""))
        response_dict = convert_to_response_dict(http, model)
        service_model = model.service_model
        parser = self._parser(prepared_requests.protocol_of(service_model))
        parsed = parser.parse(response_dict, model.output_shape)
        if http.status_code >= 300:
            Endpoint._add_modeled_error_fields(None, response_dict, parsed, model, parser)  # type: ignore[arg-type]
            code = parsed.get("Error", {}).get("Code")
            if _retried(code, http.status_code):
                raise FastPathError(
                    f"{service_model.service_name}:{model.name} answered {http.status_code} "
                    f"{code}, which botocore would retry: keep this operation on the slow path"
                )
        if "ResponseMetadata" in parsed:
            parsed["ResponseMetadata"]["RetryAttempts"] = 0
        return http, parsed


def _retried(code: str | None, status: int) -> bool:
    """Whether botocore's standard retry mode would retry this error (its own code lists)."""
    from botocore.retries.standard import ThrottledRetryableChecker, TransientRetryableChecker

    return (
        status >= 500
        or status == 429
        or code in ThrottledRetryableChecker._THROTTLED_ERROR_CODES
        or code in TransientRetryableChecker._TRANSIENT_ERROR_CODES
    )


# What each part relies on, beyond what moto's own stubber uses too (.fast_paths).
DISPATCH_NEEDS = (
    "moto.backends:get_backend",
    "moto.core.request:Request.from_primitives",
    "moto.core.responses:BaseResponse.dispatch",
    "moto.core.exceptions:HTTPException",
    "moto.core.botocore_stubber:MockRawResponse",
    "botocore.endpoint:convert_to_response_dict",
    "botocore.endpoint:Endpoint._add_modeled_error_fields",
)
PREPARED_NEEDS = (
    "moto.core.responses:BaseResponse.call_action",
    "moto.core.responses:BaseResponse.get_current_account",
    "moto.core.responses:BaseResponse.get_access_key",
    "moto.iam.models:mark_account_as_visited",
    "moto.utilities.utils:get_partition",
)
PLAIN_JSON_NEEDS = (
    "botocore.parsers:JSONParser._handle_json_body",
    "botocore.parsers:JSONParser._parse_body_as_json",
)


@contextmanager
def installed(session: Any) -> Iterator[FastPath]:
    """Answer the fast services' calls of clients created from ``session`` while the block runs
    (clients made before are not affected, as with :meth:`.iam.Authorizer.installed`). Each
    part is used only if wanted and if moto is as it expects (:mod:`.fast_paths`); the dispatch
    itself is probed first, then the prepared handler and the plain JSON parse on top of it."""
    from moto.core import responses

    fast = FastPath()
    if not fast_paths.usable("dispatch", *DISPATCH_NEEDS):
        yield fast
        return
    session.events.register_last("before-call", fast.before_call, fast.hook_id)
    _ACTIVE.add(fast.hook_id)
    try:
        with _method_names_cached(responses):
            if fast_paths.probe("dispatch", lambda: _agrees(session, fast, "calls")):
                if fast_paths.usable("prepared", *PREPARED_NEEDS):
                    fast.use_prepared = True
                    fast.use_prepared = fast_paths.probe(
                        "prepared", lambda: _agrees(session, fast, "prepared")
                    )
                if fast_paths.usable("json-parse", *PLAIN_JSON_NEEDS):
                    fast.use_plain_json = True
                    fast._protocol_parsers.clear()
                    fast.use_plain_json = fast_paths.probe(
                        "json-parse", lambda: _agrees(session, fast, "calls")
                    )
                    fast._protocol_parsers.clear()
                if fast_paths.proven(
                    "dynamodb-put", dynamodb_direct.PROVEN_SOURCES, *dynamodb_direct.NEEDS
                ):
                    fast.direct = dynamodb_direct.DirectPut(fast._parse)
                    direct = fast.direct
                    if not fast_paths.probe(
                        "dynamodb-put", lambda: _agrees(session, direct, "calls", PUT_PROBE_CALLS)
                    ):
                        fast.direct = None
            else:
                session.events.unregister("before-call", unique_id=fast.hook_id)
            yield fast
    finally:
        _ACTIVE.discard(fast.hook_id)
        session.events.unregister("before-call", unique_id=fast.hook_id)


@contextmanager
def _method_names_cached(responses: Any) -> Iterator[None]:
    """moto lists a response class's methods with ``inspect.getmembers`` on every call: kept
    per class (only where moto still has that function)."""
    if fast_paths.missing("moto.core.responses:method_names_from_class") is not None:
        yield
        return
    original = responses.method_names_from_class
    names: dict[type, list[str]] = {}

    def cached_method_names(clazz: Any) -> list[str]:
        found = names.get(clazz)
        if found is None:
            found = names[clazz] = original(clazz)
        return found

    with mock.patch.object(responses, "method_names_from_class", cached_method_names):
        yield


# The probe: calls that change nothing, answered both ways, must agree (ResponseMetadata aside).
PROBE_CALLS = (
    ("dynamodb", "list_tables", {}),
    ("dynamodb", "describe_table", {"TableName": "snapcdc-fast-path-probe"}),
    ("kinesis", "list_streams", {}),
    ("lambda", "list_functions", {}),
)


# A PutItem to a table that is not there: it fails, and writes nothing, either way.
PUT_PROBE_CALLS = (
    ("dynamodb", "put_item", {"TableName": "snapcdc-fast-path-probe", "Item": {"pk": {"S": "p"}}}),
)


def _agrees(
    session: Any, counted: Any, counter: str, calls: tuple[Any, ...] = PROBE_CALLS
) -> str | None:
    """``None`` if the probe ``calls`` answer alike through the fast path and through moto's
    stubber (``counter``, an attribute of ``counted``, must count the fast answers: the part
    probed took them)."""
    from botocore.exceptions import ClientError

    def outcome(client: Any, operation: str, params: dict[str, Any]) -> Any:
        try:
            answer = getattr(client, operation)(**params)
        except ClientError as exc:  # a modelled error is an answer too; anything else raises
            answer = {"Error": exc.response.get("Error")}
        answer.pop("ResponseMetadata", None)
        return answer

    for service, operation, params in calls:
        client = session.client(service, region_name="us-east-1")
        before = getattr(counted, counter)
        fast_answer = outcome(client, operation, params)
        if getattr(counted, counter) == before:
            return f"{service}:{operation} did not take the fast path"
        slow_answer = outcome(
            on_slow_path(session.client(service, region_name="us-east-1")), operation, params
        )
        if fast_answer != slow_answer:
            return (
                f"{service}:{operation} answered {fast_answer!r}, moto's own path {slow_answer!r}"
            )
    return None


_ACTIVE: set[str] = set()


def on_slow_path(client: Any) -> Any:
    """``client`` without any fast path: its calls go through moto's stubber (tests compare)."""
    for hook_id in list(_ACTIVE):
        client.meta.events.unregister("before-call", unique_id=hook_id)
    return client
