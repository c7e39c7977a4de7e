"""The account lifecycle `./dev up` runs on a provisioned local stack, through the API as a
user would (and the foundation bootstrap's state machine, as a deployment would): bootstrap,
discovery, onboarding, creation, scoring, what the API then reports, and day two: an update, a
suspension and reactivation, the policies in force, the audit trail, a closure."""

from __future__ import annotations

import json
import time

from typing import TYPE_CHECKING

from clients import aws, http_json, say

if TYPE_CHECKING:
    import cfn


def run_execution(endpoint: str, state_machine_arn: str, payload: dict, timeout: float = 300) -> dict:
    sfn = aws(endpoint, "stepfunctions")
    name = f"local-{int(time.time() * 1000)}"
    execution = sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload))["executionArn"]
    deadline = time.time() + timeout
    while time.time() < deadline:
        d = sfn.describe_execution(executionArn=execution)
        if d["status"] != "RUNNING":
            return d
        time.sleep(0.25)
    raise TimeoutError(f"{execution} still running after {timeout}s")


def print_accounts(api_url: str) -> None:
    accounts = http_json("GET", f"{api_url}/20190206/accounts?sort=Name&sort_order=ASC")["Accounts"]
    say(f"  {'Name':<16} {'AwsAccountId':<13} {'AccountRole':<11} {'AccountType':<22} {'Status':<13} {'AssuranceState':<15} Compliance")
    for a in accounts:
        c = a.get("Compliance")
        score = f"{c.get('Score', '-')} (L1 {c.get('L1Score', '-')}, L2 {c.get('L2Score', '-')})" if c else "-"
        say(f"  {a['Name']:<16} {a.get('AwsAccountId', '-'):<13} {a['AccountRole']:<11} {a.get('AccountTypeName', '-'):<22} {a['Status']:<13} {a['AssuranceState']:<15} {score}")


def follow_task(api_url: str, envelope: dict, timeout: float = 300) -> dict:
    """Polls GET /20190206/task/{id} until the task ends; prints its logs."""
    started = time.time()
    task_id = envelope["TaskId"]
    say(f"  task {task_id}: {envelope['Detail']['OperationStatus']}")
    task = {"Status": "STARTED"}
    while task["Status"] in ("STARTED", "RUNNING") and time.time() - started < timeout:
        time.sleep(0.5)
        task = http_json("GET", f"{api_url}/20190206/task/{task_id}")
    for line in task["Logs"]:
        say(f"  | {line}")
    say(f"  task {task['Status']} in {time.time() - started:.1f}s")
    return task


def run(endpoint: str, r: cfn.Resolver, api_url: str) -> None:
    say("Foundation bootstrap (FoundationStateMachine):")
    started = time.time()
    result = run_execution(endpoint, r.ref("FoundationStateMachine"), {})
    if result["status"] != "SUCCEEDED":
        raise RuntimeError(f"the foundation bootstrap ended {result['status']}: {result.get('error')}: {result.get('cause')}")
    output = json.loads(result["output"])
    for a in output["Accounts"]:
        say(f"  {a['Outcome']:<16} {a['Name']} ({a['AwsAccountId']}) as {a['AccountRole']} in {a['AccountTypeName']}")
    for step in output["Steps"].values():
        for change in step.get("Changes", []) if isinstance(step, dict) else []:
            say(f"  {step['Concern']}: {change}")
    say(f"  took {time.time() - started:.1f}s")

    say("Discover the organization (POST /20190206/accounts/discover):")
    follow_task(api_url, http_json("POST", f"{api_url}/20190206/accounts/discover", {}))
    print_accounts(api_url)

    discovered = [a for a in http_json("GET", f"{api_url}/20190206/accounts?filter=DISCOVERED&sort=Name&sort_order=ASC")["Accounts"]]
    if discovered:
        target = discovered[0]
        say(f"Onboard {target['Name']} (POST /20190206/accounts/onboard, AwsAccountId {target['AwsAccountId']}, AccountType default):")
        follow_task(api_url, http_json("POST", f"{api_url}/20190206/accounts/onboard", {"AwsAccountId": target["AwsAccountId"], "AccountType": "default"}))

    name = f"sandbox-{time.strftime('%H%M%S')}"
    say(f"Create account {name} (POST /20190206/accounts, AccountType default):")
    follow_task(api_url, http_json("POST", f"{api_url}/20190206/accounts", {"Name": name, "AccountType": "default", "Tags": {"CostCode": "local"}}))
    say("Score every account's compliance (POST /20190206/accounts/compliance):")
    follow_task(api_url, http_json("POST", f"{api_url}/20190206/accounts/compliance", {}))
    say("Accounts the API reports (GET /20190206/accounts):")
    print_accounts(api_url)
    accounts = http_json("GET", f"{api_url}/20190206/accounts?sort=Name&sort_order=ASC")["Accounts"]
    assured = next((a for a in accounts if a["Name"] == name), None)
    external = next((a for a in accounts if a["Status"] == "DISCOVERED"), None)
    if assured and external:
        results = {
            a["Name"]: {r["RuleId"]: r for r in http_json("GET", f"{api_url}/20190206/accounts/{a['Id']}/compliance")["Results"]}
            for a in (assured, external)
        }
        differ = [rid for rid, r in results[assured["Name"]].items() if r["State"] != results[external["Name"]][rid]["State"]]
        say(f"Rules that differ between {assured['Name']} and {external['Name']} (GET /20190206/accounts/{{id}}/compliance):")
        for rid in differ:
            a, e = results[assured["Name"]][rid], results[external["Name"]][rid]
            say(f"  {rid:<26} {a['State']:<7} vs {e['State']:<7} {e['Title']}: {e['Reason']}")

    if assured:
        day_two(api_url, assured, onboarded=discovered[0] if discovered else None)


