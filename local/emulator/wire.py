"""What several extensions read from a request or write as an answer."""

from __future__ import annotations

import json
import re
from typing import Any


def caller_of(environ: dict) -> tuple[str | None, str, str]:
    """(service, region, account) of a SigV4-signed request."""
    from moto.iam.models import get_account_id_from

    match = re.search(r"Credential=([^/]+)/[^/]+/([^/]+)/([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
    if not match:
        return None, "us-east-1", ""
    access_key, region, service = match.groups()
    return service, region, get_account_id_from(access_key)


def respond_json(start_response: Any, status: str, body: Any, headers: list | None = None) -> list[bytes]:
    start_response(status, [("Content-Type", "application/json"), *(headers or [])])
    return [json.dumps(body).encode()]
