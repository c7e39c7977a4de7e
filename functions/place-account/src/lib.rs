//! Puts an account where its Account Type says: one OU per type, directly under the root (the
//! OU carries the type's policies). Creates the OU the first time a type is used; moves the
//! account only if it is elsewhere. Answers the OU and a line for the task's Logs, which the
//! workflow's next step records (account-workflow is the state machines' one writer of the
//! record). Safe to repeat.
//!
//! An account is moved out of the root, out of one of the service's own OUs (they carry its
//! tag), or out of the OU the request names (`LeaveOrganisationalUnit`): an account another
//! team keeps in an OU of its own, under that OU's policies, is not moved without being asked.

use std::future::Future;

use aws::OrganizationsError;
use aws::organizations::OuError;
use aws_sdk_organizations::error::ProvideErrorMetadata;
use domain::config::ConfigError;
use domain::{ErrorName, Named};
use serde::{Deserialize, Serialize};
use store::{AccountReads, AccountTypes, DynamoStore, StoreError};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Request {
    #[serde(rename = "AccountId")]
    pub account: Uuid,
    /// The OU, not the service's, that the request agreed to move the account out of.
    #[serde(rename = "LeaveOrganisationalUnit", default)]
    pub leave: Option<String>,
    /// The Account Type to place the account by, when it is not the recorded one: an update
    /// moves the account first and records its new type after.
    #[serde(rename = "AccountType", default)]
    pub account_type: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placed {
    #[serde(rename = "OrgsOuId")]
    pub ou: String,
    #[serde(rename = "Moved")]
    pub moved: bool,
    /// What was done, for the task's Logs.
    #[serde(rename = "Log")]
    pub log: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error("account {0} has no AWS account or no Account Type to place it by")]
    NotPlaceable(Uuid),
    #[error(
        "AWS account {aws_account_id} is in OU {ou}, which the service does not manage; onboard it \
         with \"LeaveOrganisationalUnit\": \"{ou}\" to move it out (the OU's policies stop applying)"
    )]
    UnmanagedOu { aws_account_id: String, ou: String },
    #[error(transparent)]
    Ou(#[from] OuError),
    #[error(transparent)]
    Organizations(#[from] OrganizationsError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Named for PlaceError {
    fn name(&self) -> ErrorName {
        match self {
            PlaceError::NotPlaceable(_) => ErrorName::NotPlaceable,
            PlaceError::UnmanagedOu { .. } => ErrorName::UnmanagedOrganizationalUnit,
            PlaceError::Ou(e) => e.name(),
            PlaceError::Organizations(e) => e.name(),
            PlaceError::Store(e) => e.name(),
        }
    }
}

/// What placing asks of AWS Organizations.
pub trait Organizations: Send + Sync {
    fn root(&self) -> impl Future<Output = Result<String, PlaceError>> + Send;
    /// The OU called `name` directly under `parent`, created (with the service's tag) if there
    /// is none; one of that name without the tag is refused (`OuError::NotManaged`).
    fn ensure_ou(
        &self,
        parent: &str,
        name: &str,
    ) -> impl Future<Output = Result<String, PlaceError>> + Send;
    fn parent_of(
        &self,
        aws_account_id: &str,
    ) -> impl Future<Output = Result<String, PlaceError>> + Send;
    /// Does the OU carry the service's tag (the service created it)?
    fn is_managed(&self, ou: &str) -> impl Future<Output = Result<bool, PlaceError>> + Send;
    fn move_account(
        &self,
        aws_account_id: &str,
        from: &str,
        to: &str,
    ) -> impl Future<Output = Result<(), PlaceError>> + Send;
}

pub struct Placer<O, R> {
    pub organizations: O,
    pub records: R,
}

impl Placer<aws_sdk_organizations::Client, DynamoStore> {
    /// `TABLE_NAME`.
    pub fn from_env(sdk: &aws::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Placer {
            organizations: aws::organizations(sdk),
            records: DynamoStore::from_env(sdk)?,
        })
    }
}

