"""Usage: python -m emulator --port PORT (from local/). The emulator exits by itself when the
process that started it goes away."""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time

from . import account, baseline, cognito, dynamodb, eventbridge, guardduty, iam, lambda_invoke, logs, organizations, root, s3, stepfunctions, streams
from .control import ControlApp
from .scheduler import SCHEDULER


def watch_parent() -> None:
    parent = os.getppid()

    def loop() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=loop, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description="The local AWS emulator: moto plus the extensions the Accounts service needs")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # The Step Functions interpreter calls back into the emulator on this port.
    os.environ["MOTO_PORT"] = str(args.port)

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import run_simple

    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    lambda_invoke.install_lambda_forwarding()
    iam.install_assume_role_checks()
    iam.install_access_key_index()
    iam.install_aws_managed_policies()
    account.install_unique_account_aliases()
    baseline.install_vpc_deletion_takes_its_network_acl()
    root.install_root_user_reports()
    cognito.install_srp_user_ids()
    logs.install_integer_log_timestamps()
    organizations.install_organizations_events()
    organizations.install_async_create_account()
    organizations.install_policy_limits()
    eventbridge.install_eventbridge_lambda_targets()
    guardduty.install_guardduty_administrator_lookup()
    s3.install_s3_versioning_shape()
    stepfunctions.install_sfn_integration_names()
    dynamodb.install_transaction_rollback_by_item()
    streams.install_stream_delivery()
    SCHEDULER.start()
    watch_parent()
    app = ControlApp(DomainDispatcherApplication(create_backend_app))
    print(f"emulator listening on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
