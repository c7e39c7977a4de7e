//! Foundation bootstrap: the mandatory `foundation` service control policy, attached to the
//! organization's root. It denies every principal but the service's provisioning role the
//! changes that would undo the baseline: deleting or stopping the baseline trail, GuardDuty and
//! Config; touching the Logging account's buckets; weakening account defaults; altering the
//! provisioning role itself. (SCPs do not apply to the management account.)
//!
//! And the other organization-wide settings the service relies on: trusted access for the
//! Account Management API, without which the management account cannot rename a member account
//! (`PUT …/accounts/{id}` with `AwsAccountName` calls `PutAccountName` with its `AccountId`);
//! and IAM's centralized root access — trusted access for IAM, root credentials management (new
//! accounts get no root credentials, and no one can recover them) and root sessions (the
//! management account audits and deletes a member's root credentials, assure-root).

use aws::SdkConfig;
use aws::{AssuranceError, InConcern};
use aws_sdk_organizations::types::{PolicyType, PolicyTypeStatus};
use domain::assurance::{BASELINE_TRAIL, ConcernResult, SESSION_MANAGER_DOCUMENT, SUPPORT_ROLE};
use domain::config::{self, ConfigError};
use domain::monitoring::{ALARM_PREFIX, ALARM_TOPIC, TRAIL_LOG_GROUP, TRAIL_LOGS_ROLE};
use serde::Deserialize;
use serde_json::{Value, json};

pub const CONCERN: &str = "foundation policy";
pub const POLICY_NAME: &str = domain::policies::FOUNDATION_POLICY;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Input {}

/// The policy document: one statement per protected thing, each denying every principal but
/// the provisioning role the actions that would undo it. The provisioning role is exempt by
/// name; discovery and onboarding make sure it trusts only the management account, and the
/// role itself cannot be created or changed by anyone else, so no principal a member account's
/// own admins control is exempt.
pub fn foundation_policy(role_name: &str, buckets: &[String]) -> Value {
    let except_service =
        json!({"ArnNotLike": {"aws:PrincipalArn": format!("arn:aws:iam::*:role/{role_name}")}});
    let bucket_resources: Vec<String> = buckets
        .iter()
        .flat_map(|b| [format!("arn:aws:s3:::{b}"), format!("arn:aws:s3:::{b}/*")])
        .collect();
    let deny = |sid: &str, actions: &[&str], resource: Value| json!({"Sid": sid, "Effect": "Deny", "Action": actions, "Resource": resource, "Condition": except_service});
    json!({
        "Version": "2012-10-17",
        "Statement": [
            deny("ProtectBaselineTrail",
                 &["cloudtrail:DeleteTrail", "cloudtrail:StopLogging", "cloudtrail:UpdateTrail", "cloudtrail:PutEventSelectors"],
                 json!(format!("arn:aws:cloudtrail:*:*:trail/{BASELINE_TRAIL}"))),
            deny("ProtectGuardDuty",
                 &["guardduty:DeleteDetector", "guardduty:UpdateDetector", "guardduty:DisassociateFromAdministratorAccount",
                   "guardduty:DisassociateFromMasterAccount", "guardduty:DeleteMembers", "guardduty:DisassociateMembers",
                   "guardduty:StopMonitoringMembers", "guardduty:UpdateMemberDetectors",
                   "guardduty:UpdateOrganizationConfiguration", "guardduty:CreateFilter", "guardduty:UpdateFilter"],
                 json!("*")),
            deny("ProtectConfig",
                 &["config:DeleteConfigurationRecorder", "config:StopConfigurationRecorder", "config:PutConfigurationRecorder",
                   "config:DeleteDeliveryChannel", "config:PutDeliveryChannel"],
                 json!("*")),
            deny("ProtectLogBuckets",
                 &["s3:DeleteBucket", "s3:DeleteBucketPolicy", "s3:PutBucketPolicy", "s3:PutBucketVersioning",
                   "s3:PutLifecycleConfiguration", "s3:PutBucketPublicAccessBlock", "s3:DeleteObjectVersion",
                   "s3:PutEncryptionConfiguration", "s3:PutReplicationConfiguration", "s3:PutBucketObjectLockConfiguration"],
                 json!(bucket_resources)),
            deny("ProtectAccountDefaults",
                 &["s3:PutAccountPublicAccessBlock", "ec2:DisableEbsEncryptionByDefault",
                   "ec2:ModifyInstanceMetadataDefaults", "iam:DeleteAccountPasswordPolicy",
                   "iam:UpdateAccountPasswordPolicy", "access-analyzer:DeleteAnalyzer"],
                 json!("*")),
            // The trail's CloudWatch Logs delivery and the CIS monitoring on it (4.1–4.15).
            deny("ProtectMonitoring",
                 &["logs:Delete*", "logs:PutMetricFilter", "logs:PutRetentionPolicy", "cloudwatch:DeleteAlarms",
                   "cloudwatch:PutMetricAlarm", "cloudwatch:DisableAlarmActions", "sns:DeleteTopic",
                   "sns:SetTopicAttributes"],
                 json!([format!("arn:aws:logs:*:*:log-group:{TRAIL_LOG_GROUP}:*"),
                        format!("arn:aws:cloudwatch:*:*:alarm:{ALARM_PREFIX}*"),
                        format!("arn:aws:sns:*:*:{ALARM_TOPIC}")])),
            deny("ProtectServiceRole",
                 &["iam:CreateRole", "iam:DeleteRole", "iam:UpdateRole", "iam:UpdateAssumeRolePolicy", "iam:AttachRolePolicy",
                   "iam:DetachRolePolicy", "iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:PutRolePermissionsBoundary",
                   "iam:DeleteRolePermissionsBoundary", "iam:TagRole", "iam:UntagRole"],
                 json!(format!("arn:aws:iam::*:role/{role_name}"))),
            deny("ProtectNoDefaultVpc", &["ec2:CreateDefaultVpc", "ec2:CreateDefaultSubnet"], json!("*")),
            // The support role (CIS 1.17) and the trail's CloudWatch Logs delivery role.
            deny("ProtectBaselineRoles",
                 &["iam:DeleteRole", "iam:UpdateAssumeRolePolicy", "iam:AttachRolePolicy", "iam:DetachRolePolicy",
                   "iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:PutRolePermissionsBoundary"],
                 json!([format!("arn:aws:iam::*:role/{SUPPORT_ROLE}"),
                        format!("arn:aws:iam::*:role/{TRAIL_LOGS_ROLE}")])),
            deny("ProtectSessionManagerPreferences",
                 &["ssm:UpdateDocument", "ssm:DeleteDocument", "ssm:UpdateDocumentDefaultVersion"],
                 json!(format!("arn:aws:ssm:*:*:document/{SESSION_MANAGER_DOCUMENT}"))),
            deny("ProtectMembership", &["organizations:LeaveOrganization"], json!("*"))
        ]
    })
}

