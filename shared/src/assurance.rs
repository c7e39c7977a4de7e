//! Account Assurance: the contract between the assurance state machine and its concern
//! functions, and the way into a target account.
//!
//! Each concern is an idempotent "ensure": it reads what is there, changes only what differs from
//! the baseline, and reports each change; a second run reports none.

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use serde::{Deserialize, Serialize};

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

#[derive(Debug, thiserror::Error)]
pub enum AssuranceError {
    #[error("could not assume role {role} in AWS account {aws_account_id}: {reason}")]
    RoleNotAssumable {
        aws_account_id: String,
        role: String,
        reason: String,
    },
    #[error("{concern}: {message}")]
    Aws {
        concern: &'static str,
        message: String,
    },
    #[error("{concern}: {message}")]
    Prerequisite {
        concern: &'static str,
        message: String,
    },
}

impl AssuranceError {
    /// The error name Step Functions sees.
    pub fn name(&self) -> &'static str {
        match self {
            AssuranceError::RoleNotAssumable { .. } => "RoleNotAssumable",
            AssuranceError::Aws { .. } => "AssuranceCallFailed",
            AssuranceError::Prerequisite { .. } => "AssurancePrerequisiteMissing",
        }
    }

    /// Wraps an SDK error of `concern`'s calls.
    pub fn aws<E>(concern: &'static str, e: E) -> Self
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    {
        AssuranceError::Aws {
            concern,
            message: crate::aws::error_message(&e),
        }
    }
}

impl From<AssuranceError> for lambda_runtime::Diagnostic {
    fn from(e: AssuranceError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.name().to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// `result.concern(CONCERN)?`: an AWS call's failure as the concern's error.
pub trait InConcern<T> {
    fn concern(self, concern: &'static str) -> Result<T, AssuranceError>;
}

impl<T, E> InConcern<T> for Result<T, E>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    fn concern(self, concern: &'static str) -> Result<T, AssuranceError> {
        self.map_err(|e| AssuranceError::aws(concern, e))
    }
}

/// The way into the accounts the service manages: the management account's credentials and the
/// name of the provisioning role every managed account carries.
#[derive(Debug, Clone)]
pub struct Provisioning {
    pub sdk: SdkConfig,
    pub role: String,
}

impl Provisioning {
    /// `PROVISIONING_ROLE_NAME`.
    pub fn from_env(sdk: SdkConfig) -> Result<Self, crate::config::ConfigError> {
        Ok(Provisioning {
            sdk,
            role: crate::config::required("PROVISIONING_ROLE_NAME")?,
        })
    }

    /// SDK configuration acting in `aws_account_id` through its provisioning role.
    pub async fn into_account(
        &self,
        aws_account_id: &str,
        session: &str,
    ) -> Result<SdkConfig, AssuranceError> {
        assume_role(&self.sdk, aws_account_id, &self.role, session).await
    }
}

/// SDK configuration acting in `aws_account_id` through role `role_name` there (the
/// management account's credentials assume it).
pub async fn assume_role(
    sdk: &SdkConfig,
    aws_account_id: &str,
    role_name: &str,
    session: &str,
) -> Result<SdkConfig, AssuranceError> {
    let partition = "aws";
    let role_arn = format!("arn:{partition}:iam::{aws_account_id}:role/{role_name}");
    let refused = |reason: String| AssuranceError::RoleNotAssumable {
        aws_account_id: aws_account_id.to_owned(),
        role: role_name.to_owned(),
        reason,
    };
    let out = aws_sdk_sts::Client::new(sdk)
        .assume_role()
        .role_arn(&role_arn)
        .role_session_name(session)
        .send()
        .await
        .map_err(|e| refused(crate::aws::error_message(&e)))?;
    let c = out
        .credentials
        .ok_or_else(|| refused("STS returned no credentials".into()))?;
    let expiry = std::time::SystemTime::try_from(c.expiration).ok();
    let credentials = Credentials::new(
        c.access_key_id,
        c.secret_access_key,
        Some(c.session_token),
        expiry,
        "accounts-assume-role",
    );
    Ok(sdk
        .to_builder()
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build())
}
