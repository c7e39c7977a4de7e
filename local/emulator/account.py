"""The Account Management API's account name (moto's `account` service has alternate contacts
only): `GetAccountInformation` and `PutAccountName` for a member account, called from the
organization's management account with its `AccountId` — the name Organizations then reports
(ListAccounts, DescribeAccount) is the one put, and only once the organization trusts the
service (`EnableAWSServiceAccess account.amazonaws.com`), as AWS requires. And IAM account aliases unique across accounts,
as AWS keeps them (moto lets every account take any alias)."""

from __future__ import annotations

import json
from typing import Any

from .wire import caller_of, request_body, respond_json

PATHS = {"/getAccountInformation", "/putAccountName"}


def _error(start_response: Any, status: str, code: str, message: str) -> list[bytes]:
    return respond_json(start_response, status, {"message": message}, [("x-amzn-ErrorType", code)])


def account_management(environ: dict, start_response: Any) -> list[bytes] | None:
    """Serves the account-name calls; None for every other request."""
    service, _region, caller = caller_of(environ)
    path = environ.get("PATH_INFO", "")
    if service != "account" or path not in PATHS:
        return None
    from moto.organizations.models import organizations_backends

    body = json.loads(request_body(environ) or b"{}")
    target = body.get("AccountId") or caller
    backend = organizations_backends[caller]["aws"]
    org = getattr(backend, "org", None)
    if target != caller and (org is None or org.master_account_id != caller):
        return _error(start_response, "403 Forbidden", "AccessDeniedException",
                      "AccountId may be given only by the organization's management account")
    trusted = {s.get("ServicePrincipal") for s in getattr(backend, "services", [])}
    if target != caller and "account.amazonaws.com" not in trusted:
        return _error(start_response, "403 Forbidden", "AccessDeniedException",
                      "the organization has not enabled trusted access for AWS Account Management "
                      "(EnableAWSServiceAccess account.amazonaws.com)")
    member = next((a for a in getattr(backend, "accounts", []) if a.id == target), None)
    if member is None:
        return _error(start_response, "404 Not Found", "ResourceNotFoundException",
                      f"account {target} is not a member of the organization")
    if path == "/getAccountInformation":
        return respond_json(start_response, "200 OK", {
            "AccountId": member.id, "AccountName": member.name,
            "AccountCreatedDate": member.create_time.strftime("%Y-%m-%dT%H:%M:%SZ")})
    name = body.get("AccountName", "")
    if not 1 <= len(name) <= 50 or any(not (" " <= c <= "~") or c in "<>" for c in name):
        return _error(start_response, "400 Bad Request", "ValidationException",
                      f"AccountName {name!r} must be 1 to 50 printable ASCII characters")
    member.name = name
    return respond_json(start_response, "200 OK", {})


def install_unique_account_aliases() -> None:
    """IAM account aliases are unique across AWS: creating one another account holds is refused
    with EntityAlreadyExists, as AWS does."""
    from moto.iam.exceptions import EntityAlreadyExists
    from moto.iam.models import IAMBackend, iam_backends

    create = IAMBackend.create_account_alias

    def create_account_alias(self: IAMBackend, alias: str) -> None:
        for account, partitions in list(iam_backends.items()):
            other = partitions.get(self.partition) if hasattr(partitions, "get") else None
            if account != self.account_id and other is not None and alias in other.account_aliases:
                raise EntityAlreadyExists(f"The account alias {alias} already exists.")
        create(self, alias)

    IAMBackend.create_account_alias = create_account_alias
