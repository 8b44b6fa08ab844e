"""``snapcdc local serve``: the embedded emulation behind one HTTP endpoint on this machine, for
the AWS CLI, boto3, pyathena and any other AWS client; what a user sees is in
:data:`DESCRIPTION`. The endpoint itself is :mod:`snapcdc_local.endpoint`."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from snapcdc_local.cli.main import CliError

DESCRIPTION = """\
Serve the embedded AWS emulation on one HTTP endpoint, in the foreground until Ctrl-C or
SIGTERM (exit status 0). Point any AWS client at it with AWS_ENDPOINT_URL (the first line
printed says the exact value), any access key and secret, and the region served (us-east-1 by
default): the AWS CLI, boto3, pyathena, the snapcdc commands.

An empty account: deploy the stack into it the way it is deployed to AWS (aws cloudformation
package and deploy; see docs/deploy.md), then upload exports with aws s3 cp or snapcdc upload.
Everything the embedded emulation does applies to served calls: IAM is enforced (a call made
with credentials from sts assume-role acts as that role; any other access key is the
account's administrator), Lambda functions run the code that was deployed (the uploaded
deployment package), Step Functions execute the state machine, S3 events reach the stack's
EventBridge rules, the Kinesis event source mapping is polled, Athena runs on DuckDB (json and
rest-json protocols alike).

The Lambda functions' log output goes to --lambda-log FILE (default: discarded), as it would
go to CloudWatch Logs rather than to this terminal.

It binds to 127.0.0.1 unless --host says otherwise; --port 0 takes a free port. Requests that
may change state run one at a time; a malformed or unsigned request gets an AWS-shaped error.

examples:
  snapcdc local serve
  snapcdc local serve --port 0 --log-requests
"""


def add_serve_parser(sub: Any) -> None:
    serve = sub.add_parser(
        "serve",
        help="serve the embedded AWS emulation on an HTTP endpoint (AWS_ENDPOINT_URL)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, loopback only)"
    )
    serve.add_argument(
        "--port", type=int, default=4566, help="port to bind (default: 4566; 0: a free port)"
    )
    serve.add_argument(
        "--region", default="us-east-1", help="the region served (default: us-east-1)"
    )
    serve.add_argument(
        "--log-requests", action="store_true", help="print one line per request on stderr"
    )
    serve.add_argument(
        "--lambda-log",
        type=Path,
        metavar="FILE",
        help="append the functions' log output to FILE (default: discarded)",
    )


def serve_command(args: argparse.Namespace) -> int:
    from snapcdc_local.cli.run_output import lambda_output
    from snapcdc_local.emulator import Emulator
    from snapcdc_local.emulator.emulated_aws import _loader
    from snapcdc_local.endpoint.replay import Replayer
    from snapcdc_local.endpoint.server import Endpoint

    if not 0 <= args.port <= 65535:
        raise CliError(f"--port {args.port} is not a port number (0 to 65535)")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    out = sys.stdout  # the functions' output is redirected; this command's own is not
    replayer: list[Replayer] = []  # the emulation behind the socket, once it runs
    try:  # the socket first: a port in use is said before the emulation starts
        endpoint = Endpoint(
            lambda request, url: replayer[0].answer(request, url),
            args.host,
            args.port,
            args.log_requests,
        )
    except OSError as exc:
        raise CliError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc} "
            "(another server there? --port 0 takes a free port)"
        ) from None
    try:
        with (
            lambda_output(args.lambda_log),
            Emulator(None, region=args.region, deployed_code=True) as aws,
        ):
            replayer.append(
                Replayer(
                    aws.iam,
                    loader=_loader(),
                    athena=_athena_front(),
                    stacks_changed=aws.stacks_changed,
                    say=lambda line: print(
                        f"snapcdc local serve: {line}", file=sys.stderr, flush=True
                    ),
                    region=args.region,
                )
            )
            endpoint.start()
            print(
                f"serving the embedded AWS emulation at {endpoint.url}: "
                f"AWS_ENDPOINT_URL={endpoint.url} AWS_DEFAULT_REGION={args.region} "
                "(any access key and secret); Ctrl-C stops it",
                file=out,
                flush=True,
            )
            while not stop.wait(1.0):
                pass
            endpoint.stop()
    finally:
        endpoint.close()
    print("stopped", file=out, flush=True)
    return 0


def _athena_front() -> Any:
    """The emulation's Athena front (answers json and rest-json), if this build has it."""
    try:
        from snapcdc_local.emulator.athena_api import answer
    except ImportError:
        return None
    return answer
