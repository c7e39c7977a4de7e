//! SDK configuration shared by every function: region, credentials and endpoint from the
//! standard environment (`AWS_REGION`, `AWS_ENDPOINT_URL`, …), and a retry policy for control
//! planes that throttle at a few requests per second.

use std::time::Duration;

use aws_config::BehaviorVersion;
pub use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
pub use aws_smithy_http_client::proxy::ProxyConfig;

/// Attempts per call, first one included. Throttling and transient errors back off
/// exponentially with full jitter (the SDK's standard retry mode).
pub const MAX_ATTEMPTS: u32 = 8;
pub const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// Lambda hands a function its role's credentials in environment variables, so those are the
/// credentials read: the default chain would also build the profile, SSO and instance-metadata
/// providers, whose HTTP clients load the system's root certificates during start-up.
pub async fn sdk_config() -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_max_backoff(MAX_BACKOFF),
        );
    let configured = ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|v| !v.is_empty()));
    if configured {
        loader = loader.http_client(http_client_with_proxy(ProxyConfig::from_env()));
    }
    loader.load().await
}

/// An HTTPS client that sends its requests through `proxy`. [`sdk_config`] uses it when
/// `HTTPS_PROXY` or `HTTP_PROXY` is set (and then honours `NO_PROXY`, as other AWS SDKs do), for
/// functions whose egress goes through a proxy; otherwise the SDK's default client is used
/// unchanged. It is the SDK's own connector, built as the default client builds it.
pub fn http_client_with_proxy(proxy: ProxyConfig) -> aws_sdk_sts::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    use aws_smithy_http_client::{Builder, Connector};
    Builder::new().build_with_connector_fn(move |settings, components| {
        let mut connector = Connector::builder().proxy_config(proxy.clone());
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector
            .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
            .build()
    })
}
