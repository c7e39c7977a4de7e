//! What managing policies asks of AWS Organizations, and its adapter. Every SCP the service
//! makes for a policy carries the service's tag and the record's id
//! ([`POLICY_ID_TAG_KEY`]); the template lets the function change no SCP without the first.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;

use aws::OrganizationsError;
use aws::organizations::OuError;
use aws_sdk_organizations::error::ProvideErrorMetadata;
use aws_sdk_organizations::types::{PolicyType, Tag};
use domain::policies::{ObservedScp, POLICY_ID_TAG_KEY, Policy};
use uuid::Uuid;

/// An SCP as created (or found, when a retry created it first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedScp {
    pub aws_id: String,
    pub arn: String,
}

pub trait PolicyOrgs: Send + Sync {
    /// Creates the SCP of `policy` (its name, description and content, tagged with the
    /// service's tag and the record's id). One of that name already carrying the record's id
    /// (an earlier attempt's) is returned instead; one of that name that does not is
    /// `DuplicatePolicyException`.
    fn create_scp(
        &self,
        policy: &Policy,
    ) -> impl Future<Output = Result<CreatedScp, OrganizationsError>> + Send;
    /// Puts the record's name, description and content on the SCP.
    fn update_scp(
        &self,
        aws_id: &str,
        policy: &Policy,
    ) -> impl Future<Output = Result<(), OrganizationsError>> + Send;
    /// Deletes the SCP; one already gone is deleted.
    fn delete_scp(
        &self,
        aws_id: &str,
    ) -> impl Future<Output = Result<(), OrganizationsError>> + Send;
    /// Attaches the SCP to `target`; already attached is attached.
    fn attach(
        &self,
        aws_id: &str,
        target: &str,
    ) -> impl Future<Output = Result<(), OrganizationsError>> + Send;
    /// Detaches the SCP from `target`; not attached is detached.
    fn detach(
        &self,
        aws_id: &str,
        target: &str,
    ) -> impl Future<Output = Result<(), OrganizationsError>> + Send;
    /// The SCPs attached directly to `target` (an account or OU id): their AWS ids.
    fn policies_on(
        &self,
        target: &str,
    ) -> impl Future<Output = Result<Vec<String>, OrganizationsError>> + Send;
    /// The service's OU called `name` under the root, made if there is none (a built-in type's,
    /// before its first account is placed).
    fn type_ou(&self, name: &str) -> impl Future<Output = Result<String, OuError>> + Send;
    /// Every SCP tagged with a policy id (the service's tag too), by that id.
    fn observe(
        &self,
    ) -> impl Future<Output = Result<HashMap<Uuid, ObservedScp>, OrganizationsError>> + Send;
    /// One SCP as Organizations holds it.
    fn observe_one(
        &self,
        aws_id: &str,
    ) -> impl Future<Output = Result<ObservedScp, OrganizationsError>> + Send;
    /// The service's own SCPs on the root (the foundation policy), as read-only policies.
    fn service_policies(
        &self,
    ) -> impl Future<Output = Result<Vec<Policy>, OrganizationsError>> + Send;
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder()
        .key(key)
        .value(value)
        .build()
        .expect("key and value are set")
}

