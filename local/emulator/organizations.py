"""Organizations: asynchronous `CreateAccount` (IN_PROGRESS until a status call finds it done,
EMAIL_ALREADY_EXISTS for a taken email, planned outcomes), the `aws.organizations` events AWS
publishes on the us-east-1 default bus, and seeding many members at once for benchmarks."""

from __future__ import annotations

import json
import threading
from typing import Any


class CreateAccountPlans:
    """Outcomes planned for the next CreateAccount requests, and the requests in flight."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.planned: list[dict] = []
        self.pending: dict[str, dict] = {}

    def plan(self, outcomes: list[dict]) -> None:
        with self.lock:
            self.planned.extend(outcomes)

    def next_outcome(self) -> dict:
        with self.lock:
            return self.planned.pop(0) if self.planned else {"state": "SUCCEEDED", "polls": 1}


CREATE_ACCOUNT = CreateAccountPlans()


def install_async_create_account() -> None:
    from moto.core.utils import unix_time
    from moto.organizations import utils
    from moto.organizations.models import OrganizationsBackend

    create_now = OrganizationsBackend.create_account
    describe_done = OrganizationsBackend.describe_create_account_status
    list_done = OrganizationsBackend.list_create_account_status

    def status(request: dict) -> dict:
        s = {"Id": request["Id"], "AccountName": request["AccountName"], "State": request["State"],
             "RequestedTimestamp": request["RequestedTimestamp"]}
        for key in ("AccountId", "FailureReason", "CompletedTimestamp"):
            if key in request:
                s[key] = request[key]
        return s

    def create_account(self, **kwargs):  # noqa: ANN001, ANN003
        from moto.organizations.exceptions import AWSOrganizationsNotInUseException

        if self.org is None:
            raise AWSOrganizationsNotInUseException
        outcome = CREATE_ACCOUNT.next_outcome()
        request = {
            "Id": utils.make_random_create_account_status_id(),
            "AccountName": kwargs["AccountName"],
            "State": "IN_PROGRESS",
            "RequestedTimestamp": unix_time(),
            "polls": int(outcome.get("polls", 1)),
            "outcome": outcome,
            "kwargs": kwargs,
        }
        taken = {a.email for a in self.accounts} | {
            r["kwargs"]["Email"] for r in CREATE_ACCOUNT.pending.values() if r["State"] != "FAILED"
        }
        if kwargs["Email"] in taken:
            request["outcome"] = {"state": "FAILED", "reason": "EMAIL_ALREADY_EXISTS"}
        with CREATE_ACCOUNT.lock:
            CREATE_ACCOUNT.pending[request["Id"]] = request
        return {"CreateAccountStatus": status(request)}

    def advance(self, request: dict) -> None:
        if request["State"] != "IN_PROGRESS":
            return
        request["polls"] -= 1
        if request["polls"] > 0:
            return
        outcome = request["outcome"]
        request["CompletedTimestamp"] = unix_time()
        if outcome.get("state", "SUCCEEDED") == "SUCCEEDED":
            created = create_now(self, **request["kwargs"])["CreateAccountStatus"]
            account = self.get_account_by_id(created["AccountId"])
            account.create_account_status_id = request["Id"]
            administrator(account.id, request["kwargs"].get("RoleName", "OrganizationAccountAccessRole"))
            request["AccountId"] = created["AccountId"]
            request["State"] = "SUCCEEDED"
        else:
            request["State"] = "FAILED"
            request["FailureReason"] = outcome.get("reason", "INTERNAL_FAILURE")

    def describe_create_account_status(self, **kwargs):  # noqa: ANN001, ANN003
        request = CREATE_ACCOUNT.pending.get(kwargs["CreateAccountRequestId"])
        if request is None:
            return describe_done(self, **kwargs)
        with CREATE_ACCOUNT.lock:
            advance(self, request)
            return {"CreateAccountStatus": status(request)}

    def list_create_account_status(self, **kwargs):  # noqa: ANN001, ANN003
        states = kwargs.get("States") or ["IN_PROGRESS", "SUCCEEDED", "FAILED"]
        done = list_done(self, **{**kwargs, "States": states})
        ours = {r["Id"] for r in CREATE_ACCOUNT.pending.values()}
        listed = [s for s in done["CreateAccountStatuses"] if s["Id"] not in ours]
        listed += [status(r) for r in CREATE_ACCOUNT.pending.values() if r["State"] in states]
        return {"CreateAccountStatuses": listed}

    OrganizationsBackend.create_account = create_account
    OrganizationsBackend.describe_create_account_status = describe_create_account_status
    OrganizationsBackend.list_create_account_status = list_create_account_status


MOTO_CREATE_ACCOUNT: dict[str, Any] = {}
ADMINISTRATOR_ACCESS = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})


def administrator(account_id: str, role: str) -> None:
    """The role Organizations puts in a new account holds AdministratorAccess; moto's holds no
    policy, and enforced IAM (access.py) would refuse it everything. Inline, with the managed
    policy's document: moto loads AWS's managed policies only into every account at once."""
    from moto.iam.models import iam_backends

    iam_backends[account_id]["global"].put_role_policy(role, "AdministratorAccess", ADMINISTRATOR_ACCESS)


def seed_members(body: dict) -> dict:
    """Adds `count` ACTIVE members to the organization of `management` at once, as if they
    had been created long ago (no CreateAccount requests, no events); every
    `without_role_every`-th one lacks the provisioning role, the others trust the management
    account through it."""
    from moto.iam.models import iam_backends
    from moto.organizations.models import organizations_backends

    management = body.get("management", "123456789012")
    count, role = int(body["count"]), body.get("role", "stax-provisioning")
    without_role_every = int(body.get("without_role_every", 0))
    prefix = body.get("prefix", "member")
    backend = organizations_backends[management]["aws"]
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{management}:root"}, "Action": "sts:AssumeRole"}]})
    created, without_role = 0, 0
    for i in range(count):
        status = MOTO_CREATE_ACCOUNT["create"](
            backend, AccountName=f"{prefix}-{i:05d}", Email=f"{prefix}-{i:05d}@members.example.com")
        account_id = status["CreateAccountStatus"]["AccountId"]
        created += 1
        if without_role_every and i % without_role_every == 0:
            without_role += 1
            continue
        iam_backends[account_id]["global"].create_role(role, trust, "/", None, "", [], None)
        administrator(account_id, role)
    return {"created": created, "without_role": without_role}


def organizations_event(account_id: str, detail_type: str, event_name: str, detail: dict) -> None:
    """Puts a CloudTrail-shaped aws.organizations event on the us-east-1 default bus."""
    from moto.events.models import events_backends

    detail = {"eventVersion": "1.08", "eventSource": "organizations.amazonaws.com",
              "eventName": event_name, "awsRegion": "us-east-1", **detail}
    events_backends[account_id]["us-east-1"].put_events(
        [{"Source": "aws.organizations", "DetailType": detail_type, "Detail": json.dumps(detail)}]
    )


class CloseQuota:
    """AWS's closure quota: in any 30 days an organization closes at most 10 % of its members
    (at least 10, at most 1,000); more is refused with CLOSE_ACCOUNT_QUOTA_EXCEEDED. Its clock
    can be moved forward (`POST /_local/organizations/close-quota {"advance_days": 30}`), so
    tests see the window pass."""

    WINDOW = 30 * 24 * 3600

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.closed_at: list[float] = []
        self.offset = 0.0

    def now(self) -> float:
        import time

        return time.time() + self.offset

    def admit(self, members: int) -> bool:
        """Counts a closure if the quota admits it."""
        limit = min(1000, max(10, members // 10))
        with self.lock:
            now = self.now()
            self.closed_at = [t for t in self.closed_at if now - t < self.WINDOW]
            if len(self.closed_at) >= limit:
                return False
            self.closed_at.append(now)
            return True

    def control(self, body: dict) -> dict:
        with self.lock:
            self.offset += float(body.get("advance_days", 0)) * 24 * 3600
            now = self.now()
            return {"in_window": sum(1 for t in self.closed_at if now - t < self.WINDOW)}


CLOSE_QUOTA = CloseQuota()


def install_organizations_events() -> None:
    from moto.organizations.models import OrganizationsBackend

    api_call, service_event = "AWS API Call via CloudTrail", "AWS Service Event via CloudTrail"
    close = OrganizationsBackend.close_account
    remove = OrganizationsBackend.remove_account_from_organization
    move = OrganizationsBackend.move_account
    create_now = OrganizationsBackend.create_account
    MOTO_CREATE_ACCOUNT["create"] = create_now

    def close_account(self, **kwargs):  # noqa: ANN001, ANN003
        from moto.organizations.exceptions import AccountAlreadyClosedException, ConstraintViolationException

        member = next((a for a in self.accounts if a.id == kwargs.get("AccountId")), None)
        if member is not None and member.status == "SUSPENDED":
            raise AccountAlreadyClosedException
        if member is not None and not CLOSE_QUOTA.admit(len(self.accounts)):
            raise ConstraintViolationException(
                "You have exceeded close account quota for the past 30 days. (CLOSE_ACCOUNT_QUOTA_EXCEEDED)")
        close(self, **kwargs)
        organizations_event(self.account_id, service_event, "CloseAccountResult", {
            "serviceEventDetails": {"closeAccountStatus": {"accountId": kwargs["AccountId"], "state": "SUCCEEDED"}}})

    def remove_account_from_organization(self, **kwargs):  # noqa: ANN001, ANN003
        remove(self, **kwargs)
        organizations_event(self.account_id, api_call, "RemoveAccountFromOrganization", {
            "requestParameters": {"accountId": kwargs["AccountId"]}})

    def move_account(self, **kwargs):  # noqa: ANN001, ANN003
        move(self, **kwargs)
        organizations_event(self.account_id, api_call, "MoveAccount", {"requestParameters": {
            "accountId": kwargs["AccountId"], "sourceParentId": kwargs["SourceParentId"],
            "destinationParentId": kwargs["DestinationParentId"]}})

    def create_account(self, **kwargs):  # noqa: ANN001, ANN003
        # Wrapped by install_async_create_account: runs when the request completes.
        status = create_now(self, **kwargs)
        created = status["CreateAccountStatus"]
        organizations_event(self.account_id, service_event, "CreateAccountResult", {
            "serviceEventDetails": {"createAccountStatus": {
                "id": created["Id"], "state": created["State"], "accountName": created["AccountName"],
                "accountId": created["AccountId"]}}})
        return status

    OrganizationsBackend.close_account = close_account
    OrganizationsBackend.remove_account_from_organization = remove_account_from_organization
    OrganizationsBackend.move_account = move_account
    OrganizationsBackend.create_account = create_account


# AWS allows at most five SCPs attached directly to one root, OU or account; moto has no limit.
MAX_SCPS_PER_TARGET = 5


def install_policy_limits() -> None:
    from moto.organizations.exceptions import ConstraintViolationException
    from moto.organizations.models import OrganizationsBackend

    attach = OrganizationsBackend.attach_policy

    def attach_policy(self, **kwargs):  # noqa: ANN001, ANN003
        policy = self.get_policy_by_id(kwargs["PolicyId"])
        target = next((t for t in [*self.ou, *self.accounts] if t.id == kwargs.get("TargetId")), None)
        if target is not None and policy.type == "SERVICE_CONTROL_POLICY" and policy not in target.attached_policies:
            scps = [p for p in target.attached_policies if p.type == "SERVICE_CONTROL_POLICY"]
            if len(scps) >= MAX_SCPS_PER_TARGET:
                raise ConstraintViolationException(
                    "You have attached the maximum number of policies to this target. "
                    "(POLICY_NUMBER_LIMIT_EXCEEDED)")
        attach(self, **kwargs)

    OrganizationsBackend.attach_policy = attach_policy
