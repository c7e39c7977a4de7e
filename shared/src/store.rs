//! The account store: one DynamoDB table (declared in `template.yaml`).
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
//!
//! Every change to an account is one `TransactWriteItems`: the account item, conditional on the
//! version (and status) the writer read, plus its audit event keyed by the new version, so a
//! change and its audit event exist together or not at all, and one version has one event.
//! Uniqueness of names and AWS account ids is enforced by conditional puts of the `#UNIQUE`
//! items in the same transaction, never by a read before the write.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_dynamo::aws_sdk_dynamodb_1::{from_item, to_item};
use uuid::Uuid;

use crate::compliance::{ComplianceSummary, RuleResult, RuleState};
use crate::domain::{
    Account, AccountStatus, AccountType, AccountTypeStatus, Task, TaskFinished, TaskStatus,
    name_key,
};
use crate::filter::AccountFilter;
use crate::lifecycle::{AccountChange, LifecycleError, LockChange, Trigger};

/// A stored value and the version it was read at (every write increments it).
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub value: T,
    pub version: u64,
}

/// One entry of an account's audit trail: what changed, when, by whom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    #[serde(rename = "AccountId")]
    pub account_id: Uuid,
    /// The account version this event produced.
    #[serde(rename = "Version")]
    pub version: u64,
    #[serde(rename = "At", with = "crate::domain::timestamp")]
    pub at: DateTime<Utc>,
    /// Who made the change (an IAM principal ARN or a workflow name).
    #[serde(rename = "Actor")]
    pub actor: String,
    #[serde(rename = "Trigger", default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    #[serde(rename = "From", default, skip_serializing_if = "Option::is_none")]
    pub from: Option<AccountStatus>,
    #[serde(rename = "To", default, skip_serializing_if = "Option::is_none")]
    pub to: Option<AccountStatus>,
    #[serde(rename = "Reason", default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The task that took the operation lock with this change.
    #[serde(
        rename = "LockAcquiredBy",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub lock_acquired_by: Option<Uuid>,
    /// The task that released the operation lock with this change.
    #[serde(
        rename = "LockReleasedBy",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub lock_released_by: Option<Uuid>,
}

/// A task's next status and the line it logs, written with an account change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskUpdate<'a> {
    pub id: Uuid,
    pub status: TaskStatus,
    pub log: Option<&'a str>,
}

/// What happens to a task in the same transaction as an account change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TaskWrite<'a> {
    /// A new task (refused if its id exists).
    Create(&'a Task),
    Update(TaskUpdate<'a>),
}

impl<'a> From<TaskUpdate<'a>> for TaskWrite<'a> {
    fn from(u: TaskUpdate<'a>) -> Self {
        TaskWrite::Update(u)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("an account named {0:?} already exists")]
    NameTaken(String),
    #[error("AWS account {0} is already recorded")]
    AwsAccountIdTaken(String),
    #[error("account {0} is already recorded")]
    AccountExists(Uuid),
    #[error("account {0} is not recorded")]
    AccountNotFound(Uuid),
    #[error("task {0} is not recorded")]
    TaskNotFound(Uuid),
    #[error("task {0} is already recorded")]
    TaskExists(Uuid),
    #[error(transparent)]
    TaskFinished(#[from] TaskFinished),
    #[error("task {0} changed while it was being updated")]
    StaleTask(Uuid),
    #[error("an account type named {0:?} already exists")]
    AccountTypeNameTaken(String),
    #[error("account {account} changed since version {expected} was read")]
    Stale { account: Uuid, expected: u64 },
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    #[error("the account store is unavailable: {0}")]
    Unavailable(String),
    #[error("a stored item could not be read: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Stable error name, matched by Step Functions `ErrorEquals` and mapped to HTTP statuses.
    pub fn name(&self) -> &'static str {
        match self {
            StoreError::NameTaken(_) => "NameTaken",
            StoreError::AwsAccountIdTaken(_) => "AwsAccountIdTaken",
            StoreError::AccountExists(_) => "AccountExists",
            StoreError::AccountNotFound(_) => "AccountNotFound",
            StoreError::TaskNotFound(_) => "TaskNotFound",
            StoreError::TaskExists(_) => "TaskExists",
            StoreError::TaskFinished(_) => "TaskFinished",
            StoreError::StaleTask(_) => "StaleRecord",
            StoreError::AccountTypeNameTaken(_) => "AccountTypeNameTaken",
            StoreError::Stale { .. } => "StaleRecord",
            StoreError::Lifecycle(e) => e.name(),
            StoreError::Unavailable(_) => "StoreUnavailable",
            StoreError::Corrupt(_) => "StoreCorrupt",
        }
    }
}

fn unavailable<E>(e: E) -> StoreError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    StoreError::Unavailable(crate::aws::error_message(&e))
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
/// How often a read-modify-write is repeated when another writer got in between.
const STALE_ATTEMPTS: u32 = 10;

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
struct AccountItem {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    #[serde(rename = "Version")]
    version: u64,
    #[serde(rename = "Account")]
    account: Account,
}

