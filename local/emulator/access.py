"""IAM enforcement: every request signed with a role session's credentials (the functions'
execution roles, and the sessions they open in member accounts) is allowed only when the role's
identity policies allow it and, if the session was opened with one, its session policy too.

moto's own access control (`INITIAL_NO_AUTH_ACTION_COUNT`) cannot carry that: it refuses every
statement scoped to a resource ARN (it matches against "*"), refuses a request when an Allow's
condition is not met (instead of ignoring the statement), ignores session policies, and names S3
actions by HTTP verb (PutBucketEncryption as CreateBucket). This module decides at the wire,
before moto, from the request's SigV4 credential scope and its operation:

- the IAM action: `<service>:<operation>`, with the operations whose IAM action is named
  differently mapped (S3, S3 Control, Lambda Invoke), and DynamoDB transactions and batches
  transactions expanded into the item actions IAM checks (a TransactWriteItems with a Delete
  needs `dynamodb:DeleteItem`);
- the resource, where the request names one: DynamoDB tables and indexes, Step Functions state
  machines and executions, Lambda functions, S3 buckets and objects, the role of
  `sts:AssumeRole`, the roots, OUs, accounts and policies of Organizations requests (each one
  the request names must be allowed). Elsewhere (the services of member accounts) the resource
  is unknown and any `Resource` of a statement matches;
- conditions: `aws:ResourceAccount` where the resource is known; for Organizations,
  `aws:RequestTag/…`, `aws:ResourceTag/…` (the resource's tags in the emulator), `aws:TagKeys`
  under `ForAllValues:String…`,
  `organizations:ServicePrincipal` and `organizations:PolicyType`. Every other condition key
  counts as met (an Allow is then broader than AWS's, never narrower).

Requests signed with any other key (the test harness, the Step Functions interpreter, the
scheduler, IAM users) are not checked. What each principal (a function's role; a role and
session name in member accounts, such as `stax-provisioning/accounts-compliance`) was granted,
allowed and refused is kept for `GET /_local/iam/access`; with LOCAL_IAM_USAGE_DIR set, each
principal's grant, each newly allowed action and each refusal is also appended to a file there,
so a whole test suite's use can be summed up (local/iam_usage.py). S3 refuses a session's call
whose `ExpectedBucketOwner` is not the bucket's owner, as S3 does, and notes the calls made
without one.
LOCAL_IAM_UNENFORCED=1 turns the refusals off (the use is still recorded)."""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from .wire import credential_of, operation_of, request_body

ENFORCED = os.environ.get("LOCAL_IAM_UNENFORCED") != "1"
USAGE_DIR = os.environ.get("LOCAL_IAM_USAGE_DIR")

# Signing name -> IAM action prefix, where they differ.
IAM_PREFIX = {"monitoring": "cloudwatch"}
# (signing service, API operation) -> IAM action name, where they differ.
IAM_ACTION = {
    ("s3", "PutBucketEncryption"): "PutEncryptionConfiguration",
    ("s3", "GetBucketEncryption"): "GetEncryptionConfiguration",
    ("s3", "DeleteBucketEncryption"): "PutEncryptionConfiguration",
    ("s3", "PutPublicAccessBlock"): "PutBucketPublicAccessBlock",
    ("s3", "GetPublicAccessBlock"): "GetBucketPublicAccessBlock",
    ("s3", "DeletePublicAccessBlock"): "PutBucketPublicAccessBlock",
    ("s3", "PutBucketLifecycleConfiguration"): "PutLifecycleConfiguration",
    ("s3", "GetBucketLifecycleConfiguration"): "GetLifecycleConfiguration",
    ("s3", "PutObjectLockConfiguration"): "PutBucketObjectLockConfiguration",
    ("s3", "GetObjectLockConfiguration"): "GetBucketObjectLockConfiguration",
    ("s3", "PutBucketReplication"): "PutReplicationConfiguration",
    ("s3", "GetBucketReplication"): "GetReplicationConfiguration",
    ("s3", "PutBucketNotificationConfiguration"): "PutBucketNotification",
    ("s3", "GetBucketNotificationConfiguration"): "GetBucketNotification",
    ("s3", "HeadBucket"): "ListBucket",
    ("s3", "ListObjects"): "ListBucket",
    ("s3", "ListObjectsV2"): "ListBucket",
    ("s3", "ListObjectVersions"): "ListBucketVersions",
    ("s3", "HeadObject"): "GetObject",
    ("s3", "ListBuckets"): "ListAllMyBuckets",
    ("s3", "DeleteObjects"): "DeleteObject",
    ("s3control", "PutPublicAccessBlock"): "PutAccountPublicAccessBlock",
    ("s3control", "GetPublicAccessBlock"): "GetAccountPublicAccessBlock",
    ("s3control", "DeletePublicAccessBlock"): "PutAccountPublicAccessBlock",
    ("lambda", "Invoke"): "InvokeFunction",
}
TRANSACT_WRITE = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}


