//! `POST /20190206/accounts`: the start of the service's main job.
//!
//! Validates the body (Stax `accounts.CreateAccount`) and the caller's role, records the account
//! `INITIALIZING` (Origin STAX) together with its task — which holds the account's operation
//! lock — and starts the create workflow in an execution named after the task, then answers with
//! the Stax task envelope. Any refusal (400, 403, 409) writes nothing.
//!
//! A name already in use is a 409, except for an account whose creation failed before AWS made
//! it (ERROR, Origin STAX, no AWS account): asking again for that name retries the creation on
//! the same record (ERROR → INITIALIZING under a new task), so a limit raised or a quota freed
//! lets the same request succeed. The root email carries the record's id, so a CreateAccount
//! request of the earlier attempt that did go through is adopted, never doubled.

use std::future::Future;

use chrono::Utc;
use http_edge::{ApiRequest, authorize, refused_operation, serve, start_or_undo};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use shared::api::{AccountTypeRef, ApiError, CreateAccountRequest, task_envelope};
use shared::auth::{AccessPolicy, Permission};
use shared::config::{self, ConfigError};
use shared::domain::{Account, AccountRole, AccountStatus, AccountType, Operation, Origin, Task};
use shared::lifecycle::{AccountChange, AccountFacts, LockChange, NewAccount, Transition, Trigger};
use shared::store::{Store, StoreError};
use shared::workflows::{StartWorkflow, StateMachine};
use uuid::Uuid;

pub const CREATE_ACCOUNT: &str = "POST /20190206/accounts";

