"""IAM's centralized root access for member accounts (moto 5.2.5 has none of it), and the root
user's credentials it manages:

- IAM `ListOrganizationsFeatures`, `EnableOrganizationsRootCredentialsManagement`,
  `EnableOrganizationsRootSessions`: from the organization's management account only, once the
  organization trusts IAM (`EnableAWSServiceAccess iam.amazonaws.com`), as AWS requires.
- STS `AssumeRoot`: from the management account, into a member, with root sessions on; the
  session's whole grant is the task policy (the audit and delete tasks' documents below), which
  IAM enforcement then applies as a session policy.
- The root user's credentials, per account: none for an account Organizations creates (with
  root credentials management, AWS makes none); `POST /_local/iam/root-credentials
  {"AccountId", "Password": true, "AccessKeys": 1, "MfaDevices": 1}` gives an account some, as
  an account created outside the organization has. A root session without a `UserName` reads and
  deletes them (`GetLoginProfile`, `ListAccessKeys`, `ListSigningCertificates`, `ListMFADevices`
  and their deletes); `GetAccountSummary` (AccountMFAEnabled, AccountAccessKeysPresent) and the
  credential report's `<root_account>` row (which moto leaves out) report them.
"""

from __future__ import annotations

import datetime
import json
import threading
import urllib.parse
import uuid
from typing import Any

from .access import ACCESS
from .wire import caller_of, request_body

IAM_XMLNS = "https://iam.amazonaws.com/doc/2010-05-08/"
STS_XMLNS = "https://sts.amazonaws.com/doc/2011-06-15/"
TASKS = {
    "arn:aws:iam::aws:policy/root-task/IAMAuditRootUserCredentials": [
        "iam:GetAccessKeyLastUsed", "iam:GetLoginProfile", "iam:GetUser", "iam:ListAccessKeys",
        "iam:ListMFADevices", "iam:ListSigningCertificates"],
    "arn:aws:iam::aws:policy/root-task/IAMDeleteRootUserCredentials": [
        "iam:DeactivateMFADevice", "iam:DeleteAccessKey", "iam:DeleteLoginProfile", "iam:DeleteSigningCertificate",
        "iam:GetAccessKeyLastUsed", "iam:GetLoginProfile", "iam:GetUser", "iam:ListAccessKeys",
        "iam:ListMFADevices", "iam:ListSigningCertificates"],
}
FEATURES = ("RootCredentialsManagement", "RootSessions")


