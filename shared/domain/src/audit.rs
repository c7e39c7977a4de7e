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
    /// The AWS account the record is of, when it has one.
    #[serde(
        rename = "AwsAccountId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub aws_account_id: Option<String>,
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
    /// The task the change was made under: the one holding the lock after it, or the one that
    /// released it with it.
    #[serde(rename = "TaskId", default, skip_serializing_if = "Option::is_none")]
    pub task: Option<Uuid>,
    /// The record's fields the change set or changed, besides the status and the lock.
    #[serde(rename = "Changed", default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
}

/// A field of the record, by name, and how to read it for comparison.
type Field = (&'static str, fn(&Account) -> serde_json::Value);

/// The record's fields, besides the status and the lock, that differ between `before` and
/// `after` (every one that is set, for a first version).
fn changed_fields(before: Option<&Account>, after: &Account) -> Vec<String> {
    let fields: [Field; 11] = [
        ("Name", |a| serde_json::json!(a.name)),
        ("AwsAccountId", |a| serde_json::json!(a.aws_account_id)),
        ("AwsAccountName", |a| serde_json::json!(a.aws_account_name)),
        ("AwsAccountAlias", |a| {
            serde_json::json!(a.aws_account_alias)
        }),
        ("AccountType", |a| serde_json::json!(a.account_type)),
        ("AccountRole", |a| serde_json::json!(a.account_role)),
        ("Email", |a| serde_json::json!(a.email)),
        ("OrgsOuId", |a| serde_json::json!(a.orgs_ou_id)),
        ("Tags", |a| serde_json::json!(a.tags)),
        ("AssuranceState", |a| serde_json::json!(a.assurance_state)),
        ("StatusReason", |a| serde_json::json!(a.status_reason)),
    ];
    fields
        .iter()
        .filter(|(_, read)| match before {
            Some(b) => read(b) != read(after),
            None => !read(after).is_null(),
        })
        .map(|(name, _)| (*name).to_owned())
        .collect()
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
            aws_account_id: after.aws_account_id.clone(),
            trigger,
            from,
            to: (from != Some(after.status)).then_some(after.status),
            reason: after
                .status_reason
                .clone()
                .filter(|_| from != Some(after.status)),
            lock_acquired_by: after.user_task_id.filter(|t| lock_before != Some(*t)),
            lock_released_by: lock_before.filter(|t| after.user_task_id != Some(*t)),
            task: after.user_task_id.or(lock_before),
            changed: changed_fields(before, after),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn an_event_says_under_which_task_and_what_changed() {
        let task = Uuid::new_v4();
        let before = fixtures::account_in(AccountStatus::Active, "bakery", Some("111122223333"));
        let mut after = before.clone();
        after.name = "bakery-2".into();
        after.tags = Some([("Team".to_owned(), "bread".to_owned())].into());
        after.user_task_id = Some(task);
        let e = AuditEvent::of_change(Some(&before), &after, 2, "alice", None);
        assert_eq!(e.changed, ["Name", "Tags"]);
        assert_eq!((e.task, e.lock_acquired_by), (Some(task), Some(task)));
        assert_eq!((e.from, e.to), (Some(AccountStatus::Active), None));
        let released = AuditEvent::of_change(Some(&after), &before, 3, "alice", None);
        assert_eq!(
            (released.task, released.lock_released_by),
            (Some(task), Some(task))
        );
        let first = AuditEvent::of_change(None, &before, 1, "discovery", None);
        assert!(
            first.changed.contains(&"AwsAccountId".to_owned()),
            "{:?}",
            first.changed
        );
        assert_eq!(first.task, None);
    }
}
