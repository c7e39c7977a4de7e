//! The rules every store keeps, as checks generic over the ports: the unit tests run them
//! against [`MemoryStore`](crate::MemoryStore), the integration tests against
//! [`DynamoStore`](crate::DynamoStore) on the emulated DynamoDB, so the memory store the
//! functions' unit tests use behaves as the real one does. Each check panics with what broke.
//!
//! Every check makes records of its own (fresh ids and names), so they can share a table.

use std::time::Duration;

use chrono::Utc;
use domain::compliance::{ComplianceSummary, RuleResult, RuleState};
use domain::{
    Account, AccountChange, AccountFacts, AccountStatus, AccountType, AccountTypeStatus, ErrorName,
    LockChange, Named, Operation, Task, TaskStatus, Transition, Trigger,
};
use uuid::Uuid;

use crate::prelude::*;
use crate::{StoreError, TaskUpdate};

/// A name and an AWS account id no other check uses.
fn fresh(prefix: &str) -> (String, String) {
    let n = Uuid::new_v4().as_u128();
    (
        format!("{prefix}-{:x}", n % 0xffff_ffff),
        format!("{:012}", n % 1_000_000_000_000),
    )
}

fn discovered(name: &str, aws: &str) -> Account {
    domain::fixtures::discovered(name, Some(aws))
}

fn refused_as<T: std::fmt::Debug>(r: Result<T, StoreError>, name: ErrorName, what: &str) {
    match r {
        Err(e) => assert_eq!(e.name(), name, "{what}: {e}"),
        Ok(v) => panic!("{what}: not refused ({v:?})"),
    }
}

/// Names (case-insensitively) and AWS account ids are unique; a refused record writes nothing.
pub async fn names_and_aws_accounts_are_unique<S: AccountWrites>(s: &S) {
    let (name, aws) = fresh("unique");
    let first = discovered(&name, &aws);
    s.create_account(&first, Trigger::RecordDiscovered, None, "contract")
        .await
        .expect("the first record");
    let (_, other_aws) = fresh("unique");
    let same_name = discovered(&name.to_uppercase(), &other_aws);
    refused_as(
        s.create_account(&same_name, Trigger::RecordDiscovered, None, "contract")
            .await,
        ErrorName::NameTaken,
        "the same name in capitals",
    );
    let (other_name, _) = fresh("unique");
    let same_aws = discovered(&other_name, &aws);
    refused_as(
        s.create_account(&same_aws, Trigger::RecordDiscovered, None, "contract")
            .await,
        ErrorName::AwsAccountIdTaken,
        "the same AWS account",
    );
    assert!(s.get_account(same_name.id).await.unwrap().is_none());
    assert!(s.get_account_by_name(&other_name).await.unwrap().is_none());
    let by_name = s.get_account_by_name(&name.to_uppercase()).await.unwrap();
    assert_eq!(by_name.map(|v| v.value.id), Some(first.id));
    let by_aws = s.get_account_by_aws_id(&aws).await.unwrap();
    assert_eq!(by_aws.map(|v| v.version), Some(1));
    assert_eq!(s.audit_trail(first.id).await.unwrap().len(), 1);
}

/// A change is written only against the version read, with one audit event per version; a
/// rename moves the unique name; a refused change writes nothing.
pub async fn changes_are_conditional_and_audited<S: AccountWrites>(s: &S) {
    let (name, aws) = fresh("change");
    let a = discovered(&name, &aws);
    let v1 = s
        .create_account(&a, Trigger::RecordDiscovered, None, "contract")
        .await
        .unwrap();
    let (renamed, _) = fresh("renamed");
    let rename = AccountChange::facts(AccountFacts {
        name: Some(renamed.clone()),
        ..Default::default()
    });
    let v2 = s.apply(&v1, &rename, "contract").await.unwrap();
    assert_eq!((v2.version, v2.value.name.as_str()), (2, renamed.as_str()));
    assert!(
        s.get_account_by_name(&name).await.unwrap().is_none(),
        "the old name is free"
    );
    let stale = AccountChange::transition(Transition::to(Trigger::Close, AccountStatus::Closed));
    refused_as(
        s.apply(&v1, &stale, "contract").await,
        ErrorName::StaleRecord,
        "a stale read",
    );
    let refused = AccountChange::transition(Transition::to(
        Trigger::CompleteWorkflow,
        AccountStatus::Active,
    ));
    refused_as(
        s.update(a.id, &refused, "contract").await,
        ErrorName::TransitionRefused,
        "a transition the table does not have",
    );
    assert_eq!(s.get_account(a.id).await.unwrap(), Some(v2.clone()));
    let same = s.apply(&v2, &rename, "contract").await.unwrap();
    assert_eq!(same, v2, "a change already in effect is not written");
    let (other_name, other_aws) = fresh("other");
    let other = discovered(&other_name, &other_aws);
    s.create_account(&other, Trigger::RecordDiscovered, None, "contract")
        .await
        .unwrap();
    let into_taken = AccountChange::facts(AccountFacts {
        name: Some(other_name.to_uppercase()),
        ..Default::default()
    });
    refused_as(
        s.apply(&v2, &into_taken, "contract").await,
        ErrorName::NameTaken,
        "a rename into a name in use",
    );
    assert_eq!(s.get_account(a.id).await.unwrap(), Some(v2.clone()));
    let trail = s.audit_trail(a.id).await.unwrap();
    assert_eq!(
        trail.iter().map(|e| e.version).collect::<Vec<_>>(),
        [1, 2],
        "one event per version"
    );
}

