"""EventBridge: rule targets that are Lambda functions are invoked, asynchronously as AWS does
(moto delivers only to logs, SQS, archives and buses)."""

from __future__ import annotations

import copy
import json
import sys
import threading

from .lambda_invoke import forward_invoke


def install_eventbridge_lambda_targets() -> None:
    from moto.events.models import Rule
    from moto.utilities.arns import parse_arn

    deliver = Rule.send_to_targets

    def send_to_targets(self, original_event, transform_input=True):  # noqa: ANN001
        lambdas = [t for t in self.targets if parse_arn(t["Arn"]).service == "lambda"]
        others = copy.copy(self)
        others.targets = [t for t in self.targets if t not in lambdas]  # moto raises on Lambda
        deliver(others, original_event, transform_input)
        if not self.event_pattern.matches_event(original_event):
            return
        for target in lambdas:
            payload = json.dumps(original_event, default=str).encode()

            def invoke(arn: str = target["Arn"], payload: bytes = payload) -> None:
                try:
                    forward_invoke(arn, payload, {"X-Amz-Invocation-Type": "Event"}, {})
                except Exception as e:  # noqa: BLE001 - as AWS, a failed delivery is only logged
                    print(f"EventBridge could not deliver to {arn}: {e}", file=sys.stderr, flush=True)

            threading.Thread(target=invoke, daemon=True).start()

    Rule.send_to_targets = send_to_targets