class RootUsers:
    """Account → its root user's credentials; the organization's enabled features."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.credentials: dict[str, dict[str, Any]] = {}
        self.features: set[str] = set()

    def of(self, account: str) -> dict[str, Any]:
        with self.lock:
            return self.credentials.setdefault(account, {
                "password": False, "access_keys": [], "certificates": [], "mfa": [],
                "created": datetime.datetime.now(datetime.timezone.utc)})

    def give(self, body: dict) -> dict:
        account = body["AccountId"]
        root = self.of(account)
        with self.lock:
            root["password"] = bool(body.get("Password"))
            root["access_keys"] = [f"AKIAROOT{uuid.uuid4().hex[:12].upper()}" for _ in range(int(body.get("AccessKeys", 0)))]
            root["certificates"] = [uuid.uuid4().hex.upper() for _ in range(int(body.get("SigningCertificates", 0)))]
            root["mfa"] = [f"arn:aws:iam::{account}:mfa/root-account-mfa-device"] * min(1, int(body.get("MfaDevices", 0)))
        return self.report(account)

    def report(self, account: str) -> dict:
        root = self.of(account)
        return {"AccountId": account, "Password": root["password"], "AccessKeys": len(root["access_keys"]),
                "SigningCertificates": len(root["certificates"]), "MfaDevices": len(root["mfa"])}


ROOT = RootUsers()


def _params(environ: dict) -> dict[str, str]:
    body = request_body(environ).decode("utf-8", "replace")
    query = environ.get("QUERY_STRING", "")
    return {k: v[0] for k, v in urllib.parse.parse_qs(f"{query}&{body}").items()}


def _xml(start_response: Any, xmlns: str, action: str, inner: str) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/xml")])
    return [f'<{action}Response xmlns="{xmlns}"><{action}Result>{inner}</{action}Result>'
            f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></{action}Response>".encode()]


def _error(start_response: Any, xmlns: str, status: str, code: str, message: str) -> list[bytes]:
    start_response(status, [("Content-Type", "text/xml")])
    return [f'<ErrorResponse xmlns="{xmlns}"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message>'
            f"</Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>".encode()]


def _organization_of(caller: str) -> tuple[Any, Any]:
    """(the organization, its backend) when `caller` is its management account."""
    from moto.organizations.models import organizations_backends

    backend = organizations_backends[caller]["aws"]
    org = getattr(backend, "org", None)
    return (org, backend) if org is not None and org.master_account_id == caller else (None, backend)


def _features(start_response: Any, action: str, caller: str) -> list[bytes]:
    org, backend = _organization_of(caller)
    if org is None:
        return _error(start_response, IAM_XMLNS, "400 Bad Request", "AccountNotManagementOrDelegatedAdministrator",
                      "the caller is not the organization's management account")
    trusted = {s.get("ServicePrincipal") for s in getattr(backend, "services", [])}
    if "iam.amazonaws.com" not in trusted:
        return _error(start_response, IAM_XMLNS, "400 Bad Request", "ServiceAccessNotEnabledException",
                      "trusted access for IAM is not enabled in the organization")
    with ROOT.lock:
        if action == "EnableOrganizationsRootCredentialsManagement":
            ROOT.features.add("RootCredentialsManagement")
        elif action == "EnableOrganizationsRootSessions":
            ROOT.features.add("RootSessions")
        enabled = sorted(ROOT.features)
    members = "".join(f"<member>{f}</member>" for f in enabled)
    return _xml(start_response, IAM_XMLNS, action, f"<OrganizationId>{org.id}</OrganizationId><EnabledFeatures>{members}</EnabledFeatures>")


def _assume_root(start_response: Any, params: dict[str, str], caller: str, region: str) -> list[bytes]:
    from moto.organizations.models import organizations_backends
    from moto.sts.models import sts_backends

    from .iam import ORIGINAL_ASSUME_ROLE

    target = params.get("TargetPrincipal", "")
    task = params.get("TaskPolicyArn.arn", "")
    org, _ = _organization_of(caller)
    if org is None or "RootSessions" not in ROOT.features:
        return _error(start_response, STS_XMLNS, "403 Forbidden", "AccessDenied",
                      "root sessions are not enabled for the organization, or the caller is not its management account")
    if task not in TASKS:
        return _error(start_response, STS_XMLNS, "400 Bad Request", "ValidationError", f"{task} is not a root task policy")
    members = {a.id for a in getattr(organizations_backends[caller]["aws"], "accounts", [])}
    if target == caller or target not in members:
        return _error(start_response, STS_XMLNS, "400 Bad Request", "ValidationError",
                      f"{target} is not a member account of the organization")
    role_arn = f"arn:aws:iam::{target}:root"
    session = ORIGINAL_ASSUME_ROLE["assume_role"](sts_backends[target]["aws"], region, "root", role_arn, None, 900, None)
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": TASKS[task], "Resource": "*"}]})
    ACCESS.remember(session.access_key_id, target, role_arn, policy, f"root/{task.rsplit('/', 1)[-1]}")
    expiration = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=900)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return _xml(start_response, STS_XMLNS, "AssumeRoot",
                f"<Credentials><AccessKeyId>{session.access_key_id}</AccessKeyId><SecretAccessKey>{session.secret_access_key}"
                f"</SecretAccessKey><SessionToken>{session.session_token}</SessionToken><Expiration>{expiration}</Expiration>"
                f"</Credentials><SourceIdentity>{caller}</SourceIdentity>")


def _root_user_call(start_response: Any, action: str, params: dict[str, str], account: str) -> list[bytes] | None:
    root = ROOT.of(account)
    created = root["created"].strftime("%Y-%m-%dT%H:%M:%SZ")
    missing = lambda what: _error(start_response, IAM_XMLNS, "404 Not Found", "NoSuchEntity", what)  # noqa: E731
    if action == "GetLoginProfile":
        if not root["password"]:
            return missing("The root user has no login profile.")
        return _xml(start_response, IAM_XMLNS, action, f"<LoginProfile><UserName>root</UserName><CreateDate>{created}</CreateDate></LoginProfile>")
    if action == "DeleteLoginProfile":
        if not root["password"]:
            return missing("The root user has no login profile.")
        root["password"] = False
        return _xml(start_response, IAM_XMLNS, action, "")
    if action == "ListAccessKeys":
        keys = "".join(f"<member><AccessKeyId>{k}</AccessKeyId><Status>Active</Status><CreateDate>{created}</CreateDate></member>"
                       for k in root["access_keys"])
        return _xml(start_response, IAM_XMLNS, action, f"<AccessKeyMetadata>{keys}</AccessKeyMetadata><IsTruncated>false</IsTruncated>")
    if action == "DeleteAccessKey":
        if params.get("AccessKeyId") not in root["access_keys"]:
            return missing("The root user has no such access key.")
        root["access_keys"].remove(params["AccessKeyId"])
        return _xml(start_response, IAM_XMLNS, action, "")
    if action == "ListSigningCertificates":
        certificates = "".join(f"<member><UserName>root</UserName><CertificateId>{c}</CertificateId><CertificateBody>-</CertificateBody>"
                               f"<Status>Active</Status></member>" for c in root["certificates"])
        return _xml(start_response, IAM_XMLNS, action, f"<Certificates>{certificates}</Certificates><IsTruncated>false</IsTruncated>")
    if action == "DeleteSigningCertificate":
        if params.get("CertificateId") not in root["certificates"]:
            return missing("The root user has no such certificate.")
        root["certificates"].remove(params["CertificateId"])
        return _xml(start_response, IAM_XMLNS, action, "")
    if action == "ListMFADevices":
        devices = "".join(f"<member><UserName>root</UserName><SerialNumber>{d}</SerialNumber><EnableDate>{created}</EnableDate></member>"
                          for d in root["mfa"])
        return _xml(start_response, IAM_XMLNS, action, f"<MFADevices>{devices}</MFADevices><IsTruncated>false</IsTruncated>")
    if action == "DeactivateMFADevice":
        if params.get("SerialNumber") not in root["mfa"]:
            return missing("The root user has no such MFA device.")
        root["mfa"].remove(params["SerialNumber"])
        return _xml(start_response, IAM_XMLNS, action, "")
    return None


def root_access(environ: dict, start_response: Any) -> list[bytes] | None:
    """Serves centralized root access and root sessions' calls; None for every other request."""
    service, region, caller = caller_of(environ)
    if service not in ("iam", "sts"):
        return None
    params = _params(environ)
    action = params.get("Action")
    if service == "sts" and action == "AssumeRoot":
        return _assume_root(start_response, params, caller, region)
    if service != "iam":
        return None
    if action in ("ListOrganizationsFeatures", "EnableOrganizationsRootCredentialsManagement", "EnableOrganizationsRootSessions"):
        return _features(start_response, action, caller)
    from .wire import credential_of

    credential = credential_of(environ)
    session = ACCESS.sessions.get(credential[0]) if credential else None
    if session is not None and session.role_arn.endswith(":root") and "UserName" not in params:
        return _root_user_call(start_response, action or "", params, session.account)
    return None


