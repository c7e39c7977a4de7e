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

use aws::StateMachine;
use chrono::Utc;
use domain::config::{self, ConfigError};
use domain::{
    Account, AccountChange, AccountFacts, AccountRole, AccountStatus, ErrorName, ExecutionStates,
    LockChange, NewAccount, Operation, Origin, StartWorkflow, Task, Transition, Trigger,
};
use edge::stax::CreateAccountRequest;
use edge::{
    AccessPolicy, ApiError, ApiRequest, Permission, authorize, foundation_ready,
    member_account_type, refused_operation, start_operation_taking_over, start_or_undo,
    task_envelope,
};
use serde_json::{Value, json};
use store::{AccountTypes, AccountWrites, DynamoStore, FoundationStatus, StoreError};
use uuid::Uuid;

pub const CREATE_ACCOUNT: &str = "POST /20190206/accounts";

pub struct CreateAccountApi<S, W> {
    pub store: S,
    pub workflows: W,
    pub access: AccessPolicy,
    pub management_account_id: String,
}

impl CreateAccountApi<DynamoStore, StateMachine> {
    /// `TABLE_NAME`, `ACCESS_ROLES`, `MANAGEMENT_ACCOUNT_ID`, `CREATE_STATE_MACHINE_ARN`.
    pub fn from_env(sdk: &aws::SdkConfig) -> Result<Self, ConfigError> {
        Ok(CreateAccountApi {
            store: DynamoStore::from_env(sdk)?,
            workflows: StateMachine::new(sdk, config::required("CREATE_STATE_MACHINE_ARN")?),
            access: AccessPolicy::from_json(&config::required("ACCESS_ROLES")?)?,
            management_account_id: config::required("MANAGEMENT_ACCOUNT_ID")?,
        })
    }
}

pub async fn route<
    S: AccountWrites + AccountTypes + FoundationStatus,
    W: StartWorkflow + ExecutionStates,
