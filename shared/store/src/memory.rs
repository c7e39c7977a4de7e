//! The store in memory, for unit tests: the same traits with the same rules as
//! [`DynamoStore`](crate::DynamoStore) — conditional writes on the version and status read,
//! one audit event per version, unique names and AWS account ids, finished tasks that stay
//! finished, slot leases, compliance results that never go back in time — each operation
//! atomic under one lock, as a DynamoDB transaction is.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use domain::compliance::{ComplianceSummary, RuleResult, RuleState};
use domain::{
    Account, AccountChange, AccountFilter, AccountType, AccountTypeStatus, AuditEvent, Task,
    TaskStatus, Trigger, name_key,
};
use uuid::Uuid;

use crate::{
    AccountReads, AccountTypes, AccountWrites, Compliance, FoundationCompleted, FoundationStatus,
    Policies, Slots, StoreError, TaskWrite, Tasks, Versioned,
};
use domain::policies::Policy;

/// Everything stored, in ordered maps so that its `Debug` form is a faithful snapshot.
#[derive(Debug, Default, Clone)]
struct State {
    accounts: BTreeMap<Uuid, Versioned<Account>>,
    audit: BTreeMap<(Uuid, u64), AuditEvent>,
    /// Unique keys (`name_key` of names, AWS account ids) and their owners.
    names: BTreeMap<String, Uuid>,
    aws_accounts: BTreeMap<String, Uuid>,
    tasks: BTreeMap<Uuid, Versioned<Task>>,
    slots: BTreeMap<String, BTreeMap<Uuid, i64>>,
    types: BTreeMap<Uuid, Versioned<AccountType>>,
    type_names: BTreeMap<String, Uuid>,
    policies: BTreeMap<Uuid, Versioned<Policy>>,
    latest: BTreeMap<Uuid, (ComplianceSummary, Vec<RuleResult>)>,
    history: BTreeMap<Uuid, Vec<(ComplianceSummary, Vec<String>)>>,
    batches: BTreeMap<(Uuid, usize), Vec<Uuid>>,
    foundation: Option<FoundationCompleted>,
}

impl State {
    /// `account` recorded as it is — version 1, or the next version when it replaces one — with its
    /// unique keys (no audit event).
    fn put_as_is(&mut self, account: Account) -> Versioned<Account> {
        self.names.insert(name_key(&account.name), account.id);
        if let Some(aws) = &account.aws_account_id {
            self.aws_accounts.insert(aws.clone(), account.id);
        }
        let version = self.accounts.get(&account.id).map_or(1, |v| v.version + 1);
        let v = Versioned {
            value: account,
            version,
        };
        self.accounts.insert(v.value.id, v.clone());
        v
    }
}

/// An in-memory store. `Default` is empty; [`MemoryStore::fail_with`] makes every later call
/// fail as an unreachable DynamoDB would.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    unavailable: AtomicBool,
    reason: Mutex<String>,
    /// Accounts another writer records just before the next write (a race the test loses).
    interleaved: Mutex<Vec<Account>>,
    /// Accounts another writer records just before the next listing.
    interleaved_before_list: Mutex<Vec<Account>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// From now on every call fails with `StoreUnavailable` and `reason`.
    pub fn fail_with(&self, reason: &str) {
        *self.reason.lock().unwrap() = reason.to_owned();
        self.unavailable.store(true, Ordering::SeqCst);
    }

    /// Everything stored — records, audit events, unique keys, tasks, slots, types, scores,
    /// batches — for tests that prove a refused request wrote nothing: two snapshots are equal
    /// when nothing was written in between.
    pub fn snapshot(&self) -> String {
        format!("{:?}", *self.state.lock().unwrap())
    }

    /// A foundation bootstrap that completed (test setup for what waits for one).
    pub fn complete_foundation(&self) {
        self.state.lock().unwrap().foundation = Some(FoundationCompleted {
            execution: "arn:aws:states:us-east-1:123456789012:execution:foundation:test".into(),
            completed_ts: domain::timestamp::now(),
        });
    }

    /// Records `account` as it is (version 1 when new), with no audit event: test setup for states the
    /// lifecycle would take several steps to reach.
    pub fn insert(&self, account: Account) -> Versioned<Account> {
        self.state.lock().unwrap().put_as_is(account)
    }

    /// Another writer records `account` (as it is, stamped modified then) just before the next
    /// account write: the caller read the store before it did, and writes after.
    pub fn interleave(&self, account: Account) {
        self.interleaved.lock().unwrap().push(account);
    }

    /// Another writer records `account` just before the next listing of accounts (stamped
    /// modified then): the caller looked at AWS before it did, and reads the records after.
    pub fn interleave_before_list(&self, account: Account) {
        self.interleaved_before_list.lock().unwrap().push(account);
    }

    /// What another writer queued in `queue`, written now (and stamped so).
    fn write_queued(queue: &Mutex<Vec<Account>>, s: &mut State) {
        for mut account in queue.lock().unwrap().drain(..) {
            account.modified_ts = domain::timestamp::now();
            s.put_as_is(account);
        }
    }

    /// Records `task` as it is: test setup.
    pub fn insert_task(&self, task: Task) {
        let mut s = self.state.lock().unwrap();
        s.tasks.insert(
            task.id,
            Versioned {
                value: task,
                version: 1,
            },
        );
    }

    /// The lock held for the duration of one operation, or the failure every call answers.
    fn state(&self) -> Result<std::sync::MutexGuard<'_, State>, StoreError> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable(self.reason.lock().unwrap().clone()));
        }
        Ok(self.state.lock().unwrap())
    }
}

