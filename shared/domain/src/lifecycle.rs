//! The account lifecycle: one table of allowed transitions `(trigger, from, to)`.
//!
//! Everything that changes an account's status goes through [`Account::apply`] (or
//! [`Account::create`] for the first status), which consults [`TRANSITIONS`] and nothing else.
//! `from = None` is an account that is not recorded yet.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::account::{Account, AccountRole, AccountStatus, AssuranceState, Origin, Tags};
use crate::string_enum;

string_enum! {
    /// What caused a status change. Recorded in every audit event.
    pub enum Trigger {
        /// `POST /accounts`: the service will create the AWS account.
        RequestCreate => "RequestCreate",
        /// `POST /accounts` again for an account whose creation failed before AWS made it: the
        /// same record tries again.
        RetryCreate => "RetryCreate",
        /// Discovery found an organization member the service did not know.
        RecordDiscovered => "RecordDiscovered",
        /// The foundation bootstrap recorded the management, Security or Logging account.
        RegisterFoundation => "RegisterFoundation",
        /// Discovery re-checked the provisioning role of a known, unmanaged account.
        RecheckRole => "RecheckRole",
        /// `POST /accounts/onboard`.
        StartOnboarding => "StartOnboarding",
        /// Account Assurance re-runs on a managed account to repair drift.
        StartMaintenance => "StartMaintenance",
        /// `PUT /accounts/{id}`: an ACTIVE account is changed (name, alias, AWS name, type,
        /// tags) under a task; it stays ACTIVE. The table admits it from ACTIVE only, so the
        /// lock-taking write checks the status it is applied against.
        StartUpdate => "StartUpdate",
        /// `POST /accounts/close`: the account's closure starts under a task; it keeps its
        /// status while the closure waits for AWS's quota and AWS closes it (then `Close`).
        StartClosure => "StartClosure",
        /// `POST /accounts/{id}/suspend`: an ACTIVE account takes a task's lock while the
        /// suspension SCP is attached (then `Suspend`).
        StartSuspension => "StartSuspension",
        /// `POST /accounts/{id}/reactivate`: a SUSPENDED account takes a task's lock while the
        /// suspension SCP is detached (then `Reactivate`).
        StartReactivation => "StartReactivation",
        /// A create, onboarding or maintenance workflow finished.
        CompleteWorkflow => "CompleteWorkflow",
        /// A create, onboarding or maintenance workflow failed.
        FailWorkflow => "FailWorkflow",
        Suspend => "Suspend",
        Reactivate => "Reactivate",
        /// Closed through the service.
        Close => "Close",
        /// AWS reports the account SUSPENDED or PENDING_CLOSURE.
        ClosedInAws => "ClosedInAws",
        /// The AWS account is no longer a member of the organization. It stays recorded.
        LeftOrganization => "LeftOrganization",
        /// A closed record's AWS account is an active member of the organization again.
        Rejoined => "Rejoined",
        /// AWS finished an account the create workflow no longer waits for (it gave up, or its
        /// execution ended without recording it): the record learns the AWS account, ERROR
        /// with why, to be onboarded.
        LinkCreatedAccount => "LinkCreatedAccount",
    }
}

use AccountStatus::{
    Active, Closed, Discovered, Error, Initializing, Maintenance, Onboarding, Suspended,
};
use Trigger::*;

