"""Lambda: moto runs no code without Docker. `Invoke` (direct, and the Step Functions
interpreter's `lambda:invoke` tasks) is forwarded to the local host, which runs the real Rust
handlers; a handler failure comes back with `X-Amz-Function-Error` and its
`{"errorType", "errorMessage"}`, so the state machines' Retry/Catch match the real names."""

from __future__ import annotations

import os
import urllib.request
from typing import Any

LAMBDA_HOST: dict[str, str | None] = {"url": os.environ.get("LOCAL_LAMBDA_HOST")}


def forward_invoke(function_name: str, body: Any, headers: Any, response_headers: Any) -> bytes:
    """POSTs the invocation to the local host and relays its answer and error header."""
    host = LAMBDA_HOST["url"]
    if not host:
        raise RuntimeError("no local Lambda host registered (POST /_local/lambda-host)")
    name = function_name.split(":function:")[-1].split(":")[0]
    payload = body if isinstance(body, bytes) else (body or "{}").encode()
    request = urllib.request.Request(
        f"{host}/2015-03-31/functions/{name}/invocations",
        data=payload,
        method="POST",
        headers={
            "content-type": "application/json",
            "x-amz-invocation-type": (headers or {}).get("X-Amz-Invocation-Type", "RequestResponse"),
        },
    )
    with urllib.request.urlopen(request, timeout=960) as response:
        error = response.headers.get("x-amz-function-error")
        if error:
            response_headers["x-amz-function-error"] = error
        return response.read()


def install_lambda_forwarding() -> None:
    from moto.awslambda_simple.models import LambdaSimpleBackend

    def invoke(self, function_name, qualifier, body, headers, response_headers):  # noqa: ANN001
        self.get_function(function_name, qualifier)  # ResourceNotFoundException as AWS raises it
        payload = forward_invoke(function_name, body, headers, response_headers)
        response_headers["Content-Length"] = str(len(payload))
        return payload

    LambdaSimpleBackend.invoke = invoke
