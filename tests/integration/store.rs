//! The store against the emulator's DynamoDB: uniqueness, conditional transitions, the operation
//! lock, audit events, and that every refused write leaves the table exactly as it was.

use std::collections::BTreeSet;

use chrono::Utc;
use domain::AccountFilter;
use domain::{AccountChange, LifecycleError, LockChange, Transition, Trigger};
use domain::{AccountStatus, Operation, Task, TaskStatus};
use integration_tests::Stack;
use store::{DynamoStore, StoreError};
use uuid::Uuid;

use crate::{aws_account_id, discovered, race};
#[allow(unused_imports)]
use store::prelude::*;

const RACERS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_identical_transitions_apply_once_with_one_audit_event() {
    let store = Stack::shared().fresh_store().await;
    let read = store
        .create_account(
            &discovered("bakery", &aws_account_id()),
            Trigger::RecordDiscovered,
            None,
            "test",
        )
        .await
        .unwrap();
    let change = AccountChange::transition(Transition::to(
        Trigger::StartOnboarding,
        AccountStatus::Onboarding,
    ));
    let results = race(RACERS, |i| {
        let (store, read, change) = (store.clone(), read.clone(), change.clone());
        async move { store.apply(&read, &change, &format!("racer-{i}")).await }
    })
    .await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    let stale = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Stale { .. })))
        .count();
    assert_eq!((won, stale), (1, RACERS - 1), "{results:?}");

    let trail = store.audit_trail(read.value.id).await.unwrap();
    let onboarding: Vec<_> = trail
        .iter()
        .filter(|e| e.trigger == Some(Trigger::StartOnboarding))
        .collect();
    assert_eq!(onboarding.len(), 1);
    assert_eq!(
        (onboarding[0].from, onboarding[0].to),
        (
            Some(AccountStatus::Discovered),
            Some(AccountStatus::Onboarding)
        )
    );
    assert_eq!(trail.iter().map(|e| e.version).collect::<Vec<_>>(), [1, 2]);
    let now = store.get_account(read.value.id).await.unwrap().unwrap();
    assert_eq!(
        (now.value.status, now.version),
        (AccountStatus::Onboarding, 2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_read_and_update_calls_apply_once() {
    let store = Stack::shared().fresh_store().await;
    let id = store
        .create_account(
            &discovered("pantry", &aws_account_id()),
            Trigger::RecordDiscovered,
            None,
            "test",
        )
        .await
        .unwrap()
        .value
        .id;
    let change = AccountChange::transition(Transition::to(
        Trigger::StartOnboarding,
        AccountStatus::Onboarding,
    ));
    let results = race(RACERS, |_| {
        let (store, change) = (store.clone(), change.clone());
        async move { store.update(id, &change, "racer").await }
    })
    .await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    // The losers re-read, find the account ONBOARDING already, and are refused by the table.
    let refused = results
        .iter()
        .filter(|r| {
            matches!(
                r,
                Err(StoreError::Lifecycle(
                    LifecycleError::TransitionRefused { .. }
                ))
            )
        })
        .count();
    assert_eq!((won, refused), (1, RACERS - 1), "{results:?}");
    assert_eq!(store.audit_trail(id).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_creates_with_one_name_record_one_account() {
    let store = Stack::shared().fresh_store().await;
    let results = race(RACERS, |i| {
        let store = store.clone();
        // The same name in different cases: names are unique case-insensitively.
        let name = if i % 2 == 0 { "Bakery" } else { "bAKERY" };
        let account = discovered(name, &aws_account_id());
        async move {
            store
                .create_account(&account, Trigger::RecordDiscovered, None, "test")
                .await
        }
    })
    .await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    let taken = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::NameTaken(_))))
        .count();
    assert_eq!((won, taken), (1, RACERS - 1), "{results:?}");
    assert_eq!(
        store
            .list_accounts(&AccountFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
    let snapshot = store.snapshot().await.unwrap();
    let pks: Vec<String> = snapshot
        .iter()
        .map(|i| i["pk"].as_s().unwrap().clone())
        .collect();
    assert_eq!(
        pks.iter().filter(|p| p.starts_with("ACCOUNTNAME#")).count(),
        1
    );
    assert_eq!(
        pks.iter().filter(|p| p.starts_with("AWSACCOUNT#")).count(),
        1,
        "no orphaned unique items"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_records_of_one_aws_account_record_one_account() {
    let store = Stack::shared().fresh_store().await;
    let aws = aws_account_id();
    let results = race(RACERS, |i| {
        let store = store.clone();
        let account = discovered(&format!("discovered-{i}"), &aws);
        async move {
            store
                .create_account(&account, Trigger::RecordDiscovered, None, "test")
                .await
        }
    })
    .await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    let taken = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::AwsAccountIdTaken(_))))
        .count();
    assert_eq!((won, taken), (1, RACERS - 1));
    let found = store.get_account_by_aws_id(&aws).await.unwrap().unwrap();
    assert_eq!(
        store
            .list_accounts(&AccountFilter::default())
            .await
            .unwrap(),
        vec![found.value]
    );
}

/// Runs `write`, expects it refused with `expected`, and checks the table did not change.
async fn refused<T: std::fmt::Debug>(
    store: &DynamoStore,
    expected: &str,
    write: impl std::future::Future<Output = Result<T, StoreError>>,
) {
    let before = store.snapshot().await.unwrap();
    let err = write.await.expect_err("the write is refused");
    assert_eq!(domain::Named::name(&err).as_str(), expected, "{err}");
    assert_eq!(
        store.snapshot().await.unwrap(),
        before,
        "a refused write ({expected}) changed the table"
    );
}

#[tokio::test]
async fn every_refused_write_leaves_the_table_unchanged() {
    let store = Stack::shared().fresh_store().await;
    let aws = aws_account_id();
    let bakery = store
        .create_account(
            &discovered("bakery", &aws),
            Trigger::RecordDiscovered,
            None,
            "test",
        )
        .await
        .unwrap();
    let id = bakery.value.id;

    refused(
        &store,
        "NameTaken",
        store.create_account(
            &discovered("BAKERY", &aws_account_id()),
            Trigger::RecordDiscovered,
            None,
            "test",
        ),
    )
    .await;
    refused(
        &store,
        "AwsAccountIdTaken",
        store.create_account(
            &discovered("other", &aws),
            Trigger::RecordDiscovered,
            None,
            "test",
        ),
    )
    .await;
    refused(
        &store,
        "AccountExists",
        store.create_account(&bakery.value, Trigger::RecordDiscovered, None, "test"),
    )
    .await;

    let complete = AccountChange::transition(Transition::to(
        Trigger::CompleteWorkflow,
        AccountStatus::Active,
    ));
    refused(
        &store,
        "TransitionRefused",
        store.apply(&bakery, &complete, "test"),
    )
    .await;
    let no_reason = AccountChange::transition(Transition {
        trigger: Trigger::RecheckRole,
        to: AccountStatus::Error,
        reason: None,
    });
    refused(
        &store,
        "MissingReason",
        store.apply(&bakery, &no_reason, "test"),
    )
    .await;

    let (holder, other) = (Uuid::new_v4(), Uuid::new_v4());
    let locked = store.acquire_lock(id, holder, "test").await.unwrap();
    assert_eq!(locked.value.user_task_id, Some(holder));
    refused(
        &store,
        "OperationInProgress",
        store.acquire_lock(id, other, "test"),
    )
    .await;
    refused(
        &store,
        "NotLockHolder",
        store.release_lock(id, other, "test"),
    )
    .await;
    // `bakery` was read before the lock was taken: a write based on it is stale.
    let onboard = AccountChange::transition(Transition::to(
        Trigger::StartOnboarding,
        AccountStatus::Onboarding,
    ));
    refused(
        &store,
        "StaleRecord",
        store.apply(&bakery, &onboard, "test"),
    )
    .await;
    refused(
        &store,
        "AccountNotFound",
        store.update(Uuid::new_v4(), &onboard, "test"),
    )
    .await;

    let task = Task::new(Operation::OnboardAccount, vec![id], Utc::now());
    store.create_task(&task).await.unwrap();
    refused(&store, "TaskExists", store.create_task(&task)).await;
    store
        .update_task(
            task.id,
            TaskStatus::Failed,
            Some("the provisioning role could not be assumed"),
        )
        .await
        .unwrap();
    refused(
        &store,
        "TaskFinished",
        store.update_task(task.id, TaskStatus::Running, None),
    )
    .await;
    refused(
        &store,
        "TaskNotFound",
        store.update_task(Uuid::new_v4(), TaskStatus::Running, None),
    )
    .await;
}

#[tokio::test]
async fn the_lock_and_a_transition_change_together_and_are_audited() {
    let store = Stack::shared().fresh_store().await;
    let read = store
        .create_account(
            &discovered("larder", &aws_account_id()),
            Trigger::RecordDiscovered,
            None,
            "test",
        )
        .await
        .unwrap();
    let task = Uuid::new_v4();
    let start = AccountChange::transition(Transition::to(
        Trigger::StartOnboarding,
        AccountStatus::Onboarding,
    ))
    .with_lock(LockChange::Acquire(task));
    let onboarding = store.apply(&read, &start, "onboard").await.unwrap();
    assert_eq!(
        (onboarding.value.status, onboarding.value.user_task_id),
        (AccountStatus::Onboarding, Some(task))
    );
    // A retried step re-applying the same lock change writes nothing.
    let again = store
        .acquire_lock(read.value.id, task, "onboard")
        .await
        .unwrap();
    assert_eq!(again.version, onboarding.version);

    let fail = AccountChange::transition(Transition::error(
        Trigger::FailWorkflow,
        "GuardDuty could not be enabled",
    ))
    .with_lock(LockChange::Release(task));
    let failed = store.apply(&onboarding, &fail, "onboard").await.unwrap();
    assert_eq!(failed.value.status, AccountStatus::Error);
    assert_eq!(
        failed.value.status_reason.as_deref(),
        Some("GuardDuty could not be enabled")
    );
    assert_eq!(failed.value.user_task_id, None);

    let trail = store.audit_trail(read.value.id).await.unwrap();
    assert_eq!(trail.len(), 3);
    assert_eq!(trail[1].lock_acquired_by, Some(task));
    assert_eq!(trail[2].lock_released_by, Some(task));
    assert_eq!(
        trail[2].reason.as_deref(),
        Some("GuardDuty could not be enabled")
    );
    assert!(trail.iter().all(|e| e.account_id == read.value.id));
}

#[tokio::test]
async fn listing_filters_by_every_stax_filter() {
    let store = Stack::shared().fresh_store().await;
    let mut ids = Vec::new();
    for name in ["alpha", "beta", "gamma"] {
        ids.push(
            store
                .create_account(
                    &discovered(name, &aws_account_id()),
                    Trigger::RecordDiscovered,
                    None,
                    "test",
                )
                .await
                .unwrap()
                .value,
        );
    }
    let names = |accounts: Vec<domain::Account>| {
        accounts
            .into_iter()
            .map(|a| a.name)
            .collect::<BTreeSet<_>>()
    };
    let by = |f: AccountFilter| {
        let store = store.clone();
        async move { names(store.list_accounts(&f).await.unwrap()) }
    };
    assert_eq!(by(AccountFilter::default()).await.len(), 3);
    assert_eq!(
        by(AccountFilter {
            ids: Some([ids[0].id].into()),
            ..Default::default()
        })
        .await,
        ["alpha".to_owned()].into()
    );
    assert_eq!(
        by(AccountFilter {
            aws_account_ids: Some([ids[1].aws_account_id.clone().unwrap()].into()),
            ..Default::default()
        })
        .await,
        ["beta".to_owned()].into()
    );
    assert_eq!(
        by(AccountFilter {
            names: Some(["GAMMA".to_owned()].into()),
            ..Default::default()
        })
        .await,
        ["gamma".to_owned()].into()
    );
    assert_eq!(
        by(AccountFilter {
            // One name twice: DynamoDB's BatchGetItem refuses a key named twice.
            names: Some(["GAMMA".to_owned(), "gamma".to_owned()].into()),
            ..Default::default()
        })
        .await,
        ["gamma".to_owned()].into()
    );
    assert_eq!(
        by(AccountFilter {
            name_contains: Some("ET".into()),
            ..Default::default()
        })
        .await,
        ["beta".to_owned()].into()
    );
    assert!(
        by(AccountFilter {
            statuses: Some([AccountStatus::Active].into()),
            ..Default::default()
        })
        .await
        .is_empty()
    );
    assert!(
        by(AccountFilter {
            ids: Some([Uuid::new_v4()].into()),
            ..Default::default()
        })
        .await
        .is_empty()
    );
}

#[tokio::test]
async fn account_types_are_created_once_per_name() {
    let store = Stack::shared().fresh_store().await;
    let types = race(10, |_| {
        let store = store.clone();
        async move { store.ensure_account_type("foundation-security").await }
    })
    .await;
    let ids: BTreeSet<Uuid> = types.into_iter().map(|t| t.unwrap().id).collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(store.list_account_types().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counted_slots_admit_no_more_than_their_capacity() {
    let store = Stack::shared().fresh_store().await;
    let lease = std::time::Duration::from_secs(3600);
    let taken = race(10, |_| {
        let (store, holder) = (store.clone(), Uuid::new_v4());
        async move {
            (
                holder,
                store
                    .acquire_slot("create", 2, holder, lease)
                    .await
                    .unwrap(),
            )
        }
    })
    .await;
    assert_eq!(taken.iter().filter(|(_, t)| *t).count(), 2);
    assert_eq!(store.slots_in_use("create").await.unwrap(), 2);
    let winner = taken.iter().find(|(_, t)| *t).unwrap().0;
    assert!(
        store
            .acquire_slot("create", 2, winner, lease)
            .await
            .unwrap(),
        "idempotent for its holder"
    );
    store.release_slot("create", winner).await.unwrap();
    let waiting = taken.iter().find(|(_, t)| !*t).unwrap().0;
    assert!(
        store
            .acquire_slot("create", 2, waiting, lease)
            .await
            .unwrap(),
        "a released slot is free again"
    );
}

/// The same rules the in-memory store keeps for the unit tests (`store::contract`), kept by
/// DynamoDB: what the functions' unit tests rely on holds for the real table.
#[tokio::test]
async fn the_dynamodb_store_keeps_the_same_contract_as_the_memory_store() {
    let store = Stack::shared().fresh_store().await;
    store::contract::all(&store).await;
}
