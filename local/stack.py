"""The local stack: the whole service on loopback, with no AWS account and no Docker.

    python local/stack.py up [--json] [--no-lifecycle]

brings up, from a built workspace (`cargo build --workspace`):

1. the emulator (moto plus the extensions of local/emulator/) on a free port, with its Step
   Functions interpreter on;
2. an AWS Organization: the management account, a Security and a Logging account, and external
   member accounts, some with the provisioning role and some without;
3. the local host (local/host), which runs the real handler binaries behind the Lambda Invoke API
   and serves the HTTP API; the emulator forwards its Lambda invocations there;
4. every resource of template.yaml: the Security and Logging accounts when the template creates
   them (`--foundation-accounts create`), the table, the functions, the state machines with the
   template's DefinitionSubstitutions, the event bus, its rules and log group, and the
   functions' EventBridge Scheduler schedules (which the emulator fires);

then (unless --no-lifecycle) runs the account lifecycle of local/lifecycle.py (foundation
bootstrap, discovery, onboarding, creation, scoring) and prints what happened and where the API
is. This file provisions; lifecycle.py only uses what it provisioned. Ctrl-C or SIGTERM (or, with --json, the end of
standard input) stops everything, at any point.

    python local/stack.py create-table --endpoint URL --name NAME

creates a table exactly as template.yaml declares the accounts table (for tests that want a
table of their own).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cfn  # noqa: E402
import lifecycle  # noqa: E402
from clients import GOVERNED_REGIONS, REGION, aws, http_json, say  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE = os.path.join(ROOT, "template.yaml")
# The endpoints of the stack `up` is running (not with --json: tests run several at once).
CURRENT = os.path.join(ROOT, ".local", "stack.json")
# moto's default account: callers with unknown credentials act in it. It is the management
# account of the emulated organization, where the service is deployed.
MANAGEMENT_ACCOUNT = "123456789012"
STACK_NAME = "local"
PROVISIONING_ROLE = "stax-provisioning"
LOCAL_PRINCIPALS = {
    # user name: service role (None: deliberately unmapped, to show a 403)
    "local-admin": "admin",
    "local-operations": "operations",
    "local-user": "user",
    "local-readonly": "readonly",
    "local-outsider": None,
}
# External members of the seeded organization: (name, has the provisioning role).
SEED_MEMBERS = [("workload-alpha", True), ("workload-beta", True), ("legacy-gamma", False)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def target_dir() -> str:
    return os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))


@dataclass
class Processes:
    """Child processes, stopped together."""

    children: list[tuple[str, subprocess.Popen]] = field(default_factory=list)

    def start(self, name: str, argv: list[str], log_path: str, **kwargs: Any) -> subprocess.Popen:
        # A session of its own: a terminal's Ctrl-C reaches only the stack, which stops the
        # children in order (each also exits by itself when the stack is gone).
        with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            process = subprocess.Popen(argv, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True, **kwargs)
        self.children.append((name, process))
        return process

    def stop(self) -> None:
        for _, p in reversed(self.children):
            if p.poll() is None:
                p.terminate()
        deadline = time.time() + 5
        for _, p in reversed(self.children):
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.children.clear()


def tail(path: str, lines: int = 30) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


# --- emulator -------------------------------------------------------------------------------


def start_emulator(procs: Processes, logs: str) -> str:
    log = os.path.join(logs, "emulator.log")
    for _ in range(3):  # the free port can be taken between choosing and binding it
        port = free_port()
        process = procs.start(
            "emulator", [sys.executable, "-m", "emulator", "--port", str(port)], log,
            stdout=subprocess.DEVNULL, cwd=os.path.join(ROOT, "local"),
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while time.time() < deadline and process.poll() is None:
            try:
                http_json("GET", f"{url}/moto-api/config", timeout=2)
                # The interpreter must be on before any state machine exists.
                http_json("POST", f"{url}/moto-api/config", {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}})
                return url
            except OSError:
                time.sleep(0.2)
        if process.poll() is None:
            process.kill()
    raise RuntimeError(f"the emulator did not start; its log ends:\n{tail(log)}")


def create_table(ddb: Any, properties: dict, name: str) -> None:
    """Creates a DynamoDB table from its template properties (keys, indexes, billing, SSE)."""
    kwargs = {
        "TableName": name,
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "KeySchema": properties["KeySchema"],
        "BillingMode": properties.get("BillingMode", "PROVISIONED"),
    }
    if properties.get("GlobalSecondaryIndexes"):
        kwargs["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
    if properties.get("SSESpecification"):
        kwargs["SSESpecification"] = {"Enabled": properties["SSESpecification"].get("SSEEnabled", False)}
    if properties.get("StreamSpecification"):
        kwargs["StreamSpecification"] = {"StreamEnabled": True, **properties["StreamSpecification"]}
    ddb.create_table(**kwargs)
    ddb.get_waiter("table_exists").wait(TableName=name)
    if properties.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
        ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})


# --- the organization -------------------------------------------------------------------------


def trust_management_account() -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{MANAGEMENT_ACCOUNT}:root"}, "Action": "sts:AssumeRole"}],
    })


def create_member(org: Any, name: str, email: str, role: str) -> str:
    """Organizations CreateAccount, waited for as CloudFormation and a platform team wait for it."""
    status = org.create_account(AccountName=name, Email=email, RoleName=role)["CreateAccountStatus"]
    while status["State"] == "IN_PROGRESS":
        time.sleep(0.05)
        status = org.describe_create_account_status(CreateAccountRequestId=status["Id"])["CreateAccountStatus"]
    if status["State"] != "SUCCEEDED":
        raise RuntimeError(f"creating {name}: {status}")
    return status["AccountId"]


def seed_organization(endpoint: str, foundation_accounts: bool = True) -> dict:
    """An organization as a platform team has it before installing the service: with the
    Security and Logging accounts the deployment adopts, or (`foundation_accounts` false)
    without them, for the stack to create."""
    org = aws(endpoint, "organizations")
    organization = org.create_organization(FeatureSet="ALL")["Organization"]

    def create(name: str, role: str = "OrganizationAccountAccessRole") -> str:
        return create_member(org, name, f"aws+{name}@example.com", role)

    def provisioning_role(account_id: str) -> None:
        # As a platform team would: through the role Organizations put in the account.
        creds = aws(endpoint, "sts").assume_role(
            RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole", RoleSessionName="seed"
        )["Credentials"]
        iam = aws(endpoint, "iam", {
            "aws_access_key_id": creds["AccessKeyId"],
            "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"],
        })
        iam.create_role(RoleName=PROVISIONING_ROLE, AssumeRolePolicyDocument=trust_management_account())
        # AdministratorAccess's document, inline (the emulator does not load AWS's managed policies).
        iam.put_role_policy(RoleName=PROVISIONING_ROLE, PolicyName="AdministratorAccess", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))

    # The foundation accounts carry the provisioning role, as the service requires of them.
    security, logging = (create("security", PROVISIONING_ROLE), create("logging", PROVISIONING_ROLE)) if foundation_accounts else ("", "")
    members = []
    for name, has_role in SEED_MEMBERS:
        account_id = create(name)
        if has_role:
            provisioning_role(account_id)
        # They were made before the organization trusted IAM's root credentials management, as
        # accounts that joined it were: a root password and an access key.
        http_json("POST", f"{endpoint}/_local/iam/root-credentials",
                  {"AccountId": account_id, "Password": True, "AccessKeys": 1})
        members.append({"Name": name, "AwsAccountId": account_id, "ProvisioningRole": has_role})
    return {
        "OrganizationId": organization["Id"],
        "ManagementAccountId": organization["MasterAccountId"],
        "SecurityAccountId": security,
        "LoggingAccountId": logging,
        "Members": members,
    }


def create_principals(endpoint: str) -> dict:
    """IAM users in the management account to call the API as, one per service role."""
    iam = aws(endpoint, "iam")
    principals = {}
    for user, role in LOCAL_PRINCIPALS.items():
        arn = iam.create_user(UserName=user)["User"]["Arn"]
        key = iam.create_access_key(UserName=user)["AccessKey"]
        principals[user] = {"Arn": arn, "Role": role, "AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}
    return principals


def create_stax_sdk_role(endpoint: str) -> str:
    """The role a Cognito identity pool gives the Stax SDK's signed-in callers (local/stax_sdk.py),
    mapped to `admin`: the SDK signs with that role's session credentials, as it does against
    Stax."""
    iam = aws(endpoint, "iam")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Federated": "cognito-identity.amazonaws.com"}, "Action": "sts:AssumeRoleWithWebIdentity"}]})
    return iam.create_role(RoleName="local-stax-sdk", AssumeRolePolicyDocument=trust)["Role"]["Arn"]


# --- template resources -----------------------------------------------------------------------


def arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:{REGION}:{MANAGEMENT_ACCOUNT}:{resource}"


def create_organization_accounts(r: cfn.Resolver, endpoint: str) -> None:
    """`AWS::Organizations::Account` resources, created as CloudFormation creates them
    (CreateAccount, waited for); Ref and GetAtt AccountId give the new account's id."""
    org = aws(endpoint, "organizations")
    for name, resource in r.resources("AWS::Organizations::Account").items():
        props = r.resolve(resource["Properties"])
        account_id = create_member(org, props["AccountName"], props["Email"], props.get("RoleName", "OrganizationAccountAccessRole"))
        for parent in props.get("ParentIds", []):
            root = org.list_parents(ChildId=account_id)["Parents"][0]["Id"]
            org.move_account(AccountId=account_id, SourceParentId=root, DestinationParentId=parent)
        r.physical[name] = cfn.Physical(account_id, {"AccountId": account_id, "Arn": f"arn:aws:organizations::{MANAGEMENT_ACCOUNT}:account/{account_id}"})
        say(f"  {name}: created AWS account {account_id} ({props['AccountName']}, {props['Email']})")