/// What creating needs from the store.
pub trait AccountRecords: Send + Sync {
    fn account_type(
        &self,
        reference: &AccountTypeRef,
    ) -> impl Future<Output = Result<Option<AccountType>, StoreError>> + Send;
    /// The management account's record (written by the foundation bootstrap).
    fn management_account(
        &self,
        aws_account_id: &str,
    ) -> impl Future<Output = Result<Option<Account>, StoreError>> + Send;
    fn record(
        &self,
        account: &Account,
        task: &Task,
        actor: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The account that holds `name`.
    fn account_named(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<Account>, StoreError>> + Send;
    /// Applies `change` to the account's latest version together with the new `task`.
    fn restart(
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
}

pub struct Creator<S, W> {
    pub store: S,
    pub workflows: W,
    pub access: AccessPolicy,
    pub management_account_id: String,
}

impl Creator<Store, StateMachine> {
    /// `TABLE_NAME`, `ACCESS_ROLES`, `MANAGEMENT_ACCOUNT_ID`, `CREATE_STATE_MACHINE_ARN`.
    pub fn from_env(sdk: &shared::aws::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Creator {
            store: Store::new(
                aws_sdk_dynamodb::Client::new(sdk),
                config::required("TABLE_NAME")?,
            ),
            workflows: StateMachine::new(sdk, config::required("CREATE_STATE_MACHINE_ARN")?),
            access: AccessPolicy::from_json(&config::required("ACCESS_ROLES")?)?,
            management_account_id: config::required("MANAGEMENT_ACCOUNT_ID")?,
        })
    }
}

pub async fn handle<S: AccountRecords, W: StartWorkflow>(
    creator: &Creator<S, W>,
    request: Request,
) -> Result<Response<Body>, lambda_http::Error> {
    serve(request, |req| async move { route(creator, &req).await }).await
}

pub async fn route<S: AccountRecords, W: StartWorkflow>(
    c: &Creator<S, W>,
    req: &ApiRequest,
) -> Result<Value, ApiError> {
    if req.route_key != CREATE_ACCOUNT {
        return Err(ApiError::not_found(format!("no route {:?}", req.route_key)));
    }
    authorize(&c.access, req.principal.as_deref(), Permission::Mutate)?;
    req.only_query(&[])?;
    let body = CreateAccountRequest::parse(req.body.as_deref())?;
    let internal = |e: StoreError| {
        tracing::error!(error = %e, request_id = req.request_id, "store failed");
        ApiError::internal(&req.request_id)
    };

    let account_type = c
        .store
        .account_type(&body.account_type)
        .await
        .map_err(internal)?
        .ok_or_else(|| ApiError::bad_request(format!("AccountType: {}", body.account_type)))?;
    account_type
        .admits_member_accounts()
        .map_err(|e| ApiError::bad_request(format!("AccountType: {e}")))?;
    let management = c.store.management_account(&c.management_account_id).await.map_err(internal)?.ok_or_else(|| {
        ApiError::conflict(
            "FoundationNotReady",
            "the foundation bootstrap has not recorded the management account yet; run it first",
        )
    })?;

    let now = Utc::now();
    let id = Uuid::new_v4();
    let task = Task::new(Operation::CreateAccount, vec![id], now);
    let account = Account::create(
        id,
        NewAccount {
            organisation_id: management.organisation_id,
            name: body.name.clone(),
            aws_account_id: None,
            aws_account_name: Some(body.name.clone()),
            aws_account_alias: body.aws_account_alias.clone(),
            email: None,
            account_type: Some(account_type.id),
            account_role: AccountRole::Member,
            origin: Origin::Stax,
            tags: body.tags.clone(),
            orgs_ou_id: None,
            task: Some(task.id),
        },
        &Transition::to(Trigger::RequestCreate, AccountStatus::Initializing),
        now,
    )
    .map_err(|e| {
        tracing::error!(error = %e, "the lifecycle refused a new account");
        ApiError::internal(&req.request_id)
    })?;
    let actor = req.principal.clone().unwrap_or_default();
    let (account, task, message) = match c.store.record(&account, &task, &actor).await {
        Ok(()) => (account, task, format!("Creating account {}", body.name)),
        Err(StoreError::NameTaken(name)) => {
            let holder = c.store.account_named(&name).await.map_err(internal)?;
            match holder {
                Some(failed) if creation_failed_before_aws(&failed) => {
                    let task = retry(c, &failed, &body, account_type.id, &actor, internal).await?;
                    let message = format!("Retrying the creation of account {}", failed.name);
                    (failed, task, message)
                }
                holder => return Err(name_taken(&name, holder.as_ref())),
            }
        }
        Err(e) => return Err(internal(e)),
    };
    let id = account.id;

    let input = json!({"AccountId": id, "TaskId": task.id});
    start_or_undo(
        &c.workflows,
        "the create workflow",
        &task,
        &input,
        &req.request_id,
        async |reason| c.store.abandon(&account, &task, &reason, &actor).await,
    )
    .await?;
    tracing::info!(account = %id, task = %task.id, name = body.name, "account creation started");
    Ok(task_envelope(
        &task,
        management.organisation_id,
        &req.request_id,
        "Account Create Requested",
        message,
        Some(json!({
            "Name": body.name,
            "AccountType": account_type.id,
            "AwsAccountAlias": body.aws_account_alias,
            "Tags": body.tags,
            "OrganisationId": management.organisation_id,
            "Operation": "CREATE",
        })),
    ))
}

/// An account whose creation failed before AWS made an AWS account for it: asking for its name
/// again retries it.
fn creation_failed_before_aws(account: &Account) -> bool {
    account.status == AccountStatus::Error
        && account.origin == Origin::Stax
        && account.aws_account_id.is_none()
        && account.user_task_id.is_none()
}

fn name_taken(name: &str, holder: Option<&Account>) -> ApiError {
    let hint = match holder {
        Some(a) if a.status == AccountStatus::Error && a.aws_account_id.is_some() => format!(
            " (ERROR after AWS created AWS account {}: onboard it to finish it)",
            a.aws_account_id.as_deref().unwrap_or_default()
        ),
        _ => String::new(),
    };
    ApiError::conflict(
        "NameTaken",
        format!("an account named {name:?} already exists{hint}"),
    )
}

/// Moves the failed account back to INITIALIZING under a new task holding its lock, with what
/// the new request asks for (type, alias, tags). Two retries at once: one wins, the other finds
/// the lock taken (409).
async fn retry<S: AccountRecords, W: StartWorkflow>(
    c: &Creator<S, W>,
    failed: &Account,
    body: &CreateAccountRequest,
    account_type: Uuid,
    actor: &str,
    internal: impl FnOnce(StoreError) -> ApiError,
) -> Result<Task, ApiError> {
    let task = Task::new(Operation::CreateAccount, vec![failed.id], Utc::now());
    let change = AccountChange::transition(Transition::to(
        Trigger::RetryCreate,
        AccountStatus::Initializing,
    ))
    .with_facts(AccountFacts {
        account_type: Some(account_type),
        aws_account_alias: body.aws_account_alias.clone(),
        tags: body.tags.clone(),
        ..Default::default()
    })
    .with_lock(LockChange::Acquire(task.id));
    match c.store.restart(failed, &change, &task, actor).await {
        Ok(()) => Ok(task),
        Err(e) => Err(refused_operation(
            e,
            // Another request's retry got there first: the name is in use again.
            |_| name_taken(&failed.name, None),
            internal,
        )),
    }
}

impl AccountRecords for Store {
    async fn account_type(
        &self,
        reference: &AccountTypeRef,
    ) -> Result<Option<AccountType>, StoreError> {
        self.find_account_type(reference).await
    }
    async fn management_account(
        &self,
        aws_account_id: &str,
    ) -> Result<Option<Account>, StoreError> {
        Ok(self
            .get_account_by_aws_id(aws_account_id)
            .await?
            .map(|v| v.value))
    }
    async fn record(&self, account: &Account, task: &Task, actor: &str) -> Result<(), StoreError> {
        self.create_account(account, Trigger::RequestCreate, Some(task), actor)
            .await
            .map(drop)
    }
    async fn account_named(&self, name: &str) -> Result<Option<Account>, StoreError> {
        Ok(self.get_account_by_name(name).await?.map(|v| v.value))
    }
    async fn restart(
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::{AccountTypeStatus, organisation_id};
    use shared::fixtures::RecordedStarts;
    use std::collections::HashMap;
    use std::sync::Mutex;

    const MANAGEMENT: &str = "123456789012";
    const ADMIN: &str = "arn:aws:iam::123456789012:role/Admin";
    const OPERATIONS: &str = "arn:aws:iam::123456789012:role/Ops";
    const USER: &str = "arn:aws:iam::123456789012:role/Dev";
    const READONLY: &str = "arn:aws:iam::123456789012:role/Audit";

    #[derive(Default)]
    struct Memory {
        types: Vec<AccountType>,
        accounts: Mutex<HashMap<String, (Account, Task)>>,
        management: Option<Account>,
        abandoned: Mutex<Vec<String>>,
    }

    impl AccountRecords for Memory {
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
        async fn management_account(&self, _: &str) -> Result<Option<Account>, StoreError> {
            Ok(self.management.clone())
        }
        async fn record(&self, account: &Account, task: &Task, _: &str) -> Result<(), StoreError> {
            let mut accounts = self.accounts.lock().unwrap();
            let key = account.name.to_lowercase();
            if accounts.contains_key(&key) {
                return Err(StoreError::NameTaken(account.name.clone()));
            }
            accounts.insert(key, (account.clone(), task.clone()));
            Ok(())
        }
        async fn account_named(&self, name: &str) -> Result<Option<Account>, StoreError> {
            let accounts = self.accounts.lock().unwrap();
            Ok(accounts.get(&name.to_lowercase()).map(|(a, _)| a.clone()))
        }
        async fn restart(
            &self,
            account: &Account,
            change: &AccountChange,
            task: &Task,
            _: &str,
        ) -> Result<(), StoreError> {
            let mut accounts = self.accounts.lock().unwrap();
            let key = account.name.to_lowercase();
            if let Some(next) = accounts[&key].0.apply(change, Utc::now())? {
                accounts.insert(key, (next, task.clone()));
            }
            Ok(())
        }
        async fn abandon(
            &self,
            _: &Account,
            _: &Task,
            reason: &str,
            _: &str,
        ) -> Result<(), StoreError> {
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

    fn creator() -> Creator<Memory, RecordedStarts> {
        let mut management =
            shared::fixtures::account_in(AccountStatus::Active, "management", Some(MANAGEMENT));
        management.organisation_id = organisation_id("o-test");
        Creator {
            store: Memory {
                types: vec![account_type("default"), account_type("foundation-security")],
                management: Some(management),
                ..Default::default()
            },
            workflows: RecordedStarts::default(),
            access: AccessPolicy::from_json(&format!(
                r#"{{"{ADMIN}": "admin", "{OPERATIONS}": "operations", "{USER}": "user", "{READONLY}": "readonly"}}"#
            ))
            .unwrap(),
            management_account_id: MANAGEMENT.into(),
        }
    }

    fn post(principal: &str, body: &str) -> ApiRequest {
        ApiRequest {
            route_key: CREATE_ACCOUNT.into(),
            principal: Some(principal.into()),
            body: Some(body.into()),
            request_id: "req-1".into(),
            ..ApiRequest::default()
        }
    }

    const BAKERY: &str =
        r#"{"Name": "bakery", "AccountType": "default", "Tags": {"CostCode": "12345"}}"#;

    #[tokio::test]
    async fn records_the_account_initializing_and_starts_the_workflow_named_after_the_task() {
        let c = creator();
        let body = route(&c, &post(OPERATIONS, BAKERY)).await.unwrap();
        let task_id = body["TaskId"].as_str().unwrap().to_owned();
        assert_eq!(body["Detail"]["OperationStatus"], "STARTED");
        assert_eq!(body["Detail"]["Operation"], "accounts:CreateAccount");
        assert_eq!(body["Detail"]["Account"]["Name"], "bakery");

        let accounts = c.store.accounts.lock().unwrap();
        let (account, task) = &accounts["bakery"];
        assert_eq!(
            (account.status, account.origin),
            (AccountStatus::Initializing, Origin::Stax)
        );
        assert_eq!(
            account.user_task_id,
            Some(task.id),
            "the task holds the account's lock"
        );
        assert_eq!(task.accounts, [account.id]);
        assert_eq!(task.id.to_string(), task_id);
        let executions = c.workflows.executions.lock().unwrap();
        assert_eq!(executions[0].0, task_id);
        assert_eq!(executions[0].1["AccountId"], account.id.to_string());
    }

    #[tokio::test]
    async fn admin_and_operations_may_create_others_are_forbidden() {
        for (principal, status) in [
            (ADMIN, 200),
            (OPERATIONS, 200),
            (USER, 403),
            (READONLY, 403),
            ("arn:aws:iam::123456789012:user/x", 403),
        ] {
            let c = creator();
            let got = route(&c, &post(principal, BAKERY))
                .await
                .map(|_| 200)
                .unwrap_or_else(|e| e.status);
            assert_eq!(got, status, "{principal}");
            assert_eq!(
                c.store.accounts.lock().unwrap().len(),
                usize::from(status == 200)
            );
        }
    }

    #[tokio::test]
    async fn a_taken_name_is_a_conflict_and_starts_nothing() {
        let c = creator();
        route(&c, &post(ADMIN, BAKERY)).await.unwrap();
        let e = route(&c, &post(ADMIN, &BAKERY.replace("bakery", "BAKERY")))
            .await
            .unwrap_err();
        assert_eq!((e.status, e.error), (409, "NameTaken"));
        assert_eq!(c.workflows.executions.lock().unwrap().len(), 1);
    }

    /// Records `name` as a creation that failed, before (`aws_account_id` None) or after AWS
    /// made its account.
    fn failed(c: &Creator<Memory, RecordedStarts>, name: &str, aws_account_id: Option<&str>) {
        let mut account = shared::fixtures::account_in(AccountStatus::Error, name, aws_account_id);
        account.origin = Origin::Stax;
        account.status_reason = Some("AWS refused: ACCOUNT_LIMIT_EXCEEDED".into());
        let task = Task::new(Operation::CreateAccount, vec![account.id], Utc::now());
        c.store
            .accounts
            .lock()
            .unwrap()
            .insert(name.to_lowercase(), (account, task));
    }

    #[tokio::test]
    async fn asking_again_for_a_creation_that_failed_before_aws_retries_the_same_record() {
        let c = creator();
        failed(&c, "bakery", None);
        let before = c.store.accounts.lock().unwrap()["bakery"].0.clone();
        let body = route(
            &c,
            &post(
                OPERATIONS,
                &BAKERY.replace("12345", "67890").replace("bakery", "Bakery"),
            ),
        )
        .await
        .unwrap();
        assert_eq!(
            body["Detail"]["Message"],
            "Retrying the creation of account bakery"
        );
        let accounts = c.store.accounts.lock().unwrap();
        let (account, task) = &accounts["bakery"];
        assert_eq!(account.id, before.id, "the same record, not a second one");
        assert_eq!(account.status, AccountStatus::Initializing);
        assert_eq!(account.status_reason, None);
        assert_eq!(account.user_task_id, Some(task.id));
        assert_eq!(account.tags.as_ref().unwrap()["CostCode"], "67890");
        assert_eq!(task.accounts, [before.id]);
        let executions = c.workflows.executions.lock().unwrap();
        assert_eq!(executions.len(), 1);
        assert_eq!(executions[0].0, task.id.to_string());
        assert_eq!(executions[0].1["AccountId"], before.id.to_string());
    }

    #[tokio::test]
    async fn a_failed_account_aws_made_or_a_busy_one_is_not_recreated() {
        // AWS made the account: creating again would make a second AWS account.
        let c = creator();
        failed(&c, "bakery", Some("111122223333"));
        let e = route(&c, &post(ADMIN, BAKERY)).await.unwrap_err();
        assert_eq!((e.status, e.error), (409, "NameTaken"));
        assert!(e.cause.contains("onboard it"), "{}", e.cause);
        // A retry already under way holds the lock.
        let c = creator();
        failed(&c, "bakery", None);
        route(&c, &post(ADMIN, BAKERY)).await.unwrap();
        let e = route(&c, &post(ADMIN, BAKERY)).await.unwrap_err();
        assert_eq!((e.status, e.error), (409, "NameTaken"));
        assert_eq!(c.workflows.executions.lock().unwrap().len(), 1);
        // An EXTERNAL account in ERROR is discovery's, not a failed creation.
        let c = creator();
        failed(&c, "bakery", None);
        c.store
            .accounts
            .lock()
            .unwrap()
            .get_mut("bakery")
            .unwrap()
            .0
            .origin = Origin::External;
        let e = route(&c, &post(ADMIN, BAKERY)).await.unwrap_err();
        assert_eq!((e.status, e.error), (409, "NameTaken"));
        assert!(c.workflows.executions.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn unknown_and_foundation_types_are_bad_requests() {
        let c = creator();
        let e = route(
            &c,
            &post(ADMIN, r#"{"Name": "x1", "AccountType": "production"}"#),
        )
        .await
        .unwrap_err();
        assert_eq!(
            e.cause,
            r#"AccountType: no Account Type is named "production""#
        );
        let e = route(
            &c,
            &post(
                ADMIN,
                r#"{"Name": "x2", "AccountType": "foundation-security"}"#,
            ),
        )
        .await
        .unwrap_err();
        assert_eq!(e.status, 400);
        assert!(c.store.accounts.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn creating_waits_for_the_foundation() {
        let mut c = creator();
        c.store.management = None;
        let e = route(&c, &post(ADMIN, BAKERY)).await.unwrap_err();
        assert_eq!((e.status, e.error), (409, "FoundationNotReady"));
        assert!(c.store.accounts.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_workflow_that_cannot_start_leaves_an_error_that_says_so() {
        let mut c = creator();
        c.workflows.refusal = Some("ThrottlingException: Rate exceeded".into());
        let e = route(&c, &post(ADMIN, BAKERY)).await.unwrap_err();
        assert_eq!(e.status, 500);
        assert!(
            !e.cause.contains("Throttling"),
            "no internals in the answer"
        );
        let abandoned = c.store.abandoned.lock().unwrap();
        assert_eq!(
            abandoned[0],
            "the create workflow could not be started: ThrottlingException: Rate exceeded"
        );
    }
}
