"""What a command against a deployed stack says when AWS cannot be asked or says no.

``snapcdc approve`` / ``reject`` / ``redrive`` (and any command that calls AWS with the
caller's own configuration) run inside :func:`aws_errors`: a missing region, missing or expired
credentials, an unknown profile, an endpoint that does not answer, a stack, table or state
machine that does not exist, a permission the caller lacks, each becomes one line naming what is
wrong and what to do (a :class:`~snapcdc_local.errors.CliError`: exit status 1), never a
botocore traceback.

The region: botocore reads ``AWS_DEFAULT_REGION`` and the profile's ``region``, not
``AWS_REGION``, which the AWS SDKs and the AWS CLI v2 read first
(https://docs.aws.amazon.com/sdkref/latest/guide/feature-region.html,
https://docs.aws.amazon.com/cli/latest/userguide/cli-configure-envvars.html). A user whose
``aws`` command works with ``AWS_REGION`` set gets the same region here.

>>> from botocore.exceptions import NoRegionError
>>> describe(NoRegionError())  # doctest: +ELLIPSIS
'no AWS region is configured: set AWS_REGION (or AWS_DEFAULT_REGION), ...'
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from snapcdc_local.errors import CliError

T = TypeVar("T")

# ClientError codes, grouped by what the user does about them
EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
NOT_ACCEPTED = {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AuthFailure",
    "InvalidSignatureException",
}
DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"}
MISSING = {
    "ResourceNotFoundException",
    "StateMachineDoesNotExist",
    "ExecutionDoesNotExist",
    "NoSuchBucket",
    "NoSuchKey",
    "NotFound",
    "404",
}


def describe(exc: BaseException) -> str | None:
    """One line for an error of botocore's (None for anything else)."""
    from botocore import exceptions as bce

    if isinstance(exc, bce.NoRegionError):
        return (
            "no AWS region is configured: set AWS_REGION (or AWS_DEFAULT_REGION), or a region "
            "in your AWS profile (aws configure)"
        )
    if isinstance(exc, bce.NoCredentialsError):
        return (
            "no AWS credentials found: set AWS_PROFILE to a configured profile, run aws "
            "configure, or aws sso login for an SSO profile"
        )
    if isinstance(exc, bce.ProfileNotFound):
        profile = exc.kwargs.get("profile", "")
        return (
            f"AWS profile {profile!r} is not configured: check AWS_PROFILE, or create it with "
            f"aws configure --profile {profile}"
        )
    if isinstance(exc, bce.PartialCredentialsError):
        return (
            f"incomplete AWS credentials ({_one_line(exc)}): set both AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or use a profile (AWS_PROFILE)"
        )
    if isinstance(exc, bce.SSOError | bce.TokenRetrievalError | bce.SSOTokenLoadError):
        return f"the AWS SSO session is missing or has expired ({_one_line(exc)}): aws sso login"
    if isinstance(exc, bce.EndpointConnectionError | bce.ConnectionError | bce.HTTPClientError):
        where = _origin(exc.kwargs.get("endpoint_url")) or "its endpoint"
        return (
            f"cannot reach AWS at {where} ({type(exc).__name__}): check the network, the "
            "region, and AWS_ENDPOINT_URL if it is set"
        )
    if isinstance(exc, bce.ClientError):
        return _client_error(exc)
    if isinstance(exc, bce.ParamValidationError):
        return f"AWS refused a parameter before sending the request: {_one_line(exc)}"
    if isinstance(exc, bce.BotoCoreError):
        return f"AWS call failed: {type(exc).__name__}: {_one_line(exc)}"
    return None


def _client_error(exc: Any) -> str:
    error = exc.response.get("Error", {})
    code = str(error.get("Code") or "")
    message = " ".join(str(error.get("Message") or "").split())
    call = exc.operation_name
    said = f"{code}: {message}" if message else code
    if code in EXPIRED:
        return (
            f"the AWS credentials have expired ({said}): refresh them (aws sso login, or new keys)"
        )
    if code in NOT_ACCEPTED:
        return f"AWS did not accept the credentials ({said}): check AWS_PROFILE or the access key"
    if code in DENIED:
        return (
            f"AWS refused {call} ({said}): the caller lacks that permission (the command's --help "
            "lists the permissions it needs)"
        )
    if code in MISSING or (code == "ValidationError" and "does not exist" in message):
        region = _region()
        return (
            f"{call}: {said}" + (f" (region {region})" if region else "") + ": check the name "
            "given (--stack, or the resource's option) and the region"
        )
    return f"AWS refused {call} ({said})"


def _region() -> str | None:
    import boto3

    with contextlib.suppress(Exception):
        return boto3.session.Session().region_name
    return None


def _origin(url: str | None) -> str | None:
    """``scheme://host:port`` of a request URL (its path and query are the request's)."""
    if not url:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else url


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


@contextlib.contextmanager
def aws_errors() -> Iterator[None]:
    """Run the block with ``AWS_REGION`` honoured; botocore's errors become one CliError line."""
    region = os.environ.get("AWS_REGION")
    saved = os.environ.get("AWS_DEFAULT_REGION")
    if region:
        os.environ["AWS_DEFAULT_REGION"] = region
    try:
        yield
    except CliError:
        raise
    except Exception as exc:
        line = describe(exc)
        if line is None:
            raise
        raise CliError(line) from None
    finally:
        if region:
            if saved is None:
                os.environ.pop("AWS_DEFAULT_REGION", None)
            else:
                os.environ["AWS_DEFAULT_REGION"] = saved


def aws_command(run: Callable[..., T]) -> Callable[..., T]:
    """``run`` (a command's) inside :func:`aws_errors`."""

    @functools.wraps(run)
    def wrapped(*args: Any, **kwargs: Any) -> T:
        with aws_errors():
            return run(*args, **kwargs)

    return wrapped