pub async fn handle<O: Organizations, R: AccountReads + AccountTypes>(
    p: &Placer<O, R>,
    request: Request,
) -> Result<Placed, PlaceError> {
    let account = p
        .records
        .get_account(request.account)
        .await?
        .ok_or(StoreError::AccountNotFound(request.account))?
        .value;
    let type_id = request.account_type.or(account.account_type);
    let (Some(aws_account_id), Some(type_id)) = (&account.aws_account_id, type_id) else {
        return Err(PlaceError::NotPlaceable(account.id));
    };
    let account_type = p
        .records
        .get_account_type(type_id)
        .await?
        .ok_or(PlaceError::NotPlaceable(account.id))?;
    let type_name = account_type.name;
    let root = p.organizations.root().await?;
    let parent = p.organizations.parent_of(aws_account_id).await?;
    // Checked before anything is created: a refusal leaves Organizations as it was.
    let leaves_foreign_ou = parent != root
        && request.leave.as_deref() != Some(parent.as_str())
        && !p.organizations.is_managed(&parent).await?;
    if leaves_foreign_ou {
        return Err(PlaceError::UnmanagedOu {
            aws_account_id: aws_account_id.clone(),
            ou: parent,
        });
    }
    // A type made through the API knows its OU (it keeps it through renames); the built-in
    // ones find theirs by name, made the first time one of their accounts is placed.
    let ou = match account_type.ou {
        Some(ou) => ou,
        None => p.organizations.ensure_ou(&root, &type_name).await?,
    };
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
    Ok(Placed { ou, moved, log })
}

impl Organizations for aws_sdk_organizations::Client {
    async fn root(&self) -> Result<String, PlaceError> {
        Ok(aws::organizations::root_id(self).await?)
    }

    async fn ensure_ou(&self, parent: &str, name: &str) -> Result<String, PlaceError> {
        Ok(aws::organizations::ensure_managed_ou(self, parent, name).await?)
    }

    async fn parent_of(&self, aws_account_id: &str) -> Result<String, PlaceError> {
        let out = self
            .list_parents()
            .child_id(aws_account_id)
            .send()
            .await
            .map_err(OrganizationsError::from)?;
        out.parents()
            .first()
            .and_then(|p| p.id().map(str::to_owned))
            .ok_or_else(|| {
                OrganizationsError::new(format!("AWS account {aws_account_id} has no parent"))
                    .into()
            })
    }