def day_two(api_url: str, account: dict, onboarded: dict | None) -> None:
    """Managing accounts after day one: an Account Type, an update that moves the account into it,
    suspend, the policies in force, reactivate, the audit trail, and a closure."""
    path = f"{api_url}/20190206/accounts/{account['Id']}"
    say("Create Account Type Sandbox (POST /20190206/accounts/types: its OU made under the root):")
    sandbox = http_json("POST", f"{api_url}/20190206/accounts/types", {"Name": "Sandbox"})["Detail"]["AccountType"]
    say(f"  {sandbox['Name']} {sandbox['Id']} {sandbox['Status']}")
    say("Create policy sandbox-guardrails and attach it to Sandbox (POST /20190206/policies, …/{id}/attachments):")
    deny_leaving = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Action": ["organizations:LeaveOrganization", "account:CloseAccount"], "Resource": "*"}]}
    created = http_json("POST", f"{api_url}/20190206/policies", {
        "Name": "sandbox-guardrails", "Description": "Sandboxes stay in the organization", "Policy": json.dumps(deny_leaving)})
    policy_id = created["Detail"]["Policy"]["PolicyId"]
    attached = http_json("POST", f"{api_url}/20190206/policies/{policy_id}/attachments", {"AccountTypeId": sandbox["Id"]})
    say(f"  {created['Detail']['Message']}; {attached['Detail']['Message']}")
    say(f"Update {account['Name']} (PUT /20190206/accounts/{{id}}: AwsAccountName, Tags, AccountType Sandbox):")
    follow_task(api_url, http_json("PUT", path, {"AwsAccountName": f"{account['Name']} (renamed)", "Tags": {"CostCode": "local", "Team": "platform"}, "AccountType": sandbox["Id"]}))
    say(f"Suspend {account['Name']} (POST /20190206/accounts/{{id}}/suspend):")
    follow_task(api_url, http_json("POST", f"{path}/suspend"))
    say("Policies in force (GET /20190206/accounts/{id}/policies):")
    for p in http_json("GET", f"{path}/policies")["PolicyAttachments"]:
        say(f"  {p['PolicyName']:<22} {p['PolicyAttachmentType']:<20} on {p['AwsTargetId']}")
    drift = http_json("POST", f"{api_url}/20190206/policies/drift")
    say(f"Policy drift run (POST /20190206/policies/drift): {drift['Detail']['Message']}")
    say(f"Reactivate {account['Name']} (POST /20190206/accounts/{{id}}/reactivate):")
    follow_task(api_url, http_json("POST", f"{path}/reactivate"))
    events = http_json("GET", f"{path}/events?limit=1000")
    say(f"Audit trail (GET /20190206/accounts/{{id}}/events): {events['Paging']['Total']} versions; the status changes:")
    for e in reversed(events["Events"]):
        if "To" in e:
            actor = e["Actor"].split(":execution:")[-1].split(":")[0] if ":execution:" in e["Actor"] else e["Actor"].split("/")[-1]
            say(f"  v{e['Version']:<3} {e['At']}  {e.get('From', '-'):<12} -> {e['To']:<12} {actor}")
    if onboarded:
        record = http_json("GET", f"{api_url}/20190206/accounts?aws_account_id_filter={onboarded['AwsAccountId']}")["Accounts"][0]
        say(f"Close {record['Name']} (POST /20190206/accounts/close):")
        follow_task(api_url, http_json("POST", f"{api_url}/20190206/accounts/close", {"Id": record["Id"]}))