>(
    c: &CreateAccountApi<S, W>,
    req: ApiRequest,
) -> Result<Value, ApiError> {
    let req = &req;
    if req.route_key != CREATE_ACCOUNT {
        return Err(ApiError::not_found(format!("no route {:?}", req.route_key)));
    }
    authorize(&c.access, req.principal.as_deref(), Permission::Mutate)?;
    req.only_query(&[])?;
    let body = CreateAccountRequest::parse(req.body.as_deref())?;
    let internal = |e: StoreError| req.internal(&e);

    let account_type = member_account_type(&c.store, &body.account_type, req).await?;
    foundation_ready(&c.store, req).await?;
    let management = c
        .store
        .get_account_by_aws_id(&c.management_account_id)
        .await
        .map_err(internal)?
        .ok_or_else(|| {
        ApiError::conflict(
            ErrorName::FoundationNotReady,
            "the foundation bootstrap has not recorded the management account yet; run it first",
        )
    })?
        .value;

    let now = Utc::now();
    let id = Uuid::new_v4();
    let task = Task::for_workflow(Operation::CreateAccount, vec![id], now, &c.workflows);
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
    let actor = req.actor();
    let recorded = c
        .store
        .create_account(&account, Trigger::RequestCreate, Some(&task), &actor)
        .await;
    let (account, task, message) = match recorded {
        Ok(_) => (account, task, format!("Creating account {}", body.name)),
        Err(StoreError::NameTaken(name)) => {
            let holder = c
                .store
                .get_account_by_name(&name)
                .await
                .map_err(internal)?
                .map(|v| v.value);
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
        async |reason| {
            c.store
                .abandon_task(account.id, task.id, &reason, &actor)
                .await
        },
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

/// An account whose creation failed, or may have been abandoned, before AWS made an AWS account
/// for it: asking for its name again retries it — an ERROR one at once, an INITIALIZING one
/// only once its create workflow is found gone (the retry takes its lock over; while the
/// workflow runs the name stays taken).
fn creation_failed_before_aws(account: &Account) -> bool {
    matches!(
        account.status,
        AccountStatus::Error | AccountStatus::Initializing
    ) && account.origin == Origin::Stax
        && account.aws_account_id.is_none()
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
        ErrorName::NameTaken,
        format!("an account named {name:?} already exists{hint}"),
    )
}

/// Moves the failed account back to INITIALIZING under a new task holding its lock, with what
/// the new request asks for (type, alias, tags). Two retries at once: one wins, the other finds
/// the lock taken (409).
async fn retry<S: AccountWrites, W: StartWorkflow + ExecutionStates>(
    c: &CreateAccountApi<S, W>,
    failed: &Account,
    body: &CreateAccountRequest,
    account_type: Uuid,
    actor: &str,
    internal: impl FnOnce(StoreError) -> ApiError,
) -> Result<Task, ApiError> {
    let task = Task::for_workflow(
        Operation::CreateAccount,
        vec![failed.id],
        Utc::now(),
        &c.workflows,
    );
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
    match start_operation_taking_over(&c.store, &c.workflows, failed.id, &change, &task, actor)
        .await
    {
        Ok(()) => Ok(task),
        // Its creation (or another request's retry) is under way: the name is in use.
        Err(StoreError::Lifecycle(domain::LifecycleError::OperationInProgress { .. })) => {
            Err(name_taken(&failed.name, None))
        }
        Err(e) => Err(refused_operation(
            e,
            // Another request's retry got there first: the name is in use again.
            |_| name_taken(&failed.name, None),
            internal,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::fixtures::RecordedStarts;
    use domain::{AccountFilter, TaskStatus, organisation_id};
    use store::{AccountReads, MemoryStore, Tasks};

    const MANAGEMENT: &str = "123456789012";
    const ADMIN: &str = "arn:aws:iam::123456789012:role/Admin";
    const OPERATIONS: &str = "arn:aws:iam::123456789012:role/Ops";
    const USER: &str = "arn:aws:iam::123456789012:role/Dev";
    const READONLY: &str = "arn:aws:iam::123456789012:role/Audit";

    type Api = CreateAccountApi<MemoryStore, RecordedStarts>;

    /// The API over a store the foundation bootstrap has seeded (unless `foundation` is false).
    async fn api_with(foundation: bool) -> Api {
        let store = MemoryStore::new();
        store.ensure_account_type("default").await.unwrap();
        store
            .ensure_account_type("foundation-security")
            .await
            .unwrap();
        if foundation {
            let mut management =
                domain::fixtures::account_in(AccountStatus::Active, "management", Some(MANAGEMENT));
            management.organisation_id = organisation_id("o-test");
            management.account_role = AccountRole::Management;
            store.insert(management);
            store.complete_foundation();
        }
        CreateAccountApi {
            store,
            workflows: RecordedStarts::default(),
            access: AccessPolicy::from_json(&format!(
                r#"{{"{ADMIN}": "admin", "{OPERATIONS}": "operations", "{USER}": "user", "{READONLY}": "readonly"}}"#
            ))
            .unwrap(),
            management_account_id: MANAGEMENT.into(),
        }
    }

    async fn api() -> Api {
        api_with(true).await
    }

    /// The account called `name` and the task that holds (or last held) it.
    async fn recorded(c: &Api, name: &str) -> (Account, Task) {
        let account = c
            .store
            .get_account_by_name(name)
            .await
            .unwrap()
            .unwrap()
            .value;
        let task = c
            .store
            .get_task(account.user_task_id.expect("a task holds the account"))
            .await
            .unwrap()
            .unwrap()
            .value;
        (account, task)
    }

    /// How many accounts the requests recorded (the management account aside).
    async fn created(c: &Api) -> usize {
        let all = c
            .store
            .list_accounts(&AccountFilter::default())
            .await
            .unwrap();
        all.iter()
            .filter(|a| a.aws_account_id.as_deref() != Some(MANAGEMENT))
            .count()
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
        let c = api().await;
        let body = route(&c, post(OPERATIONS, BAKERY)).await.unwrap();
        let task_id = body["TaskId"].as_str().unwrap().to_owned();
        assert_eq!(body["Detail"]["OperationStatus"], "STARTED");
        assert_eq!(body["Detail"]["Operation"], "accounts:CreateAccount");
        assert_eq!(body["Detail"]["Account"]["Name"], "bakery");

        let (account, task) = recorded(&c, "bakery").await;
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
        let trail = c.store.audit_trail(account.id).await.unwrap();
        assert_eq!(trail.len(), 1, "one audit event: recorded");
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
            let c = api().await;
            let before = c.store.snapshot();
            let got = route(&c, post(principal, BAKERY))
                .await
                .map(|_| 200)
                .unwrap_or_else(|e| e.status);
            assert_eq!(got, status, "{principal}");
            assert_eq!(created(&c).await, usize::from(status == 200));
            if status != 200 {
                assert_eq!(c.store.snapshot(), before, "a refusal writes nothing");
            }
        }
    }

    #[tokio::test]
    async fn a_taken_name_is_a_conflict_and_starts_nothing() {
        let c = api().await;
        route(&c, post(ADMIN, BAKERY)).await.unwrap();
        let before = c.store.snapshot();
        let e = route(&c, post(ADMIN, &BAKERY.replace("bakery", "BAKERY")))
            .await
            .unwrap_err();
        assert_eq!((e.status, e.error), (409, ErrorName::NameTaken));
        assert_eq!(c.workflows.executions.lock().unwrap().len(), 1);
        assert_eq!(c.store.snapshot(), before);
    }

    /// Records `name` as a creation that failed, before (`aws_account_id` None) or after AWS
    /// made its account.
    fn failed(c: &Api, name: &str, aws_account_id: Option<&str>) -> Account {
        let mut account = domain::fixtures::account_in(AccountStatus::Error, name, aws_account_id);
        account.origin = Origin::Stax;
        account.status_reason = Some("AWS refused: ACCOUNT_LIMIT_EXCEEDED".into());
        c.store.insert(account.clone());
        c.store.insert_task(Task::new(
            Operation::CreateAccount,
            vec![account.id],
            Utc::now(),
        ));
        account
    }

    #[tokio::test]
    async fn asking_again_for_a_creation_that_failed_before_aws_retries_the_same_record() {
        let c = api().await;
        let before = failed(&c, "bakery", None);
        let body = route(
            &c,
            post(
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
        let (account, task) = recorded(&c, "bakery").await;
        assert_eq!(account.id, before.id, "the same record, not a second one");
        assert_eq!(created(&c).await, 1);
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
        let c = api().await;
        failed(&c, "bakery", Some("111122223333"));
        let e = route(&c, post(ADMIN, BAKERY)).await.unwrap_err();
        assert_eq!((e.status, e.error), (409, ErrorName::NameTaken));
        assert!(e.cause.contains("onboard it"), "{}", e.cause);
        // A retry already under way holds the lock.
        let c = api().await;
        failed(&c, "bakery", None);
        route(&c, post(ADMIN, BAKERY)).await.unwrap();
        let e = route(&c, post(ADMIN, BAKERY)).await.unwrap_err();
        assert_eq!((e.status, e.error), (409, ErrorName::NameTaken));
        assert_eq!(c.workflows.executions.lock().unwrap().len(), 1);
        // An EXTERNAL account in ERROR is discovery's, not a failed creation.
        let c = api().await;
        let mut external = domain::fixtures::account_in(AccountStatus::Error, "bakery", None);
        external.origin = Origin::External;
        c.store.insert(external);
        let e = route(&c, post(ADMIN, BAKERY)).await.unwrap_err();
        assert_eq!((e.status, e.error), (409, ErrorName::NameTaken));
        assert!(c.workflows.executions.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn unknown_and_foundation_types_are_bad_requests() {
        let c = api().await;
        let before = c.store.snapshot();
        let e = route(
            &c,
            post(ADMIN, r#"{"Name": "x1", "AccountType": "production"}"#),
        )
        .await
        .unwrap_err();
        assert_eq!(
            e.cause,
            r#"AccountType: no Account Type is named "production""#
        );
        let e = route(
            &c,
            post(
                ADMIN,
                r#"{"Name": "x2", "AccountType": "foundation-security"}"#,
            ),
        )
        .await
        .unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(c.store.snapshot(), before);
    }

    #[tokio::test]
    async fn creating_waits_for_the_foundation() {
        let c = api_with(false).await;
        let e = route(&c, post(ADMIN, BAKERY)).await.unwrap_err();
        assert_eq!((e.status, e.error), (409, ErrorName::FoundationNotReady));
        assert_eq!(created(&c).await, 0);
        // The management account recorded is not enough: the bootstrap must have completed.
        let mut management =
            domain::fixtures::account_in(AccountStatus::Active, "management", Some(MANAGEMENT));
        management.account_role = AccountRole::Management;
        c.store.insert(management);
        let before = c.store.snapshot();
        let e = route(&c, post(ADMIN, BAKERY)).await.unwrap_err();
        assert_eq!((e.status, e.error), (409, ErrorName::FoundationNotReady));
        assert_eq!(c.store.snapshot(), before);
    }

    #[tokio::test]
    async fn a_workflow_that_cannot_start_leaves_an_error_that_says_so() {
        let mut c = api().await;
        c.workflows.refusal = Some("ThrottlingException: Rate exceeded".into());
        let e = route(&c, post(ADMIN, BAKERY)).await.unwrap_err();
        assert_eq!(e.status, 500);
        assert!(
            !e.cause.contains("Throttling"),
            "no internals in the answer"
        );
        let account = c
            .store
            .get_account_by_name("bakery")
            .await
            .unwrap()
            .unwrap()
            .value;
        let reason = "the create workflow could not be started: ThrottlingException: Rate exceeded";
        assert_eq!(
            (
                account.status,
                account.status_reason.as_deref(),
                account.user_task_id
            ),
            (AccountStatus::Error, Some(reason), None),
            "ERROR with the reason, the lock released"
        );
        let trail = c.store.audit_trail(account.id).await.unwrap();
        let task = trail[0].lock_acquired_by.expect("the request's task");
        let task = c.store.get_task(task).await.unwrap().unwrap().value;
        assert_eq!(task.status, TaskStatus::Failed);
        assert_eq!(task.logs.last().map(String::as_str), Some(reason));
    }

    #[tokio::test]
    async fn a_store_that_fails_answers_500_without_internals() {
        let c = api().await;
        c.store.fail_with("connection reset by peer at 10.0.0.1");
        let e = route(&c, post(ADMIN, BAKERY)).await.unwrap_err();
        assert_eq!((e.status, e.error), (500, ErrorName::InternalError));
        assert!(
            !e.cause.contains("10.0.0.1") && e.cause.contains("req-1"),
            "{}",
            e.cause
        );
    }
}
