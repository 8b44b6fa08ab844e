"""Errors the endpoint answers itself, in the shape the caller's protocol reads.

botocore reads the error code of json and rest-json answers from the ``x-amzn-ErrorType``
header or the body's ``__type``/``code``, of query and rest-xml answers from the XML body's
``Code`` (``<ErrorResponse><Error>`` for query, ``<Error>`` for S3), of rpc-v2-cbor answers
from the CBOR body's ``__type``. Every error answered here carries the header as well, so a
client whose protocol could not be told still reads its code.

>>> status, headers, body = error_answer("json", "ValidationException", "bad", 400)
>>> status, json.loads(body)["__type"], dict(headers)["x-amzn-ErrorType"]
(400, 'ValidationException', 'ValidationException')
>>> cbor_text_map({"a": "b"})
b'\\xa1aaab'
"""

from __future__ import annotations

import json
import uuid
from xml.sax.saxutils import escape

Answer = tuple[int, list[tuple[str, str]], bytes]


def error_answer(protocol: str, code: str, message: str, status: int) -> Answer:
    request_id = str(uuid.uuid4())
    headers = [("x-amzn-RequestId", request_id), ("x-amzn-ErrorType", code)]
    if protocol == "json":
        body = json.dumps({"__type": code, "message": message}).encode()
        headers.append(("Content-Type", "application/x-amz-json-1.1"))
    elif protocol == "rest-json":
        body = json.dumps({"code": code, "message": message}).encode()
        headers.append(("Content-Type", "application/json"))
    elif protocol == "smithy-rpc-v2-cbor":
        body = cbor_text_map({"__type": code, "message": message})
        headers += [("Content-Type", "application/cbor"), ("Smithy-Protocol", "rpc-v2-cbor")]
    elif protocol == "query":
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{escape(code)}</Code>"
            f"<Message>{escape(message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers.append(("Content-Type", "text/xml"))
    else:  # rest-xml, and whatever could not be told
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        ).encode()
        headers += [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
    return status, headers, body


def cbor_text_map(values: dict[str, str]) -> bytes:
    """A CBOR map of text strings (RFC 8949: major types 5 and 3)."""

    def head(major: int, length: int) -> bytes:
        if length < 24:
            return bytes([major << 5 | length])
        for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
            if length < 1 << (8 * size):
                return bytes([major << 5 | info]) + length.to_bytes(size, "big")
        raise ValueError("too long")

    out = bytearray(head(5, len(values)))
    for key, value in values.items():
        for text in (key, value):
            encoded = text.encode()
            out += head(3, len(encoded)) + encoded
    return bytes(out)
