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
        create_policy::CreatePolicyError,
        delete_organizational_unit::DeleteOrganizationalUnitError,
        delete_policy::DeletePolicyError, detach_policy::DetachPolicyError,
        move_account::MoveAccountError, tag_resource::TagResourceError,
        untag_resource::UntagResourceError,
        update_organizational_unit::UpdateOrganizationalUnitError,
        update_policy::UpdatePolicyError,
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
        UpdateOrganizationalUnitError,
        DeleteOrganizationalUnitError,
        CreatePolicyError,
        AttachPolicyError,
        DetachPolicyError,
        UpdatePolicyError,
        DeletePolicyError,
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

/// Why one of the service's OUs could not be had.
#[derive(Debug, thiserror::Error)]
pub enum OuError {
    #[error(
        "an OU named {name} ({ou}) exists under the root that the service did not create (it \
         lacks the tag accounts:managed-by=accounts); rename it, or tag it to hand it to the service"
    )]
    NotManaged { name: String, ou: String },
    #[error(transparent)]
    Organizations(#[from] OrganizationsError),
}

impl Named for OuError {
    fn name(&self) -> ErrorName {
        match self {
            OuError::NotManaged { .. } => ErrorName::NotManagedByTheService,
            OuError::Organizations(e) => e.name(),
        }
    }
}

/// The organization's root.
pub async fn root_id(c: &aws_sdk_organizations::Client) -> Result<String, OrganizationsError> {
    let out = c.list_roots().send().await?;
    out.roots()
        .first()
        .and_then(|r| r.id().map(str::to_owned))
        .ok_or_else(|| OrganizationsError::new("the organization has no root"))
}

/// Does the resource (an OU, a policy) carry the service's tag?
pub async fn carries_managed_tag(
    c: &aws_sdk_organizations::Client,
    resource: &str,
) -> Result<bool, OrganizationsError> {
    let out = c
        .list_tags_for_resource()
        .resource_id(resource)
        .send()
        .await?;
    Ok(is_managed(out.tags()))
}

/// The service's OU called `name` directly under `parent`, if there is one. One of that name
/// without the service's tag is another team's: `NotManaged`, never adopted (its policies are
/// theirs).
pub async fn find_managed_ou(
    c: &aws_sdk_organizations::Client,
    parent: &str,
    name: &str,
) -> Result<Option<String>, OuError> {
    let pages = c
        .list_organizational_units_for_parent()
        .parent_id(parent)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(OrganizationsError::from)?;
    let Some(id) = pages
        .iter()
        .flat_map(|p| p.organizational_units())
        .find(|ou| ou.name() == Some(name))
        .and_then(|ou| ou.id().map(str::to_owned))
    else {
        return Ok(None);
    };
    if !carries_managed_tag(c, &id).await? {
        return Err(OuError::NotManaged {
            name: name.to_owned(),
            ou: id,
        });
    }
    Ok(Some(id))
}

/// The service's OU called `name` directly under `parent`, created with the service's tag if
/// there is none. Safe to call concurrently: one OU per name.
pub async fn ensure_managed_ou(
    c: &aws_sdk_organizations::Client,
    parent: &str,
    name: &str,
) -> Result<String, OuError> {
    for _ in 0..2 {
        if let Some(id) = find_managed_ou(c, parent, name).await? {
            return Ok(id);
        }
        match c
            .create_organizational_unit()
            .parent_id(parent)
            .name(name)
            .tags(managed_tag())
            .send()
            .await
        {
            Ok(out) => {
                return out.organizational_unit.and_then(|ou| ou.id).ok_or_else(|| {
                    OrganizationsError::new("CreateOrganizationalUnit returned no id").into()
                });
            }
            // Another caller created it between our list and our create: list again.
            Err(e) if e.code() == Some("DuplicateOrganizationalUnitException") => continue,
            Err(e) => return Err(OrganizationsError::from(e).into()),
        }
    }
    Err(OrganizationsError::new(format!(
        "OU {name} under {parent} could be neither found nor created"
    ))
    .into())
}

/// Attaches SCP `policy` to `target`; one already attached there is attached (a retried step).
pub async fn attach_scp(
    c: &aws_sdk_organizations::Client,
    policy: &str,
    target: &str,
) -> Result<(), OrganizationsError> {
    match c
        .attach_policy()
        .policy_id(policy)
        .target_id(target)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("DuplicatePolicyAttachmentException") => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Detaches SCP `policy` from `target`; one not attached there, or a target that is gone (an
/// account that left the organization, a deleted OU), is detached.
pub async fn detach_scp(
    c: &aws_sdk_organizations::Client,
    policy: &str,
    target: &str,
) -> Result<(), OrganizationsError> {
    match c
        .detach_policy()
        .policy_id(policy)
        .target_id(target)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.code(),
                Some(
                    "PolicyNotAttachedException"
                        | "TargetNotFoundException"
                        | "AccountNotFoundException"
                        | "OrganizationalUnitNotFoundException"
                )
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// The SCPs attached directly to `target` (an account, OU or root id), AWS's FullAWSAccess among
/// them.
pub async fn scps_on(
    c: &aws_sdk_organizations::Client,
    target: &str,
) -> Result<Vec<aws_sdk_organizations::types::PolicySummary>, OrganizationsError> {
    let pages = c
        .list_policies_for_target()
        .target_id(target)
        .filter(aws_sdk_organizations::types::PolicyType::ServiceControlPolicy)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await?;
    Ok(pages
        .into_iter()
        .flat_map(|p| p.policies.unwrap_or_default())
        .collect())
}

/// The service's own policy as a read-only record: its id derived from its AWS id, attached to
/// the root.
pub fn service_policy(
    scp: &aws_sdk_organizations::types::Policy,
    root: &str,
) -> Option<domain::policies::Policy> {
    let summary = scp.policy_summary()?;
    let aws_id = summary.id()?.to_owned();
    let arn = summary.arn().unwrap_or_default();
    let now = domain::timestamp::now();
    let id = domain::policy::policy_uuid(&aws_id);
    Some(domain::policies::Policy {
        id,
        name: summary.name().unwrap_or_default().to_owned(),
        description: summary.description().unwrap_or_default().to_owned(),
        content: scp.content().unwrap_or_default().to_owned(),
        status: domain::policies::PolicyStatus::Active,
        owner: domain::policies::PolicyOwner::Stax,
        organisation_id: domain::policies::organization_of_policy_arn(arn)
            .map(domain::organisation_id),
        aws_id: Some(aws_id.clone()),
        tags: Default::default(),
        attachments: vec![domain::policies::PolicyAttachment {
            id: domain::policy::attachment_uuid(&aws_id, root),
            target: domain::policies::AttachmentTarget::Root,
            aws_target_id: root.to_owned(),
            created_ts: now,
            task: None,
        }],
        created_ts: now,
        modified_ts: now,
        task: None,
    })
}

/// The SCPs on the root that carry the service's tag (the foundation policy), described.
pub async fn service_policies(
    c: &aws_sdk_organizations::Client,
) -> Result<Vec<domain::policies::Policy>, OrganizationsError> {
    let root = root_id(c).await?;
    let mut policies = Vec::new();
    for summary in scps_on(c, &root).await? {
        if summary.aws_managed() {
            continue;
        }
        let aws_id = summary.id().unwrap_or_default();
        if !carries_managed_tag(c, aws_id).await? {
            continue;
        }
        let described = c.describe_policy().policy_id(aws_id).send().await?;
        if let Some(p) = described
            .policy()
            .and_then(|scp| service_policy(scp, &root))
        {
            policies.push(p);
        }
    }
    Ok(policies)
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
