"""What the functions were granted and what a test run used, from the emulators' IAM records.

    python local/iam_usage.py DIR [--markdown]

DIR holds what each emulator of the run appended (LOCAL_IAM_USAGE_DIR; local/emulator/access.py):
each principal's grant (a function's execution role: its policies' actions; a session the service
opened in a member account: its session policy's actions) and each action it was allowed or
refused. Prints, per principal, the granted actions no request of the run needed; exits 1 when a
request of the service was refused (a permission the template or a session policy lacks).
Principals granted everything (`*`: the seeded admin roles the tests use) are left out."""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys


def matches(pattern: str, action: str) -> bool:
    regex = "^" + "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern) + "$"
    return re.match(regex, action, re.IGNORECASE) is not None


def load(directory: str) -> tuple[dict[str, set[str]], dict[str, set[str]], list[dict]]:
    granted: dict[str, set[str]] = {}
    allowed: dict[str, set[str]] = {}
    denied: list[dict] = []
    for path in sorted(glob.glob(os.path.join(directory, "*.jsonl"))):
        with open(path, encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                principal = record["principal"]
                if "granted" in record:
                    granted.setdefault(principal, set()).update(record["granted"])
                elif "allowed" in record:
                    allowed.setdefault(principal, set()).add(record["allowed"])
                elif "denied" in record:
                    denied.append(record)
    return granted, allowed, denied


def unused(granted: dict[str, set[str]], allowed: dict[str, set[str]]) -> dict[str, list[str]]:
    """Per principal not granted everything: the granted actions no allowed request matched."""
    return {
        principal: sorted(g for g in grants if not any(matches(g, a) for a in allowed.get(principal, ())))
        for principal, grants in sorted(granted.items())
        if "*" not in grants
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("directory")
    parser.add_argument("--markdown", action="store_true", help="a table for the README")
    args = parser.parse_args()
    granted, allowed, denied = load(args.directory)
    if not granted:
        print(f"no IAM records in {args.directory}", file=sys.stderr)
        return 1
    report = unused(granted, allowed)
    if args.markdown:
        print("| Principal | Granted | Used | Granted, never used by the suite |")
        print("|---|---|---|---|")
        for principal, never in report.items():
            used = len(granted[principal]) - len(never)
            print(f"| `{principal}` | {len(granted[principal])} | {used} | {', '.join(f'`{a}`' for a in never) or '—'} |")
    else:
        for principal, never in report.items():
            print(f"{principal}: {len(granted[principal]) - len(never)} of {len(granted[principal])} granted actions used"
                  + (f"; never used: {' '.join(never)}" if never else ""))
    for refusal in denied:
        print(f"REFUSED {refusal['principal']}: {refusal['denied']} on {refusal.get('resource') or '*'}", file=sys.stderr)
    return 1 if denied else 0


if __name__ == "__main__":
    sys.exit(main())
