"""Calls the local API through the Stax Python SDK (staxapp), unchanged.

Usage: python local/stax_sdk.py --endpoint AWS_ENDPOINT --api API_URL --role ROLE_ARN CALL...
where each CALL is `Class.Operation` followed by its JSON keyword arguments, e.g.
`accounts.UpdateAccount '{"account_id": "…", "Name": "bakery"}'`. Prints one JSON line per call:
{"call", "status" (the HTTP status, 200 on success), "body"}.

What the SDK needs around it, provided here as Stax provides it, so that the SDK itself runs as
shipped: an HTTPS host (a TLS front on loopback with a throwaway certificate, trusted through
REQUESTS_CA_BUNDLE, forwarding to the local API); the host's `/20190206/public/config` naming a
Cognito user pool and identity pool (made in the emulator: a user whose name and password are
the SDK's access and secret key, the identity pool's authenticated role mapped to `admin` by the
stack); boto3's Cognito calls sent to the emulator (AWS_ENDPOINT_URL). The SDK signs in with SRP,
exchanges the token for the role's session credentials, validates each body against the Stax
schema it bundles, and signs the request with SigV4, as it does against Stax.
"""

from __future__ import annotations

import argparse
import datetime
import http.server
import json
import os
import ssl
import sys
import tempfile
import threading
import urllib.error
import urllib.request

import boto3

REGION = "us-east-1"
ACCESS_KEY = "stax-sdk-local"
SECRET_KEY = "Local-Secret-1!"


def cognito(endpoint: str, role: str) -> dict:
    """A user pool with the SDK's user, and an identity pool whose signed-in users get `role`."""
    # As the management account's own administrator (moto's default keys).
    keys = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
    idp = boto3.client("cognito-idp", endpoint_url=endpoint, region_name=REGION, **keys)
    pool = idp.create_user_pool(PoolName="stax-sdk")["UserPool"]["Id"]
    client = idp.create_user_pool_client(UserPoolId=pool, ClientName="stax-sdk",
                                         ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH"])["UserPoolClient"]["ClientId"]
    idp.admin_create_user(UserPoolId=pool, Username=ACCESS_KEY, MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool, Username=ACCESS_KEY, Password=SECRET_KEY, Permanent=True)
    identity = boto3.client("cognito-identity", endpoint_url=endpoint, region_name=REGION, **keys)
    identity_pool = identity.create_identity_pool(
        IdentityPoolName="stax_sdk", AllowUnauthenticatedIdentities=False,
        CognitoIdentityProviders=[{"ProviderName": f"cognito-idp.{REGION}.amazonaws.com/{pool}", "ClientId": client}],
    )["IdentityPoolId"]
    identity.set_identity_pool_roles(IdentityPoolId=identity_pool, Roles={"authenticated": role})
    # The SDK reads the pools of its API-token sign-in under "ApiAuth".
    return {"ApiAuth": {"region": REGION, "userPoolId": pool, "userPoolWebClientId": client,
                       "identityPoolId": identity_pool}}


def certificate(directory: str) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1: (certificate file, key file)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    with open(cert_file, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_file, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cert_file, key_file


def tls_front(api: str, config: dict, cert_file: str, key_file: str) -> int:
    """Serves `/20190206/public/config` and forwards everything else to the local API; its port."""

    class Front(http.server.BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

        def _forward(self) -> None:
            if self.path.split("?")[0] == "/20190206/public/config":
                self._answer(200, json.dumps(config).encode(), "application/json")
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            request = urllib.request.Request(api.rstrip("/") + self.path, data=body, method=self.command, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=60) as r:
                    self._answer(r.status, r.read(), r.headers.get("Content-Type", "application/json"))
            except urllib.error.HTTPError as e:
                self._answer(e.code, e.read(), e.headers.get("Content-Type", "application/json"))

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _forward  # noqa: N815

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Front)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True, help="the emulator (AWS_ENDPOINT_URL)")
    parser.add_argument("--api", required=True, help="the local API's URL")
    parser.add_argument("--role", required=True, help="the role the identity pool gives signed-in users")
    parser.add_argument("calls", nargs="+", help="Class.Operation JSON ...")
    args = parser.parse_args()
    if len(args.calls) % 2:
        parser.error("each call is Class.Operation followed by its JSON arguments")

    config = cognito(args.endpoint, args.role)
    directory = tempfile.mkdtemp(prefix="stax-sdk-")
    cert_file, key_file = certificate(directory)
    port = tls_front(args.api, config, cert_file, key_file)
    # The SDK's own settings, as a user would make them.
    os.environ["REQUESTS_CA_BUNDLE"] = cert_file
    os.environ["AWS_ENDPOINT_URL"] = args.endpoint
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "unused")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "unused")

    from staxapp.config import Config
    from staxapp.exceptions import ApiException
    from staxapp.openapi import StaxClient

    Config.hostname = f"127.0.0.1:{port}"
    Config.access_key = ACCESS_KEY
    Config.secret_key = SECRET_KEY
    Config.load_live_schema = False  # the schema the SDK ships with
    for call, arguments in zip(args.calls[::2], args.calls[1::2]):
        classname, operation = call.split(".")
        try:
            body = getattr(StaxClient(classname), operation)(**json.loads(arguments))
            print(json.dumps({"call": call, "status": 200, "body": body}), flush=True)
        except ApiException as e:
            print(json.dumps({"call": call, "status": e.status_code, "body": e.message}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
