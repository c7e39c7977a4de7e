"""S3: `GetBucketVersioning` with S3's `<VersioningConfiguration>` root, and S3 Control, whose
endpoint rules put the account id in front of the host (`111122223333.127.0.0.1:PORT`): the
functions use the emulator as their HTTP proxy and such hosts are routed to S3 Control."""

from __future__ import annotations

import re

from .wire import caller_of

# `{account id}.{our address}`: an S3 Control request.
ACCOUNT_HOST = re.compile(r"^([0-9]{12})\.(?:127\.0\.0\.1|localhost)(?::[0-9]+)?$")



def route_s3_control(environ: dict) -> None:
    """Points a request for `{account id}.{our address}` at S3 Control."""
    host = ACCOUNT_HOST.match(environ.get("HTTP_HOST", ""))
    if host:
        _, region, _ = caller_of(environ)
        environ["HTTP_HOST"] = f"{host.group(1)}.s3-control.{region}.amazonaws.com"


def install_s3_versioning_shape() -> None:
    from moto.s3.responses import S3Response

    def get_bucket_versioning(self):  # noqa: ANN001
        status = self.backend.get_bucket_versioning(self.bucket_name)
        inner = f"<Status>{status}</Status>" if status else ""
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{inner}</VersioningConfiguration>'
        )
        return 200, {"Content-Type": "application/xml"}, body

    S3Response.get_bucket_versioning = get_bucket_versioning
