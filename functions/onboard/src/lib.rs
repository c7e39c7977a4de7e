//! The API that runs Account Assurance on an existing AWS account:
//!
//! `POST /20190206/accounts/onboard` brings an account the service discovered under management.
//!
//! Validates the body (Stax `accounts.OnboardAccount`) and the caller's role, then, in one
//! conditional write, moves the account DISCOVERED (or ERROR after a failed onboarding) to
//! ONBOARDING, gives it its Account Type (and name and tags when asked), and records the task
//! that holds the account's operation lock. The onboarding workflow — placement in the type's
//! OU, Account Assurance, ACTIVE — runs in an execution named after the task. Any refusal (400,
//! 403, 404, 409) writes nothing.
//!
//! `POST /20190206/accounts/{account_id}/assurance` (an extension, see openapi.json) re-runs
//! Account Assurance on an ACTIVE account to repair drift: in one conditional write the account
//! goes MAINTENANCE under a new task holding its lock ([`AccountChange::start_maintenance`], the
//! one way into MAINTENANCE), then the Account Assurance state machine runs under that task
//! (`{"AccountId", "TaskId"}`, its one input shape) and, finding the account in MAINTENANCE,
//! makes it ACTIVE again, or ERROR with the failing concern's reason.

use aws::StateMachine;
use chrono::Utc;
use domain::config::{self, ConfigError};
use domain::{
    AccountChange, AccountFacts, AccountRole, AccountStatus, ErrorName, ExecutionStates,
    LockChange, Operation, StartWorkflow, Task, Transition, Trigger,
};
use edge::stax::{OnboardAccountRequest, parse_uuid};
use edge::{
    AccessPolicy, ApiError, ApiRequest, Permission, authorize, foundation_ready,
    member_account_type, refused_operation, start_operation_taking_over, start_or_undo,
    task_envelope,
};
use serde_json::{Value, json};
use store::{AccountTypes, AccountWrites, DynamoStore, FoundationStatus, StoreError};

pub const ONBOARD_ACCOUNT: &str = "POST /20190206/accounts/onboard";
pub const ASSURE_ACCOUNT: &str = "POST /20190206/accounts/{account_id}/assurance";

pub struct Onboarder<S, W> {
    pub store: S,
    /// The onboarding state machine.
    pub workflows: W,
    /// The Account Assurance state machine (repairs).
    pub assurance: W,
    pub access: AccessPolicy,
}

impl Onboarder<DynamoStore, StateMachine> {
    /// `TABLE_NAME`, `ACCESS_ROLES`, `ONBOARD_STATE_MACHINE_ARN`, `ASSURANCE_STATE_MACHINE_ARN`.
    pub fn from_env(sdk: &aws::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Onboarder {
            store: DynamoStore::from_env(sdk)?,
            workflows: StateMachine::new(sdk, config::required("ONBOARD_STATE_MACHINE_ARN")?),
            assurance: StateMachine::new(sdk, config::required("ASSURANCE_STATE_MACHINE_ARN")?),
            access: AccessPolicy::from_json(&config::required("ACCESS_ROLES")?)?,
        })
    }
}

pub async fn route<
    S: AccountWrites + AccountTypes + FoundationStatus,
    W: StartWorkflow + ExecutionStates,
