//! Accounts, their audit events and their unique names and AWS account ids.

use std::collections::{BTreeSet, HashSet};

use aws_sdk_dynamodb::types::AttributeValue;
use domain::{Account, AccountChange, AccountFilter, AuditEvent, Task, Trigger, name_key};
use serde::{Deserialize, Serialize};
use serde_dynamo::aws_sdk_dynamodb_1::{from_item, to_item};
use uuid::Uuid;

use super::tasks::task_item;
use super::*;
use crate::{AccountReads, AccountWrites, TaskWrite, Tasks, Versioned};

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

#[derive(Serialize, Deserialize)]
struct AuditItem {
    pk: String,
    sk: String,
    #[serde(rename = "Event")]
    event: AuditEvent,
}

/// The audit event a table item holds, when it holds one: what a DynamoDB Streams image of the
/// table carries for each new version of an account.
pub fn audit_event_of_item(item: serde_dynamo::Item) -> Option<AuditEvent> {
    let audit: AuditItem = serde_dynamo::from_item(item).ok()?;
    audit.sk.starts_with("AUDIT#").then_some(audit.event)
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

fn audit_item(event: &AuditEvent) -> Result<Item, StoreError> {
    to_item(AuditItem {
        pk: account_pk(event.account_id),
        sk: audit_sk(event.version),
        event: event.clone(),
    })
    .map_err(corrupt)
}

impl AccountReads for DynamoStore {
    async fn get_account(&self, id: Uuid) -> Result<Option<Versioned<Account>>, StoreError> {
        self.get(account_pk(id), ACCOUNT_SK)
            .await?
            .map(read_account)
            .transpose()
    }

    /// The account recorded for an AWS account id.
    async fn get_account_by_aws_id(
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
    async fn get_account_by_name(
        &self,
        name: &str,
    ) -> Result<Option<Versioned<Account>>, StoreError> {
        let Some(unique) = self.get(account_name_pk(name), UNIQUE_SK).await? else {
            return Ok(None);
        };
        let unique: UniqueItem = from_item(unique).map_err(corrupt)?;
        self.get_account(unique.owner).await
    }

    /// The accounts `filter` selects, in no particular order. Id-based filters are served by
    /// key lookups; the rest read the account index and filter in memory (the same predicate
    /// every store uses: [`AccountFilter::matches`]).
    async fn list_account_versions(
        &self,
        filter: &AccountFilter,
    ) -> Result<Vec<Versioned<Account>>, StoreError> {
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
            let account = read_account(item)?;
            if filter.matches(&account.value) {
                accounts.push(account);
            }
        }
        Ok(accounts)
    }

    /// The account's audit trail, oldest first.
    async fn audit_trail(&self, account: Uuid) -> Result<Vec<AuditEvent>, StoreError> {
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
}

impl AccountWrites for DynamoStore {
    /// Records a new account (built with [`Account::create`]) together with its unique name,
    /// its unique AWS account id, its first audit event and, when given, the task that works on
    /// it. Nothing is written if the name or AWS account id is taken.
    async fn create_account(
        &self,
        account: &Account,
        first_trigger: Trigger,
        task: Option<&Task>,
        actor: &str,
    ) -> Result<Versioned<Account>, StoreError> {
        let version = 1;
        let event = AuditEvent::of_change(None, account, version, actor, Some(first_trigger));
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
    async fn create_accounts(
        &self,
        accounts: &[Account],
        first_trigger: Trigger,
        actor: &str,
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let mut outcomes = Vec::with_capacity(accounts.len());
        for batch in accounts.chunks(25) {
            let mut items = Vec::with_capacity(batch.len() * 4);
            for account in batch {
                let event = AuditEvent::of_change(None, account, 1, actor, Some(first_trigger));
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

    /// One `TransactWriteItems`: the account item conditional on the version, status and
    /// compliance summary read, its audit event, the unique items a new AWS id or name needs,
    /// and the task write conditional on the task's version.
    async fn apply_with_task(
        &self,
        current: &Versioned<Account>,
        change: &AccountChange,
        task: Option<TaskWrite<'_>>,
        actor: &str,
    ) -> Result<(Versioned<Account>, Option<Versioned<Task>>), StoreError> {
        let now = domain::timestamp::now();
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
            let event = AuditEvent::of_change(Some(&current.value), next, version, actor, trigger);
            // Scoring writes the compliance summary without a new version (it is not a change
            // of the record): the put also expects the summary that was read, so a score written
            // meanwhile makes this write stale instead of being overwritten.
            let (compliance_condition, compliance_ts) = match &current.value.compliance {
                Some(c) => (
                    " AND #a.#c.#ct = :compliance",
                    Some(domain::timestamp::format(&c.evaluated_ts)),
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
                // The record changed since it was read: everything else was judged against an
                // old version (a racing identical request took the name this one wanted), so
                // the caller re-reads before anything more specific is said.
                let stale = next.is_some() && failed.contains(&0);
                Err(if stale {
                    StoreError::Stale {
                        account: current.value.id,
                        expected: current.version,
                    }
                } else if aws_index.is_some_and(|i| failed.contains(&i)) {
                    StoreError::AwsAccountIdTaken(account.value.aws_account_id.unwrap_or_default())
                } else if name_index.is_some_and(|i| failed.contains(&i)) {
                    StoreError::NameTaken(account.value.name)
                } else if task_index.is_some_and(|i| failed.contains(&i)) {
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
}

impl DynamoStore {
    async fn unique_owners(
        &self,
        pks: impl Iterator<Item = String>,
    ) -> Result<HashSet<Uuid>, StoreError> {
        // BatchGetItem refuses a request that names a key twice (`Foo,foo` is one name).
        let pks: BTreeSet<String> = pks.collect();
        let items = self
            .batch_get(pks.into_iter().map(|pk| key(pk, UNIQUE_SK)).collect())
            .await?;
        items
            .into_iter()
            .map(|i| from_item::<UniqueItem>(i).map(|u| u.owner).map_err(corrupt))
            .collect()
    }
}
