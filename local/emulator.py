"""The local AWS emulator: moto's server, plus what the Accounts service needs that moto lacks.

Extensions, each at the wire level so product code never knows it runs locally:

- Lambda: moto runs no code without Docker. `Invoke` (direct, and the Step Functions
  interpreter's `lambda:invoke` tasks) is forwarded to the local host, which runs the real Rust
  handlers. A handler failure comes back with `X-Amz-Function-Error` and the handler's
  `{"errorType", "errorMessage"}`, so state machines' Retry/Catch match the real error names.
- IAM access keys: moto looks for a request's access key in every account in turn (~140 ms a
  request with 10,000 accounts); the emulator indexes where keys are, with the same answers.
- STS: `AssumeRole` into a role that does not exist, or whose trust policy does not admit the
  caller's account, is refused with `AccessDenied` as AWS refuses it (moto grants every call).

- DynamoDB: moto serves requests on many threads and checks a condition, then writes, without
  a lock of its own; only the interpreter's scheduling keeps a racing write out of that gap.
  DynamoDB guarantees each conditional write and transaction is atomic, and the store's
  concurrency tests should rest on that guarantee, not on timing: the emulator serializes
  DynamoDB calls. (Measured: 30 rounds of 20 racing conditional puts gave one winner each with
  and without this; LOCAL_DYNAMODB_UNSERIALIZED=1 turns it off.)
- DynamoDB `TransactWriteItems`: moto backs a transaction up by deep-copying the whole table
  once per item in it (a 100-item transaction into a 40,000-item table copies four million
  items); the emulator backs up and restores only the items the transaction touches.
- Organizations `CreateAccount` answers IN_PROGRESS and creates the account only when a later
  `DescribeCreateAccountStatus` finds the request done, as AWS does (moto completes at once). A
  second account with an email already in the organization fails with EMAIL_ALREADY_EXISTS
  (moto accepts it). Each request stays IN_PROGRESS for one status call by default; planned
  outcomes can make requests fail with a reason or take longer.
- GuardDuty membership (moto has no CreateMembers, GetMembers or ListMembers): an administrator
  account's members, ENABLED at once when the administrator is the organization's delegated
  GuardDuty administrator (as AWS does for organization members), and the member's
  GetAdministratorAccount naming its administrator in GuardDuty's camelCase wire format.
- S3 `GetBucketVersioning` answers with S3's `<VersioningConfiguration>` root (moto's
  `GetBucketVersioningResponse` root makes SDKs fail to parse it).
- Step Functions' own integration (`states:startExecution.sync:2`, used to run Account Assurance
  from the create and bootstrap workflows): moto's interpreter passes the ASL's PascalCase
  parameters to boto unchanged and returns boto's camelCase results; the emulator maps both the
  way AWS does.
- CloudWatch Logs: events EventBridge delivers to a log group get an integer timestamp (moto
  stores a float, which SDKs refuse to parse).
- S3 Control: its endpoint rules put the account id in front of the endpoint's host
  (`111122223333.127.0.0.1:PORT`), which cannot resolve; the local host gives functions the
  emulator as their HTTP proxy (the SDK honours HTTP_PROXY like every AWS SDK), and the emulator
  routes such hosts to S3 Control.
- EventBridge: rule targets that are Lambda functions are invoked (asynchronously, as AWS
  does; moto delivers only to logs, SQS, archives and buses).
- Organizations events: AWS publishes CloudTrail-based `aws.organizations` events on the
  us-east-1 default bus; moto publishes none. The emulator puts the ones the service listens to
  there, shaped as CloudTrail records them: `CreateAccountResult` (when an account is created),
  `CloseAccountResult`, `RemoveAccountFromOrganization`, `MoveAccount`.
- EventBridge Scheduler: moto stores schedules and never runs them; the emulator fires enabled
  `rate(…)` and `at(…)` schedules on time (a `rate` counted from the schedule's creation, as
  the scheduler does) and invokes their Lambda targets asynchronously with the schedule's
  `Input`. `cron(…)` schedules are kept but not fired.
- Faults: the next N calls of an operation can be answered with an AWS error (throttling,
  `ConcurrentModificationException`, …), to show that callers retry.

Control endpoints (not AWS APIs), under `/_local/`:
- `POST /_local/lambda-host` `{"url": "http://127.0.0.1:PORT"}`: where to forward invocations.
- `POST /_local/faults` `{"target": "AWSOrganizationsV20161128.DescribeOrganization",
  "error": "TooManyRequestsException", "count": 2}`: the next 2 calls of that JSON-protocol
  operation (its `X-Amz-Target`) fail with HTTP 400 and that error code.
- `GET /_local/faults`: the faults still pending and how many were served.
- `POST /_local/scheduler/run` `{"Name": "…", "GroupName": "default"}`: fire that schedule now,
  exactly as when it is due (its target and input); `GET /_local/scheduler`: runs per schedule.
- `POST /_local/rate-limits` `{"target": "AWSOrganizationsV20161128.ListAccounts",
  "per_second": 5, "error": "TooManyRequestsException"}`: calls of that operation beyond that
  many in any second are answered with the error (as AWS throttles its control planes).
- `POST /_local/organizations/members` `{"count": 10000, "without_role_every": 50}`: that many
  ACTIVE members at once, every 50th without the provisioning role (for benchmarks).
- `GET /_local/stats`: AWS API calls served since the last `POST /_local/stats/reset`, by
  caller (`functions`: the service's code; `stepfunctions`: the state machine interpreter's own
  calls, such as Lambda Invoke; `benchmark`: callers signing with the key `bench`) and
  `service operation`.
- `POST /_local/organizations/create-account` `{"outcomes": [{"state": "FAILED", "reason":
  "ACCOUNT_LIMIT_EXCEEDED", "polls": 2}]}`: how the next CreateAccount requests end (in order)
  and after how many status calls; unplanned requests succeed after one.

Usage: python local/emulator.py --port PORT
The emulator exits by itself when the process that started it goes away.
"""

