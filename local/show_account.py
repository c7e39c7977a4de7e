"""What Account Assurance left in an AWS account of the local stack, read from the emulated AWS.

    python local/show_account.py AWS_ACCOUNT_ID [--endpoint URL] [--role stax-provisioning]

reads through the account's provisioning role, as the service does, and prints the baseline's
pieces: the trail, the GuardDuty detector and its administrator, the AWS Config recorder and
delivery channel, the Session Manager preferences, S3 Block Public Access, EBS encryption by
default, the IAM password policy and alias. `./dev show-account` runs it against the stack `./dev up`
started (its endpoint is in .local/stack.json while it runs). It only reads.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Callable

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CURRENT = os.path.join(ROOT, ".local", "stack.json")


def yes(value: Any) -> str:
    return "yes" if value else "no"


def read(what: Callable[[], str]) -> str:
    try:
        return what()
    except ClientError as e:
        return f"unreadable: {e.response['Error'].get('Code')}: {e.response['Error'].get('Message')}"


def read_baseline(endpoint: str, region: str, account: str, role: str) -> list[tuple[str, str]]:
    sts = boto3.client("sts", endpoint_url=endpoint, region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{role}", RoleSessionName="show-account")["Credentials"]
    # S3 Control puts the account id in front of the endpoint's host; the emulator is also a proxy.
    config = Config(proxies={"http": endpoint}, retries={"mode": "standard"})

    def client(service: str) -> Any:
        return boto3.client(
            service, endpoint_url=endpoint, region_name=region, config=config,
            aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )

    def cloudtrail() -> str:
        ct = client("cloudtrail")
        trails = ct.describe_trails()["trailList"]
        if not trails:
            return "no trail"
        return "; ".join(
            f"trail {t['Name']}: multi-region {yes(t.get('IsMultiRegionTrail'))}, log file validation "
            f"{yes(t.get('LogFileValidationEnabled'))}, logging {yes(ct.get_trail_status(Name=t['Name']).get('IsLogging'))}, "
            f"bucket {t.get('S3BucketName')}"
            for t in trails
        )

    def guardduty() -> str:
        gd = client("guardduty")
        detectors = gd.list_detectors()["DetectorIds"]
        if not detectors:
            return "no detector"
        parts = []
        for d in detectors:
            status = gd.get_detector(DetectorId=d)["Status"]
            admin = gd.get_administrator_account(DetectorId=d).get("Administrator")
            by = f"administrator {admin['AccountId']} ({admin.get('RelationshipStatus')})" if admin else "no administrator"
            parts.append(f"detector {d}: {status.lower()}, {by}")
        return "; ".join(parts)

    def config_service() -> str:
        cfg = client("config")
        recorders = cfg.describe_configuration_recorders()["ConfigurationRecorders"]
        if not recorders:
            return "no recorder"
        status = {s["name"]: s for s in cfg.describe_configuration_recorder_status()["ConfigurationRecordersStatus"]}
        channels = cfg.describe_delivery_channels()["DeliveryChannels"]
        parts = [
            f"recorder {r['name']}: all resources {yes(r['recordingGroup'].get('allSupported'))}, global "
            f"{yes(r['recordingGroup'].get('includeGlobalResourceTypes'))}, recording {yes(status.get(r['name'], {}).get('recording'))}"
            for r in recorders
        ]
        parts += [f"delivery channel {c['name']} to {c.get('s3BucketName')}" for c in channels] or ["no delivery channel"]
        return "; ".join(parts)

    def session_manager() -> str:
        try:
            document = client("ssm").get_document(Name="SSM-SessionManagerRunShell")
        except ClientError as e:
            if e.response["Error"].get("Code") == "InvalidDocument":
                return "no preferences (sessions are not logged)"
            raise
        inputs = json.loads(document["Content"]).get("inputs", {})
        bucket = "/".join(p for p in (inputs.get("s3BucketName"), inputs.get("s3KeyPrefix")) if p)
        return f"logs to s3://{bucket or '-'}, encrypted {yes(inputs.get('s3EncryptionEnabled'))}, idle timeout {inputs.get('idleSessionTimeout', '-')} min"

    def block_public_access() -> str:
        try:
            c = client("s3control").get_public_access_block(AccountId=account)["PublicAccessBlockConfiguration"]
        except ClientError as e:
            if e.response["Error"].get("Code") == "NoSuchPublicAccessBlockConfiguration":
                return "not configured"
            raise
        settings = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
        off = [s for s in settings if not c.get(s)]
        return "all four on" if not off else f"off: {', '.join(off)}"

    def ebs() -> str:
        return "on" if client("ec2").get_ebs_encryption_by_default()["EbsEncryptionByDefault"] else "off"

    def iam() -> str:
        i = client("iam")
        try:
            p = i.get_account_password_policy()["PasswordPolicy"]
            policy = f"password policy: min length {p.get('MinimumPasswordLength')}, reuse prevention {p.get('PasswordReusePrevention', '-')}"
        except ClientError as e:
            if e.response["Error"].get("Code") != "NoSuchEntity":
                raise
            policy = "no password policy"
        aliases = i.list_account_aliases()["AccountAliases"]
        return f"{policy}; alias {aliases[0] if aliases else '-'}"

    return [
        ("CloudTrail", read(cloudtrail)),
        ("GuardDuty", read(guardduty)),
        ("AWS Config", read(config_service)),
        ("Session Manager", read(session_manager)),
        ("S3 Block Public Access", read(block_public_access)),
        ("EBS encryption by default", read(ebs)),
        ("IAM", read(iam)),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description="What Account Assurance left in an account of the local stack")
    parser.add_argument("aws_account_id")
    parser.add_argument("--endpoint", help="the emulator (default: the running ./dev up stack's)")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--role", default="stax-provisioning", help="the provisioning role to read through")
    args = parser.parse_args()
    endpoint = args.endpoint
    if not endpoint:
        try:
            with open(CURRENT, encoding="utf-8") as f:
                endpoint = json.load(f)["aws_endpoint"]
        except OSError:
            print(f"no local stack is running ({CURRENT} is missing): start one with ./dev up, or pass --endpoint", file=sys.stderr)
            return 2
    try:
        lines = read_baseline(endpoint, args.region, args.aws_account_id, args.role)
    except ClientError as e:
        print(f"cannot read AWS account {args.aws_account_id} through role {args.role}: {e}", file=sys.stderr)
        return 1
    print(f"AWS account {args.aws_account_id}, read through role {args.role}:")
    for concern, state in lines:
        print(f"  {concern:<26} {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