/// Every allowed status change. Anything not listed is refused.
pub const TRANSITIONS: &[(Trigger, Option<AccountStatus>, AccountStatus)] = &[
    (RequestCreate, None, Initializing),
    (RetryCreate, Some(Error), Initializing),
    (RecordDiscovered, None, Discovered),
    (RecordDiscovered, None, Error),
    (RegisterFoundation, None, Active),
    (RecheckRole, Some(Error), Discovered),
    (RecheckRole, Some(Discovered), Error),
    (StartOnboarding, Some(Discovered), Onboarding),
    (StartOnboarding, Some(Error), Onboarding),
    (StartMaintenance, Some(Active), Maintenance),
    (StartUpdate, Some(Active), Active),
    (StartClosure, Some(Active), Active),
    (StartClosure, Some(Suspended), Suspended),
    (StartClosure, Some(Discovered), Discovered),
    (StartSuspension, Some(Active), Active),
    (StartReactivation, Some(Suspended), Suspended),
    (CompleteWorkflow, Some(Initializing), Active),
    (CompleteWorkflow, Some(Onboarding), Active),
    (CompleteWorkflow, Some(Maintenance), Active),
    (FailWorkflow, Some(Initializing), Error),
    (FailWorkflow, Some(Onboarding), Error),
    (FailWorkflow, Some(Maintenance), Error),
    (Suspend, Some(Active), Suspended),
    (Reactivate, Some(Suspended), Active),
    (Close, Some(Active), Closed),
    (Close, Some(Suspended), Closed),
    (Close, Some(Discovered), Closed),
    (Close, Some(Error), Closed),
    (ClosedInAws, Some(Initializing), Closed),
    (ClosedInAws, Some(Discovered), Closed),
    (ClosedInAws, Some(Error), Closed),
    (ClosedInAws, Some(Onboarding), Closed),
    (ClosedInAws, Some(Active), Closed),
    (ClosedInAws, Some(Suspended), Closed),
    (ClosedInAws, Some(Maintenance), Closed),
    (LeftOrganization, Some(Initializing), Closed),
    (LeftOrganization, Some(Discovered), Closed),
    (LeftOrganization, Some(Error), Closed),
    (LeftOrganization, Some(Onboarding), Closed),
    (LeftOrganization, Some(Active), Closed),
    (LeftOrganization, Some(Suspended), Closed),
    (LeftOrganization, Some(Maintenance), Closed),
    (Rejoined, Some(Closed), Discovered),
    (LinkCreatedAccount, Some(Error), Error),
    (LinkCreatedAccount, Some(Initializing), Error),
];

/// Is `(trigger, from, to)` in the table?
pub fn is_allowed(trigger: Trigger, from: Option<AccountStatus>, to: AccountStatus) -> bool {
    TRANSITIONS.contains(&(trigger, from, to))
}

/// A requested status change. ERROR always carries the reason a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub trigger: Trigger,
    pub to: AccountStatus,
    pub reason: Option<String>,
}

impl Transition {
    /// A change to any status but ERROR.
    pub fn to(trigger: Trigger, to: AccountStatus) -> Self {
        Transition {
            trigger,
            to,
            reason: None,
        }
    }

    /// A change to `to` with why (kept for ERROR and CLOSED).
    pub fn because(trigger: Trigger, to: AccountStatus, reason: impl Into<String>) -> Self {
        Transition {
            trigger,
            to,
            reason: Some(reason.into()),
        }
    }

    /// A change to ERROR, with why.
    pub fn error(trigger: Trigger, reason: impl Into<String>) -> Self {
        Transition {
            trigger,
            to: Error,
            reason: Some(reason.into()),
        }
    }
}

/// A change to the per-account operation lock (`UserTaskId`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockChange {
    /// Task `0` starts an operation on the account.
    Acquire(Uuid),
    /// Task `0` has finished its operation.
    Release(Uuid),
    /// Task `0` goes on with its operation: the change is refused unless it holds the lock
    /// (a workflow step of another task, or of none, writes nothing).
    Hold(Uuid),
}

/// One atomic change to a recorded account: becomes one write and one audit event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountChange {
    pub transition: Option<Transition>,
    pub lock: Option<LockChange>,
    /// Facts about the AWS account a workflow has learned (its id once created, its OU, …).
    pub facts: AccountFacts,
    /// A new hardening state, with its reason (required for ERROR).
    pub assurance: Option<(AssuranceState, Option<String>)>,
}

/// Facts about an account a workflow or a request records. `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountFacts {
    /// Set once: an account never changes AWS account.
    pub aws_account_id: Option<String>,
    pub aws_account_name: Option<String>,
    pub aws_account_alias: Option<String>,
    pub email: Option<String>,
    pub orgs_ou_id: Option<String>,
    /// A new name (unique case-insensitively, like every name).
    pub name: Option<String>,
    pub account_type: Option<Uuid>,
    pub tags: Option<Tags>,
}

impl AccountChange {
    pub fn transition(t: Transition) -> Self {
        AccountChange {
            transition: Some(t),
            ..Default::default()
        }
    }

    pub fn lock(l: LockChange) -> Self {
        AccountChange {
            lock: Some(l),
            ..Default::default()
        }
    }

    pub fn with_lock(mut self, l: LockChange) -> Self {
        self.lock = Some(l);
        self
    }

    pub fn with_facts(mut self, facts: AccountFacts) -> Self {
        self.facts = facts;
        self
    }

    pub fn facts(facts: AccountFacts) -> Self {
        AccountChange {
            facts,
            ..Default::default()
        }
    }

