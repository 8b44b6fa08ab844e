"""A decoded request replayed through an in-process client of the emulation; its answer as the
emulation produced it.

Why replay rather than hand the request to moto's own server: the emulation's behaviour is
installed mostly where botocore clients make calls (IAM is decided in a ``before-parameter-build``
hook, with the calling role as a context variable), and a request moto's server answers never
passes there. Replayed through a client of this process, a served call is validated by
botocore's model and authorised like the stack's own calls, then answered by moto and the
emulation's bridges; the raw HTTP answer the client received (status, headers, body, in the
protocol the call was made in) is what goes back to the caller.

Who calls: an access key that ``sts:AssumeRole`` issued acts as that role (its policies as
deployed decide every call, as the emulation decides the stack's own); any other key is the
account's administrator and is not checked, like the root user. IAM users' keys are refused:
the emulation evaluates role policies only. Signatures are not verified (any secret will do).

Requests from concurrent clients: moto's backends are not safe for concurrent mutation, so a
call that may change state runs alone (a writer's lock), while reads (``Get*``, ``List*``,
``Describe*``, ``Head*``, ``Scan``, ``Query``...) run side by side.

>>> is_read_only("GetQueryExecution"), is_read_only("PutObject"), is_read_only("Query")
(True, False, True)
>>> path_style_template_url("http://127.0.0.1:4566/bucket/a/b.template")
'https://s3.amazonaws.com/bucket/a/b.template'
"""

from __future__ import annotations

import contextvars
import copy
import functools
import ipaddress
import logging
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError
from botocore.model import ServiceModel
from botocore.validate import validate_parameters

from snapcdc_local.emulator import iam
from snapcdc_local.emulator.iam_actions import UnmappedCall
from snapcdc_local.endpoint.decode import (
    SIGNING_NAMES,
    BadRequest,
    Call,
    Request,
    credential_scope,
    decode_aws_chunked,
    find_call,
    guess_protocol,
)
from snapcdc_local.endpoint.errors import Answer, error_answer

log = logging.getLogger(__name__)

READ_ONLY_PREFIXES = (
    "Get", "List", "Describe", "Head", "Scan", "Query", "BatchGet", "Lookup", "Search",
    "Validate",
)  # fmt: skip
# CloudFormation calls after which the emulation applies to the stacks what moto's
# CloudFormation leaves out (bucket notifications, event source mappings to poll).
STACK_CHANGES = ("ExecuteChangeSet", "CreateStack", "UpdateStack", "DeleteStack")
TEMPLATE_URL_OPERATIONS = (
    "CreateChangeSet", "CreateStack", "UpdateStack", "GetTemplateSummary", "ValidateTemplate",
    "EstimateTemplateCost",
)  # fmt: skip
# Response headers that belong to one HTTP connection, not to the answer.
HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive"}
HOOK_ID = "snapcdc-served-iam"
# Services whose requests may be signed for us-east-1 whatever the region in use (IAM is global;
# STS has a global endpoint, which older SDKs use by default).
GLOBAL_SERVICES = ("iam", "sts")

_ANSWERED: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar(
    "snapcdc_served_answer", default=None
)


def is_read_only(operation: str) -> bool:
    return operation.startswith(READ_ONLY_PREFIXES)


def path_style_template_url(url: str) -> str:
    """A TemplateURL of this endpoint (``http://127.0.0.1:PORT/bucket/key``, the path-style
    URL ``aws cloudformation deploy --s3-bucket`` builds from the S3 endpoint) as an S3 URL
    moto reads (moto takes the first label of any other host for the bucket)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host.endswith(".localhost"):
        bucket, key = host.removesuffix(".localhost"), parts.path.lstrip("/")
    elif host == "localhost" or _is_ip(host):
        bucket, _, key = parts.path.lstrip("/").partition("/")
    else:
        return url
    return f"https://s3.amazonaws.com/{bucket}/{key}"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class ReadWriteLock:
    """Many readers or one writer; a waiting writer holds back new readers."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._waiting_writers = 0

    def acquire(self, write: bool) -> None:
        with self._cond:
            if write:
                self._waiting_writers += 1
                self._cond.wait_for(lambda: not self._writing and self._readers == 0)
                self._waiting_writers -= 1
                self._writing = True
            else:
                self._cond.wait_for(lambda: not self._writing and self._waiting_writers == 0)
                self._readers += 1

    def release(self, write: bool) -> None:
        with self._cond:
            if write:
                self._writing = False
            else:
                self._readers -= 1
            self._cond.notify_all()