@dataclass
class Session:
    account: str
    role_arn: str
    session_policy: str | None
    # Who is reported: the role's name, and the session's (a function's role: its name only).
    principal: str


@dataclass
class Access:
    """Sessions by access key, and what each role was allowed and refused."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    sessions: dict[str, Session] = field(default_factory=dict)
    allowed: dict[str, dict[str, int]] = field(default_factory=dict)
    denied: dict[str, list[dict]] = field(default_factory=dict)

    granted: dict[str, list[str]] = field(default_factory=dict)
    # S3 calls on a bucket made without `ExpectedBucketOwner`: principal -> "action bucket".
    unowned: dict[str, set[str]] = field(default_factory=dict)

    def remember(self, access_key: str, account: str, role_arn: str, session_policy: str | None, principal: str) -> None:
        """A new session. What it is granted (its session policy's actions, or else its role's)
        is noted once per principal, to be compared with what it used."""
        with self.lock:
            self.sessions[access_key] = Session(account, role_arn, session_policy or None, principal)
            first = principal not in self.granted
        if first:
            try:
                documents = [json.loads(session_policy)] if session_policy else identity_policies(account, role_arn.split("/")[-1])
            except Exception:  # noqa: BLE001 - no such role: nothing is granted
                documents = []
            actions = sorted({a for d in documents for st in _as_list(d.get("Statement")) if st.get("Effect") == "Allow"
                              for a in _as_list(st.get("Action"))})
            with self.lock:
                self.granted[principal] = actions
            self._write([{"principal": principal, "granted": actions}])

    def record(self, principal: str, decisions: list[tuple[str, str | None, bool]]) -> None:
        new_lines = []
        with self.lock:
            for action, resource, ok in decisions:
                if ok:
                    by_action = self.allowed.setdefault(principal, {})
                    if action not in by_action:
                        new_lines.append({"principal": principal, "allowed": action})
                    by_action[action] = by_action.get(action, 0) + 1
                else:
                    refusal = {"action": action, "resource": resource}
                    self.denied.setdefault(principal, []).append(refusal)
                    new_lines.append({"principal": principal, "denied": action, "resource": resource})
        self._write(new_lines)

    @staticmethod
    def _write(lines: list[dict]) -> None:
        if USAGE_DIR and lines:
            with open(os.path.join(USAGE_DIR, f"emulator-{os.getpid()}.jsonl"), "a", encoding="utf-8") as f:
                f.writelines(json.dumps(line) + "\n" for line in lines)

    def report(self) -> dict:
        with self.lock:
            return {
                "enforced": ENFORCED,
                "granted": dict(self.granted),
                "allowed": {p: dict(sorted(a.items())) for p, a in self.allowed.items()},
                "denied": {p: list(d) for p, d in self.denied.items()},
                "s3_without_expected_owner": {p: sorted(u) for p, u in self.unowned.items()},
            }


ACCESS = Access()


# --- what a request asks for ----------------------------------------------------------------


def _form(body: bytes) -> dict[str, str]:
    import urllib.parse

    return {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace")).items()}


def requested(environ: dict, service: str, region: str, account: str, body: bytes) -> list[tuple[str, str | None]]:
    """The (IAM action, resource ARN or None when unknown) pairs a request needs."""
    operation, params = operation_of(environ, service, body)
    if operation is None:
        return []
    prefix = "s3" if service == "s3control" else IAM_PREFIX.get(service, service)
    action = f"{prefix}:{IAM_ACTION.get((service, operation), operation)}"
    if service == "dynamodb":
        return _dynamodb(operation, json.loads(body or b"{}"), region, account)
    if service == "states":
        request = json.loads(body or b"{}")
        arn = request.get("stateMachineArn") or request.get("executionArn")
        return [(action, arn)]
    if service == "sts" and operation == "AssumeRole":
        return [(action, _form(body).get("RoleArn"))]
    if service == "lambda" and "FunctionName" in params:
        name = params["FunctionName"]
        return [(action, name if name.startswith("arn:") else f"arn:aws:lambda:{region}:{account}:function:{name}")]
    if service == "s3" and "Bucket" in params:
        key = params.get("Key")
        return [(action, f"arn:aws:s3:::{params['Bucket']}" + (f"/{key}" if key else ""))]
    if service == "organizations":
        return [(action, arn) for arn in _organizations_resources(json.loads(body or b"{}"), account)]
    if service == "account":
        return [(action, _account_management_arn(json.loads(body or b"{}").get("AccountId"), account))]
    return [(action, None)]


def _account_management_arn(member: str | None, caller: str) -> str:
    """The Account Management API's resource: the caller's own account, or a member account
    (whose ARN carries the organization)."""
    if not member or member == caller:
        return f"arn:aws:account::{caller}:account"
    from moto.organizations.models import organizations_backends

    org = getattr(organizations_backends[caller]["aws"], "org", None)
    return f"arn:aws:account::{caller}:account/{org.id if org else 'o-none'}/{member}"


# Organizations request fields that name a resource, in the order IAM lists them.
ORGANIZATIONS_IDS = ("PolicyId", "AccountId", "ChildId", "ResourceId", "TargetId", "RootId", "ParentId",
                     "SourceParentId", "DestinationParentId")


def _organizations_resources(request: dict, management: str) -> list[str | None]:
    """The ARNs of the roots, OUs, accounts and policies an Organizations request names."""
    from moto.organizations.models import organizations_backends

    org = getattr(organizations_backends[management]["aws"], "org", None)
    arns = [_organizations_arn(request[k], management, org.id if org else "o-none") for k in ORGANIZATIONS_IDS if k in request]
    return arns or [None]


def _organizations_arn(resource_id: str, management: str, org_id: str) -> str:
    prefix = f"arn:aws:organizations::{management}"
    if resource_id.startswith("r-"):
        return f"{prefix}:root/{org_id}/{resource_id}"
    if resource_id.startswith("ou-"):
        return f"{prefix}:ou/{org_id}/{resource_id}"
    if resource_id == "p-FullAWSAccess":
        return "arn:aws:organizations::aws:policy/service_control_policy/p-FullAWSAccess"
    if resource_id.startswith("p-"):
        return f"{prefix}:policy/{org_id}/service_control_policy/{resource_id}"
    return f"{prefix}:account/{org_id}/{resource_id}"


def condition_context(service: str, request: dict, resource: str | None, management: str) -> dict[str, str | None]:
    """The condition keys the emulator can evaluate for one resource of a request, lowercased;
    None: the key is absent (an unmet StringEquals, a met StringNotEquals). Keys not here are
    unknown and counted as met."""
    context: dict[str, str | None] = {}
    if _account_of(resource):
        context["aws:resourceaccount"] = _account_of(resource)
    if service != "organizations":
        return context
    for tag in request.get("Tags", []):
        context[f"aws:requesttag/{tag['Key'].lower()}"] = tag["Value"]
    if "Tags" in request:  # multivalued: the requested keys, one per line
        context["aws:tagkeys"] = "\n".join(tag["Key"] for tag in request["Tags"])
    context["aws:requesttag/*"] = None  # any other requested tag key: absent
    context["organizations:serviceprincipal"] = request.get("ServicePrincipal")
    # The policy type a request names (CreatePolicy's Type, EnablePolicyType's PolicyType,
    # ListPolicies' Filter); AWS also derives it from a policy an attach or update names, which
    # the emulator does not: there it is unknown (met).
    policy_type = request.get("Type") or request.get("PolicyType") or request.get("Filter")
    if policy_type:
        context["organizations:policytype"] = policy_type
    if resource and resource.startswith("arn:aws:organizations::") and not resource.endswith("p-FullAWSAccess"):
        from moto.organizations.models import organizations_backends

        try:
            found = organizations_backends[management]["aws"]._get_resource_for_tagging(resource.rsplit("/", 1)[-1])
            tags = dict(getattr(found, "tags", {}))
        except Exception:  # noqa: BLE001 - no such resource: no tags
            tags = {}
        for key, value in tags.items():
            context[f"aws:resourcetag/{key.lower()}"] = value
        context["aws:resourcetag/*"] = None
    return context


def _dynamodb(operation: str, request: dict, region: str, account: str) -> list[tuple[str, str | None]]:
    def table(name: str, index: str | None = None) -> str:
        arn = name if name.startswith("arn:") else f"arn:aws:dynamodb:{region}:{account}:table/{name}"
        return f"{arn}/index/{index}" if index else arn

    if operation == "TransactWriteItems":
        return [
            (f"dynamodb:{TRANSACT_WRITE[kind]}", table(item[kind]["TableName"]))
            for item in request.get("TransactItems", []) for kind in item if kind in TRANSACT_WRITE
        ]
    if operation == "TransactGetItems":
        return [("dynamodb:GetItem", table(item["Get"]["TableName"])) for item in request.get("TransactItems", [])]
    if operation in ("BatchWriteItem", "BatchGetItem"):  # IAM actions of their own, per table
        return [(f"dynamodb:{operation}", table(name)) for name in request.get("RequestItems", {})]
    if "TableName" in request:
        return [(f"dynamodb:{operation}", table(request["TableName"], request.get("IndexName")))]
    return [(f"dynamodb:{operation}", None)]


# --- policy evaluation ----------------------------------------------------------------------


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _matches(pattern: str, value: str, case_sensitive: bool) -> bool:
    regex = "^" + "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern) + "$"
    return re.match(regex, value, 0 if case_sensitive else re.IGNORECASE) is not None


def _account_of(arn: str | None) -> str | None:
    parts = (arn or "").split(":")
    return parts[4] if len(parts) > 5 and parts[4] else None


def _lookup(context: dict[str, str | None], key: str) -> tuple[bool, str | None]:
    """(known, value) of a condition key in the context: tag keys not present fall back to
    their family's `*` entry (known to be absent) when there is one."""
    key = key.lower()
    if key in context:
        return True, context[key]
    family = key.split("/", 1)[0] + "/*"
    if "/" in key and family in context:
        return True, None
    return False, None