    /// The one way into MAINTENANCE: an ACTIVE account, taken by `task` while Account Assurance
    /// re-runs on it (the API's repair, the foundation bootstrap's re-assurance).
    pub fn start_maintenance(task: Uuid) -> Self {
        AccountChange::transition(Transition::to(StartMaintenance, Maintenance))
            .with_lock(LockChange::Acquire(task))
    }

    /// `task`'s operation ends: the account takes `transition` and the lock is released.
    pub fn end_operation(task: Uuid, transition: Transition) -> Self {
        AccountChange::transition(transition).with_lock(LockChange::Release(task))
    }

    /// The one way into an update: the ACTIVE account stays ACTIVE, `task` takes the lock, and
    /// the record takes what the request changes in the record alone (its name, moved with its
    /// unique-name item in the same write).
    pub fn start_update(task: Uuid, name: Option<String>) -> Self {
        AccountChange::transition(Transition::to(StartUpdate, Active))
            .with_lock(LockChange::Acquire(task))
            .with_facts(AccountFacts {
                name,
                ..Default::default()
            })
    }

    /// The lock for `task` on an account whose status stays while the operation runs in AWS:
    /// `trigger` (StartClosure, StartSuspension, StartReactivation) says which, and the table which statuses
    /// admit it.
    pub fn start_keeping_status(task: Uuid, trigger: Trigger, status: AccountStatus) -> Self {
        AccountChange::transition(Transition::to(trigger, status))
            .with_lock(LockChange::Acquire(task))
    }

    /// `task`'s operation ends without a status change (an update, however it ended): the lock
    /// is released, the status left as it is.
    pub fn release(task: Uuid) -> Self {
        AccountChange::lock(LockChange::Release(task))
    }

    /// A repair that ends without running (its workflow could not start, or failed before it
    /// changed anything): the account ACTIVE again, the lock released.
    pub fn stand_down(task: Uuid) -> Self {
        AccountChange::end_operation(task, Transition::to(CompleteWorkflow, Active))
    }

    pub fn assurance(state: AssuranceState, reason: Option<String>) -> Self {
        AccountChange {
            assurance: Some((state, reason)),
            ..Default::default()
        }
    }
}

/// Why a change was refused. Nothing is written when one of these is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("{trigger} cannot move an account from {} to {to}", from.map_or("(not recorded)", |s| s.as_str()))]
    TransitionRefused {
        trigger: Trigger,
        from: Option<AccountStatus>,
        to: AccountStatus,
    },
    #[error("a change to ERROR must say why")]
    MissingReason,
    #[error("another operation is in progress on account {account} (task {task})")]
    OperationInProgress { account: Uuid, task: Uuid },
    #[error("task {task} does not hold the operation lock of account {account}")]
    NotLockHolder { account: Uuid, task: Uuid },
    #[error("account {account} is AWS account {recorded}; it cannot become {requested}")]
    AwsAccountIdChange {
        account: Uuid,
        recorded: String,
        requested: String,
    },
}

impl crate::Named for LifecycleError {
    fn name(&self) -> crate::ErrorName {
        use crate::ErrorName as N;
        match self {
            LifecycleError::TransitionRefused { .. } => N::TransitionRefused,
            LifecycleError::MissingReason => N::MissingReason,
            LifecycleError::OperationInProgress { .. } => N::OperationInProgress,
            LifecycleError::NotLockHolder { .. } => N::NotLockHolder,
            LifecycleError::AwsAccountIdChange { .. } => N::AwsAccountIdChange,
        }
    }
}

fn check(from: Option<AccountStatus>, t: &Transition) -> Result<Option<String>, LifecycleError> {
    if !is_allowed(t.trigger, from, t.to) {
        return Err(LifecycleError::TransitionRefused {
            trigger: t.trigger,
            from,
            to: t.to,
        });
    }
    match (t.to, t.reason.as_deref().map(str::trim)) {
        (Error, None | Some("")) => Err(LifecycleError::MissingReason),
        (Error | Closed, Some(r)) if !r.is_empty() => Ok(Some(r.to_owned())),
        // A reason belongs to ERROR (always) and CLOSED (when known); any other status clears it.
        _ => Ok(None),
    }
}

/// The facts needed to record an account for the first time.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAccount {
    pub organisation_id: Uuid,
    pub name: String,
    pub aws_account_id: Option<String>,
    pub aws_account_name: Option<String>,
    pub aws_account_alias: Option<String>,
    pub email: Option<String>,
    pub account_type: Option<Uuid>,
    pub account_role: AccountRole,
    pub origin: Origin,
    pub tags: Option<Tags>,
    pub orgs_ou_id: Option<String>,
    /// The task that starts working on the account as it is recorded (holds its lock).
    pub task: Option<Uuid>,
}

