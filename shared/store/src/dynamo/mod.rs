//! The DynamoDB adapter: one table (declared in `template.yaml`).
//!
//! | item                 | pk                        | sk                 | gsi1pk / gsi1sk      |
//! |----------------------|---------------------------|--------------------|----------------------|
//! | account              | `ACCOUNT#{id}`            | `#ACCOUNT`         | `ACCOUNT` / id       |
//! | audit event          | `ACCOUNT#{id}`            | `AUDIT#{version}`  |                      |
//! | unique account name  | `ACCOUNTNAME#{lowercase}` | `#UNIQUE`          |                      |
//! | unique AWS account   | `AWSACCOUNT#{aws id}`     | `#UNIQUE`          |                      |
//! | task                 | `TASK#{id}`               | `#TASK`            |                      |
//! | account type         | `ACCOUNTTYPE#{id}`        | `#ACCOUNTTYPE`     | `ACCOUNTTYPE` / id   |
//! | unique type name     | `ACCOUNTTYPENAME#{lower}` | `#UNIQUE`          |                      |
//! | counted slots        | `SLOTS#{name}`            | `#SLOTS`           |                      |
//! | policy               | `POLICY#{id}`             | `#POLICY`          | `POLICY` / id        |
//!
//! Every change to an account is one `TransactWriteItems`: the account item, conditional on the
//! version (and status) the writer read, plus its audit event keyed by the new version, so a
//! change and its audit event exist together or not at all, and one version has one event.
//! Uniqueness of names and AWS account ids is enforced by conditional puts of the `#UNIQUE`
//! items in the same transaction, never by a read before the write.

mod account_types;
mod accounts;
pub use accounts::audit_event_of_item;
mod compliance;
mod foundation;
mod policies;
mod slots;
mod tasks;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem};
use serde::{Deserialize, Serialize};
use serde_dynamo::aws_sdk_dynamodb_1::to_item;
use uuid::Uuid;

use domain::name_key;

use crate::{StoreError, backoff};

fn unavailable<E>(e: E) -> StoreError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    StoreError::Unavailable(aws::error_message(&e))
}

fn corrupt(e: serde_dynamo::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

type Item = HashMap<String, AttributeValue>;

const GSI1: &str = "gsi1";
const ACCOUNT_SK: &str = "#ACCOUNT";
const TASK_SK: &str = "#TASK";
const ACCOUNT_TYPE_SK: &str = "#ACCOUNTTYPE";
const UNIQUE_SK: &str = "#UNIQUE";
const SLOTS_SK: &str = "#SLOTS";
const ACCOUNTS_GSI1PK: &str = "ACCOUNT";
const ACCOUNT_TYPES_GSI1PK: &str = "ACCOUNTTYPE";
/// How often a transaction that lost a race with another (`TransactionConflict`) is retried
/// before the store reports itself unavailable.
const TRANSACTION_CONFLICT_ATTEMPTS: u32 = 5;

fn account_pk(id: Uuid) -> String {
    format!("ACCOUNT#{id}")
}
fn audit_sk(version: u64) -> String {
    format!("AUDIT#{version:020}")
}
fn account_name_pk(name: &str) -> String {
    format!("ACCOUNTNAME#{}", name_key(name))
}
fn aws_account_pk(aws_account_id: &str) -> String {
    format!("AWSACCOUNT#{aws_account_id}")
}
fn task_pk(id: Uuid) -> String {
    format!("TASK#{id}")
}
fn account_type_pk(id: Uuid) -> String {
    format!("ACCOUNTTYPE#{id}")
}
fn account_type_name_pk(name: &str) -> String {
    format!("ACCOUNTTYPENAME#{}", name_key(name))
}

#[derive(Serialize, Deserialize)]
struct UniqueItem {
    pk: String,
    sk: String,
    /// The id of the item that owns the unique value.
    #[serde(rename = "Owner")]
    owner: Uuid,
}

fn key(pk: String, sk: &str) -> Item {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(pk)),
        ("sk".to_owned(), AttributeValue::S(sk.to_owned())),
    ])
}

/// A conditional put, as one element of a transaction.
fn put(table: &str, item: Item, condition: &str) -> PutBuilder {
    PutBuilder {
        builder: Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression(condition),
    }
}

