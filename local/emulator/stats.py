"""The AWS API calls the emulator served, by caller and operation."""

from __future__ import annotations

import re
import threading

from .wire import caller_of


class Stats:
    """AWS API calls served, by caller and operation."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: dict[str, dict[str, int]] = {}

    def count(self, environ: dict) -> None:
        service, _, _ = caller_of(environ)
        auth = environ.get("HTTP_AUTHORIZATION", "")
        # The interpreter's boto clients sign with the access key "ak" (moto's choice); a
        # benchmark signs with "bench" so its own calls can be told apart.
        caller = "stepfunctions" if "Credential=ak/" in auth else "benchmark" if "Credential=bench/" in auth else "functions"
        operation = _operation(environ)
        if ".s3-control." in environ.get("HTTP_HOST", ""):
            service = "s3control"  # signed as "s3"; told apart by its host
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
_ID = re.compile(r"/(?:[0-9a-f]{32}|[0-9]{12}|[0-9a-f-]{36}|car-[a-z0-9]+|ou-[a-z0-9-]+|r-[a-z0-9]+)(?=/|$)")


def _operation(environ: dict) -> str:
    """The API operation a request calls: its X-Amz-Target, its query Action, or its REST route."""
    import io
    import urllib.parse

    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.rsplit(".", 1)[-1]
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" in query:
        return query["Action"][0]
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        if "Action" in form:
            return form["Action"][0]
    path = environ.get("PATH_INFO", "")
    if re.match(r"^/2015-03-31/functions/[^/]+/invocations$", path):
        return "Invoke"
