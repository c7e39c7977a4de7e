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
//! goes MAINTENANCE under a new task holding its lock, then the Account Assurance state machine
//! runs under that task (`{"AccountId", "TaskId", "Maintenance": true}`) and makes it ACTIVE again,
//! or ERROR with the failing concern's reason.

use std::future::Future;

use chrono::Utc;
use http_edge::{ApiRequest, authorize, refused_operation, serve, start_or_undo};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use shared::api::{AccountTypeRef, ApiError, OnboardAccountRequest, parse_uuid, task_envelope};
use shared::auth::{AccessPolicy, Permission};
use shared::config::{self, ConfigError};
use shared::domain::{Account, AccountRole, AccountStatus, AccountType, Operation, Task};
use shared::lifecycle::{AccountChange, AccountFacts, LockChange, Transition, Trigger};
use shared::store::{Store, StoreError};
use shared::workflows::{StartWorkflow, StateMachine};
use uuid::Uuid;

pub const ONBOARD_ACCOUNT: &str = "POST /20190206/accounts/onboard";
pub const ASSURE_ACCOUNT: &str = "POST /20190206/accounts/{account_id}/assurance";

/// What onboarding needs from the store.
pub trait OnboardRecords: Send + Sync {
    fn account_type(
        &self,
        reference: &AccountTypeRef,
    ) -> impl Future<Output = Result<Option<AccountType>, StoreError>> + Send;
    fn account_of(
        &self,
        aws_account_id: &str,
    ) -> impl Future<Output = Result<Option<Account>, StoreError>> + Send;
    fn account(&self, id: Uuid)
    -> impl Future<Output = Result<Option<Account>, StoreError>> + Send;
    /// Applies `change` (which takes the lock for `task`) and records `task`, in one write.
    fn start(
        &self,
        account: &Account,
        change: &AccountChange,
        task: &Task,
        actor: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Marks the account ERROR and its task FAILED when its workflow could not be started.
    fn abandon(
        &self,
        account: &Account,
        task: &Task,
        reason: &str,
        actor: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A repair that could not be started: the account ACTIVE again (nothing was changed in
    /// it), its lock released, the task FAILED with `reason`, in one write.
    fn stand_down(
        &self,
        account: &Account,
        task: &Task,
        reason: &str,
        actor: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

pub struct Onboarder<S, W> {
    pub store: S,
    /// The onboarding state machine.
    pub workflows: W,
    /// The Account Assurance state machine (repairs).
    pub assurance: W,
    pub access: AccessPolicy,
}

impl Onboarder<Store, StateMachine> {
    /// `TABLE_NAME`, `ACCESS_ROLES`, `ONBOARD_STATE_MACHINE_ARN`, `ASSURANCE_STATE_MACHINE_ARN`.
    pub fn from_env(sdk: &shared::aws::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Onboarder {
            store: Store::new(
                aws_sdk_dynamodb::Client::new(sdk),
                config::required("TABLE_NAME")?,
            ),
            workflows: StateMachine::new(sdk, config::required("ONBOARD_STATE_MACHINE_ARN")?),
            assurance: StateMachine::new(sdk, config::required("ASSURANCE_STATE_MACHINE_ARN")?),
            access: AccessPolicy::from_json(&config::required("ACCESS_ROLES")?)?,
        })
    }
}

pub async fn handle<S: OnboardRecords, W: StartWorkflow>(
    onboarder: &Onboarder<S, W>,
    request: Request,
) -> Result<Response<Body>, lambda_http::Error> {
    serve(request, |req| async move { route(onboarder, &req).await }).await
}

pub async fn route<S: OnboardRecords, W: StartWorkflow>(
    o: &Onboarder<S, W>,
    req: &ApiRequest,
) -> Result<Value, ApiError> {
    if req.route_key != ONBOARD_ACCOUNT && req.route_key != ASSURE_ACCOUNT {
        return Err(ApiError::not_found(format!("no route {:?}", req.route_key)));
    }
    authorize(&o.access, req.principal.as_deref(), Permission::Mutate)?;
    req.only_query(&[])?;
    if req.route_key == ASSURE_ACCOUNT {
        return reassure(o, req).await;
    }
    let body = OnboardAccountRequest::parse(req.body.as_deref())?;
    let internal = |e: StoreError| {
        tracing::error!(error = %e, request_id = req.request_id, "store failed");
        ApiError::internal(&req.request_id)
    };

    let account_type = o
        .store
        .account_type(&body.account_type)
        .await
        .map_err(internal)?
        .ok_or_else(|| ApiError::bad_request(format!("AccountType: {}", body.account_type)))?;
    account_type
        .admits_member_accounts()
        .map_err(|e| ApiError::bad_request(format!("AccountType: {e}")))?;
    let account = o
        .store
        .account_of(&body.aws_account_id)
        .await
        .map_err(internal)?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "AWS account {} has not been discovered; run POST /20190206/accounts/discover/{} first",
                body.aws_account_id, body.aws_account_id
            ))
        })?;

