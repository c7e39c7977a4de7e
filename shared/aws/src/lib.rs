//! AWS for the Accounts service: how every function reaches AWS — SDK configuration with a
//! retry policy for control planes that throttle, the Organizations client, the service's state
//! machines, sessions in member accounts through their provisioning role — and how AWS's
//! failures read.

pub mod config;
pub mod organizations;
pub mod provisioning;
pub mod regions;
pub mod root;
pub mod session;
pub mod state_machine;

pub use config::{ProxyConfig, SdkConfig, http_client_with_proxy, sdk_config};
pub use organizations::{OrganizationsError, organizations};
pub use provisioning::{
    AssuranceError, InConcern, Provisioning, RoleCheckError, assume_role, policy_text,
};
pub use regions::{in_every_region, in_region};
pub use session::Session;
pub use state_machine::{Executions, StateMachine};

/// An AWS error as a person reads it: `Code: message` for an error the service answered with,
/// the whole chain (timeouts, connection failures, …) otherwise.
pub fn error_message<E>(e: &E) -> String
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    match (e.code(), e.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => aws_smithy_types::error::display::DisplayErrorContext(e).to_string(),
    }
}