from __future__ import annotations

import argparse
import calendar
import copy
import json
import os
import re
import sys
import threading
import time
import urllib.request
from typing import Any

LAMBDA_HOST: dict[str, str | None] = {"url": os.environ.get("LOCAL_LAMBDA_HOST")}


# --- Lambda ---------------------------------------------------------------------------------


def forward_invoke(function_name: str, body: Any, headers: Any, response_headers: Any) -> bytes:
    """POSTs the invocation to the local host and relays its answer and error header."""
    host = LAMBDA_HOST["url"]
    if not host:
        raise RuntimeError("no local Lambda host registered (POST /_local/lambda-host)")
    name = function_name.split(":function:")[-1].split(":")[0]
    payload = body if isinstance(body, bytes) else (body or "{}").encode()
    request = urllib.request.Request(
        f"{host}/2015-03-31/functions/{name}/invocations",
        data=payload,
        method="POST",
        headers={
            "content-type": "application/json",
            "x-amz-invocation-type": (headers or {}).get("X-Amz-Invocation-Type", "RequestResponse"),
        },
    )
    with urllib.request.urlopen(request, timeout=960) as response:
        error = response.headers.get("x-amz-function-error")
        if error:
            response_headers["x-amz-function-error"] = error
        return response.read()


def install_lambda_forwarding() -> None:
    from moto.awslambda_simple.models import LambdaSimpleBackend

    def invoke(self, function_name, qualifier, body, headers, response_headers):  # noqa: ANN001
        self.get_function(function_name, qualifier)  # ResourceNotFoundException as AWS raises it
        payload = forward_invoke(function_name, body, headers, response_headers)
        response_headers["Content-Length"] = str(len(payload))
        return payload

    LambdaSimpleBackend.invoke = invoke


# --- STS --------------------------------------------------------------------------------------


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def trust_admits(policy_document: str, caller_account: str) -> bool:
    """Does the role's trust policy let principals of `caller_account` call sts:AssumeRole?

    Conditions are not evaluated; principals are matched by account, which is what the
    service's roles grant (`arn:aws:iam::<management account>:root`)."""
    try:
        policy = json.loads(policy_document)
    except (TypeError, ValueError):
        return False
    for statement in _as_list(policy.get("Statement")):
        if statement.get("Effect") != "Allow":
            continue
        actions = _as_list(statement.get("Action"))
        if not any(a in ("sts:AssumeRole", "sts:*", "*") for a in actions):
            continue
        principal = statement.get("Principal")
        principals = ["*"] if principal == "*" else _as_list((principal or {}).get("AWS"))
        for p in principals:
            if p == "*" or p == caller_account or (p.startswith("arn:") and p.split(":")[4] == caller_account):
                return True
    return False