impl PolicyOrgs for aws_sdk_organizations::Client {
    async fn create_scp(&self, policy: &Policy) -> Result<CreatedScp, OrganizationsError> {
        let created = self
            .create_policy()
            .name(&policy.name)
            .description(&policy.description)
            .content(&policy.content)
            .r#type(PolicyType::ServiceControlPolicy)
            .tags(aws::organizations::managed_tag())
            .tags(tag(POLICY_ID_TAG_KEY, &policy.id.to_string()))
            .send()
            .await;
        match created {
            Ok(out) => {
                let summary = out
                    .policy()
                    .and_then(|p| p.policy_summary())
                    .ok_or_else(|| OrganizationsError::new("CreatePolicy returned no policy"))?;
                Ok(CreatedScp {
                    aws_id: summary.id().unwrap_or_default().to_owned(),
                    arn: summary.arn().unwrap_or_default().to_owned(),
                })
            }
            // An earlier attempt for this record created it: that is the creation done.
            Err(e) if e.code() == Some("DuplicatePolicyException") => {
                let observed = self.observe().await?;
                match observed.get(&policy.id) {
                    Some(scp) if scp.name == policy.name => Ok(CreatedScp {
                        aws_id: scp.aws_id.clone(),
                        arn: scp.arn.clone(),
                    }),
                    _ => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn update_scp(&self, aws_id: &str, policy: &Policy) -> Result<(), OrganizationsError> {
        self.update_policy()
            .policy_id(aws_id)
            .name(&policy.name)
            .description(&policy.description)
            .content(&policy.content)
            .send()
            .await?;
        Ok(())
    }

    async fn delete_scp(&self, aws_id: &str) -> Result<(), OrganizationsError> {
        match self.delete_policy().policy_id(aws_id).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("PolicyNotFoundException") => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn attach(&self, aws_id: &str, target: &str) -> Result<(), OrganizationsError> {
        aws::organizations::attach_scp(self, aws_id, target).await
    }

    async fn detach(&self, aws_id: &str, target: &str) -> Result<(), OrganizationsError> {
        aws::organizations::detach_scp(self, aws_id, target).await
    }

    async fn policies_on(&self, target: &str) -> Result<Vec<String>, OrganizationsError> {
        Ok(aws::organizations::scps_on(self, target)
            .await?
            .into_iter()
            .filter_map(|p| p.id)
            .collect())
    }

    async fn type_ou(&self, name: &str) -> Result<String, OuError> {
        let root = aws::organizations::root_id(self).await?;
        aws::organizations::ensure_managed_ou(self, &root, name).await
    }

    async fn observe(&self) -> Result<HashMap<Uuid, ObservedScp>, OrganizationsError> {
        let pages = self
            .list_policies()
            .filter(PolicyType::ServiceControlPolicy)
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await?;
        let mut found = HashMap::new();
        for summary in pages.iter().flat_map(|p| p.policies()) {
            // AWS's own FullAWSAccess carries no tags to read.
            if summary.aws_managed() {
                continue;
            }
            let aws_id = summary.id().unwrap_or_default().to_owned();
            let tags = self
                .list_tags_for_resource()
                .resource_id(&aws_id)
                .send()
                .await?;
            if !aws::organizations::is_managed(tags.tags()) {
                continue;
            }
            let Some(id) = tags
                .tags()
                .iter()
                .find(|t| t.key() == POLICY_ID_TAG_KEY)
                .and_then(|t| Uuid::parse_str(t.value()).ok())
            else {
                continue;
            };
            found.insert(id, self.observe_one(&aws_id).await?);
        }
        Ok(found)
    }

    async fn observe_one(&self, aws_id: &str) -> Result<ObservedScp, OrganizationsError> {
        let described = self.describe_policy().policy_id(aws_id).send().await?;
        let policy = described
            .policy()
            .ok_or_else(|| OrganizationsError::new("DescribePolicy returned no policy"))?;
        let summary = policy.policy_summary();
        let targets = self
            .list_targets_for_policy()
            .policy_id(aws_id)
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await?;
        Ok(ObservedScp {
            aws_id: aws_id.to_owned(),
            arn: summary.and_then(|s| s.arn()).unwrap_or_default().to_owned(),
            name: summary
                .and_then(|s| s.name())
                .unwrap_or_default()
                .to_owned(),
            description: summary
                .and_then(|s| s.description())
                .unwrap_or_default()
                .to_owned(),
            content: policy.content().unwrap_or_default().to_owned(),
            targets: targets
                .iter()
                .flat_map(|p| p.targets())
                .filter_map(|t| t.target_id().map(str::to_owned))
                .collect::<BTreeSet<_>>(),
        })
    }

    async fn service_policies(&self) -> Result<Vec<Policy>, OrganizationsError> {
        aws::organizations::service_policies(self).await
    }
}
