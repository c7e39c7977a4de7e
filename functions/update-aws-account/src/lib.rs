//! The parts of an account update that live in the management account: the account's name in
//! AWS (the Account Management API's `PutAccountName`) and its tags (Organizations tags on the
//! member account). Each action is idempotent: it reads what AWS holds and changes only what
//! differs. Answers a line for the task's Logs; account-workflow records the change after.
//!
//! Tags: the record's tags are the ones the service manages on the account. An update puts the
//! new set and removes the keys the record had that the new set drops; tags someone else put
//! on the account (keys the record never had) are left alone, and no request may put the
//! service's own tag (`domain::validate_tags` refuses the `accounts:` prefix).

use std::future::Future;

use aws::OrganizationsError;
use aws_sdk_account::error::ProvideErrorMetadata;
use domain::{ErrorName, Named, Tags};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "Action")]
pub enum Request {
    PutAccountName {
        #[serde(rename = "AwsAccountId")]
        aws_account_id: String,
        #[serde(rename = "AwsAccountName")]
        name: String,
    },
    PutTags {
        #[serde(rename = "AwsAccountId")]
        aws_account_id: String,
        #[serde(rename = "Tags")]
        tags: Tags,
        /// The record's tags before the update: the keys the service manages.
        #[serde(rename = "PreviousTags", default)]
        previous: Option<Tags>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Done {
    /// What was done, for the task's Logs.
    #[serde(rename = "Log")]
    pub log: String,
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("{0}")]
    AccountManagement(AccountManagementError),
    #[error(transparent)]
    Organizations(#[from] OrganizationsError),
}

impl Named for UpdateError {
    fn name(&self) -> ErrorName {
        match self {
            UpdateError::AccountManagement(e) if e.refused => {
                ErrorName::AccountManagementRequestRefused
            }
            UpdateError::AccountManagement(_) => ErrorName::AccountManagementCallFailed,
            UpdateError::Organizations(e) => e.name(),
        }
    }
}

/// An Account Management API call that failed after the SDK's retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountManagementError {
    /// AWS refused it for a reason retrying will not change (validation, access, no such
    /// account), as opposed to throttling or an outage.
    pub refused: bool,
    pub message: String,
}

impl std::fmt::Display for AccountManagementError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.refused {
            "refused the request"
        } else {
            "call failed"
        };
        write!(f, "the AWS Account Management API {what}: {}", self.message)
    }
}

impl<E> From<aws_sdk_account::error::SdkError<E>> for UpdateError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    fn from(e: aws_sdk_account::error::SdkError<E>) -> Self {
        let refused = matches!(
            e.code(),
            Some("ValidationException" | "AccessDeniedException" | "ResourceNotFoundException")
        );
        UpdateError::AccountManagement(AccountManagementError {
            refused,
            message: aws::error_message(&e),
        })
    }
}

/// What an update asks of AWS in the management account.
pub trait AwsAccounts: Send + Sync {
    fn account_name(
        &self,
        aws_account_id: &str,
    ) -> impl Future<Output = Result<String, UpdateError>> + Send;
    fn put_account_name(
        &self,
        aws_account_id: &str,
        name: &str,
    ) -> impl Future<Output = Result<(), UpdateError>> + Send;
    fn tags(&self, aws_account_id: &str) -> impl Future<Output = Result<Tags, UpdateError>> + Send;
    fn tag(
        &self,
        aws_account_id: &str,
        tags: &Tags,
    ) -> impl Future<Output = Result<(), UpdateError>> + Send;
    fn untag(
        &self,
        aws_account_id: &str,
        keys: &[String],
    ) -> impl Future<Output = Result<(), UpdateError>> + Send;
}

