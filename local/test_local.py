"""Unit tests of the local stack's own logic (run by ./dev test)."""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cfn  # noqa: E402
from emulator.access import decide  # noqa: E402
from emulator.iam import trust_admits  # noqa: E402
from emulator.scheduler import first_due, next_due  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class TrustPolicies(unittest.TestCase):
    def policy(self, principal, action="sts:AssumeRole", effect="Allow"):
        return json.dumps({"Statement": [{"Effect": effect, "Principal": principal, "Action": action}]})

    def test_the_management_account_root_is_admitted(self):
        self.assertTrue(trust_admits(self.policy({"AWS": "arn:aws:iam::123456789012:root"}), "123456789012"))
        self.assertTrue(trust_admits(self.policy({"AWS": ["111111111111", "123456789012"]}), "123456789012"))

    def test_other_accounts_services_and_denies_are_not(self):
        self.assertFalse(trust_admits(self.policy({"AWS": "arn:aws:iam::999999999999:root"}), "123456789012"))
        self.assertFalse(trust_admits(self.policy({"Service": "lambda.amazonaws.com"}), "123456789012"))
        self.assertFalse(trust_admits(self.policy({"AWS": "123456789012"}, effect="Deny"), "123456789012"))
        self.assertFalse(trust_admits(self.policy({"AWS": "123456789012"}, action="sts:TagSession"), "123456789012"))
        self.assertFalse(trust_admits("not json", "123456789012"))


class PolicyDecisions(unittest.TestCase):
    TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/t"

    def test_an_allow_must_name_the_action_and_cover_the_resource(self):
        policy = [{"Statement": [{"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:Put*"], "Resource": self.TABLE}]}]
        self.assertTrue(decide(policy, "dynamodb:GetItem", self.TABLE))
        self.assertTrue(decide(policy, "DynamoDB:PutItem", self.TABLE))  # actions are case-insensitive
        self.assertFalse(decide(policy, "dynamodb:DeleteItem", self.TABLE))
        self.assertFalse(decide(policy, "dynamodb:GetItem", self.TABLE + "2"))
        self.assertTrue(decide(policy, "dynamodb:GetItem", None))  # a resource the emulator cannot name
        self.assertFalse(decide([], "dynamodb:GetItem", self.TABLE))

    def test_a_deny_wins_and_resource_account_conditions_are_evaluated(self):
        role = "arn:aws:iam::{}:role/stax-provisioning"
        member_only = [{"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role.format("*"),
                                       "Condition": {"StringNotEquals": {"aws:ResourceAccount": "123456789012"}}}]}]
        self.assertTrue(decide(member_only, "sts:AssumeRole", role.format("111111111111")))
        self.assertFalse(decide(member_only, "sts:AssumeRole", role.format("123456789012")))
        denied = member_only + [{"Statement": {"Effect": "Deny", "Action": "sts:*", "Resource": "*"}}]
        self.assertFalse(decide(denied, "sts:AssumeRole", role.format("111111111111")))

    def test_condition_operators_follow_iam(self):
        allow = lambda condition: [{"Statement": [{"Effect": "Allow", "Action": "organizations:TagResource", "Resource": "*", "Condition": condition}]}]  # noqa: E731
        tagged = {"aws:requesttag/team": "Data", "aws:requesttag/*": None}
        untagged = {"aws:requesttag/*": None}
        check = lambda condition, context: decide(allow(condition), "organizations:TagResource", None, context)  # noqa: E731
        self.assertTrue(check({"StringEquals": {"aws:RequestTag/team": "Data"}}, tagged))
        self.assertFalse(check({"StringEquals": {"aws:RequestTag/team": "Data"}}, untagged))  # absent: unmet
        self.assertTrue(check({"StringNotEquals": {"aws:RequestTag/team": "Data"}}, untagged))  # absent: met
        self.assertTrue(check({"StringEqualsIgnoreCase": {"aws:RequestTag/team": "data"}}, tagged))
        self.assertTrue(check({"StringLike": {"aws:RequestTag/team": "D*"}}, tagged))
        self.assertTrue(check({"Null": {"aws:RequestTag/owner": "true"}}, tagged))
        self.assertFalse(check({"Null": {"aws:RequestTag/team": "true"}}, tagged))
        self.assertTrue(check({"StringEqualsIfExists": {"aws:RequestTag/team": "Data"}}, untagged))
        self.assertTrue(check({"StringEquals": {"aws:SourceVpc": "vpc-1"}}, tagged))  # unknown key: met