/// An AWS account id is recorded once: a record without one cannot take one in use, and an
/// account keeps the one it has.
pub async fn aws_account_ids_stay_unique_when_learned<S: AccountWrites>(s: &S) {
    let (name, taken_aws) = fresh("learn");
    let holder = discovered(&name, &taken_aws);
    s.create_account(&holder, Trigger::RecordDiscovered, None, "contract")
        .await
        .unwrap();
    let (pending_name, _) = fresh("pending");
    let mut pending = discovered(&pending_name, "000000000000");
    pending.aws_account_id = None;
    let read = s
        .create_account(&pending, Trigger::RecordDiscovered, None, "contract")
        .await
        .unwrap();
    let learn = |aws: &str| {
        AccountChange::facts(AccountFacts {
            aws_account_id: Some(aws.to_owned()),
            ..Default::default()
        })
    };
    refused_as(
        s.apply(&read, &learn(&taken_aws), "contract").await,
        ErrorName::AwsAccountIdTaken,
        "an AWS account id another record has",
    );
    let (_, own) = fresh("learn");
    let learned = s.apply(&read, &learn(&own), "contract").await.unwrap();
    let found = s.get_account_by_aws_id(&own).await.unwrap();
    assert_eq!(found.map(|v| v.value.id), Some(pending.id));
    let (_, another) = fresh("learn");
    refused_as(
        s.apply(&learned, &learn(&another), "contract").await,
        ErrorName::AwsAccountIdChange,
        "a second AWS account id",
    );
}

/// Many records at once each get their own outcome, in order; a taken one does not stop the
/// others.
pub async fn many_records_get_one_outcome_each<S: AccountWrites>(s: &S) {
    let (taken_name, taken_aws) = fresh("many");
    let first = discovered(&taken_name, &taken_aws);
    s.create_account(&first, Trigger::RecordDiscovered, None, "contract")
        .await
        .unwrap();
    let fresh_ones: Vec<Account> = (0..3)
        .map(|_| {
            let (n, a) = fresh("many");
            discovered(&n, &a)
        })
        .collect();
    let (_, other_aws) = fresh("many");
    let clash = discovered(&taken_name, &other_aws);
    let batch = vec![
        fresh_ones[0].clone(),
        clash,
        fresh_ones[1].clone(),
        fresh_ones[2].clone(),
    ];
    let outcomes = s
        .create_accounts(&batch, Trigger::RecordDiscovered, "contract")
        .await
        .unwrap();
    let names: Vec<Option<ErrorName>> = outcomes
        .iter()
        .map(|o| o.as_ref().err().map(|e| e.name()))
        .collect();
    assert_eq!(names, [None, Some(ErrorName::NameTaken), None, None]);
    for a in &fresh_ones {
        assert!(
            s.get_account(a.id).await.unwrap().is_some(),
            "{} recorded",
            a.name
        );
    }
}

