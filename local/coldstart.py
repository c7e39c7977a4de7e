"""Cold-start benchmark of the release handler binaries (the README's budget).

Starts a local stack, then runs the cold-start probe (../shared/tools/lambda-coldstart.py, or
$COLDSTART_TOOL) on each function's release binary with that function's environment from
template.yaml, pointed at the stack's emulator, so the first event does the function's real work:
`api` answers GET /20190206/accounts, `register-foundation` records the foundation accounts.

Prints, per binary: stripped size, init time (process start to first Runtime API poll, median),
first-event time, peak RSS.

Usage: python local/coldstart.py [--runs N]    (./dev coldstart builds the binaries first)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

EVENTS = {
    "ApiFunction": {
        "version": "2.0",
        "routeKey": "GET /20190206/accounts",
        "rawPath": "/20190206/accounts",
        "rawQueryString": "",
        "headers": {"host": "localhost"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "authorizer": {"iam": {"accountId": "123456789012", "userArn": "arn:aws:iam::123456789012:user/local-admin"}},
            "http": {"method": "GET", "path": "/20190206/accounts", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "coldstart"},
            "requestId": "coldstart",
            "routeKey": "GET /20190206/accounts",
            "stage": "$default",
            "time": "27/Nov/2026:00:00:00 +0000",
            "timeEpoch": 0,
        },
        "isBase64Encoded": False,
    },
    "RegisterFoundationFunction": {},
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    tool = os.environ.get("COLDSTART_TOOL", os.path.join(ROOT, "..", "shared", "tools", "lambda-coldstart.py"))
    if not os.path.exists(tool):
        print(f"the cold-start probe {tool} is missing; set COLDSTART_TOOL", file=sys.stderr)
        return 2
    stack = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "local", "stack.py"), "up", "--json", "--no-lifecycle"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        ready = json.loads(stack.stdout.readline())
        with open(os.path.join(ready["logs"], "host.json"), encoding="utf-8") as f:
            host = json.load(f)
        for name, spec in host["functions"].items():
            binary = spec["binary"].replace(os.sep + "debug" + os.sep, os.sep + "release" + os.sep)
            env = {**host["base_env"], **spec["env"], "AWS_LAMBDA_LOG_LEVEL": "ERROR"}
            for own in ("AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # the probe sets these
                env.pop(own, None)
            # Lambda has no proxy: measure the default HTTPS client, as deployed. (Only S3 Control
            # calls need the local proxy, and no first event here makes one.)
            env.pop("HTTP_PROXY", None)
            argv = [sys.executable, tool, "--runs", str(args.runs), "--event", json.dumps(EVENTS.get(name, {}))]
            for k, v in env.items():
                argv += ["--env", f"{k}={v}"]
            run = subprocess.run([*argv, binary], capture_output=True, text=True)
            if run.returncode != 0:
                raise RuntimeError(f"the probe failed on {binary}: {run.stderr}")
            out = run.stdout
            print(out.rstrip().splitlines()[-1] if name != next(iter(host["functions"])) else out.rstrip())
    finally:
        stack.stdin.close()
        stack.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
