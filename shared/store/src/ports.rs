//! The store's ports: one trait per entity, each with the operations functions use. The
//! implementations provide the primitive reads and conditional writes; the compound operations
//! (read-modify-write with retries, starting and ending an operation on an account) are written
//! once, here, on top of them.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::compliance::{ComplianceSummary, RuleResult};
use domain::policies::Policy;
use domain::{
    Account, AccountChange, AccountFacts, AccountFilter, AccountStatus, AccountType,
    AccountTypeRef, AuditEvent, LockChange, Task, TaskStatus, Transition, Trigger,
};
use uuid::Uuid;

use crate::{STALE_ATTEMPTS, StoreError, TaskUpdate, TaskWrite, Versioned, backoff};

/// Reading account records.
pub trait AccountReads: Send + Sync {
    fn get_account(
        &self,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<Versioned<Account>>, StoreError>> + Send;

    /// The account recorded for an AWS account id.
    fn get_account_by_aws_id(
        &self,
        aws_account_id: &str,
    ) -> impl Future<Output = Result<Option<Versioned<Account>>, StoreError>> + Send;

    /// The account that holds `name` (compared case-insensitively, as names are unique).
    fn get_account_by_name(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<Versioned<Account>>, StoreError>> + Send;

    /// The accounts `filter` selects ([`AccountFilter::matches`]), in no particular order,
    /// each with the version read (for changes applied against what was read).
    fn list_account_versions(
        &self,
        filter: &AccountFilter,
    ) -> impl Future<Output = Result<Vec<Versioned<Account>>, StoreError>> + Send;

    /// The accounts `filter` selects, in no particular order.
    fn list_accounts(
        &self,
        filter: &AccountFilter,
    ) -> impl Future<Output = Result<Vec<Account>, StoreError>> + Send {
        async move {
            let versions = self.list_account_versions(filter).await?;
            Ok(versions.into_iter().map(|v| v.value).collect())
        }
    }

    /// The account's audit trail, oldest first.
    fn audit_trail(
        &self,
        account: Uuid,
    ) -> impl Future<Output = Result<Vec<AuditEvent>, StoreError>> + Send;
}

/// Tasks: the asynchronous operations the API answers with.
pub trait Tasks: Send + Sync {
    /// Records a new task (refused with `TaskExists` if its id is taken).
    fn create_task(&self, task: &Task) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn get_task(
        &self,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<Versioned<Task>>, StoreError>> + Send;

    /// Moves a task to `status` and appends `log` to its Logs ([`Task::advance`]'s rules: a
    /// finished task stays finished; finishing it the same way again is a no-op).
    fn update_task(
        &self,
        id: Uuid,
        status: TaskStatus,
        log: Option<&str>,
    ) -> impl Future<Output = Result<Versioned<Task>, StoreError>> + Send;
}

/// Writing account records: every change conditional on what the writer read, with its audit
/// event, in one transaction.
pub trait AccountWrites: AccountReads + Tasks {
    /// Records a new account (built with [`Account::create`]) together with its unique name,
    /// its unique AWS account id, its first audit event and, when given, the task that works on
    /// it. Nothing is written if the name or AWS account id is taken.
    fn create_account(
        &self,
        account: &Account,
        first_trigger: Trigger,
        task: Option<&Task>,
        actor: &str,
    ) -> impl Future<Output = Result<Versioned<Account>, StoreError>> + Send;

    /// Records many new accounts, each with its own outcome, in the order given. An adapter
    /// may batch them (DynamoDB: 25 accounts per transaction); this default records one at a
    /// time.
    fn create_accounts(
        &self,
        accounts: &[Account],
        first_trigger: Trigger,
        actor: &str,
    ) -> impl Future<Output = Result<Vec<Result<(), StoreError>>, StoreError>> + Send {
        async move {
            let mut outcomes = Vec::with_capacity(accounts.len());
            for account in accounts {
                outcomes.push(
                    self.create_account(account, first_trigger, None, actor)
                        .await
                        .map(drop),
                );
            }
            Ok(outcomes)
        }
    }

    /// Applies `change` to the account as the caller read it, together with a task write (a
    /// new task, or a task's move to a new status with a log line), in one transaction: the
    /// write happens only if the account is still at `current.version` in its status. A
    /// lifecycle refusal or a stale read writes nothing; a change already in effect returns
    /// `current` unwritten.
    fn apply_with_task(
        &self,
        current: &Versioned<Account>,
        change: &AccountChange,
        task: Option<TaskWrite<'_>>,
        actor: &str,
    ) -> impl Future<Output = Result<(Versioned<Account>, Option<Versioned<Task>>), StoreError>> + Send;

    /// [`AccountWrites::apply_with_task`] without a task.
    fn apply(
        &self,
        current: &Versioned<Account>,
        change: &AccountChange,
        actor: &str,
    ) -> impl Future<Output = Result<Versioned<Account>, StoreError>> + Send {
        async move { Ok(self.apply_with_task(current, change, None, actor).await?.0) }
    }

    /// Reads the account and applies `change` (and the task write) to its latest version,
    /// reading again when another writer got in between. The lifecycle rules are checked
    /// against each fresh read, so a change that has become invalid is refused, not forced.
    fn update_with_task(
        &self,
        id: Uuid,
        change: &AccountChange,
        task: Option<TaskWrite<'_>>,
        actor: &str,
    ) -> impl Future<Output = Result<(Versioned<Account>, Option<Versioned<Task>>), StoreError>> + Send
    {
        async move {
            let mut attempt = 0;
            loop {
                attempt += 1;
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
        }
    }

    /// [`AccountWrites::update_with_task`] without a task.
    fn update(
        &self,
        id: Uuid,
        change: &AccountChange,
        actor: &str,
    ) -> impl Future<Output = Result<Versioned<Account>, StoreError>> + Send {
        async move { Ok(self.update_with_task(id, change, None, actor).await?.0) }
    }

    /// Starts an operation on the account: `change` (which takes the lock for `task`) applied
    /// to its latest version together with the new task, in one write. A second operation
    /// started at the same time sees the first one's lock (`OperationInProgress`); a start
    /// retried after it took effect (the account already locked by `task`) changes nothing.
    fn start_operation(
        &self,
        account: Uuid,
        change: &AccountChange,
        task: &Task,
        actor: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let current = self
                    .get_account(account)
                    .await?
                    .ok_or(StoreError::AccountNotFound(account))?;
                if current.value.user_task_id == Some(task.id) {
                    return Ok(());
                }
                let write = Some(TaskWrite::Create(task));
                match self.apply_with_task(&current, change, write, actor).await {
                    Err(StoreError::Stale { .. }) if attempt < STALE_ATTEMPTS => {
                        tokio::time::sleep(backoff(attempt)).await;
                    }
                    result => return result.map(drop),
                }
            }
        }
    }

    /// A workflow that could not be started for `task`: the account goes ERROR with `reason`,
    /// its lock is released and the task FAILED with the reason in its Logs, in one write.
    fn abandon_task(
        &self,
        account: Uuid,
        task: Uuid,
        reason: &str,
        actor: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let change =
            AccountChange::end_operation(task, Transition::error(Trigger::FailWorkflow, reason));
        end_unstarted(self, account, task, change, reason, actor)
    }

    /// An account an abandoned operation left, taken over against the version read: the lock
    /// of `holder` (if it holds one) released, the account moved `to` — ERROR with `reason`, as
    /// the workflow's failure record would have it, or ACTIVE again for a maintenance (which
    /// changes only settings the next run assures anew) — and `holder` FAILED with `reason`
    /// when it is not finished. `Stale` when the account changed since it was read.
    fn take_over(
        &self,
        current: &Versioned<Account>,
        holder: Option<&Task>,
        to: AccountStatus,
        reason: &str,
        actor: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            let mut change = match to {
                _ if to == current.value.status => AccountChange::default(),
                AccountStatus::Error => {
                    AccountChange::transition(Transition::error(Trigger::FailWorkflow, reason))
                }
                _ => AccountChange::transition(Transition::to(Trigger::CompleteWorkflow, to)),
            };
            if let Some(task) = holder {
                change = change.with_lock(LockChange::Release(task.id));
            }
            let update = holder
                .filter(|t| !t.status.is_terminal())
                .map(|t| TaskUpdate {
                    id: t.id,
                    status: TaskStatus::Failed,
                    log: Some(reason),
                });
            self.apply_with_task(current, &change, update.map(Into::into), actor)
                .await
                .map(drop)
        }
    }

    /// A repair of an ACTIVE account that could not be started for `task`: nothing was changed
    /// in the account, so it is ACTIVE again ([`AccountChange::stand_down`]); its lock is released
    /// and the task FAILED with `reason`, in one write.
    fn stand_down_task(
        &self,
        account: Uuid,
        task: Uuid,
        reason: &str,
        actor: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        end_unstarted(
            self,
            account,
            task,
            AccountChange::stand_down(task),
            reason,
            actor,
        )
    }

    /// An operation that keeps the account's status (an update) and could not be started for
    /// `task`: its lock is released, what the lock-taking write changed put back (`restore`:
    /// an update's old name) and the task FAILED with `reason`, in one write; the status stays.
    fn release_unstarted(
        &self,
        account: Uuid,
        task: Uuid,
        restore: AccountFacts,
        reason: &str,
        actor: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        end_unstarted(
            self,
            account,
            task,
            AccountChange::release(task).with_facts(restore),
            reason,
            actor,
        )
    }

    /// Takes the per-account operation lock for `task`, or fails with `OperationInProgress`.
    /// Idempotent for the task that holds it.
    fn acquire_lock(
        &self,
        account: Uuid,
        task: Uuid,
        actor: &str,
    ) -> impl Future<Output = Result<Versioned<Account>, StoreError>> + Send {
        async move {
            let change = AccountChange::lock(LockChange::Acquire(task));
            self.update(account, &change, actor).await
        }
    }

    /// Releases the lock `task` holds. Idempotent: releasing a free lock changes nothing.
    fn release_lock(
        &self,
        account: Uuid,
        task: Uuid,
        actor: &str,
    ) -> impl Future<Output = Result<Versioned<Account>, StoreError>> + Send {
        async move {
            let change = AccountChange::lock(LockChange::Release(task));
            self.update(account, &change, actor).await
        }
    }
}

/// The account takes `change` (which releases `task`'s lock); the task is FAILED with `reason`.
async fn end_unstarted<S: AccountWrites + ?Sized>(
    store: &S,
    account: Uuid,
    task: Uuid,
    change: AccountChange,
    reason: &str,
    actor: &str,
) -> Result<(), StoreError> {
    let update = TaskUpdate {
        id: task,
        status: TaskStatus::Failed,
        log: Some(reason),
    };
    store
        .update_with_task(account, &change, Some(update.into()), actor)
        .await
        .map(drop)
}

/// Counted slots: a resource only so many holders may use at once (CreateAccount requests in
/// flight, the one organization-wide discovery run), each holder for at most a lease.
pub trait Slots: Send + Sync {
    /// Takes one of `capacity` slots named `name` for `holder` (a task), for at most `lease`.
    /// `Ok(false)` when all are taken: the caller waits and asks again. Idempotent per holder;
    /// leases of holders that never released (a workflow stopped by hand) lapse.
    fn acquire_slot(
        &self,
        name: &str,
        capacity: usize,
        holder: Uuid,
        lease: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// How many slots named `name` are held (leases that lapsed do not count).
    fn slots_in_use(&self, name: &str) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Gives the slot back. Idempotent.
    fn release_slot(
        &self,
        name: &str,
        holder: Uuid,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A completed run of the foundation bootstrap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundationCompleted {
    /// The bootstrap execution that completed.
    pub execution: String,
    pub completed_ts: DateTime<Utc>,
}

/// Whether the foundation bootstrap has completed once: its accounts recorded, the log buckets,
/// GuardDuty's delegation and the SCP in place, the Security and Logging accounts assured.
/// Creating and onboarding accounts wait for it.
pub trait FoundationStatus: Send + Sync {
    /// The latest completed bootstrap run; `None` before the first.
    fn foundation_completed(
        &self,
    ) -> impl Future<Output = Result<Option<FoundationCompleted>, StoreError>> + Send;

    /// Records a completed run (the latest one recorded wins). Idempotent.
    fn record_foundation_completed(
        &self,
        completed: &FoundationCompleted,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Account Types, unique by name (case-insensitively).
pub trait AccountTypes: Send + Sync {
    /// The account type called `name`, created if there is none. Safe to call concurrently:
    /// exactly one type per name is ever recorded.
    fn ensure_account_type(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<AccountType, StoreError>> + Send;

    fn get_account_type(
        &self,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<AccountType>, StoreError>> + Send;

    /// The account type called `name` (case-insensitively), if there is one.
    fn get_account_type_by_name(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<AccountType>, StoreError>> + Send;

    fn list_account_types(
        &self,
    ) -> impl Future<Output = Result<Vec<AccountType>, StoreError>> + Send;

    /// A type with the version its next change must name.
    fn get_versioned_account_type(
        &self,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<Versioned<AccountType>>, StoreError>> + Send;

    /// Records a new type (version 1). `AccountTypeNameTaken` when a type has the name, in any
    /// case.
    fn create_account_type(
        &self,
        account_type: &AccountType,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Replaces version `current` of a type with `next` (the same id): a new name takes the
    /// unique name and gives the old one up; a deleted type gives its name up, for a new type to
    /// take. `StaleAccountType` when the type changed since `current` was read,
    /// `AccountTypeNameTaken` when the new name is another type's; nothing is written then.
    fn replace_account_type(
        &self,
        current: &Versioned<AccountType>,
        next: &AccountType,
    ) -> impl Future<Output = Result<Versioned<AccountType>, StoreError>> + Send;

    /// The account type a request names, by id or by name.
    fn find_account_type(
        &self,
        reference: &AccountTypeRef,
    ) -> impl Future<Output = Result<Option<AccountType>, StoreError>> + Send {
        async move {
            match reference {
                AccountTypeRef::Id(id) => self.get_account_type(*id).await,
                AccountTypeRef::Name(name) => self.get_account_type_by_name(name).await,
            }
        }
    }
}

/// Policies: the desired state of the SCPs the service owns (content, attachments), each
/// changed over the version it was read at.
pub trait Policies: Send + Sync {
    /// Every policy recorded, deleted ones included.
    fn list_policies(
        &self,
    ) -> impl Future<Output = Result<Vec<Versioned<Policy>>, StoreError>> + Send;

    fn get_policy(
        &self,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<Versioned<Policy>>, StoreError>> + Send;

    /// Records a new policy (version 1); `StalePolicy` when its id is taken.
    fn create_policy(&self, policy: &Policy)
    -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Replaces version `current` with `next` (the same id); `StalePolicy` when it changed since
    /// `current` was read, and nothing is written then.
    fn replace_policy(
        &self,
        current: &Versioned<Policy>,
        next: &Policy,
    ) -> impl Future<Output = Result<Versioned<Policy>, StoreError>> + Send;

    /// Removes version `current` (a creation AWS refused); `StalePolicy` when it changed since.
    fn remove_policy(
        &self,
        current: &Versioned<Policy>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Compliance scores: the summary on the account record, the latest per-rule results and the
/// history beside it, and the batches a scoring run fans out over.
pub trait Compliance: Send + Sync {
    /// Records one scoring of an account: the summary on the account record (without a new
    /// version: a score is not a change of the record), the per-rule results as the latest, and
    /// a history entry, together. `Ok(false)` when a result at least as new is already there (a
    /// retried scoring), which writes nothing; `AccountNotFound` for an unknown account.
    fn record_compliance(
        &self,
        account: Uuid,
        summary: &ComplianceSummary,
        results: &[RuleResult],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The latest per-rule results of an account (None before its first scoring).
    fn latest_compliance(
        &self,
        account: Uuid,
    ) -> impl Future<Output = Result<Option<(ComplianceSummary, Vec<RuleResult>)>, StoreError>> + Send;

    /// An account's scores, newest first, at most `limit`, with the rules that failed each time.
    fn compliance_history(
        &self,
        account: Uuid,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(ComplianceSummary, Vec<String>)>, StoreError>> + Send;

    /// Splits a run's work into numbered batches of account ids, kept for a week, so that each
    /// step of a fan-out reads its own batch and the run's input stays small.
    fn put_batches(
        &self,
        run: Uuid,
        batches: &[Vec<Uuid>],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Batch `index` of run `run`, if there is one.
    fn get_batch(
        &self,
        run: Uuid,
        index: usize,
    ) -> impl Future<Output = Result<Option<Vec<Uuid>>, StoreError>> + Send;
}