/// The AWS services the service calls across the organization through trusted access.
pub const TRUSTED_SERVICES: [&str; 2] = ["account.amazonaws.com", "iam.amazonaws.com"];

/// IAM's centralized root access features the service turns on.
pub const ROOT_FEATURES: [&str; 2] = ["RootCredentialsManagement", "RootSessions"];

/// The services of `TRUSTED_SERVICES` the organization does not yet trust, given the ones it does.
pub fn untrusted<'a>(enabled: &[&str]) -> Vec<&'a str> {
    TRUSTED_SERVICES
        .into_iter()
        .filter(|s| !enabled.contains(s))
        .collect()
}

pub struct Bootstrap {
    pub sdk: SdkConfig,
    pub role: String,
    pub buckets: Vec<String>,
}

impl Bootstrap {
    /// `PROVISIONING_ROLE_NAME`, `CLOUDTRAIL_BUCKET`, `CONFIG_BUCKET`, `SSM_BUCKET`.
    pub fn from_env(sdk: SdkConfig) -> Result<Self, ConfigError> {
        Ok(Bootstrap {
            sdk,
            role: config::required("PROVISIONING_ROLE_NAME")?,
            buckets: vec![
                config::required("CLOUDTRAIL_BUCKET")?,
                config::required("CONFIG_BUCKET")?,
                config::required("SSM_BUCKET")?,
            ],
        })
    }
}

