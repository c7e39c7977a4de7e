"""Smithy RPC v2 CBOR, the protocol the Rust SDK speaks to CloudWatch (`POST
/service/GraniteServiceVersion20100801/operation/<Operation>`, CBOR bodies): moto 5.2.5 routes
CloudWatch's JSON protocol only, so the emulator turns such a request into the same operation
in JSON (`X-Amz-Target: GraniteServiceVersion20100801.<Operation>`) before anything else sees
it — IAM enforcement, fault injection and the stats see a JSON-protocol call — and turns moto's
answer back into CBOR: the same members, timestamps as CBOR epoch-seconds (tag 1) where the
operation's output shape has them, errors as a `__type` map."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import cbor2

RPC_PATH = re.compile(r"^/service/([A-Za-z0-9_]+)/operation/([A-Za-z0-9_]+)$")
# The services the emulator speaks CBOR for: the Smithy service name -> botocore's service name.
SERVICES = {"GraniteServiceVersion20100801": "cloudwatch"}


def to_json_protocol(environ: dict) -> tuple[str, str] | None:
    """Rewrites a CBOR RPC request in place as its JSON-protocol twin; (service, operation), or
    None for any other request."""
    match = RPC_PATH.match(environ.get("PATH_INFO", ""))
    if not match or match.group(1) not in SERVICES or "cbor" not in environ.get("CONTENT_TYPE", "application/cbor"):
        return None
    target, operation = match.groups()
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    params = cbor2.loads(raw) if raw else {}
    body = json.dumps(params, default=_plain).encode()
    environ.update({
        "PATH_INFO": "/",
        "CONTENT_TYPE": "application/x-amz-json-1.0",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_X_AMZ_TARGET": f"{target}.{operation}",
        "wsgi.input": io.BytesIO(body),
    })
    return SERVICES[target], operation


def _plain(value: Any) -> Any:
    """JSON for what CBOR has and JSON lacks: tagged timestamps become epoch seconds."""
    if isinstance(value, cbor2.CBORTag):
        return value.value
    if hasattr(value, "timestamp"):
        return value.timestamp()
    raise TypeError(f"{type(value).__name__} has no JSON form")


def _timestamps(shape: Any, value: Any) -> Any:
    """`value` (moto's JSON answer) with its timestamps tagged, as the output `shape` says."""
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        return {k: _timestamps(shape.members.get(k), v) for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [_timestamps(shape.member, v) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: _timestamps(shape.value, v) for k, v in value.items()}
    if kind == "timestamp" and isinstance(value, (int, float)):
        return cbor2.CBORTag(1, float(value))
    return value


def to_cbor(service: str, operation: str, status: str, headers: list, body: bytes) -> tuple[list, bytes]:
    """moto's JSON answer to the operation, as the CBOR RPC answer (headers, body)."""
    import botocore.session

    answer = json.loads(body or b"{}")
    if status.startswith("2"):
        model = botocore.session.get_session().get_service_model(service)
        answer = _timestamps(model.operation_model(operation).output_shape, answer)
    elif "__type" in answer:
        # The CBOR protocol names an error by its shape's name alone.
        answer["__type"] = str(answer["__type"]).rsplit("#", 1)[-1]
    kept = [(k, v) for k, v in headers if k.lower() not in ("content-type", "content-length")]
    encoded = cbor2.dumps(answer)
    return [*kept, ("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor"),
            ("Content-Length", str(len(encoded)))], encoded
