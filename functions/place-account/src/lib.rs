//! Puts an account where its Account Type says: one OU per type, directly under the root (the
//! OU carries the type's policies). Creates the OU the first time a type is used; moves the
//! account only if it is elsewhere; records the OU on the account. Safe to repeat.

use std::future::Future;

use aws_sdk_organizations::error::{ProvideErrorMetadata, SdkError};
use lambda_runtime::Diagnostic;
use serde::{Deserialize, Serialize};
use shared::config::{self, ConfigError};
use shared::domain::{Account, TaskStatus};
use shared::lifecycle::{AccountChange, AccountFacts};
use shared::store::{Store, StoreError, TaskUpdate};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Request {
    #[serde(rename = "AccountId")]
    pub account: Uuid,
    #[serde(rename = "TaskId")]
    pub task: Uuid,
    #[serde(rename = "Execution", default)]
    pub execution: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placed {
    #[serde(rename = "OrgsOuId")]
    pub ou: String,
    #[serde(rename = "Moved")]
    pub moved: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error("account {0} has no AWS account or no Account Type to place it by")]
    NotPlaceable(Uuid),
    #[error("AWS Organizations call failed: {0}")]
    Organizations(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<PlaceError> for Diagnostic {
    fn from(e: PlaceError) -> Self {
        let name = match &e {
            PlaceError::NotPlaceable(_) => "NotPlaceable",
            PlaceError::Organizations(_) => "OrganizationsCallFailed",
            PlaceError::Store(s) => s.name(),
        };
        Diagnostic {
            error_type: name.to_owned(),
            error_message: e.to_string(),
        }
    }
}

pub trait OrganizationTree: Send + Sync {
    fn root(&self) -> impl Future<Output = Result<String, PlaceError>> + Send;
    /// The OU called `name` directly under `parent`, created if there is none.
    fn ensure_ou(
        &self,
        parent: &str,
        name: &str,
    ) -> impl Future<Output = Result<String, PlaceError>> + Send;
    fn parent_of(
        &self,
        aws_account_id: &str,
    ) -> impl Future<Output = Result<String, PlaceError>> + Send;
    fn move_account(
        &self,
        aws_account_id: &str,
        from: &str,
        to: &str,
    ) -> impl Future<Output = Result<(), PlaceError>> + Send;
}

pub trait Records: Send + Sync {
    fn account(&self, id: Uuid)
    -> impl Future<Output = Result<Option<Account>, StoreError>> + Send;
    fn account_type_name(
        &self,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    fn record_ou(
        &self,
        account: Uuid,
        task: Uuid,
        ou: &str,
        log: &str,
        actor: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

pub struct Placer<O, R> {
    pub organizations: O,
    pub records: R,
}

impl Placer<aws_sdk_organizations::Client, Store> {
    /// `TABLE_NAME`.
    pub fn from_env(sdk: &shared::aws::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Placer {
            organizations: shared::aws::organizations(sdk),
            records: Store::new(
                aws_sdk_dynamodb::Client::new(sdk),
                config::required("TABLE_NAME")?,
            ),
        })
    }
}

pub async fn place<O: OrganizationTree, R: Records>(
    p: &Placer<O, R>,
    request: Request,
) -> Result<Placed, PlaceError> {
    let account = p
        .records
        .account(request.account)
        .await?
        .ok_or(StoreError::AccountNotFound(request.account))?;
    let (Some(aws_account_id), Some(type_id)) = (&account.aws_account_id, account.account_type)
    else {
        return Err(PlaceError::NotPlaceable(account.id));
    };
    let type_name = p
        .records
        .account_type_name(type_id)
        .await?
        .ok_or(PlaceError::NotPlaceable(account.id))?;
    let root = p.organizations.root().await?;
    let ou = p.organizations.ensure_ou(&root, &type_name).await?;
    let parent = p.organizations.parent_of(aws_account_id).await?;
    let moved = parent != ou;
    if moved {
        p.organizations
            .move_account(aws_account_id, &parent, &ou)
            .await?;
    }
    let log = if moved {
        format!("Moved AWS account {aws_account_id} to OU {ou} ({type_name})")
    } else {
        format!("AWS account {aws_account_id} is in OU {ou} ({type_name})")
    };
    let actor = request
        .execution
        .unwrap_or_else(|| "place-account".to_owned());
    p.records
        .record_ou(account.id, request.task, &ou, &log, &actor)
        .await?;
    Ok(Placed { ou, moved })
}

fn organizations_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    e: SdkError<E>,
) -> PlaceError {
    PlaceError::Organizations(shared::aws::error_message(&e))
}

impl OrganizationTree for aws_sdk_organizations::Client {
    async fn root(&self) -> Result<String, PlaceError> {
        let out = self
            .list_roots()
            .send()
            .await
            .map_err(organizations_error)?;
        out.roots()
            .first()
            .and_then(|r| r.id().map(str::to_owned))
            .ok_or_else(|| PlaceError::Organizations("the organization has no root".into()))
    }

    async fn ensure_ou(&self, parent: &str, name: &str) -> Result<String, PlaceError> {
        for _ in 0..2 {
            let pages = self
                .list_organizational_units_for_parent()
                .parent_id(parent)
                .into_paginator()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await
                .map_err(organizations_error)?;
            if let Some(ou) = pages
                .iter()
                .flat_map(|p| p.organizational_units())
                .find(|ou| ou.name() == Some(name))
            {
                return Ok(ou.id().unwrap_or_default().to_owned());
            }
            match self
                .create_organizational_unit()
                .parent_id(parent)
                .name(name)
                .send()
                .await
            {
                Ok(out) => {
                    let id = out.organizational_unit.and_then(|ou| ou.id);
                    return id.ok_or_else(|| {
                        PlaceError::Organizations("CreateOrganizationalUnit returned no id".into())
                    });
                }
                // Another workflow created it between our list and our create: list again.
                Err(e)
                    if e.as_service_error().and_then(|s| s.code())
                        == Some("DuplicateOrganizationalUnitException") =>
                {
                    continue;
                }
                Err(e) => return Err(organizations_error(e)),
            }
        }
        Err(PlaceError::Organizations(format!(
            "OU {name} under {parent} could be neither found nor created"
        )))
    }

    async fn parent_of(&self, aws_account_id: &str) -> Result<String, PlaceError> {
        let out = self
            .list_parents()
            .child_id(aws_account_id)
            .send()
            .await
            .map_err(organizations_error)?;
        out.parents()
            .first()
            .and_then(|p| p.id().map(str::to_owned))
            .ok_or_else(|| {
                PlaceError::Organizations(format!("AWS account {aws_account_id} has no parent"))
            })
    }

    async fn move_account(
        &self,
        aws_account_id: &str,
        from: &str,
        to: &str,
    ) -> Result<(), PlaceError> {
        match self
            .move_account()
            .account_id(aws_account_id)
            .source_parent_id(from)
            .destination_parent_id(to)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // A retried step whose move already happened.
            Err(e)
                if e.as_service_error().and_then(|s| s.code())
                    == Some("DuplicateAccountException") =>
            {
                Ok(())
            }
            Err(e) => Err(organizations_error(e)),
        }
    }
}

impl Records for Store {
    async fn account(&self, id: Uuid) -> Result<Option<Account>, StoreError> {
        Ok(self.get_account(id).await?.map(|v| v.value))
    }
    async fn account_type_name(&self, id: Uuid) -> Result<Option<String>, StoreError> {
        Ok(self.get_account_type(id).await?.map(|t| t.name))
    }
    async fn record_ou(
        &self,
        account: Uuid,
        task: Uuid,
        ou: &str,
        log: &str,
        actor: &str,
    ) -> Result<(), StoreError> {
        let change = AccountChange::facts(AccountFacts {
            orgs_ou_id: Some(ou.to_owned()),
            ..Default::default()
        });
        let update = TaskUpdate {
            id: task,
            status: TaskStatus::Running,
            log: Some(log),
        };
        self.update_with_task(account, &change, Some(update.into()), actor)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::AccountStatus;
    use std::collections::HashMap;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Tree {
        ous: Mutex<HashMap<String, String>>,
        parents: Mutex<HashMap<String, String>>,
        moves: Mutex<usize>,
    }

    impl OrganizationTree for Tree {
        async fn root(&self) -> Result<String, PlaceError> {
            Ok("r-root".into())
        }
        async fn ensure_ou(&self, _: &str, name: &str) -> Result<String, PlaceError> {
            let mut ous = self.ous.lock().unwrap();
            let n = ous.len();
            Ok(ous
                .entry(name.into())
                .or_insert_with(|| format!("ou-{n}"))
                .clone())
        }
        async fn parent_of(&self, id: &str) -> Result<String, PlaceError> {
            Ok(self
                .parents
                .lock()
                .unwrap()
                .get(id)
                .cloned()
                .unwrap_or_else(|| "r-root".into()))
        }
        async fn move_account(&self, id: &str, _: &str, to: &str) -> Result<(), PlaceError> {
            *self.moves.lock().unwrap() += 1;
            self.parents.lock().unwrap().insert(id.into(), to.into());
            Ok(())
        }
    }

    struct Recs {
        account: Account,
        ou: Mutex<Option<String>>,
    }

    impl Records for Recs {
        async fn account(&self, _: Uuid) -> Result<Option<Account>, StoreError> {
            Ok(Some(self.account.clone()))
        }
        async fn account_type_name(&self, _: Uuid) -> Result<Option<String>, StoreError> {
            Ok(Some("production".into()))
        }
        async fn record_ou(
            &self,
            _: Uuid,
            _: Uuid,
            ou: &str,
            _: &str,
            _: &str,
        ) -> Result<(), StoreError> {
            *self.ou.lock().unwrap() = Some(ou.into());
            Ok(())
        }
    }

    #[tokio::test]
    async fn moves_the_account_into_its_types_ou_once() {
        let mut account = shared::fixtures::account_in(
            AccountStatus::Initializing,
            "bakery",
            Some("444455556666"),
        );
        account.account_type = Some(Uuid::new_v4());
        let p = Placer {
            organizations: Tree::default(),
            records: Recs {
                account: account.clone(),
                ou: Mutex::new(None),
            },
        };
        let request = Request {
            account: account.id,
            task: Uuid::new_v4(),
            execution: None,
        };
        let first = place(&p, request.clone()).await.unwrap();
        assert_eq!(
            first,
            Placed {
                ou: "ou-0".into(),
                moved: true
            }
        );
        assert_eq!(p.records.ou.lock().unwrap().as_deref(), Some("ou-0"));
        let again = place(&p, request).await.unwrap();
        assert_eq!(
            again,
            Placed {
                ou: "ou-0".into(),
                moved: false
            }
        );
        assert_eq!(*p.organizations.moves.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn an_account_without_an_aws_account_cannot_be_placed() {
        let account = shared::fixtures::account_in(AccountStatus::Initializing, "bakery", None);
        let p = Placer {
            organizations: Tree::default(),
            records: Recs {
                account: account.clone(),
                ou: Mutex::new(None),
            },
        };
        let e = place(
            &p,
            Request {
                account: account.id,
                task: Uuid::new_v4(),
                execution: None,
            },
        )
        .await
        .unwrap_err();
        assert_eq!(Diagnostic::from(e).error_type, "NotPlaceable");
    }
}