class _ProtocolLoader:
    """botocore's loader, with one service's model speaking one given protocol."""

    def __init__(self, loader: Any, service: str, protocol: str) -> None:
        self._loader, self._service, self._protocol = loader, service, protocol

    def load_service_model(self, service_name: str, type_name: str, api_version: Any = None) -> Any:
        model = self._loader.load_service_model(service_name, type_name, api_version)
        if service_name == self._service and type_name == "service-2":
            metadata = {**model["metadata"], "protocol": self._protocol}
            metadata["protocols"] = [self._protocol]
            model = {**model, "metadata": metadata}
        return model

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class Replayer:
    """Answers decoded requests with the emulation; see the module docstring.

    ``authorizer`` decides calls of assumed roles; ``athena`` answers Athena requests as they
    arrived (``(method, url, headers, body) -> (status, headers, body)``), or None to replay
    them like any other; ``stacks_changed`` runs after a stack was created, updated or deleted
    and returns lines worth telling the operator.
    """

    def __init__(
        self,
        authorizer: iam.Authorizer,
        *,
        loader: Any,
        athena: Callable[..., tuple[int, dict[str, str], bytes]] | None = None,
        stacks_changed: Callable[[], list[str]] | None = None,
        say: Callable[[str], None] = print,
        region: str = "us-east-1",
    ) -> None:
        self.region = region
        self.authorizer = authorizer
        self.loader = loader
        self.athena = athena
        self.stacks_changed = stacks_changed
        self.say = say
        self.lock = ReadWriteLock()
        self._sessions: dict[tuple[str, str] | None, Any] = {}
        self._clients: dict[tuple[str, ...], Any] = {}
        self._setup = threading.Lock()

    # -- models and clients ----------------------------------------------------------------

    @functools.cache  # noqa: B019 - one replayer per process; the models never change
    def model(self, name: str) -> ServiceModel | None:
        try:
            loaded = self.loader.load_service_model(name, "service-2")
        except Exception:  # no such service in this botocore
            return None
        # A copy: creating a client edits the loaded model in place (S3's requestUri loses
        # its {Bucket} label), and requests are matched against the model as published.
        return ServiceModel(copy.deepcopy(loaded), name)

    def models_for(self, signing_name: str) -> list[ServiceModel]:
        names = SIGNING_NAMES.get(signing_name, (signing_name,))
        return [m for m in (self.model(n) for n in names) if m is not None]

    def _session(self, service: str, protocol: str) -> Any:
        model = self.model(service)
        native = model is not None and model.resolved_protocol == protocol
        key = None if native else (service, protocol)
        if key not in self._sessions:
            session = botocore.session.get_session()
            loader = self.loader if native else _ProtocolLoader(self.loader, service, protocol)
            session.register_component("data_loader", loader)
            session.register(
                "before-parameter-build", self.authorizer.before_parameter_build, HOOK_ID
            )
            session.register("after-call", _keep_answer)
            self._sessions[key] = session
        return self._sessions[key]

    def client(self, call: Call) -> Any:
        key = (call.service, call.protocol, call.region, call.access_key, call.session_token or "")
        with self._setup:
            if key not in self._clients:
                session = self._session(call.service, call.protocol)
                self._clients[key] = session.create_client(
                    call.service,
                    region_name=call.region,
                    aws_access_key_id=call.access_key,
                    aws_secret_access_key="served",  # noqa: S106 - signatures are not checked
                    aws_session_token=call.session_token,
                    config=Config(
                        retries={"total_max_attempts": 1},
                        request_checksum_calculation="when_required",
                        response_checksum_validation="when_required",
                    ),
                )
            return self._clients[key]

    # -- answering -------------------------------------------------------------------------

    def answer(self, request: Request, url: str) -> Answer:
        """The answer to one request, an AWS-shaped error if it cannot be served."""
        protocol = guess_protocol(request)
        protocol = "rest-xml" if protocol == "rest" else protocol
        try:
            scope = credential_scope(request)
            if scope.region != self.region and scope.signing_name not in GLOBAL_SERVICES:
                raise BadRequest(
                    "InvalidClientTokenId",
                    f"this endpoint serves region {self.region}; the request is signed for "
                    f"{scope.region} (set AWS_REGION={self.region})",
                    403,
                )
            _decode_body(request)
            principal = principal_of(scope.access_key)
            if scope.signing_name == "athena" and self.athena is not None:
                return self._athena(request, url, principal)
            models = self.models_for(scope.signing_name)
            if not models:
                raise BadRequest(
                    "UnrecognizedClientException",
                    f"this endpoint serves no service signing as {scope.signing_name!r}",
                )
            if protocol == "rest-xml" and not any(
                "rest-xml" in (m.metadata.get("protocols") or [m.metadata["protocol"]])
                for m in models
            ):
                protocol = "rest-json"
            if scope.signing_name == "s3":
                _path_style(request)
            call = find_call(request, models, scope)
            protocol = call.protocol
            adjust(call)
            return self._replay(call, principal)
        except BadRequest as exc:
            return error_answer(protocol, exc.code, exc.message, exc.status)
        except _Refused as exc:
            return error_answer(protocol, exc.code, str(exc), exc.status)

    def _athena(self, request: Request, url: str, principal: iam.Principal | None) -> Answer:
        """An Athena request, to the emulation's Athena front as it arrived (json or rest-json),
        once the caller's role may make it."""
        from snapcdc_local.emulator.athena_api import decode
        from snapcdc_local.emulator.athena_executions import AthenaRequestError

        protocol = "json" if "x-amz-target" in request.headers else "rest-json"
        try:
            operation, params, protocol = decode(request.method, url, request.headers, request.body)
        except AthenaRequestError:
            operation, params = "", {}  # the front answers it, in its words
        model = self.model("athena")
        if operation and model is not None and operation in model.operation_names:
            try:
                with iam.acting(principal):
                    self.authorizer.before_parameter_build(
                        params=params, model=model.operation_model(operation)
                    )
            except ClientError as exc:
                error = exc.response["Error"]
                return error_answer(protocol, error["Code"], error["Message"], 400)
            except UnmappedCall as exc:
                return error_answer(protocol, "AccessDeniedException", str(exc), 400)
        write = not is_read_only(operation)
        self.lock.acquire(write)
        try:
            with iam.acting(principal):
                status, answer_headers, body = self.athena(  # type: ignore[misc]
                    request.method, url, dict(request.headers), request.body
                )
        finally:
            self.lock.release(write)
        return status, list(answer_headers.items()), body

    def _replay(self, call: Call, principal: iam.Principal | None) -> Answer:
        client = self.client(call)
        name = call.operation.name
        write = not is_read_only(name)
        box: list[Any] = []
        token = _ANSWERED.set(box)
        try:
            # First: botocore resolves the endpoint from some parameters before it validates.
            validate_parameters(
                call.params, client.meta.service_model.operation_model(name).input_shape
            )
        except ParamValidationError as exc:
            return _invalid(call, exc)
        self.lock.acquire(write)
        try:
            with iam.acting(principal):
                try:
                    client._make_api_call(name, call.params)
                except ClientError as exc:
                    if not box:  # refused before a request was made (emulated IAM)
                        return _client_error_answer(call, exc)
                except UnmappedCall as exc:
                    return _denied(call, str(exc))
                except BotoCoreError as exc:
                    if not box:  # the request could not be made of these parameters
                        return _invalid(call, exc)
                    raise
            changed = call.service == "cloudformation" and name in STACK_CHANGES
            if changed and box and box[-1].status_code < 300 and self.stacks_changed:
                for line in self.stacks_changed():
                    self.say(line)
        except Exception as exc:  # the emulation broke on this call: say so, keep serving
            if box:  # answered, but this botocore could not read the answer: the caller may
                return _raw_answer(box[-1], call.operation.http.get("method") == "HEAD")
            log.exception("%s:%s failed", call.service, name)
            return error_answer(
                call.protocol,
                "InternalFailure",
                f"the emulation failed on {call.service}:{name}: {type(exc).__name__}: {exc}",
                500,
            )
        finally:
            self.lock.release(write)
            _ANSWERED.reset(token)
        return _raw_answer(box[-1], call.operation.http.get("method") == "HEAD")


