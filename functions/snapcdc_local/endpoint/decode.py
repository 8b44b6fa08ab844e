"""An incoming AWS request decoded with botocore's model: service, operation, parameters.

The service comes from the SigV4 credential scope (``Credential=KEY/DATE/REGION/SERVICE/...``,
in the ``Authorization`` header or a presigned URL's ``X-Amz-Credential``), named by its signing
name (``states`` is Step Functions, ``monitoring`` CloudWatch). The protocol the request speaks
decides how the operation is found: ``X-Amz-Target`` (json), the ``Smithy-Protocol`` header and
the ``/service/S/operation/O`` path (rpc-v2-cbor), the form's ``Action`` (query), or the method
and path matched against every operation's ``requestUri`` (rest-json, rest-xml). The parameters
are read back from where botocore's serializer put them (body members, URI labels, query
string, headers, the payload) and converted with botocore's own parsers, so that replaying them
through a client of the same protocol sends what the caller sent.

>>> match_template("/{Bucket}/{Key+}", "/b/a%20b/c.csv.gz")
{'Bucket': 'b', 'Key': 'a b/c.csv.gz'}
>>> decode_aws_chunked(b"3;chunk-signature=x\\r\\nabc\\r\\n0\\r\\nx-amz-trailer-a:b\\r\\n\\r\\n")
(b'abc', {'x-amz-trailer-a': 'b'})
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from botocore import parsers
from botocore.model import OperationModel, ServiceModel, Shape

# Signing names that are not the botocore service's name (the others are the same).
SIGNING_NAMES: dict[str, tuple[str, ...]] = {
    "states": ("stepfunctions",),
    "monitoring": ("cloudwatch",),
    "dynamodb": ("dynamodb", "dynamodbstreams"),
    "s3": ("s3", "s3control"),
    "email": ("ses", "sesv2"),
    "elasticloadbalancing": ("elb", "elbv2"),
    "execute-api": ("apigateway",),
}
_CREDENTIAL = re.compile(r"^([^/\s,]+)/(\d{8})/([^/\s,]+)/([^/\s,]+)/aws4_request$")
_LABEL = re.compile(r"(\{[^}]+\})")
Literals = tuple[tuple[str, str | None], ...]  # a requestUri's query: name and value (or None)


class BadRequest(Exception):
    """A request the endpoint answers itself with an AWS-shaped error."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass
class Request:
    """One HTTP request as it arrived; header names in lower case."""

    method: str
    path: str  # percent-encoded, without the query string
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes = b""

    def query_value(self, name: str) -> str | None:
        return next((v for k, v in self.query if k == name), None)


@dataclass
class Call:
    """What the request asks for, ready to be replayed through a client."""

    service: str  # botocore's service name
    region: str
    access_key: str
    session_token: str | None
    protocol: str
    operation: OperationModel
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scope:
    access_key: str
    region: str
    signing_name: str


def credential_scope(request: Request) -> Scope:
    """The SigV4 credential scope; :class:`BadRequest` for an unsigned or other request."""
    auth = request.headers.get("authorization", "")
    if auth:
        algorithm, _, rest = auth.partition(" ")
        if algorithm != "AWS4-HMAC-SHA256":
            raise BadRequest(
                "IncompleteSignature",
                f"Authorization uses {algorithm or 'no algorithm'}; this endpoint accepts "
                "AWS Signature Version 4 (AWS4-HMAC-SHA256)",
            )
        fields = dict(part.strip().partition("=")[::2] for part in rest.split(",") if "=" in part)
        credential = fields.get("Credential", "")
    else:
        credential = request.query_value("X-Amz-Credential") or ""
        if not credential:
            raise BadRequest(
                "MissingAuthenticationToken",
                "Request is missing Authentication Token: sign it with AWS Signature Version 4 "
                "(any access key and secret will do)",
                403,
            )
    match = _CREDENTIAL.match(credential)
    if not match:
        raise BadRequest(
            "IncompleteSignature",
            f"Credential {credential!r} is not KEY/YYYYMMDD/REGION/SERVICE/aws4_request",
        )
    return Scope(match.group(1), match.group(3), match.group(4))


