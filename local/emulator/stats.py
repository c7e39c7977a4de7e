"""The AWS API calls the emulator served, by caller and operation."""

from __future__ import annotations

import threading

from .wire import credential_of, operation_of, request_body


class Stats:
    """AWS API calls served, by caller and operation."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: dict[str, dict[str, int]] = {}

    def count(self, environ: dict) -> None:
        credential = credential_of(environ)
        access_key, service = (credential[0], credential[2]) if credential else ("", None)
        # The interpreter's boto clients sign with the access key "ak" (moto's choice); a
        # benchmark signs with "bench" so its own calls can be told apart.
        caller = "stepfunctions" if access_key == "ak" else "benchmark" if access_key == "bench" else "functions"
        operation, _ = operation_of(environ, service, request_body(environ)) if service else (None, {})
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
