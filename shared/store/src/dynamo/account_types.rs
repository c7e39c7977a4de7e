//! Account Types and their unique names.

use domain::{AccountType, AccountTypeStatus};
use serde::{Deserialize, Serialize};
use serde_dynamo::aws_sdk_dynamodb_1::{from_item, to_item};
use uuid::Uuid;

use super::*;
use crate::{AccountTypes, STALE_ATTEMPTS};

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
            };
            let items = vec![
                put(
                    &self.table,
                    to_item(AccountTypeItem {
                        pk: account_type_pk(account_type.id),
                        sk: ACCOUNT_TYPE_SK.into(),
                        gsi1pk: ACCOUNT_TYPES_GSI1PK.into(),
                        gsi1sk: account_type.id.to_string(),
                        version: 1,
                        account_type: account_type.clone(),
                    })
                    .map_err(corrupt)?,
                    NOT_EXISTS,
                )
                .build()?,
                put(
                    &self.table,
                    to_item(UniqueItem {
                        pk: account_type_name_pk(name),
                        sk: UNIQUE_SK.into(),
                        owner: account_type.id,
                    })
                    .map_err(corrupt)?,
                    NOT_EXISTS,
                )
                .build()?,
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