def _conditions_met(conditions: dict, context: dict[str, str | None]) -> bool:
    """IAM's condition operators over the keys the emulator knows (`ForAllValues:String…` over
    `aws:TagKeys` is modelled; `ForAnyValue:` and operators it does not model count as met)."""
    for operator, tests in (conditions or {}).items():
        if operator.startswith("ForAllValues:String"):
            for key, expected in tests.items():
                known, actual = _lookup(context, key)
                if known and actual:
                    wildcards = "Like" in operator
                    allowed = [str(e) for e in _as_list(expected)]
                    if not all(any(_matches(e, v, True) if wildcards else e == v for e in allowed)
                               for v in actual.split("\n")):
                        return False
            continue
        if ":" in operator:  # another set qualifier (ForAnyValue:): not modelled
            continue
        for key, expected in tests.items():
            known, actual = _lookup(context, key)
            if not known:
                continue  # not evaluated here: counted as met
            if operator == "Null":  # "true": the key must be absent
                if (actual is None) != (str(expected).lower() == "true"):
                    return False
                continue
            base = operator.removesuffix("IfExists")
            if not (base.startswith("String") or base.startswith("Arn")):
                continue
            negated = "Not" in base
            if actual is None:  # the key is absent from the request
                if not negated and not operator.endswith("IfExists"):
                    return False
                continue
            wildcards = "Like" in base or base.startswith("Arn")
            fold = base.endswith("IgnoreCase")
            hit = any(
                _matches(str(e), actual, not fold) if wildcards
                else (str(e).lower() == actual.lower() if fold else str(e) == actual)
                for e in _as_list(expected)
            )
            if hit == negated:
                return False
    return True