def guess_protocol(request: Request) -> str:
    """The protocol a request speaks, from its shape alone (``rest`` for rest-json/-xml)."""
    if request.headers.get("smithy-protocol", "").lower() == "rpc-v2-cbor":
        return "smithy-rpc-v2-cbor"
    if "x-amz-target" in request.headers:
        return "json"
    ctype = request.headers.get("content-type", "").lower()
    if request.method == "POST" and ctype.startswith("application/x-www-form-urlencoded"):
        return "query"
    if request.method == "GET" and request.query_value("Action") is not None:
        return "query"
    return "rest"


def protocols_of(model: ServiceModel) -> list[str]:
    return list(model.metadata.get("protocols") or [model.metadata["protocol"]])


# -- operations ------------------------------------------------------------------------------


def find_call(request: Request, models: list[ServiceModel], scope: Scope) -> Call:
    """Service model, operation and parameters of ``request`` among ``models`` (the services
    that sign with the scope's name)."""
    kind = guess_protocol(request)
    if kind == "json":
        target = request.headers["x-amz-target"]
        prefix, _, name = target.rpartition(".")
        found = _by_prefix(models, prefix, name, "json")
        if found is None:
            raise BadRequest("UnknownOperationException", f"unknown operation {target!r}")
        model, protocol = found
        params = json_params(model.operation_model(name), request.body)
    elif kind == "smithy-rpc-v2-cbor":
        parts = request.path.strip("/").split("/")
        if len(parts) != 4 or parts[0] != "service" or parts[2] != "operation":
            raise BadRequest("UnknownOperationException", f"unknown operation {request.path}")
        name = parts[3]
        found = _by_prefix(models, parts[1], name, kind)
        if found is None:
            raise BadRequest("UnknownOperationException", f"unknown operation {request.path}")
        model, protocol = found
        params = cbor_params(model.operation_model(name), request.body)
    elif kind == "query":
        form = query_form(request)
        name = form.get("Action", "")
        model = next(
            (m for m in models if name in m.operation_names and "query" in protocols_of(m)), None
        )
        if model is None:
            raise BadRequest("InvalidAction", f"unknown Action {name!r}")
        protocol = "query"
        params = query_params(model.operation_model(name).input_shape, form)
    else:
        model, name, labels = rest_operation(request, models)
        protocol = next(p for p in protocols_of(model) if p.startswith("rest-"))
        params = rest_params(model.operation_model(name), protocol, request, labels)
    return Call(
        service=model.service_name,
        region=scope.region,
        access_key=scope.access_key,
        session_token=request.headers.get("x-amz-security-token")
        or request.query_value("X-Amz-Security-Token"),
        protocol=protocol,
        operation=model.operation_model(name),
        params=params,
    )


def _by_prefix(
    models: list[ServiceModel], prefix: str, name: str, protocol: str
) -> tuple[ServiceModel, str] | None:
    for model in models:
        if model.metadata.get("targetPrefix") == prefix and name in model.operation_names:
            if protocol not in protocols_of(model):
                raise BadRequest(
                    "UnknownOperationException",
                    f"{model.service_name} is not served in the {protocol} protocol by this "
                    f"endpoint's botocore (it speaks {', '.join(protocols_of(model))})",
                )
            return model, protocol
    return None


@functools.cache
def _compiled(request_uri: str) -> tuple[re.Pattern[str], tuple[str, ...], Literals]:
    path, _, query = request_uri.partition("?")
    pattern, labels = "", []
    for piece in _LABEL.split(path):
        if piece.startswith("{"):
            name = piece[1:-1]
            greedy = name.endswith("+")
            labels.append(name.rstrip("+"))
            pattern += f"(?P<g{len(labels) - 1}>{'.+' if greedy else '[^/]+'})"
        else:
            pattern += re.escape(piece)
    literals = tuple(
        (k, v if sep else None) for k, sep, v in (p.partition("=") for p in query.split("&") if p)
    )
    return re.compile("^" + pattern.rstrip("/") + "/?$"), tuple(labels), literals


def match_template(request_uri: str, path: str) -> dict[str, str] | None:
    """The URI labels of ``path`` if it matches the operation's ``requestUri`` path."""
    regex, labels, _ = _compiled(request_uri)
    found = regex.match(path)
    if not found:
        return None
    return {label: unquote(found.group(f"g{i}")) for i, label in enumerate(labels)}