const COMPLIANCE_LATEST_SK: &str = "COMPLIANCE#LATEST";
const COMPLIANCE_HISTORY_SK: &str = "COMPLIANCE#HISTORY#";
/// How long score history is kept (the table's TTL attribute `ExpiresAt` removes older entries).
pub const COMPLIANCE_HISTORY_DAYS: i64 = 400;

#[derive(Serialize, Deserialize)]
struct ComplianceItem {
    pk: String,
    sk: String,
    #[serde(rename = "Summary")]
    summary: ComplianceSummary,
    #[serde(rename = "Results")]
    results: Vec<RuleResult>,
}

#[derive(Serialize, Deserialize)]
struct BatchItem {
    pk: String,
    sk: String,
    #[serde(rename = "Accounts")]
    accounts: Vec<Uuid>,
    #[serde(rename = "ExpiresAt")]
    expires_at: i64,
}

#[derive(Serialize, Deserialize)]
struct ComplianceHistoryItem {
    pk: String,
    sk: String,
    #[serde(rename = "Summary")]
    summary: ComplianceSummary,
    #[serde(rename = "Failed")]
    failed: Vec<String>,
    #[serde(rename = "ExpiresAt")]
    expires_at: i64,
}

#[derive(Serialize, Deserialize)]
struct AuditItem {
    pk: String,
    sk: String,
    #[serde(rename = "Event")]
    event: AuditEvent,
}

#[derive(Serialize, Deserialize)]
struct UniqueItem {
    pk: String,
    sk: String,
    /// The id of the item that owns the unique value.
    #[serde(rename = "Owner")]
    owner: Uuid,
}

/// Holders of a counted resource (e.g. CreateAccount requests in flight) and their lease ends.
#[derive(Serialize, Deserialize)]
struct SlotsItem {
    pk: String,
    sk: String,
    #[serde(rename = "Version")]
    version: u64,
    #[serde(rename = "Holders")]
    holders: BTreeMap<Uuid, i64>,
}