>(
    o: &Onboarder<S, W>,
    req: ApiRequest,
) -> Result<Value, ApiError> {
    let req = &req;
    if req.route_key != ONBOARD_ACCOUNT && req.route_key != ASSURE_ACCOUNT {
        return Err(ApiError::not_found(format!("no route {:?}", req.route_key)));
    }
    authorize(&o.access, req.principal.as_deref(), Permission::Mutate)?;
    req.only_query(&[])?;
    if req.route_key == ASSURE_ACCOUNT {
        return reassure(o, req).await;
    }
    let body = OnboardAccountRequest::parse(req.body.as_deref())?;
    let internal = |e: StoreError| req.internal(&e);

    let account_type = member_account_type(&o.store, &body.account_type, req).await?;
    foundation_ready(&o.store, req).await?;
    let account = o
        .store
        .get_account_by_aws_id(&body.aws_account_id)
        .await
        .map_err(internal)?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "AWS account {} has not been discovered; run POST /20190206/accounts/discover/{} first",
                body.aws_account_id, body.aws_account_id
            ))
        })?
        .value;

    // The foundation accounts (and the management account) are the bootstrap's to record and
    // assure: onboarding one as a member account would take it out of its foundation type.
    if account.account_role != AccountRole::Member {
        return Err(ApiError::conflict(
            ErrorName::NotOnboardable,
            format!(
                "AWS account {} is the organization's {} account; the foundation bootstrap records it, \
                 only member accounts are onboarded",
                body.aws_account_id,
                account.account_role.as_str()
            ),
        ));
    }
    let task = Task::for_workflow(
        Operation::OnboardAccount,
        vec![account.id],
        Utc::now(),
        &o.workflows,
    );
    let change = AccountChange::transition(Transition::to(
        Trigger::StartOnboarding,
        AccountStatus::Onboarding,
    ))
    .with_facts(AccountFacts {
        account_type: Some(account_type.id),
        name: body.name.clone(),
        tags: body.tags.clone(),
        ..Default::default()
    })
    .with_lock(LockChange::Acquire(task.id));
    let actor = req.actor();
    start_operation_taking_over(&o.store, &o.workflows, account.id, &change, &task, &actor)
        .await
        .map_err(|e| {
            refused_operation(
                e,
                |from| {
                    ApiError::conflict(
                        ErrorName::NotOnboardable,
                        format!(
                            "account {} is {}; only DISCOVERED accounts, or ERROR ones, can be onboarded",
                            account.id,
                            from.map_or("not recorded", AccountStatus::as_str)
                        ),
                    )
                },
                |e| match e {
                    e @ StoreError::NameTaken(_) => {
                        ApiError::conflict(ErrorName::NameTaken, e.to_string())
                    }
                    e => internal(e),
                },
            )
        })?;

    let input = json!({"AccountId": account.id, "TaskId": task.id,
        "LeaveOrganisationalUnit": body.leave_organisational_unit});
    start_or_undo(
        &o.workflows,
        "the onboarding workflow",
        &task,
        &input,
        &req.request_id,
        async |reason| {
            o.store
                .abandon_task(account.id, task.id, &reason, &actor)
                .await
        },
    )
    .await?;
    let name = body.name.as_deref().unwrap_or(&account.name);
    tracing::info!(account = %account.id, task = %task.id, aws_account_id = body.aws_account_id, "onboarding started");
    Ok(task_envelope(
        &task,
        account.organisation_id,
        &req.request_id,
        "Account Onboard Requested",
        format!("Onboarding AWS account {} as {name}", body.aws_account_id),
        Some(json!({
            "Id": account.id,
            "Name": name,
            "AwsAccountId": body.aws_account_id,
            "AccountType": account_type.id,
            "Tags": body.tags,
            "OrganisationId": account.organisation_id,
            "Operation": "ONBOARD",
        })),
    ))
}

