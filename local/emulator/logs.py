"""CloudWatch Logs: events EventBridge delivers to a log group get an integer timestamp (moto
stores a float, which SDKs refuse to parse)."""

from __future__ import annotations


def install_integer_log_timestamps() -> None:
    from moto.logs.models import LogEvent

    original = LogEvent.__init__

    def init(self, ingestion_time, log_event):  # noqa: ANN001
        original(self, int(ingestion_time), {**log_event, "timestamp": int(log_event["timestamp"])})

    LogEvent.__init__ = init