#[derive(Serialize, Deserialize)]
struct TaskItem {
    pk: String,
    sk: String,
    #[serde(rename = "Version")]
    version: u64,
    #[serde(rename = "Task")]
    task: Task,
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

fn account_item(account: &Account, version: u64) -> Result<Item, StoreError> {
    to_item(AccountItem {
        pk: account_pk(account.id),
        sk: ACCOUNT_SK.into(),
        gsi1pk: ACCOUNTS_GSI1PK.into(),
        gsi1sk: account.id.to_string(),
        version,
        account: account.clone(),
    })
    .map_err(corrupt)
}

fn read_account(item: Item) -> Result<Versioned<Account>, StoreError> {
    let it: AccountItem = from_item(item).map_err(corrupt)?;
    Ok(Versioned {
        value: it.account,
        version: it.version,
    })
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

fn audit_item(event: &AuditEvent) -> Result<Item, StoreError> {
    to_item(AuditItem {
        pk: account_pk(event.account_id),
        sk: audit_sk(event.version),
        event: event.clone(),
    })
    .map_err(corrupt)
}

fn audit_event(
    before: Option<&Account>,
    after: &Account,
    version: u64,
    actor: &str,
    trigger: Option<Trigger>,
) -> AuditEvent {
    let from = before.map(|b| b.status);
    let lock_before = before.and_then(|b| b.user_task_id);
    AuditEvent {
        account_id: after.id,
        version,
        at: after.modified_ts,
        actor: actor.to_owned(),
        trigger,
        from,
        to: (from != Some(after.status)).then_some(after.status),
        reason: after
            .status_reason
            .clone()
            .filter(|_| from != Some(after.status)),
        lock_acquired_by: after.user_task_id.filter(|t| lock_before != Some(*t)),
        lock_released_by: lock_before.filter(|t| after.user_task_id != Some(*t)),
    }
}

/// The DynamoDB-backed store. Cheap to clone: the SDK client is shared.
#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    table: String,
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Store {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
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

    // ---- accounts ------------------------------------------------------------------------

    /// Records a new account (built with [`Account::create`]) together with its unique name,
    /// its unique AWS account id, its first audit event and, when given, the task that works on
    /// it. Nothing is written if the name or AWS account id is taken.
    pub async fn create_account(
        &self,
        account: &Account,
        first_trigger: Trigger,
        task: Option<&Task>,
        actor: &str,
    ) -> Result<Versioned<Account>, StoreError> {
        let version = 1;
        let event = audit_event(None, account, version, actor, Some(first_trigger));
        let unique = |pk: String| unique_put(&self.table, pk, account.id);
        // Element order is the order refusals are reported in when several conditions fail:
        // the same record, then the same AWS account (its identity), then the same name.
        let mut items =
            vec![put(&self.table, account_item(account, version)?, NOT_EXISTS).build()?];
        let aws_index = match &account.aws_account_id {
            Some(aws_id) => {
                items.push(unique(aws_account_pk(aws_id))?);
                Some(items.len() - 1)
            }
            None => None,
        };
        items.push(unique(account_name_pk(&account.name))?);
        let name_index = items.len() - 1;
        items.push(put(&self.table, audit_item(&event)?, NOT_EXISTS).build()?);
        let task_index = match task {
            Some(task) => {
                items.push(put(&self.table, task_item(task, 1)?, NOT_EXISTS).build()?);
                Some(items.len() - 1)
            }
            None => None,
        };
        match self.transact(items).await {
            Ok(()) => Ok(Versioned {
                value: account.clone(),
                version,
            }),
            Err(Refused::Conditions(failed)) => Err(if failed.contains(&0) {
                StoreError::AccountExists(account.id)
            } else if aws_index.is_some_and(|i| failed.contains(&i)) {
                StoreError::AwsAccountIdTaken(account.aws_account_id.clone().unwrap_or_default())
            } else if failed.contains(&name_index) {
                StoreError::NameTaken(account.name.clone())
            } else if let (Some(i), Some(task)) = (task_index, task)
                && failed.contains(&i)
            {
                StoreError::TaskExists(task.id)
            } else {
                // Only the audit event's key can be left: it is the account's, so the same record.
                StoreError::AccountExists(account.id)
            }),
            Err(Refused::Other(e)) => Err(e),
        }
    }

    /// Records many new accounts (each built with [`Account::create`]) in as few transactions as
    /// DynamoDB allows: 25 accounts, 100 items, per transaction. A batch one of whose conditions
    /// fails (a name or AWS account taken meanwhile) is recorded one account at a time, so each
    /// account gets its own outcome, in the order given.
    pub async fn create_accounts(
        &self,
        accounts: &[Account],
        first_trigger: Trigger,
        actor: &str,
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let mut outcomes = Vec::with_capacity(accounts.len());
        for batch in accounts.chunks(25) {
            let mut items = Vec::with_capacity(batch.len() * 4);
            for account in batch {
                let event = audit_event(None, account, 1, actor, Some(first_trigger));
                items.push(put(&self.table, account_item(account, 1)?, NOT_EXISTS).build()?);
                if let Some(aws_id) = &account.aws_account_id {
                    items.push(unique_put(&self.table, aws_account_pk(aws_id), account.id)?);
                }
                items.push(unique_put(
                    &self.table,
                    account_name_pk(&account.name),
                    account.id,
                )?);
                items.push(put(&self.table, audit_item(&event)?, NOT_EXISTS).build()?);
            }
            match self.transact(items).await {
                Ok(()) => outcomes.extend(batch.iter().map(|_| Ok(()))),
                Err(Refused::Conditions(_)) => {
                    for account in batch {
                        outcomes.push(
                            self.create_account(account, first_trigger, None, actor)
                                .await
                                .map(drop),
                        );
                    }
                }
                Err(Refused::Other(e)) => return Err(e),
            }
        }
        Ok(outcomes)
    }

    pub async fn get_account(&self, id: Uuid) -> Result<Option<Versioned<Account>>, StoreError> {
        self.get(account_pk(id), ACCOUNT_SK)
            .await?
            .map(read_account)
            .transpose()
    }

    /// The account recorded for an AWS account id.
    pub async fn get_account_by_aws_id(
        &self,
        aws_account_id: &str,
    ) -> Result<Option<Versioned<Account>>, StoreError> {
        let Some(unique) = self.get(aws_account_pk(aws_account_id), UNIQUE_SK).await? else {
            return Ok(None);
        };
        let unique: UniqueItem = from_item(unique).map_err(corrupt)?;
        self.get_account(unique.owner).await
    }

    /// The account that holds `name` (compared case-insensitively, as names are unique).
    pub async fn get_account_by_name(
        &self,
        name: &str,
    ) -> Result<Option<Versioned<Account>>, StoreError> {
        let Some(unique) = self.get(account_name_pk(name), UNIQUE_SK).await? else {
            return Ok(None);
        };
        let unique: UniqueItem = from_item(unique).map_err(corrupt)?;
        self.get_account(unique.owner).await
    }

    /// Applies `change` to the account as the caller read it: the write happens only if the
    /// account is still at `current.version` in `current.value.status`. A lifecycle refusal or a
    /// stale read writes nothing. A change already in effect returns `current` unwritten.
    pub async fn apply(
        &self,
        current: &Versioned<Account>,
        change: &AccountChange,
        actor: &str,
    ) -> Result<Versioned<Account>, StoreError> {
        Ok(self.apply_with_task(current, change, None, actor).await?.0)
    }

    /// [`Store::apply`] together with a task write (a new task, or a task's move to a new status
    /// with a log line), in one transaction: a workflow step's account change and its task report
    /// land together.
    pub async fn apply_with_task(
        &self,
        current: &Versioned<Account>,
        change: &AccountChange,
        task: Option<TaskWrite<'_>>,
        actor: &str,
    ) -> Result<(Versioned<Account>, Option<Versioned<Task>>), StoreError> {
        let now = Utc::now();
        let next = current.value.apply(change, now)?;
        let creating_task = matches!(task, Some(TaskWrite::Create(_)));
        // (version read, task after) — the version read is 0 for a new task.
        let task = match task {
            Some(TaskWrite::Update(update)) => {
                let read = self
                    .get_task(update.id)
                    .await?
                    .ok_or(StoreError::TaskNotFound(update.id))?;
                let next = read.value.advance(update.status, update.log, now)?;
                Some((read, next))
            }
            Some(TaskWrite::Create(task)) => Some((
                Versioned {
                    value: task.clone(),
                    version: 0,
                },
                Some(task.clone()),
            )),
            None => None,
        };
        let mut items = Vec::new();
        let mut aws_index = None;
        let mut name_index = None;
        let version = current.version + 1;
        if let Some(next) = &next {
            let trigger = change.transition.as_ref().map(|t| t.trigger);
            let event = audit_event(Some(&current.value), next, version, actor, trigger);
            // Scoring writes the compliance summary without a new version (it is not a change
            // of the record): the put also expects the summary that was read, so a score written
            // meanwhile makes this write stale instead of being overwritten.
            let (compliance_condition, compliance_ts) = match &current.value.compliance {
                Some(c) => (
                    " AND #a.#c.#ct = :compliance",
                    Some(crate::domain::timestamp::format(&c.evaluated_ts)),
                ),
                None => (" AND attribute_not_exists(#a.#c)", None),
            };
            let mut write = put(
                &self.table,
                account_item(next, version)?,
                &format!("#v = :expected AND #a.#s = :status{compliance_condition}"),
            )
            .name("#v", "Version")
            .name("#a", "Account")
            .name("#s", "Status")
            .name("#c", "Compliance")
            .value(":expected", AttributeValue::N(current.version.to_string()))
            .value(
                ":status",
                AttributeValue::S(current.value.status.as_str().to_owned()),
            );
            if let Some(ts) = compliance_ts {
                write = write
                    .name("#ct", "EvaluatedTS")
                    .value(":compliance", AttributeValue::S(ts));
            }
            items.push(write.build()?);
            items.push(put(&self.table, audit_item(&event)?, NOT_EXISTS).build()?);
            if let (None, Some(aws_id)) = (&current.value.aws_account_id, &next.aws_account_id) {
                aws_index = Some(items.len());
                items.push(unique_put(&self.table, aws_account_pk(aws_id), next.id)?);
            }
            // A new name moves the account's unique-name item.
            if name_key(&next.name) != name_key(&current.value.name) {
                name_index = Some(items.len());
                items.push(unique_put(
                    &self.table,
                    account_name_pk(&next.name),
                    next.id,
                )?);
                items.push(unique_delete(
                    &self.table,
                    account_name_pk(&current.value.name),
                    next.id,
                )?);
            }
        }
        let mut task_index = None;
        if let Some((read, Some(next_task))) = &task {
            task_index = Some(items.len());
            let write = if read.version == 0 {
                put(&self.table, task_item(next_task, 1)?, NOT_EXISTS)
            } else {
                put(
                    &self.table,
                    task_item(next_task, read.version + 1)?,
                    "#v = :expected",
                )
                .name("#v", "Version")
                .value(":expected", AttributeValue::N(read.version.to_string()))
            };
            items.push(write.build()?);
        }
        let account = match &next {
            Some(next) => Versioned {
                value: next.clone(),
                version,
            },
            None => current.clone(),
        };
        let task = task.map(|(read, next)| match next {
            Some(next) => Versioned {
                value: next,
                version: read.version + 1,
            },
            None => read,
        });
        if items.is_empty() {
            return Ok((account, task));
        }
        match self.transact(items).await {
            Ok(()) => Ok((account, task)),
            Err(Refused::Conditions(failed)) => {
                Err(if aws_index.is_some_and(|i| failed.contains(&i)) {
                    StoreError::AwsAccountIdTaken(account.value.aws_account_id.unwrap_or_default())
                } else if name_index.is_some_and(|i| failed.contains(&i)) {
                    StoreError::NameTaken(account.value.name)
                } else if task_index.is_some_and(|i| failed.contains(&i)) && !failed.contains(&0) {
                    let id = task.map(|t| t.value.id).unwrap_or_default();
                    if creating_task {
                        StoreError::TaskExists(id)
                    } else {
                        StoreError::StaleTask(id)
                    }
                } else {
                    StoreError::Stale {
                        account: current.value.id,
                        expected: current.version,
                    }
                })
            }
            Err(Refused::Other(e)) => Err(e),
        }
    }

    /// Reads the account and applies `change` to its latest version, reading again when another
    /// writer got in between. The lifecycle rules are checked against each fresh read, so a
    /// change that has become invalid is refused rather than forced.
    pub async fn update(
        &self,
        id: Uuid,
        change: &AccountChange,
        actor: &str,
    ) -> Result<Versioned<Account>, StoreError> {
        Ok(self.update_with_task(id, change, None, actor).await?.0)
    }

    /// [`Store::update`] with a task update in the same transaction.
    pub async fn update_with_task(
        &self,
        id: Uuid,
        change: &AccountChange,
        task: Option<TaskWrite<'_>>,
        actor: &str,
    ) -> Result<(Versioned<Account>, Option<Versioned<Task>>), StoreError> {
        for attempt in 1..=STALE_ATTEMPTS {
            let current = self
                .get_account(id)
                .await?
                .ok_or(StoreError::AccountNotFound(id))?;
            match self.apply_with_task(&current, change, task, actor).await {
                Err(StoreError::Stale { .. } | StoreError::StaleTask(_))
                    if attempt < STALE_ATTEMPTS =>
                {
                    tokio::time::sleep(backoff(attempt)).await;
                }
                result => return result,
            }
        }
        unreachable!("the last attempt returns")
    }

    /// Starts an operation on the account: `change` (which takes the lock for `task`) applied to
    /// its latest version together with the new task, in one write. Re-reads on a concurrent
    /// change, so a second operation started at the same time sees the first one's lock.
    pub async fn start_operation(
        &self,
        account: Uuid,
        change: &AccountChange,
        task: &Task,
        actor: &str,
    ) -> Result<(), StoreError> {
        self.update_with_task(account, change, Some(TaskWrite::Create(task)), actor)
            .await
            .map(drop)
    }

    /// A workflow that could not be started for `task`: the account goes ERROR with `reason`,
    /// its lock is released and the task FAILED with the reason in its Logs, in one write.
    pub async fn abandon_task(
        &self,
        account: Uuid,
        task: Uuid,
        reason: &str,
        actor: &str,
    ) -> Result<(), StoreError> {
        use crate::lifecycle::Transition;
        let to_error = Transition::error(Trigger::FailWorkflow, reason);
        self.end_unstarted(account, task, to_error, reason, actor)
            .await
    }

    /// A repair of an ACTIVE account that could not be started for `task`: nothing was changed
    /// in the account, so it is ACTIVE again; its lock is released and the task FAILED with
    /// `reason`, in one write.
    pub async fn stand_down_task(
        &self,
        account: Uuid,
        task: Uuid,
        reason: &str,
        actor: &str,
    ) -> Result<(), StoreError> {
        use crate::lifecycle::Transition;
        let to_active = Transition::to(Trigger::CompleteWorkflow, AccountStatus::Active);
        self.end_unstarted(account, task, to_active, reason, actor)
            .await
    }

    /// The account takes `transition` and gives up `task`'s lock; the task is FAILED with
    /// `reason`.
    async fn end_unstarted(
        &self,
        account: Uuid,
        task: Uuid,
        transition: crate::lifecycle::Transition,
        reason: &str,
        actor: &str,
    ) -> Result<(), StoreError> {
        let change = AccountChange::transition(transition).with_lock(LockChange::Release(task));
        let update = TaskUpdate {
            id: task,
            status: TaskStatus::Failed,
            log: Some(reason),
        };
        self.update_with_task(account, &change, Some(update.into()), actor)
            .await
            .map(drop)
    }

    /// Takes the per-account operation lock for `task`, or fails with `OperationInProgress`.
    /// Idempotent for the task that holds it.
    pub async fn acquire_lock(
        &self,
        account: Uuid,
        task: Uuid,
        actor: &str,
    ) -> Result<Versioned<Account>, StoreError> {
        self.update(
            account,
            &AccountChange::lock(LockChange::Acquire(task)),
            actor,
        )
        .await
    }

    /// Releases the lock `task` holds. Idempotent: releasing a free lock changes nothing.
    pub async fn release_lock(
        &self,
        account: Uuid,
        task: Uuid,
        actor: &str,
    ) -> Result<Versioned<Account>, StoreError> {
        self.update(
            account,
            &AccountChange::lock(LockChange::Release(task)),
            actor,
        )
        .await
    }

    /// The accounts `filter` selects, in no particular order. Id-based filters are served by
    /// key lookups; the rest read the account index and filter in memory (the same predicate
    /// every store uses: [`AccountFilter::matches`]).
    pub async fn list_accounts(&self, filter: &AccountFilter) -> Result<Vec<Account>, StoreError> {
        let mut ids: Option<HashSet<Uuid>> =
            filter.ids.as_ref().map(|s| s.iter().copied().collect());
        if let Some(aws_ids) = &filter.aws_account_ids {
            let owners = self
                .unique_owners(aws_ids.iter().map(|a| aws_account_pk(a)))
                .await?;
            ids = Some(match ids {
                Some(ids) => ids.intersection(&owners).copied().collect(),
                None => owners,
            });
        }
        if let Some(names) = &filter.names {
            let owners = self
                .unique_owners(names.iter().map(|n| account_name_pk(n)))
                .await?;
            ids = Some(match ids {
                Some(ids) => ids.intersection(&owners).copied().collect(),
                None => owners,
            });
        }
        let items = match ids {
            Some(ids) => {
                self.batch_get(
                    ids.into_iter()
                        .map(|id| key(account_pk(id), ACCOUNT_SK))
                        .collect(),
                )
                .await?
            }
            None => self.query_gsi1(ACCOUNTS_GSI1PK).await?,
        };
        let mut accounts = Vec::with_capacity(items.len());
        for item in items {
            let account = read_account(item)?.value;
            if filter.matches(&account) {
                accounts.push(account);
            }
        }
        Ok(accounts)
    }

    async fn unique_owners(
        &self,
        pks: impl Iterator<Item = String>,
    ) -> Result<HashSet<Uuid>, StoreError> {
        let items = self
            .batch_get(pks.map(|pk| key(pk, UNIQUE_SK)).collect())
            .await?;
        items
            .into_iter()
            .map(|i| from_item::<UniqueItem>(i).map(|u| u.owner).map_err(corrupt))
            .collect()
    }

    // ---- compliance ----------------------------------------------------------------------

    /// Records one scoring of an account: the summary on the account record (without a new
    /// version: a score is not a change of the record), the per-rule results as the latest, and a
    /// history entry, in one transaction. `Ok(false)` when a result at least as new is already
    /// there (a retried scoring), which writes nothing; `AccountNotFound` for an unknown account.
    pub async fn record_compliance(
        &self,
        account: Uuid,
        summary: &ComplianceSummary,
        results: &[RuleResult],
    ) -> Result<bool, StoreError> {
        let at = crate::domain::timestamp::format(&summary.evaluated_ts);
        let summary_value =
            serde_dynamo::aws_sdk_dynamodb_1::to_attribute_value(summary).map_err(corrupt)?;
        let update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(account_pk(account), ACCOUNT_SK)))
            .update_expression("SET #a.#c = :summary")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(#a.#c) OR #a.#c.#t < :at)",
            )
            .expression_attribute_names("#a", "Account")
            .expression_attribute_names("#c", "Compliance")
            .expression_attribute_names("#t", "EvaluatedTS")
            .expression_attribute_values(":summary", summary_value)
            .expression_attribute_values(":at", AttributeValue::S(at.clone()))
            .build()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let latest = to_item(ComplianceItem {
            pk: account_pk(account),
            sk: COMPLIANCE_LATEST_SK.into(),
            summary: summary.clone(),
            results: results.to_vec(),
        })
        .map_err(corrupt)?;
        let history = to_item(ComplianceHistoryItem {
            pk: account_pk(account),
            sk: format!("{COMPLIANCE_HISTORY_SK}{at}"),
            summary: summary.clone(),
            failed: results
                .iter()
                .filter(|r| r.state == RuleState::Failed)
                .map(|r| r.rule_id.clone())
                .collect(),
            expires_at: (summary.evaluated_ts + chrono::Duration::days(COMPLIANCE_HISTORY_DAYS))
                .timestamp(),
        })
        .map_err(corrupt)?;
        let items = vec![
            TransactWriteItem::builder().update(update).build(),
            // The latest results replace the previous ones (the update above refuses older ones).
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(latest))
                        .build()
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                )
                .build(),
            put(&self.table, history, NOT_EXISTS).build()?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(Refused::Conditions(failed)) => {
                if failed.contains(&0) && self.get_account(account).await?.is_none() {
                    return Err(StoreError::AccountNotFound(account));
                }
                Ok(false)
            }
            Err(Refused::Other(e)) => Err(e),
        }
    }

    /// Splits a run's work into numbered batches of account ids, kept for a week, so that each
    /// step of a fan-out reads its own batch and the run's input stays small.
    pub async fn put_batches(&self, run: Uuid, batches: &[Vec<Uuid>]) -> Result<(), StoreError> {
        let expires_at = (Utc::now() + chrono::Duration::days(7)).timestamp();
        let mut requests = Vec::with_capacity(batches.len());
        for (index, accounts) in batches.iter().enumerate() {
            let item = to_item(BatchItem {
                pk: format!("RUN#{run}"),
                sk: format!("BATCH#{index:06}"),
                accounts: accounts.clone(),
                expires_at,
            })
            .map_err(corrupt)?;
            let put = aws_sdk_dynamodb::types::PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            requests.push(
                aws_sdk_dynamodb::types::WriteRequest::builder()
                    .put_request(put)
                    .build(),
            );
        }
        for chunk in requests.chunks(25) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                attempt += 1;
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(unavailable)?;
                pending = out
                    .unprocessed_items()
                    .and_then(|u| u.get(&self.table))
                    .cloned()
                    .unwrap_or_default();
                if !pending.is_empty() {
                    if attempt >= STALE_ATTEMPTS {
                        return Err(StoreError::Unavailable(
                            "DynamoDB left batch items unprocessed".into(),
                        ));
                    }
                    tokio::time::sleep(backoff(attempt)).await;
                }
            }
        }
        Ok(())
    }

    /// Batch `index` of run `run`, if there is one.
    pub async fn get_batch(
        &self,
        run: Uuid,
        index: usize,
    ) -> Result<Option<Vec<Uuid>>, StoreError> {
        let Some(item) = self
            .get(format!("RUN#{run}"), &format!("BATCH#{index:06}"))
            .await?
        else {
            return Ok(None);
        };
        let it: BatchItem = from_item(item).map_err(corrupt)?;
        Ok(Some(it.accounts))
    }

    /// The latest per-rule results of an account (None before its first scoring).
    pub async fn latest_compliance(
        &self,
        account: Uuid,
    ) -> Result<Option<(ComplianceSummary, Vec<RuleResult>)>, StoreError> {
        let Some(item) = self.get(account_pk(account), COMPLIANCE_LATEST_SK).await? else {
            return Ok(None);
        };
        let it: ComplianceItem = from_item(item).map_err(corrupt)?;
        Ok(Some((it.summary, it.results)))
    }

    /// An account's scores, newest first, at most `limit`, with the rules that failed each time.
    pub async fn compliance_history(
        &self,
        account: Uuid,
        limit: usize,
    ) -> Result<Vec<(ComplianceSummary, Vec<String>)>, StoreError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :history)")
            .expression_attribute_values(":pk", AttributeValue::S(account_pk(account)))
            .expression_attribute_values(
                ":history",
                AttributeValue::S(COMPLIANCE_HISTORY_SK.into()),
            )
            .scan_index_forward(false)
            .limit(limit.clamp(1, 1000) as i32)
            .into_paginator()
            .items()
            .send();
        let mut entries = Vec::new();
        while entries.len() < limit {
            let Some(item) = pages.next().await else {
                break;
            };
            let it: ComplianceHistoryItem =
                from_item(item.map_err(unavailable)?).map_err(corrupt)?;
            entries.push((it.summary, it.failed));
        }
        Ok(entries)
    }

    /// The account's audit trail, oldest first.
    pub async fn audit_trail(&self, account: Uuid) -> Result<Vec<AuditEvent>, StoreError> {
        let items = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :audit)")
            .expression_attribute_values(":pk", AttributeValue::S(account_pk(account)))
            .expression_attribute_values(":audit", AttributeValue::S("AUDIT#".into()))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(unavailable)?;
        items
            .into_iter()
            .map(|i| from_item::<AuditItem>(i).map(|a| a.event).map_err(corrupt))
            .collect()
    }

    // ---- tasks ---------------------------------------------------------------------------

    pub async fn create_task(&self, task: &Task) -> Result<(), StoreError> {
        let items = vec![put(&self.table, task_item(task, 1)?, NOT_EXISTS).build()?];
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(Refused::Conditions(_)) => Err(StoreError::TaskExists(task.id)),
            Err(Refused::Other(e)) => Err(e),
        }
    }

    pub async fn get_task(&self, id: Uuid) -> Result<Option<Versioned<Task>>, StoreError> {
        let Some(item) = self.get(task_pk(id), TASK_SK).await? else {
            return Ok(None);
        };
        let it: TaskItem = from_item(item).map_err(corrupt)?;
        Ok(Some(Versioned {
            value: it.task,
            version: it.version,
        }))
    }

    /// Moves a task to `status` and appends `log` to its Logs ([`Task::advance`]'s rules: a
    /// finished task stays finished; finishing it the same way again is a no-op).
    pub async fn update_task(
        &self,
        id: Uuid,
        status: TaskStatus,
        log: Option<&str>,
    ) -> Result<Versioned<Task>, StoreError> {
        for attempt in 1..=STALE_ATTEMPTS {
            let current = self
                .get_task(id)
                .await?
                .ok_or(StoreError::TaskNotFound(id))?;
            let Some(next) = current.value.advance(status, log, Utc::now())? else {
                return Ok(current);
            };
            let version = current.version + 1;
            let items = vec![
                put(&self.table, task_item(&next, version)?, "#v = :expected")
                    .name("#v", "Version")
                    .value(":expected", AttributeValue::N(current.version.to_string()))
                    .build()?,
            ];
            match self.transact(items).await {
                Ok(()) => {
                    return Ok(Versioned {
                        value: next,
                        version,
                    });
                }
                Err(Refused::Conditions(_)) if attempt < STALE_ATTEMPTS => {
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(Refused::Conditions(_)) => return Err(StoreError::StaleTask(id)),
                Err(Refused::Other(e)) => return Err(e),
            }
        }
        unreachable!("the last attempt returns")
    }

    // ---- slots ---------------------------------------------------------------------------

    /// Takes one of `capacity` slots named `name` for `holder` (a task), for at most `lease`.
    /// `Ok(false)` when all are taken: the caller waits and asks again. Idempotent per holder;
    /// leases of holders that never released (a workflow stopped by hand) lapse.
    pub async fn acquire_slot(
        &self,
        name: &str,
        capacity: usize,
        holder: Uuid,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        self.change_slots(name, |holders, now| {
            if holders.contains_key(&holder) {
                return None;
            }
            holders.retain(|_, expires| *expires > now);
            if holders.len() >= capacity {
                return Some(false);
            }
            holders.insert(holder, now + lease.as_secs() as i64);
            Some(true)
        })
        .await
        .map(|taken| taken.unwrap_or(true))
    }

    /// How many slots named `name` are held (leases that lapsed do not count).
    pub async fn slots_in_use(&self, name: &str) -> Result<usize, StoreError> {
        let Some(item) = self.get(format!("SLOTS#{name}"), SLOTS_SK).await? else {
            return Ok(0);
        };
        let now = Utc::now().timestamp();
        let slots: SlotsItem = from_item(item).map_err(corrupt)?;
        Ok(slots
            .holders
            .values()
            .filter(|expires| **expires > now)
            .count())
    }

    /// Gives the slot back. Idempotent.
    pub async fn release_slot(&self, name: &str, holder: Uuid) -> Result<(), StoreError> {
        self.change_slots(name, |holders, _| holders.remove(&holder).map(|_| true))
            .await
            .map(drop)
    }

    /// Read-modify-write of a slot item; `change` returns `None` when it changed nothing.
    async fn change_slots(
        &self,
        name: &str,
        change: impl Fn(&mut BTreeMap<Uuid, i64>, i64) -> Option<bool>,
    ) -> Result<Option<bool>, StoreError> {
        let pk = format!("SLOTS#{name}");
        for attempt in 1..=STALE_ATTEMPTS {
            let read: Option<SlotsItem> = match self.get(pk.clone(), SLOTS_SK).await? {
                Some(item) => Some(from_item(item).map_err(corrupt)?),
                None => None,
            };
            let version = read.as_ref().map_or(0, |r| r.version);
            let mut holders = read.map(|r| r.holders).unwrap_or_default();
            let before = holders.clone();
            let outcome = change(&mut holders, Utc::now().timestamp());
            if outcome.is_none() || holders == before {
                return Ok(outcome);
            }
            let item = to_item(SlotsItem {
                pk: pk.clone(),
                sk: SLOTS_SK.into(),
                version: version + 1,
                holders,
            })
            .map_err(corrupt)?;
            let write = if version == 0 {
                put(&self.table, item, NOT_EXISTS)
            } else {
                put(&self.table, item, "#v = :expected")
                    .name("#v", "Version")
                    .value(":expected", AttributeValue::N(version.to_string()))
            };
            match self.transact(vec![write.build()?]).await {
                Ok(()) => return Ok(outcome),
                Err(Refused::Conditions(_)) if attempt < STALE_ATTEMPTS => {
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(Refused::Conditions(_)) => {
                    return Err(StoreError::Unavailable(format!(
                        "slots {name}: too much contention"
                    )));
                }
                Err(Refused::Other(e)) => return Err(e),
            }
        }
        unreachable!("the last attempt returns")
    }

    // ---- account types -------------------------------------------------------------------

    /// The account type called `name` (case-insensitively), created if there is none. Safe to
    /// call concurrently: exactly one type per name is ever recorded.
    pub async fn ensure_account_type(&self, name: &str) -> Result<AccountType, StoreError> {
        for attempt in 1..=STALE_ATTEMPTS {
            if let Some(unique) = self.get(account_type_name_pk(name), UNIQUE_SK).await? {
                let owner = from_item::<UniqueItem>(unique).map_err(corrupt)?.owner;
                if let Some(t) = self.get_account_type(owner).await? {
                    return Ok(t);
                }
            }
            let now = Utc::now();
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

    /// The account type a request names, by id or by name.
    pub async fn find_account_type(
        &self,
        reference: &crate::api::AccountTypeRef,
    ) -> Result<Option<AccountType>, StoreError> {
        match reference {
            crate::api::AccountTypeRef::Id(id) => self.get_account_type(*id).await,
            crate::api::AccountTypeRef::Name(name) => self.get_account_type_by_name(name).await,
        }
    }

    /// The account type called `name` (case-insensitively), if there is one.
    pub async fn get_account_type_by_name(
        &self,
        name: &str,
    ) -> Result<Option<AccountType>, StoreError> {
        let Some(unique) = self.get(account_type_name_pk(name), UNIQUE_SK).await? else {
            return Ok(None);
        };
        let owner = from_item::<UniqueItem>(unique).map_err(corrupt)?.owner;
        self.get_account_type(owner).await
    }

    pub async fn get_account_type(&self, id: Uuid) -> Result<Option<AccountType>, StoreError> {
        let Some(item) = self.get(account_type_pk(id), ACCOUNT_TYPE_SK).await? else {
            return Ok(None);
        };
        Ok(Some(
            from_item::<AccountTypeItem>(item)
                .map_err(corrupt)?
                .account_type,
        ))
    }

    pub async fn list_account_types(&self) -> Result<Vec<AccountType>, StoreError> {
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

    /// Every item in the table, for tests that prove a refused write changed nothing.
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

fn task_item(task: &Task, version: u64) -> Result<Item, StoreError> {
    to_item(TaskItem {
        pk: task_pk(task.id),
        sk: TASK_SK.into(),
        version,
        task: task.clone(),
    })
    .map_err(corrupt)
}

/// Exponential backoff with full jitter: a random wait in [0, 25 ms × 2^attempt), capped at 1 s.
fn backoff(attempt: u32) -> Duration {
    let cap_ms = (25u64 << attempt.min(6)).min(1000);
    // A v4 UUID is 122 random bits; it spares a dependency on a random-number crate.
    let random = Uuid::new_v4().as_u128() as u64;
    Duration::from_millis(random % cap_ms.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_keys_sort_by_version() {
        assert!(audit_sk(9) < audit_sk(10));
        assert!(audit_sk(99) < audit_sk(100));
    }

    #[test]
    fn names_are_unique_case_insensitively() {
        assert_eq!(account_name_pk("Bakery"), account_name_pk("bAKERY"));
    }

    #[test]
    fn backoff_stays_under_its_cap() {
        for attempt in 1..20 {
            assert!(backoff(attempt) < Duration::from_millis(1000));
        }
    }
}