    let task = Task::new(Operation::OnboardAccount, vec![account.id], Utc::now());
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
    let actor = req.principal.clone().unwrap_or_default();
    o.store
        .start(&account, &change, &task, &actor)
        .await
        .map_err(|e| {
            refused_operation(
                e,
                |from| {
                    ApiError::conflict(
                        "NotOnboardable",
                        format!(
                            "account {} is {}; only DISCOVERED accounts, or ERROR ones, can be onboarded",
                            account.id,
                            from.map_or("not recorded", AccountStatus::as_str)
                        ),
                    )
                },
                |e| match e {
                    StoreError::NameTaken(name) => ApiError::conflict(
                        "NameTaken",
                        format!("an account named {name:?} already exists"),
                    ),
                    e => internal(e),
                },
            )
        })?;

    let input = json!({"AccountId": account.id, "TaskId": task.id});
    start_or_undo(
        &o.workflows,
        "the onboarding workflow",
        &task,
        &input,
        &req.request_id,
        async |reason| o.store.abandon(&account, &task, &reason, &actor).await,
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
async fn reassure<S: OnboardRecords, W: StartWorkflow>(
    o: &Onboarder<S, W>,
    req: &ApiRequest,
) -> Result<Value, ApiError> {
    let id = parse_uuid(req.path_param("account_id"))
        .map_err(|e| ApiError::bad_request(format!("account_id: {e}")))?;
    match req.body.as_deref().map(str::trim) {
        None | Some("" | "{}") => {}
        Some(body) => match serde_json::from_str::<Value>(body) {
            Ok(Value::Object(fields)) if fields.is_empty() => {}
            _ => return Err(ApiError::bad_request("the body must be empty or {}")),
        },
    }
    let internal = |e: StoreError| {
        tracing::error!(error = %e, request_id = req.request_id, "store failed");
        ApiError::internal(&req.request_id)
    };
    let account = o
        .store
        .account(id)
        .await
        .map_err(internal)?
        .ok_or_else(|| ApiError::not_found(format!("account {id} does not exist")))?;
    if account.account_role == AccountRole::Management {
        return Err(ApiError::conflict(
            "NotAssurable",
            "the management account is not assured: the service runs there, without a provisioning role",
        ));
    }
    let task = Task::new(Operation::HardenAccount, vec![id], Utc::now());
    let change = AccountChange::transition(Transition::to(
        Trigger::StartMaintenance,
        AccountStatus::Maintenance,
    ))
    .with_lock(LockChange::Acquire(task.id));
    let actor = req.principal.clone().unwrap_or_default();
    o.store
        .start(&account, &change, &task, &actor)
        .await
        .map_err(|e| {
            refused_operation(
                e,
                |from| {
                    ApiError::conflict(
                        "NotAssurable",
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
    let input = json!({"AccountId": id, "TaskId": task.id, "Maintenance": true});
    start_or_undo(
        &o.assurance,
        "the Account Assurance workflow",
        &task,
        &input,
        &req.request_id,
        async |reason| o.store.stand_down(&account, &task, &reason, &actor).await,
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

impl OnboardRecords for Store {
    async fn account_type(
        &self,
        reference: &AccountTypeRef,
    ) -> Result<Option<AccountType>, StoreError> {
        self.find_account_type(reference).await
    }
    async fn account_of(&self, aws_account_id: &str) -> Result<Option<Account>, StoreError> {
        Ok(self
            .get_account_by_aws_id(aws_account_id)
            .await?
            .map(|v| v.value))
    }
    async fn start(
        &self,
        account: &Account,
        change: &AccountChange,
        task: &Task,
        actor: &str,
    ) -> Result<(), StoreError> {
        self.start_operation(account.id, change, task, actor).await
    }
    async fn abandon(
        &self,
        account: &Account,
        task: &Task,
        reason: &str,
        actor: &str,
    ) -> Result<(), StoreError> {
        self.abandon_task(account.id, task.id, reason, actor).await
    }
    async fn account(&self, id: Uuid) -> Result<Option<Account>, StoreError> {
        Ok(self.get_account(id).await?.map(|v| v.value))
    }
    async fn stand_down(
        &self,
        account: &Account,
        task: &Task,
        reason: &str,
        actor: &str,
    ) -> Result<(), StoreError> {
        self.stand_down_task(account.id, task.id, reason, actor)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::AccountTypeStatus;
    use shared::fixtures::RecordedStarts;
    use std::collections::HashMap;
    use std::sync::Mutex;
    use uuid::Uuid;

    const ADMIN: &str = "arn:aws:iam::123456789012:role/Admin";
    const USER: &str = "arn:aws:iam::123456789012:role/Dev";
    const LEGACY: &str = "111122223333";

    /// Records by AWS account id; `start` applies the change as the store does.
    #[derive(Default)]
    struct Memory {
        types: Vec<AccountType>,
        accounts: Mutex<HashMap<String, Account>>,
        tasks: Mutex<Vec<Task>>,
        abandoned: Mutex<Vec<String>>,
    }

    impl OnboardRecords for Memory {
        async fn account_type(
            &self,
            r: &AccountTypeRef,
        ) -> Result<Option<AccountType>, StoreError> {
            Ok(self
                .types
                .iter()
                .find(|t| match r {
                    AccountTypeRef::Id(id) => t.id == *id,
                    AccountTypeRef::Name(n) => t.name.eq_ignore_ascii_case(n),
                })
                .cloned())
        }
        async fn account_of(&self, id: &str) -> Result<Option<Account>, StoreError> {
            Ok(self.accounts.lock().unwrap().get(id).cloned())
        }
        async fn start(
            &self,
            account: &Account,
            change: &AccountChange,
            task: &Task,
            _: &str,
        ) -> Result<(), StoreError> {
            let mut accounts = self.accounts.lock().unwrap();
            let key = account.aws_account_id.clone().unwrap();
            if let Some(next) = accounts[&key].apply(change, Utc::now())? {
                accounts.insert(key, next);
            }
            self.tasks.lock().unwrap().push(task.clone());
            Ok(())
        }
        async fn abandon(&self, _: &Account, _: &Task, r: &str, _: &str) -> Result<(), StoreError> {
            self.abandoned.lock().unwrap().push(r.to_owned());
            Ok(())
        }
        async fn account(&self, id: Uuid) -> Result<Option<Account>, StoreError> {
            let accounts = self.accounts.lock().unwrap();
            Ok(accounts.values().find(|a| a.id == id).cloned())
        }
        async fn stand_down(
            &self,
            account: &Account,
            task: &Task,
            reason: &str,
            _: &str,
        ) -> Result<(), StoreError> {
            let change = AccountChange::transition(Transition::to(
                Trigger::CompleteWorkflow,
                AccountStatus::Active,
            ))
            .with_lock(LockChange::Release(task.id));
            let mut accounts = self.accounts.lock().unwrap();
            let key = account.aws_account_id.clone().unwrap();
            if let Some(next) = accounts[&key].apply(&change, Utc::now())? {
                accounts.insert(key, next);
            }
            self.abandoned.lock().unwrap().push(reason.to_owned());
            Ok(())
        }
    }

    fn account_type(name: &str) -> AccountType {
        AccountType {
            id: Uuid::new_v4(),
            name: name.into(),
            status: AccountTypeStatus::Active,
            created_ts: Utc::now(),
            modified_ts: Utc::now(),
        }
    }

    fn onboarder(status: AccountStatus) -> Onboarder<Memory, RecordedStarts> {
        let account = shared::fixtures::account_in(status, "legacy", Some(LEGACY));
        Onboarder {
            store: Memory {
                types: vec![account_type("default"), account_type("foundation-logging")],
                accounts: Mutex::new(HashMap::from([(LEGACY.to_owned(), account)])),
                ..Default::default()
            },
            workflows: RecordedStarts::default(),
            assurance: RecordedStarts::default(),
            access: AccessPolicy::from_json(&format!(
                r#"{{"{ADMIN}": "admin", "{USER}": "user"}}"#
            ))
            .unwrap(),
        }
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

    fn stored(o: &Onboarder<Memory, RecordedStarts>) -> Account {
        o.store.accounts.lock().unwrap()[LEGACY].clone()
    }

    #[tokio::test]
    async fn a_discovered_account_starts_onboarding_under_a_task_that_holds_its_lock() {
        let o = onboarder(AccountStatus::Discovered);
        let body = route(&o, &post(ADMIN, LEGACY_BODY)).await.unwrap();
        assert_eq!(body["Detail"]["Operation"], "accounts:OnboardAccount");
        assert_eq!(body["Detail"]["OperationStatus"], "STARTED");
        let account = stored(&o);
        let task = o.store.tasks.lock().unwrap()[0].clone();
        assert_eq!(account.status, AccountStatus::Onboarding);
        assert_eq!(account.user_task_id, Some(task.id));
        assert_eq!(account.account_type, Some(o.store.types[0].id));
        assert_eq!(account.tags.as_ref().unwrap()["Team"], "data");
        assert_eq!(body["TaskId"], task.id.to_string());
        let executions = o.workflows.executions.lock().unwrap();
        assert_eq!(executions[0].0, task.id.to_string());
        assert_eq!(executions[0].1["AccountId"], account.id.to_string());
    }

    #[tokio::test]
    async fn an_account_whose_onboarding_failed_may_be_onboarded_again() {
        let o = onboarder(AccountStatus::Error);
        route(&o, &post(ADMIN, LEGACY_BODY)).await.unwrap();
        let account = stored(&o);
        assert_eq!(account.status, AccountStatus::Onboarding);
        assert_eq!(account.status_reason, None);
    }

    #[tokio::test]
    async fn a_busy_account_or_one_already_managed_is_a_conflict() {
        let o = onboarder(AccountStatus::Discovered);
        route(&o, &post(ADMIN, LEGACY_BODY)).await.unwrap();
        let e = route(&o, &post(ADMIN, LEGACY_BODY)).await.unwrap_err();
        assert_eq!((e.status, e.error), (409, "OperationInProgress"));

        for status in [
            AccountStatus::Active,
            AccountStatus::Closed,
            AccountStatus::Initializing,
            AccountStatus::Suspended,
        ] {
            let o = onboarder(status);
            let e = route(&o, &post(ADMIN, LEGACY_BODY)).await.unwrap_err();
            assert_eq!((e.status, e.error), (409, "NotOnboardable"), "{status}");
            assert_eq!(stored(&o).status, status);
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
            let o = onboarder(AccountStatus::Discovered);
            let e = route(&o, &post(principal, &body)).await.unwrap_err();
            assert_eq!(e.status, status, "{body}");
            assert_eq!(stored(&o).status, AccountStatus::Discovered);
            assert!(o.store.tasks.lock().unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn a_workflow_that_cannot_start_leaves_an_error_that_says_so() {
        let mut o = onboarder(AccountStatus::Discovered);
        o.workflows.refusal = Some("ExecutionLimitExceeded".into());
        let e = route(&o, &post(ADMIN, LEGACY_BODY)).await.unwrap_err();
        assert_eq!(e.status, 500);
        assert_eq!(
            o.store.abandoned.lock().unwrap()[0],
            "the onboarding workflow could not be started: ExecutionLimitExceeded"
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
        let o = onboarder(AccountStatus::Active);
        let id = stored(&o).id;
        let answer = route(&o, &repair(ADMIN, &id.to_string(), Some("{}")))
            .await
            .unwrap();
        assert_eq!(answer["Detail"]["OperationStatus"], "STARTED");
        let account = stored(&o);
        assert_eq!(account.status, AccountStatus::Maintenance);
        let task = answer["TaskId"].as_str().unwrap();
        assert_eq!(account.user_task_id.unwrap().to_string(), task);
        let started = o.assurance.executions.lock().unwrap();
        assert_eq!(started[0].0, task);
        assert_eq!(
            started[0].1,
            json!({"AccountId": id, "TaskId": task, "Maintenance": true})
        );
        assert!(o.workflows.executions.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn repairs_that_cannot_be_made_are_refused_without_a_write() {
        for (status, principal, account_id, body, expected) in [
            (
                AccountStatus::Discovered,
                ADMIN,
                None,
                None,
                (409, "NotAssurable"),
            ),
            (
                AccountStatus::Error,
                ADMIN,
                None,
                None,
                (409, "NotAssurable"),
            ),
            (
                AccountStatus::Maintenance,
                ADMIN,
                None,
                None,
                (409, "NotAssurable"),
            ),
            (AccountStatus::Active, USER, None, None, (403, "Forbidden")),
            (
                AccountStatus::Active,
                ADMIN,
                Some("nope"),
                None,
                (400, "ValidationError"),
            ),
            (
                AccountStatus::Active,
                ADMIN,
                None,
                Some(r#"{"Force": true}"#),
                (400, "ValidationError"),
            ),
            (
                AccountStatus::Active,
                ADMIN,
                Some("5b1f0b8e-3d4c-4c55-9d7e-9a4f6a0d2f11"),
                None,
                (404, "NotFound"),
            ),
        ] {
            let o = onboarder(status);
            let before = stored(&o);
            let id = account_id.map_or(before.id.to_string(), str::to_owned);
            let e = route(&o, &repair(principal, &id, body)).await.unwrap_err();
            assert_eq!(
                (e.status, e.error),
                expected,
                "{status} {principal} {id} {body:?}"
            );
            assert_eq!(stored(&o), before, "{status}: nothing written");
            assert!(o.assurance.executions.lock().unwrap().is_empty());
        }
        // A busy account: another operation holds the lock.
        let o = onboarder(AccountStatus::Active);
        o.store
            .accounts
            .lock()
            .unwrap()
            .get_mut(LEGACY)
            .unwrap()
            .user_task_id = Some(Uuid::new_v4());
        let e = route(&o, &repair(ADMIN, &stored(&o).id.to_string(), None))
            .await
            .unwrap_err();
        assert_eq!((e.status, e.error), (409, "OperationInProgress"));
        // The management account runs the service and has no provisioning role.
        let o = onboarder(AccountStatus::Active);
        o.store
            .accounts
            .lock()
            .unwrap()
            .get_mut(LEGACY)
            .unwrap()
            .account_role = AccountRole::Management;
        let e = route(&o, &repair(ADMIN, &stored(&o).id.to_string(), None))
            .await
            .unwrap_err();
        assert_eq!((e.status, e.error), (409, "NotAssurable"));
        assert_eq!(stored(&o).status, AccountStatus::Active);
    }

    #[tokio::test]
    async fn a_repair_that_cannot_start_leaves_the_account_active_and_the_task_failed() {
        let mut o = onboarder(AccountStatus::Active);
        o.assurance.refusal = Some("ThrottlingException: Rate exceeded".into());
        let e = route(&o, &repair(ADMIN, &stored(&o).id.to_string(), None))
            .await
            .unwrap_err();
        assert_eq!(e.status, 500);
        let account = stored(&o);
        assert_eq!(
            (account.status, account.user_task_id),
            (AccountStatus::Active, None)
        );
        assert_eq!(
            o.store.abandoned.lock().unwrap()[0],
            "the Account Assurance workflow could not be started: ThrottlingException: Rate exceeded"
        );
    }
}
