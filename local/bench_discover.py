"""Benchmark: organization-wide discovery of a 10,000-account organization on the local stack.

Starts a local stack, runs the foundation bootstrap, adds N members to the emulated organization
at once (every 50th without the provisioning role), optionally throttles ListAccounts the way
AWS does, then runs discovery twice through the API (`POST /20190206/accounts/discover`, the
discovery state machine, the discover function) and prints for each run:

- wall time from the API call to the task's SUCCEEDED;
- ListAccounts calls (at most ceil(N/20)) and throttled ones answered TooManyRequests;
- AssumeRole calls (the role checks);
- DynamoDB calls by the functions, and among them the writes, split into the accounts' records
  and the run's own bookkeeping (its task and the discovery slot);
- the discover function's peak memory (VmHWM of its process; the local host runs debug builds).

The second run, over the unchanged organization, must write no record.

Usage: python local/bench_discover.py [--members 10000] [--list-accounts-per-second 5]
(./dev bench-discover builds first)
"""

from __future__ import annotations

import argparse
import math
import json
import os
import sys
import time

from bench import bootstrapped_stack, debug_binary, follow_task, http, peak_memory_kb

# A run's own writes, each one transaction: the discovery slot taken and released, its task
# created, moved to RUNNING and to SUCCEEDED. Every other write is an account record's.
BOOKKEEPING = 5
WRITES = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")


def run(api: str, endpoint: str, binary: str, log: str) -> dict:
    log_start = os.path.getsize(log)
    http("POST", f"{endpoint}/_local/stats/reset")
    served_before = http("GET", f"{endpoint}/_local/faults").get("served", {})
    started = time.time()
    envelope = http("POST", f"{api}/20190206/accounts/discover", {})
    task = follow_task(api, envelope["TaskId"])
    elapsed = time.time() - started
    calls = http("GET", f"{endpoint}/_local/stats").get("functions", {})
    served = http("GET", f"{endpoint}/_local/faults").get("served", {})
    throttled = sum(n - served_before.get(k, 0) for k, n in served.items() if k.endswith(".ListAccounts"))
    dynamodb = {op.split(" ", 1)[1]: n for op, n in calls.items() if op.startswith("dynamodb ")}
    return {
        "task": task,
        "seconds": elapsed,
        "list_accounts": calls.get("organizations ListAccounts", 0),
        "throttled": throttled,
        "assume_role": calls.get("sts AssumeRole", 0),
        "dynamodb": sum(dynamodb.values()),
        "dynamodb_writes": {op: n for op, n in dynamodb.items() if op in WRITES},
        "peak_kb": peak_memory_kb(binary),
        "phases": phases(log, log_start),
    }


PHASES = ("listed the organization", "read the records", "checked provisioning roles", "recorded new members")


def phases(log: str, start: int) -> list[str]:
    """The discover function's own timing lines (milliseconds since the run began, except the
    role checks and the records, which time themselves) written to the host log since `start`."""
    found = []
    with open(log, encoding="utf-8", errors="replace") as f:
        f.seek(start)
        for line in f:
            if not line.startswith("[DiscoverFunction") or "elapsed_ms" not in line:
                continue
            fields = json.loads(line.split("] ", 1)[1]).get("fields", {})
            if fields.get("message") in PHASES:
                extra = ", ".join(f"{k} {v}" for k, v in fields.items() if k not in ("message", "elapsed_ms"))
                found.append(f"{fields['message']} ({extra}): {int(fields['elapsed_ms']) / 1000:.1f} s")
    return found


def report(title: str, r: dict, members: int) -> None:
    writes = r["dynamodb_writes"]
    records = sum(writes.values()) - BOOKKEEPING
    summary = r["task"]["Logs"][-1]
    print(f"{title}: task {r['task']['Status']} in {r['seconds']:.1f} s")
    print(f"  {summary}")
    print(f"  ListAccounts calls:   {r['list_accounts']} (ceil({members + 3}/20) = {math.ceil((members + 3) / 20)}), throttled and retried: {r['throttled']}")
    print(f"  AssumeRole calls:     {r['assume_role']}")
    print(f"  DynamoDB calls:       {r['dynamodb']}; writes {sum(writes.values())} ({', '.join(f'{k} {v}' for k, v in sorted(writes.items())) or 'none'})")
    print(f"    of which records:   {records}; the run's task and slot: {BOOKKEEPING}")
    for phase in r["phases"]:
        print(f"  {phase}")
    print(f"  discover peak memory: {r['peak_kb'] / 1024:.1f} MiB (VmHWM, debug build)" if r["peak_kb"] else "  discover peak memory: (process not found)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--list-accounts-per-second", type=float, default=5,
                        help="throttle ListAccounts above this rate (0: no throttling)")
    args = parser.parse_args()
    with bootstrapped_stack("--keep-logs") as (ready, _):
        endpoint, api = ready["aws_endpoint"], ready["api_url"]
        log = os.path.join(ready["logs"], "host.log")
        binary = debug_binary("discover")

        started = time.time()
        seeded = http("POST", f"{endpoint}/_local/organizations/members", {"count": args.members, "without_role_every": 50})
        print(f"Seeded {seeded['created']} members ({seeded['without_role']} without the provisioning role) in {time.time() - started:.1f} s")
        if args.list_accounts_per_second:
            http("POST", f"{endpoint}/_local/rate-limits", {"target": "AWSOrganizationsV20161128.ListAccounts",
                                                             "per_second": args.list_accounts_per_second, "error": "TooManyRequestsException"})
            print(f"ListAccounts throttled above {args.list_accounts_per_second:g} requests per second")

        first = run(api, endpoint, binary, log)
        report("First run", first, args.members)
        second = run(api, endpoint, binary, log)
        report("Second run (unchanged organization)", second, args.members)
        second_records = sum(second["dynamodb_writes"].values()) - BOOKKEEPING
        ok = first["task"]["Status"] == second["task"]["Status"] == "SUCCEEDED" and second_records == 0
        print(f"Logs: {ready['logs']}")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
