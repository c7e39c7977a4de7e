"""The emulator's front: the `/_local/…` control endpoints, fault injection, and every other
request handed to moto (through the extensions that answer before it)."""

from __future__ import annotations

import json
from typing import Any

from . import cbor, lambda_invoke
from .account import account_management
from .baseline import BASELINE_APIS
from .root import ROOT, root_access
from .cognito import cognito_identity
from .access import ACCESS, access_denied, authorize, issue_lambda_session
from .dynamodb import DYNAMODB, SERIALIZE_DYNAMODB
from .faults import FAULTS
from .guardduty import guardduty_members
from .organizations import CLOSE_QUOTA, CREATE_ACCOUNT, seed_members
from .s3 import route_s3_control
from .scheduler import SCHEDULER
from .stats import STATS
from .wire import respond_json


class ControlApp:
    """Serves `/_local/…`, injects faults, and hands everything else to moto."""

    def __init__(self, moto_app: Any):
        self.moto_app = moto_app

    def __call__(self, environ: dict, start_response: Any) -> Any:
        rpc = cbor.to_json_protocol(environ)
        if rpc is None:
            return self.serve(environ, start_response)
        answered: dict[str, Any] = {}

        def capture(status: str, headers: list, exc_info: Any = None) -> Any:
            answered.update(status=status, headers=headers)
            return lambda _data: None

        body = b"".join(self.serve(environ, capture))
        headers, encoded = cbor.to_cbor(*rpc, answered["status"], answered["headers"], body)
        start_response(answered["status"], headers)
        return [encoded]

    def serve(self, environ: dict, start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        route_s3_control(environ)
        if not path.startswith("/_local/") and not path.startswith("/moto-api"):
            STATS.count(environ)
        if not path.startswith("/_local/"):
            refused = authorize(environ)
            if refused is not None:
                return access_denied(environ, start_response, refused)
            served = guardduty_members(environ, start_response)
            if served is not None:
                return served
            served = account_management(environ, start_response)
            if served is not None:
                return served
            served = root_access(environ, start_response)
            if served is not None:
                return served
            for baseline_api in BASELINE_APIS:
                served = baseline_api(environ, start_response)
                if served is not None:
                    return served
            served = cognito_identity(environ, start_response)
            if served is not None:
                return served
            target = environ.get("HTTP_X_AMZ_TARGET")
            fault = FAULTS.take(target) if target else None
            if fault:
                return respond_json(
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
            lambda_invoke.LAMBDA_HOST["url"] = body["url"].rstrip("/")
            return respond_json(start_response, "200 OK", {"url": lambda_invoke.LAMBDA_HOST["url"]})
        if path == "/_local/faults" and method == "POST":
            FAULTS.add(body["target"], body["error"], int(body.get("count", 1)), int(body.get("status", 400)),
                       body.get("message", "Rate exceeded"), int(body.get("after", 0)))
            return respond_json(start_response, "200 OK", FAULTS.report())
        if path == "/_local/organizations/create-account" and method == "POST":
            CREATE_ACCOUNT.plan(list(body.get("outcomes", [])))
            return respond_json(start_response, "200 OK", {"planned": len(CREATE_ACCOUNT.planned)})
        if path == "/_local/rate-limits" and method == "POST":
            FAULTS.limit(body["target"], float(body["per_second"]), body.get("error", "ThrottlingException"))
            return respond_json(start_response, "200 OK", FAULTS.report())
        if path == "/_local/organizations/close-quota" and method == "POST":
            return respond_json(start_response, "200 OK", CLOSE_QUOTA.control(body))
        if path == "/_local/iam/root-credentials" and method == "POST":
            return respond_json(start_response, "200 OK", ROOT.give(body))
        if path == "/_local/organizations/members" and method == "POST":
            return respond_json(start_response, "200 OK", seed_members(body))
        if path == "/_local/stats" and method == "GET":
            return respond_json(start_response, "200 OK", STATS.report())
        if path == "/_local/stats/reset" and method == "POST":
            STATS.reset()
            return respond_json(start_response, "200 OK", {})
        if path == "/_local/scheduler/run" and method == "POST":
            try:
                return respond_json(start_response, "200 OK", SCHEDULER.run_now(body["Name"], body.get("GroupName", "default")))
            except KeyError:
                return respond_json(start_response, "404 Not Found", {"message": f"no schedule {body['Name']}"})
        if path == "/_local/scheduler" and method == "GET":
            return respond_json(start_response, "200 OK", SCHEDULER.report())
        if path == "/_local/iam/lambda-credentials" and method == "POST":
            return respond_json(start_response, "200 OK", issue_lambda_session(body["RoleArn"], body.get("SessionName", "local")))
        if path == "/_local/iam/access" and method == "GET":
            return respond_json(start_response, "200 OK", ACCESS.report())
        if path == "/_local/faults" and method == "GET":
            return respond_json(start_response, "200 OK", FAULTS.report())
        return respond_json(start_response, "404 Not Found", {"message": "unknown control endpoint"})
