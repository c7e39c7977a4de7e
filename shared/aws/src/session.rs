//! What each use of the provisioning role may do in a member account. The role itself is
//! administrator (it has to be, to lay down any baseline); every session the service opens
//! with it passes a session policy, so a session holds only the intersection: the reads and
//! writes of the one concern it serves. A bug or a compromised input in scoring — reachable
//! from the API — can then read what scoring reads, and change nothing.

use domain::assurance::{BASELINE_TRAIL, SESSION_MANAGER_DOCUMENT};
use domain::monitoring;
use domain::policy;
use serde_json::{Value, json};

/// One use of the provisioning role, by the function and concern that opens it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Session {
    /// Discovery and onboarding's check of a member: read the role's own trust policy.
    RoleCheck,
    /// The compliance score: exactly the reads its checks make.
    Scoring,
    AssureDefaults,
    AssureCloudTrail,
    AssureConfig,
    /// GuardDuty in the member account.
    AssureGuardDuty,
    /// GuardDuty in the Security account: membership of the member.
    GuardDutyAdministrator,
    AssureSsm,
    /// The default VPC, removed while unused.
    AssureNetwork,
    /// CIS monitoring: metric filters, alarms and their topic.
    AssureMonitoring,
    /// The Logging account's trail key, looked up for the CloudTrail concern.
    TrailKeyLookup,
    /// The foundation bootstrap's log buckets in the Logging account.
    FoundationLogging,
    /// The foundation bootstrap's detector in the Security account.
    FoundationGuardDuty,
}

pub const ALL: [Session; 13] = [
    Session::RoleCheck,
    Session::Scoring,
    Session::AssureDefaults,
    Session::AssureCloudTrail,
    Session::AssureConfig,
    Session::AssureGuardDuty,
    Session::GuardDutyAdministrator,
    Session::AssureSsm,
    Session::AssureNetwork,
    Session::AssureMonitoring,
    Session::TrailKeyLookup,
    Session::FoundationLogging,
    Session::FoundationGuardDuty,
];

/// STS refuses a session policy longer than this (plain text, and packed).
pub const MAX_SESSION_POLICY_SIZE: usize = 2048;

const SCORING_READS: &[&str] = &[
    "access-analyzer:ListAnalyzers",
    "cloudtrail:DescribeTrails",
    "cloudtrail:GetEventSelectors",
    "cloudtrail:GetTrailStatus",
    "cloudwatch:DescribeAlarms",
    "config:DescribeComplianceByConfigRule",
    "config:DescribeConfigRules",
    "config:DescribeConfigurationRecorderStatus",
    "config:DescribeConfigurationRecorders",
    "ec2:DescribeFlowLogs",
    "ec2:DescribeInstances",
    "ec2:DescribeNetworkAcls",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeVpcs",
    "ec2:GetEbsEncryptionByDefault",
    "ec2:GetInstanceMetadataDefaults",
    "guardduty:GetDetector",
    "guardduty:ListDetectors",
    "iam:GenerateCredentialReport",
    "iam:GetAccountPasswordPolicy",
    "iam:GetAccountSummary",
    "iam:GetCredentialReport",
    "iam:GetPolicyVersion",
    "iam:ListAttachedUserPolicies",
    "iam:ListEntitiesForPolicy",
    "iam:ListPolicies",
    "iam:ListServerCertificates",
    "iam:ListUserPolicies",
    "iam:ListUsers",
    "iam:ListVirtualMFADevices",
    "logs:DescribeMetricFilters",
    "s3:GetAccountPublicAccessBlock",
    "ssm:GetDocument",
];