pub async fn handle(b: &Bootstrap, _: Input) -> Result<ConcernResult, AssuranceError> {
    let orgs = aws::organizations(&b.sdk);
    let mut changes = Vec::new();
    let trusted = orgs
        .list_aws_service_access_for_organization()
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .concern(CONCERN)?;
    let enabled: Vec<&str> = trusted
        .iter()
        .flat_map(|p| p.enabled_service_principals())
        .filter_map(|s| s.service_principal())
        .collect();
    for service in untrusted(&enabled) {
        orgs.enable_aws_service_access()
            .service_principal(service)
            .send()
            .await
            .concern(CONCERN)?;
        changes.push(format!(
            "enabled the organization's trusted access for {service}"
        ));
    }

    changes.extend(centralize_root_access(&aws_sdk_iam::Client::new(&b.sdk)).await?);

    let content = foundation_policy(&b.role, &b.buckets);
    let roots = orgs.list_roots().send().await.concern(CONCERN)?;
    let root = roots
        .roots()
        .first()
        .ok_or_else(|| AssuranceError::Prerequisite {
            concern: CONCERN,
            message: "the organization has no root".into(),
        })?;
    let root_id = root.id().unwrap_or_default().to_owned();
    let scps_on = root.policy_types().iter().any(|t| {
        t.r#type() == Some(&PolicyType::ServiceControlPolicy)
            && t.status() == Some(&PolicyTypeStatus::Enabled)
    });
    if !scps_on {
        match orgs
            .enable_policy_type()
            .root_id(&root_id)
            .policy_type(PolicyType::ServiceControlPolicy)
            .send()
            .await
        {
            Ok(_) => changes
                .push("enabled service control policies on the organization's root".to_owned()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_policy_type_already_enabled_exception()) => {}
            Err(e) => return Err(AssuranceError::aws(CONCERN, e)),
        }
    }

    let pages = orgs
        .list_policies()
        .filter(PolicyType::ServiceControlPolicy)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .concern(CONCERN)?;
    let existing = pages
        .iter()
        .flat_map(|p| p.policies())
        .find(|p| p.name() == Some(POLICY_NAME))
        .and_then(|p| p.id().map(str::to_owned));
    let policy_id = match existing {
        Some(id) => {
            // Only the service's own SCP is kept up to date: one of the same name that someone
            // else made (without the service's tag) is not silently rewritten and attached.
            let tags = orgs
                .list_tags_for_resource()
                .resource_id(&id)
                .send()
                .await
                .concern(CONCERN)?;
            if !aws::organizations::is_managed(tags.tags()) {
                return Err(AssuranceError::NotManaged {
                    concern: CONCERN,
                    message: format!(
                        "an SCP named {POLICY_NAME} ({id}) exists that the service did not create \
                         (it lacks the tag {}={}); rename or delete it, or tag it so to let the \
                         service manage it",
                        domain::policy::MANAGED_TAG_KEY,
                        domain::policy::MANAGED_TAG_VALUE
                    ),
                });
            }
            let described = orgs
                .describe_policy()
                .policy_id(&id)
                .send()
                .await
                .concern(CONCERN)?;
            let current: Option<Value> = described
                .policy
                .and_then(|p| p.content)
                .and_then(|c| serde_json::from_str(&c).ok());
            if current.as_ref() != Some(&content) {
                orgs.update_policy()
                    .policy_id(&id)
                    .content(content.to_string())
                    .send()
                    .await
                    .concern(CONCERN)?;
                changes.push(format!("restored the {POLICY_NAME} SCP's content"));
            }
            id
        }
        None => {
            let created = orgs
                .create_policy()
                .name(POLICY_NAME)
                .description("Protects the Accounts service's baseline: trails, GuardDuty, Config, log buckets, account defaults, the provisioning role")
                .r#type(PolicyType::ServiceControlPolicy)
                .content(content.to_string())
                .tags(aws::organizations::managed_tag())
                .send()
                .await
                .concern(CONCERN)?;
            changes.push(format!("created the {POLICY_NAME} SCP"));
            created
                .policy
                .and_then(|p| p.policy_summary)
                .and_then(|s| s.id)
                .unwrap_or_default()
        }
    };
    let targets = orgs
        .list_targets_for_policy()
        .policy_id(&policy_id)
        .send()
        .await
        .concern(CONCERN)?;
    if !targets
        .targets()
        .iter()
        .any(|t| t.target_id() == Some(&root_id))
    {
        orgs.attach_policy()
            .policy_id(&policy_id)
            .target_id(&root_id)
            .send()
            .await
            .concern(CONCERN)?;
        changes.push(format!(
            "attached the {POLICY_NAME} SCP to the organization's root"
        ));
    }
    Ok(ConcernResult::new(CONCERN, changes))
}