def assign_physical_ids(r: cfn.Resolver) -> None:
    """The names and ARNs each resource gets locally (what Ref and GetAtt return)."""
    for name, resource in r.resources().items():
        props = resource.get("Properties", {})
        kind = resource["Type"]
        if kind == "AWS::Organizations::Account":
            if name not in r.physical:
                raise RuntimeError(f"{name} must be created (create_organization_accounts) before the rest")
        elif kind == "AWS::DynamoDB::Table":
            table = f"{STACK_NAME}-{name}"
            r.physical[name] = cfn.Physical(table, {"Arn": arn("dynamodb", f"table/{table}")})
        elif kind == "AWS::Serverless::Function":
            r.physical[name] = cfn.Physical(name, {"Arn": arn("lambda", f"function:{name}")})
        elif kind == "AWS::Serverless::StateMachine":
            machine = r.resolve(props["Name"]) if "Name" in props else name
            a = arn("states", f"stateMachine:{machine}")
            r.physical[name] = cfn.Physical(a, {"Arn": a, "Name": machine})
        elif kind == "AWS::Events::EventBus":
            bus = r.resolve(props["Name"])
            r.physical[name] = cfn.Physical(bus, {"Arn": arn("events", f"event-bus/{bus}"), "Name": bus})
        elif kind == "AWS::Logs::LogGroup":
            group = r.resolve(props["LogGroupName"])
            r.physical[name] = cfn.Physical(group, {"Arn": arn("logs", f"log-group:{group}:*")})
        elif kind == "AWS::Events::Rule":
            r.physical[name] = cfn.Physical(name, {"Arn": arn("events", f"rule/{name}")})
        elif kind == "AWS::Logs::ResourcePolicy":
            r.physical[name] = cfn.Physical(r.resolve(props["PolicyName"]), {})
        elif kind == "AWS::Serverless::HttpApi":
            r.physical[name] = cfn.Physical("local", {})
        elif kind == "AWS::IAM::Role":
            role = f"{STACK_NAME}-{name}"
            r.physical[name] = cfn.Physical(role, {"Arn": f"arn:aws:iam::{MANAGEMENT_ACCOUNT}:role/{role}"})
        else:
            raise NotImplementedError(f"the local stack cannot provision {name} ({kind}); teach local/stack.py")


