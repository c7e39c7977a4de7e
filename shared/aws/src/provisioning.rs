//! Sessions in the accounts the service manages, through the provisioning role every managed
//! account carries, and the errors of work done in them (Account Assurance's concerns, the
//! foundation bootstrap's steps).

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use domain::{ErrorName, Named};

use crate::SdkConfig;

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

impl Named for AssuranceError {
    fn name(&self) -> ErrorName {
        match self {
            AssuranceError::RoleNotAssumable { .. } => ErrorName::RoleNotAssumable,
            AssuranceError::Aws { .. } => ErrorName::AssuranceCallFailed,
            AssuranceError::Prerequisite { .. } => ErrorName::AssurancePrerequisiteMissing,
        }
    }
}

impl AssuranceError {
    /// Wraps an SDK error of `concern`'s calls.
    pub fn aws<E>(concern: &'static str, e: E) -> Self
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    {
        AssuranceError::Aws {
            concern,
            message: crate::error_message(&e),
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
    pub fn from_env(sdk: SdkConfig) -> Result<Self, domain::config::ConfigError> {
        Ok(Provisioning {
            sdk,
            role: domain::config::required("PROVISIONING_ROLE_NAME")?,
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
        .map_err(|e| refused(crate::error_message(&e)))?;
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
