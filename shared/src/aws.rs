//! AWS SDK configuration shared by every function: region, credentials and endpoint from the
//! standard environment (`AWS_REGION`, `AWS_ENDPOINT_URL`, …), and a retry policy for control
//! planes that throttle at a few requests per second.

use std::time::Duration;

use aws_config::BehaviorVersion;
pub use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_runtime::retries::classifiers::AwsErrorCodeClassifier;

/// Attempts per call, first one included. Throttling and transient errors back off
/// exponentially with full jitter (the SDK's standard retry mode).
pub const MAX_ATTEMPTS: u32 = 8;
pub const MAX_BACKOFF: Duration = Duration::from_secs(20);

pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_max_backoff(MAX_BACKOFF),
        )
        .load()
        .await
}

/// Organizations answers `ConcurrentModificationException` while another change to the
/// organization is in flight; like throttling, the cure is to wait and try again.
const ORGANIZATIONS_TRANSIENT: &[&str] = &["ConcurrentModificationException"];

/// An Organizations client whose writes retry `ConcurrentModificationException` with the same
/// backoff as throttling (the SDK's standard classifiers do not know that code).
pub fn organizations(sdk: &SdkConfig) -> aws_sdk_organizations::Client {
    use aws_sdk_organizations::operation::{
        attach_policy::AttachPolicyError, create_account::CreateAccountError,
        create_organizational_unit::CreateOrganizationalUnitError,
        create_policy::CreatePolicyError, move_account::MoveAccountError,
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
        AttachPolicyError
    )
    .build();
    aws_sdk_organizations::Client::from_conf(config)
}