/// One operation at a time: a second task's start is refused; a start retried by the same task
/// changes nothing; ending it releases the lock and finishes the task, together.
pub async fn one_operation_at_a_time<S: AccountWrites>(s: &S) {
    let (name, aws) = fresh("lock");
    let d = discovered(&name, &aws);
    s.create_account(&d, Trigger::RecordDiscovered, None, "contract")
        .await
        .unwrap();
    let id = d.id;
    let first = Task::new(Operation::OnboardAccount, vec![id], Utc::now());
    let start = |task: &Task| {
        AccountChange::transition(Transition::to(
            Trigger::StartOnboarding,
            AccountStatus::Onboarding,
        ))
        .with_lock(LockChange::Acquire(task.id))
    };
    s.start_operation(id, &start(&first), &first, "contract")
        .await
        .unwrap();
    s.start_operation(id, &start(&first), &first, "contract")
        .await
        .expect("a retried start of the same task");
    let second = Task::new(Operation::OnboardAccount, vec![id], Utc::now());
    refused_as(
        s.start_operation(id, &start(&second), &second, "contract")
            .await,
        ErrorName::OperationInProgress,
        "a second operation",
    );
    assert!(
        s.get_task(second.id).await.unwrap().is_none(),
        "its task is not written"
    );
    let done = AccountChange::transition(Transition::to(
        Trigger::CompleteWorkflow,
        AccountStatus::Active,
    ))
    .with_lock(LockChange::Release(first.id));
    let update = TaskUpdate {
        id: first.id,
        status: TaskStatus::Succeeded,
        log: Some("done"),
    };
    let (account, task) = s
        .update_with_task(id, &done, Some(update.into()), "contract")
        .await
        .unwrap();
    assert_eq!(
        (account.value.status, account.value.user_task_id),
        (AccountStatus::Active, None)
    );
    assert_eq!(task.map(|t| t.value.status), Some(TaskStatus::Succeeded));
    refused_as(
        s.update_task(first.id, TaskStatus::Failed, Some("late"))
            .await,
        ErrorName::TaskFinished,
        "a finished task failing",
    );
    let again = s
        .update_task(first.id, TaskStatus::Succeeded, Some("done"))
        .await
        .unwrap();
    assert_eq!(
        again.value.logs,
        ["done"],
        "finishing it the same way again is a no-op"
    );
}

/// A workflow that could not start: the account ERROR with the reason, the lock released and the
/// task FAILED, in one write.
pub async fn an_unstarted_operation_is_abandoned_whole<S: AccountWrites>(s: &S) {
    let (name, aws) = fresh("abandon");
    let d = discovered(&name, &aws);
    s.create_account(&d, Trigger::RecordDiscovered, None, "contract")
        .await
        .unwrap();
    let task = Task::new(Operation::OnboardAccount, vec![d.id], Utc::now());
    let start = AccountChange::transition(Transition::to(
        Trigger::StartOnboarding,
        AccountStatus::Onboarding,
    ))
    .with_lock(LockChange::Acquire(task.id));
    s.start_operation(d.id, &start, &task, "contract")
        .await
        .unwrap();
    s.abandon_task(d.id, task.id, "ExecutionLimitExceeded", "contract")
        .await
        .unwrap();
    let a = s.get_account(d.id).await.unwrap().unwrap().value;
    assert_eq!(
        (a.status, a.status_reason.as_deref(), a.user_task_id),
        (AccountStatus::Error, Some("ExecutionLimitExceeded"), None)
    );
    let t = s.get_task(task.id).await.unwrap().unwrap().value;
    assert_eq!(t.status, TaskStatus::Failed);
}

/// Slots: at most `capacity` holders, each counted once, a release frees one.
pub async fn slots_admit_their_capacity<S: Slots>(s: &S) {
    let (name, _) = fresh("slots");
    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let lease = Duration::from_secs(60);
    assert!(s.acquire_slot(&name, 2, a, lease).await.unwrap());
    assert!(
        s.acquire_slot(&name, 2, a, lease).await.unwrap(),
        "idempotent per holder"
    );
    assert!(s.acquire_slot(&name, 2, b, lease).await.unwrap());
    assert!(
        !s.acquire_slot(&name, 2, c, lease).await.unwrap(),
        "all taken"
    );
    assert_eq!(s.slots_in_use(&name).await.unwrap(), 2);
    s.release_slot(&name, a).await.unwrap();
    s.release_slot(&name, a).await.unwrap();
    assert!(
        s.acquire_slot(&name, 2, c, lease).await.unwrap(),
        "the freed slot"
    );
}

/// Account Types are unique by name, case-insensitively.
pub async fn account_types_are_unique_by_name<S: AccountTypes>(s: &S) {
    let (name, _) = fresh("type");
    let t = s.ensure_account_type(&name).await.unwrap();
    let again = s.ensure_account_type(&name.to_uppercase()).await.unwrap();
    assert_eq!(again.id, t.id);
    let found = s.get_account_type_by_name(&name).await.unwrap();
    assert_eq!(found.map(|f| f.id), Some(t.id));
    assert!(
        s.list_account_types()
            .await
            .unwrap()
            .iter()
            .any(|x| x.id == t.id)
    );
}

