"""Lambda functions run in process: moto's Lambda ``Invoke`` calls the handler in ``functions/``
(or, for a stack deployed from outside, in the function's deployment package: .lambda_code).

moto without docker answers every ``Invoke`` with a canned payload. This module replaces that
one method, so whoever invokes a function (Step Functions Task states, the Kinesis poller,
``boto3.client("lambda").invoke``) runs the real handler named by the function's ``Handler``,
with its ``Environment`` variables applied and a Lambda-like context object. Errors come back
the way Lambda returns them: ``X-Amz-Function-Error: Unhandled`` and an
``{"errorMessage", "errorType", "stackTrace", "requestId"}`` payload, so a Step Functions
``Catch`` sees ``errorType`` as ``Error`` and the payload as ``Cause``.

Every deployment is a cold start: modules of the Lambda artifact imported by an earlier
emulator are dropped, so module-level clients and settings are built against this stack.

>>> ctx = LambdaContext("f", "arn:aws:lambda:us-east-1:123456789012:function:f", 128, 3)
>>> 0 < ctx.get_remaining_time_in_millis() <= 3000
True
"""

from __future__ import annotations

import contextvars
import importlib
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from snapcdc_local.emulator import iam
from snapcdc_local.emulator.lambda_code import DeployedCode

log = logging.getLogger(__name__)

# Packages whose modules belong to the Lambda artifact (everything under ``snapcdc`` except the
# embedded runtime): re-imported for every new deployment, like a cold start.
ARTIFACT_PACKAGE = "snapcdc"
HANDLERS_PACKAGE = "snapcdc.handlers"


@dataclass
class LambdaContext:
    """The attributes and method of the Python runtime's context object that handlers use."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: float
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = ""
    identity: Any = None
    client_context: Any = None
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"
        self.log_stream_name = self.log_stream_name or f"local/[$LATEST]{self.aws_request_id}"
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class Invocation:
    """One call of a function (not its event: a run makes thousands of large ones)."""

    function_name: str
    request_id: str
    seconds: float
    error_type: str | None = None
    error_message: str | None = None
    timed_out: bool = False


class LambdaRuntime:
    """Dispatches moto Lambda invocations to handlers imported in this process.

    ``overrides`` maps a function name to a callable used instead of the handler the template
    names (tests use it to make a consumer fail once); it receives ``(event, context, handler)``.
    """

    # Modules that held handlers in any runtime of this process (dropped on the next install).
    _handler_modules: set[str] = set()

    def __init__(self, deployed: DeployedCode | None = None) -> None:
        # None: handlers come from this process's snapcdc package (the code ``local run``
        # uploads); else from each function's deployment package (see .lambda_code).
        self.deployed = deployed
        self.invocations: list[Invocation] = []
        self.overrides: dict[str, Callable[[Any, LambdaContext, Callable], Any]] = {}
        self._env_lock = threading.Lock()
        self._lock = threading.Lock()

    # -- moto hook ---------------------------------------------------------------------------

    @contextmanager
    def installed(self) -> Iterator[LambdaRuntime]:
        """Route moto's docker-less ``Invoke`` to :meth:`invoke` while the block runs."""
        from moto.awslambda_simple.models import LambdaSimpleBackend

        runtime = self

        def invoke(backend, function_name, qualifier, body, headers, response_headers):  # noqa: ANN001
            fn = backend.get_function(function_name, qualifier)
            invocation_type = (headers or {}).get("X-Amz-Invocation-Type", "RequestResponse")
            event = json.loads(body) if body else {}
            if invocation_type == "Event":
                # Asynchronous invocation: Lambda queues the event and answers 202 at once.
                threading.Thread(
                    target=runtime.call,
                    args=(fn, event),
                    name=f"lambda-{fn.function_name}",
                    daemon=True,
                ).start()
                return b""
            if invocation_type == "DryRun":
                return b""
            payload, error = runtime.call(fn, event)
            if error:
                response_headers["x-amz-function-error"] = "Unhandled"
            response_headers["Content-Length"] = str(len(payload))
            return payload

        drop_artifact_modules(LambdaRuntime._handler_modules)
        try:
            with mock.patch.object(LambdaSimpleBackend, "invoke", invoke):
                yield self
        finally:
            if self.deployed:
                self.deployed.close()

    # -- invocation --------------------------------------------------------------------------

    def call(self, fn: Any, event: Any) -> tuple[bytes, bool]:
        """Run the handler of moto function ``fn`` on ``event``; return (payload, errored)."""
        context = LambdaContext(
            function_name=fn.function_name,
            invoked_function_arn=fn.function_arn,
            memory_limit_in_mb=int(fn.memory_size or 128),
            timeout_seconds=float(fn.timeout or 3),
        )
        record = Invocation(fn.function_name, context.aws_request_id, 0.0)
        started = time.monotonic()
        outcome = within_timeout(lambda: self._run(fn, event, context), context.timeout_seconds)
        if outcome is None:
            # Lambda stops the function at its Timeout and reports it as an unhandled error:
            # https://docs.aws.amazon.com/lambda/latest/dg/troubleshooting-invocation.html
            # A thread cannot be stopped: it runs on, but whatever it returns is discarded.
            payload = json.dumps(timeout_payload(context)).encode()
            record.timed_out, errored = True, True
            record.error_type, record.error_message = TIMEOUT_ERROR, timeout_message(context)
            log.warning("%s: %s", fn.function_name, record.error_message)
        else:
            payload, errored = outcome
            if errored:
                failure = json.loads(payload)
                record.error_type, record.error_message = (
                    failure["errorType"],
                    failure["errorMessage"],
                )
        record.seconds = time.monotonic() - started
        with self._lock:
            self.invocations.append(record)
        return payload, errored

    def _run(self, fn: Any, event: Any, context: LambdaContext) -> tuple[bytes, bool]:
        try:
            self.apply_environment(fn)
            handler = (
                self.deployed.handler(fn.code_bytes, fn.handler)
                if self.deployed
                else resolve_handler(fn.handler)
            )
            override = self.overrides.get(fn.function_name)
            # The handler's AWS calls are made with the function's execution role:
            # https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html
            with iam.acting_as(fn.role, fn.function_name):
                result = override(event, context, handler) if override else handler(event, context)
            return json.dumps(result).encode(), False
        except Exception as exc:  # the runtime reports any handler error to the caller
            log.info("%s failed: %s: %s", fn.function_name, type(exc).__name__, exc)
            return json.dumps(error_payload(exc, context.aws_request_id)).encode(), True

    def apply_environment(self, fn: Any) -> None:
        """Put the function's ``Environment.Variables`` into ``os.environ``.

        All functions of one process share ``os.environ``; the stack gives every Lambda the same
        variables, so applying them again is a no-op. A clash would be a real bug: raise.
        """
        variables = {k: str(v) for k, v in (fn.environment_vars or {}).items()}
        variables.setdefault("AWS_REGION", fn.region)
        variables.setdefault("AWS_DEFAULT_REGION", fn.region)
        with self._env_lock:
            for name, value in variables.items():
                os.environ[name] = value


