"""What a failed AWS call means to the user of a command against a deployed stack: one line,
what is wrong and what to do (:class:`~snapcdc_local.cli.main.CliError`), never a traceback.

>>> from botocore.exceptions import ClientError
>>> missing = ClientError({"Error": {"Code": "ValidationError",
...     "Message": "Stack with id nope does not exist"}}, "DescribeStacks")
>>> explain(missing, stack="nope", region="us-east-1").split(":")[0]
"stack 'nope' does not exist in us-east-1"
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from snapcdc_local.cli.main import CliError


def endpoint_hint() -> str:
    url = os.environ.get("AWS_ENDPOINT_URL")
    return f" (AWS_ENDPOINT_URL={url}: is snapcdc local serve running there?)" if url else ""


def explain(exc: Exception, stack: str | None = None, region: str | None = None) -> str:
    """The one line for ``exc``, a botocore exception."""
    from botocore import exceptions as bx

    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return (
            "no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(any values for snapcdc local serve)"
        )
    if isinstance(exc, bx.NoRegionError):
        return "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or a profile's region)"
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectionClosedError):
        return f"cannot reach {exc.kwargs.get('endpoint_url', 'the AWS endpoint')}{endpoint_hint()}"
    if isinstance(exc, bx.ReadTimeoutError | bx.ConnectTimeoutError):
        return f"the AWS endpoint did not answer in time{endpoint_hint()}"
    if isinstance(exc, bx.ClientError):
        error = exc.response.get("Error", {})
        code, message = error.get("Code", ""), " ".join(str(error.get("Message", "")).split())
        if stack and code == "ValidationError" and "does not exist" in message:
            where = f" in {region}" if region else ""
            return (
                f"stack {stack!r} does not exist{where}: deploy it first, or check --stack and "
                "the region (AWS_REGION, AWS_PROFILE)"
            )
        if code in ("AccessDenied", "AccessDeniedException"):
            return f"access denied: {message}"
        operation = getattr(exc, "operation_name", "the call")
        return f"{operation} failed: {code}: {message}"
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


@contextmanager
def aws_errors(stack: str | None = None) -> Iterator[None]:
    """Turn a failed AWS call inside the block into a :class:`CliError` line."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        import boto3

        region = boto3.session.Session().region_name
        raise CliError(explain(exc, stack, region)) from None