def _statement_applies(statement: dict, action: str, resource: str | None, context: dict[str, str | None]) -> bool:
    if "NotAction" in statement:
        if any(_matches(a, action, False) for a in _as_list(statement["NotAction"])):
            return False
    elif not any(_matches(a, action, False) for a in _as_list(statement.get("Action"))):
        return False
    if resource is not None:
        if "NotResource" in statement:
            if any(_matches(r, resource, True) for r in _as_list(statement["NotResource"])):
                return False
        elif not any(_matches(r, resource, True) for r in _as_list(statement.get("Resource"))):
            return False
    return _conditions_met(statement.get("Condition", {}), context)


def decide(documents: list[dict], action: str, resource: str | None, context: dict[str, str | None] | None = None) -> bool:
    """IAM's rule within one set of policies: an explicit Deny wins, else an Allow is needed."""
    if context is None:
        context = {"aws:resourceaccount": _account_of(resource)} if _account_of(resource) else {}
    allowed = False
    for document in documents:
        for statement in _as_list(document.get("Statement")):
            if _statement_applies(statement, action, resource, context):
                if statement.get("Effect") == "Deny":
                    return False
                allowed = True
    return allowed


def identity_policies(account: str, role_name: str) -> list[dict]:
    from moto.iam.models import iam_backends

    backend = iam_backends[account]["global"]
    documents = []
    for name in backend.list_role_policies(role_name):
        _, document = backend.get_role_policy(role_name, name)
        documents.append(document)
    attached, _ = backend.list_attached_role_policies(role_name)
    for policy in attached:
        documents.append(next(v.document for v in policy.versions if v.is_default))
    return [json.loads(d) if isinstance(d, str) else d for d in documents]


