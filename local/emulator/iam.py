"""IAM and STS: access keys found by an index instead of a scan of every account, and
`AssumeRole` refused as AWS refuses it (no such role, or a trust policy that does not admit the
caller's account)."""

from __future__ import annotations

import json
from typing import Any

from .access import ACCESS

# moto's AssumeRole, without the trust check: how the emulator plays the Lambda service, which
# assumes a function's execution role for it.
ORIGINAL_ASSUME_ROLE: dict[str, Any] = {}


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def trust_admits(policy_document: str, caller_account: str) -> bool:
    """Does the role's trust policy let principals of `caller_account` call sts:AssumeRole?

    Conditions are not evaluated; principals are matched by account, which is what the
    service's roles grant (`arn:aws:iam::<management account>:root`)."""
    try:
        policy = json.loads(policy_document)
    except (TypeError, ValueError):
        return False
    for statement in _as_list(policy.get("Statement")):
        if statement.get("Effect") != "Allow":
            continue
        actions = _as_list(statement.get("Action"))
        if not any(a in ("sts:AssumeRole", "sts:*", "*") for a in actions):
            continue
        principal = statement.get("Principal")
        principals = ["*"] if principal == "*" else _as_list((principal or {}).get("AWS"))
        for p in principals:
            if p == "*" or p == caller_account or (p.startswith("arn:") and p.split(":")[4] == caller_account):
                return True
    return False


def install_access_key_index() -> None:
    """moto finds the account of each request's access key by looking through every account's
    keys in turn: with 10,000 member accounts that took ~140 ms a request (discovery's role
    checks ran at 7 a second). Remember where a key was found, and that a key was not found until
    that key is created, with the same answers."""
    import moto.iam.models as iam

    found: dict[str, tuple[str, str]] = {}
    missing: set[str] = set()

    def get_account_id_from(access_key: str) -> str:
        where = found.get(access_key)
        if where is not None:
            account, partition = where
            if access_key in iam.iam_backends[account][partition].access_keys:
                return account
            del found[access_key]
        if access_key in missing:
            return iam.DEFAULT_ACCOUNT_ID
        for account, backends in list(iam.iam_backends.items()):
            for partition in iam.PARTITION_NAMES:
                if access_key in backends[partition].access_keys:
                    found[access_key] = (account, partition)
                    return account
        missing.add(access_key)
        return iam.DEFAULT_ACCOUNT_ID

    def forgetting_misses(create):  # noqa: ANN001, ANN202
        def created(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
            key = create(self, *args, **kwargs)
            missing.discard(key.physical_resource_id)
            return key

        return created

    iam.IAMBackend.create_access_key = forgetting_misses(iam.IAMBackend.create_access_key)
    iam.IAMBackend.create_temp_access_key = forgetting_misses(iam.IAMBackend.create_temp_access_key)
    iam.get_account_id_from = get_account_id_from


def install_assume_role_checks() -> None:
    from moto.iam.models import iam_backends
    from moto.sts.exceptions import STSClientError
    from moto.sts.models import STSBackend

    original = STSBackend.assume_role
    ORIGINAL_ASSUME_ROLE["assume_role"] = original

    def assume_role(self, region_name, role_session_name, role_arn, policy, duration, external_id):  # noqa: ANN001
        parts = role_arn.split(":")
        target_account = parts[4] if len(parts) > 5 else ""
        role_name = parts[5].split("/")[-1] if len(parts) > 5 else ""
        caller = self.account_id
        denied = STSClientError(
            "AccessDenied",
            f"User: arn:aws:iam::{caller}:root is not authorized to perform: sts:AssumeRole "
            f"on resource: {role_arn}",
        )
        try:
            role = iam_backends[target_account]["global"].get_role(role_name)
        except Exception:  # the role does not exist: AWS answers AccessDenied, not NoSuchEntity
            raise denied from None
        if not trust_admits(role.assume_role_policy_document, caller):
            raise denied
        session = original(self, region_name, role_session_name, role_arn, policy, duration, external_id)
        ACCESS.remember(session.access_key_id, session.account_id, role_arn, policy, f"{role_name}/{role_session_name}")
        return session

    STSBackend.assume_role = assume_role


# The AWS managed policies the service attaches (the support role's, CIS 1.17). moto loads AWS's
# managed policies only all at once (MOTO_IAM_LOAD_MANAGED_POLICIES, ~1,000 per account's IAM
# backend, slow to build for every emulated account); these few are loaded in every account, as
# AWS has them everywhere.
AWS_MANAGED_POLICIES = ["AWSSupportAccess"]


def install_aws_managed_policies() -> None:
    import json

    from moto.iam.aws_managed_policies import aws_managed_policies_data
    from moto.iam.models import AWSManagedPolicy, IAMBackend

    data = json.loads(aws_managed_policies_data)
    init = IAMBackend._init_aws_policies

    def _init_aws_policies(self):  # noqa: ANN001, ANN202
        loaded = init(self)
        if loaded:  # all of them, as configured
            return loaded
        return [AWSManagedPolicy.from_data(name, self.account_id, self.region_name, data[name])
                for name in AWS_MANAGED_POLICIES]

    IAMBackend._init_aws_policies = _init_aws_policies
