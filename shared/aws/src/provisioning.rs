//! Sessions in the accounts the service manages, through the provisioning role every managed
//! account carries, and the errors of work done in them (Account Assurance's concerns, the
//! foundation bootstrap's steps).

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use domain::{ErrorName, Named};

use crate::SdkConfig;
use crate::session::Session;

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
    /// A resource the concern would create exists, made by someone else: not adopted.
    #[error("{concern}: {message}")]
    NotManaged {
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
            AssuranceError::NotManaged { .. } => ErrorName::NotManagedByTheService,
        }
    }
}

/// Why a provisioning role did not pass [`Provisioning::check_role`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleCheckError {
    /// The role cannot be assumed, or trusts more than the management account: the account is
    /// not brought under management until that changes.
    #[error("{0}")]
    Refused(String),
    /// STS or IAM could not answer (unreachable, throttled past the SDK's retries): ask again.
    #[error("the provisioning role could not be checked: {0}")]
    Unavailable(String),
}

impl Named for RoleCheckError {
    fn name(&self) -> ErrorName {
        match self {
            RoleCheckError::Refused(_) => ErrorName::ProvisioningRoleRefused,
            RoleCheckError::Unavailable(_) => ErrorName::RoleCheckFailed,
        }
    }
}

/// Is an AWS failure with this error code (none: no answer at all — a timeout, a connection
/// failure) worth asking again? Throttling is; any other answer is AWS's decision.
pub fn transient(code: Option<&str>) -> bool {
    matches!(
        code,
        None | Some("Throttling" | "ThrottlingException" | "RequestLimitExceeded")
    )
}

impl AssuranceError {
    /// The same failure, saying it happened in `region`.
    pub fn in_region(self, region: &str) -> Self {
        match self {
            AssuranceError::Aws { concern, message } => AssuranceError::Aws {
                concern,
                message: format!("in {region}: {message}"),
            },
            AssuranceError::Prerequisite { concern, message } => AssuranceError::Prerequisite {
                concern,
                message: format!("in {region}: {message}"),
            },
            AssuranceError::NotManaged { concern, message } => AssuranceError::NotManaged {
                concern,
                message: format!("in {region}: {message}"),
            },
            // The role is the account's, in every region alike.
            e @ AssuranceError::RoleNotAssumable { .. } => e,
        }
    }

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

    /// SDK configuration acting in `aws_account_id` through its provisioning role, holding
    /// only what `session`'s policy allows.
    pub async fn into_account(
        &self,
        aws_account_id: &str,
        session: Session,
    ) -> Result<SdkConfig, AssuranceError> {
        let policy = session.policy(&self.role).to_string();
        assume_role(
            &self.sdk,
            aws_account_id,
            &self.role,
            session.name(),
            Some(&policy),
        )
        .await
    }

    /// Whether the management account can assume `aws_account_id`'s provisioning role, and
    /// whether that role trusts the management account (`management`) alone. Discovery and
    /// onboarding refuse an account that fails it; the session reads the role's own trust
    /// policy and nothing else.
    pub async fn check_role(
        &self,
        aws_account_id: &str,
        management: &str,
    ) -> Result<(), RoleCheckError> {
        let target = self
            .into_account(aws_account_id, Session::RoleCheck)
            .await
            .map_err(|e| match e {
                AssuranceError::RoleNotAssumable { .. } => RoleCheckError::Refused(e.to_string()),
                other => RoleCheckError::Unavailable(other.to_string()),
            })?;
        let iam = aws_sdk_iam::Client::new(&target);
        let document = role_trust(&iam, &self.role)
            .await
            .map_err(|e| RoleCheckError::Unavailable(e.to_string()))?;
        domain::policy::trusts_only(&document, management).map_err(RoleCheckError::Refused)
    }
}

/// The trust policy of role `role` in the account `iam` acts in, as JSON text (IAM answers it
/// URL-encoded).
pub async fn role_trust(iam: &aws_sdk_iam::Client, role: &str) -> Result<String, AssuranceError> {
    let out = iam
        .get_role()
        .role_name(role)
        .send()
        .await
        .map_err(|e| AssuranceError::Aws {
            concern: "provisioning role",
            message: format!(
                "could not read its trust policy: {}",
                crate::error_message(&e)
            ),
        })?;
    let raw = out
        .role
        .and_then(|r| r.assume_role_policy_document)
        .unwrap_or_default();
    Ok(policy_text(&raw))
}

/// An IAM policy document as IAM returns it (URL-encoded JSON), as JSON text.
pub fn policy_text(raw: &str) -> String {
    if raw.trim_start().starts_with('{') {
        return raw.to_owned();
    }
    urlencoding::decode(raw).map_or_else(|_| raw.to_owned(), |d| d.into_owned())
}

/// SDK configuration acting in `aws_account_id` through role `role_name` there (the
/// management account's credentials assume it), limited by `session_policy` when given.
pub async fn assume_role(
    sdk: &SdkConfig,
    aws_account_id: &str,
    role_name: &str,
    session: &str,
    session_policy: Option<&str>,
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
        .set_policy(session_policy.map(str::to_owned))
        .send()
        .await
        .map_err(|e| {
            use aws_smithy_types::error::metadata::ProvideErrorMetadata;
            if transient(e.code()) {
                AssuranceError::aws("provisioning role", e)
            } else {
                refused(crate::error_message(&e))
            }
        })?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_no_answer_and_throttling_are_worth_asking_again() {
        assert!(transient(None));
        assert!(transient(Some("Throttling")));
        assert!(!transient(Some("AccessDenied")));
        assert!(!transient(Some("RegionDisabledException")));
    }

    #[test]
    fn policy_documents_are_read_url_encoded_or_not() {
        let json = r#"{"Version":"2012-10-17","Statement":[]}"#;
        assert_eq!(policy_text(json), json);
        assert_eq!(
            policy_text("%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D"),
            json
        );
    }
}
