//! Suspension: "no one can sign in or act in the account". The service's SCP
//! `accounts-suspended` ([`domain::policy::suspension_policy`]: every action denied to every
//! principal but the provisioning role) is attached to a suspended account and detached when it
//! is reactivated. The SCP is created the first time, with the service's tag, and kept to its
//! content; an SCP of that name the service did not create is not adopted
//! (`NotManagedByTheService`). Idempotent both ways. Answers a line for the task's Logs; the
//! workflow records the status after.

use std::future::Future;

use aws::OrganizationsError;
use aws_sdk_organizations::types::PolicyType;
use domain::config::{self, ConfigError};
use domain::policy::{SUSPENSION_POLICY, suspension_policy};
use domain::{ErrorName, Named};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Change {
    Suspend,
    Reactivate,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Request {
    #[serde(rename = "Change")]
    pub change: Change,
    #[serde(rename = "AwsAccountId")]
    pub aws_account_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Done {
    #[serde(rename = "Log")]
    pub log: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SuspendError {
    #[error(
        "an SCP named {SUSPENSION_POLICY} ({0}) exists that the service did not create (it lacks \
         the tag accounts:managed-by=accounts); rename or delete it, or tag it to hand it to the service"
    )]
    NotManaged(String),
    #[error(transparent)]
    Organizations(#[from] OrganizationsError),
}

impl Named for SuspendError {
    fn name(&self) -> ErrorName {
        match self {
            SuspendError::NotManaged(_) => ErrorName::NotManagedByTheService,
            SuspendError::Organizations(e) => e.name(),
        }
    }
}

/// An SCP found by name.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundPolicy {
    pub id: String,
    /// It carries the service's tag.
    pub managed: bool,
    pub content: Option<Value>,
}

/// What suspending asks of AWS Organizations.
pub trait Policies: Send + Sync {
    fn find(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<FoundPolicy>, SuspendError>> + Send;
    /// Creates the SCP with the service's tag: its id, or `None` when one of that name exists
    /// already (`DuplicatePolicyException`: created meanwhile).
    fn create(
        &self,
        name: &str,
        content: &Value,
    ) -> impl Future<Output = Result<Option<String>, SuspendError>> + Send;
    fn update(
        &self,
        id: &str,
        content: &Value,
    ) -> impl Future<Output = Result<(), SuspendError>> + Send;
    /// Is the SCP attached directly to the account?
    fn attached(
        &self,
        id: &str,
        aws_account_id: &str,
    ) -> impl Future<Output = Result<bool, SuspendError>> + Send;
    fn attach(
        &self,
        id: &str,
        aws_account_id: &str,
    ) -> impl Future<Output = Result<(), SuspendError>> + Send;
    fn detach(
        &self,
        id: &str,
        aws_account_id: &str,
    ) -> impl Future<Output = Result<(), SuspendError>> + Send;
}

pub struct Suspender<P> {
    pub policies: P,
    /// The provisioning role, which the suspension spares.
    pub role: String,
}

impl Suspender<aws_sdk_organizations::Client> {
    /// `PROVISIONING_ROLE_NAME`.
    pub fn from_env(sdk: &aws::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Suspender {
            policies: aws::organizations(sdk),
            role: config::required("PROVISIONING_ROLE_NAME")?,
        })
    }
}

pub async fn handle<P: Policies>(s: &Suspender<P>, request: Request) -> Result<Done, SuspendError> {
    let account = &request.aws_account_id;
    let content = suspension_policy(&s.role);
    let mut done = Vec::new();
    let id = match s.policies.find(SUSPENSION_POLICY).await? {
        Some(found) if !found.managed => return Err(SuspendError::NotManaged(found.id)),
        Some(found) => {
            if found.content.as_ref() != Some(&content) {
                s.policies.update(&found.id, &content).await?;
                done.push(format!("restored the {SUSPENSION_POLICY} SCP's content"));
            }
            found.id
        }
        None if request.change == Change::Reactivate => {
            // No suspension SCP exists, so none is attached: nothing to undo.
            return Ok(Done {
                log: format!("AWS account {account} carries no {SUSPENSION_POLICY} SCP"),
            });
        }
        None => match s.policies.create(SUSPENSION_POLICY, &content).await? {
            Some(id) => {
                done.push(format!("created the {SUSPENSION_POLICY} SCP"));
                id
            }
            // Another suspension created it at the same moment: that one is the service's too.
            None => match s.policies.find(SUSPENSION_POLICY).await? {
                Some(found) if found.managed => found.id,
                Some(found) => return Err(SuspendError::NotManaged(found.id)),
                None => {
                    return Err(OrganizationsError::new(format!(
                        "CreatePolicy said {SUSPENSION_POLICY} exists, but it is not listed"
                    ))
                    .into());
                }
            },
        },
    };
    let attached = s.policies.attached(&id, account).await?;
    match (request.change, attached) {
        (Change::Suspend, false) => {
            s.policies.attach(&id, account).await?;
            done.push(format!(
                "attached the {SUSPENSION_POLICY} SCP to AWS account {account}: no one but the service's role can act in it"
            ));
        }
        (Change::Reactivate, true) => {
            s.policies.detach(&id, account).await?;
            done.push(format!(
                "detached the {SUSPENSION_POLICY} SCP from AWS account {account}"
            ));
        }
        (Change::Suspend, true) => {
            done.push(format!(
                "AWS account {account} carries the {SUSPENSION_POLICY} SCP already"
            ));
        }
        (Change::Reactivate, false) => {
            done.push(format!(
                "AWS account {account} carries no {SUSPENSION_POLICY} SCP"
            ));
        }
    }
    let mut log = done.join("; ");
    if let Some(first) = log.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    Ok(Done { log })
}

impl Policies for aws_sdk_organizations::Client {
    async fn find(&self, name: &str) -> Result<Option<FoundPolicy>, SuspendError> {
        let pages = self
            .list_policies()
            .filter(PolicyType::ServiceControlPolicy)
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(OrganizationsError::from)?;
        let Some(id) = pages
            .iter()
            .flat_map(|p| p.policies())
            .find(|p| p.name() == Some(name))
            .and_then(|p| p.id().map(str::to_owned))
        else {
            return Ok(None);
        };
        let tags = self
            .list_tags_for_resource()
            .resource_id(&id)
            .send()
            .await
            .map_err(OrganizationsError::from)?;
        let managed = aws::organizations::is_managed(tags.tags());
        // Only the service's own SCP is read: IAM lets the function describe nothing else.
        let content = if managed {
            let described = self
                .describe_policy()
                .policy_id(&id)
                .send()
                .await
                .map_err(OrganizationsError::from)?;
            described
                .policy
                .and_then(|p| p.content)
                .and_then(|c| serde_json::from_str(&c).ok())
        } else {
            None
        };
        Ok(Some(FoundPolicy {
            id,
            managed,
            content,
        }))
    }

    async fn create(&self, name: &str, content: &Value) -> Result<Option<String>, SuspendError> {
        let created = match self
            .create_policy()
            .name(name)
            .description("Suspends an account: every action denied but the Accounts service's provisioning role")
            .r#type(PolicyType::ServiceControlPolicy)
            .content(content.to_string())
            .tags(aws::organizations::managed_tag())
            .send()
            .await
        {
            Ok(created) => created,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_duplicate_policy_exception()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(OrganizationsError::from(e).into()),
        };
        created
            .policy
            .and_then(|p| p.policy_summary)
            .and_then(|s| s.id)
            .map(Some)
            .ok_or_else(|| OrganizationsError::new("CreatePolicy answered no policy id").into())
    }

    async fn update(&self, id: &str, content: &Value) -> Result<(), SuspendError> {
        self.update_policy()
            .policy_id(id)
            .content(content.to_string())
            .send()
            .await
            .map_err(OrganizationsError::from)?;
        Ok(())
    }

    async fn attached(&self, id: &str, aws_account_id: &str) -> Result<bool, SuspendError> {
        Ok(aws::organizations::scps_on(self, aws_account_id)
            .await?
            .iter()
            .any(|p| p.id() == Some(id)))
    }

    async fn attach(&self, id: &str, aws_account_id: &str) -> Result<(), SuspendError> {
        // Attached meanwhile (a retried step) is what was wanted.
        Ok(aws::organizations::attach_scp(self, id, aws_account_id).await?)
    }

    async fn detach(&self, id: &str, aws_account_id: &str) -> Result<(), SuspendError> {
        Ok(aws::organizations::detach_scp(self, id, aws_account_id).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Org {
        policy: Mutex<Option<FoundPolicy>>,
        attached_to: Mutex<BTreeSet<String>>,
        writes: Mutex<u32>,
        /// The next create finds the policy created meanwhile.
        raced: Mutex<bool>,
    }

    impl Policies for Org {
        async fn find(&self, _: &str) -> Result<Option<FoundPolicy>, SuspendError> {
            Ok(self.policy.lock().unwrap().clone())
        }
        async fn create(&self, _: &str, content: &Value) -> Result<Option<String>, SuspendError> {
            if *self.raced.lock().unwrap() {
                // Another suspension's create landed first.
                *self.policy.lock().unwrap() = Some(FoundPolicy {
                    id: "p-theirs-too".into(),
                    managed: true,
                    content: Some(content.clone()),
                });
                return Ok(None);
            }
            *self.writes.lock().unwrap() += 1;
            *self.policy.lock().unwrap() = Some(FoundPolicy {
                id: "p-suspended".into(),
                managed: true,
                content: Some(content.clone()),
            });
            Ok(Some("p-suspended".into()))
        }
        async fn update(&self, _: &str, content: &Value) -> Result<(), SuspendError> {
            *self.writes.lock().unwrap() += 1;
            self.policy.lock().unwrap().as_mut().unwrap().content = Some(content.clone());
            Ok(())
        }
        async fn attached(&self, _: &str, account: &str) -> Result<bool, SuspendError> {
            Ok(self.attached_to.lock().unwrap().contains(account))
        }
        async fn attach(&self, _: &str, account: &str) -> Result<(), SuspendError> {
            *self.writes.lock().unwrap() += 1;
            self.attached_to.lock().unwrap().insert(account.into());
            Ok(())
        }
        async fn detach(&self, _: &str, account: &str) -> Result<(), SuspendError> {
            *self.writes.lock().unwrap() += 1;
            self.attached_to.lock().unwrap().remove(account);
            Ok(())
        }
    }

    fn request(change: Change) -> Request {
        Request {
            change,
            aws_account_id: "444455556666".into(),
        }
    }

    fn suspender() -> Suspender<Org> {
        Suspender {
            policies: Org::default(),
            role: "stax-provisioning".into(),
        }
    }

    #[tokio::test]
    async fn suspending_attaches_the_scp_once_and_reactivating_detaches_it() {
        let s = suspender();
        let done = handle(&s, request(Change::Suspend)).await.unwrap();
        assert_eq!(
            done.log,
            "Created the accounts-suspended SCP; attached the accounts-suspended SCP to AWS account \
             444455556666: no one but the service's role can act in it"
        );
        assert!(
            s.policies
                .attached_to
                .lock()
                .unwrap()
                .contains("444455556666")
        );
        let writes = *s.policies.writes.lock().unwrap();
        handle(&s, request(Change::Suspend)).await.unwrap();
        assert_eq!(
            *s.policies.writes.lock().unwrap(),
            writes,
            "a repeat writes nothing"
        );
        let done = handle(&s, request(Change::Reactivate)).await.unwrap();
        assert!(done.log.starts_with("Detached"), "{}", done.log);
        assert!(s.policies.attached_to.lock().unwrap().is_empty());
        handle(&s, request(Change::Reactivate)).await.unwrap();
    }

    #[tokio::test]
    async fn two_first_suspensions_at_once_share_one_scp() {
        let s = suspender();
        *s.policies.raced.lock().unwrap() = true;
        handle(&s, request(Change::Suspend)).await.unwrap();
        assert_eq!(
            s.policies.policy.lock().unwrap().as_ref().unwrap().id,
            "p-theirs-too"
        );
        assert!(
            s.policies
                .attached_to
                .lock()
                .unwrap()
                .contains("444455556666")
        );
    }

    #[tokio::test]
    async fn an_scp_of_that_name_made_by_someone_else_is_not_adopted() {
        let s = suspender();
        *s.policies.policy.lock().unwrap() = Some(FoundPolicy {
            id: "p-theirs".into(),
            managed: false,
            content: None,
        });
        let e = handle(&s, request(Change::Suspend)).await.unwrap_err();
        assert_eq!(e.name(), ErrorName::NotManagedByTheService);
        assert_eq!(*s.policies.writes.lock().unwrap(), 0);
    }

    #[test]
    fn the_suspension_denies_everything_to_all_but_the_provisioning_role() {
        let policy = suspension_policy("stax-provisioning");
        let statement = &policy["Statement"][0];
        assert_eq!(
            (
                &statement["Effect"],
                &statement["Action"],
                &statement["Resource"]
            ),
            (&Value::from("Deny"), &Value::from("*"), &Value::from("*"))
        );
        assert_eq!(
            statement["Condition"]["ArnNotLike"]["aws:PrincipalArn"],
            "arn:aws:iam::*:role/stax-provisioning"
        );
    }
}
