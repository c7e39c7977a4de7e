"""What several extensions read from a request or write as an answer."""

from __future__ import annotations

import io
import json
import re
import urllib.parse
from typing import Any


def caller_of(environ: dict) -> tuple[str | None, str, str]:
    """(service, region, account) of a SigV4-signed request."""
    from moto.iam.models import get_account_id_from

    credential = credential_of(environ)
    if not credential:
        return None, "us-east-1", ""
    access_key, region, service = credential
    return service, region, get_account_id_from(access_key)


def respond_json(start_response: Any, status: str, body: Any, headers: list | None = None) -> list[bytes]:
    start_response(status, [("Content-Type", "application/json"), *(headers or [])])
    return [json.dumps(body).encode()]


def credential_of(environ: dict) -> tuple[str, str, str] | None:
    """(access key, region, service) of a SigV4-signed request; S3 Control, signed as `s3`, is
    told apart by its host (see s3.route_s3_control)."""
    match = re.search(r"Credential=([^/]+)/[^/]+/([^/]+)/([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
    if not match:
        return None
    access_key, region, service = match.groups()
    if ".s3-control." in environ.get("HTTP_HOST", ""):
        service = "s3control"
    return access_key, region, service


def request_body(environ: dict) -> bytes:
    """The request's body, read once and put back for whoever reads it next."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def operation_of(environ: dict, service: str, body: bytes) -> tuple[str | None, dict]:
    """The API operation a request calls and its URI parameters: its X-Amz-Target, its query or
    form Action, or its REST route (moto's router for the service); None when none matches."""
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.rsplit(".", 1)[-1], {}
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" in query:
        return query["Action"][0], {}
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        if "Action" in form:
            return form["Action"][0], {}
    if service == "access-analyzer":
        from .baseline import analyzer_operation

        return analyzer_operation(environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")), {}
    from moto.core.request import Request
    from moto.core.routing import get_service_router

    try:
        operation, params = get_service_router(service).match(Request(dict(environ, **{"wsgi.input": io.BytesIO(body)})))
        return operation.name, dict(params)
    except Exception:  # noqa: BLE001 - a request moto cannot route
        return None, {}
