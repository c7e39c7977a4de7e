"""The local AWS emulator: moto's server, plus what the Accounts service needs that moto lacks.

Extensions, each at the wire level so product code never knows it runs locally:

- Lambda: moto runs no code without Docker. `Invoke` (direct, and the Step Functions
  interpreter's `lambda:invoke` tasks) is forwarded to the local host, which runs the real Rust
  handlers. A handler failure comes back with `X-Amz-Function-Error` and the handler's
  `{"errorType", "errorMessage"}`, so state machines' Retry/Catch match the real error names.
- STS: `AssumeRole` into a role that does not exist, or whose trust policy does not admit the
  caller's account, is refused with `AccessDenied` as AWS refuses it (moto grants every call).

- DynamoDB: moto serves requests on many threads and checks a condition, then writes, without
  a lock of its own; only the interpreter's scheduling keeps a racing write out of that gap.
  DynamoDB guarantees each conditional write and transaction is atomic, and the store's
  concurrency tests should rest on that guarantee, not on timing: the emulator serializes
  DynamoDB calls. (Measured: 30 rounds of 20 racing conditional puts gave one winner each with
  and without this; LOCAL_DYNAMODB_UNSERIALIZED=1 turns it off.)
- CloudWatch Logs: events EventBridge delivers to a log group get an integer timestamp (moto
  stores a float, which SDKs refuse to parse).
- Faults: the next N calls of an operation can be answered with an AWS error (throttling,
  `ConcurrentModificationException`, …), to show that callers retry.

Control endpoints (not AWS APIs), under `/_local/`:
- `POST /_local/lambda-host` `{"url": "http://127.0.0.1:PORT"}`: where to forward invocations.
- `POST /_local/faults` `{"target": "AWSOrganizationsV20161128.DescribeOrganization",
  "error": "TooManyRequestsException", "count": 2}`: the next 2 calls of that JSON-protocol
  operation (its `X-Amz-Target`) fail with HTTP 400 and that error code.
- `GET /_local/faults`: the faults still pending and how many were served.

Usage: python local/emulator.py --port PORT
The emulator exits by itself when the process that started it goes away.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import urllib.request
from typing import Any

LAMBDA_HOST: dict[str, str | None] = {"url": os.environ.get("LOCAL_LAMBDA_HOST")}


# --- Lambda ---------------------------------------------------------------------------------


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


# --- STS --------------------------------------------------------------------------------------


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def trust_admits(policy_document: str, caller_account: str) -> bool:
    """Does the role's trust policy let principals of `caller_account` call sts:AssumeRole?

    Conditions are not evaluated; principals are matched by account, which is what the
    service's roles grant (`arn:aws:iam::<management account>:root`)."""
    try:
        policy = json.loads(policy_document)
    except (TypeError, ValueError):
        return False
    for statement in _as_list(policy.get("Statement")):
        if statement.get("Effect") != "Allow":
            continue
        actions = _as_list(statement.get("Action"))
        if not any(a in ("sts:AssumeRole", "sts:*", "*") for a in actions):
            continue
        principal = statement.get("Principal")
        principals = ["*"] if principal == "*" else _as_list((principal or {}).get("AWS"))
        for p in principals:
            if p == "*" or p == caller_account or (p.startswith("arn:") and p.split(":")[4] == caller_account):
                return True
    return False


def install_assume_role_checks() -> None:
    from moto.iam.models import iam_backends
    from moto.sts.exceptions import STSClientError
    from moto.sts.models import STSBackend

    original = STSBackend.assume_role

    def assume_role(self, region_name, role_session_name, role_arn, policy, duration, external_id):  # noqa: ANN001
        parts = role_arn.split(":")
        target_account = parts[4] if len(parts) > 5 else ""
        role_name = parts[5].split("/")[-1] if len(parts) > 5 else ""
        caller = self.account_id
        denied = STSClientError(
            "AccessDenied",
            f"User: arn:aws:iam::{caller}:root is not authorized to perform: sts:AssumeRole "
            f"on resource: {role_arn}",
        )
        try:
            role = iam_backends[target_account]["global"].get_role(role_name)
        except Exception:  # the role does not exist: AWS answers AccessDenied, not NoSuchEntity
            raise denied from None
        if not trust_admits(role.assume_role_policy_document, caller):
            raise denied
        return original(self, region_name, role_session_name, role_arn, policy, duration, external_id)

    STSBackend.assume_role = assume_role


