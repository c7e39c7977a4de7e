"""GuardDuty membership (moto has no CreateMembers, GetMembers or ListMembers): an administrator
account's members, ENABLED at once under the organization's delegated administrator, and the
member's GetAdministratorAccount in GuardDuty's camelCase wire format. All of it per region, as
GuardDuty keeps it: a membership (and a delegation) in one region says nothing of another."""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

from .wire import caller_of, respond_json


class GuardDutyMembers:
    """(Administrator account, region) → member account → membership."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.members: dict[tuple[str, str], dict[str, dict]] = {}

    def administrator_of(self, member: str, region: str) -> tuple[str, dict] | None:
        with self.lock:
            for (admin, in_region), members in self.members.items():
                if in_region == region and member in members:
                    return admin, members[member]
        return None


GUARDDUTY = GuardDutyMembers()

GUARDDUTY_MEMBER_PATH = re.compile(r"^/detector/([^/]+)/member(/get|/delete|/disassociate)?$")


def guardduty_members(environ: dict, start_response: Any) -> list[bytes] | None:
    """Serves the GuardDuty member APIs moto lacks; None for every other request."""
    service, region, caller = caller_of(environ)
    match = GUARDDUTY_MEMBER_PATH.match(environ.get("PATH_INFO", ""))
    if service != "guardduty" or not match:
        return None
    from moto.guardduty.models import guardduty_backends
    from moto.organizations.models import organizations_backends

    detector_id, action = match.groups()
    backend = guardduty_backends[caller][region]
    if detector_id not in backend.detectors:
        return respond_json(start_response, "400 Bad Request", {"message": "The request is rejected because the input detectorId is not owned by the current account.", "__type": "BadRequestException"})
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = json.loads(environ["wsgi.input"].read(length) or b"{}")
    # The organization's delegated administrator enables organization members without an invitation.
    delegated = any(caller in b.admin_account_ids for b in guardduty_backends_all(guardduty_backends) if b.region_name == region)
    in_org = {a.id for b in organizations_backends.values() for o in b.values() for a in getattr(o, "accounts", [])}
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    with GUARDDUTY.lock:
        members = GUARDDUTY.members.setdefault((caller, region), {})
        if environ["REQUEST_METHOD"] == "POST" and action is None:
            unprocessed = []
            for detail in body.get("accountDetails", []):
                account = detail["accountId"]
                if account == caller:
                    unprocessed.append({"accountId": account, "result": "The request is rejected because the current account cannot create a member account with itself."})
                    continue
                member_detectors = list(guardduty_backends[account][region].detectors)
                members[account] = {
                    "accountId": account,
                    "detectorId": member_detectors[0] if member_detectors else None,
                    "masterId": caller,
                    "administratorId": caller,
                    "email": detail.get("email", ""),
                    "relationshipStatus": "Enabled" if delegated and account in in_org else "Created",
                    "invitedAt": now,
                    "updatedAt": now,
                }
            return respond_json(start_response, "200 OK", {"unprocessedAccounts": unprocessed})
        if action == "/get":
            wanted = body.get("accountIds", [])
            found = [members[a] for a in wanted if a in members]
            missing = [{"accountId": a, "result": "The request is rejected because the input accountId is not associated with the current account."} for a in wanted if a not in members]
            return respond_json(start_response, "200 OK", {"members": found, "unprocessedAccounts": missing})
        if action in ("/delete", "/disassociate"):
            for a in body.get("accountIds", []):
                members.pop(a, None)
            return respond_json(start_response, "200 OK", {"unprocessedAccounts": []})
        return respond_json(start_response, "200 OK", {"members": list(members.values())})


def guardduty_backends_all(backends: Any) -> list:
    return [region_backend for account in backends.values() for region_backend in account.values()]


def install_guardduty_administrator_lookup() -> None:
    from moto.guardduty.models import GuardDutyBackend

    def get_administrator_account(self, detector_id):  # noqa: ANN001
        self.get_detector(detector_id)
        found = GUARDDUTY.administrator_of(self.account_id, self.region_name)
        if not found:
            return {}
        admin, membership = found
        # GuardDuty's wire format is camelCase (moto's own answer is PascalCase, which SDKs ignore).
        return {"administrator": {"accountId": admin, "relationshipStatus": membership["relationshipStatus"], "invitationId": "local", "invitedAt": membership["invitedAt"]}}

    GuardDutyBackend.get_administrator_account = get_administrator_account