def install_root_user_reports() -> None:
    """GetAccountSummary and the credential report tell of the root user's credentials; a
    policy may name a root user as its resource (`arn:aws:iam::*:root`, as `sts:AssumeRoot` is
    granted), which moto's policy validation refuses; and IAM is a service an organization can
    trust."""
    from moto.iam import policy_validation
    from moto.iam.models import IAMBackend

    policy_validation.VALID_RESOURCE_PATH_STARTING_VALUES["iam"]["values"].append("root")
    # IAM is a service an organization trusts (for centralized root access); moto's list lacks it.
    from moto.organizations.models import FakeServiceAccess

    FakeServiceAccess.TRUSTED_SERVICES.append("iam.amazonaws.com")

    summary = IAMBackend.get_account_summary
    report = IAMBackend.get_credential_report

    def get_account_summary(self):  # noqa: ANN001, ANN202
        answer = summary(self)
        root = ROOT.of(self.account_id)
        answer._account_mfa_enabled = 1 if root["mfa"] else 0
        answer._account_access_keys_present = 1 if root["access_keys"] else 0
        return answer

    def get_credential_report(self):  # noqa: ANN001, ANN202
        text = report(self)
        root = ROOT.of(self.account_id)
        created = root["created"].strftime("%Y-%m-%dT%H:%M:%S+00:00")
        key = lambda i: "true,N/A,N/A,N/A,N/A" if len(root["access_keys"]) > i else "false,N/A,N/A,N/A,N/A"  # noqa: E731
        row = (f"<root_account>,arn:aws:iam::{self.account_id}:root,{created},not_supported,no_information,not_supported,"
               f"not_supported,{'true' if root['mfa'] else 'false'},{key(0)},{key(1)},false,N/A,false,N/A\n")
        header, _, users = text.partition("\n")
        return f"{header}\n{row}{users}"

    IAMBackend.get_account_summary = get_account_summary
    IAMBackend.get_credential_report = get_credential_report