/// Root credentials management and root sessions on for the organization (after trusted access
/// for IAM). The changes made.
async fn centralize_root_access(iam: &aws_sdk_iam::Client) -> Result<Vec<String>, AssuranceError> {
    let features = iam
        .list_organizations_features()
        .send()
        .await
        .concern(CONCERN)?;
    let enabled: Vec<&str> = features
        .enabled_features()
        .iter()
        .map(|f| f.as_str())
        .collect();
    let mut changes = Vec::new();
    if !enabled.contains(&ROOT_FEATURES[0]) {
        iam.enable_organizations_root_credentials_management()
            .send()
            .await
            .concern(CONCERN)?;
        changes.push(
            "turned on root credentials management: member accounts have no root credentials to recover".to_owned(),
        );
    }
    if !enabled.contains(&ROOT_FEATURES[1]) {
        iam.enable_organizations_root_sessions()
            .send()
            .await
            .concern(CONCERN)?;
        changes.push(
            "turned on root sessions: the management account acts as a member's root user for audit and delete tasks only".to_owned(),
        );
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::policy::{statements, strings};

    #[test]
    fn trusted_access_is_enabled_for_the_account_management_api_once() {
        assert_eq!(
            untrusted(&[]),
            ["account.amazonaws.com", "iam.amazonaws.com"]
        );
        assert_eq!(
            untrusted(&["guardduty.amazonaws.com", "account.amazonaws.com"]),
            ["iam.amazonaws.com"]
        );
        assert_eq!(
            untrusted(&["iam.amazonaws.com", "account.amazonaws.com"]),
            Vec::<&str>::new()
        );
    }

    const ROLE: &str = "stax-provisioning";
    const BUCKETS: [&str; 3] = ["ct", "cfg", "ssm"];

    fn policy() -> Value {
        let buckets: Vec<String> = BUCKETS.iter().map(|b| (*b).to_owned()).collect();
        foundation_policy(ROLE, &buckets)
    }

    /// IAM's wildcard match (`*` any run of characters, `?` one), case-sensitive as ARNs are.
    fn glob(pattern: &str, value: &str) -> bool {
        fn go(p: &[u8], v: &[u8]) -> bool {
            match (p.first(), v.first()) {
                (None, None) => true,
                (Some(b'*'), _) => go(&p[1..], v) || (!v.is_empty() && go(p, &v[1..])),
                (Some(b'?'), Some(_)) => go(&p[1..], &v[1..]),
                (Some(a), Some(b)) if a == b => go(&p[1..], &v[1..]),
                _ => false,
            }
        }
        go(pattern.as_bytes(), value.as_bytes())
    }

    /// Does the policy deny `principal` calling `action` on `resource`? Evaluates exactly
    /// what the policy uses: Deny statements with Action, Resource and an ArnNotLike on
    /// aws:PrincipalArn.
    fn denies(policy: &Value, principal: &str, action: &str, resource: &str) -> bool {
        statements(policy).into_iter().any(|s| {
            let exempt = strings(&s["Condition"]["ArnNotLike"]["aws:PrincipalArn"]);
            s["Effect"] == "Deny"
                && strings(&s["Action"])
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(action))
                && strings(&s["Resource"]).iter().any(|r| glob(r, resource))
                && !exempt.iter().any(|e| glob(e, principal))
        })
    }

    /// What undoes the baseline, on what: every protected resource with every action that
    /// would undo it. Written out here, not derived from the policy, so a statement that
    /// loses an action fails.
    fn undoing() -> Vec<(String, String)> {
        let mut cases = Vec::new();
        let trail = format!("arn:aws:cloudtrail:eu-west-1:111111111111:trail/{BASELINE_TRAIL}");
        for a in [
            "DeleteTrail",
            "StopLogging",
            "UpdateTrail",
            "PutEventSelectors",
        ] {
            cases.push((a, "cloudtrail", trail.clone()));
        }
        for a in [
            "DeleteDetector",
            "UpdateDetector",
            "DisassociateFromAdministratorAccount",
            "DisassociateFromMasterAccount",
            "DeleteMembers",
            "DisassociateMembers",
            "StopMonitoringMembers",
            "UpdateMemberDetectors",
            "UpdateOrganizationConfiguration",
            "CreateFilter",
            "UpdateFilter",
        ] {
            cases.push((
                a,
                "guardduty",
                "arn:aws:guardduty:eu-west-1:111111111111:detector/d1".into(),
            ));
        }
        for a in [
            "DeleteConfigurationRecorder",
            "StopConfigurationRecorder",
            "PutConfigurationRecorder",
            "DeleteDeliveryChannel",
            "PutDeliveryChannel",
        ] {
            cases.push((
                a,
                "config",
                "arn:aws:config:eu-west-1:111111111111:config-recorder/default".into(),
            ));
        }
        for bucket in BUCKETS {
            for a in [
                "DeleteBucket",
                "DeleteBucketPolicy",
                "PutBucketPolicy",
                "PutBucketVersioning",
                "PutLifecycleConfiguration",
                "PutBucketPublicAccessBlock",
                "PutEncryptionConfiguration",
                "PutReplicationConfiguration",
                "PutBucketObjectLockConfiguration",
            ] {
                cases.push((a, "s3", format!("arn:aws:s3:::{bucket}")));
            }
            cases.push((
                "DeleteObjectVersion",
                "s3",
                format!("arn:aws:s3:::{bucket}/AWSLogs/1/x.gz"),
            ));
        }
        cases.push(("PutAccountPublicAccessBlock", "s3", "*".into()));
        cases.push(("DisableEbsEncryptionByDefault", "ec2", "*".into()));
        cases.push(("DeleteAccountPasswordPolicy", "iam", "*".into()));
        cases.push(("UpdateAccountPasswordPolicy", "iam", "*".into()));
        for a in [
            "CreateRole",
            "DeleteRole",
            "UpdateRole",
            "UpdateAssumeRolePolicy",
            "AttachRolePolicy",
            "DetachRolePolicy",
            "PutRolePolicy",
            "DeleteRolePolicy",
            "PutRolePermissionsBoundary",
            "DeleteRolePermissionsBoundary",
            "TagRole",
            "UntagRole",
        ] {
            cases.push((a, "iam", format!("arn:aws:iam::111111111111:role/{ROLE}")));
        }
        for a in ["CreateDefaultVpc", "CreateDefaultSubnet"] {
            cases.push((a, "ec2", "*".into()));
        }
        for a in [
            "DeleteRole",
            "UpdateAssumeRolePolicy",
            "DetachRolePolicy",
            "PutRolePolicy",
            "PutRolePermissionsBoundary",
        ] {
            cases.push((
                a,
                "iam",
                format!("arn:aws:iam::111111111111:role/{SUPPORT_ROLE}"),
            ));
        }
        for a in [
            "UpdateDocument",
            "DeleteDocument",
            "UpdateDocumentDefaultVersion",
        ] {
            cases.push((
                a,
                "ssm",
                format!("arn:aws:ssm:eu-west-1:111111111111:document/{SESSION_MANAGER_DOCUMENT}"),
            ));
        }
        cases.push(("LeaveOrganization", "organizations", "*".into()));
        cases
            .into_iter()
            .map(|(a, service, r)| (format!("{service}:{a}"), r))
            .collect()
    }

    #[test]
    fn every_action_that_undoes_the_baseline_is_denied_to_all_but_the_provisioning_role() {
        let p = policy();
        let admin = "arn:aws:iam::111111111111:role/Admin";
        let service = format!("arn:aws:iam::111111111111:role/{ROLE}");
        let lookalike = format!("arn:aws:iam::111111111111:role/team/{ROLE}");
        for (action, resource) in &undoing() {
            assert!(
                denies(&p, admin, action, resource),
                "{action} on {resource} is not denied"
            );
            assert!(
                denies(&p, &lookalike, action, resource),
                "{action}: a role of that name under a path is not the provisioning role"
            );
            assert!(
                !denies(&p, &service, action, resource),
                "{action} is denied to the provisioning role"
            );
        }
    }

    #[test]
    fn other_roles_and_other_resources_are_left_alone() {
        let p = policy();
        let admin = "arn:aws:iam::111111111111:role/Admin";
        assert!(!denies(
            &p,
            admin,
            "iam:CreateRole",
            "arn:aws:iam::111111111111:role/app"
        ));
        assert!(!denies(
            &p,
            admin,
            "s3:PutBucketPolicy",
            "arn:aws:s3:::team-data"
        ));
        assert!(!denies(
            &p,
            admin,
            "ssm:UpdateDocument",
            "arn:aws:ssm:eu-west-1:111111111111:document/TeamRunbook"
        ));
        assert!(!denies(
            &p,
            admin,
            "cloudtrail:DeleteTrail",
            "arn:aws:cloudtrail:eu-west-1:111111111111:trail/team"
        ));
    }

    #[test]
    fn fits_the_scp_size_limit_with_the_longest_names_allowed() {
        // IAM role names: 64 characters; bucket names: 63 (the trail's name is the service's).
        let buckets = vec!["b".repeat(63), "c".repeat(63), "d".repeat(63)];
        let longest = foundation_policy(&"r".repeat(64), &buckets);
        let size = longest.to_string().len();
        // The grammar and the size AWS admits, as the policies API checks a user's SCP.
        domain::scp::validate_scp(&longest.to_string()).unwrap();
        assert!(size <= domain::scp::MAX_SCP_CHARACTERS, "{size} characters");
        println!("longest foundation SCP: {size} characters");
    }
}
