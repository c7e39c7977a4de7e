//! Foundation bootstrap: the mandatory `foundation` service control policy, attached to the
//! organization's root. It denies every principal but the service's provisioning role the
//! changes that would undo the baseline: deleting or stopping the baseline trail, GuardDuty and
//! Config; touching the Logging account's buckets; weakening account defaults; altering the
//! provisioning role itself. (SCPs do not apply to the management account.)

use aws::SdkConfig;
use aws::{AssuranceError, InConcern};
use aws_sdk_organizations::types::{PolicyType, PolicyTypeStatus};
use domain::assurance::ConcernResult;
use domain::config::{self, ConfigError};
use serde::Deserialize;
use serde_json::{Value, json};

pub const CONCERN: &str = "foundation policy";
pub const POLICY_NAME: &str = "foundation";
/// AWS's limit on an SCP document.
pub const MAX_POLICY_SIZE: usize = 5120;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Input {}

/// The policy document.
pub fn foundation_policy(role_name: &str, trail: &str, buckets: &[String]) -> Value {
    let except_service =
        json!({"ArnNotLike": {"aws:PrincipalArn": format!("arn:aws:iam::*:role/{role_name}")}});
    let bucket_resources: Vec<String> = buckets
        .iter()
        .flat_map(|b| [format!("arn:aws:s3:::{b}"), format!("arn:aws:s3:::{b}/*")])
        .collect();
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ProtectBaselineTrail", "Effect": "Deny",
             "Action": ["cloudtrail:DeleteTrail", "cloudtrail:StopLogging", "cloudtrail:UpdateTrail", "cloudtrail:PutEventSelectors"],
             "Resource": format!("arn:aws:cloudtrail:*:*:trail/{trail}"), "Condition": except_service},
            {"Sid": "ProtectGuardDuty", "Effect": "Deny",
             "Action": ["guardduty:DeleteDetector", "guardduty:UpdateDetector", "guardduty:DisassociateFromAdministratorAccount",
                        "guardduty:DisassociateFromMasterAccount", "guardduty:DeleteMembers", "guardduty:DisassociateMembers"],
             "Resource": "*", "Condition": except_service},
            {"Sid": "ProtectConfig", "Effect": "Deny",
             "Action": ["config:DeleteConfigurationRecorder", "config:StopConfigurationRecorder", "config:DeleteDeliveryChannel"],
             "Resource": "*", "Condition": except_service},
            {"Sid": "ProtectLogBuckets", "Effect": "Deny",
             "Action": ["s3:DeleteBucket", "s3:DeleteBucketPolicy", "s3:PutBucketPolicy", "s3:PutBucketVersioning",
                        "s3:PutLifecycleConfiguration", "s3:PutBucketPublicAccessBlock", "s3:DeleteObjectVersion"],
             "Resource": bucket_resources, "Condition": except_service},
            {"Sid": "ProtectAccountDefaults", "Effect": "Deny",
             "Action": ["s3:PutAccountPublicAccessBlock", "ec2:DisableEbsEncryptionByDefault", "iam:DeleteAccountPasswordPolicy"],
             "Resource": "*", "Condition": except_service},
            {"Sid": "ProtectServiceRole", "Effect": "Deny",
             "Action": ["iam:DeleteRole", "iam:UpdateRole", "iam:UpdateAssumeRolePolicy", "iam:AttachRolePolicy",
                        "iam:DetachRolePolicy", "iam:PutRolePolicy", "iam:DeleteRolePolicy"],
             "Resource": format!("arn:aws:iam::*:role/{role_name}"), "Condition": except_service}
        ]
    })
}

pub struct Bootstrap {
    pub sdk: SdkConfig,
    pub role: String,
    pub trail: String,
    pub buckets: Vec<String>,
}

impl Bootstrap {
    /// `PROVISIONING_ROLE_NAME`, `BASELINE_TRAIL`, `CLOUDTRAIL_BUCKET`, `CONFIG_BUCKET`, `SSM_BUCKET`.
    pub fn from_env(sdk: SdkConfig) -> Result<Self, ConfigError> {
        Ok(Bootstrap {
            sdk,
            role: config::required("PROVISIONING_ROLE_NAME")?,
            trail: config::required("BASELINE_TRAIL")?,
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
    let content = foundation_policy(&b.role, &b.trail, &b.buckets);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Value {
        foundation_policy(
            "stax-provisioning",
            "accounts-baseline",
            &["ct".into(), "cfg".into(), "ssm".into()],
        )
    }

    #[test]
    fn only_denies_and_always_spares_the_provisioning_role() {
        for s in policy()["Statement"].as_array().unwrap() {
            assert_eq!(s["Effect"], "Deny");
            assert_eq!(
                s["Condition"]["ArnNotLike"]["aws:PrincipalArn"],
                "arn:aws:iam::*:role/stax-provisioning"
            );
        }
    }

    #[test]
    fn fits_the_scp_size_limit() {
        assert!(policy().to_string().len() <= MAX_POLICY_SIZE);
    }

    #[test]
    fn covers_the_log_buckets_and_their_objects() {
        let p = policy();
        let buckets = p["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == "ProtectLogBuckets")
            .unwrap()
            .clone();
        assert_eq!(buckets["Resource"].as_array().unwrap().len(), 6);
    }
}