impl AccountReads for MemoryStore {
    async fn get_account(&self, id: Uuid) -> Result<Option<Versioned<Account>>, StoreError> {
        Ok(self.state()?.accounts.get(&id).cloned())
    }

    async fn get_account_by_aws_id(
        &self,
        aws_account_id: &str,
    ) -> Result<Option<Versioned<Account>>, StoreError> {
        let s = self.state()?;
        Ok(s.aws_accounts
            .get(aws_account_id)
            .and_then(|id| s.accounts.get(id))
            .cloned())
    }

    async fn get_account_by_name(
        &self,
        name: &str,
    ) -> Result<Option<Versioned<Account>>, StoreError> {
        let s = self.state()?;
        Ok(s.names
            .get(&name_key(name))
            .and_then(|id| s.accounts.get(id))
            .cloned())
    }

    async fn list_account_versions(
        &self,
        filter: &AccountFilter,
    ) -> Result<Vec<Versioned<Account>>, StoreError> {
        let mut s = self.state()?;
        Self::write_queued(&self.interleaved_before_list, &mut s);
        Ok(s.accounts
            .values()
            .filter(|v| filter.matches(&v.value))
            .cloned()
            .collect())
    }

    async fn audit_trail(&self, account: Uuid) -> Result<Vec<AuditEvent>, StoreError> {
        Ok(self
            .state()?
            .audit
            .range((account, 0)..=(account, u64::MAX))
            .map(|(_, e)| e.clone())
            .collect())
    }
}

impl Tasks for MemoryStore {
    async fn create_task(&self, task: &Task) -> Result<(), StoreError> {
        let mut s = self.state()?;
        if s.tasks.contains_key(&task.id) {
            return Err(StoreError::TaskExists(task.id));
        }
        s.tasks.insert(
            task.id,
            Versioned {
                value: task.clone(),
                version: 1,
            },
        );
        Ok(())
    }

    async fn get_task(&self, id: Uuid) -> Result<Option<Versioned<Task>>, StoreError> {
        Ok(self.state()?.tasks.get(&id).cloned())
    }

    async fn update_task(
        &self,
        id: Uuid,
        status: TaskStatus,
        log: Option<&str>,
    ) -> Result<Versioned<Task>, StoreError> {
        let mut s = self.state()?;
        let current = s
            .tasks
            .get(&id)
            .cloned()
            .ok_or(StoreError::TaskNotFound(id))?;
        let Some(next) = current
            .value
            .advance(status, log, domain::timestamp::now())?
        else {
            return Ok(current);
        };
        let next = Versioned {
            value: next,
            version: current.version + 1,
        };
        s.tasks.insert(id, next.clone());
        Ok(next)
    }
}