/// A type is created, renamed and deleted only over the version read; its unique name moves
/// with it, and a deleted type gives its name up.
pub async fn account_types_change_over_the_version_read<S: AccountTypes>(s: &S) {
    let (name, _) = fresh("typed");
    let now = domain::timestamp::now();
    let t = AccountType {
        id: Uuid::new_v4(),
        name: name.clone(),
        status: AccountTypeStatus::Active,
        created_ts: now,
        modified_ts: now,
        ou: Some("ou-ab12-cdefgh34".into()),
    };
    s.create_account_type(&t).await.unwrap();
    let mut twin = t.clone();
    twin.id = Uuid::new_v4();
    twin.name = name.to_uppercase();
    assert!(matches!(
        s.create_account_type(&twin).await,
        Err(StoreError::AccountTypeNameTaken(_))
    ));
    let v1 = s.get_versioned_account_type(t.id).await.unwrap().unwrap();
    assert_eq!((v1.version, &v1.value), (1, &t));

    let renamed = AccountType {
        name: format!("{name}-renamed"),
        ..t.clone()
    };
    let v2 = s.replace_account_type(&v1, &renamed).await.unwrap();
    assert_eq!(v2.version, 2);
    assert!(
        matches!(
            s.replace_account_type(&v1, &t).await,
            Err(StoreError::StaleAccountType(_))
        ),
        "a change over an old version is refused"
    );
    assert_eq!(s.get_account_type_by_name(&name).await.unwrap(), None);
    assert_eq!(
        s.get_account_type_by_name(&renamed.name)
            .await
            .unwrap()
            .map(|x| x.id),
        Some(t.id)
    );
    // The old name is free again; the new one is not.
    let (other, _) = fresh("other");
    let o = AccountType {
        id: Uuid::new_v4(),
        name: other,
        ..t.clone()
    };
    s.create_account_type(&o).await.unwrap();
    let ov = s.get_versioned_account_type(o.id).await.unwrap().unwrap();
    let clash = AccountType {
        name: renamed.name.to_lowercase(),
        ..o.clone()
    };
    assert!(matches!(
        s.replace_account_type(&ov, &clash).await,
        Err(StoreError::AccountTypeNameTaken(_))
    ));
    assert_eq!(s.get_versioned_account_type(o.id).await.unwrap(), Some(ov));

    let deleted = AccountType {
        status: AccountTypeStatus::Deleted,
        ..renamed.clone()
    };
    let v3 = s.replace_account_type(&v2, &deleted).await.unwrap();
    assert_eq!(v3.value.status, AccountTypeStatus::Deleted);
    assert_eq!(
        s.get_account_type_by_name(&renamed.name).await.unwrap(),
        None
    );
    let successor = AccountType {
        id: Uuid::new_v4(),
        ..renamed.clone()
    };
    s.create_account_type(&successor).await.unwrap();
}

/// A score is kept beside the record's versions: it does not bump the version, an older score
/// never replaces a newer one, and a change written against a record read before a score is
/// stale (so neither overwrites the other).
pub async fn scores_never_go_back_and_never_overwrite_changes<S: AccountWrites + Compliance>(
    s: &S,
) {
    let (name, aws) = fresh("score");
    let d = discovered(&name, &aws);
    let read = s
        .create_account(&d, Trigger::RecordDiscovered, None, "contract")
        .await
        .unwrap();
    let summary = |score: u8, at| ComplianceSummary {
        score: Some(score),
        l1_score: None,
        l2_score: None,
        passed: 1,
        failed: 1,
        not_applicable: 0,
        unknown: 0,
        bundle_version: "contract".into(),
        evaluated_ts: at,
    };
    let results = vec![RuleResult {
        rule_id: "cis-1.8".into(),
        state: RuleState::Failed,
        reason: "no password policy".into(),
    }];
    let now = domain::timestamp::now();
    assert!(
        s.record_compliance(d.id, &summary(80, now), &results)
            .await
            .unwrap()
    );
    let older = now - chrono::Duration::minutes(5);
    assert!(
        !s.record_compliance(d.id, &summary(10, older), &results)
            .await
            .unwrap()
    );
    let scored = s.get_account(d.id).await.unwrap().unwrap();
    assert_eq!(scored.version, 1, "a score is not a new version");
    assert_eq!(
        scored.value.compliance.as_ref().and_then(|c| c.score),
        Some(80)
    );
    let rename = AccountChange::facts(AccountFacts {
        aws_account_name: Some("renamed".into()),
        ..Default::default()
    });
    refused_as(
        s.apply(&read, &rename, "contract").await,
        ErrorName::StaleRecord,
        "a change against the record as it was before the score",
    );
    let changed = s.update(d.id, &rename, "contract").await.unwrap();
    assert_eq!(
        changed.value.compliance.and_then(|c| c.score),
        Some(80),
        "the score stays"
    );
    let history = s.compliance_history(d.id, 10).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].1, ["cis-1.8"]);
    let latest = s.latest_compliance(d.id).await.unwrap();
    assert_eq!(latest.map(|(sm, _)| sm.score), Some(Some(80)));
    refused_as(
        s.record_compliance(Uuid::new_v4(), &summary(1, now), &results)
            .await,
        ErrorName::AccountNotFound,
        "an account not recorded",
    );
}

