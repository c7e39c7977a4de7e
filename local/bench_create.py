"""Benchmark: what one account creation costs on the local stack.

Starts a local stack, runs the foundation bootstrap, then creates one account through the API
and prints, for that creation:

- the executions it ran and their state transitions (create workflow + Account Assurance);
- Lambda invocations;
- AWS API calls made by the functions, by service, and the calls Step Functions itself made
  (Lambda Invoke, the nested execution's polling);
- the time from the API call to the task's SUCCEEDED, the time spent waiting for AWS's
  CreateAccount (the workflow's Wait states), and the difference: the workflow's own time,
  which the README budgets at 60 s.

The emulator's CreateAccount is done after one status call, so waiting is one poll interval
(CreateAccountPollSeconds = 1 locally); in AWS it is minutes, and is not the workflow's cost.

Usage: python local/bench_create.py       (./dev bench-create builds first)
"""

from __future__ import annotations

import sys
import time

from bench import bootstrapped_stack, by_service, execution_arn, history, http

BUDGET_SECONDS = 60


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
    with bootstrapped_stack() as (ready, sfn):
        endpoint, api = ready["aws_endpoint"], ready["api_url"]
        http("POST", f"{endpoint}/_local/stats/reset")
        started = time.time()
        created = http("POST", f"{api}/20190206/accounts", {"Name": "benchmark", "AccountType": "default"})
        task_id = created["TaskId"]
        create_arn = execution_arn(ready, "CreateAccountStateMachine", task_id)
        while sfn.describe_execution(executionArn=create_arn)["status"] == "RUNNING":
            time.sleep(0.05)
        elapsed = time.time() - started
        stats = http("GET", f"{endpoint}/_local/stats")
        task = http("GET", f"{api}/20190206/task/{task_id}")
        stats_after_task = http("GET", f"{endpoint}/_local/stats")

        assurance_arn = execution_arn(ready, "AssuranceStateMachine", f"{task_id}-assurance")
        runs = {"create": history(sfn, create_arn), "assurance": history(sfn, assurance_arn)}
        transitions = {name: sum(1 for e in events if e["type"].endswith("StateEntered")) for name, events in runs.items()}
        invocations = sum(1 for events in runs.values() for e in events if e["type"] == "TaskScheduled" and e.get("taskScheduledEventDetails", {}).get("resourceType") == "lambda")
        wait = sum(waited(events) for events in runs.values())

        functions = stats.get("functions", {})
        interpreter = stats.get("stepfunctions", {})
        reading = sum(stats_after_task.get("functions", {}).values()) - sum(functions.values())

        print(f"One account creation on the local stack (task {task['Status']}, {len(task['Logs'])} log lines)")
        print(f"  executions:          {len(runs)} (create workflow, Account Assurance)")
        print(f"  state transitions:   {sum(transitions.values())} ({', '.join(f'{k} {v}' for k, v in transitions.items())})")
        print(f"  Lambda invocations:  {invocations} (+1 for the API's POST)")
        print(f"  AWS API calls by the functions: {sum(functions.values())}")
        for service, n in by_service(functions).items():
            print(f"    {service:<14} {n}")
        print(f"  calls Step Functions made itself: {sum(interpreter.values())} ({', '.join(f'{k} {v}' for k, v in interpreter.items())})")
        print(f"  (reading the task back through the API: {reading} more DynamoDB calls)")
        print(f"  end to end: {elapsed:.2f} s; waiting for CreateAccount: {wait:.2f} s; workflow's own time: {elapsed - wait:.2f} s (budget {BUDGET_SECONDS} s)")
        return 0 if task["Status"] == "SUCCEEDED" and elapsed - wait <= BUDGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
