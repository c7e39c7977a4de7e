//! The Organizations client every function uses, and how its failures are reported.

use aws_runtime::retries::classifiers::AwsErrorCodeClassifier;
use aws_sdk_organizations::error::{ProvideErrorMetadata, SdkError};
use domain::{ErrorName, Named};

use crate::SdkConfig;

/// Organizations answers `ConcurrentModificationException` while another change to the
/// organization is in flight; like throttling, the cure is to wait and try again.
const ORGANIZATIONS_TRANSIENT: &[&str] = &["ConcurrentModificationException"];

/// An Organizations client whose writes retry `ConcurrentModificationException` with the same
/// backoff as throttling (the SDK's standard classifiers do not know that code).
pub fn organizations(sdk: &SdkConfig) -> aws_sdk_organizations::Client {
    use aws_sdk_organizations::operation::{
        attach_policy::AttachPolicyError, close_account::CloseAccountError,
        create_account::CreateAccountError,
        create_organizational_unit::CreateOrganizationalUnitError,
        create_policy::CreatePolicyError, detach_policy::DetachPolicyError,
        move_account::MoveAccountError, tag_resource::TagResourceError,
        untag_resource::UntagResourceError, update_policy::UpdatePolicyError,
    };
    macro_rules! retrying {
        ($builder:expr, $($error:ty),+) => {
            $builder$(.retry_classifier(
                AwsErrorCodeClassifier::<$error>::builder()
                    .transient_errors(ORGANIZATIONS_TRANSIENT)
                    .build(),
            ))+
        };
    }
    let builder = aws_sdk_organizations::config::Builder::from(sdk);
    let config = retrying!(
        builder,
        CreateAccountError,
        MoveAccountError,
        CreateOrganizationalUnitError,
        CreatePolicyError,
        AttachPolicyError,
        DetachPolicyError,
        UpdatePolicyError,
        TagResourceError,
        UntagResourceError,
        CloseAccountError
    )
    .build();
    aws_sdk_organizations::Client::from_conf(config)
}

/// The service's tag ([`domain::policy::MANAGED_TAG_KEY`]), for what it creates in
/// Organizations: its SCP and its OUs.
pub fn managed_tag() -> aws_sdk_organizations::types::Tag {
    aws_sdk_organizations::types::Tag::builder()
        .key(domain::policy::MANAGED_TAG_KEY)
        .value(domain::policy::MANAGED_TAG_VALUE)
        .build()
        .expect("key and value are set")
}

/// Do a resource's tags say the service created it?
pub fn is_managed(tags: &[aws_sdk_organizations::types::Tag]) -> bool {
    tags.iter().any(|t| {
        t.key() == domain::policy::MANAGED_TAG_KEY && t.value() == domain::policy::MANAGED_TAG_VALUE
    })
}

/// An AWS Organizations call that failed after the SDK's retries: refused for a reason retrying
/// will not change (`OrganizationsRequestRefused`), or failed in a way worth the state
/// machines' retries (`OrganizationsCallFailed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationsError {
    /// The error code AWS answered with, if it answered.
    pub code: Option<String>,
    pub message: String,
}

impl OrganizationsError {
    /// A failure the service noticed itself (an answer without what it must carry).
    pub fn new(message: impl Into<String>) -> Self {
        OrganizationsError {
            code: None,
            message: message.into(),
        }
    }

    /// AWS refused the request for a reason retrying will not change (a constraint, a limit,
    /// access, an organization without the feature), as opposed to throttling or an outage.
    pub fn is_refusal(&self) -> bool {
        self.code.as_deref().is_some_and(|code| {
            matches!(
                code,
                "ConstraintViolationException"
                    | "AccessDeniedException"
                    | "AWSOrganizationsNotInUseException"
                    | "InvalidInputException"
                    | "UnsupportedAPIEndpointException"
            )
        })
    }
}

impl<E> From<SdkError<E>> for OrganizationsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    fn from(e: SdkError<E>) -> Self {
        OrganizationsError {
            code: e.code().map(str::to_owned),
            message: crate::error_message(&e),
        }
    }
}

impl std::fmt::Display for OrganizationsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_refusal() {
            write!(f, "AWS Organizations refused the request: {}", self.message)
        } else {
            write!(f, "AWS Organizations call failed: {}", self.message)
        }
    }
}

impl std::error::Error for OrganizationsError {}

impl Named for OrganizationsError {
    fn name(&self) -> ErrorName {
        if self.is_refusal() {
            ErrorName::OrganizationsRequestRefused
        } else {
            ErrorName::OrganizationsCallFailed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_not_retried_and_a_failure_is() {
        let refused = OrganizationsError {
            code: Some("ConstraintViolationException".into()),
            message: "ConstraintViolationException: ACCOUNT_NUMBER_LIMIT_EXCEEDED".into(),
        };
        assert_eq!(refused.name(), ErrorName::OrganizationsRequestRefused);
        assert!(
            refused
                .to_string()
                .starts_with("AWS Organizations refused the request")
        );
        let throttled = OrganizationsError {
            code: Some("TooManyRequestsException".into()),
            message: "TooManyRequestsException: Rate exceeded".into(),
        };
        assert_eq!(throttled.name(), ErrorName::OrganizationsCallFailed);
        assert_eq!(
            OrganizationsError::new("no root").name(),
            ErrorName::OrganizationsCallFailed
        );
    }
}
