//! AWS SDK configuration shared by every function: region, credentials and endpoint from the
//! standard environment (`AWS_REGION`, `AWS_ENDPOINT_URL`, …), and a retry policy for control
//! planes that throttle at a few requests per second.

use std::time::Duration;

use aws_config::BehaviorVersion;
pub use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;

/// Attempts per call, first one included. Throttling and transient errors back off
/// exponentially with jitter (the SDK's standard retry mode).
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