def stack_trust():
    import stack

    return stack.LAMBDA_TRUST


class IamEnforcement(unittest.TestCase):
    """The emulator allows a role session only what its role's policies, and its session
    policy, allow (local/emulator/access.py)."""

    @classmethod
    def setUpClass(cls):
        import tempfile

        import stack

        cls.procs = stack.Processes()
        cls.logs = tempfile.mkdtemp()
        cls.endpoint = stack.start_emulator(cls.procs, cls.logs)
        from clients import aws

        cls.org = aws(cls.endpoint, "organizations")
        cls.org.create_organization(FeatureSet="ALL")
        cls.root = cls.org.list_roots()["Roots"][0]["Id"]

    @classmethod
    def tearDownClass(cls):
        cls.procs.stop()

    def session(self, role, policy):
        from clients import aws, http_json

        iam = aws(self.endpoint, "iam")
        arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=stack_trust())["Role"]["Arn"]
        iam.put_role_policy(RoleName=role, PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17", **policy}))
        c = http_json("POST", f"{self.endpoint}/_local/iam/lambda-credentials", {"RoleArn": arn})
        return {"aws_access_key_id": c["AccessKeyId"], "aws_secret_access_key": c["SecretAccessKey"], "aws_session_token": c["SessionToken"]}

    def test_a_transaction_needs_each_item_s_action_and_a_refusal_changes_nothing(self):
        from botocore.exceptions import ClientError

        from clients import aws

        operator = aws(self.endpoint, "dynamodb")
        operator.create_table(TableName="t", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
        operator.put_item(TableName="t", Item={"pk": {"S": "old"}})
        table = "arn:aws:dynamodb:us-east-1:123456789012:table/t"
        ddb = aws(self.endpoint, "dynamodb", self.session("writer", {"Statement": [
            {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem"], "Resource": table}]}))
        ddb.put_item(TableName="t", Item={"pk": {"S": "a"}})
        move = [{"Put": {"TableName": "t", "Item": {"pk": {"S": "new"}}}}, {"Delete": {"TableName": "t", "Key": {"pk": {"S": "old"}}}}]
        with self.assertRaises(ClientError) as refused:
            ddb.transact_write_items(TransactItems=move)
        self.assertEqual(refused.exception.response["Error"]["Code"], "AccessDeniedException")
        self.assertIn("dynamodb:DeleteItem", refused.exception.response["Error"]["Message"])
        self.assertNotIn("Item", operator.get_item(TableName="t", Key={"pk": {"S": "new"}}))
        with self.assertRaises(ClientError):
            ddb.scan(TableName="t")
        report = aws(self.endpoint, "sts")  # unrelated: the operator's key is never checked
        self.assertEqual(report.get_caller_identity()["Account"], "123456789012")

    def test_a_session_policy_narrows_a_member_session(self):
        from botocore.exceptions import ClientError

        from clients import aws

        import stack

        member = stack.create_member(self.org, "m", "m@example.com", "OrganizationAccountAccessRole")
        assumer = aws(self.endpoint, "sts", self.session("assumer", {"Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "arn:aws:iam::*:role/OrganizationAccountAccessRole",
             "Condition": {"StringNotEquals": {"aws:ResourceAccount": "123456789012"}}}]}))
        scoped = {"Statement": [{"Effect": "Allow", "Action": "iam:GetAccountPasswordPolicy", "Resource": "*"}]}
        c = assumer.assume_role(RoleArn=f"arn:aws:iam::{member}:role/OrganizationAccountAccessRole", RoleSessionName="scoped",
                                Policy=json.dumps(scoped))["Credentials"]
        iam = aws(self.endpoint, "iam", {"aws_access_key_id": c["AccessKeyId"], "aws_secret_access_key": c["SecretAccessKey"],
                                         "aws_session_token": c["SessionToken"]})
        with self.assertRaises(ClientError) as no_policy:
            iam.get_account_password_policy()
        self.assertEqual(no_policy.exception.response["Error"]["Code"], "NoSuchEntity")  # allowed: AWS's own answer
        with self.assertRaises(ClientError) as refused:
            iam.list_roles()  # the role holds AdministratorAccess; the session policy does not allow it
        self.assertEqual(refused.exception.response["Error"]["Code"], "AccessDenied")
        with self.assertRaises(ClientError) as management:
            assumer.assume_role(RoleArn="arn:aws:iam::123456789012:role/assumer", RoleSessionName="scoped")
        self.assertEqual(management.exception.response["Error"]["Code"], "AccessDenied")


    def template_role(self, function, security_account="111111111111"):
        """An Organizations client with `function`'s execution role from template.yaml."""
        from clients import aws

        r = cfn.Resolver(
            cfn.load(os.path.join(ROOT, "template.yaml")),
            {"SecurityAccountId": security_account, "LoggingAccountId": "222222222222", "RootEmailTemplate": "aws+{AccountId}@example.com"},
            {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::StackName": "local",
             "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"},
        )
        r.physical["AccountsTable"] = cfn.Physical("local-AccountsTable", {"Arn": "arn:aws:dynamodb:us-east-1:123456789012:table/local-AccountsTable"})
        r.physical["EventBus"] = cfn.Physical("local-bus", {"Arn": "arn:aws:events:us-east-1:123456789012:event-bus/local-bus"})
        for machine in r.resources("AWS::Serverless::StateMachine"):
            r.physical[machine] = cfn.Physical(f"arn:aws:states:us-east-1:123456789012:stateMachine:{machine}", {})
        policies = r.resolve(r.resources()[function]["Properties"]["Policies"])
        statements = [st for p in policies for st in p["Statement"]]
        return aws(self.endpoint, "organizations", self.session(f"{function}Role", {"Statement": statements}))

    def refused(self, call, **kwargs):
        from botocore.exceptions import ClientError

        with self.assertRaises(ClientError) as e:
            call(**kwargs)
        self.assertEqual(e.exception.response["Error"]["Code"], "AccessDeniedException", kwargs)

    def test_the_policies_function_touches_only_its_own_scps_on_member_accounts_and_its_ous(self):
        from botocore.exceptions import ClientError

        orgs = self.template_role("ManagePoliciesFunction")
        content = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]})
        managed = {"Key": "accounts:managed-by", "Value": "accounts"}
        scp = {"Content": content, "Description": "d", "Type": "SERVICE_CONTROL_POLICY"}
        self.refused(orgs.create_policy, Name="p-untagged", **scp)
        self.refused(orgs.create_policy, Name="p-extra", Tags=[managed, {"Key": "team", "Value": "x"}], **scp)
        own = orgs.create_policy(Name="p-own", Tags=[managed, {"Key": "accounts:policy-id", "Value": "abc"}], **scp)["Policy"]["PolicySummary"]["Id"]
        theirs = self.org.create_policy(Name="p-theirs", **scp)["Policy"]["PolicySummary"]["Id"]
        ours_ou = self.org.create_organizational_unit(ParentId=self.root, Name="p-ours", Tags=[managed])["OrganizationalUnit"]["Id"]
        their_ou = self.org.create_organizational_unit(ParentId=self.root, Name="p-theirs")["OrganizationalUnit"]["Id"]
        orgs.update_policy(PolicyId=own, Content=content)
        orgs.attach_policy(PolicyId=own, TargetId=ours_ou)
        self.refused(orgs.attach_policy, PolicyId=own, TargetId=their_ou)
        self.refused(orgs.attach_policy, PolicyId=own, TargetId=self.root)
        self.refused(orgs.attach_policy, PolicyId=theirs, TargetId=ours_ou)
        self.refused(orgs.update_policy, PolicyId=theirs, Content=content)
        self.refused(orgs.delete_policy, PolicyId=theirs)
        orgs.detach_policy(PolicyId=own, TargetId=ours_ou)
        orgs.delete_policy(PolicyId=own)
        # The service's own SCPs (its tag, no policy id: the foundation and suspension SCPs) are
        # read, never changed or moved.
        service = self.org.create_policy(Name="p-service", Tags=[managed], **scp)["Policy"]["PolicySummary"]["Id"]
        orgs.describe_policy(PolicyId=service)
        self.refused(orgs.update_policy, PolicyId=service, Content=content)
        self.refused(orgs.attach_policy, PolicyId=service, TargetId=ours_ou)
        self.refused(orgs.delete_policy, PolicyId=service)
        # AWS's limit, which the emulator keeps: five SCPs on one target, FullAWSAccess among them.
        more = [self.org.create_policy(Name=f"p-limit-{i}", **scp)["Policy"]["PolicySummary"]["Id"] for i in range(5)]
        for p in more[:4]:
            self.org.attach_policy(PolicyId=p, TargetId=their_ou)
        with self.assertRaises(ClientError) as e:
            self.org.attach_policy(PolicyId=more[4], TargetId=their_ou)
        self.assertEqual(e.exception.response["Error"]["Code"], "ConstraintViolationException")
        self.assertIn("POLICY_NUMBER_LIMIT_EXCEEDED", e.exception.response["Error"]["Message"])
        self.org.attach_policy(PolicyId=more[0], TargetId=their_ou)  # already attached: no new place

    def test_the_foundation_policy_function_changes_and_attaches_only_its_own_tagged_scp(self):
        orgs = self.template_role("FoundationPolicyFunction")
        content = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
        tag = [{"Key": "accounts:managed-by", "Value": "accounts"}]
        scp = {"Content": content, "Description": "d", "Type": "SERVICE_CONTROL_POLICY"}
        self.refused(orgs.create_policy, Name="untagged", **scp)
        self.refused(orgs.create_policy, Name="other-tag", Tags=[{"Key": "team", "Value": "x"}], **scp)
        own = orgs.create_policy(Name="own", Tags=tag, **scp)["Policy"]["PolicySummary"]["Id"]
        theirs = self.org.create_policy(Name="theirs", **scp)["Policy"]["PolicySummary"]["Id"]
        orgs.update_policy(PolicyId=own, Content=content)
        orgs.attach_policy(PolicyId=own, TargetId=self.root)
        self.refused(orgs.update_policy, PolicyId=theirs, Content=content)
        self.refused(orgs.describe_policy, PolicyId=theirs)
        self.refused(orgs.attach_policy, PolicyId=theirs, TargetId=self.root)
        ou = self.org.create_organizational_unit(ParentId=self.root, Name="elsewhere")["OrganizationalUnit"]["Id"]
        self.refused(orgs.attach_policy, PolicyId=own, TargetId=ou)
        self.assertEqual(orgs.list_tags_for_resource(ResourceId=theirs)["Tags"], [])
        orgs.enable_aws_service_access(ServicePrincipal="account.amazonaws.com")
        self.refused(orgs.enable_aws_service_access, ServicePrincipal="config.amazonaws.com")

    def test_a_member_account_is_renamed_only_once_the_organization_trusts_account_management(self):
        import stack
        from clients import aws

        member = stack.create_member(self.org, "named", "named@example.com", "OrganizationAccountAccessRole")
        trusted = [s["ServicePrincipal"] for s in self.org.list_aws_service_access_for_organization()["EnabledServicePrincipals"]]
        if "account.amazonaws.com" in trusted:
            self.org.disable_aws_service_access(ServicePrincipal="account.amazonaws.com")
        account = aws(self.endpoint, "account")
        self.refused(account.put_account_name, AccountId=member, AccountName="renamed")
        self.org.enable_aws_service_access(ServicePrincipal="account.amazonaws.com")
        account.put_account_name(AccountId=member, AccountName="renamed")
        self.assertEqual(self.org.describe_account(AccountId=member)["Account"]["Name"], "renamed")

    def test_place_account_creates_only_tagged_ous_under_the_root(self):
        orgs = self.template_role("PlaceAccountFunction")
        tag = [{"Key": "accounts:managed-by", "Value": "accounts"}]
        self.refused(orgs.create_organizational_unit, ParentId=self.root, Name="untagged")
        ou = orgs.create_organizational_unit(ParentId=self.root, Name="typed", Tags=tag)["OrganizationalUnit"]["Id"]
        self.refused(orgs.create_organizational_unit, ParentId=ou, Name="nested", Tags=tag)
        self.assertEqual(orgs.list_tags_for_resource(ResourceId=ou)["Tags"], tag)

    def test_foundation_guardduty_delegates_guardduty_alone_to_the_security_account_alone(self):
        import stack

        security = stack.create_member(self.org, "sec", "sec@example.com", "OrganizationAccountAccessRole")
        other = stack.create_member(self.org, "other", "other@example.com", "OrganizationAccountAccessRole")
        orgs = self.template_role("FoundationGuardDutyFunction", security_account=security)
        orgs.enable_aws_service_access(ServicePrincipal="guardduty.amazonaws.com")
        self.refused(orgs.enable_aws_service_access, ServicePrincipal="config.amazonaws.com")
        self.refused(orgs.register_delegated_administrator, AccountId=other, ServicePrincipal="guardduty.amazonaws.com")
        self.refused(orgs.register_delegated_administrator, AccountId=security, ServicePrincipal="config.amazonaws.com")
        orgs.register_delegated_administrator(AccountId=security, ServicePrincipal="guardduty.amazonaws.com")


    def test_a_bucket_call_naming_another_owner_is_refused(self):
        from botocore.exceptions import ClientError

        from clients import aws

        aws(self.endpoint, "s3").create_bucket(Bucket="owned-by-management")
        s3 = aws(self.endpoint, "s3", self.session("bucket-reader", {"Statement": [
            {"Effect": "Allow", "Action": "s3:GetBucketPolicy", "Resource": "arn:aws:s3:::owned-by-management"}]}))
        with self.assertRaises(ClientError) as refused:
            s3.get_bucket_policy(Bucket="owned-by-management", ExpectedBucketOwner="111111111111")
        self.assertEqual(refused.exception.response["Error"]["Code"], "AccessDenied")
        with self.assertRaises(ClientError) as allowed:
            s3.get_bucket_policy(Bucket="owned-by-management", ExpectedBucketOwner="123456789012")
        self.assertEqual(allowed.exception.response["Error"]["Code"], "NoSuchBucketPolicy")


class Schedules(unittest.TestCase):
    def test_a_rate_fires_one_period_after_creation_and_every_period_after(self):
        self.assertEqual(first_due("rate(15 minutes)", 1000.0), 1900.0)
        self.assertEqual(first_due("rate(1 hour)", 0.0), 3600.0)
        self.assertEqual(first_due("rate(6 hours)", 0.0), 21600.0)
        self.assertEqual(first_due("rate(1 day)", 0.0), 86400.0)
        self.assertEqual(next_due("rate(15 minutes)", 1900.0, 1900.5), 2800.0)

    def test_missed_runs_are_not_made_up(self):
        # Fired three and a half periods late: one run, then the next period boundary.
        self.assertEqual(next_due("rate(1 minute)", 60.0, 270.0), 300.0)

    def test_at_fires_once_and_cron_is_not_fired(self):
        self.assertEqual(first_due("at(1970-01-02T00:00:00)", 0.0), 86400.0)
        self.assertIsNone(next_due("at(1970-01-02T00:00:00)", 86400.0, 86400.0))
        self.assertIsNone(first_due("cron(0 12 * * ? *)", 0.0))
        self.assertIsNone(first_due("rate(soon)", 0.0))


class Template(unittest.TestCase):
    def resolver(self):
        r = cfn.Resolver(
            cfn.load(os.path.join(ROOT, "template.yaml")),
            {"SecurityAccountId": "111111111111", "LoggingAccountId": "222222222222", "RootEmailTemplate": "aws+{AccountId}@example.com"},
            {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::StackName": "local",
             "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"},
        )
        r.physical["AccountsTable"] = cfn.Physical("local-AccountsTable", {"Arn": "arn:table"})
        return r

    def test_short_form_tags_and_sub_resolve(self):
        r = self.resolver()
        self.assertEqual(r.resolve({"Fn::Sub": "accounts-${AWS::StackName}"}), "accounts-local")
        self.assertEqual(r.resolve({"Fn::Sub": "${AccountsTable.Arn}/index/gsi1"}), "arn:table/index/gsi1")
        self.assertEqual(r.resolve({"Fn::Sub": ["${X}-${AWS::Region}", {"X": {"Ref": "SecurityAccountId"}}]}), "111111111111-us-east-1")

    def test_function_environment_merges_globals(self):
        r = self.resolver()
        env = r.function_environment(r.resources()["RegisterFoundationFunction"])
        self.assertEqual(env, {"TABLE_NAME": "local-AccountsTable", "GOVERNED_REGIONS": "", "SECURITY_ACCOUNT_ID": "111111111111", "LOGGING_ACCOUNT_ID": "222222222222"})

    def test_regions_are_asked_of_ec2_only_when_the_template_does_not_list_them(self):
        def grants(resolver: cfn.Resolver, function: str) -> list:
            # Only the conditional statements are resolved: the others name resources not made here.
            statements = [resolver.resolve(st) if "Fn::If" in st else st
                          for p in resolver.resources()[function]["Properties"]["Policies"] for st in p["Statement"]]
            return [a for st in statements if st is not cfn.NO_VALUE
                    for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])]

        by_default = self.resolver()
        listed = cfn.Resolver(
            cfn.load(os.path.join(ROOT, "template.yaml")),
            {"SecurityAccountId": "111111111111", "LoggingAccountId": "222222222222", "RootEmailTemplate": "aws+{AccountId}@example.com",
             "GovernedRegions": "us-east-1,eu-west-1"},
            {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::StackName": "local",
             "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"},
        )
        for function in ["AssureGuardDutyFunction", "AssureConfigFunction", "AssureSsmFunction", "AssureDefaultsFunction",
                         "AssureNetworkFunction", "FoundationGuardDutyFunction", "ScoreComplianceFunction"]:
            self.assertIn("ec2:DescribeRegions", grants(by_default, function), function)
            self.assertNotIn("ec2:DescribeRegions", grants(listed, function), function)
        listed.physical["AccountsTable"] = cfn.Physical("local-AccountsTable", {"Arn": "arn:table"})
        self.assertEqual(listed.function_environment(listed.resources()["AssureConfigFunction"])["GOVERNED_REGIONS"], "us-east-1,eu-west-1")

    def test_foundation_accounts_are_adopted_when_named_and_created_when_not(self):
        named = self.resolver()
        self.assertNotIn("SecurityAccount", named.resources())
        self.assertNotIn("LoggingAccount", named.resources())
        created = cfn.Resolver(
            cfn.load(os.path.join(ROOT, "template.yaml")),
            {"RootEmailTemplate": "aws+{AccountId}@example.com"},
            {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::StackName": "local",
             "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"},
        )
        accounts = created.resources("AWS::Organizations::Account")
        self.assertEqual(sorted(accounts), ["LoggingAccount", "SecurityAccount"])
        props = created.resolve(accounts["SecurityAccount"]["Properties"])
        self.assertEqual(props, {"AccountName": "security", "Email": "aws+foundation-security@example.com", "RoleName": "stax-provisioning"})
        self.assertEqual(accounts["LoggingAccount"]["DeletionPolicy"], "Retain")
        created.physical["SecurityAccount"] = cfn.Physical("333333333333", {"AccountId": "333333333333"})
        created.physical["LoggingAccount"] = cfn.Physical("444444444444", {"AccountId": "444444444444"})
        created.physical["AccountsTable"] = cfn.Physical("local-AccountsTable", {"Arn": "arn:table"})
        env = created.function_environment(created.resources()["RegisterFoundationFunction"])
        self.assertEqual(env["SECURITY_ACCOUNT_ID"], "333333333333")
        self.assertEqual(created.function_environment(created.resources()["AssureCloudTrailFunction"])["CLOUDTRAIL_BUCKET"], "accounts-cloudtrail-444444444444")
        self.assertEqual(created.output("LoggingAccountId"), "444444444444")

    def test_no_function_may_assume_a_role_of_the_management_account(self):
        r = self.resolver()
        seen = 0
        for name, resource in r.resources("AWS::Serverless::Function").items():
            for policy in resource["Properties"].get("Policies", []):
                for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
                    actions = statement.get("Action")
                    if "sts:AssumeRole" not in (actions if isinstance(actions, list) else [actions]):
                        continue
                    seen += 1
                    resource_arn = r.resolve(statement["Resource"])
                    if ":iam::*:" in resource_arn:
                        condition = r.resolve(statement.get("Condition", {}))
                        self.assertEqual(
                            condition.get("StringNotEquals", {}).get("aws:ResourceAccount"), "123456789012",
                            f"{name}: sts:AssumeRole on {resource_arn} reaches the management account's roles",
                        )
                    else:
                        self.assertNotIn(":iam::123456789012:", resource_arn, name)
        self.assertGreater(seen, 6)

    def test_every_log_bucket_the_template_names_is_within_the_logging_session(self):
        # shared/aws/src/session.rs lets the foundation-logging session touch arn:aws:s3:::accounts-*.
        r = self.resolver()
        buckets = set()
        for resource in r.resources("AWS::Serverless::Function").values():
            variables = resource["Properties"].get("Environment", {}).get("Variables", {})
            buckets |= {r.resolve(v) for k, v in variables.items() if k.endswith("_BUCKET")}
        self.assertEqual(len(buckets), 3, buckets)
        for bucket in buckets:
            self.assertTrue(bucket.startswith("accounts-"), bucket)

    def test_the_api_logs_access_and_the_audit_logs_outlive_the_stack(self):
        r = self.resolver()
        resources = r.resources()
        api = resources["HttpApi"]["Properties"]
        self.assertEqual(api["AccessLogSettings"]["DestinationArn"], {"Fn::GetAtt": ["ApiAccessLog", "Arn"]})
        for name in ["ApiAccessLog", "ServiceEventLog", "AccountsTable"]:
            self.assertEqual(resources[name].get("DeletionPolicy"), "Retain", name)

    def test_the_scheduler_and_forwarder_roles_admit_this_account_s_callers_only(self):
        r = self.resolver()
        roles = r.resources("AWS::IAM::Role")
        self.assertIn("SchedulerRole", roles)
        for name, role in roles.items():
            trust = r.resolve(role["Properties"]["AssumeRolePolicyDocument"])
            for statement in trust["Statement"]:
                self.assertEqual(statement["Condition"]["StringEquals"]["aws:SourceAccount"], "123456789012", name)
        for name, function in r.resources("AWS::Serverless::Function").items():
            for event in function["Properties"].get("Events", {}).values():
                if event["Type"] == "ScheduleV2":
                    self.assertEqual(event["Properties"].get("RoleArn"), {"Fn::GetAtt": ["SchedulerRole", "Arn"]}, name)
        forwarder = cfn.load(os.path.join(ROOT, "organizations-events.yaml"))
        forwarder_roles = [(n, r) for n, r in forwarder["Resources"].items() if r["Type"] == "AWS::IAM::Role"]
        self.assertTrue(forwarder_roles)
        for name, resource in forwarder_roles:
            for statement in resource["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
                self.assertIn("aws:SourceAccount", statement["Condition"]["StringEquals"], name)

    def test_parameters_without_a_value_are_refused(self):
        with self.assertRaises(ValueError):
            cfn.Resolver(cfn.load(os.path.join(ROOT, "template.yaml")), {}, {})

    def test_definition_substitutions_must_cover_the_definition(self):
        self.assertEqual(cfn.substitute_definition('{"F": "${Fn}"}', {"Fn": "arn"}), '{"F": "arn"}')
        with self.assertRaises(KeyError):
            cfn.substitute_definition('{"F": "${Missing}"}', {})

    def test_every_state_machine_is_fully_substituted(self):
        r = self.resolver()
        for name, resource in r.resources("AWS::Serverless::StateMachine").items():
            with open(os.path.join(ROOT, resource["Properties"]["DefinitionUri"]), encoding="utf-8") as f:
                definition = f.read()
            keys = set(resource["Properties"].get("DefinitionSubstitutions", {}))
            cfn.substitute_definition(definition, {k: "x" for k in keys})  # raises if one is missing


if __name__ == "__main__":
    unittest.main()
