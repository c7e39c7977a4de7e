//! Account Types and their unique names.

use domain::{AccountType, AccountTypeStatus};
use serde::{Deserialize, Serialize};
use serde_dynamo::aws_sdk_dynamodb_1::{from_item, to_item};
use uuid::Uuid;

use super::*;
use crate::{AccountTypes, STALE_ATTEMPTS, Versioned};

fn type_item(account_type: &AccountType, version: u64) -> Result<Item, StoreError> {
    to_item(AccountTypeItem {
        pk: account_type_pk(account_type.id),
        sk: ACCOUNT_TYPE_SK.into(),
        gsi1pk: ACCOUNT_TYPES_GSI1PK.into(),
        gsi1sk: account_type.id.to_string(),
        version,
        account_type: account_type.clone(),
    })
    .map_err(corrupt)
}

#[derive(Serialize, Deserialize)]
struct AccountTypeItem {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    #[serde(rename = "Version")]
    version: u64,
    #[serde(rename = "AccountType")]
    account_type: AccountType,
}

impl AccountTypes for DynamoStore {
    /// The account type called `name` (case-insensitively), created if there is none. Safe to
    /// call concurrently: exactly one type per name is ever recorded.
    async fn ensure_account_type(&self, name: &str) -> Result<AccountType, StoreError> {
        for attempt in 1..=STALE_ATTEMPTS {
            if let Some(unique) = self.get(account_type_name_pk(name), UNIQUE_SK).await? {
                let owner = from_item::<UniqueItem>(unique).map_err(corrupt)?.owner;
                if let Some(t) = self.get_account_type(owner).await? {
                    return Ok(t);
                }
            }
            let now = domain::timestamp::now();
            let account_type = AccountType {
                id: Uuid::new_v4(),
                name: name.to_owned(),
                status: AccountTypeStatus::Active,
                created_ts: now,
                modified_ts: now,
                ou: None,
            };
            let items = vec![
                put(&self.table, type_item(&account_type, 1)?, NOT_EXISTS).build()?,
                unique_put(&self.table, account_type_name_pk(name), account_type.id)?,
            ];
            match self.transact(items).await {
                Ok(()) => return Ok(account_type),
                // Someone else created it first: read theirs on the next round.
                Err(Refused::Conditions(_)) if attempt < STALE_ATTEMPTS => continue,
                Err(Refused::Conditions(_)) => {
                    return Err(StoreError::AccountTypeNameTaken(name.to_owned()));
                }
                Err(Refused::Other(e)) => return Err(e),
            }
        }
        unreachable!("the last attempt returns")
    }

    /// The account type called `name` (case-insensitively), if there is one.
    async fn get_account_type_by_name(
        &self,
        name: &str,
    ) -> Result<Option<AccountType>, StoreError> {
        let Some(unique) = self.get(account_type_name_pk(name), UNIQUE_SK).await? else {
            return Ok(None);
        };
        let owner = from_item::<UniqueItem>(unique).map_err(corrupt)?.owner;
        self.get_account_type(owner).await
    }

    async fn get_account_type(&self, id: Uuid) -> Result<Option<AccountType>, StoreError> {
        let Some(item) = self.get(account_type_pk(id), ACCOUNT_TYPE_SK).await? else {
            return Ok(None);
        };
        Ok(Some(
            from_item::<AccountTypeItem>(item)
                .map_err(corrupt)?
                .account_type,
        ))
    }

    async fn get_versioned_account_type(
        &self,
        id: Uuid,
    ) -> Result<Option<Versioned<AccountType>>, StoreError> {
        let Some(item) = self.get(account_type_pk(id), ACCOUNT_TYPE_SK).await? else {
            return Ok(None);
        };
        let item = from_item::<AccountTypeItem>(item).map_err(corrupt)?;
        Ok(Some(Versioned {
            value: item.account_type,
            version: item.version,
        }))
    }

    async fn create_account_type(&self, account_type: &AccountType) -> Result<(), StoreError> {
        let items = vec![
            put(&self.table, type_item(account_type, 1)?, NOT_EXISTS).build()?,
            unique_put(
                &self.table,
                account_type_name_pk(&account_type.name),
                account_type.id,
            )?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(Refused::Conditions(_)) => {
                Err(StoreError::AccountTypeNameTaken(account_type.name.clone()))
            }
            Err(Refused::Other(e)) => Err(e),
        }
    }

    async fn replace_account_type(
        &self,
        current: &Versioned<AccountType>,
        next: &AccountType,
    ) -> Result<Versioned<AccountType>, StoreError> {
        let id = current.value.id;
        if next.id != id {
            return Err(StoreError::StaleAccountType(id));
        }
        let live = |t: &AccountType| t.status == AccountTypeStatus::Active;
        let renamed = name_key(&current.value.name) != name_key(&next.name);
        let mut items = vec![
            put(
                &self.table,
                type_item(next, current.version + 1)?,
                "#v = :v",
            )
            .name("#v", "Version")
            .value(":v", AttributeValue::N(current.version.to_string()))
            .build()?,
        ];
        if live(&current.value) && (renamed || !live(next)) {
            items.push(unique_delete(
                &self.table,
                account_type_name_pk(&current.value.name),
                id,
            )?);
        }
        let takes_name = live(next) && (renamed || !live(&current.value));
        if takes_name {
            items.push(unique_put(
                &self.table,
                account_type_name_pk(&next.name),
                id,
            )?);
        }
        let name_at = items.len() - 1;
        match self.transact(items).await {
            Ok(()) => Ok(Versioned {
                value: next.clone(),
                version: current.version + 1,
            }),
            Err(Refused::Conditions(failed)) if failed.contains(&0) => {
                Err(StoreError::StaleAccountType(id))
            }
            Err(Refused::Conditions(failed)) if takes_name && failed.contains(&name_at) => {
                Err(StoreError::AccountTypeNameTaken(next.name.clone()))
            }
            Err(Refused::Conditions(_)) => Err(StoreError::StaleAccountType(id)),
            Err(Refused::Other(e)) => Err(e),
        }
    }

    async fn list_account_types(&self) -> Result<Vec<AccountType>, StoreError> {
        self.query_gsi1(ACCOUNT_TYPES_GSI1PK)
            .await?
            .into_iter()
            .map(|i| {
                from_item::<AccountTypeItem>(i)
                    .map(|t| t.account_type)
                    .map_err(corrupt)
            })
            .collect()
    }
}