impl AccountWrites for MemoryStore {
    async fn create_account(
        &self,
        account: &Account,
        first_trigger: Trigger,
        task: Option<&Task>,
        actor: &str,
    ) -> Result<Versioned<Account>, StoreError> {
        let mut s = self.state()?;
        Self::write_queued(&self.interleaved, &mut s);
        // Refusals in the order the DynamoDB transaction reports them.
        if s.accounts.contains_key(&account.id) {
            return Err(StoreError::AccountExists(account.id));
        }
        if let Some(aws) = &account.aws_account_id
            && s.aws_accounts.contains_key(aws)
        {
            return Err(StoreError::AwsAccountIdTaken(aws.clone()));
        }
        if s.names.contains_key(&name_key(&account.name)) {
            return Err(StoreError::NameTaken(account.name.clone()));
        }
        if let Some(task) = task
            && s.tasks.contains_key(&task.id)
        {
            return Err(StoreError::TaskExists(task.id));
        }
        let event = AuditEvent::of_change(None, account, 1, actor, Some(first_trigger));
        s.audit.insert((account.id, 1), event);
        s.names.insert(name_key(&account.name), account.id);
        if let Some(aws) = &account.aws_account_id {
            s.aws_accounts.insert(aws.clone(), account.id);
        }
        if let Some(task) = task {
            s.tasks.insert(
                task.id,
                Versioned {
                    value: task.clone(),
                    version: 1,
                },
            );
        }
        let recorded = Versioned {
            value: account.clone(),
            version: 1,
        };
        s.accounts.insert(account.id, recorded.clone());
        Ok(recorded)
    }

    async fn apply_with_task(
        &self,
        current: &Versioned<Account>,
        change: &AccountChange,
        task: Option<TaskWrite<'_>>,
        actor: &str,
    ) -> Result<(Versioned<Account>, Option<Versioned<Task>>), StoreError> {
        let now = domain::timestamp::now();
        let next = current.value.apply(change, now)?;
        let mut s = self.state()?;
        Self::write_queued(&self.interleaved, &mut s);
        // (task as read — version 0 for a new one — and the task after)
        let task = match task {
            Some(TaskWrite::Update(update)) => {
                let read = s
                    .tasks
                    .get(&update.id)
                    .cloned()
                    .ok_or(StoreError::TaskNotFound(update.id))?;
                let after = read.value.advance(update.status, update.log, now)?;
                Some((read, after, false))
            }
            Some(TaskWrite::Create(task)) => Some((
                Versioned {
                    value: task.clone(),
                    version: 0,
                },
                Some(task.clone()),
                true,
            )),
            None => None,
        };
        let account = match &next {
            Some(next) => Versioned {
                value: next.clone(),
                version: current.version + 1,
            },
            None => current.clone(),
        };
        // The conditions, refused in the order the DynamoDB store reports them: the account
        // changed since it was read (everything else was judged against an old version), the
        // AWS account id's unique item, the new name's, the task.
        let account_as_read = next.is_none()
            || s.accounts.get(&current.value.id).is_some_and(|v| {
                v.version == current.version
                    && v.value.status == current.value.status
                    && v.value.compliance.as_ref().map(|c| c.evaluated_ts)
                        == current.value.compliance.as_ref().map(|c| c.evaluated_ts)
            });
        if !account_as_read {
            return Err(StoreError::Stale {
                account: current.value.id,
                expected: current.version,
            });
        }
        if let Some(next) = &next {
            if current.value.aws_account_id.is_none()
                && let Some(aws) = &next.aws_account_id
                && s.aws_accounts.contains_key(aws)
            {
                return Err(StoreError::AwsAccountIdTaken(aws.clone()));
            }
            if name_key(&next.name) != name_key(&current.value.name)
                && s.names.contains_key(&name_key(&next.name))
            {
                return Err(StoreError::NameTaken(next.name.clone()));
            }
        }
        if let Some((read, Some(_), creating)) = &task {
            let stored = s.tasks.get(&read.value.id).map(|t| t.version);
            let task_as_read = if *creating {
                stored.is_none()
            } else {
                stored == Some(read.version)
            };
            if !task_as_read {
                return Err(if *creating {
                    StoreError::TaskExists(read.value.id)
                } else {
                    StoreError::StaleTask(read.value.id)
                });
            }
        }
        // Every condition holds: write it all.
        if let Some(next) = &next {
            let trigger = change.transition.as_ref().map(|t| t.trigger);
            let event =
                AuditEvent::of_change(Some(&current.value), next, account.version, actor, trigger);
            s.audit.insert((next.id, account.version), event);
            if current.value.aws_account_id.is_none()
                && let Some(aws) = &next.aws_account_id
            {
                s.aws_accounts.insert(aws.clone(), next.id);
            }
            if name_key(&next.name) != name_key(&current.value.name) {
                s.names.remove(&name_key(&current.value.name));
                s.names.insert(name_key(&next.name), next.id);
            }
            s.accounts.insert(next.id, account.clone());
        }
        let task = task.map(|(read, after, _)| match after {
            Some(after) => {
                let written = Versioned {
                    value: after,
                    version: read.version + 1,
                };
                s.tasks.insert(written.value.id, written.clone());
                written
            }
            None => read,
        });
        Ok((account, task))
    }
}