TIMEOUT_ERROR = "Sandbox.Timedout"


def within_timeout(run: Callable[[], Any], seconds: float) -> Any:
    """``run()``'s result, or None when it is still running after ``seconds`` (on a thread).

    >>> within_timeout(lambda: 1, 1.0), within_timeout(lambda: time.sleep(0.2), 0.05)
    (1, None)
    """
    box: list[Any] = []

    def work() -> None:
        try:
            box.append(run())
        except BaseException as exc:  # handed to the caller's thread
            box.append(exc)

    # The caller's context variables go along, as if the handler ran on the caller's thread.
    context = contextvars.copy_context()
    worker = threading.Thread(target=context.run, args=(work,), name="lambda-handler", daemon=True)
    worker.start()
    worker.join(seconds)
    if not box:
        return None
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


def timeout_message(context: LambdaContext) -> str:
    return (
        f"RequestId: {context.aws_request_id} Error: Task timed out after "
        f"{context.timeout_seconds:.2f} seconds"
    )


def timeout_payload(context: LambdaContext) -> dict[str, Any]:
    """What Invoke returns (with ``FunctionError: Unhandled``) for a function past its Timeout.

    >>> ctx = LambdaContext("f", "arn:aws:lambda:us-east-1:123456789012:function:f", 128, 3)
    >>> timeout_payload(ctx)["errorMessage"].endswith("Error: Task timed out after 3.00 seconds")
    True
    """
    return {"errorType": TIMEOUT_ERROR, "errorMessage": timeout_message(context)}


def resolve_handler(spec: str) -> Callable[[Any, Any], Any]:
    """Import ``module.path.function`` like the Python runtime does.

    >>> resolve_handler("snapcdc.model.contract.validate_name").__name__
    'validate_name'
    """
    if not spec or "." not in spec:
        raise ValueError(f"invalid Lambda handler {spec!r}: expected module.function")
    module_name, _, attr = spec.rpartition(".")
    module = importlib.import_module(module_name)
    LambdaRuntime._handler_modules.add(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"Lambda handler {spec!r}: module {module_name} has no {attr!r}") from None


def error_payload(exc: BaseException, request_id: str) -> dict[str, Any]:
    """The payload the Python runtime returns for an unhandled exception.

    >>> error_payload(KeyError("x"), "r1")["errorType"]
    'KeyError'
    """
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def drop_artifact_modules(extra: set[str] = frozenset()) -> None:
    """Cold-start the Lambda artifact: forget its handler modules and its cached clients.

    The next invoke imports the handlers again (new Powertools loggers, new clients), like a
    cold start in a new deployment. The shared core modules (``snapcdc.model.contract`` and the
    like) stay imported: the local tools hold references to their classes, and dropping them
    would make, say, ``except ContractError`` miss the error a re-imported module raises.
    """
    for name in list(sys.modules):
        if name == HANDLERS_PACKAGE or name.startswith(HANDLERS_PACKAGE + ".") or name in extra:
            del sys.modules[name]
    aws = sys.modules.get(ARTIFACT_PACKAGE + ".aws.clients")
    if aws is not None:
        aws.reset_clients()