# --- CloudWatch Logs -------------------------------------------------------------------------


def install_integer_log_timestamps() -> None:
    from moto.logs.models import LogEvent

    original = LogEvent.__init__

    def init(self, ingestion_time, log_event):  # noqa: ANN001
        original(self, int(ingestion_time), {**log_event, "timestamp": int(log_event["timestamp"])})

    LogEvent.__init__ = init


# --- server -----------------------------------------------------------------------------------


class Faults:
    """Errors to answer instead of the emulator, per operation (`X-Amz-Target`)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: dict[str, dict] = {}
        self.served: dict[str, int] = {}

    def add(self, target: str, error: str, count: int, status: int = 400, message: str = "Rate exceeded") -> None:
        with self.lock:
            self.pending[target] = {"error": error, "count": count, "status": status, "message": message}

    def take(self, target: str) -> dict | None:
        with self.lock:
            fault = self.pending.get(target)
            if not fault:
                return None
            fault["count"] -= 1
            if fault["count"] <= 0:
                del self.pending[target]
            self.served[target] = self.served.get(target, 0) + 1
            return fault

    def report(self) -> dict:
        with self.lock:
            return {"pending": dict(self.pending), "served": dict(self.served)}


FAULTS = Faults()
DYNAMODB = threading.Lock()
SERIALIZE_DYNAMODB = os.environ.get("LOCAL_DYNAMODB_UNSERIALIZED") != "1"


def _json(start_response: Any, status: str, body: Any, headers: list | None = None) -> list[bytes]:
    start_response(status, [("Content-Type", "application/json"), *(headers or [])])
    return [json.dumps(body).encode()]


class ControlApp:
    """Serves `/_local/…`, injects faults, and hands everything else to moto."""

    def __init__(self, moto_app: Any):
        self.moto_app = moto_app

    def __call__(self, environ: dict, start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/_local/"):
            target = environ.get("HTTP_X_AMZ_TARGET")
            fault = FAULTS.take(target) if target else None
            if fault:
                return _json(
                    start_response,
                    f"{fault['status']} Fault",
                    {"__type": fault["error"], "message": fault["message"]},
                    [("x-amzn-ErrorType", fault["error"]), ("x-amzn-RequestId", "local-fault")],
                )
            if SERIALIZE_DYNAMODB and target and target.startswith("DynamoDB_"):
                with DYNAMODB:
                    # Consume the response inside the lock: moto may produce it lazily.
                    return list(self.moto_app(environ, start_response))
            return self.moto_app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length) or b"{}")
        method = environ["REQUEST_METHOD"]
        if path == "/_local/lambda-host" and method == "POST":
            LAMBDA_HOST["url"] = body["url"].rstrip("/")
            return _json(start_response, "200 OK", {"url": LAMBDA_HOST["url"]})
        if path == "/_local/faults" and method == "POST":
            FAULTS.add(body["target"], body["error"], int(body.get("count", 1)), int(body.get("status", 400)), body.get("message", "Rate exceeded"))
            return _json(start_response, "200 OK", FAULTS.report())
        if path == "/_local/faults" and method == "GET":
            return _json(start_response, "200 OK", FAULTS.report())
        return _json(start_response, "404 Not Found", {"message": "unknown control endpoint"})


def watch_parent() -> None:
    parent = os.getppid()

    def loop() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=loop, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # The Step Functions interpreter calls back into the emulator on this port.
    os.environ["MOTO_PORT"] = str(args.port)

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import run_simple

    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    install_lambda_forwarding()
    install_assume_role_checks()
    install_integer_log_timestamps()
    watch_parent()
    app = ControlApp(DomainDispatcherApplication(create_backend_app))
    print(f"emulator listening on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
