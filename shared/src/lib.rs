//! The Accounts service's shared library: domain model and lifecycle rules, the DynamoDB store,
//! Stax-shaped API types, access roles, configuration and AWS client setup.

pub mod string_enum;

pub mod api;
pub mod assurance;
pub mod auth;
pub mod aws;
pub mod compliance;
pub mod config;
pub mod domain;
pub mod filter;
pub mod fixtures;
pub mod lifecycle;
pub mod store;
pub mod workflows;

/// Logging for a function: the Lambda runtime's subscriber, which honours `AWS_LAMBDA_LOG_LEVEL`
/// and `AWS_LAMBDA_LOG_FORMAT` (JSON in the cloud).
pub fn init_tracing() {
    lambda_runtime::tracing::init_default_subscriber();
}