def authorize(environ: dict) -> tuple[str, str, str, str] | None:
    """None when the request may go on; otherwise (role, session, action, resource) refused."""
    credential = credential_of(environ)
    if not credential:
        return None
    access_key, region, service = credential
    session = ACCESS.sessions.get(access_key)
    if session is None:
        return None
    body = request_body(environ)
    needs = requested(environ, service, region, session.account, body)
    # GetCallerIdentity needs no permission in AWS, even under an explicit Deny.
    needs = [(a, r) for a, r in needs if a != "sts:GetCallerIdentity"]
    if not needs:
        return None
    if service == "s3":
        refused = _check_bucket_owner(environ, session, needs)
        if refused is not None:
            return refused
    role_name = session.role_arn.split("/")[-1]
    try:
        # A root session (sts:AssumeRoot): the root user may do anything; its task policy, the
        # session policy, is what limits it.
        identity = ([{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}]
                    if session.role_arn.endswith(":root") else identity_policies(session.account, role_name))
    except Exception:  # noqa: BLE001 - the role was deleted: nothing is allowed
        identity = []
    scoped = [json.loads(session.session_policy)] if session.session_policy else None
    request = json.loads(body) if service == "organizations" and body else {}
    decisions = []
    for action, resource in needs:
        context = condition_context(service, request, resource, session.account)
        ok = decide(identity, action, resource, context) and (scoped is None or decide(scoped, action, resource, context))
        decisions.append((action, resource, ok))
    ACCESS.record(session.principal, decisions)
    refused = next(((a, r) for a, r, ok in decisions if not ok), None)
    if refused is None or not ENFORCED:
        return None
    return session.role_arn, session.principal.split("/")[-1], refused[0], refused[1] or "*"


