//! Account Assurance: the contract between the assurance state machine and its concern
//! functions.
//!
//! Each concern is an idempotent "ensure": it reads what is there, changes only what differs from
//! the baseline, and reports each change; a second run reports none.

use serde::{Deserialize, Serialize};

/// The trail Account Assurance lays down in every account (and the foundation SCP protects).
pub const BASELINE_TRAIL: &str = "accounts-baseline";

/// The IAM Access Analyzer (CIS 1.20) Account Assurance makes in every governed region where
/// the account has none.
pub const ACCESS_ANALYZER: &str = "accounts-access-analyzer";

/// The KMS key the baseline trail encrypts its logs with (CIS 3.5): the Logging account's, in
/// the home region, by this alias.
pub const TRAIL_KEY_ALIAS: &str = "alias/accounts-cloudtrail";

/// The document AWS Session Manager keeps an account's preferences in (AWS's name).
pub const SESSION_MANAGER_DOCUMENT: &str = "SSM-SessionManagerRunShell";

/// The role Account Assurance lays down for incidents with AWS Support (CIS AWS Foundations
/// 1.17), with [`SUPPORT_POLICY_ARN`] attached; the foundation SCP protects it.
pub const SUPPORT_ROLE: &str = "accounts-support";
pub const SUPPORT_POLICY_ARN: &str = "arn:aws:iam::aws:policy/AWSSupportAccess";

/// The support role's trust policy: the management account's principals (those its own IAM
/// allows `sts:AssumeRole` on the role), as for the provisioning role, and no one else.
pub fn support_role_trust(management_account_id: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{management_account_id}:root")},
            "Action": "sts:AssumeRole",
        }],
    })
    .to_string()
}

/// A member account's root user credentials (IAM's centralized root access audits them from the
/// management account). With none, no one can sign in as the account's root user, and with root
/// credentials management on, no one can recover them either: only the management account's
/// task-scoped root sessions act as root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RootCredentials {
    pub password: bool,
    pub access_keys: Vec<String>,
    pub signing_certificates: Vec<String>,
    pub mfa_devices: Vec<String>,
}

impl RootCredentials {
    pub fn is_empty(&self) -> bool {
        !self.password
            && self.access_keys.is_empty()
            && self.signing_certificates.is_empty()
            && self.mfa_devices.is_empty()
    }

    /// What there is, as a person reads it ("a password, 1 access key").
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.password {
            parts.push("a password".to_owned());
        }
        for (list, what) in [
            (&self.access_keys, "access key"),
            (&self.signing_certificates, "signing certificate"),
            (&self.mfa_devices, "MFA device"),
        ] {
            match list.len() {
                0 => {}
                1 => parts.push(format!("1 {what}")),
                n => parts.push(format!("{n} {what}s")),
            }
        }
        if parts.is_empty() {
            "no credentials".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

/// What the state machine hands every concern.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ConcernInput {
    #[serde(rename = "AwsAccountId")]
    pub aws_account_id: String,
    /// The account's root email (GuardDuty membership needs it).
    #[serde(rename = "Email", default)]
    pub email: Option<String>,
    /// The IAM account alias the account should have.
    #[serde(rename = "AwsAccountAlias", default)]
    pub aws_account_alias: Option<String>,
}

/// What a concern reports: its name and each change it made (empty: nothing to do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConcernResult {
    #[serde(rename = "Concern")]
    pub concern: String,
    #[serde(rename = "Changes", default)]
    pub changes: Vec<String>,
}

impl ConcernResult {
    /// A concern's report of `changes` (empty: everything was in place).
    pub fn new(concern: &str, changes: Vec<String>) -> Self {
        ConcernResult {
            concern: concern.to_owned(),
            changes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_credentials_read_as_a_list_of_what_there_is() {
        let none = RootCredentials::default();
        assert!(none.is_empty());
        assert_eq!(none.describe(), "no credentials");
        let some = RootCredentials {
            password: true,
            access_keys: vec!["AKIA1".into(), "AKIA2".into()],
            mfa_devices: vec!["arn:aws:iam::1:mfa/root".into()],
            ..Default::default()
        };
        assert!(!some.is_empty());
        assert_eq!(some.describe(), "a password, 2 access keys, 1 MFA device");
    }

    #[test]
    fn the_support_role_trusts_the_management_account_alone() {
        let trust = support_role_trust("123456789012");
        assert_eq!(crate::policy::trusts_only(&trust, "123456789012"), Ok(()));
        assert!(crate::policy::trusts_only(&trust, "210987654321").is_err());
    }
}