def rest_operation(
    request: Request, models: list[ServiceModel]
) -> tuple[ServiceModel, str, dict[str, str]]:
    """The operation whose method, path and query literals match, the most specific first: the
    one with the most query literals, then with the most of its required query and header
    members present (``UploadPart`` over ``PutObject``), then the longest template."""
    path = request.path or "/"
    present_query = {k for k, _ in request.query}
    best: tuple[tuple[int, int, int], ServiceModel, str, dict[str, str]] | None = None
    for model in models:
        if not any(p.startswith("rest-") for p in protocols_of(model)):
            continue
        for name in model.operation_names:
            http = model.operation_model(name).http
            if http.get("method", "POST") != request.method:
                continue
            uri = http.get("requestUri", "/")
            labels = match_template(uri, path)
            if labels is None:
                continue
            _, _, literals = _compiled(uri)
            if any(
                k not in present_query or (v is not None and request.query_value(k) != v)
                for k, v in literals
            ):
                continue
            shape = model.operation_model(name).input_shape
            required = _required_locations(shape) if shape else []
            if any(not _present(request, loc, wire) for loc, wire in required):
                continue
            score = (len(literals), len(required), len(uri))
            if request.query_value("x-id") == name:
                score = (99, 0, 0)
            if best is None or score > best[0]:
                best = (score, model, name, labels)
    if best is None:
        raise BadRequest(
            "UnknownOperationException",
            f"no operation of {'/'.join(m.service_name for m in models)} matches "
            f"{request.method} {path}",
        )
    return best[1], best[2], best[3]


def _required_locations(shape: Shape) -> list[tuple[str, str]]:
    required = []
    for name in shape.required_members:
        member = shape.members[name]
        location = member.serialization.get("location")
        if location in ("querystring", "header"):
            required.append((location, member.serialization.get("name", name)))
    return required


def _present(request: Request, location: str, wire: str) -> bool:
    if location == "header":
        return wire.lower() in request.headers
    return request.query_value(wire) is not None


# -- parameters ------------------------------------------------------------------------------


def _serialization_error(what: str, exc: Exception) -> BadRequest:
    return BadRequest("SerializationException", f"cannot read the {what}: {exc}")


def json_params(operation: OperationModel, body: bytes) -> dict[str, Any]:
    shape = operation.input_shape
    if shape is None:
        return {}
    try:
        value = json.loads(body or b"{}")
    except ValueError as exc:
        raise _serialization_error("JSON body", exc) from None
    if not isinstance(value, dict):
        raise BadRequest("SerializationException", "the JSON body must be an object")
    try:
        return parsers.JSONParser()._parse_shape(shape, value) or {}
    except (ValueError, TypeError, AttributeError) as exc:
        raise _serialization_error("JSON body", exc) from None


def cbor_params(operation: OperationModel, body: bytes) -> dict[str, Any]:
    shape = operation.input_shape
    if shape is None or not body:
        return {}
    parser = parsers.RpcV2CBORParser()
    try:
        return parser._parse_shape(shape, parser._initial_body_parse(body)) or {}
    except Exception as exc:  # any malformed CBOR
        raise _serialization_error("CBOR body", exc) from None