impl Account {
    /// Records a new account in its first status, which the table must allow from "not recorded".
    pub fn create(
        id: Uuid,
        new: NewAccount,
        first: &Transition,
        now: DateTime<Utc>,
    ) -> Result<Account, LifecycleError> {
        let now = crate::timestamp::to_millis(now);
        let status_reason = check(None, first)?;
        Ok(Account {
            id,
            organisation_id: new.organisation_id,
            name: new.name,
            aws_account_id: new.aws_account_id,
            aws_account_name: new.aws_account_name,
            aws_account_alias: new.aws_account_alias,
            account_type: new.account_type,
            account_role: new.account_role,
            status: first.to,
            status_reason,
            origin: new.origin,
            assurance_state: AssuranceState::None,
            assurance_state_reason: None,
            email: new.email,
            tags: new.tags,
            orgs_ou_id: new.orgs_ou_id,
            user_task_id: new.task,
            compliance: None,
            created_ts: now,
            modified_ts: now,
        })
    }

    /// The account after `change`, or `Ok(None)` when the change is already in effect (an
    /// idempotent retry: re-acquiring or re-releasing the same task's lock). Refusals leave `self`
    /// as it was.
    pub fn apply(
        &self,
        change: &AccountChange,
        now: DateTime<Utc>,
    ) -> Result<Option<Account>, LifecycleError> {
        let mut next = self.clone();
        if let Some(lock) = change.lock {
            next.user_task_id = match (self.user_task_id, lock) {
                (None, LockChange::Acquire(task)) => Some(task),
                (Some(held), LockChange::Acquire(task)) if held == task => Some(task),
                (Some(held), LockChange::Acquire(_)) => {
                    return Err(LifecycleError::OperationInProgress {
                        account: self.id,
                        task: held,
                    });
                }
                (Some(held), LockChange::Release(task)) if held == task => None,
                (None, LockChange::Release(_)) => None,
                (Some(held), LockChange::Hold(task)) if held == task => Some(task),
                (_, LockChange::Hold(task)) => {
                    return Err(LifecycleError::NotLockHolder {
                        account: self.id,
                        task,
                    });
                }
                (Some(_), LockChange::Release(task)) => {
                    return Err(LifecycleError::NotLockHolder {
                        account: self.id,
                        task,
                    });
                }
            };
        }
        if let Some(t) = &change.transition {
            next.status_reason = check(Some(self.status), t)?;
            next.status = t.to;
        }
        let facts = &change.facts;
        if let Some(requested) = &facts.aws_account_id {
            match &self.aws_account_id {
                Some(recorded) if recorded != requested => {
                    return Err(LifecycleError::AwsAccountIdChange {
                        account: self.id,
                        recorded: recorded.clone(),
                        requested: requested.clone(),
                    });
                }
                _ => next.aws_account_id = Some(requested.clone()),
            }
        }
        for (field, value) in [
            (&mut next.aws_account_name, &facts.aws_account_name),
            (&mut next.aws_account_alias, &facts.aws_account_alias),
            (&mut next.email, &facts.email),
            (&mut next.orgs_ou_id, &facts.orgs_ou_id),
        ] {
            if value.is_some() {
                field.clone_from(value);
            }
        }
        if let Some(name) = &facts.name {
            next.name.clone_from(name);
        }
        if facts.account_type.is_some() {
            next.account_type = facts.account_type;
        }
        if facts.tags.is_some() {
            next.tags.clone_from(&facts.tags);
        }
        if let Some((state, reason)) = &change.assurance {
            let reason = reason.as_deref().map(str::trim).filter(|r| !r.is_empty());
            if *state == AssuranceState::Error && reason.is_none() {
                return Err(LifecycleError::MissingReason);
            }
            next.assurance_state = *state;
            next.assurance_state_reason = reason
                .filter(|_| *state == AssuranceState::Error)
                .map(str::to_owned);
        }
        if next == *self {
            return Ok(None);
        }
        next.modified_ts = crate::timestamp::to_millis(now);
        Ok(Some(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Named;
    use crate::fixtures;
    use std::collections::BTreeSet;

    /// The lifecycle as drawn in the README, written out independently of `TRANSITIONS`: every
    /// (from, to) pair some trigger may take. `None` = not recorded yet.
    const DIAGRAM: &[(Option<AccountStatus>, AccountStatus)] = &[
        (None, Initializing),
        (None, Discovered),
        (None, Error),
        (None, Active),
        (Some(Initializing), Active),
        (Some(Initializing), Error),
        (Some(Initializing), Closed),
        (Some(Discovered), Discovered),
        (Some(Discovered), Onboarding),
        (Some(Discovered), Error),
        (Some(Discovered), Closed),
        (Some(Error), Initializing),
        (Some(Error), Discovered),
        (Some(Error), Onboarding),
        (Some(Error), Closed),
        (Some(Error), Error),
        (Some(Onboarding), Active),
        (Some(Onboarding), Error),
        (Some(Onboarding), Closed),
        (Some(Active), Maintenance),
        (Some(Active), Active),
        (Some(Active), Suspended),
        (Some(Active), Closed),
        (Some(Maintenance), Active),
        (Some(Maintenance), Error),
        (Some(Maintenance), Closed),
        (Some(Suspended), Active),
        (Some(Suspended), Suspended),
        (Some(Suspended), Closed),
        (Some(Closed), Discovered),
    ];

    fn transition(trigger: Trigger, to: AccountStatus) -> Transition {
        match to {
            Error => Transition::error(trigger, "the provisioning role could not be assumed"),
            _ => Transition::to(trigger, to),
        }
    }

    fn account_in(from: AccountStatus) -> Account {
        fixtures::account_in(from, "bakery", Some("111122223333"))
    }

    fn attempt(trigger: Trigger, from: Option<AccountStatus>, to: AccountStatus) -> bool {
        let t = transition(trigger, to);
        match from {
            None => Account::create(
                Uuid::new_v4(),
                fixtures::new_account("bakery", None),
                &t,
                Utc::now(),
            )
            .is_ok(),
            Some(from) => {
                let before = account_in(from);
                match before.apply(&AccountChange::transition(t), Utc::now()) {
                    Ok(after) => {
                        // A status kept (an update) may change nothing else.
                        let after = after.unwrap_or_else(|| before.clone());
                        assert_eq!(after.status, to);
                        assert_eq!(after.status_reason.is_some(), to == Error);
                        true
                    }
                    Err(e) => {
                        assert!(matches!(e, LifecycleError::TransitionRefused { .. }), "{e}");
                        false
                    }
                }
            }
        }
    }

    #[test]
    fn every_status_pair_outside_the_table_is_refused() {
        let froms: Vec<Option<AccountStatus>> = std::iter::once(None)
            .chain(AccountStatus::ALL.iter().copied().map(Some))
            .collect();
        let diagram: BTreeSet<_> = DIAGRAM.iter().copied().collect();
        let mut pairs = 0;
        for &from in &froms {
            for &to in AccountStatus::ALL {
                pairs += 1;
                let accepted_by: Vec<Trigger> = Trigger::ALL
                    .iter()
                    .copied()
                    .filter(|&t| attempt(t, from, to))
                    .collect();
                // The apply path agrees with the table, trigger by trigger …
                for &trigger in Trigger::ALL {
                    assert_eq!(
                        accepted_by.contains(&trigger),
                        is_allowed(trigger, from, to),
                        "{trigger}: {from:?} -> {to}"
                    );
                }
                // … and the table agrees with the diagram, pair by pair.
                assert_eq!(
                    !accepted_by.is_empty(),
                    diagram.contains(&(from, to)),
                    "{from:?} -> {to} accepted by {accepted_by:?}"
                );
            }
        }
        assert_eq!(pairs, 9 * 8);
    }

    #[test]
    fn a_refused_transition_names_trigger_and_statuses() {
        let before = account_in(Closed);
        let err = before
            .apply(
                &AccountChange::transition(Transition::to(Reactivate, Active)),
                Utc::now(),
            )
            .unwrap_err();
        assert_eq!(err.name(), crate::ErrorName::TransitionRefused);
        assert_eq!(
            err.to_string(),
            "Reactivate cannot move an account from CLOSED to ACTIVE"
        );
    }

    #[test]
    fn error_needs_a_reason_and_leaving_error_clears_it() {
        let discovered = account_in(Discovered);
        let no_reason = Transition {
            trigger: RecheckRole,
            to: Error,
            reason: Some("  ".into()),
        };
        assert_eq!(
            discovered.apply(&AccountChange::transition(no_reason), Utc::now()),
            Err(LifecycleError::MissingReason)
        );
        let failed = account_in(Error);
        let fixed = failed
            .apply(
                &AccountChange::transition(Transition::to(RecheckRole, Discovered)),
                Utc::now(),
            )
            .unwrap()
            .unwrap();
        assert_eq!(fixed.status_reason, None);
    }

    #[test]
    fn the_lock_admits_one_task_and_is_idempotent_for_it() {
        let a = account_in(Discovered);
        let (t1, t2) = (Uuid::new_v4(), Uuid::new_v4());
        let locked = a
            .apply(&AccountChange::lock(LockChange::Acquire(t1)), Utc::now())
            .unwrap()
            .unwrap();
        assert_eq!(locked.user_task_id, Some(t1));
        assert_eq!(
            locked.apply(&AccountChange::lock(LockChange::Acquire(t1)), Utc::now()),
            Ok(None)
        );
        assert_eq!(
            locked.apply(&AccountChange::lock(LockChange::Acquire(t2)), Utc::now()),
            Err(LifecycleError::OperationInProgress {
                account: a.id,
                task: t1
            })
        );
        assert_eq!(
            locked.apply(&AccountChange::lock(LockChange::Release(t2)), Utc::now()),
            Err(LifecycleError::NotLockHolder {
                account: a.id,
                task: t2
            })
        );
        let released = locked
            .apply(&AccountChange::lock(LockChange::Release(t1)), Utc::now())
            .unwrap()
            .unwrap();
        assert_eq!(released.user_task_id, None);
        assert_eq!(
            released.apply(&AccountChange::lock(LockChange::Release(t1)), Utc::now()),
            Ok(None)
        );
        // Going on needs the lock: its holder may, nobody else, and not once it is released.
        assert_eq!(
            locked.apply(&AccountChange::lock(LockChange::Hold(t1)), Utc::now()),
            Ok(None)
        );
        for (account, task) in [(&locked, t2), (&released, t1)] {
            assert_eq!(
                account.apply(&AccountChange::lock(LockChange::Hold(task)), Utc::now()),
                Err(LifecycleError::NotLockHolder {
                    account: a.id,
                    task
                })
            );
        }
    }

    #[test]
    fn an_account_keeps_its_aws_account_id() {
        let mut pending = account_in(Initializing);
        pending.aws_account_id = None;
        let created = pending
            .apply(
                &AccountChange::facts(AccountFacts {
                    aws_account_id: Some("444455556666".into()),
                    ..Default::default()
                }),
                Utc::now(),
            )
            .unwrap()
            .unwrap();
        assert_eq!(created.aws_account_id.as_deref(), Some("444455556666"));
        let same = AccountChange::facts(AccountFacts {
            aws_account_id: Some("444455556666".into()),
            ..Default::default()
        });
        assert_eq!(
            created.apply(&same, Utc::now()),
            Ok(None),
            "recording it again is a no-op"
        );
        let other = AccountChange::facts(AccountFacts {
            aws_account_id: Some("777788889999".into()),
            ..Default::default()
        });
        assert_eq!(
            created.apply(&other, Utc::now()).unwrap_err().name(),
            crate::ErrorName::AwsAccountIdChange
        );
    }

    #[test]
    fn assurance_errors_say_why() {
        let a = account_in(Active);
        assert_eq!(
            a.apply(
                &AccountChange::assurance(AssuranceState::Error, None),
                Utc::now()
            ),
            Err(LifecycleError::MissingReason)
        );
        let failed = a
            .apply(
                &AccountChange::assurance(
                    AssuranceState::Error,
                    Some("GuardDuty: access denied".into()),
                ),
                Utc::now(),
            )
            .unwrap()
            .unwrap();
        assert_eq!(
            failed.assurance_state_reason.as_deref(),
            Some("GuardDuty: access denied")
        );
        let fixed = failed
            .apply(
                &AccountChange::assurance(AssuranceState::Active, Some("ignored".into())),
                Utc::now(),
            )
            .unwrap()
            .unwrap();
        assert_eq!(
            (fixed.assurance_state, fixed.assurance_state_reason),
            (AssuranceState::Active, None)
        );
    }

    #[test]
    fn a_refused_transition_refuses_the_whole_change() {
        let a = account_in(Closed);
        let change = AccountChange::transition(Transition::to(StartOnboarding, Onboarding))
            .with_lock(LockChange::Acquire(Uuid::new_v4()));
        let err = a.apply(&change, Utc::now()).unwrap_err();
        assert_eq!(
            err.name(),
            crate::ErrorName::TransitionRefused,
            "the lock is not taken on its own"
        );
    }
}