class _Refused(Exception):
    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code, self.status = code, status


def _keep_answer(http_response: Any = None, **_: Any) -> None:
    box = _ANSWERED.get()
    if box is not None and http_response is not None:
        box.append(http_response)


def _raw_answer(http: Any, head: bool) -> Answer:
    body = b"" if head else http.content
    headers = [(k, v) for k, v in http.headers.items() if k.lower() not in HOP_BY_HOP]
    length = http.headers.get("content-length") if head else None
    headers.append(("Content-Length", str(length if length is not None else len(body))))
    return http.status_code, headers, body


def _invalid(call: Call, exc: Exception) -> Answer:
    code = "ValidationError" if call.protocol == "query" else "ValidationException"
    if call.service == "s3":
        code = "InvalidArgument"
    return error_answer(call.protocol, code, " ".join(str(exc).split()), 400)


def _client_error_answer(call: Call, exc: ClientError) -> Answer:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
    return error_answer(
        call.protocol, error.get("Code", "ClientError"), error.get("Message", str(exc)), status
    )


def _denied(call: Call, message: str) -> Answer:
    code = iam.ACCESS_DENIED_CODE.get(call.service, "AccessDeniedException")
    status = iam.ACCESS_DENIED_STATUS.get(call.service, 400)
    return error_answer(call.protocol, code, message, status)


