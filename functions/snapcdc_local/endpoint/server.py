"""The HTTP server in front of :class:`~snapcdc_local.endpoint.replay.Replayer`.

One thread per connection (HTTP/1.1 keep-alive, ``Expect: 100-continue`` answered as clients
expect), bodies read whole (``Content-Length`` or ``Transfer-Encoding: chunked``), every answer
with its ``Content-Length``. Whatever goes wrong with one request is answered with an
AWS-shaped error and the server keeps serving.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from snapcdc_local.endpoint.decode import BadRequest, Request
from snapcdc_local.endpoint.errors import Answer, error_answer

log = logging.getLogger(__name__)

MAX_BODY = 5 * 1024**3  # S3's largest single PUT


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "snapcdc-local"
    # An answer goes out in one write (_send); with Nagle's algorithm a second small write would
    # wait for the client's delayed ACK (~40 ms a request on loopback).
    disable_nagle_algorithm = True
    answer: Callable[[Request, str], Answer]
    log_requests = False

    def _handle(self) -> None:
        started = time.monotonic()
        try:
            request = Request(
                method=self.command,
                path=urlsplit(self.path).path,
                query=parse_qsl(urlsplit(self.path).query, keep_blank_values=True),
                headers=self._headers(),
                body=self._body(),
            )
            host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
            status, headers, body = self.answer(request, f"http://{host}{self.path}")
        except BadRequest as exc:
            status, headers, body = error_answer("rest-xml", exc.code, exc.message, exc.status)
        except Exception as exc:  # never a traceback to the client, never a dead server
            log.exception("request failed")
            status, headers, body = error_answer(
                "rest-xml", "InternalFailure", f"{type(exc).__name__}: {exc}", 500
            )
        self._send(status, headers, body)
        if self.log_requests:
            print(
                f"{self.command} {self.path.split('?', 1)[0]} {status} "
                f"{time.monotonic() - started:.3f}s",
                file=sys.stderr,
                flush=True,
            )

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            name = name.lower()
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        return headers

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._chunked()
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            size = int(length)
        except ValueError:
            raise BadRequest("BadRequest", f"Content-Length {length!r} is not a number") from None
        if size < 0 or size > MAX_BODY:
            raise BadRequest("EntityTooLarge", f"a body of {size} bytes is over {MAX_BODY}")
        return self.rfile.read(size)

    def _chunked(self) -> bytes:
        data = bytearray()
        while True:
            line = self.rfile.readline(65537)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadRequest("BadRequest", "malformed chunked body") from None
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(data)
            data += self.rfile.read(size)
            self.rfile.readline(3)
            if len(data) > MAX_BODY:
                raise BadRequest("EntityTooLarge", f"a body over {MAX_BODY} bytes")

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        names = {k.lower() for k, _ in headers}
        for name, value in headers:
            if name.lower() not in ("server", "date"):
                self.send_header(name, value)
        if "content-length" not in names:
            self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close" if self.close_connection else "keep-alive")
        self._headers_buffer.append(b"\r\n")  # end_headers, with the body in the same write
        if self.command != "HEAD" and body:
            self._headers_buffer.append(body)
        self.flush_headers()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """A request line or header the HTTP parser refused, answered in AWS's shape."""
        self.close_connection = True
        self.request_version = "HTTP/1.1"  # unparsed, it would be HTTP/0.9: no status line
        status, headers, body = error_answer(
            "rest-xml", "BadRequest", message or "malformed HTTP request", code
        )
        with contextlib.suppress(OSError):
            self._send(status, headers, body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base signature
        return  # one line per request only when asked (log_requests)


class Endpoint:
    """The listening socket and its serving thread."""

    def __init__(
        self,
        answer: Callable[[Request, str], Answer],
        host: str = "127.0.0.1",
        port: int = 4566,
        log_requests: bool = False,
    ) -> None:
        handler = type(
            "Handler",
            (_Handler,),
            {"answer": staticmethod(answer), "log_requests": log_requests},
        )
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        host = f"[{host}]" if ":" in str(host) else host
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="endpoint", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving (the requests in progress are not waited for)."""
        if self._thread:
            self.httpd.shutdown()
            self._thread.join(timeout=10)
            self._thread = None

    def close(self) -> None:
        self.stop()
        self.httpd.server_close()
