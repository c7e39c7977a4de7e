"""Cognito identity pools hand out real role sessions: `SetIdentityPoolRoles` is kept (moto has
none), and `GetCredentialsForIdentity` answers a session of the pool's authenticated role, as
AWS does (moto answers the same fixed fake keys to everyone, which no STS call knows). This is
how the Stax SDK signs its calls: Cognito user pool sign-in, identity pool credentials, SigV4."""

from __future__ import annotations

import json
import threading
from typing import Any

from .wire import request_body, respond_json

TARGET = "AWSCognitoIdentityService."


class IdentityPoolRoles:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.roles: dict[str, dict[str, str]] = {}

    def pool_of(self, identity_id: str) -> str | None:
        from moto.cognitoidentity.models import cognitoidentity_backends

        for regions in list(cognitoidentity_backends.values()):
            for backend in list(regions.values()):
                for pool, entry in backend.pools_identities.items():
                    if any(i.get("IdentityId") == identity_id for i in entry.get("Identities", [])):
                        return pool
        return None


POOL_ROLES = IdentityPoolRoles()


def cognito_identity(environ: dict, start_response: Any) -> list[bytes] | None:
    """Serves SetIdentityPoolRoles and GetCredentialsForIdentity; None for every other request."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if not target.startswith(TARGET):
        return None
    operation = target[len(TARGET):]
    if operation not in ("SetIdentityPoolRoles", "GetCredentialsForIdentity"):
        return None
    body = json.loads(request_body(environ) or b"{}")
    if operation == "SetIdentityPoolRoles":
        with POOL_ROLES.lock:
            POOL_ROLES.roles[body["IdentityPoolId"]] = dict(body.get("Roles", {}))
        return respond_json(start_response, "200 OK", {})
    identity = body.get("IdentityId", "")
    pool = POOL_ROLES.pool_of(identity)
    role = POOL_ROLES.roles.get(pool or "", {}).get("authenticated")
    if role is None:
        return respond_json(start_response, "400 Bad Request",
                            {"__type": "InvalidIdentityPoolConfigurationException",
                             "message": f"identity {identity}'s pool has no authenticated role"})
    from moto.sts.models import sts_backends

    from .access import ACCESS
    from .iam import ORIGINAL_ASSUME_ROLE

    # Cognito assumes the role itself (its trust names the cognito-identity service, not an
    # account), as the Lambda service assumes a function's role.
    account = role.split(":")[4]
    session = ORIGINAL_ASSUME_ROLE["assume_role"](
        sts_backends[account]["aws"], "us-east-1", "CognitoIdentityCredentials", role, "", 3600, "")
    ACCESS.remember(session.access_key_id, account, role, None, f"{role.split('/')[-1]}/CognitoIdentityCredentials")
    return respond_json(start_response, "200 OK", {
        "IdentityId": identity,
        "Credentials": {
            "AccessKeyId": session.access_key_id,
            "SecretKey": session.secret_access_key,
            "SessionToken": session.session_token,
            "Expiration": session.expiration.timestamp(),
        },
    })


def install_srp_user_ids() -> None:
    """A user pool's SRP sign-in answers the user's id as `USER_ID_FOR_SRP`, and Cognito takes it
    back as the `USERNAME` of the PASSWORD_VERIFIER response (the Stax SDK sends it so); moto
    looks users up by name only."""
    from moto.cognitoidp.models import CognitoIdpUserPool

    get_user = CognitoIdpUserPool._get_user

    def _get_user(self: CognitoIdpUserPool, username: str):  # noqa: ANN202
        user = get_user(self, username)
        if user is None:
            user = next((u for u in self.users.values() if u.id == username), None)
        return user

    CognitoIdpUserPool._get_user = _get_user  # noqa: SLF001