/// `POST /20190206/accounts/{account_id}/assurance`: Account Assurance again on an ACTIVE
/// account, to repair drift. The body is empty or `{}`.
async fn reassure<S: AccountWrites, W: StartWorkflow + ExecutionStates>(
    o: &Onboarder<S, W>,
    req: &ApiRequest,
) -> Result<Value, ApiError> {
    let id = parse_uuid(req.path_param("account_id"))
        .map_err(|e| ApiError::bad_request(format!("account_id: {e}")))?;
    req.empty_body()?;
    let internal = |e: StoreError| req.internal(&e);
    let account = o
        .store
        .get_account(id)
        .await
        .map_err(internal)?
        .ok_or_else(|| ApiError::not_found(format!("account {id} does not exist")))?
        .value;
    if account.account_role == AccountRole::Management {
        return Err(ApiError::conflict(
            ErrorName::NotAssurable,
            "the management account is not assured: the service runs there, without a provisioning role",
        ));
    }
    let task = Task::for_workflow(Operation::HardenAccount, vec![id], Utc::now(), &o.assurance);
    let change = AccountChange::start_maintenance(task.id);
    let actor = req.actor();
    start_operation_taking_over(&o.store, &o.assurance, account.id, &change, &task, &actor)
        .await
        .map_err(|e| {
            refused_operation(
                e,
                |from| {
                    ApiError::conflict(
                        ErrorName::NotAssurable,
                        format!(
                            "account {id} is {}; Account Assurance re-runs on ACTIVE accounts \
                             (DISCOVERED and ERROR ones are onboarded)",
                            from.map_or("not recorded", AccountStatus::as_str)
                        ),
                    )
                },
                internal,
            )
        })?;
    let input = json!({"AccountId": id, "TaskId": task.id});
    start_or_undo(
        &o.assurance,
        "the Account Assurance workflow",
        &task,
        &input,
        &req.request_id,
        async |reason| o.store.stand_down_task(id, task.id, &reason, &actor).await,
    )
    .await?;
    tracing::info!(account = %id, task = %task.id, "Account Assurance re-run started");
    Ok(task_envelope(
        &task,
        account.organisation_id,
        &req.request_id,
        "Account Assurance Requested",
        format!("Re-running Account Assurance on account {}", account.name),
        Some(json!({
            "Id": id,
            "Name": account.name,
            "AwsAccountId": account.aws_account_id,
            "OrganisationId": account.organisation_id,
            "Operation": "HARDEN",
        })),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::fixtures::RecordedStarts;
    use domain::{Account, TaskStatus};
    use std::collections::HashMap;
    use store::{AccountReads, MemoryStore, Tasks};

    const ADMIN: &str = "arn:aws:iam::123456789012:role/Admin";
    const USER: &str = "arn:aws:iam::123456789012:role/Dev";
    const LEGACY: &str = "111122223333";

    type Api = Onboarder<MemoryStore, RecordedStarts>;

    async fn onboarder(status: AccountStatus) -> Api {
        let store = MemoryStore::new();
        store.ensure_account_type("default").await.unwrap();
        store
            .ensure_account_type("foundation-logging")
            .await
            .unwrap();
        store.insert(domain::fixtures::account_in(status, "legacy", Some(LEGACY)));
        store.complete_foundation();
        Onboarder {
            store,
            workflows: RecordedStarts::default(),
            assurance: RecordedStarts::default(),
            access: AccessPolicy::from_json(&format!(
                r#"{{"{ADMIN}": "admin", "{USER}": "user"}}"#
            ))
            .unwrap(),
        }
    }

    /// Changes the stored account directly (test setup).
    async fn set(o: &Api, change: impl FnOnce(&mut Account)) {
        let mut account = stored(o).await;
        change(&mut account);
        o.store.insert(account);
    }

    async fn task_of(o: &Api, account: &Account) -> Task {
        let id = account.user_task_id.expect("a task holds the account");
        o.store.get_task(id).await.unwrap().unwrap().value
    }

    fn post(principal: &str, body: &str) -> ApiRequest {
        ApiRequest {
            route_key: ONBOARD_ACCOUNT.into(),
            principal: Some(principal.into()),
            body: Some(body.into()),
            request_id: "req-1".into(),
            ..ApiRequest::default()
        }
    }

    const LEGACY_BODY: &str =
        r#"{"AwsAccountId": "111122223333", "AccountType": "default", "Tags": {"Team": "data"}}"#;

    async fn stored(o: &Api) -> Account {
        o.store
            .get_account_by_aws_id(LEGACY)
            .await
            .unwrap()
            .unwrap()
            .value
    }

    #[tokio::test]
    async fn a_discovered_account_starts_onboarding_under_a_task_that_holds_its_lock() {
        let o = onboarder(AccountStatus::Discovered).await;
        let body = route(&o, post(ADMIN, LEGACY_BODY)).await.unwrap();
        assert_eq!(body["Detail"]["Operation"], "accounts:OnboardAccount");
        assert_eq!(body["Detail"]["OperationStatus"], "STARTED");
        let account = stored(&o).await;
        let task = task_of(&o, &account).await;
        assert_eq!(account.status, AccountStatus::Onboarding);
        assert_eq!(account.user_task_id, Some(task.id));
        let default = o.store.get_account_type_by_name("default").await.unwrap();
        assert_eq!(account.account_type, default.map(|t| t.id));
        assert_eq!(account.tags.as_ref().unwrap()["Team"], "data");
        assert_eq!(body["TaskId"], task.id.to_string());
        let executions = o.workflows.executions.lock().unwrap();
        assert_eq!(executions[0].0, task.id.to_string());
        assert_eq!(executions[0].1["AccountId"], account.id.to_string());
    }

    /// The account is locked by a task of another execution, `name`: running, or ended as
    /// `ended` says.
    async fn held_by_execution(o: &Api, name: &str, ended: Option<&str>) -> Task {
        let account = stored(o).await;
        let holder = Task::new(Operation::OnboardAccount, vec![account.id], Utc::now())
            .run_by(o.workflows.execution_id(name));
        o.workflows
            .executions
            .lock()
            .unwrap()
            .push((name.to_owned(), json!({})));
        if let Some(status) = ended {
            o.workflows
                .ended
                .lock()
                .unwrap()
                .insert(o.workflows.execution_id(name), status.to_owned());
        }
        // Both fakes answer for the other's executions too (a lock may be any workflow's).
        o.assurance
            .executions
            .lock()
            .unwrap()
            .extend(o.workflows.executions.lock().unwrap().clone());
        *o.assurance.ended.lock().unwrap() = o.workflows.ended.lock().unwrap().clone();
        o.store.insert_task(holder.clone());
        set(o, |a| a.user_task_id = Some(holder.id)).await;
        holder
    }

    #[tokio::test]
    async fn a_lock_whose_execution_ended_is_taken_over_and_the_onboarding_starts() {
        let o = onboarder(AccountStatus::Onboarding).await;
        let dead = held_by_execution(&o, "stopped-by-hand", Some("ABORTED")).await;
        let body = route(&o, post(ADMIN, LEGACY_BODY)).await.unwrap();
        let account = stored(&o).await;
        assert_eq!(account.status, AccountStatus::Onboarding);
        assert_eq!(
            account.user_task_id.map(|t| t.to_string()),
            body["TaskId"].as_str().map(str::to_owned)
        );
        let dead = o.store.get_task(dead.id).await.unwrap().unwrap().value;
        assert_eq!(dead.status, TaskStatus::Failed);
        let reason = dead.logs.last().unwrap();
        assert!(reason.contains("stopped-by-hand ended ABORTED"), "{reason}");
        assert!(reason.contains("its lock was taken over"), "{reason}");
        let trail = o.store.audit_trail(account.id).await.unwrap();
        let statuses: Vec<_> = trail.iter().filter_map(|e| e.to).collect();
        assert_eq!(
            statuses[statuses.len() - 2..],
            [AccountStatus::Error, AccountStatus::Onboarding]
        );
    }

    #[tokio::test]
    async fn an_account_left_onboarding_without_a_lock_is_recorded_error_and_onboarded() {
        // Its workflow released the lock but could not record its outcome (ReleaseLock).
        let o = onboarder(AccountStatus::Onboarding).await;
        route(&o, post(ADMIN, LEGACY_BODY)).await.unwrap();
        let account = stored(&o).await;
        assert_eq!(account.status, AccountStatus::Onboarding);
        let trail = o.store.audit_trail(account.id).await.unwrap();
        let error = trail
            .iter()
            .find(|e| e.to == Some(AccountStatus::Error))
            .unwrap();
        assert!(
            error
                .reason
                .as_deref()
                .unwrap_or_default()
                .contains("left ONBOARDING without a workflow"),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn a_foundation_account_is_never_onboarded_even_in_error() {
        for role in [
            AccountRole::Security,
            AccountRole::Logging,
            AccountRole::Management,
        ] {
            let o = onboarder(AccountStatus::Error).await;
            set(&o, |a| a.account_role = role).await;
            let snapshot = o.store.snapshot();
            let e = route(&o, post(ADMIN, LEGACY_BODY)).await.unwrap_err();
            assert_eq!(
                (e.status, e.error),
                (409, ErrorName::NotOnboardable),
                "{role}"
            );
            assert!(e.cause.contains(role.as_str()), "{}", e.cause);
            assert_eq!(o.store.snapshot(), snapshot, "{role}: nothing written");
            assert!(o.workflows.executions.lock().unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn onboarding_waits_for_the_foundation() {
        let o = onboarder(AccountStatus::Discovered).await;
        let o = Onboarder {
            store: MemoryStore::new(),
            ..o
        };
        o.store.ensure_account_type("default").await.unwrap();
        o.store.insert(domain::fixtures::account_in(
            AccountStatus::Discovered,
            "legacy",
            Some(LEGACY),
        ));
        let before = o.store.snapshot();
        let e = route(&o, post(ADMIN, LEGACY_BODY)).await.unwrap_err();
        assert_eq!((e.status, e.error), (409, ErrorName::FoundationNotReady));
        assert_eq!(o.store.snapshot(), before);
        assert!(o.workflows.executions.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_ou_to_leave_goes_to_the_workflow() {
        let o = onboarder(AccountStatus::Discovered).await;
        let body = r#"{"AwsAccountId": "111122223333", "AccountType": "default", "LeaveOrganisationalUnit": "ou-ab12-cd34ef56"}"#;
        route(&o, post(ADMIN, body)).await.unwrap();
        let executions = o.workflows.executions.lock().unwrap();
        assert_eq!(
            executions[0].1["LeaveOrganisationalUnit"],
            "ou-ab12-cd34ef56"
        );
    }

    #[tokio::test]
    async fn an_account_whose_onboarding_failed_may_be_onboarded_again() {
        let o = onboarder(AccountStatus::Error).await;
        route(&o, post(ADMIN, LEGACY_BODY)).await.unwrap();
        let account = stored(&o).await;
        assert_eq!(account.status, AccountStatus::Onboarding);
        assert_eq!(account.status_reason, None);
    }

    #[tokio::test]
    async fn a_busy_account_or_one_already_managed_is_a_conflict() {
        let o = onboarder(AccountStatus::Discovered).await;
        route(&o, post(ADMIN, LEGACY_BODY)).await.unwrap();
        let e = route(&o, post(ADMIN, LEGACY_BODY)).await.unwrap_err();
        assert_eq!((e.status, e.error), (409, ErrorName::OperationInProgress));

        // (An in-flight status without a lock is an abandoned workflow's: see
        // an_account_left_onboarding_without_a_lock_is_recorded_error_and_onboarded.)
        for status in [
            AccountStatus::Active,
            AccountStatus::Closed,
            AccountStatus::Suspended,
        ] {
            let o = onboarder(status).await;
            let e = route(&o, post(ADMIN, LEGACY_BODY)).await.unwrap_err();
            assert_eq!(
                (e.status, e.error),
                (409, ErrorName::NotOnboardable),
                "{status}"
            );
            assert_eq!(stored(&o).await.status, status);
            assert!(o.workflows.executions.lock().unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn unknown_accounts_types_and_callers_are_refused_without_a_write() {
        for (principal, body, status) in [
            (
                ADMIN,
                LEGACY_BODY.replace("111122223333", "999988887777"),
                404,
            ),
            (ADMIN, LEGACY_BODY.replace("default", "production"), 400),
            (
                ADMIN,
                LEGACY_BODY.replace("default", "foundation-logging"),
                400,
            ),
            (ADMIN, r#"{"AwsAccountId": "111122223333"}"#.to_owned(), 400),
            (USER, LEGACY_BODY.to_owned(), 403),
        ] {
            let o = onboarder(AccountStatus::Discovered).await;
            let before = o.store.snapshot();
            let e = route(&o, post(principal, &body)).await.unwrap_err();
            assert_eq!(e.status, status, "{body}");
            assert_eq!(stored(&o).await.status, AccountStatus::Discovered);
            assert_eq!(o.store.snapshot(), before, "{body}: nothing written");
        }
    }

    #[tokio::test]
    async fn a_workflow_that_cannot_start_leaves_an_error_that_says_so() {
        let mut o = onboarder(AccountStatus::Discovered).await;
        o.workflows.refusal = Some("ExecutionLimitExceeded".into());
        let e = route(&o, post(ADMIN, LEGACY_BODY)).await.unwrap_err();
        assert_eq!(e.status, 500);
        let account = stored(&o).await;
        let reason = "the onboarding workflow could not be started: ExecutionLimitExceeded";
        assert_eq!(
            (
                account.status,
                account.status_reason.as_deref(),
                account.user_task_id
            ),
            (AccountStatus::Error, Some(reason), None)
        );
    }

    fn repair(principal: &str, account_id: &str, body: Option<&str>) -> ApiRequest {
        ApiRequest {
            route_key: ASSURE_ACCOUNT.into(),
            principal: Some(principal.into()),
            path: HashMap::from([("account_id".to_owned(), account_id.to_owned())]),
            body: body.map(str::to_owned),
            request_id: "req-2".into(),
            ..ApiRequest::default()
        }
    }

    #[tokio::test]
    async fn a_repair_of_an_active_account_runs_assurance_under_a_maintenance_task() {
        let o = onboarder(AccountStatus::Active).await;
        let id = stored(&o).await.id;
        let answer = route(&o, repair(ADMIN, &id.to_string(), Some("{}")))
            .await
            .unwrap();
        assert_eq!(answer["Detail"]["OperationStatus"], "STARTED");
        let account = stored(&o).await;
        assert_eq!(account.status, AccountStatus::Maintenance);
        let task = answer["TaskId"].as_str().unwrap();
        assert_eq!(account.user_task_id.unwrap().to_string(), task);
        let started = o.assurance.executions.lock().unwrap();
        assert_eq!(started[0].0, task);
        assert_eq!(started[0].1, json!({"AccountId": id, "TaskId": task}));
        assert!(o.workflows.executions.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_abandoned_lock_is_not_taken_over_for_a_request_that_would_be_refused() {
        // A repair of an account an onboarding abandoned: after the takeover it would be ERROR,
        // which a repair does not start from; so nothing is taken over or written.
        let o = onboarder(AccountStatus::Onboarding).await;
        held_by_execution(&o, "stopped-by-hand", Some("ABORTED")).await;
        let snapshot = o.store.snapshot();
        let e = route(&o, repair(ADMIN, &stored(&o).await.id.to_string(), None))
            .await
            .unwrap_err();
        assert_eq!((e.status, e.error), (409, ErrorName::OperationInProgress));
        assert_eq!(o.store.snapshot(), snapshot, "nothing written");
    }

    #[tokio::test]
    async fn a_maintenance_left_without_its_workflow_stands_down_and_the_repair_runs() {
        let o = onboarder(AccountStatus::Maintenance).await;
        let id = stored(&o).await.id;
        let answer = route(&o, repair(ADMIN, &id.to_string(), None))
            .await
            .unwrap();
        let account = stored(&o).await;
        assert_eq!(account.status, AccountStatus::Maintenance);
        assert_eq!(
            account.user_task_id.map(|t| t.to_string()).as_deref(),
            answer["TaskId"].as_str()
        );
        let trail = o.store.audit_trail(id).await.unwrap();
        let statuses: Vec<_> = trail.iter().filter_map(|e| e.to).collect();
        assert_eq!(
            statuses,
            [AccountStatus::Active, AccountStatus::Maintenance]
        );
    }

    #[tokio::test]
    async fn repairs_that_cannot_be_made_are_refused_without_a_write() {
        for (status, principal, account_id, body, expected) in [
            (
                AccountStatus::Discovered,
                ADMIN,
                None,
                None,
                (409, ErrorName::NotAssurable),
            ),
            (
                AccountStatus::Error,
                ADMIN,
                None,
                None,
                (409, ErrorName::NotAssurable),
            ),
            (
                AccountStatus::Active,
                USER,
                None,
                None,
                (403, ErrorName::Forbidden),
            ),
            (
                AccountStatus::Active,
                ADMIN,
                Some("nope"),
                None,
                (400, ErrorName::ValidationError),
            ),
            (
                AccountStatus::Active,
                ADMIN,
                None,
                Some(r#"{"Force": true}"#),
                (400, ErrorName::ValidationError),
            ),
            (
                AccountStatus::Active,
                ADMIN,
                Some("5b1f0b8e-3d4c-4c55-9d7e-9a4f6a0d2f11"),
                None,
                (404, ErrorName::NotFound),
            ),
        ] {
            let o = onboarder(status).await;
            let before = stored(&o).await;
            let snapshot = o.store.snapshot();
            let id = account_id.map_or(before.id.to_string(), str::to_owned);
            let e = route(&o, repair(principal, &id, body)).await.unwrap_err();
            assert_eq!(
                (e.status, e.error),
                expected,
                "{status} {principal} {id} {body:?}"
            );
            assert_eq!(o.store.snapshot(), snapshot, "{status}: nothing written");
            assert!(o.assurance.executions.lock().unwrap().is_empty());
        }
        // A busy account: another operation holds the lock, and its execution runs.
        let o = onboarder(AccountStatus::Active).await;
        let holder = held_by_execution(&o, "running-elsewhere", None).await;
        let snapshot = o.store.snapshot();
        let e = route(&o, repair(ADMIN, &stored(&o).await.id.to_string(), None))
            .await
            .unwrap_err();
        assert_eq!((e.status, e.error), (409, ErrorName::OperationInProgress));
        assert!(e.cause.contains(&holder.id.to_string()), "{}", e.cause);
        assert_eq!(
            o.store.snapshot(),
            snapshot,
            "a running execution's lock is kept"
        );
        // The management account runs the service and has no provisioning role.
        let o = onboarder(AccountStatus::Active).await;
        set(&o, |a| a.account_role = AccountRole::Management).await;
        let e = route(&o, repair(ADMIN, &stored(&o).await.id.to_string(), None))
            .await
            .unwrap_err();
        assert_eq!((e.status, e.error), (409, ErrorName::NotAssurable));
        assert_eq!(stored(&o).await.status, AccountStatus::Active);
    }

    #[tokio::test]
    async fn a_repair_that_cannot_start_leaves_the_account_active_and_the_task_failed() {
        let mut o = onboarder(AccountStatus::Active).await;
        o.assurance.refusal = Some("ThrottlingException: Rate exceeded".into());
        let e = route(&o, repair(ADMIN, &stored(&o).await.id.to_string(), None))
            .await
            .unwrap_err();
        assert_eq!(e.status, 500);
        let account = stored(&o).await;
        assert_eq!(
            (account.status, account.user_task_id),
            (AccountStatus::Active, None)
        );
        let trail = o.store.audit_trail(account.id).await.unwrap();
        let task = trail[0].lock_acquired_by.expect("the repair's task");
        let task = o.store.get_task(task).await.unwrap().unwrap().value;
        assert_eq!(task.status, TaskStatus::Failed);
        assert_eq!(
            task.logs.last().map(String::as_str),
            Some(
                "the Account Assurance workflow could not be started: ThrottlingException: Rate exceeded"
            )
        );
    }
}