LAMBDA_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def execution_role_name(function: str) -> str:
    return f"{STACK_NAME}-{function}Role"


def execution_roles(r: cfn.Resolver, endpoint: str) -> dict[str, dict[str, str]]:
    """Each function's execution role, as SAM creates it: the function's `Policies`, inline,
    and nothing else. Returns each function's credentials of its role, as Lambda gives them to
    a function; the emulator allows those credentials only what the role's policies allow
    (local/emulator/access.py), so a permission the template lacks fails the tests."""
    iam = aws(endpoint, "iam")
    credentials = {}
    for name, resource in r.resources("AWS::Serverless::Function").items():
        role = execution_role_name(name)
        role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
        for i, policy in enumerate(r.resolve(resource.get("Properties", {}).get("Policies", []))):
            if not (isinstance(policy, dict) and "Statement" in policy):
                raise NotImplementedError(f"{name}: only inline policy documents are provisioned locally, not {policy!r}")
            iam.put_role_policy(RoleName=role, PolicyName=f"{name}Policy{i}", PolicyDocument=json.dumps(policy))
        credentials[name] = http_json("POST", f"{endpoint}/_local/iam/lambda-credentials", {"RoleArn": role_arn, "SessionName": name})
    return credentials


def host_config(r: cfn.Resolver, endpoint: str, principals: dict) -> dict:
    functions, routes = {}, []
    credentials = execution_roles(r, endpoint)
    logging_config = r.function_setting({}, "LoggingConfig") or {}
    for name, resource in r.resources("AWS::Serverless::Function").items():
        binary = resource["Metadata"]["BuildProperties"]["Binary"]
        path = os.path.join(target_dir(), "debug", binary)
        if not os.path.exists(path):
            raise RuntimeError(f"{path} is missing: build the workspace first (cargo build --workspace)")
        functions[name] = {
            "binary": path,
            "env": {
                **r.function_environment(resource),
                "AWS_ACCESS_KEY_ID": credentials[name]["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": credentials[name]["SecretAccessKey"],
                "AWS_SESSION_TOKEN": credentials[name]["SessionToken"],
            },
            "timeout_seconds": int(r.function_setting(resource, "Timeout") or 3),
            "memory_mb": int(r.function_setting(resource, "MemorySize") or 128),
        }
        for event in resource.get("Properties", {}).get("Events", {}).values():
            if event["Type"] == "HttpApi":
                routes.append({"method": event["Properties"]["Method"], "path": event["Properties"]["Path"], "function": name})
    return {
        "functions": functions,
        "http_api": {
            "routes": routes,
            "anonymous_principal": principals["local-admin"]["Arn"],
            "sts_endpoint": endpoint,
        },
        "base_env": {
            "AWS_ENDPOINT_URL": endpoint,
            # The SDK honours HTTP_PROXY; through it, endpoints whose host the SDK prefixes with
            # an account id (S3 Control) still reach the emulator (see local/emulator/).
            "HTTP_PROXY": endpoint,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_LAMBDA_LOG_FORMAT": str(r.resolve(logging_config.get("LogFormat", "Text"))),
            "AWS_LAMBDA_LOG_LEVEL": str(r.resolve(logging_config.get("ApplicationLogLevel", "INFO"))),
            "RUST_BACKTRACE": "1",
        },
        "account_id": MANAGEMENT_ACCOUNT,
        "region": REGION,
    }


def start_host(procs: Processes, config: dict, logs: str) -> dict:
    config_path = os.path.join(logs, "host.json")
    with open(config_path, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
    binary = os.path.join(target_dir(), "debug", "local-host")
    log = os.path.join(logs, "host.log")
    process = procs.start("host", [binary, "--config", config_path], log, stdout=subprocess.PIPE)
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"the local host did not start; its log ends:\n{tail(log)}")
    return json.loads(line)


def zip_bytes() -> bytes:
    """A deployment package for the emulator's function records; the code runs in the host."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n# served by local/host\n")
    return buffer.getvalue()


def provision(r: cfn.Resolver, endpoint: str) -> None:
    iam = aws(endpoint, "iam")
    service_role = iam.create_role(
        RoleName="local-service-role",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]}, "Action": "sts:AssumeRole"}]}),
    )["Role"]["Arn"]
    ddb, lam, sfn = aws(endpoint, "dynamodb"), aws(endpoint, "lambda"), aws(endpoint, "stepfunctions")
    events, logs, scheduler = aws(endpoint, "events"), aws(endpoint, "logs"), aws(endpoint, "scheduler")

    for name, res in r.resources("AWS::IAM::Role").items():
        props = r.resolve(res["Properties"])
        iam.create_role(RoleName=r.ref(name), AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]))
        for policy in props.get("Policies", []):
            iam.put_role_policy(RoleName=r.ref(name), PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(policy["PolicyDocument"]))
    for name, res in r.resources("AWS::DynamoDB::Table").items():
        create_table(ddb, r.resolve(res["Properties"]), r.ref(name))
        stream = ddb.describe_table(TableName=r.ref(name))["Table"].get("LatestStreamArn")
        if stream:
            r.physical[name].attributes["StreamArn"] = stream
    for name, res in r.resources("AWS::Logs::LogGroup").items():
        props = r.resolve(res["Properties"])
        logs.create_log_group(logGroupName=props["LogGroupName"])
        if "RetentionInDays" in props:
            logs.put_retention_policy(logGroupName=props["LogGroupName"], retentionInDays=int(props["RetentionInDays"]))
    for name, res in r.resources("AWS::Logs::ResourcePolicy").items():
        props = r.resolve(res["Properties"])
        logs.put_resource_policy(policyName=props["PolicyName"], policyDocument=props["PolicyDocument"])
    for name, res in r.resources("AWS::Events::EventBus").items():
        events.create_event_bus(Name=r.ref(name))
    for name, res in r.resources("AWS::Serverless::Function").items():
        lam.create_function(
            FunctionName=name,
            Runtime=str(r.function_setting(res, "Runtime")),
            Role=service_role,
            Handler=str(r.function_setting(res, "Handler")),
            Code={"ZipFile": zip_bytes()},
            Timeout=int(r.function_setting(res, "Timeout") or 3),
            MemorySize=int(r.function_setting(res, "MemorySize") or 128),
            Environment={"Variables": r.function_environment(res)},
        )
    for name, res in r.resources("AWS::Serverless::StateMachine").items():
        props = res["Properties"]
        with open(os.path.join(ROOT, props["DefinitionUri"]), encoding="utf-8") as f:
            definition = cfn.substitute_definition(f.read(), {k: str(v) for k, v in r.resolve(props.get("DefinitionSubstitutions", {})).items()})
        sfn.create_state_machine(name=r.get_att(name, "Name"), definition=definition, roleArn=service_role, type=props.get("Type", "STANDARD"))
    for name, res in r.resources("AWS::Events::Rule").items():
        props = r.resolve(res["Properties"])
        rule = {"Name": name, "State": props.get("State", "ENABLED"), "Description": props.get("Description", "")}
        if "EventBusName" in props:
            rule["EventBusName"] = props["EventBusName"]
        if "EventPattern" in props:
            rule["EventPattern"] = json.dumps(props["EventPattern"])
        if "ScheduleExpression" in props:
            rule["ScheduleExpression"] = props["ScheduleExpression"]
        events.put_rule(**rule)
        targets = [{k: v for k, v in t.items() if k in ("Id", "Arn", "Input", "InputPath", "RoleArn")} for t in props.get("Targets", [])]
        if targets:
            events.put_targets(Rule=name, EventBusName=rule.get("EventBusName", "default"), Targets=targets)
    # Functions' event sources, as SAM expands them.
    for name, res in r.resources("AWS::Serverless::Function").items():
        for event_name, event in res.get("Properties", {}).get("Events", {}).items():
            props = r.resolve(event.get("Properties", {}))
            if event["Type"] == "EventBridgeRule":
                bus = props.get("EventBusName", "default")
                rule = f"{name}{event_name}"
                events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps(props["Pattern"]), State="ENABLED")
                events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": name, "Arn": r.get_att(name, "Arn")}])
            elif event["Type"] == "ScheduleV2":
                # As SAM expands it: an EventBridge Scheduler schedule invoking the function with
                # the event's Input (the emulator fires it; see local/emulator/scheduler.py).
                schedule = f"{name}{event_name}"
                target = {"Arn": r.get_att(name, "Arn"), "RoleArn": props.get("RoleArn", service_role)}
                if "Input" in props:
                    target["Input"] = props["Input"]
                scheduler.create_schedule(
                    Name=schedule,
                    ScheduleExpression=props["ScheduleExpression"],
                    FlexibleTimeWindow={"Mode": "OFF"},
                    Target=target,
                    State=props.get("State", "ENABLED"),
                    **({"Description": props["Description"]} if "Description" in props else {}),
                )
                say(f"  schedule {schedule}: {props['ScheduleExpression']} -> {name} {props.get('Input', '')}")
            elif event["Type"] == "DynamoDB":
                # Delivered by the emulator's stream poller (local/emulator/streams.py).
                lam.create_event_source_mapping(
                    EventSourceArn=props["Stream"], FunctionName=name,
                    StartingPosition=props.get("StartingPosition", "TRIM_HORIZON"),
                    BatchSize=int(props.get("BatchSize", 100)))
                say(f"  stream {props['Stream'].split('/')[1]} -> {name}")
            elif event["Type"] == "Schedule":
                raise NotImplementedError(f"{name}.{event_name}: use ScheduleV2 (EventBridge Scheduler)")


# --- commands ---------------------------------------------------------------------------------


class Stopped(BaseException):
    """Ctrl-C or SIGTERM: stop now, wherever the stack is (starting, running the lifecycle, idle)."""


def up(args: argparse.Namespace) -> int:
    os.makedirs(os.path.join(ROOT, ".local", "stacks"), exist_ok=True)
    logs = tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=os.path.join(ROOT, ".local", "stacks"))
    procs = Processes()
    stopping = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        if not stopping.is_set():
            stopping.set()
            raise Stopped(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        started = time.time()
        endpoint = start_emulator(procs, logs)
        say(f"Emulator (moto + extensions): {endpoint}")
        seed = seed_organization(endpoint, foundation_accounts=args.foundation_accounts == "adopt")
        principals = create_principals(endpoint)
        access_roles = {p["Arn"]: p["Role"] for p in principals.values() if p["Role"]}
        # Stax SDK callers sign in through Cognito and call as this role's sessions.
        stax_sdk_role = create_stax_sdk_role(endpoint)
        access_roles[stax_sdk_role] = "admin"
        resolver = cfn.Resolver(
            cfn.load(TEMPLATE),
            {
                "SecurityAccountId": seed["SecurityAccountId"],
                "LoggingAccountId": seed["LoggingAccountId"],
                "AccessRoles": json.dumps(access_roles),
                "LogLevel": args.log_level,
                "RootEmailTemplate": "aws+{AccountId}@example.com",
                "GovernedRegions": ",".join(GOVERNED_REGIONS),
                # The emulator's CreateAccount takes one status call, not minutes.
                "CreateAccountPollSeconds": "1",
                # A queued closure tries again, and a closing one is checked, every 2 s, not hourly.
                "CloseQueueRetrySeconds": "2",
                "CloseAccountPollSeconds": "1",
                # Often enough that a stack left running shows the schedules at work.
                "DiscoverySchedule": "rate(15 minutes)",
                "ScoringSchedule": "rate(15 minutes)",
                **dict(p.split("=", 1) for p in args.parameter),
            },
            {"AWS::Region": REGION, "AWS::AccountId": MANAGEMENT_ACCOUNT, "AWS::StackName": STACK_NAME, "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"},
        )
        create_organization_accounts(resolver, endpoint)
        seed["SecurityAccountId"], seed["LoggingAccountId"] = resolver.output("SecurityAccountId"), resolver.output("LoggingAccountId")
        say(f"Organization {seed['OrganizationId']}: management {seed['ManagementAccountId']}, security {seed['SecurityAccountId']}, logging {seed['LoggingAccountId']}, "
            + ", ".join(f"{m['Name']} {m['AwsAccountId']}{'' if m['ProvisioningRole'] else ' (no provisioning role)'}" for m in seed["Members"]))
        assign_physical_ids(resolver)
        host = start_host(procs, host_config(resolver, endpoint, principals), logs)
        http_json("POST", f"{endpoint}/_local/lambda-host", {"url": host["invoke_url"]})
        provision(resolver, endpoint)
        say(f"Provisioned template.yaml in {time.time() - started:.1f}s; logs in {logs}")
        if not args.no_lifecycle:
            lifecycle.run(endpoint, resolver, host["api_url"])
        ready = {
            "aws_endpoint": endpoint,
            "api_url": host["api_url"],
            "invoke_url": host["invoke_url"],
            "region": REGION,
            "governed_regions": [r.strip() for r in resolver.values["GovernedRegions"].split(",") if r.strip()] or [REGION],
            "account_id": MANAGEMENT_ACCOUNT,
            "table": resolver.ref("AccountsTable"),
            "state_machines": {n: resolver.ref(n) for n in resolver.resources("AWS::Serverless::StateMachine")},
            "event_bus": resolver.ref("EventBus"),
            "event_log_group": resolver.ref("ServiceEventLog"),
            "organization": seed,
            "principals": principals,
            "stax_sdk_role": stax_sdk_role,
            "logs": logs,
        }
        if args.json:
            print(json.dumps(ready), flush=True)
            # Stop when whoever started us closes our input (a test run ending, even abruptly).
            threading.Thread(target=lambda: (sys.stdin.read(), stopping.set()), daemon=True).start()
        else:
            # Where the running stack is, for tools such as local/show_account.py.
            with open(CURRENT, "w", encoding="utf-8") as f:
                json.dump(ready, f, indent=2)
            say("")
            say(f"API: {host['api_url']}   (unsigned requests act as {principals['local-admin']['Arn']}, role admin)")
            say(f"  curl -s {host['api_url']}/20190206/accounts")
            say(f"AWS emulator: {endpoint}   (AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing)")
            say("What assurance left in an account: ./dev show-account <AwsAccountId>")
            say("Ctrl-C stops everything.")
        while not stopping.wait(0.5):
            for name, p in procs.children:
                if p.poll() is not None:
                    say(f"{name} exited with {p.returncode}; its log ends:\n{tail(os.path.join(logs, name + '.log'))}")
                    return 1
        return 0
    except Stopped as signalled:
        say(f"{signalled}: stopping")
        return 0
    except Exception as e:  # noqa: BLE001 - report and clean up
        say(f"local stack failed: {e}")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        procs.stop()
        if not args.json:
            with contextlib.suppress(FileNotFoundError):
                os.remove(CURRENT)
        if args.json and not args.keep_logs:
            shutil.rmtree(logs, ignore_errors=True)
        say("Local stack stopped.")


def create_table_command(args: argparse.Namespace) -> int:
    template = cfn.load(TEMPLATE)
    props = template["Resources"]["AccountsTable"]["Properties"]
    create_table(aws(args.endpoint, "dynamodb"), props, args.name)
    return 0


def parameter(text: str) -> str:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description="The Accounts local stack")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("up", help="start the local stack and run the lifecycle")
    p.add_argument("--json", action="store_true", help="print the endpoints as one JSON line; stop at end of stdin")
    p.add_argument("--no-lifecycle", action="store_true", help="provision only")
    p.add_argument("--keep-logs", action="store_true", help="with --json: keep the log folder")
    p.add_argument("--log-level", default="INFO", help="the functions' log level")
    p.add_argument(
        "--parameter", action="append", default=[], metavar="NAME=VALUE", type=parameter,
        help="a template parameter's value, e.g. DiscoverySchedule='rate(5 minutes)' (repeatable)",
    )
    p.add_argument(
        "--foundation-accounts", choices=["adopt", "create"], default="adopt",
        help="adopt: the organization has Security and Logging accounts, named by the template's "
        "parameters; create: it has none and the template's SecurityAccount/LoggingAccount create them",
    )
    p.set_defaults(run=up)
    p = commands.add_parser("create-table", help="create a table as template.yaml declares it")
    p.add_argument("--endpoint", required=True)
    p.add_argument("--name", required=True)
    p.set_defaults(run=create_table_command)
    args = parser.parse_args()
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