def install_access_key_index() -> None:
    """moto finds the account of each request's access key by looking through every account's
    keys in turn: with 10,000 member accounts that took ~140 ms a request (discovery's role
    checks ran at 7 a second). Remember where a key was found, and that a key was not found until
    that key is created, with the same answers."""
    import moto.iam.models as iam

    found: dict[str, tuple[str, str]] = {}
    missing: set[str] = set()

    def get_account_id_from(access_key: str) -> str:
        where = found.get(access_key)
        if where is not None:
            account, partition = where
            if access_key in iam.iam_backends[account][partition].access_keys:
                return account
            del found[access_key]
        if access_key in missing:
            return iam.DEFAULT_ACCOUNT_ID
        for account, backends in list(iam.iam_backends.items()):
            for partition in iam.PARTITION_NAMES:
                if access_key in backends[partition].access_keys:
                    found[access_key] = (account, partition)
                    return account
        missing.add(access_key)
        return iam.DEFAULT_ACCOUNT_ID

    def forgetting_misses(create):  # noqa: ANN001, ANN202
        def created(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
            key = create(self, *args, **kwargs)
            missing.discard(key.physical_resource_id)
            return key

        return created

    iam.IAMBackend.create_access_key = forgetting_misses(iam.IAMBackend.create_access_key)
    iam.IAMBackend.create_temp_access_key = forgetting_misses(iam.IAMBackend.create_temp_access_key)
    iam.get_account_id_from = get_account_id_from


def install_assume_role_checks() -> None:
    from moto.iam.models import iam_backends
    from moto.sts.exceptions import STSClientError
    from moto.sts.models import STSBackend

    original = STSBackend.assume_role

    def assume_role(self, region_name, role_session_name, role_arn, policy, duration, external_id):  # noqa: ANN001
        parts = role_arn.split(":")
        target_account = parts[4] if len(parts) > 5 else ""
        role_name = parts[5].split("/")[-1] if len(parts) > 5 else ""
        caller = self.account_id
        denied = STSClientError(
            "AccessDenied",
            f"User: arn:aws:iam::{caller}:root is not authorized to perform: sts:AssumeRole "
            f"on resource: {role_arn}",
        )
        try:
            role = iam_backends[target_account]["global"].get_role(role_name)
        except Exception:  # the role does not exist: AWS answers AccessDenied, not NoSuchEntity
            raise denied from None
        if not trust_admits(role.assume_role_policy_document, caller):
            raise denied
        return original(self, region_name, role_session_name, role_arn, policy, duration, external_id)

    STSBackend.assume_role = assume_role


# --- Organizations ---------------------------------------------------------------------------


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


# --- EventBridge and Organizations events ----------------------------------------------------


def install_eventbridge_lambda_targets() -> None:
    from moto.events.models import Rule
    from moto.utilities.arns import parse_arn

    deliver = Rule.send_to_targets

    def send_to_targets(self, original_event, transform_input=True):  # noqa: ANN001
        lambdas = [t for t in self.targets if parse_arn(t["Arn"]).service == "lambda"]
        others = copy.copy(self)
        others.targets = [t for t in self.targets if t not in lambdas]  # moto raises on Lambda
        deliver(others, original_event, transform_input)
        if not self.event_pattern.matches_event(original_event):
            return
        for target in lambdas:
            payload = json.dumps(original_event, default=str).encode()

            def invoke(arn: str = target["Arn"], payload: bytes = payload) -> None:
                try:
                    forward_invoke(arn, payload, {"X-Amz-Invocation-Type": "Event"}, {})
                except Exception as e:  # noqa: BLE001 - as AWS, a failed delivery is only logged
                    print(f"EventBridge could not deliver to {arn}: {e}", file=sys.stderr, flush=True)

            threading.Thread(target=invoke, daemon=True).start()

    Rule.send_to_targets = send_to_targets


# --- EventBridge Scheduler ----------------------------------------------------------------------

RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> int | None:
    rate = RATE.match(expression)
    return int(rate.group(1)) * UNIT_SECONDS[rate.group(2).rstrip("s")] if rate else None


def first_due(expression: str, created: float) -> float | None:
    """When a schedule created at `created` (epoch seconds) first fires: `rate(N unit)` N units
    after creation (EventBridge Scheduler does not fire at creation), `at(…)` at that UTC time;
    None for what is not fired locally (`cron(…)`)."""
    period = rate_seconds(expression)
    if period:
        return created + period
    at = AT.match(expression)
    if at:
        return calendar.timegm(time.strptime(at.group(1), "%Y-%m-%dT%H:%M:%S"))
    return None


def next_due(expression: str, due: float, now: float) -> float | None:
    """After firing the run due at `due`, at `now`: the next one. Runs missed while the emulator
    was busy are not made up (one run, then the next period); `at(…)` fires once."""
    period = rate_seconds(expression)
    if not period:
        return None
    return due + period * (int((now - due) // period) + 1)


class Scheduler:
    """Fires the emulator's EventBridge Scheduler schedules (moto stores them and never runs
    them): a Lambda target is invoked asynchronously with the schedule's `Input`, as the
    scheduler does."""

    def __init__(self) -> None:
        # schedule ARN -> (expression, when it is next due); re-derived when the expression changes.
        self.due: dict[str, tuple[str, float | None]] = {}
        self.runs: dict[str, int] = {}
        self.lock = threading.Lock()

    def schedules(self) -> list[Any]:
        from moto.scheduler.models import scheduler_backends

        return [
            schedule
            for account in scheduler_backends.values()
            for backend in account.values()
            for group in backend.schedule_groups.values()
            for schedule in group.schedules.values()
        ]

    def deliver(self, schedule: Any) -> None:
        from moto.utilities.arns import parse_arn

        target = schedule.target
        with self.lock:
            self.runs[schedule.arn] = self.runs.get(schedule.arn, 0) + 1
        if parse_arn(target["Arn"]).service != "lambda":
            print(f"scheduler: {schedule.name}: only Lambda targets are delivered locally", file=sys.stderr, flush=True)
            return
        payload = (target.get("Input") or "{}").encode()

        def invoke() -> None:
            try:
                forward_invoke(target["Arn"], payload, {"X-Amz-Invocation-Type": "Event"}, {})
            except Exception as e:  # noqa: BLE001 - as AWS, a failed delivery is only logged
                print(f"scheduler: {schedule.name} could not deliver to {target['Arn']}: {e}", file=sys.stderr, flush=True)

        threading.Thread(target=invoke, daemon=True).start()

    def tick(self, now: float) -> None:
        for schedule in self.schedules():
            if schedule.state != "ENABLED":
                continue
            expression = schedule.schedule_expression
            known, due = self.due.get(schedule.arn, (None, None))
            if known != expression:
                due = first_due(expression, schedule.last_modified_date)
            if due is not None and due <= now:
                self.deliver(schedule)
                due = next_due(expression, due, now)
            self.due[schedule.arn] = (expression, due)

    def run_now(self, name: str, group: str = "default") -> dict:
        for schedule in self.schedules():
            if schedule.name == name and schedule.group_name == group:
                self.deliver(schedule)
                return self.report()
        raise KeyError(name)

    def report(self) -> dict:
        with self.lock:
            return {"runs": dict(self.runs)}

    def start(self) -> None:
        def loop() -> None:
            while True:
                time.sleep(1)
                try:
                    self.tick(time.time())
                except Exception as e:  # noqa: BLE001 - keep the clock running
                    print(f"scheduler: {e}", file=sys.stderr, flush=True)

        threading.Thread(target=loop, daemon=True).start()


SCHEDULER = Scheduler()


MOTO_CREATE_ACCOUNT: dict[str, Any] = {}


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
    return {"created": created, "without_role": without_role}


def organizations_event(account_id: str, detail_type: str, event_name: str, detail: dict) -> None:
    """Puts a CloudTrail-shaped aws.organizations event on the us-east-1 default bus."""
    from moto.events.models import events_backends

    detail = {"eventVersion": "1.08", "eventSource": "organizations.amazonaws.com",
              "eventName": event_name, "awsRegion": "us-east-1", **detail}
    events_backends[account_id]["us-east-1"].put_events(
        [{"Source": "aws.organizations", "DetailType": detail_type, "Detail": json.dumps(detail)}]
    )


def install_organizations_events() -> None:
    from moto.organizations.models import OrganizationsBackend

    api_call, service_event = "AWS API Call via CloudTrail", "AWS Service Event via CloudTrail"
    close = OrganizationsBackend.close_account
    remove = OrganizationsBackend.remove_account_from_organization
    move = OrganizationsBackend.move_account
    create_now = OrganizationsBackend.create_account
    MOTO_CREATE_ACCOUNT["create"] = create_now

    def close_account(self, **kwargs):  # noqa: ANN001, ANN003
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


# --- GuardDuty --------------------------------------------------------------------------------


class GuardDutyMembers:
    """Administrator account → member account → membership."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.members: dict[str, dict[str, dict]] = {}

    def administrator_of(self, member: str) -> tuple[str, dict] | None:
        with self.lock:
            for admin, members in self.members.items():
                if member in members:
                    return admin, members[member]
        return None


GUARDDUTY = GuardDutyMembers()
# `{account id}.{our address}`: an S3 Control request (see the module's note).
ACCOUNT_HOST = re.compile(r"^([0-9]{12})\.(?:127\.0\.0\.1|localhost)(?::[0-9]+)?$")
GUARDDUTY_MEMBER_PATH = re.compile(r"^/detector/([^/]+)/member(/get|/delete|/disassociate)?$")


def _caller(environ: dict) -> tuple[str | None, str, str]:
    """(service, region, account) of a SigV4-signed request."""
    from moto.iam.models import get_account_id_from

    match = re.search(r"Credential=([^/]+)/[^/]+/([^/]+)/([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
    if not match:
        return None, "us-east-1", ""
    access_key, region, service = match.groups()
    return service, region, get_account_id_from(access_key)


def guardduty_members(environ: dict, start_response: Any) -> list[bytes] | None:
    """Serves the GuardDuty member APIs moto lacks; None for every other request."""
    service, region, caller = _caller(environ)
    match = GUARDDUTY_MEMBER_PATH.match(environ.get("PATH_INFO", ""))
    if service != "guardduty" or not match:
        return None
    from moto.guardduty.models import guardduty_backends
    from moto.organizations.models import organizations_backends

    detector_id, action = match.groups()
    backend = guardduty_backends[caller][region]
    if detector_id not in backend.detectors:
        return _json(start_response, "400 Bad Request", {"message": f"The request is rejected because the input detectorId is not owned by the current account.", "__type": "BadRequestException"})
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = json.loads(environ["wsgi.input"].read(length) or b"{}")
    # The organization's delegated administrator enables organization members without an invitation.
    delegated = any(caller in b.admin_account_ids for b in guardduty_backends_all(guardduty_backends))
    in_org = {a.id for b in organizations_backends.values() for o in b.values() for a in getattr(o, "accounts", [])}
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    with GUARDDUTY.lock:
        members = GUARDDUTY.members.setdefault(caller, {})
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
            return _json(start_response, "200 OK", {"unprocessedAccounts": unprocessed})
        if action == "/get":
            wanted = body.get("accountIds", [])
            found = [members[a] for a in wanted if a in members]
            missing = [{"accountId": a, "result": "The request is rejected because the input accountId is not associated with the current account."} for a in wanted if a not in members]
            return _json(start_response, "200 OK", {"members": found, "unprocessedAccounts": missing})
        if action in ("/delete", "/disassociate"):
            for a in body.get("accountIds", []):
                members.pop(a, None)
            return _json(start_response, "200 OK", {"unprocessedAccounts": []})
        return _json(start_response, "200 OK", {"members": list(members.values())})


def guardduty_backends_all(backends: Any) -> list:
    return [region_backend for account in backends.values() for region_backend in account.values()]


def install_guardduty_administrator_lookup() -> None:
    from moto.guardduty.models import GuardDutyBackend

    def get_administrator_account(self, detector_id):  # noqa: ANN001
        self.get_detector(detector_id)
        found = GUARDDUTY.administrator_of(self.account_id)
        if not found:
            return {}
        admin, membership = found
        # GuardDuty's wire format is camelCase (moto's own answer is PascalCase, which SDKs ignore).
        return {"administrator": {"accountId": admin, "relationshipStatus": membership["relationshipStatus"], "invitationId": "local", "invitedAt": membership["invitedAt"]}}

    GuardDutyBackend.get_administrator_account = get_administrator_account


# --- Step Functions ------------------------------------------------------------------------------


def install_sfn_integration_names() -> None:
    import botocore.session
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
        StateTaskServiceSfn,
    )

    model = botocore.session.get_session().get_service_model("stepfunctions")
    operations = {name.lower(): name for name in model.operation_names}
    original = StateTaskServiceSfn._normalise_parameters

    def normalise_parameters(self, parameters, boto_service_name=None, service_action_name=None):  # noqa: ANN001
        original(self, parameters, boto_service_name, service_action_name)
        action = (service_action_name or self._get_boto_service_action()).replace("_", "").lower()
        operation = operations.get(action)
        if operation is None:
            return
        members = {m.lower(): m for m in model.operation_model(operation).input_shape.members}
        for key in list(parameters):
            wanted = members.get(key.lower())
            if wanted and wanted != key:
                parameters[wanted] = parameters.pop(key)

    def normalise_response(self, response, boto_service_name=None, service_action_name=None):  # noqa: ANN001
        import datetime

        if isinstance(response, dict):
            for key in list(response):
                value = response.pop(key)
                # Timestamps come back as epoch milliseconds, as Step Functions reports them.
                if isinstance(value, datetime.datetime):
                    value = int(value.timestamp() * 1000)
                response[key[0].upper() + key[1:]] = value

    StateTaskServiceSfn._normalise_parameters = normalise_parameters
    StateTaskServiceSfn._normalise_response = normalise_response


# --- S3 -----------------------------------------------------------------------------------------


def install_s3_versioning_shape() -> None:
    from moto.s3.responses import S3Response

    def get_bucket_versioning(self):  # noqa: ANN001
        status = self.backend.get_bucket_versioning(self.bucket_name)
        inner = f"<Status>{status}</Status>" if status else ""
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{inner}</VersioningConfiguration>'
        )
        return 200, {"Content-Type": "application/xml"}, body

    S3Response.get_bucket_versioning = get_bucket_versioning


# --- CloudWatch Logs -------------------------------------------------------------------------


def install_integer_log_timestamps() -> None:
    from moto.logs.models import LogEvent

    original = LogEvent.__init__

    def init(self, ingestion_time, log_event):  # noqa: ANN001
        original(self, int(ingestion_time), {**log_event, "timestamp": int(log_event["timestamp"])})

    LogEvent.__init__ = init


# --- server -----------------------------------------------------------------------------------


def install_transaction_rollback_by_item() -> None:
    """moto backs a transaction up by deep-copying the whole table once per item in it, so one
    100-item transaction into a 40,000-item table copies four million items (a 1,000-member
    discovery took minutes, all of it here). Back up only the items the transaction touches, and
    put exactly those back when it is cancelled: the same all-or-nothing outcome."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    original = DynamoDBBackend.transact_write_items
    backing_up = threading.local()

    def table_deepcopy(self, memo):  # noqa: ANN001
        if getattr(backing_up, "active", False):
            return self  # the touched items are backed up instead (below)
        cls = self.__class__
        copied = cls.__new__(cls)
        memo[id(self)] = copied
        for name, value in self.__dict__.items():
            setattr(copied, name, copy.deepcopy(value, memo))
        return copied

    def touched(self, transact_items):  # noqa: ANN001
        for entry in transact_items:
            op = next(iter(entry.values()), {})
            table = self.tables.get(op.get("TableName"))
            key = op.get("Item") if "Item" in op else op.get("Key")
            if table is None or not key or table.hash_key_attr not in key:
                continue
            if table.range_key_attr is not None and table.range_key_attr not in key:
                continue  # moto refuses the operation itself
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            yield table, hash_value, range_value

    def transact_write_items(self, transact_items):  # noqa: ANN001
        backup = [(t, h, r, copy.deepcopy(t.get_item(h, r))) for t, h, r in touched(self, transact_items)]
        backing_up.active = True
        try:
            return original(self, transact_items)
        except Exception:
            for table, hash_value, range_value, item in reversed(backup):
                if item is None:
                    table.delete_item(hash_value, range_value)
                elif range_value is not None:
                    table.items[hash_value][range_value] = item
                else:
                    table.items[hash_value] = item
            raise
        finally:
            backing_up.active = False

    Table.__deepcopy__ = table_deepcopy
    DynamoDBBackend.transact_write_items = transact_write_items


class Faults:
    """Errors to answer instead of the emulator, per operation (`X-Amz-Target`)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: dict[str, dict] = {}
        self.served: dict[str, int] = {}
        # target -> {"per_second", "error", "recent": times of the calls let through}
        self.rate_limits: dict[str, dict] = {}

    def limit(self, target: str, per_second: float, error: str) -> None:
        with self.lock:
            self.rate_limits[target] = {"per_second": per_second, "error": error, "recent": []}

    def add(self, target: str, error: str, count: int, status: int = 400, message: str = "Rate exceeded") -> None:
        with self.lock:
            self.pending[target] = {"error": error, "count": count, "status": status, "message": message}

    def take(self, target: str) -> dict | None:
        with self.lock:
            fault = self.pending.get(target)
            if not fault:
                return self._over_limit(target)
            fault["count"] -= 1
            if fault["count"] <= 0:
                del self.pending[target]
            self.served[target] = self.served.get(target, 0) + 1
            return fault

    def _over_limit(self, target: str) -> dict | None:
        """A throttling error when the target had `per_second` calls in the last second."""
        limit = self.rate_limits.get(target)
        if not limit:
            return None
        now = time.monotonic()
        limit["recent"] = [t for t in limit["recent"] if now - t < 1.0]
        if len(limit["recent"]) < limit["per_second"]:
            limit["recent"].append(now)
            return None
        self.served[target] = self.served.get(target, 0) + 1
        return {"error": limit["error"], "status": 400, "message": "Rate exceeded"}

    def report(self) -> dict:
        with self.lock:
            limits = {t: {k: v for k, v in lim.items() if k != "recent"} for t, lim in self.rate_limits.items()}
            return {"pending": dict(self.pending), "served": dict(self.served), "rate_limits": limits}


FAULTS = Faults()


class Stats:
    """AWS API calls served, by caller and operation."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: dict[str, dict[str, int]] = {}

    def count(self, environ: dict) -> None:
        service, _, _ = _caller(environ)
        auth = environ.get("HTTP_AUTHORIZATION", "")
        # The interpreter's boto clients sign with the access key "ak" (moto's choice); a
        # benchmark signs with "bench" so its own calls can be told apart.
        caller = "stepfunctions" if "Credential=ak/" in auth else "benchmark" if "Credential=bench/" in auth else "functions"
        operation = _operation(environ)
        if ".s3-control." in environ.get("HTTP_HOST", ""):
            service = "s3control"  # signed as "s3"; told apart by its host
        with self.lock:
            by_op = self.calls.setdefault(caller, {})
            key = f"{service or 'unknown'} {operation}"
            by_op[key] = by_op.get(key, 0) + 1

    def report(self) -> dict:
        with self.lock:
            return {caller: dict(sorted(ops.items())) for caller, ops in self.calls.items()}

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()


STATS = Stats()
_ID = re.compile(r"/(?:[0-9a-f]{32}|[0-9]{12}|[0-9a-f-]{36}|car-[a-z0-9]+|ou-[a-z0-9-]+|r-[a-z0-9]+)(?=/|$)")


def _operation(environ: dict) -> str:
    """The API operation a request calls: its X-Amz-Target, its query Action, or its REST route."""
    import io
    import urllib.parse

    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.rsplit(".", 1)[-1]
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" in query:
        return query["Action"][0]
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        if "Action" in form:
            return form["Action"][0]
    path = environ.get("PATH_INFO", "")
    if re.match(r"^/2015-03-31/functions/[^/]+/invocations$", path):
        return "Invoke"
    return f"{environ.get('REQUEST_METHOD', '')} {_ID.sub('/{id}', path)}"
DYNAMODB = threading.Lock()
SERIALIZE_DYNAMODB = os.environ.get("LOCAL_DYNAMODB_UNSERIALIZED") != "1"


def _json(start_response: Any, status: str, body: Any, headers: list | None = None) -> list[bytes]:
    start_response(status, [("Content-Type", "application/json"), *(headers or [])])
    return [json.dumps(body).encode()]


class ControlApp:
    """Serves `/_local/…`, injects faults, and hands everything else to moto."""

    def __init__(self, moto_app: Any):
        self.moto_app = moto_app

    def __call__(self, environ: dict, start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        host = ACCOUNT_HOST.match(environ.get("HTTP_HOST", ""))
        if host:
            _, region, _ = _caller(environ)
            environ["HTTP_HOST"] = f"{host.group(1)}.s3-control.{region}.amazonaws.com"
        if not path.startswith("/_local/") and not path.startswith("/moto-api"):
            STATS.count(environ)
        if not path.startswith("/_local/"):
            served = guardduty_members(environ, start_response)
            if served is not None:
                return served
            target = environ.get("HTTP_X_AMZ_TARGET")
            fault = FAULTS.take(target) if target else None
            if fault:
                return _json(
                    start_response,
                    f"{fault['status']} Fault",
                    {"__type": fault["error"], "message": fault["message"]},
                    [("x-amzn-ErrorType", fault["error"]), ("x-amzn-RequestId", "local-fault")],
                )
            if SERIALIZE_DYNAMODB and target and target.startswith("DynamoDB_"):
                with DYNAMODB:
                    # Consume the response inside the lock: moto may produce it lazily.
                    return list(self.moto_app(environ, start_response))
            return self.moto_app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length) or b"{}")
        method = environ["REQUEST_METHOD"]
        if path == "/_local/lambda-host" and method == "POST":
            LAMBDA_HOST["url"] = body["url"].rstrip("/")
            return _json(start_response, "200 OK", {"url": LAMBDA_HOST["url"]})
        if path == "/_local/faults" and method == "POST":
            FAULTS.add(body["target"], body["error"], int(body.get("count", 1)), int(body.get("status", 400)), body.get("message", "Rate exceeded"))
            return _json(start_response, "200 OK", FAULTS.report())
        if path == "/_local/organizations/create-account" and method == "POST":
            CREATE_ACCOUNT.plan(list(body.get("outcomes", [])))
            return _json(start_response, "200 OK", {"planned": len(CREATE_ACCOUNT.planned)})
        if path == "/_local/rate-limits" and method == "POST":
            FAULTS.limit(body["target"], float(body["per_second"]), body.get("error", "ThrottlingException"))
            return _json(start_response, "200 OK", FAULTS.report())
        if path == "/_local/organizations/members" and method == "POST":
            return _json(start_response, "200 OK", seed_members(body))
        if path == "/_local/stats" and method == "GET":
            return _json(start_response, "200 OK", STATS.report())
        if path == "/_local/stats/reset" and method == "POST":
            STATS.reset()
            return _json(start_response, "200 OK", {})
        if path == "/_local/scheduler/run" and method == "POST":
            try:
                return _json(start_response, "200 OK", SCHEDULER.run_now(body["Name"], body.get("GroupName", "default")))
            except KeyError:
                return _json(start_response, "404 Not Found", {"message": f"no schedule {body['Name']}"})
        if path == "/_local/scheduler" and method == "GET":
            return _json(start_response, "200 OK", SCHEDULER.report())
        if path == "/_local/faults" and method == "GET":
            return _json(start_response, "200 OK", FAULTS.report())
        return _json(start_response, "404 Not Found", {"message": "unknown control endpoint"})


def watch_parent() -> None:
    parent = os.getppid()

    def loop() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=loop, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # The Step Functions interpreter calls back into the emulator on this port.
    os.environ["MOTO_PORT"] = str(args.port)

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import run_simple

    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    install_lambda_forwarding()
    install_assume_role_checks()
    install_access_key_index()
    install_integer_log_timestamps()
    install_organizations_events()
    install_async_create_account()
    install_eventbridge_lambda_targets()
    install_guardduty_administrator_lookup()
    install_s3_versioning_shape()
    install_sfn_integration_names()
    install_transaction_rollback_by_item()
    SCHEDULER.start()
    watch_parent()
    app = ControlApp(DomainDispatcherApplication(create_backend_app))
    print(f"emulator listening on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
