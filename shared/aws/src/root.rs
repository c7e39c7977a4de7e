//! IAM's centralized root access for member accounts: the management account opens a short,
//! task-scoped session as a member's root user (`sts:AssumeRoot`) — to audit the root user's
//! credentials, or to delete them. The task policy is AWS's and is the session's whole grant.

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use domain::assurance::RootCredentials;

use crate::SdkConfig;

/// Reads the root user's credentials.
pub const AUDIT_TASK: &str = "arn:aws:iam::aws:policy/root-task/IAMAuditRootUserCredentials";
/// Reads and deletes them.
pub const DELETE_TASK: &str = "arn:aws:iam::aws:policy/root-task/IAMDeleteRootUserCredentials";

/// Why a root session could not be opened, or its calls failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RootError {
    /// The organization has not turned on centralized root access (root credentials management
    /// and root sessions), or the account is not a member.
    #[error("no root session into AWS account {account}: {reason}")]
    NotCentrallyManaged { account: String, reason: String },
    #[error("{0}")]
    Aws(String),
}

/// SDK configuration acting as `account`'s root user for `task` (one of the task policies).
pub async fn root_session(
    sdk: &SdkConfig,
    account: &str,
    task: &str,
) -> Result<SdkConfig, RootError> {
    let out = aws_sdk_sts::Client::new(sdk)
        .assume_root()
        .target_principal(account)
        .task_policy_arn(
            aws_sdk_sts::types::PolicyDescriptorType::builder()
                .arn(task)
                .build(),
        )
        .duration_seconds(900)
        .send()
        .await
        .map_err(|e| {
            use aws_smithy_types::error::metadata::ProvideErrorMetadata;
            let reason = crate::error_message(&e);
            if crate::provisioning::transient(e.code()) {
                RootError::Aws(reason)
            } else {
                RootError::NotCentrallyManaged {
                    account: account.to_owned(),
                    reason,
                }
            }
        })?;
    let c = out
        .credentials
        .ok_or_else(|| RootError::Aws("AssumeRoot returned no credentials".into()))?;
    let credentials = Credentials::new(
        c.access_key_id,
        c.secret_access_key,
        Some(c.session_token),
        std::time::SystemTime::try_from(c.expiration).ok(),
        "accounts-assume-root",
    );
    Ok(sdk
        .to_builder()
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build())
}

/// The root user's credentials, read in a root session (no user name: the caller, root).
pub async fn audit(iam: &aws_sdk_iam::Client) -> Result<RootCredentials, RootError> {
    let failed = |e: String| RootError::Aws(e);
    let password = match iam.get_login_profile().send().await {
        Ok(_) => true,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            false
        }
        Err(e) => return Err(failed(crate::error_message(&e))),
    };
    let keys = iam
        .list_access_keys()
        .send()
        .await
        .map_err(|e| failed(crate::error_message(&e)))?;
    let certificates = iam
        .list_signing_certificates()
        .send()
        .await
        .map_err(|e| failed(crate::error_message(&e)))?;
    let devices = iam
        .list_mfa_devices()
        .send()
        .await
        .map_err(|e| failed(crate::error_message(&e)))?;
    Ok(RootCredentials {
        password,
        access_keys: keys
            .access_key_metadata()
            .iter()
            .filter_map(|k| k.access_key_id().map(str::to_owned))
            .collect(),
        signing_certificates: certificates
            .certificates()
            .iter()
            .map(|c| c.certificate_id().to_owned())
            .collect(),
        mfa_devices: devices
            .mfa_devices()
            .iter()
            .map(|d| d.serial_number().to_owned())
            .collect(),
    })
}

/// Deletes every root credential `found` lists, in a delete-task root session.
pub async fn delete(iam: &aws_sdk_iam::Client, found: &RootCredentials) -> Result<(), RootError> {
    let failed = |e: String| RootError::Aws(e);
    if found.password {
        iam.delete_login_profile()
            .send()
            .await
            .map_err(|e| failed(crate::error_message(&e)))?;
    }
    for key in &found.access_keys {
        iam.delete_access_key()
            .access_key_id(key)
            .send()
            .await
            .map_err(|e| failed(crate::error_message(&e)))?;
    }
    for certificate in &found.signing_certificates {
        iam.delete_signing_certificate()
            .certificate_id(certificate)
            .send()
            .await
            .map_err(|e| failed(crate::error_message(&e)))?;
    }
    for serial in &found.mfa_devices {
        iam.deactivate_mfa_device()
            .serial_number(serial)
            .send()
            .await
            .map_err(|e| failed(crate::error_message(&e)))?;
    }
    Ok(())
}