def principal_of(access_key: str) -> iam.Principal | None:
    """The role an access key acts as (None: the administrator, unchecked)."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    for account_id, account in list(iam_backends.items()):
        for partition in ("aws",):
            key = account[partition].access_keys.get(access_key)
            if key is None:
                continue
            role_arn = getattr(key, "role_arn", None)
            if not role_arn:
                raise _Refused(
                    "InvalidClientTokenId",
                    f"access key {access_key} belongs to an IAM user; this endpoint evaluates "
                    "role policies only: use an assumed role's credentials (sts assume-role), "
                    "or any other key to act as the account's administrator",
                    403,
                )
            assumed = sts_backends[account_id][partition].get_assumed_role_from_access_key(
                access_key
            )
            return iam.Principal(role_arn, assumed.session_name if assumed else "served")
    return None


def _path_style(request: Request) -> None:
    """``BUCKET.localhost`` (botocore's virtual-host addressing for a ``localhost`` endpoint)
    as the path-style request it stands for."""
    host = request.headers.get("host", "").rsplit(":", 1)[0]
    if host.endswith(".localhost"):
        request.path = f"/{host.removesuffix('.localhost')}{request.path or '/'}"


def _decode_body(request: Request) -> None:
    """Undo SigV4 streaming (``aws-chunked``): the payload as the caller's SDK meant it."""
    encoding = request.headers.get("content-encoding", "")
    streaming = request.headers.get("x-amz-content-sha256", "").startswith("STREAMING-")
    if "aws-chunked" not in encoding and not streaming:
        return
    request.body, _ = decode_aws_chunked(request.body)
    rest = [e.strip() for e in encoding.split(",") if e.strip() and e.strip() != "aws-chunked"]
    if rest:
        request.headers["content-encoding"] = ",".join(rest)
    else:
        request.headers.pop("content-encoding", None)
    request.headers["content-length"] = str(len(request.body))


def adjust(call: Call) -> None:
    """What a request means to the emulation that its wire form does not say alike."""
    params = call.params
    if call.service == "s3":
        # The client computes the length of what it sends, which is the decoded payload.
        params.pop("ContentLength", None)
        # The SDK URL-encodes CopySource itself; it arrives encoded.
        if isinstance(params.get("CopySource"), str):
            params["CopySource"] = unquote(params["CopySource"])
    template_url = call.operation.name in TEMPLATE_URL_OPERATIONS
    if call.service == "cloudformation" and template_url and "TemplateURL" in params:
        params["TemplateURL"] = path_style_template_url(params["TemplateURL"])
