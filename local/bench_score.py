"""Benchmark: a compliance scoring run over N accounts on the local stack.

Starts a local stack, runs the foundation bootstrap, adds N members to the emulated organization
(each with the provisioning role), records them through discovery, then starts a scoring run
through the API (`POST /20190206/accounts/compliance`) and prints:

- wall time from the API call to the task's SUCCEEDED, and accounts scored per second;
- the scoring execution's history events and Map iterations (Step Functions' limit is 25,000
  events per execution; the run carries batch numbers only, so its payloads stay small);
- Lambda invocations, and AWS API calls by the functions by service (per account and in all);
- DynamoDB writes (the score on each record, its latest results and history, in one
  transaction per account);
- the score-compliance function's peak memory (VmHWM; the local host runs debug builds).

Usage: python local/bench_score.py [--accounts 1000]   (./dev bench-score builds first)
"""

from __future__ import annotations

import argparse
import sys
import time

from bench import bootstrapped_stack, by_service, debug_binary, execution_arn, follow_task, history, http, peak_memory_kb

STATE_MACHINE = "ScoringStateMachine"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    args = parser.parse_args()
    with bootstrapped_stack() as (ready, sfn):
        endpoint, api = ready["aws_endpoint"], ready["api_url"]
        binary = debug_binary("score-compliance")
        http("POST", f"{endpoint}/_local/organizations/members", {"count": args.accounts, "without_role_every": 0})
        discovery = follow_task(api, http("POST", f"{api}/20190206/accounts/discover", {})["TaskId"])
        scorable = [a for a in http("GET", f"{api}/20190206/accounts")["Accounts"]
                    if a["Status"] in ("DISCOVERED", "ONBOARDING", "ACTIVE", "SUSPENDED", "MAINTENANCE")]
        print(f"Seeded and discovered {args.accounts} members ({discovery['Status']}); {len(scorable)} scorable accounts")

        http("POST", f"{endpoint}/_local/stats/reset")
        started = time.time()
        envelope = http("POST", f"{api}/20190206/accounts/compliance", {})
        task = follow_task(api, envelope["TaskId"])
        elapsed = time.time() - started
        calls = http("GET", f"{endpoint}/_local/stats")
        functions = calls.get("functions", {})
        arn = execution_arn(ready, STATE_MACHINE, envelope["TaskId"])
        events = history(sfn, arn)
        iterations = sum(1 for e in events if e["type"] == "MapIterationSucceeded" or e["type"] == "MapIterationFailed")
        invocations = calls.get("stepfunctions", {}).get("lambda Invoke", 0)
        writes = {op.split(" ", 1)[1]: n for op, n in functions.items()
                  if op.split(" ", 1)[1] in ("PutItem", "UpdateItem", "TransactWriteItems", "BatchWriteItem")
                  and op.startswith("dynamodb ")}
        peak = peak_memory_kb(binary)
        n = len(scorable)
        print(f"Scoring run: task {task['Status']} in {elapsed:.1f} s ({n / elapsed:.1f} accounts/s)")
        print(f"  {task['Logs'][-1]}")
        print(f"  execution: {len(events)} history events, {iterations} Map iterations (25,000 events is the limit)")
        print(f"  Lambda invocations by Step Functions: {invocations}")
        services = by_service(functions)
        total = sum(services.values())
        print(f"  AWS calls by the functions: {total} ({total / max(n, 1):.1f} per account)")
        for service, count in services.items():
            print(f"    {service:<14} {count}")
        print(f"  DynamoDB writes: {', '.join(f'{k} {v}' for k, v in sorted(writes.items()))}")
        print(f"  score-compliance peak memory: {peak / 1024:.1f} MiB (VmHWM, debug build)" if peak else "  peak memory: (process not found)")
        return 0 if task["Status"] == "SUCCEEDED" else 1


if __name__ == "__main__":
    sys.exit(main())