impl Slots for MemoryStore {
    async fn acquire_slot(
        &self,
        name: &str,
        capacity: usize,
        holder: Uuid,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let mut s = self.state()?;
        let now = Utc::now().timestamp();
        let holders = s.slots.entry(name.to_owned()).or_default();
        if holders.contains_key(&holder) {
            return Ok(true);
        }
        holders.retain(|_, expires| *expires > now);
        if holders.len() >= capacity {
            return Ok(false);
        }
        holders.insert(holder, now + lease.as_secs() as i64);
        Ok(true)
    }

    async fn slots_in_use(&self, name: &str) -> Result<usize, StoreError> {
        let now = Utc::now().timestamp();
        Ok(self
            .state()?
            .slots
            .get(name)
            .map_or(0, |h| h.values().filter(|e| **e > now).count()))
    }

    async fn release_slot(&self, name: &str, holder: Uuid) -> Result<(), StoreError> {
        if let Some(holders) = self.state()?.slots.get_mut(name) {
            holders.remove(&holder);
        }
        Ok(())
    }
}

impl FoundationStatus for MemoryStore {
    async fn foundation_completed(&self) -> Result<Option<FoundationCompleted>, StoreError> {
        Ok(self.state()?.foundation.clone())
    }

    async fn record_foundation_completed(
        &self,
        completed: &FoundationCompleted,
    ) -> Result<(), StoreError> {
        self.state()?.foundation = Some(completed.clone());
        Ok(())
    }
}

impl AccountTypes for MemoryStore {
    async fn ensure_account_type(&self, name: &str) -> Result<AccountType, StoreError> {
        let mut s = self.state()?;
        if let Some(id) = s.type_names.get(&name_key(name))
            && let Some(t) = s.types.get(id)
        {
            return Ok(t.value.clone());
        }
        let now = domain::timestamp::now();
        let t = AccountType {
            id: Uuid::new_v4(),
            name: name.to_owned(),
            status: AccountTypeStatus::Active,
            created_ts: now,
            modified_ts: now,
            ou: None,
        };
        s.type_names.insert(name_key(name), t.id);
        s.types.insert(
            t.id,
            Versioned {
                value: t.clone(),
                version: 1,
            },
        );
        Ok(t)
    }

    async fn get_account_type(&self, id: Uuid) -> Result<Option<AccountType>, StoreError> {
        Ok(self.state()?.types.get(&id).map(|t| t.value.clone()))
    }

    async fn get_account_type_by_name(
        &self,
        name: &str,
    ) -> Result<Option<AccountType>, StoreError> {
        let s = self.state()?;
        Ok(s.type_names
            .get(&name_key(name))
            .and_then(|id| s.types.get(id))
            .map(|t| t.value.clone()))
    }

    async fn list_account_types(&self) -> Result<Vec<AccountType>, StoreError> {
        Ok(self
            .state()?
            .types
            .values()
            .map(|t| t.value.clone())
            .collect())
    }

    async fn get_versioned_account_type(
        &self,
        id: Uuid,
    ) -> Result<Option<Versioned<AccountType>>, StoreError> {
        Ok(self.state()?.types.get(&id).cloned())
    }

    async fn create_account_type(&self, account_type: &AccountType) -> Result<(), StoreError> {
        let mut s = self.state()?;
        let key = name_key(&account_type.name);
        if s.type_names.contains_key(&key) || s.types.contains_key(&account_type.id) {
            return Err(StoreError::AccountTypeNameTaken(account_type.name.clone()));
        }
        s.type_names.insert(key, account_type.id);
        s.types.insert(
            account_type.id,
            Versioned {
                value: account_type.clone(),
                version: 1,
            },
        );
        Ok(())
    }

