"""Lambda ``Invoke`` through the fast path answers as through moto's slow path (plumbing stack).

See ``test_emulator_fastpath.py``; a module of its own so that its emulator is not nested in
that module's moto.
"""

from __future__ import annotations

import json

from test_emulator_fastpath import Sends, on_each_path

from snapcdc_local.emulator import fastpath


def test_lambda_invoke_answers_as_moto_does(plumbing):
    fast_client = plumbing.client("lambda")
    slow_client = fastpath.on_slow_path(plumbing.client("lambda"))
    sends = Sends(fast_client), Sends(slow_client)
    cases = [
        {"FunctionName": plumbing.stack.physical_id("Echo"), "Payload": b'{"a": [1, "x"]}'},
        {"FunctionName": plumbing.stack.physical_id("Fail"), "Payload": b"{}"},
        {"FunctionName": plumbing.stack.physical_id("Echo"), "InvocationType": "DryRun"},
        {"FunctionName": "no-such-function", "Payload": b"{}"},
    ]
    for params in cases:

        def call(lam, params=params):
            response = lam.invoke(**params)
            payload = json.loads(response["Payload"].read() or b"null")
            if isinstance(payload, dict):  # new every time: request ids, time left, trace
                for name in ("requestId", "request_id", "remaining_ms", "stackTrace"):
                    payload.pop(name, None)
            return {**response, "Payload": payload}

        fast, slow = on_each_path(lambda: call(fast_client), lambda: call(slow_client), *sends)
        assert fast == slow, params
