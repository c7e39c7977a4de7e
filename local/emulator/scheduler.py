"""EventBridge Scheduler: enabled `rate(…)` and `at(…)` schedules fire on time (a `rate` counted
from the schedule's creation) and invoke their Lambda targets with the schedule's `Input`;
`cron(…)` schedules are kept, not fired."""

from __future__ import annotations

import calendar
import re
import sys
import threading
import time
from typing import Any

from .lambda_invoke import forward_invoke

RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> int | None:
    rate = RATE.match(expression)
    return int(rate.group(1)) * UNIT_SECONDS[rate.group(2).rstrip("s")] if rate else None


def first_due(expression: str, created: float) -> float | None:
    """When a schedule created at `created` (epoch seconds) first fires: `rate(N unit)` N units
    after creation (EventBridge Scheduler does not fire at creation), `at(…)` at that UTC time;
    None for what is not fired locally (`cron(…)`)."""
    period = rate_seconds(expression)
    if period:
        return created + period
    at = AT.match(expression)
    if at:
        return calendar.timegm(time.strptime(at.group(1), "%Y-%m-%dT%H:%M:%S"))
    return None


def next_due(expression: str, due: float, now: float) -> float | None:
    """After firing the run due at `due`, at `now`: the next one. Runs missed while the emulator
    was busy are not made up (one run, then the next period); `at(…)` fires once."""
    period = rate_seconds(expression)
    if not period:
        return None
    return due + period * (int((now - due) // period) + 1)


class Scheduler:
    """Fires the emulator's EventBridge Scheduler schedules (moto stores them and never runs
    them): a Lambda target is invoked asynchronously with the schedule's `Input`, as the
    scheduler does."""

    def __init__(self) -> None:
        # schedule ARN -> (expression, when it is next due); re-derived when the expression changes.
        self.due: dict[str, tuple[str, float | None]] = {}
        self.runs: dict[str, int] = {}
        self.lock = threading.Lock()

    def schedules(self) -> list[Any]:
        from moto.scheduler.models import scheduler_backends

        return [
            schedule
            for account in scheduler_backends.values()
            for backend in account.values()
            for group in backend.schedule_groups.values()
            for schedule in group.schedules.values()
        ]

    def deliver(self, schedule: Any) -> None:
        from moto.utilities.arns import parse_arn

        target = schedule.target
        with self.lock:
            self.runs[schedule.arn] = self.runs.get(schedule.arn, 0) + 1
        if parse_arn(target["Arn"]).service != "lambda":
            print(f"scheduler: {schedule.name}: only Lambda targets are delivered locally", file=sys.stderr, flush=True)
            return
        payload = (target.get("Input") or "{}").encode()

        def invoke() -> None:
            try:
                forward_invoke(target["Arn"], payload, {"X-Amz-Invocation-Type": "Event"}, {})
            except Exception as e:  # noqa: BLE001 - as AWS, a failed delivery is only logged
                print(f"scheduler: {schedule.name} could not deliver to {target['Arn']}: {e}", file=sys.stderr, flush=True)

        threading.Thread(target=invoke, daemon=True).start()

    def tick(self, now: float) -> None:
        for schedule in self.schedules():
            if schedule.state != "ENABLED":
                continue
            expression = schedule.schedule_expression
            known, due = self.due.get(schedule.arn, (None, None))
            if known != expression:
                due = first_due(expression, schedule.last_modified_date)
            if due is not None and due <= now:
                self.deliver(schedule)
                due = next_due(expression, due, now)
            self.due[schedule.arn] = (expression, due)

    def run_now(self, name: str, group: str = "default") -> dict:
        for schedule in self.schedules():
            if schedule.name == name and schedule.group_name == group:
                self.deliver(schedule)
                return self.report()
        raise KeyError(name)

    def report(self) -> dict:
        with self.lock:
            return {"runs": dict(self.runs)}

    def start(self) -> None:
        def loop() -> None:
            while True:
                time.sleep(1)
                try:
                    self.tick(time.time())
                except Exception as e:  # noqa: BLE001 - keep the clock running
                    print(f"scheduler: {e}", file=sys.stderr, flush=True)

        threading.Thread(target=loop, daemon=True).start()


SCHEDULER = Scheduler()