    async fn replace_account_type(
        &self,
        current: &Versioned<AccountType>,
        next: &AccountType,
    ) -> Result<Versioned<AccountType>, StoreError> {
        let mut s = self.state()?;
        let id = current.value.id;
        // Over the version read, as DynamoDB's condition is.
        if s.types.get(&id).map(|t| t.version) != Some(current.version) || next.id != id {
            return Err(StoreError::StaleAccountType(id));
        }
        let (old, new) = (name_key(&current.value.name), name_key(&next.name));
        let live = |t: &AccountType| t.status == AccountTypeStatus::Active;
        let takes_name = live(next) && (old != new || !live(&current.value));
        if takes_name && s.type_names.get(&new).is_some_and(|owner| *owner != id) {
            return Err(StoreError::AccountTypeNameTaken(next.name.clone()));
        }
        if live(&current.value) && (old != new || !live(next)) {
            s.type_names.remove(&old);
        }
        if takes_name {
            s.type_names.insert(new, id);
        }
        let v = Versioned {
            value: next.clone(),
            version: current.version + 1,
        };
        s.types.insert(id, v.clone());
        Ok(v)
    }
}

impl Policies for MemoryStore {
    async fn list_policies(&self) -> Result<Vec<Versioned<Policy>>, StoreError> {
        Ok(self.state()?.policies.values().cloned().collect())
    }

    async fn get_policy(&self, id: Uuid) -> Result<Option<Versioned<Policy>>, StoreError> {
        Ok(self.state()?.policies.get(&id).cloned())
    }

    async fn create_policy(&self, policy: &Policy) -> Result<(), StoreError> {
        let mut s = self.state()?;
        if s.policies.contains_key(&policy.id) {
            return Err(StoreError::StalePolicy(policy.id));
        }
        s.policies.insert(
            policy.id,
            Versioned {
                value: policy.clone(),
                version: 1,
            },
        );
        Ok(())
    }

    async fn replace_policy(
        &self,
        current: &Versioned<Policy>,
        next: &Policy,
    ) -> Result<Versioned<Policy>, StoreError> {
        let mut s = self.state()?;
        let id = current.value.id;
        match s.policies.get(&id) {
            Some(stored) if stored.version == current.version && next.id == id => {}
            _ => return Err(StoreError::StalePolicy(id)),
        }
        let replaced = Versioned {
            value: next.clone(),
            version: current.version + 1,
        };
        s.policies.insert(id, replaced.clone());
        Ok(replaced)
    }

    async fn remove_policy(&self, current: &Versioned<Policy>) -> Result<(), StoreError> {
        let mut s = self.state()?;
        let id = current.value.id;
        match s.policies.get(&id) {
            Some(stored) if stored.version == current.version => {
                s.policies.remove(&id);
                Ok(())
            }
            _ => Err(StoreError::StalePolicy(id)),
        }
    }
}

impl Compliance for MemoryStore {
    async fn record_compliance(
        &self,
        account: Uuid,
        summary: &ComplianceSummary,
        results: &[RuleResult],
    ) -> Result<bool, StoreError> {
        let mut s = self.state()?;
        let record = s
            .accounts
            .get_mut(&account)
            .ok_or(StoreError::AccountNotFound(account))?;
        let newer = record
            .value
            .compliance
            .as_ref()
            .is_none_or(|c| c.evaluated_ts < summary.evaluated_ts);
        if !newer {
            return Ok(false);
        }
        record.value.compliance = Some(summary.clone());
        s.latest
            .insert(account, (summary.clone(), results.to_vec()));
        let failed = results
            .iter()
            .filter(|r| r.state == RuleState::Failed)
            .map(|r| r.rule_id.clone())
            .collect();
        s.history
            .entry(account)
            .or_default()
            .push((summary.clone(), failed));
        Ok(true)
    }

    async fn latest_compliance(
        &self,
        account: Uuid,
    ) -> Result<Option<(ComplianceSummary, Vec<RuleResult>)>, StoreError> {
        Ok(self.state()?.latest.get(&account).cloned())
    }

    async fn compliance_history(
        &self,
        account: Uuid,
        limit: usize,
    ) -> Result<Vec<(ComplianceSummary, Vec<String>)>, StoreError> {
        let s = self.state()?;
        let mut entries = s.history.get(&account).cloned().unwrap_or_default();
        entries.sort_by_key(|(summary, _)| std::cmp::Reverse(summary.evaluated_ts));
        entries.truncate(limit);
        Ok(entries)
    }

    async fn put_batches(&self, run: Uuid, batches: &[Vec<Uuid>]) -> Result<(), StoreError> {
        let mut s = self.state()?;
        for (index, accounts) in batches.iter().enumerate() {
            s.batches.insert((run, index), accounts.clone());
        }
        Ok(())
    }

    async fn get_batch(&self, run: Uuid, index: usize) -> Result<Option<Vec<Uuid>>, StoreError> {
        Ok(self.state()?.batches.get(&(run, index)).cloned())
    }
}