/// The tag changes that take an account holding `current` to `wanted`: the tags to put (new
/// keys and changed values) and the keys to remove (those the service managed, `previous`, that
/// `wanted` drops and the account still has). Pure.
pub fn tag_changes(current: &Tags, wanted: &Tags, previous: &Tags) -> (Tags, Vec<String>) {
    let put: Tags = wanted
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let remove = previous
        .keys()
        .filter(|k| !wanted.contains_key(*k) && current.contains_key(*k))
        .cloned()
        .collect();
    (put, remove)
}

pub struct Updater<A> {
    pub aws: A,
}

pub struct Clients {
    pub account: aws_sdk_account::Client,
    pub organizations: aws_sdk_organizations::Client,
}

impl Updater<Clients> {
    pub fn from_sdk(sdk: &aws::SdkConfig) -> Self {
        Updater {
            aws: Clients {
                account: aws_sdk_account::Client::new(sdk),
                organizations: aws::organizations(sdk),
            },
        }
    }
}

pub async fn handle<A: AwsAccounts>(u: &Updater<A>, request: Request) -> Result<Done, UpdateError> {
    match request {
        Request::PutAccountName {
            aws_account_id,
            name,
        } => {
            let current = u.aws.account_name(&aws_account_id).await?;
            if current == name {
                return Ok(Done {
                    log: format!("AWS account {aws_account_id} is named {name:?} already"),
                });
            }
            u.aws.put_account_name(&aws_account_id, &name).await?;
            Ok(Done {
                log: format!("Renamed AWS account {aws_account_id} from {current:?} to {name:?}"),
            })
        }
        Request::PutTags {
            aws_account_id,
            tags,
            previous,
        } => {
            let current = u.aws.tags(&aws_account_id).await?;
            let (put, remove) = tag_changes(&current, &tags, &previous.unwrap_or_default());
            if !put.is_empty() {
                u.aws.tag(&aws_account_id, &put).await?;
            }
            if !remove.is_empty() {
                u.aws.untag(&aws_account_id, &remove).await?;
            }
            let log = match (put.is_empty(), remove.is_empty()) {
                (true, true) => format!("AWS account {aws_account_id} has its tags already"),
                _ => format!(
                    "Tagged AWS account {aws_account_id}: put {}; removed {}",
                    list(put.keys()),
                    list(remove.iter())
                ),
            };
            Ok(Done { log })
        }
    }
}

fn list<'a>(keys: impl Iterator<Item = &'a String>) -> String {
    let keys: Vec<&str> = keys.map(String::as_str).collect();
    if keys.is_empty() {
        "none".to_owned()
    } else {
        keys.join(", ")
    }
}

impl AwsAccounts for Clients {
    async fn account_name(&self, aws_account_id: &str) -> Result<String, UpdateError> {
        let out = self
            .account
            .get_account_information()
            .account_id(aws_account_id)
            .send()
            .await?;
        Ok(out.account_name().unwrap_or_default().to_owned())
    }

    async fn put_account_name(&self, aws_account_id: &str, name: &str) -> Result<(), UpdateError> {
        self.account
            .put_account_name()
            .account_id(aws_account_id)
            .account_name(name)
            .send()
            .await?;
        Ok(())
    }

    async fn tags(&self, aws_account_id: &str) -> Result<Tags, UpdateError> {
        let pages = self
            .organizations
            .list_tags_for_resource()
            .resource_id(aws_account_id)
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(OrganizationsError::from)?;
        Ok(pages
            .iter()
            .flat_map(|p| p.tags())
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect())
    }

    async fn tag(&self, aws_account_id: &str, tags: &Tags) -> Result<(), UpdateError> {
        let tags = tags
            .iter()
            .map(|(k, v)| {
                aws_sdk_organizations::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .expect("key and value are set")
            })
            .collect();
        self.organizations
            .tag_resource()
            .resource_id(aws_account_id)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(OrganizationsError::from)?;
        Ok(())
    }

