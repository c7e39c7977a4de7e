"""Unit tests of the local stack's own logic (run by ./dev test)."""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cfn  # noqa: E402
from emulator import trust_admits  # noqa: E402

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
        self.assertEqual(env, {"TABLE_NAME": "local-AccountsTable", "SECURITY_ACCOUNT_ID": "111111111111", "LOGGING_ACCOUNT_ID": "222222222222"})

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
