"""Benchmark: what one account creation costs on the local stack.

Starts a local stack, runs the foundation bootstrap, then creates one account through the API
and prints, for that creation:

- the executions it ran and their state transitions (create workflow + Account Assurance);
- Lambda invocations;
- AWS API calls made by the functions, by service, and the calls Step Functions itself made
  (Lambda Invoke, the nested execution's polling);
- the time from the API call to the task's SUCCEEDED, the time spent waiting for AWS's
  CreateAccount (the workflow's Wait states), and the difference: the workflow's own time,
  which DESIGN §7 budgets at 60 s.

The emulator's CreateAccount is done after one status call, so waiting is one poll interval
(CreateAccountPollSeconds = 1 locally); in AWS it is minutes, and is not the workflow's cost.

Usage: python local/bench_create.py       (./dev bench-create builds first)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUDGET_SECONDS = 60


def http(method: str, url: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"null")


def history(sfn, arn: str) -> list[dict]:
    events, token = [], None
    while True:
        page = sfn.get_execution_history(executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {}))
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events


def waited(events: list[dict]) -> float:
    """Seconds spent in Wait states."""
    total, entered = 0.0, None
    for e in events:
        if e["type"] == "WaitStateEntered":
            entered = e["timestamp"]
        elif e["type"] == "WaitStateExited" and entered is not None:
            total += (e["timestamp"] - entered).total_seconds()
            entered = None
    return total


def main() -> int:
    stack = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "local", "stack.py"), "up", "--json", "--no-lifecycle"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        ready = json.loads(stack.stdout.readline())
        endpoint, api = ready["aws_endpoint"], ready["api_url"]
        # A caller of its own, so the emulator's counts show only the service's calls.
        sfn = boto3.client("stepfunctions", endpoint_url=endpoint, region_name=ready["region"],
                           aws_access_key_id="bench", aws_secret_access_key="bench")
        boot = sfn.start_execution(stateMachineArn=ready["state_machines"]["FoundationStateMachine"], name=f"bench-{int(time.time())}")
        while sfn.describe_execution(executionArn=boot["executionArn"])["status"] == "RUNNING":
            time.sleep(0.2)

        http("POST", f"{endpoint}/_local/stats/reset")
        started = time.time()
        created = http("POST", f"{api}/20190206/accounts", {"Name": "benchmark", "AccountType": "default"})
        task_id = created["TaskId"]
        create_arn = ready["state_machines"]["CreateAccountStateMachine"].replace(":stateMachine:", ":execution:") + f":{task_id}"
        while sfn.describe_execution(executionArn=create_arn)["status"] == "RUNNING":
            time.sleep(0.05)
        elapsed = time.time() - started
        stats = http("GET", f"{endpoint}/_local/stats")
        task = http("GET", f"{api}/20190206/task/{task_id}")
        stats_after_task = http("GET", f"{endpoint}/_local/stats")

        assurance_arn = ready["state_machines"]["AssuranceStateMachine"].replace(":stateMachine:", ":execution:") + f":{task_id}-assurance"
        runs = {"create": history(sfn, create_arn), "assurance": history(sfn, assurance_arn)}
        transitions = {name: sum(1 for e in events if e["type"].endswith("StateEntered")) for name, events in runs.items()}
        invocations = sum(1 for events in runs.values() for e in events if e["type"] == "TaskScheduled" and e.get("taskScheduledEventDetails", {}).get("resourceType") == "lambda")
        wait = sum(waited(events) for events in runs.values())

        functions = stats.get("functions", {})
        by_service: dict[str, int] = {}
        for op, n in functions.items():
            service = op.split(" ", 1)[0]
            by_service[service] = by_service.get(service, 0) + n
        interpreter = stats.get("stepfunctions", {})
        reading = sum(stats_after_task.get("functions", {}).values()) - sum(functions.values())

        print(f"One account creation on the local stack (task {task['Status']}, {len(task['Logs'])} log lines)")
        print(f"  executions:          {len(runs)} (create workflow, Account Assurance)")
        print(f"  state transitions:   {sum(transitions.values())} ({', '.join(f'{k} {v}' for k, v in transitions.items())})")
        print(f"  Lambda invocations:  {invocations} (+1 for the API's POST)")
        print(f"  AWS API calls by the functions: {sum(functions.values())}")
        for service, n in sorted(by_service.items(), key=lambda kv: -kv[1]):
            print(f"    {service:<14} {n}")
        print(f"  calls Step Functions made itself: {sum(interpreter.values())} ({', '.join(f'{k} {v}' for k, v in interpreter.items())})")
        print(f"  (reading the task back through the API: {reading} more DynamoDB calls)")
        print(f"  end to end: {elapsed:.2f} s; waiting for CreateAccount: {wait:.2f} s; workflow's own time: {elapsed - wait:.2f} s (budget {BUDGET_SECONDS} s)")
        return 0 if task["Status"] == "SUCCEEDED" and elapsed - wait <= BUDGET_SECONDS else 1
    finally:
        stack.stdin.close()
        stack.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