/// No completed bootstrap until one is recorded; then the latest one recorded.
pub async fn the_foundation_completes_once_recorded<S: FoundationStatus>(s: &S) {
    let before = s.foundation_completed().await.unwrap();
    let completed = crate::FoundationCompleted {
        execution: format!(
            "arn:aws:states:us-east-1:123456789012:execution:foundation:{}",
            Uuid::new_v4()
        ),
        completed_ts: domain::timestamp::now(),
    };
    assert_ne!(before.as_ref(), Some(&completed));
    s.record_foundation_completed(&completed).await.unwrap();
    assert_eq!(
        s.foundation_completed().await.unwrap(),
        Some(completed.clone())
    );
    s.record_foundation_completed(&completed).await.unwrap();
    assert_eq!(
        s.foundation_completed().await.unwrap(),
        Some(completed),
        "idempotent"
    );
}

/// A policy is created once, changed only over the version read, and removed only at it.
pub async fn policies_change_over_the_version_read<S: Policies>(s: &S) {
    use domain::policies::{AttachmentTarget, Policy, PolicyAttachment, PolicyOwner, PolicyStatus};
    let (name, _) = fresh("policy");
    let now = domain::timestamp::now();
    let p = Policy {
        id: Uuid::new_v4(),
        name,
        description: "denies everything".into(),
        content: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#
            .into(),
        status: PolicyStatus::CreateInProgress,
        owner: PolicyOwner::Organisation,
        aws_id: None,
        organisation_id: None,
        tags: [("team".to_owned(), "platform".to_owned())].into(),
        attachments: Vec::new(),
        created_ts: now,
        modified_ts: now,
        task: Some(Uuid::new_v4()),
    };
    s.create_policy(&p).await.unwrap();
    refused_as(
        s.create_policy(&p).await,
        ErrorName::StaleRecord,
        "a second create of one id",
    );
    let v1 = s.get_policy(p.id).await.unwrap().unwrap();
    assert_eq!((v1.version, &v1.value), (1, &p));
    let attached = Policy {
        status: PolicyStatus::Active,
        aws_id: Some("p-abcd1234".into()),
        attachments: vec![PolicyAttachment {
            id: Uuid::new_v4(),
            target: AttachmentTarget::AccountType {
                account_type_id: Uuid::new_v4(),
            },
            aws_target_id: "ou-ab12-cdefgh34".into(),
            created_ts: now,
            task: None,
        }],
        ..p.clone()
    };
    let v2 = s.replace_policy(&v1, &attached).await.unwrap();
    assert_eq!(v2.version, 2);
    refused_as(
        s.replace_policy(&v1, &p).await,
        ErrorName::StaleRecord,
        "a change over an old version",
    );
    refused_as(
        s.remove_policy(&v1).await,
        ErrorName::StaleRecord,
        "a removal at an old version",
    );
    assert_eq!(s.get_policy(p.id).await.unwrap(), Some(v2.clone()));
    assert!(
        s.list_policies().await.unwrap().contains(&v2),
        "listed at its version"
    );
    s.remove_policy(&v2).await.unwrap();
    assert_eq!(s.get_policy(p.id).await.unwrap(), None);
}

/// Every check, in turn.
pub async fn all<
    S: AccountWrites + AccountTypes + Slots + Compliance + FoundationStatus + Policies,
>(
    s: &S,
) {
    the_foundation_completes_once_recorded(s).await;
    names_and_aws_accounts_are_unique(s).await;
    changes_are_conditional_and_audited(s).await;
    aws_account_ids_stay_unique_when_learned(s).await;
    many_records_get_one_outcome_each(s).await;
    one_operation_at_a_time(s).await;
    an_unstarted_operation_is_abandoned_whole(s).await;
    slots_admit_their_capacity(s).await;
    account_types_are_unique_by_name(s).await;
    account_types_change_over_the_version_read(s).await;
    policies_change_over_the_version_read(s).await;
    scores_never_go_back_and_never_overwrite_changes(s).await;
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_memory_store_keeps_the_contract() {
        super::all(&crate::MemoryStore::new()).await;
    }
}