def query_form(request: Request) -> dict[str, str]:
    pairs = list(request.query)
    if request.method == "POST":
        try:
            pairs += parse_qsl(request.body.decode(), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError as exc:
            raise _serialization_error("form body", exc) from None
    return dict(pairs)


def query_params(shape: Shape | None, form: Mapping[str, str]) -> dict[str, Any]:
    """Parameters from a query-protocol form (``Parameters.member.1.ParameterKey=...``)."""
    if shape is None:
        return {}
    prefixes = {key.rsplit(".", n)[0] for key in form for n in range(key.count(".") + 1)}
    try:
        return _query_value(parsers.QueryParser(), shape, "", form, prefixes) or {}
    except (ValueError, TypeError) as exc:
        raise _serialization_error("form", exc) from None


def _query_value(
    parser: Any, shape: Shape, prefix: str, form: Mapping[str, str], prefixes: set[str]
) -> Any:
    kind = shape.type_name
    if kind == "structure":
        if prefix and prefix not in prefixes:
            return None
        out = {}
        for name, member in shape.members.items():
            wire = member.serialization.get("name", name)
            name_here = f"{prefix}.{wire}" if prefix else wire
            value = _query_value(parser, member, name_here, form, prefixes)
            if value is not None:
                out[name] = value
        return out
    if kind == "list":
        if form.get(prefix) == "":  # botocore sends "Name=" for an empty list
            return []
        flat = shape.serialization.get("flattened")
        base = prefix if flat else f"{prefix}.{shape.member.serialization.get('name', 'member')}"
        items, index = [], 1
        while f"{base}.{index}" in prefixes:
            items.append(_query_value(parser, shape.member, f"{base}.{index}", form, prefixes))
            index += 1
        return items or None
    if kind == "map":
        flat = shape.serialization.get("flattened")
        base = prefix if flat else f"{prefix}.entry"
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        out, index = {}, 1
        while f"{base}.{index}.{key_name}" in form:
            key = form[f"{base}.{index}.{key_name}"]
            out[key] = _query_value(
                parser, shape.value, f"{base}.{index}.{value_name}", form, prefixes
            )
            index += 1
        return out or None
    if prefix not in form:
        return None
    return parser._parse_shape(shape, form[prefix])


def rest_params(
    operation: OperationModel, protocol: str, request: Request, labels: dict[str, str]
) -> dict[str, Any]:
    shape = operation.input_shape
    if shape is None:
        return {}
    parser = parsers.RestXMLParser() if protocol == "rest-xml" else parsers.RestJSONParser()
    params: dict[str, Any] = {}
    claimed = {k for k, _ in _compiled(operation.http.get("requestUri", "/"))[2]}
    query_map = None
    try:
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if location == "uri" and wire in labels:
                params[name] = parser._parse_shape(member, labels[wire])
            elif location == "querystring":
                if member.type_name == "map":
                    query_map = name
                    continue
                claimed.add(wire)
                values = [v for k, v in request.query if k == wire]
                if values and member.type_name == "list":
                    params[name] = [parser._parse_shape(member.member, v) for v in values]
                elif values:
                    params[name] = parser._parse_shape(member, values[0])
            elif location == "header" and wire.lower() in request.headers:
                params[name] = parser._parse_shape(member, request.headers[wire.lower()])
            elif location == "headers":
                prefix = wire.lower()
                found = {
                    k[len(prefix) :]: v for k, v in request.headers.items() if k.startswith(prefix)
                }
                if found:
                    params[name] = found
        if query_map:
            rest = {k: v for k, v in request.query if k not in claimed}
            if rest:
                params[query_map] = rest
        body = _body_params(parser, protocol, shape, request)
    except BadRequest:
        raise
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise _serialization_error("request", exc) from None
    for name, value in body.items():
        params.setdefault(name, value)
    return params


def _body_params(parser: Any, protocol: str, shape: Shape, request: Request) -> dict[str, Any]:
    body = request.body
    payload = shape.serialization.get("payload")
    if payload:
        member = shape.members[payload]
        if member.type_name == "blob":
            has_body = body or "content-length" in request.headers
            return {payload: body} if has_body else {}
        if member.type_name == "string":
            return {payload: body.decode()} if body else {}
        if not body.strip():
            return {}
        return {payload: parser._parse_shape(member, _initial(parser, protocol, body))}
    if not body.strip():
        return {}
    return parser._parse_shape(shape, _initial(parser, protocol, body)) or {}


def _initial(parser: Any, protocol: str, body: bytes) -> Any:
    if protocol == "rest-xml":
        try:
            return parser._parse_xml_string_to_dom(body)
        except parsers.ResponseParserError as exc:
            raise BadRequest("MalformedXML", f"the XML body is not well-formed: {exc}") from None
    try:
        return json.loads(body)
    except ValueError as exc:
        raise _serialization_error("JSON body", exc) from None


# -- bodies ----------------------------------------------------------------------------------


def decode_aws_chunked(body: bytes) -> tuple[bytes, dict[str, str]]:
    """The payload and trailers of an ``aws-chunked`` body (SigV4 streaming upload)."""
    data, trailers, at = bytearray(), {}, 0
    while True:
        end = body.find(b"\r\n", at)
        if end < 0:
            raise BadRequest("IncompleteBody", "the aws-chunked body ends inside a chunk header")
        size_text = body[at:end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise BadRequest(
                "IncompleteBody", f"bad aws-chunked chunk size {size_text[:20]!r}"
            ) from None
        at = end + 2
        if size == 0:
            break
        if at + size > len(body):
            raise BadRequest("IncompleteBody", "the aws-chunked body is shorter than its chunks")
        data += body[at : at + size]
        at += size + 2  # the chunk's CRLF
    for line in body[at:].split(b"\r\n"):
        name, sep, value = line.decode("latin-1").partition(":")
        if sep:
            trailers[name.strip().lower()] = value.strip()
    return bytes(data), trailers
