"""Account settings the baseline makes that moto 5.2.5 lacks, kept per account and region as AWS
keeps them, answered in each service's wire format:

- EC2 instance metadata defaults (`GetInstanceMetadataDefaults`, `ModifyInstanceMetadataDefaults`):
  the account-level defaults new instances take (IMDSv2 required, CIS 5.6).
- EC2 `DeleteVpc` takes the VPC's default network ACL with it (moto leaves it behind).
- IAM Access Analyzer (`CreateAnalyzer`, `ListAnalyzers`, `GetAnalyzer`, `DeleteAnalyzer`; moto
  has no Access Analyzer), in its REST JSON wire format.
"""

from __future__ import annotations

import threading
import urllib.parse
from typing import Any

from .wire import caller_of, request_body

EC2_XMLNS = "http://ec2.amazonaws.com/doc/2016-11-15/"


class Settings:
    """(account, region) → setting name → value."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: dict[tuple[str, str], dict[str, Any]] = {}

    def get(self, account: str, region: str) -> dict[str, Any]:
        with self.lock:
            return dict(self.values.get((account, region), {}))

    def update(self, account: str, region: str, changes: dict[str, Any]) -> None:
        with self.lock:
            self.values.setdefault((account, region), {}).update(changes)


METADATA_DEFAULTS = Settings()
METADATA_FIELDS = {  # request parameter → response element
    "HttpTokens": "httpTokens",
    "HttpPutResponseHopLimit": "httpPutResponseHopLimit",
    "HttpEndpoint": "httpEndpoint",
    "InstanceMetadataTags": "instanceMetadataTags",
}


def _xml(start_response: Any, action: str, inner: str) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/xml")])
    return [f'<?xml version="1.0" encoding="UTF-8"?><{action}Response xmlns="{EC2_XMLNS}">'
            f"<requestId>local</requestId>{inner}</{action}Response>".encode()]


def _form(environ: dict) -> dict[str, str]:
    body = request_body(environ).decode("utf-8", "replace")
    query = environ.get("QUERY_STRING", "")
    return {k: v[0] for k, v in urllib.parse.parse_qs(f"{query}&{body}").items()}


def ec2_metadata_defaults(environ: dict, start_response: Any) -> list[bytes] | None:
    """Serves the instance metadata defaults; None for every other request."""
    service, region, caller = caller_of(environ)
    if service != "ec2":
        return None
    form = _form(environ)
    action = form.get("Action")
    if action == "ModifyInstanceMetadataDefaults":
        METADATA_DEFAULTS.update(caller, region, {k: form[k] for k in METADATA_FIELDS if k in form})
        # "no-preference" (and a hop limit of -1) clears a default, as EC2 does.
        with METADATA_DEFAULTS.lock:
            kept = METADATA_DEFAULTS.values[(caller, region)]
            METADATA_DEFAULTS.values[(caller, region)] = {k: v for k, v in kept.items() if v not in ("no-preference", "-1")}
        return _xml(start_response, action, "<return>true</return>")
    if action == "GetInstanceMetadataDefaults":
        current = METADATA_DEFAULTS.get(caller, region)
        fields = "".join(f"<{METADATA_FIELDS[k]}>{v}</{METADATA_FIELDS[k]}>" for k, v in sorted(current.items()))
        return _xml(start_response, action, f"<accountLevel>{fields}</accountLevel>")
    return None


def install_vpc_deletion_takes_its_network_acl() -> None:
    """DeleteVpc deletes the VPC's default network ACL with it, as EC2 does (moto keeps it, and
    it then shows in DescribeNetworkAcls with the VPC gone)."""
    from moto.ec2.models import EC2Backend

    delete_vpc = EC2Backend.delete_vpc

    def delete_vpc_and_acls(self, vpc_id: str):  # noqa: ANN001, ANN202
        vpc = delete_vpc(self, vpc_id)
        for acl_id in [a.id for a in self.network_acls.values() if a.vpc_id == vpc_id]:
            self.network_acls.pop(acl_id, None)
        return vpc

    EC2Backend.delete_vpc = delete_vpc_and_acls


ANALYZERS = Settings()  # (account, region) -> analyzer name -> analyzer


def analyzer_operation(method: str, path: str) -> str | None:
    """The IAM Access Analyzer operation of a REST request (the ones the emulator serves)."""
    if path == "/analyzer":
        return {"PUT": "CreateAnalyzer", "GET": "ListAnalyzers"}.get(method)
    if path.startswith("/analyzer/") and path.count("/") == 2:
        return {"GET": "GetAnalyzer", "DELETE": "DeleteAnalyzer"}.get(method)
    return None


def access_analyzer(environ: dict, start_response: Any) -> list[bytes] | None:
    """IAM Access Analyzer's analyzers (moto has no Access Analyzer): create, list, get and
    delete, per account and region; None for every other request."""
    import datetime
    import json

    from .wire import respond_json

    service, region, caller = caller_of(environ)
    method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
    operation = analyzer_operation(method, path) if service == "access-analyzer" else None
    if operation is None:
        return None
    key = (caller, region)

    def error(status: str, code: str, message: str) -> list[bytes]:
        return respond_json(start_response, status, {"message": message}, [("x-amzn-ErrorType", code)])

    with ANALYZERS.lock:
        analyzers = ANALYZERS.values.setdefault(key, {})
        if operation == "CreateAnalyzer":
            body = json.loads(request_body(environ) or b"{}")
            name = body.get("analyzerName", "")
            if name in analyzers:
                return error("409 Conflict", "ConflictException", f"Analyzer {name} already exists")
            analyzers[name] = {
                "arn": f"arn:aws:access-analyzer:{region}:{caller}:analyzer/{name}", "name": name,
                "type": body.get("type", "ACCOUNT"), "status": "ACTIVE",
                "createdAt": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
            return respond_json(start_response, "200 OK", {"arn": analyzers[name]["arn"]})
        if operation == "ListAnalyzers":
            wanted = urllib.parse.parse_qs(environ.get("QUERY_STRING", "")).get("type", [None])[0]
            found = [a for a in analyzers.values() if wanted in (None, a["type"])]
            return respond_json(start_response, "200 OK", {"analyzers": found})
        name = urllib.parse.unquote(path.rsplit("/", 1)[-1])
        if name not in analyzers:
            return error("404 Not Found", "ResourceNotFoundException", f"Analyzer {name} not found")
        if operation == "GetAnalyzer":
            return respond_json(start_response, "200 OK", {"analyzer": analyzers[name]})
        del analyzers[name]
        return respond_json(start_response, "200 OK", {})


# Each answers its requests, and None for every other.
BASELINE_APIS = [ec2_metadata_defaults, access_analyzer]