def _check_bucket_owner(environ: dict, session: Session, needs: list) -> tuple[str, str, str, str] | None:
    """S3 refuses a call whose `ExpectedBucketOwner` is not the bucket's owner (AccessDenied);
    a call without one is noted, to show which callers leave it out."""
    from moto.s3.models import s3_backends

    for action, resource in needs:
        if not resource or not resource.startswith("arn:aws:s3:::"):
            continue
        bucket = resource[len("arn:aws:s3:::"):].split("/", 1)[0]
        expected = environ.get("HTTP_X_AMZ_EXPECTED_BUCKET_OWNER")
        if expected is None and action != "s3:CreateBucket":  # the one bucket call without it
            with ACCESS.lock:
                ACCESS.unowned.setdefault(session.principal, set()).add(f"{action} {bucket}")
            continue
        owner = s3_backends.bucket_accounts.get(bucket, (None, None))[1]
        if expected is not None and owner is not None and owner != expected:
            return session.role_arn, session.principal.split("/")[-1], action, f"{resource} (owned by another account than {expected})"
    return None


def access_denied(environ: dict, start_response: Any, refused: tuple[str, str, str, str]) -> list[bytes]:
    """AccessDenied in the protocol the caller speaks."""
    role_arn, session_name, action, resource = refused
    account = role_arn.split(":")[4]
    session = f"arn:aws:sts::{account}:assumed-role/{role_arn.split('/')[-1]}/{session_name}"
    message = f"User: {session} is not authorized to perform: {action} on resource: {resource}"
    target = environ.get("HTTP_X_AMZ_TARGET")
    credential = credential_of(environ)
    service = credential[2] if credential else ""
    if target:  # JSON protocols
        start_response("400 Bad Request", [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-ErrorType", "AccessDeniedException")])
        return [json.dumps({"__type": "AccessDeniedException", "message": message}).encode()]
    if service in ("sts", "iam", "ec2", "monitoring"):  # query protocols
        start_response("403 Forbidden", [("Content-Type", "text/xml")])
        code = "UnauthorizedOperation" if service == "ec2" else "AccessDenied"
        return [f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>local</RequestId></ErrorResponse>".encode()]
    if service in ("s3", "s3control"):  # REST-XML
        start_response("403 Forbidden", [("Content-Type", "application/xml")])
        return [f"<Error><Code>AccessDenied</Code><Message>{message}</Message></Error>".encode()]
    start_response("403 Forbidden", [("Content-Type", "application/json"), ("x-amzn-ErrorType", "AccessDeniedException")])
    return [json.dumps({"message": message}).encode()]


def issue_lambda_session(role_arn: str, session_name: str) -> dict:
    """Credentials of a function's execution role, as the Lambda service gives a function."""
    from moto.sts.models import sts_backends

    from .iam import ORIGINAL_ASSUME_ROLE

    account = role_arn.split(":")[4]
    backend = sts_backends[account]["aws"]
    role = ORIGINAL_ASSUME_ROLE["assume_role"](backend, "us-east-1", session_name, role_arn, None, 43200, None)
    ACCESS.remember(role.access_key_id, role.account_id, role_arn, None, role_arn.split("/")[-1])
    return {"AccessKeyId": role.access_key_id, "SecretAccessKey": role.secret_access_key, "SessionToken": role.session_token}
