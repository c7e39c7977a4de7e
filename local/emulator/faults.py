"""Faults: the next N calls of an operation answered with an AWS error, and rate limits beyond
which calls are throttled, to show that callers retry."""

from __future__ import annotations

import threading
import time


class Faults:
    """Errors to answer instead of the emulator, per operation (`X-Amz-Target`)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: dict[str, dict] = {}
        self.served: dict[str, int] = {}
        # target -> {"per_second", "error", "recent": times of the calls let through}
        self.rate_limits: dict[str, dict] = {}

    def limit(self, target: str, per_second: float, error: str) -> None:
        with self.lock:
            self.rate_limits[target] = {"per_second": per_second, "error": error, "recent": []}

    def add(self, target: str, error: str, count: int, status: int = 400, message: str = "Rate exceeded", after: int = 0) -> None:
        """After the next `after` calls of `target`, the `count` calls that follow fail with
        `error`; a count of 0 clears the target."""
        with self.lock:
            if count <= 0:
                self.pending.pop(target, None)
                return
            self.pending[target] = {"error": error, "count": count, "status": status, "message": message, "after": after}

    def take(self, target: str) -> dict | None:
        with self.lock:
            fault = self.pending.get(target)
            if not fault:
                return self._over_limit(target)
            if fault["after"] > 0:
                fault["after"] -= 1
                return None
            fault["count"] -= 1
            if fault["count"] <= 0:
                del self.pending[target]
            self.served[target] = self.served.get(target, 0) + 1
            return fault

    def _over_limit(self, target: str) -> dict | None:
        """A throttling error when the target had `per_second` calls in the last second."""
        limit = self.rate_limits.get(target)
        if not limit:
            return None
        now = time.monotonic()
        limit["recent"] = [t for t in limit["recent"] if now - t < 1.0]
        if len(limit["recent"]) < limit["per_second"]:
            limit["recent"].append(now)
            return None
        self.served[target] = self.served.get(target, 0) + 1
        return {"error": limit["error"], "status": 400, "message": "Rate exceeded"}

    def report(self) -> dict:
        with self.lock:
            limits = {t: {k: v for k, v in lim.items() if k != "recent"} for t, lim in self.rate_limits.items()}
            return {"pending": dict(self.pending), "served": dict(self.served), "rate_limits": limits}


FAULTS = Faults()
