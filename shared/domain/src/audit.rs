//! The audit trail: one event per version of an account record, saying what changed, when and
//! by whom. The store writes an account change and its event together.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::account::{Account, AccountStatus};
use crate::lifecycle::Trigger;

/// One entry of an account's audit trail: what changed, when, by whom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    #[serde(rename = "AccountId")]
    pub account_id: Uuid,
    /// The account version this event produced.
    #[serde(rename = "Version")]
    pub version: u64,
    #[serde(rename = "At", with = "crate::timestamp")]
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

impl AuditEvent {
    /// The event of the change from `before` (None: the first version) to `after`, which is
    /// version `version`.
    pub fn of_change(
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
}