impl Session {
    /// The session's name (it shows in CloudTrail in the member account).
    pub fn name(self) -> &'static str {
        match self {
            Session::RoleCheck => "accounts-role-check",
            Session::Scoring => "accounts-compliance",
            Session::AssureDefaults => "accounts-assure-defaults",
            Session::AssureCloudTrail => "accounts-assure-cloudtrail",
            Session::AssureConfig => "accounts-assure-config",
            Session::AssureGuardDuty => "accounts-assure-guardduty",
            Session::GuardDutyAdministrator => "accounts-guardduty-administrator",
            Session::AssureSsm => "accounts-assure-ssm",
            Session::AssureNetwork => "accounts-assure-network",
            Session::AssureMonitoring => "accounts-assure-monitoring",
            Session::TrailKeyLookup => "accounts-trail-key-lookup",
            Session::FoundationLogging => "accounts-foundation-logging",
            Session::FoundationGuardDuty => "accounts-foundation-guardduty",
        }
    }

    /// The session policy, for the provisioning role named `role`.
    pub fn policy(self, role: &str) -> Value {
        let own_role = format!("arn:aws:iam::*:role/{role}");
        let support_role = format!("arn:aws:iam::*:role/{}", domain::assurance::SUPPORT_ROLE);
        let log_group = format!(
            "arn:aws:logs:*:*:log-group:{}:*",
            monitoring::TRAIL_LOG_GROUP
        );
        let allow = |actions: &[&str], resource: Value| json!({"Effect": "Allow", "Action": actions, "Resource": resource});
        let service_linked = |service: &str| {
            json!({"Effect": "Allow", "Action": "iam:CreateServiceLinkedRole", "Resource": "*",
                   "Condition": {"StringEquals": {"iam:AWSServiceName": service}}})
        };
        let statements = match self {
            Session::RoleCheck => vec![allow(&["iam:GetRole"], json!(own_role))],
            Session::Scoring => vec![allow(SCORING_READS, json!("*"))],
            Session::AssureDefaults => vec![
                allow(&["access-analyzer:ListAnalyzers"], json!("*")),
                allow(
                    &["access-analyzer:CreateAnalyzer"],
                    json!(format!(
                        "arn:aws:access-analyzer:*:*:analyzer/{}",
                        domain::assurance::ACCESS_ANALYZER
                    )),
                ),
                service_linked("access-analyzer.amazonaws.com"),
                allow(
                    &[
                        "ec2:EnableEbsEncryptionByDefault",
                        "ec2:GetEbsEncryptionByDefault",
                        "ec2:GetInstanceMetadataDefaults",
                        "ec2:ModifyInstanceMetadataDefaults",
                        "iam:CreateAccountAlias",
                        "iam:DeleteAccountAlias",
                        "iam:GetAccountPasswordPolicy",
                        "iam:ListAccountAliases",
                        "iam:UpdateAccountPasswordPolicy",
                        "s3:GetAccountPublicAccessBlock",
                        "s3:PutAccountPublicAccessBlock",
                    ],
                    json!("*"),
                ),
                // The provisioning role's own trust policy, repaired when it drifted.
                allow(
                    &["iam:GetRole", "iam:UpdateAssumeRolePolicy"],
                    json!(own_role),
                ),
                // The support role (CIS 1.17): made, its trust kept, AWSSupportAccess attached —
                // and no other policy.
                allow(
                    &[
                        "iam:GetRole",
                        "iam:CreateRole",
                        "iam:UpdateAssumeRolePolicy",
                        "iam:ListAttachedRolePolicies",
                    ],
                    json!(support_role),
                ),
                json!({"Effect": "Allow", "Action": "iam:AttachRolePolicy", "Resource": support_role,
                       "Condition": {"ArnEquals": {"iam:PolicyARN": domain::assurance::SUPPORT_POLICY_ARN}}}),
            ],
            // EC2 takes no resource-level permissions on these reads, and the default VPC's
            // parts carry no tag to scope the deletes by: the concern itself keeps to the
            // default VPC, and the SCP keeps others from making one again.
            Session::AssureNetwork => vec![allow(
                &[
                    "ec2:CreateNetworkAclEntry",
                    "ec2:DeleteInternetGateway",
                    "ec2:DeleteSubnet",
                    "ec2:DeleteVpc",
                    "ec2:DescribeEgressOnlyInternetGateways",
                    "ec2:DescribeInternetGateways",
                    "ec2:DescribeNatGateways",
                    "ec2:DescribeNetworkAcls",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeRouteTables",
                    "ec2:DescribeSecurityGroups",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeVpcEndpoints",
                    "ec2:DescribeVpcPeeringConnections",
                    "ec2:DescribeVpcs",
                    "ec2:DescribeVpnGateways",
                    "ec2:DetachInternetGateway",
                    "ec2:ReplaceNetworkAclEntry",
                    "ec2:RevokeSecurityGroupEgress",
                    "ec2:RevokeSecurityGroupIngress",
                ],
                json!("*"),
            )],
            Session::AssureCloudTrail => vec![
                allow(
                    &["cloudtrail:DescribeTrails", "logs:DescribeLogGroups"],
                    json!("*"),
                ),
                allow(&["logs:CreateLogGroup"], json!(log_group)),
                // The role CloudTrail delivers to the log group with, and only that role passed.
                allow(
                    &[
                        "iam:GetRole",
                        "iam:CreateRole",
                        "iam:GetRolePolicy",
                        "iam:PutRolePolicy",
                        "iam:UpdateAssumeRolePolicy",
                        "iam:PassRole",
                    ],
                    json!(format!(
                        "arn:aws:iam::*:role/{}",
                        monitoring::TRAIL_LOGS_ROLE
                    )),
                ),
                allow(
                    &[
                        "cloudtrail:CreateTrail",
                        "cloudtrail:GetEventSelectors",
                        "cloudtrail:GetTrailStatus",
                        "cloudtrail:PutEventSelectors",
                        "cloudtrail:StartLogging",
                        "cloudtrail:UpdateTrail",
                    ],
                    json!(format!("arn:aws:cloudtrail:*:*:trail/{BASELINE_TRAIL}")),
                ),
            ],
            Session::AssureConfig => vec![
                allow(
                    &[
                        "config:DescribeConfigurationRecorderStatus",
                        "config:DescribeConfigurationRecorders",
                        "config:DescribeDeliveryChannels",
                        "config:PutConfigurationRecorder",
                        "config:PutDeliveryChannel",
                        "config:StartConfigurationRecorder",
                        "iam:ListRoles",
                    ],
                    json!("*"),
                ),
                allow(
                    &["iam:PassRole"],
                    json!("arn:aws:iam::*:role/aws-service-role/config.amazonaws.com/*"),
                ),
                service_linked("config.amazonaws.com"),
            ],
            Session::AssureGuardDuty | Session::FoundationGuardDuty => vec![
                allow(
                    &[
                        "guardduty:CreateDetector",
                        "guardduty:GetAdministratorAccount",
                        "guardduty:GetDetector",
                        "guardduty:ListDetectors",
                        "guardduty:UpdateDetector",
                    ],
                    json!("*"),
                ),
                service_linked("guardduty.amazonaws.com"),
                service_linked("malware-protection.guardduty.amazonaws.com"),
            ],
            Session::AssureMonitoring => vec![
                allow(
                    &[
                        "logs:DescribeLogGroups",
                        "logs:DescribeMetricFilters",
                        "cloudwatch:DescribeAlarms",
                    ],
                    json!("*"),
                ),
                allow(
                    &[
                        "logs:CreateLogGroup",
                        "logs:PutRetentionPolicy",
                        "logs:PutMetricFilter",
                    ],
                    json!(log_group),
                ),
                allow(
                    &["cloudwatch:PutMetricAlarm"],
                    json!(format!(
                        "arn:aws:cloudwatch:*:*:alarm:{}*",
                        monitoring::ALARM_PREFIX
                    )),
                ),
                allow(
                    &[
                        "sns:CreateTopic",
                        "sns:GetTopicAttributes",
                        "sns:SetTopicAttributes",
                    ],
                    json!(format!("arn:aws:sns:*:*:{}", monitoring::ALARM_TOPIC)),
                ),
            ],
            Session::TrailKeyLookup => {
                vec![allow(&["kms:DescribeKey"], json!("arn:aws:kms:*:*:key/*"))]
            }
            Session::GuardDutyAdministrator => vec![allow(
                &["guardduty:CreateMembers", "guardduty:ListDetectors"],
                json!("*"),
            )],
            Session::AssureSsm => vec![allow(
                &[
                    "ssm:CreateDocument",
                    "ssm:GetDocument",
                    "ssm:UpdateDocument",
                    "ssm:UpdateDocumentDefaultVersion",
                ],
                json!(format!(
                    "arn:aws:ssm:*:*:document/{SESSION_MANAGER_DOCUMENT}"
                )),
            )],
            Session::FoundationLogging => vec![
                // The trail key: made (KMS names a key only once it exists), then kept.
                allow(&["kms:CreateKey"], json!("*")),
                allow(
                    &[
                        "kms:CreateAlias",
                        "kms:DescribeKey",
                        "kms:EnableKeyRotation",
                        "kms:GetKeyPolicy",
                        "kms:GetKeyRotationStatus",
                        "kms:PutKeyPolicy",
                    ],
                    json!([
                        "arn:aws:kms:*:*:key/*",
                        format!("arn:aws:kms:*:*:{}", domain::assurance::TRAIL_KEY_ALIAS)
                    ]),
                ),
                allow(
                    &[
                        "s3:CreateBucket",
                        "s3:GetBucketObjectLockConfiguration",
                        "s3:GetBucketPolicy",
                        "s3:GetBucketPublicAccessBlock",
                        "s3:GetBucketVersioning",
                        "s3:GetEncryptionConfiguration",
                        "s3:ListBucket",
                        "s3:PutBucketObjectLockConfiguration",
                        "s3:PutBucketPolicy",
                        "s3:PutBucketPublicAccessBlock",
                        "s3:PutBucketVersioning",
                        "s3:PutEncryptionConfiguration",
                    ],
                    // The template names the log buckets `accounts-<kind>-<Logging account>`
                    // (test_local.py checks that every bucket it names has this prefix).
                    json!("arn:aws:s3:::accounts-*"),
                ),
            ],
        };
        json!({"Version": "2012-10-17", "Statement": statements})
    }

    /// Every action the session policy allows.
    pub fn actions(self, role: &str) -> Vec<String> {
        let document = self.policy(role);
        let mut actions: Vec<String> = policy::statements(&document)
            .into_iter()
            .flat_map(|s| policy::strings(&s["Action"]))
            .map(str::to_owned)
            .collect();
        actions.sort();
        actions.dedup();
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// IAM role names are at most 64 characters.
    fn longest_role() -> String {
        "r".repeat(64)
    }

    #[test]
    fn every_session_policy_fits_sts_limit_and_allows_no_wildcard_action() {
        for s in ALL {
            let size = s.policy(&longest_role()).to_string().len();
            assert!(size <= MAX_SESSION_POLICY_SIZE, "{s:?}: {size} characters");
            for a in s.actions(&longest_role()) {
                assert!(!a.contains('*'), "{s:?} allows {a}");
            }
        }
    }

    #[test]
    fn scoring_and_the_role_check_only_read() {
        for s in [Session::Scoring, Session::RoleCheck] {
            for a in s.actions("p") {
                let verb = a.split(':').nth(1).unwrap();
                assert!(
                    ["Get", "List", "Describe"]
                        .iter()
                        .any(|v| verb.starts_with(v))
                        || a == "iam:GenerateCredentialReport",
                    "{s:?} may {a}"
                );
            }
        }
        assert_eq!(Session::RoleCheck.actions("p"), ["iam:GetRole"]);
        assert_eq!(
            Session::RoleCheck.policy("p")["Statement"][0]["Resource"],
            "arn:aws:iam::*:role/p",
            "the role check reads only the provisioning role"
        );
    }

    #[test]
    fn each_assurance_session_reaches_only_its_own_service() {
        let services = |s: Session| {
            let mut v: Vec<String> = s
                .actions("p")
                .iter()
                .map(|a| a.split(':').next().unwrap().to_owned())
                .collect();
            v.dedup();
            v
        };
        // The account defaults span three services, each one setting.
        assert_eq!(
            services(Session::AssureDefaults),
            ["access-analyzer", "ec2", "iam", "s3"]
        );
        assert_eq!(
            services(Session::AssureCloudTrail),
            ["cloudtrail", "iam", "logs"]
        );
        assert_eq!(
            services(Session::AssureMonitoring),
            ["cloudwatch", "logs", "sns"]
        );
        assert_eq!(services(Session::TrailKeyLookup), ["kms"]);
        assert_eq!(services(Session::FoundationGuardDuty), ["guardduty", "iam"]);
        assert_eq!(services(Session::AssureConfig), ["config", "iam"]);
        assert_eq!(services(Session::AssureGuardDuty), ["guardduty", "iam"]);
        assert_eq!(services(Session::GuardDutyAdministrator), ["guardduty"]);
        assert_eq!(services(Session::AssureSsm), ["ssm"]);
        assert_eq!(services(Session::AssureNetwork), ["ec2"]);
        assert_eq!(services(Session::FoundationLogging), ["kms", "s3"]);
        // The IAM actions outside a concern's service: service-linked roles and PassRole of them.
        for s in [Session::AssureConfig, Session::AssureGuardDuty] {
            for a in s.actions("p").iter().filter(|a| a.starts_with("iam:")) {
                assert!(
                    [
                        "iam:CreateServiceLinkedRole",
                        "iam:PassRole",
                        "iam:ListRoles"
                    ]
                    .contains(&a.as_str()),
                    "{s:?} may {a}"
                );
            }
        }
    }

    #[test]
    fn session_names_are_distinct() {
        let mut names: Vec<&str> = ALL.iter().map(|s| s.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
    }
}