    async fn untag(&self, aws_account_id: &str, keys: &[String]) -> Result<(), UpdateError> {
        self.organizations
            .untag_resource()
            .resource_id(aws_account_id)
            .set_tag_keys(Some(keys.to_vec()))
            .send()
            .await
            .map_err(OrganizationsError::from)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn tags_the_service_never_managed_are_left_alone() {
        let current = tags(&[("Team", "bread"), ("CostCode", "1"), ("Owner", "finance")]);
        let previous = tags(&[("Team", "bread"), ("CostCode", "1")]);
        let wanted = tags(&[("Team", "cake"), ("Env", "prod")]);
        let (put, remove) = tag_changes(&current, &wanted, &previous);
        assert_eq!(put, tags(&[("Env", "prod"), ("Team", "cake")]));
        assert_eq!(remove, ["CostCode"], "Owner was never the service's");
        assert_eq!(
            tag_changes(&wanted, &wanted, &previous),
            (Tags::default(), Vec::new()),
            "a repeat changes nothing"
        );
    }

    /// One AWS account's name and tags, and every write made to them.
    #[derive(Default)]
    struct Account {
        name: Mutex<String>,
        tags: Mutex<Tags>,
        writes: Mutex<u32>,
    }

    impl AwsAccounts for Account {
        async fn account_name(&self, _: &str) -> Result<String, UpdateError> {
            Ok(self.name.lock().unwrap().clone())
        }
        async fn put_account_name(&self, _: &str, name: &str) -> Result<(), UpdateError> {
            *self.writes.lock().unwrap() += 1;
            *self.name.lock().unwrap() = name.to_owned();
            Ok(())
        }
        async fn tags(&self, _: &str) -> Result<Tags, UpdateError> {
            Ok(self.tags.lock().unwrap().clone())
        }
        async fn tag(&self, _: &str, tags: &Tags) -> Result<(), UpdateError> {
            *self.writes.lock().unwrap() += 1;
            self.tags.lock().unwrap().extend(tags.clone());
            Ok(())
        }
        async fn untag(&self, _: &str, keys: &[String]) -> Result<(), UpdateError> {
            *self.writes.lock().unwrap() += 1;
            let mut held = self.tags.lock().unwrap();
            for k in keys {
                held.remove(k);
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn each_action_changes_what_differs_once() {
        let u = Updater {
            aws: Account {
                name: Mutex::new("bakery".into()),
                tags: Mutex::new(tags(&[("Team", "bread"), ("Owner", "finance")])),
                ..Account::default()
            },
        };
        let rename = Request::PutAccountName {
            aws_account_id: "444455556666".into(),
            name: "Bakery 2".into(),
        };
        let done = handle(&u, rename.clone()).await.unwrap();
        assert_eq!(
            done.log,
            "Renamed AWS account 444455556666 from \"bakery\" to \"Bakery 2\""
        );
        let retag = Request::PutTags {
            aws_account_id: "444455556666".into(),
            tags: tags(&[("Env", "prod")]),
            previous: Some(tags(&[("Team", "bread")])),
        };
        let done = handle(&u, retag.clone()).await.unwrap();
        assert_eq!(
            done.log,
            "Tagged AWS account 444455556666: put Env; removed Team"
        );
        assert_eq!(
            *u.aws.tags.lock().unwrap(),
            tags(&[("Env", "prod"), ("Owner", "finance")])
        );
        let writes = *u.aws.writes.lock().unwrap();
        handle(&u, rename).await.unwrap();
        handle(&u, retag).await.unwrap();
        assert_eq!(
            *u.aws.writes.lock().unwrap(),
            writes,
            "repeats write nothing"
        );
    }

    #[test]
    fn refusals_are_not_retried_and_failures_are() {
        let refused = UpdateError::AccountManagement(AccountManagementError {
            refused: true,
            message: "ValidationException: bad name".into(),
        });
        assert_eq!(refused.name(), ErrorName::AccountManagementRequestRefused);
        let throttled = UpdateError::AccountManagement(AccountManagementError {
            refused: false,
            message: "TooManyRequestsException".into(),
        });
        assert_eq!(throttled.name(), ErrorName::AccountManagementCallFailed);
    }
}
