"""IAM enforced on every AWS call the deployed stack makes, with the roles cfn.yaml deploys.

Who calls: whatever runs on behalf of a role does so inside ``acting_as(role_arn, session)``
(a context variable): a Lambda handler with its function's role (:mod:`.lambdas`), a state
machine's service integrations with its role (:mod:`.stepfunctions`), an EventBridge target
with the target's role (:mod:`.eventbridge`), an event source mapping with its function's role
(:mod:`.kinesis`), Athena with the credentials of whoever started the query (:mod:`.athena`).
Threads started, and thread-pool work submitted, while a principal acts carry that principal,
as every thread of a Lambda process has the function's credentials. Calls made outside any
principal (the tests, the uploader, the emulation's own bookkeeping) are not checked.

What a call needs: :mod:`.iam_actions` maps (service, operation, parameters) to IAM actions on
resource ARNs; :mod:`.iam_policy` evaluates the role's policies as moto's IAM holds them after
the CloudFormation deploy. A denied call raises the ``ClientError`` AWS returns
(``AccessDeniedException``; ``AccessDenied`` for S3 and SQS) with AWS's message, before the
request reaches moto. The message format is AWS's:
https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html

Decisions are cached per (role, action, resource): the consumer makes ~100,000 identical
conditional PutItems per large version.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from snapcdc_local.emulator.iam_actions import (
    Requirement,
    UnmappedCall,
    Where,
    request_context,
    requirements,
)
from snapcdc_local.emulator.iam_policy import Decision, evaluate

log = logging.getLogger(__name__)

HOOK_ID = "snapcdc-emulated-iam"
# Services whose protocol names the error AccessDenied rather than AccessDeniedException.
ACCESS_DENIED_CODE = {"s3": "AccessDenied", "sqs": "AccessDenied"}
ACCESS_DENIED_STATUS = {"s3": 403, "lambda": 403, "sqs": 403}
MISSING_OBJECT_OPERATIONS = ("GetObject", "HeadObject")


@dataclass(frozen=True)
class Principal:
    """A role acting through a session, e.g. a Lambda function's execution role.

    ``service_actions`` are actions the AWS service performs with its own authority while acting
    for the role, so they are not checked against the role (an event source mapping reads the
    stream with the function's role, but the Lambda service invokes the function itself).
    """

    role_arn: str
    session: str
    service_actions: frozenset[str] = frozenset()

    @property
    def arn(self) -> str:
        """The assumed-role ARN AWS names in an access-denied message."""
        account = self.role_arn.split(":")[4]
        role_name = self.role_arn.rsplit("/", 1)[-1]
        return f"arn:aws:sts::{account}:assumed-role/{role_name}/{self.session}"


_CURRENT: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "snapcdc_iam_principal", default=None
)


def current() -> Principal | None:
    return _CURRENT.get()


@contextmanager
def acting(principal: Principal | None) -> Iterator[Principal | None]:
    """Run the block's AWS calls as ``principal`` (unchecked when None)."""
    token = _CURRENT.set(principal)
    try:
        yield principal
    finally:
        _CURRENT.reset(token)


def acting_as(
    role_arn: str | None, session: str, service_actions: frozenset[str] = frozenset()
) -> contextlib.AbstractContextManager[Principal | None]:
    """Run the block's AWS calls as ``role_arn`` through ``session`` (unchecked when None)."""
    return acting(Principal(role_arn, session, service_actions) if role_arn else None)


# The Lambda service invokes a mapping's function itself; the function's execution role is what
# reads the stream and writes the on-failure destination, so only those calls are checked.
ESM_SERVICE_ACTIONS = frozenset({"lambda:InvokeFunction"})

# What Lambda needs of the execution role to read a Kinesis stream (SubscribeToShard only for
# enhanced fan-out consumers, which this emulation does not have): checked when a mapping is
# created, as Lambda does, so a role without them fails the deploy rather than the first batch.
# https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-create.html
ESM_KINESIS_ACTIONS = (
    "kinesis:DescribeStream",
    "kinesis:DescribeStreamSummary",
    "kinesis:GetRecords",
    "kinesis:GetShardIterator",
    "kinesis:ListShards",
)


def check_event_source_mapping(
    authorizer: Authorizer, role_arn: str, function_arn: str, stream_arn: str
) -> None:
    """Raise ValueError, worded as Lambda's refusal, if the role cannot read the stream."""
    with as_event_source_mapping(role_arn, function_arn) as principal:
        for action in ESM_KINESIS_ACTIONS:
            try:
                authorizer.require(principal, [(action, stream_arn)])
            except AccessDenied as exc:
                raise ValueError(
                    "InvalidParameterValueException: The provided execution role does not have "
                    f"permissions to call {action.split(':', 1)[1]} on Kinesis ({exc})"
                ) from None


def as_event_source_mapping(
    role_arn: str, function_arn: str
) -> contextlib.AbstractContextManager[Principal | None]:
    """An event source mapping polls and reports failures with its function's role."""
    return acting_as(role_arn, function_arn.rsplit(":", 1)[-1], ESM_SERVICE_ACTIONS)


class AccessDenied(Exception):
    """What :meth:`Authorizer.require` raises; its text is AWS's access-denied message."""


def denial_message(exc: BaseException) -> str | None:
    """The access-denied message an error carries (emulated IAM's or a ClientError's), if any."""
    seen: BaseException | None = exc
    while seen is not None:  # boto3's transfers wrap the ClientError (S3UploadFailedError)
        if isinstance(seen, AccessDenied):
            return str(seen)
        error = (getattr(seen, "response", None) or {}).get("Error", {})
        if error.get("Code") in ("AccessDenied", "AccessDeniedException"):
            return error.get("Message") or error["Code"]
        seen = seen.__cause__ or seen.__context__
    return None


def denied_message(principal: Principal, action: str, resource: str, decision: Decision) -> str:
    why = (
        "with an explicit deny in an identity-based policy"
        if decision is Decision.EXPLICIT_DENY
        else f"because no identity-based policy allows the {action} action"
    )
    return (
        f"User: {principal.arn} is not authorized to perform: {action} "
        f"on resource: {resource} {why}"
    )


@dataclass
class Authorizer:
    """Decides calls for the principals of one emulated account; see the module docstring."""

    where: Where
    decisions: dict[tuple[str, str, str], Decision] = field(default_factory=dict)
    unmapped: list[str] = field(default_factory=list)
    denied: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- policies ------------------------------------------------------------------------

    def role_policies(self, role_arn: str) -> list[Any]:
        """The identity-based policies of a role as moto holds them (inline and managed)."""
        from moto.iam.models import iam_backends

        backend = iam_backends[self.where.account]["global"]
        role = backend.get_role_by_arn(role_arn)
        documents: list[Any] = list(role.policies.values())
        for policy in role.managed_policies.values():
            documents.append(next(v.document for v in policy.versions if v.is_default))
        return documents

    def decide(
        self, role_arn: str, action: str, resource: str, context: tuple[tuple[str, str], ...] = ()
    ) -> Decision:
        key = (role_arn, action, resource, *context)
        decision = self.decisions.get(key)
        if decision is None:
            account = role_arn.split(":")[4]
            decision = evaluate(
                self.role_policies(role_arn), action, resource, account, dict(context)
            )
            with self._lock:
                self.decisions[key] = decision
        return decision

    def require(
        self,
        principal: Principal | None,
        needed: list[Requirement],
        context: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Raise :class:`AccessDenied` for the first requirement the principal is denied
        (``context``: the request's condition keys, see :func:`.iam_actions.request_context`)."""
        if principal is None:
            return
        for action, resource in needed:
            if action in principal.service_actions:
                continue
            decision = self.decide(principal.role_arn, action, resource, context)
            if decision is not Decision.ALLOW:
                message = denied_message(principal, action, resource, decision)
                with self._lock:
                    self.denied.append(message)
                raise AccessDenied(message)

    # -- the botocore hook ---------------------------------------------------------------

    def before_parameter_build(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        principal = _CURRENT.get()
        if principal is None:
            return
        service = model.service_model.service_name
        try:
            needed = requirements(service, model.name, params, self.where)
        except UnmappedCall as exc:
            with self._lock:
                self.unmapped.append(f"{service}:{model.name}")
            raise UnmappedCall(f"{exc} (called by {principal.arn})") from None
        try:
            self.require(principal, needed, request_context(service, model.name, params))
            if service == "s3" and model.name in MISSING_OBJECT_OPERATIONS:
                self.require(principal, self._missing_object_requirements(params))
        except AccessDenied as exc:
            from botocore.exceptions import ClientError

            code = ACCESS_DENIED_CODE.get(service, "AccessDeniedException")
            status = ACCESS_DENIED_STATUS.get(service, 400)
            error = {
                "Error": {"Code": code, "Message": str(exc)},
                "ResponseMetadata": {
                    "RequestId": str(uuid.uuid4()),
                    "HTTPStatusCode": status,
                    "HTTPHeaders": {},
                },
            }
            raise ClientError(error, model.name) from None

    def _missing_object_requirements(self, params: dict[str, Any]) -> list[Requirement]:
        """S3 answers a read of a missing key 404 only to a caller that may list the bucket,
        403 AccessDenied otherwise ("If you don't have the s3:ListBucket permission, Amazon S3
        returns an HTTP status code 403"):
        https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html
        https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html
        """
        from moto.s3.models import FakeKey, s3_backends

        bucket, key = params.get("Bucket"), params.get("Key")
        try:
            found = s3_backends[self.where.account]["aws"].get_bucket(bucket).keys.get(key)
        except Exception:  # no such bucket: S3's own answer
            return []
        return [] if isinstance(found, FakeKey) else [("s3:ListBucket", f"arn:aws:s3:::{bucket}")]

    @contextmanager
    def installed(self, session: Any) -> Iterator[Authorizer]:
        """Check every call of clients created from ``session`` while the block runs.

        botocore copies a session's event handlers into each client it creates, so clients
        made before this are not checked: install before the stack's clients exist.
        """
        session.events.register("before-parameter-build", self.before_parameter_build, HOOK_ID)
        try:
            with _principals_follow_threads():
                yield self
        finally:
            session.events.unregister("before-parameter-build", unique_id=HOOK_ID)


@contextmanager
def _principals_follow_threads() -> Iterator[None]:
    """Threads and pool work started by a principal run as that principal."""
    start, submit = threading.Thread.start, ThreadPoolExecutor.submit

    def start_as(thread: threading.Thread) -> None:
        principal = _CURRENT.get()
        if principal is not None:
            run = thread.run

            def run_as() -> None:
                _CURRENT.set(principal)
                run()

            thread.run = run_as  # type: ignore[method-assign]
        start(thread)

    def submit_as(
        pool: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kw: Any
    ) -> Any:
        # Pool threads outlive one task: each task runs as its submitter (None included).
        principal = _CURRENT.get()

        def run_as(*a: Any, **k: Any) -> Any:
            token = _CURRENT.set(principal)
            try:
                return fn(*a, **k)
            finally:
                _CURRENT.reset(token)

        return submit(pool, run_as, *args, **kw)

    with (
        mock.patch.object(threading.Thread, "start", start_as),
        mock.patch.object(ThreadPoolExecutor, "submit", submit_as),
    ):
        yield