struct PutBuilder {
    builder: aws_sdk_dynamodb::types::builders::PutBuilder,
}

impl PutBuilder {
    fn name(mut self, placeholder: &str, attribute: &str) -> Self {
        self.builder = self
            .builder
            .expression_attribute_names(placeholder, attribute);
        self
    }
    fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.builder = self.builder.expression_attribute_values(placeholder, value);
        self
    }
    fn build(self) -> Result<TransactWriteItem, StoreError> {
        let put = self
            .builder
            .build()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

const NOT_EXISTS: &str = "attribute_not_exists(pk)";

/// The delete of a `#UNIQUE` item its owner gives up (refused if someone else owns it).
fn unique_delete(table: &str, pk: String, owner: Uuid) -> Result<TransactWriteItem, StoreError> {
    let delete = aws_sdk_dynamodb::types::Delete::builder()
        .table_name(table)
        .set_key(Some(key(pk, UNIQUE_SK)))
        .condition_expression("#o = :owner")
        .expression_attribute_names("#o", "Owner")
        .expression_attribute_values(":owner", AttributeValue::S(owner.to_string()))
        .build()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

/// The conditional put of a `#UNIQUE` item: refused if the value is taken.
fn unique_put(table: &str, pk: String, owner: Uuid) -> Result<TransactWriteItem, StoreError> {
    let item = to_item(UniqueItem {
        pk,
        sk: UNIQUE_SK.into(),
        owner,
    })
    .map_err(corrupt)?;
    put(table, item, NOT_EXISTS).build()
}

/// How a transaction ended when it did not succeed.
enum Refused {
    /// The conditions of these elements (indexes into the transaction) did not hold.
    Conditions(Vec<usize>),
    Other(StoreError),
}

/// The DynamoDB-backed store. Cheap to clone: the SDK client is shared.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    /// The table `TABLE_NAME` names, through the function's SDK configuration.
    pub fn from_env(sdk: &aws::SdkConfig) -> Result<Self, domain::config::ConfigError> {
        Ok(DynamoStore::new(
            Client::new(sdk),
            domain::config::required("TABLE_NAME")?,
        ))
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), Refused> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(()),
                Err(SdkError::ServiceError(e)) => e.into_err(),
                Err(e) => return Err(Refused::Other(unavailable(e))),
            };
            let TransactWriteItemsError::TransactionCanceledException(cancelled) = &err else {
                return Err(Refused::Other(unavailable(err)));
            };
            let codes: Vec<&str> = cancelled
                .cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None"))
                .collect();
            let failed: Vec<usize> = codes
                .iter()
                .enumerate()
                .filter(|(_, c)| **c == "ConditionalCheckFailed")
                .map(|(i, _)| i)
                .collect();
            if !failed.is_empty() {
                return Err(Refused::Conditions(failed));
            }
            // Another transaction on the same items was in flight: DynamoDB asks us to retry.
            if codes.contains(&"TransactionConflict") && attempt < TRANSACTION_CONFLICT_ATTEMPTS {
                tokio::time::sleep(backoff(attempt)).await;
                continue;
            }
            return Err(Refused::Other(unavailable(err)));
        }
    }

    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.item)
    }

    /// Items by key, in no particular order; keys that do not exist are left out.
    async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                attempt += 1;
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(unavailable)?;
                if let Some(mut responses) = out.responses {
                    found.extend(responses.remove(&self.table).unwrap_or_default());
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
                if !pending.is_empty() {
                    tokio::time::sleep(backoff(attempt)).await;
                }
            }
        }
        Ok(found)
    }

    async fn query_gsi1(&self, gsi1pk: &str) -> Result<Vec<Item>, StoreError> {
        self.client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("gsi1pk = :p")
            .expression_attribute_values(":p", AttributeValue::S(gsi1pk.to_owned()))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(unavailable)
    }

    /// Every item in the table, for tests that prove a refused write changed nothing.
    #[cfg(any(test, feature = "test-util"))]
    pub async fn snapshot(&self) -> Result<Vec<Item>, StoreError> {
        let mut items = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(unavailable)?;
        items.sort_by_key(|i| {
            let s = |k: &str| {
                i.get(k)
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default()
            };
            (s("pk"), s("sk"))
        });
        Ok(items)
    }
}
