//! Account Assurance: the contract between the assurance state machine and its concern
//! functions.
//!
//! Each concern is an idempotent "ensure": it reads what is there, changes only what differs from
//! the baseline, and reports each change; a second run reports none.

use serde::{Deserialize, Serialize};

/// The trail Account Assurance lays down in every account (and the foundation SCP protects).
pub const BASELINE_TRAIL: &str = "accounts-baseline";

/// The document AWS Session Manager keeps an account's preferences in (AWS's name).
pub const SESSION_MANAGER_DOCUMENT: &str = "SSM-SessionManagerRunShell";

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