    async fn is_managed(&self, ou: &str) -> Result<bool, PlaceError> {
        Ok(aws::organizations::carries_managed_tag(self, ou).await?)
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
            Err(e) => Err(OrganizationsError::from(e).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::AccountStatus;
    use std::collections::HashMap;
    use std::sync::Mutex;
    use store::MemoryStore;

    #[derive(Default)]
    struct Tree {
        ous: Mutex<HashMap<String, String>>,
        parents: Mutex<HashMap<String, String>>,
        moves: Mutex<usize>,
    }

    impl Organizations for Tree {
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
        async fn is_managed(&self, ou: &str) -> Result<bool, PlaceError> {
            Ok(self.ous.lock().unwrap().values().any(|id| id == ou))
        }
        async fn move_account(&self, id: &str, _: &str, to: &str) -> Result<(), PlaceError> {
            *self.moves.lock().unwrap() += 1;
            self.parents.lock().unwrap().insert(id.into(), to.into());
            Ok(())
        }
    }

    #[tokio::test]
    async fn moves_the_account_into_its_types_ou_once_and_writes_nothing() {
        let records = MemoryStore::new();
        let production = records.ensure_account_type("production").await.unwrap();
        let mut account = domain::fixtures::account_in(
            AccountStatus::Initializing,
            "bakery",
            Some("444455556666"),
        );
        account.account_type = Some(production.id);
        records.insert(account.clone());
        let before = records.snapshot();
        let p = Placer {
            organizations: Tree::default(),
            records,
        };
        let request = Request {
            account: account.id,
            leave: None,
            account_type: None,
        };
        let first = handle(&p, request.clone()).await.unwrap();
        assert_eq!(
            first,
            Placed {
                ou: "ou-0".into(),
                moved: true,
                log: "Moved AWS account 444455556666 to OU ou-0 (production)".into(),
            }
        );
        let again = handle(&p, request.clone()).await.unwrap();
        assert_eq!(
            (again.ou.as_str(), again.moved, again.log.as_str()),
            (
                "ou-0",
                false,
                "AWS account 444455556666 is in OU ou-0 (production)"
            )
        );
        assert_eq!(*p.organizations.moves.lock().unwrap(), 1);
        assert_eq!(
            p.records.snapshot(),
            before,
            "the workflow records the OU, not this step"
        );
        // An update places the account by the type it moves to, before recording it.
        let staging = p.records.ensure_account_type("staging").await.unwrap();
        let before = p.records.snapshot();
        let by_type = Request {
            account_type: Some(staging.id),
            ..request
        };
        let moved = handle(&p, by_type).await.unwrap();
        assert_eq!(
            (moved.ou.as_str(), moved.moved),
            ("ou-1", true),
            "{moved:?}"
        );
        assert_eq!(
            p.records.snapshot(),
            before,
            "the workflow records the OU, not this step"
        );
    }

    #[tokio::test]
    async fn an_account_without_an_aws_account_cannot_be_placed() {
        let records = MemoryStore::new();
        let account = domain::fixtures::account_in(AccountStatus::Initializing, "bakery", None);
        records.insert(account.clone());
        let p = Placer {
            organizations: Tree::default(),
            records,
        };
        let e = handle(
            &p,
            Request {
                account: account.id,
                leave: None,
                account_type: None,
            },
        )
        .await
        .unwrap_err();
        assert_eq!(e.name(), ErrorName::NotPlaceable);
    }

    #[tokio::test]
    async fn an_account_in_another_team_s_ou_moves_only_when_the_request_names_that_ou() {
        let records = MemoryStore::new();
        let production = records.ensure_account_type("production").await.unwrap();
        let staging = records.ensure_account_type("staging").await.unwrap();
        let mut account =
            domain::fixtures::account_in(AccountStatus::Onboarding, "bakery", Some("444455556666"));
        account.account_type = Some(production.id);
        records.insert(account.clone());
        let tree = Tree::default();
        tree.parents
            .lock()
            .unwrap()
            .insert("444455556666".into(), "ou-legacy".into());
        let p = Placer {
            organizations: tree,
            records,
        };
        let place = |leave: Option<&str>| Request {
            account: account.id,
            leave: leave.map(str::to_owned),
            account_type: None,
        };
        for leave in [None, Some("ou-other")] {
            let e = handle(&p, place(leave)).await.unwrap_err();
            assert_eq!(e.name(), ErrorName::UnmanagedOrganizationalUnit);
            assert!(
                e.to_string()
                    .contains("\"LeaveOrganisationalUnit\": \"ou-legacy\""),
                "{e}"
            );
        }
        assert_eq!(*p.organizations.moves.lock().unwrap(), 0, "nothing moved");

        let placed = handle(&p, place(Some("ou-legacy"))).await.unwrap();
        assert!(placed.moved);
        // From one of the service's own OUs (another type's), no confirmation is needed.
        let mut moved_on = p
            .records
            .get_account(account.id)
            .await
            .unwrap()
            .unwrap()
            .value;
        moved_on.account_type = Some(staging.id);
        p.records.insert(moved_on);
        assert!(handle(&p, place(None)).await.unwrap().moved);
        assert_eq!(*p.organizations.moves.lock().unwrap(), 2);
    }
}
