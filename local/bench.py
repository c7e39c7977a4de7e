"""What the benchmarks share: a local stack of their own with the foundation bootstrapped, JSON
over HTTP, execution histories, calls counted by service, a function's peak memory."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from typing import Any, Iterator

import boto3

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clients import http_json  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def http(method: str, url: str, body: dict | None = None, timeout: float = 600) -> Any:
    """JSON over HTTP, with the patience a benchmark's long calls need."""
    return http_json(method, url, body, timeout)


@contextlib.contextmanager
def bootstrapped_stack(*extra: str) -> Iterator[tuple[dict, Any]]:
    """A local stack (`stack.py up --json --no-lifecycle`), the foundation bootstrap run on it;
    yields its ready line and a Step Functions client that signs as the caller `bench`, so the
    emulator's call counts can tell the benchmark's own calls apart. Stops the stack after."""
    stack = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "local", "stack.py"), "up", "--json", "--no-lifecycle", *extra],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        ready = json.loads(stack.stdout.readline())
        sfn = boto3.client("stepfunctions", endpoint_url=ready["aws_endpoint"], region_name=ready["region"],
                           aws_access_key_id="bench", aws_secret_access_key="bench")
        boot = sfn.start_execution(stateMachineArn=ready["state_machines"]["FoundationStateMachine"], name=f"bench-{int(time.time())}")
        while sfn.describe_execution(executionArn=boot["executionArn"])["status"] == "RUNNING":
            time.sleep(0.2)
        yield ready, sfn
    finally:
        stack.stdin.close()
        stack.wait(timeout=60)


def execution_arn(ready: dict, state_machine: str, name: str) -> str:
    return ready["state_machines"][state_machine].replace(":stateMachine:", ":execution:") + f":{name}"


def history(sfn: Any, arn: str) -> list[dict]:
    events, token = [], None
    while True:
        page = sfn.get_execution_history(executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {}))
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events


def follow_task(api: str, task_id: str, timeout: float = 3600) -> dict:
    """Polls GET /20190206/task/{id} until the task ends (or `timeout`)."""
    started = time.time()
    task = {"Status": "STARTED"}
    while task["Status"] in ("STARTED", "RUNNING") and time.time() - started < timeout:
        time.sleep(0.2)
        task = http("GET", f"{api}/20190206/task/{task_id}")
    return task


def by_service(calls: dict[str, int]) -> dict[str, int]:
    """`{"service Operation": n}` summed by service, largest first."""
    totals: dict[str, int] = {}
    for op, n in calls.items():
        service = op.split(" ", 1)[0]
        totals[service] = totals.get(service, 0) + n
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def peak_memory_kb(binary: str) -> int | None:
    """VmHWM of the running process of `binary` (the function's warm instance)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read().split(b"\0")[0].decode() != binary:
                    continue
            with open(f"/proc/{pid}/status", encoding="utf-8") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1])
        except OSError:
            continue
    return None


def debug_binary(name: str) -> str:
    return os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "debug", name)
