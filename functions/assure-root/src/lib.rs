//! Assurance concern: the account's root user has no credentials — no password, access keys,
//! signing certificates or MFA devices — so no one can sign in as root (CIS AWS Foundations
//! 1.4–1.7 then have nothing to protect). IAM's centralized root access (the foundation
//! bootstrap turns it on) lets the management account audit and delete a member's root
//! credentials in task-scoped root sessions, and blocks their recovery: accounts Organizations
//! creates have none from the start; an onboarded account's are deleted here. The management
//! account can give one back for a task that needs root (`IAMCreateRootUserPassword`).
//!
//! The function acts from the management account with its own role (`sts:AssumeRoot`, limited
//! to the audit and delete task policies), not through the provisioning role.

use aws::AssuranceError;
use aws::SdkConfig;
use aws::root::{AUDIT_TASK, DELETE_TASK, RootError, audit, delete, root_session};
use domain::assurance::{ConcernInput, ConcernResult};
use domain::config::{self, ConfigError};

pub const CONCERN: &str = "root credentials";

pub struct Assurer {
    /// The management account's own credentials.
    pub sdk: SdkConfig,
    pub management_account_id: String,
}

impl Assurer {
    /// `MANAGEMENT_ACCOUNT_ID`.
    pub fn from_env(sdk: SdkConfig) -> Result<Self, ConfigError> {
        Ok(Assurer {
            sdk,
            management_account_id: config::required("MANAGEMENT_ACCOUNT_ID")?,
        })
    }
}

fn assurance_error(e: RootError) -> AssuranceError {
    match e {
        RootError::NotCentrallyManaged { .. } => AssuranceError::Prerequisite {
            concern: CONCERN,
            message: format!(
                "{e}; centralized root access (root credentials management and root sessions) is turned on by the foundation bootstrap"
            ),
        },
        RootError::Aws(message) => AssuranceError::Aws {
            concern: CONCERN,
            message,
        },
    }
}

pub async fn handle(a: &Assurer, input: ConcernInput) -> Result<ConcernResult, AssuranceError> {
    let account = &input.aws_account_id;
    if *account == a.management_account_id {
        // Centralized root access covers member accounts only.
        return Ok(ConcernResult::new(CONCERN, vec![]));
    }
    let auditor = root_session(&a.sdk, account, AUDIT_TASK)
        .await
        .map_err(assurance_error)?;
    let found = audit(&aws_sdk_iam::Client::new(&auditor))
        .await
        .map_err(assurance_error)?;
    if found.is_empty() {
        return Ok(ConcernResult::new(CONCERN, vec![]));
    }
    let deleter = root_session(&a.sdk, account, DELETE_TASK)
        .await
        .map_err(assurance_error)?;
    delete(&aws_sdk_iam::Client::new(&deleter), &found)
        .await
        .map_err(assurance_error)?;
    Ok(ConcernResult::new(
        CONCERN,
        vec![format!(
            "deleted the root user's credentials ({}): root access is centrally managed from the management account",
            found.describe()
        )],
    ))
}
