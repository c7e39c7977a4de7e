"""What the local stack's tools share: messages to the terminal, AWS clients against the
emulator, JSON over HTTP."""

from __future__ import annotations

import json
import sys
import urllib.request
from typing import Any

import boto3
from botocore.config import Config

REGION = "us-east-1"
# The regions the local stack governs (GovernedRegions): the deployment region and one more, so
# every regional part of Account Assurance and scoring is shown to work in a region of its own.
GOVERNED_REGIONS = [REGION, "eu-west-1"]


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def aws(endpoint: str, service: str, credentials: dict | None = None, region: str = REGION) -> Any:
    creds = credentials or {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        config=Config(retries={"mode": "standard", "max_attempts": 5}),
        **creds,
    )


def http_json(method: str, url: str, body: Any = None, timeout: float = 30) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as r:
        return json.loads(r.read() or b"null")
