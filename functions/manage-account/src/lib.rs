//! The API of day-2 management.
//!
//! `PUT /20190206/accounts/{account_id}` (Stax `accounts.UpdateAccount`) changes an ACTIVE
//! account. The body is validated against the record first — a field the account's role does
//! not admit, a type members may not join, an OU that is not the type's: 400 or 409, nothing
//! written. Then one conditional write takes the account's lock for a new task and, when the
//! name changes, moves its unique-name item ([`AccountChange::start_update`]: the account stays
//! ACTIVE, and the lifecycle table admits the write from ACTIVE only). The update workflow then
//! applies in AWS what changed, one step per concern, and records each change after AWS took it:
//! the move to the new type's OU, the IAM alias (Account Assurance's defaults concern, which
//! owns it), the name in AWS, the Organizations tags. A failed step fails the task with AWS's
//! reason and releases the lock; the account stays ACTIVE with what was applied before.
//!
//! `POST /20190206/accounts/close` (Stax `accounts.CloseAccount`, `admin` only) closes a member
//! account's AWS account: one conditional write takes the lock for a closure task, the status
//! kept ([`AccountChange::start_keeping_status`] with `StartClosure`), and the close workflow runs — waiting in line while
//! AWS's closure quota is used up — until AWS reports the account closing, when it is CLOSED.

use aws::StateMachine;
use chrono::Utc;
use domain::config::{self, ConfigError};
use domain::{
    Account, AccountChange, AccountFacts, AccountRole, AccountStatus, AccountType, ErrorName,
    ExecutionStates, Operation, StartWorkflow, Task, TaskStatus, Trigger,
};
use edge::stax::{
    CloseAccountRequest, UpdateAccountRequest, UpdateAccountTypeMembersRequest, parse_uuid,
};
use edge::{
    AccessPolicy, ApiError, ApiRequest, Permission, authorize, member_account_type,
    refused_operation, start_operation_taking_over, start_or_undo, task_envelope,
};
use serde_json::{Map, Value, json};
use store::{AccountReads, AccountTypes, AccountWrites, DynamoStore, StoreError, Tasks};
use uuid::Uuid;

pub const UPDATE_ACCOUNT: &str = "PUT /20190206/accounts/{account_id}";
pub const CLOSE_ACCOUNT: &str = "POST /20190206/accounts/close";
pub const SUSPEND_ACCOUNT: &str = "POST /20190206/accounts/{account_id}/suspend";
pub const REACTIVATE_ACCOUNT: &str = "POST /20190206/accounts/{account_id}/reactivate";
pub const UPDATE_ACCOUNT_TYPE_MEMBERS: &str = "PUT /20190206/account-types/members";

pub struct Manager<S, W> {
    pub store: S,
    /// The update state machine.
    pub updates: W,
    /// The close state machine.
    pub closes: W,
    /// The suspend state machine (suspensions and reactivations).
    pub suspensions: W,
    pub access: AccessPolicy,
}

impl Manager<DynamoStore, StateMachine> {
    /// `TABLE_NAME`, `ACCESS_ROLES`, `UPDATE_STATE_MACHINE_ARN`, `CLOSE_STATE_MACHINE_ARN`,
    /// `SUSPEND_STATE_MACHINE_ARN`.
    pub fn from_env(sdk: &aws::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Manager {
            store: DynamoStore::from_env(sdk)?,
            updates: StateMachine::new(sdk, config::required("UPDATE_STATE_MACHINE_ARN")?),
            closes: StateMachine::new(sdk, config::required("CLOSE_STATE_MACHINE_ARN")?),
            suspensions: StateMachine::new(sdk, config::required("SUSPEND_STATE_MACHINE_ARN")?),
            access: AccessPolicy::from_json(&config::required("ACCESS_ROLES")?)?,
        })
    }
}

pub async fn route<S: AccountWrites + AccountTypes + Tasks, W: StartWorkflow + ExecutionStates>(
    m: &Manager<S, W>,
    req: ApiRequest,
) -> Result<Value, ApiError> {
    let req = &req;
    let needed = match req.route_key.as_str() {
        UPDATE_ACCOUNT | UPDATE_ACCOUNT_TYPE_MEMBERS => Permission::Mutate,
        // Locking an account's people out is as drastic as closing it: admin only.
        CLOSE_ACCOUNT | SUSPEND_ACCOUNT | REACTIVATE_ACCOUNT => Permission::Admin,
        other => return Err(ApiError::not_found(format!("no route {other:?}"))),
    };
    authorize(&m.access, req.principal.as_deref(), needed)?;
    req.only_query(&[])?;
    match req.route_key.as_str() {
        CLOSE_ACCOUNT => close(m, req).await,
        SUSPEND_ACCOUNT => suspend(m, req, true).await,
        REACTIVATE_ACCOUNT => suspend(m, req, false).await,
        UPDATE_ACCOUNT_TYPE_MEMBERS => update_members(m, req).await,
        _ => update(m, req).await,
    }
}

/// `POST …/{account_id}/suspend` (`suspending`) and `…/reactivate`: the lock for a task while
/// the suspension SCP is attached to the account, or detached, the status kept until then.
async fn suspend<S: AccountWrites, W: StartWorkflow + ExecutionStates>(
    m: &Manager<S, W>,
    req: &ApiRequest,
    suspending: bool,
) -> Result<Value, ApiError> {
    let id = parse_uuid(req.path_param("account_id"))
        .map_err(|e| ApiError::bad_request(format!("account_id: {e}")))?;
    req.empty_body()?;
    let account = account_of(&m.store, id, req).await?;
    let (verb, done, trigger, from) = if suspending {
        (
            "Suspend",
            "suspended",
            Trigger::StartSuspension,
            AccountStatus::Active,
        )
    } else {
        (
            "Reactivate",
            "reactivated",
            Trigger::StartReactivation,
            AccountStatus::Suspended,
        )
    };
    let aws_account_id = member_aws_account(&account, ErrorName::NotSuspendable, done)?;
    let task = Task::for_workflow(
        Operation::UpdateAccount,
        vec![id],
        Utc::now(),
        &m.suspensions,
    );
    let lock = AccountChange::start_keeping_status(task.id, trigger, from);
    let input = json!({"AccountId": id, "TaskId": task.id, "AwsAccountId": aws_account_id,
                       "Change": verb});
    lock_and_start(
        &m.store,
        &m.suspensions,
        "the suspend workflow",
        id,
        &lock,
        &task,
        |_| input,
        AccountFacts::default(),
        req,
        |status| {
            ApiError::conflict(
                ErrorName::NotSuspendable,
                format!(
                    "account {id} is {}; only {from} accounts are {done}",
                    status.map_or("not recorded", AccountStatus::as_str)
                ),
            )
        },
    )
    .await?;
    tracing::info!(account = %id, task = %task.id, verb, "suspension change started");
    Ok(task_envelope(
        &task,
        account.organisation_id,
        &req.request_id,
        &format!("Account {verb} Requested"),
        format!(
            "{verb}: account {} (AWS account {aws_account_id})",
            account.name
        ),
        Some(
            json!({"Id": id, "Name": account.name, "AwsAccountId": aws_account_id,
                    "OrganisationId": account.organisation_id, "Operation": "UPDATE"}),
        ),
    ))
}

/// `POST /20190206/accounts/close`: the account's lock for a closure task (its status kept
/// until AWS has it), and the close workflow, which waits in line for AWS's closure quota.
async fn close<S: AccountWrites, W: StartWorkflow + ExecutionStates>(
    m: &Manager<S, W>,
    req: &ApiRequest,
) -> Result<Value, ApiError> {
    let id = CloseAccountRequest::parse(req.body.as_deref())?.id;
    let account = account_of(&m.store, id, req).await?;
    let aws_account_id = member_aws_account(&account, ErrorName::NotClosable, "closed")?;
    let task = Task::for_workflow(Operation::CloseAccount, vec![id], Utc::now(), &m.closes);
    let lock = AccountChange::start_keeping_status(task.id, Trigger::StartClosure, account.status);
    let input = json!({"AccountId": id, "TaskId": task.id, "AwsAccountId": aws_account_id});
    lock_and_start(
        &m.store,
        &m.closes,
        "the close workflow",
        id,
        &lock,
        &task,
        |_| input,
        AccountFacts::default(),
        req,
        |from| {
            ApiError::conflict(
                ErrorName::NotClosable,
                format!(
                    "account {id} is {}; ACTIVE, SUSPENDED and DISCOVERED accounts are closed",
                    from.map_or("not recorded", AccountStatus::as_str)
                ),
            )
        },
    )
    .await?;
    tracing::info!(account = %id, task = %task.id, aws_account_id, "closure started");
    Ok(task_envelope(
        &task,
        account.organisation_id,
        &req.request_id,
        "Account Close Requested",
        format!(
            "Closing account {} (AWS account {aws_account_id})",
            account.name
        ),
        None,
    ))
}

/// The AWS account of a member account, for an operation (`done`: "closed", "suspended") that
/// the management and foundation accounts never undergo; 409 `refusal` otherwise.
fn member_aws_account(
    account: &Account,
    refusal: ErrorName,
    done: &str,
) -> Result<String, ApiError> {
    if account.account_role != AccountRole::Member {
        return Err(ApiError::conflict(
            refusal,
            format!(
                "account {} is the organization's {} account, which is never {done}",
                account.id,
                account.account_role.as_str()
            ),
        ));
    }
    account.aws_account_id.clone().ok_or_else(|| {
        ApiError::conflict(
            refusal,
            format!(
                "account {} has no AWS account (its creation never reached AWS)",
                account.id
            ),
        )
    })
}

/// The account the request names by id; 404 when there is none.
async fn account_of<S: AccountReads>(
    store: &S,
    id: Uuid,
    req: &ApiRequest,
) -> Result<Account, ApiError> {
    store
        .get_account(id)
        .await
        .map_err(|e| req.internal(&e))?
        .map(|v| v.value)
        .ok_or_else(|| ApiError::not_found(format!("account {id} does not exist")))
}

/// Starts an operation that keeps the account's status until its workflow has done its work in
/// AWS: `change` takes the lock for `task` (taking over one an abandoned operation left) and
/// `workflow` starts with `input`. A status the change does not admit is `not_allowed(status)`,
/// a taken name 409 `NameTaken`; a workflow that cannot start releases the lock and fails the
/// task with why. Nothing is written on a refusal.
#[allow(clippy::too_many_arguments)]
async fn lock_and_start<S: AccountWrites, W: StartWorkflow + ExecutionStates>(
    store: &S,
    workflow: &W,
    what: &str,
    account: Uuid,
    change: &AccountChange,
    task: &Task,
    input: impl FnOnce(&Account) -> Value,
    restore: AccountFacts,
    req: &ApiRequest,
    not_allowed: impl FnOnce(Option<AccountStatus>) -> ApiError,
) -> Result<(), ApiError> {
    let actor = req.actor();
    start_operation_taking_over(store, workflow, account, change, task, &actor)
        .await
        .map_err(|e| {
            refused_operation(e, not_allowed, |e| match e {
                e @ StoreError::NameTaken(_) => {
                    ApiError::conflict(ErrorName::NameTaken, e.to_string())
                }
                e => req.internal(&e),
            })
        })?;
    // The workflow's input is made from the account as locked: a change another writer made
    // between the request's read and the lock is seen, and nothing changes it now.
    let locked = account_of(store, account, req).await?;
    start_or_undo(
        workflow,
        what,
        task,
        &input(&locked),
        &req.request_id,
        async |reason| {
            store
                .release_unstarted(account, task.id, restore, &reason, &actor)
                .await
        },
    )
    .await
}

/// What an update changes, checked against the record: the new name (written with the lock),
/// and what the workflow applies in AWS (fields equal to the record's are left out; tags are
/// always put, which also repairs tags changed outside the service).
#[derive(Debug, Clone, PartialEq)]
pub struct UpdatePlan {
    pub name: Option<String>,
    /// The workflow's `Update` input: `AwsAccountAlias`, `AwsAccountName`, `AccountType`,
    /// `Tags` and `PreviousTags`, each present only when it is to be applied.
    pub in_aws: Map<String, Value>,
}

/// Checks `body` against `account` (and the type it names, resolved) and says what to change.
/// Pure: the refusals are the request's, nothing is read or written.
pub fn plan_update(
    account: &Account,
    body: &UpdateAccountRequest,
    new_type: Option<&AccountType>,
) -> Result<UpdatePlan, ApiError> {
    let role = account.account_role;
    let not_for = |field: &str, why: &str| {
        ApiError::conflict(
            ErrorName::NotUpdatable,
            format!(
                "{field}: account {} is the organization's {} account; {why}",
                account.id,
                role.as_str()
            ),
        )
    };
    if role == AccountRole::Management {
        if body.aws_account_alias.is_some() {
            return Err(not_for(
                "AwsAccountAlias",
                "the service does not act inside the management account (it has no provisioning role)",
            ));
        }
        if body.aws_account_name.is_some() {
            return Err(not_for(
                "AwsAccountName",
                "the management account's name is changed in its own console",
            ));
        }
    }
    if role != AccountRole::Member && new_type.is_some_and(|t| Some(t.id) != account.account_type) {
        return Err(not_for(
            "AccountType",
            "foundation accounts stay in their foundation type (and the management account in none)",
        ));
    }
    let target_type = new_type.map(|t| t.id).or(account.account_type);
    if let Some(ou) = body.organisational_unit_id
        && Some(ou) != target_type
    {
        return Err(ApiError::bad_request(format!(
            "OrganisationalUnitId: {ou} is not the OU of the account's Account Type; each Account \
             Type is one OU (its id is the type's, {}), so an account moves OU by changing its \
             AccountType",
            target_type.map_or("none".to_owned(), |t| t.to_string())
        )));
    }
    let mut in_aws = Map::new();
    if let Some(alias) = &body.aws_account_alias
        && account.aws_account_alias.as_ref() != Some(alias)
    {
        in_aws.insert("AwsAccountAlias".into(), json!(alias));
    }
    if let Some(name) = &body.aws_account_name
        && account.aws_account_name.as_ref() != Some(name)
    {
        in_aws.insert("AwsAccountName".into(), json!(name));
    }
    if let Some(t) = new_type
        && Some(t.id) != account.account_type
    {
        in_aws.insert("AccountType".into(), json!(t.id));
    }
    if let Some(tags) = &body.tags {
        in_aws.insert("Tags".into(), json!(tags));
        in_aws.insert(
            "PreviousTags".into(),
            json!(account.tags.clone().unwrap_or_default()),
        );
    }
    Ok(UpdatePlan {
        name: body.name.clone().filter(|n| *n != account.name),
        in_aws,
    })
}

async fn update<S: AccountWrites + AccountTypes, W: StartWorkflow + ExecutionStates>(
    m: &Manager<S, W>,
    req: &ApiRequest,
) -> Result<Value, ApiError> {
    let id = parse_uuid(req.path_param("account_id"))
        .map_err(|e| ApiError::bad_request(format!("account_id: {e}")))?;
    let body = UpdateAccountRequest::parse(req.body.as_deref())?;
    let Started {
        task,
        account,
        plan,
        new_type,
    } = start_update(m, req, id, &body).await?;
    let name = plan.name.as_deref().unwrap_or(&account.name);
    Ok(task_envelope(
        &task,
        account.organisation_id,
        &req.request_id,
        "Account Update Requested",
        format!("Updating account {name}"),
        Some(json!({
            "AccountId": id,
            "Name": name,
            "AccountName": body.aws_account_name.as_ref().or(account.aws_account_name.as_ref()),
            "AccountType": new_type.map(|t| t.id).or(account.account_type),
            "Tags": body.tags.as_ref().or(account.tags.as_ref()),
            "OrganisationId": account.organisation_id,
            "Operation": "UPDATE",
        })),
    ))
}

/// An update under way: its task, the account as the request found it, what changes.
struct Started {
    task: Task,
    account: Account,
    plan: UpdatePlan,
    new_type: Option<AccountType>,
}

/// Checks `body` against account `id`, takes its lock for a new task and starts the update
/// workflow. Nothing is written on a refusal.
async fn start_update<S: AccountWrites + AccountTypes, W: StartWorkflow + ExecutionStates>(
    m: &Manager<S, W>,
    req: &ApiRequest,
    id: Uuid,
    body: &UpdateAccountRequest,
) -> Result<Started, ApiError> {
    let account = account_of(&m.store, id, req).await?;
    let new_type = match &body.account_type {
        Some(reference) => Some(member_account_type(&m.store, reference, req).await?),
        None => None,
    };
    let plan = plan_update(&account, body, new_type.as_ref())?;

    let task = Task::for_workflow(Operation::UpdateAccount, vec![id], Utc::now(), &m.updates);
    let lock = AccountChange::start_update(task.id, plan.name.clone());
    lock_and_start(
        &m.store,
        &m.updates,
        "the update workflow",
        id,
        &lock,
        &task,
        |locked| {
            // Planned again against the record as locked; what the request was checked against
            // stands if that fails (it cannot: the role and type checks hold for any version).
            let in_aws = plan_update(locked, body, new_type.as_ref())
                .map_or_else(|_| plan.in_aws.clone(), |p| p.in_aws);
            json!({"AccountId": id, "TaskId": task.id, "AwsAccountId": locked.aws_account_id,
                   "Update": in_aws})
        },
        AccountFacts {
            name: plan.name.as_ref().map(|_| account.name.clone()),
            ..Default::default()
        },
        req,
        |from| {
            ApiError::conflict(
                ErrorName::NotUpdatable,
                format!(
                    "account {id} is {}; only ACTIVE accounts are updated",
                    from.map_or("not recorded", AccountStatus::as_str)
                ),
            )
        },
    )
    .await?;
    tracing::info!(account = %id, task = %task.id, changes = ?plan.in_aws.keys().collect::<Vec<_>>(), "update started");
    Ok(Started {
        task,
        account,
        plan,
        new_type,
    })
}

/// `PUT /20190206/account-types/members` (Stax `accounts.UpdateAccountTypeMembers`): each
/// account moves to its type as an update of its `AccountType` would move it — under its own
/// lock and task, through the update workflow (its OU, so its policies follow). The request's
/// task records, per account, the task moving it or why it was refused (busy, a foundation
/// account, not ACTIVE, an unknown account or type); a refusal does not stop the others. The
/// task ends at once: `SUCCEEDED` when every move started (or had nothing to do), `FAILED`
/// when any was refused.
async fn update_members<
    S: AccountWrites + AccountTypes + Tasks,
    W: StartWorkflow + ExecutionStates,
>(
    m: &Manager<S, W>,
    req: &ApiRequest,
) -> Result<Value, ApiError> {
    let body = UpdateAccountTypeMembersRequest::parse(req.body.as_deref())?;
    let accounts: Vec<Uuid> = body.members.iter().map(|(a, _)| *a).collect();
    let mut task = Task::new(Operation::UpdateAccountTypeMembers, accounts, Utc::now());
    let mut refused = 0;
    for (account, account_type) in &body.members {
        let update = UpdateAccountRequest {
            account_type: Some(account_type.clone()),
            ..UpdateAccountRequest::default()
        };
        let line = match start_update(m, req, *account, &update).await {
            Ok(started) => {
                let to = started.new_type.map_or_else(String::new, |t| t.name);
                if started.plan.in_aws.contains_key("AccountType") {
                    format!(
                        "account {account} ({}): moving to {to} under task {}",
                        started.account.name, started.task.id
                    )
                } else {
                    format!(
                        "account {account} ({}): already of type {to} (checked under task {})",
                        started.account.name, started.task.id
                    )
                }
            }
            Err(e) => {
                refused += 1;
                format!("account {account}: not moved: {} ({})", e.cause, e.error)
            }
        };
        task.logs.push(line);
    }
    task.status = if refused == 0 {
        TaskStatus::Succeeded
    } else {
        TaskStatus::Failed
    };
    m.store
        .create_task(&task)
        .await
        .map_err(|e| req.internal(&e))?;
    tracing::info!(task = %task.id, members = body.members.len(), refused, "account type members");
    let message = format!(
        "{} of {} accounts moving to their Account Types",
        body.members.len() - refused,
        body.members.len()
    );
    // `accounts.UpdateAccountTypeMembersEvent` admits `DetailType` and `Detail` alone, the
    // task's id inside.
    Ok(json!({
        "DetailType": "Account Type Members Updated",
        "Detail": {
            "Message": message,
            "Operation": task.operation,
            "OperationStatus": task.status,
            "Severity": "INFO",
            "TaskId": task.id,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::TaskStatus;
    use domain::fixtures::RecordedStarts;
    use store::{AccountReads, MemoryStore, Tasks};
    use uuid::Uuid;

    const ADMIN: &str = "arn:aws:iam::123456789012:role/Admin";
    const READER: &str = "arn:aws:iam::123456789012:role/Reader";

    type Api = Manager<MemoryStore, RecordedStarts>;

    /// An ACTIVE member account `bakery` of type `default`, and a second account `cake`.
    async fn manager() -> (Api, Account) {
        let store = MemoryStore::new();
        let default = store.ensure_account_type("default").await.unwrap();
        store.ensure_account_type("production").await.unwrap();
        store
            .ensure_account_type("foundation-security")
            .await
            .unwrap();
        let mut account =
            domain::fixtures::account_in(AccountStatus::Active, "bakery", Some("444455556666"));
        account.account_type = Some(default.id);
        account.tags = Some([("Team".to_owned(), "bread".to_owned())].into());
        store.insert(account.clone());
        store.insert(domain::fixtures::account_in(
            AccountStatus::Active,
            "cake",
            Some("777788889999"),
        ));
        let m = Manager {
            store,
            updates: RecordedStarts::default(),
            closes: RecordedStarts::default(),
            suspensions: RecordedStarts::default(),
            access: AccessPolicy::from_json(&format!(
                r#"{{"{ADMIN}": "admin", "{READER}": "readonly"}}"#
            ))
            .unwrap(),
        };
        (m, account)
    }

    fn put(principal: &str, account: Uuid, body: &str) -> ApiRequest {
        ApiRequest {
            route_key: UPDATE_ACCOUNT.into(),
            principal: Some(principal.into()),
            path: [("account_id".to_owned(), account.to_string())].into(),
            body: Some(body.into()),
            request_id: "req-1".into(),
            ..ApiRequest::default()
        }
    }

    async fn stored(m: &Api, id: Uuid) -> Account {
        m.store.get_account(id).await.unwrap().unwrap().value
    }

    #[tokio::test]
    async fn an_update_renames_under_the_lock_and_hands_the_rest_to_the_workflow() {
        let (m, account) = manager().await;
        let production = m
            .store
            .get_account_type_by_name("production")
            .await
            .unwrap()
            .unwrap();
        let body = format!(
            r#"{{"Name": "bakery-2", "AwsAccountAlias": "bakery-two", "AccountType": "{}",
                 "OrganisationalUnitId": "{}", "Tags": {{"Team": "cake"}}}}"#,
            production.id, production.id
        );
        let answer = route(&m, put(ADMIN, account.id, &body)).await.unwrap();
        assert_eq!(answer["Detail"]["Operation"], "accounts:UpdateAccount");
        assert_eq!(answer["Detail"]["Account"]["Name"], "bakery-2");
        let after = stored(&m, account.id).await;
        assert_eq!(after.name, "bakery-2");
        assert_eq!(after.status, AccountStatus::Active);
        assert_eq!(
            after.account_type, account.account_type,
            "the type is recorded after the move"
        );
        let task = m
            .store
            .get_task(after.user_task_id.expect("the task holds the lock"))
            .await
            .unwrap()
            .unwrap()
            .value;
        assert_eq!(
            (task.operation, task.status),
            (Operation::UpdateAccount, TaskStatus::Started)
        );
        let input = m.updates.executions.lock().unwrap()[0].1.clone();
        assert_eq!(
            input["Update"],
            json!({"AwsAccountAlias": "bakery-two", "AccountType": production.id,
                   "Tags": {"Team": "cake"}, "PreviousTags": {"Team": "bread"}})
        );
        assert_eq!(input["AwsAccountId"], "444455556666");
        // The old name is free again, the new one taken.
        assert!(
            m.store
                .get_account_by_name("bakery")
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn refusals_name_the_field_and_write_nothing() {
        let (m, account) = manager().await;
        let security = m
            .store
            .get_account_type_by_name("foundation-security")
            .await
            .unwrap()
            .unwrap();
        let before = m.store.snapshot();
        let other = Uuid::new_v4();
        for (principal, id, body, status, starts) in [
            (READER, account.id, r#"{"Name": "x"}"#.to_owned(), 403, ""),
            (ADMIN, other, r#"{"Name": "x"}"#.to_owned(), 404, ""),
            (
                ADMIN,
                account.id,
                "{}".to_owned(),
                400,
                "the body names nothing",
            ),
            (
                ADMIN,
                account.id,
                r#"{"Name": "cake"}"#.to_owned(),
                409,
                "name",
            ),
            (
                ADMIN,
                account.id,
                r#"{"Name": "CAKE"}"#.to_owned(),
                409,
                "name",
            ),
            (
                ADMIN,
                account.id,
                format!(r#"{{"AccountType": "{}"}}"#, security.id),
                400,
                "AccountType:",
            ),
            (
                ADMIN,
                account.id,
                r#"{"AccountType": "no-such-type"}"#.to_owned(),
                400,
                "AccountType:",
            ),
            (
                ADMIN,
                account.id,
                format!(r#"{{"OrganisationalUnitId": "{other}"}}"#),
                400,
                "OrganisationalUnitId:",
            ),
        ] {
            let e = route(&m, put(principal, id, &body)).await.unwrap_err();
            assert_eq!(e.status, status, "{body}: {e:?}");
            assert!(
                e.cause.starts_with(starts) || e.cause.contains(starts),
                "{body}: {}",
                e.cause
            );
            assert_eq!(m.store.snapshot(), before, "{body}");
        }
        assert!(m.updates.executions.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn only_active_accounts_are_updated_and_one_at_a_time() {
        let (m, account) = manager().await;
        route(&m, put(ADMIN, account.id, r#"{"Tags": {"A": "1"}}"#))
            .await
            .unwrap();
        let before = m.store.snapshot();
        let e = route(&m, put(ADMIN, account.id, r#"{"Tags": {"A": "2"}}"#))
            .await
            .unwrap_err();
        assert_eq!((e.status, e.error), (409, ErrorName::OperationInProgress));
        assert_eq!(m.store.snapshot(), before);

        let mut suspended = stored(&m, account.id).await;
        suspended.status = AccountStatus::Suspended;
        suspended.user_task_id = None;
        m.store.insert(suspended);
        let before = m.store.snapshot();
        let e = route(&m, put(ADMIN, account.id, r#"{"Name": "x"}"#))
            .await
            .unwrap_err();
        assert_eq!((e.status, e.error), (409, ErrorName::NotUpdatable));
        assert!(e.cause.contains("SUSPENDED"), "{}", e.cause);
        assert_eq!(m.store.snapshot(), before);
    }

    #[tokio::test]
    async fn members_move_each_under_its_own_task_and_a_refusal_stops_none_of_the_others() {
        let (m, bakery) = manager().await;
        let mut security =
            domain::fixtures::account_in(AccountStatus::Active, "security", Some("111111111111"));
        security.account_role = AccountRole::Security;
        m.store.insert(security.clone());
        let unknown = Uuid::new_v4();
        let body = json!({"Members": [
            {"AccountId": security.id, "AccountTypeName": "production"},
            {"AccountId": bakery.id, "AccountTypeName": "production"},
            {"AccountId": unknown, "AccountTypeName": "production"},
        ]})
        .to_string();
        let req = ApiRequest {
            route_key: UPDATE_ACCOUNT_TYPE_MEMBERS.into(),
            principal: Some(ADMIN.into()),
            body: Some(body),
            request_id: "req-1".into(),
            ..ApiRequest::default()
        };
        let answer = route(&m, req).await.unwrap();
        assert_eq!(
            answer["Detail"]["Operation"],
            "accounts:UpdateAccountTypeMembers"
        );
        assert_eq!(
            answer.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["Detail", "DetailType"],
            "the Stax schema admits no other property"
        );
        let task_id: Uuid = answer["Detail"]["TaskId"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let task = m.store.get_task(task_id).await.unwrap().unwrap().value;
        assert_eq!(task.status, TaskStatus::Failed, "one account was refused");
        assert_eq!(task.accounts, [security.id, bakery.id, unknown]);
        assert!(
            task.logs[0].contains("not moved: AccountType:"),
            "{:?}",
            task.logs
        );
        assert!(
            task.logs[1].contains("(bakery): moving to production under task"),
            "{:?}",
            task.logs
        );
        assert!(
            task.logs[2].contains("not moved:") && task.logs[2].contains("NotFound"),
            "{:?}",
            task.logs
        );
        // Only the bakery moves: its own lock and task, the update workflow with its new type.
        let starts = m.updates.executions.lock().unwrap().clone();
        assert_eq!(starts.len(), 1);
        assert_eq!(starts[0].1["AccountId"], bakery.id.to_string());
        assert!(
            starts[0].1["Update"]["AccountType"].is_string(),
            "{}",
            starts[0].1
        );
        assert!(stored(&m, bakery.id).await.user_task_id.is_some());
        assert!(stored(&m, security.id).await.user_task_id.is_none());

        // A bad body writes nothing, not even a task; readers may not move accounts.
        let before = m.store.snapshot();
        for (principal, body, status) in [
            (ADMIN, r#"{"Members": []}"#, 400),
            (READER, r#"{"Members": []}"#, 403),
        ] {
            let req = ApiRequest {
                route_key: UPDATE_ACCOUNT_TYPE_MEMBERS.into(),
                principal: Some(principal.into()),
                body: Some(body.into()),
                ..ApiRequest::default()
            };
            assert_eq!(route(&m, req).await.unwrap_err().status, status);
        }
        assert_eq!(m.store.snapshot(), before);
    }

    #[tokio::test]
    async fn foundation_and_management_accounts_keep_what_the_service_needs() {
        let (m, _) = manager().await;
        let production = m
            .store
            .get_account_type_by_name("production")
            .await
            .unwrap()
            .unwrap();
        let mut security =
            domain::fixtures::account_in(AccountStatus::Active, "security", Some("111111111111"));
        security.account_role = AccountRole::Security;
        let mut management =
            domain::fixtures::account_in(AccountStatus::Active, "management", Some("123456789012"));
        management.account_role = AccountRole::Management;
        m.store.insert(security.clone());
        m.store.insert(management.clone());
        let before = m.store.snapshot();
        for (id, body, field) in [
            (
                security.id,
                format!(r#"{{"AccountType": "{}"}}"#, production.id),
                "AccountType:",
            ),
            (
                management.id,
                r#"{"AwsAccountAlias": "mgmt"}"#.to_owned(),
                "AwsAccountAlias:",
            ),
            (
                management.id,
                r#"{"AwsAccountName": "Mgmt"}"#.to_owned(),
                "AwsAccountName:",
            ),
        ] {
            let e = route(&m, put(ADMIN, id, &body)).await.unwrap_err();
            assert_eq!(
                (e.status, e.error),
                (409, ErrorName::NotUpdatable),
                "{body}"
            );
            assert!(e.cause.starts_with(field), "{}", e.cause);
        }
        assert_eq!(m.store.snapshot(), before);
        // Their record's name and tags may change.
        route(
            &m,
            put(
                ADMIN,
                security.id,
                r#"{"Name": "sec", "Tags": {"Team": "sec"}}"#,
            ),
        )
        .await
        .unwrap();
    }

    fn close_request(principal: &str, account: Uuid) -> ApiRequest {
        ApiRequest {
            route_key: CLOSE_ACCOUNT.into(),
            principal: Some(principal.into()),
            body: Some(format!(r#"{{"Id": "{account}"}}"#)),
            request_id: "req-1".into(),
            ..ApiRequest::default()
        }
    }

    const OPERATIONS: &str = "arn:aws:iam::123456789012:role/Ops";

    #[tokio::test]
    async fn a_closure_takes_the_lock_and_keeps_the_status_until_aws_has_the_account() {
        let (m, account) = manager().await;
        let answer = route(&m, close_request(ADMIN, account.id)).await.unwrap();
        assert_eq!(answer["Detail"]["Operation"], "accounts:CloseAccount");
        assert!(
            answer["Detail"].get("Account").is_none(),
            "CloseAccountResponse has none"
        );
        let after = stored(&m, account.id).await;
        assert_eq!(after.status, AccountStatus::Active);
        assert!(after.user_task_id.is_some());
        let input = m.closes.executions.lock().unwrap()[0].1.clone();
        assert_eq!(input["AwsAccountId"], "444455556666");
        // An update of the account now waits its turn.
        let before = m.store.snapshot();
        let e = route(&m, put(ADMIN, account.id, r#"{"Name": "x"}"#))
            .await
            .unwrap_err();
        assert_eq!((e.status, e.error), (409, ErrorName::OperationInProgress));
        assert_eq!(m.store.snapshot(), before);
    }

    #[tokio::test]
    async fn closures_are_for_admins_and_member_accounts_only() {
        let (mut m, account) = manager().await;
        m.access = AccessPolicy::from_json(&format!(
            r#"{{"{ADMIN}": "admin", "{OPERATIONS}": "operations"}}"#
        ))
        .unwrap();
        let mut security =
            domain::fixtures::account_in(AccountStatus::Active, "security", Some("111111111111"));
        security.account_role = AccountRole::Security;
        m.store.insert(security.clone());
        let mut closed =
            domain::fixtures::account_in(AccountStatus::Closed, "gone", Some("222222222222"));
        closed.account_role = AccountRole::Member;
        m.store.insert(closed.clone());
        let before = m.store.snapshot();
        let mut malformed = close_request(ADMIN, account.id);
        malformed.body = Some(r#"{"Id": "123"}"#.into());
        for (request, status, error) in [
            (
                close_request(OPERATIONS, account.id),
                403,
                ErrorName::Forbidden,
            ),
            (
                close_request(ADMIN, Uuid::new_v4()),
                404,
                ErrorName::NotFound,
            ),
            (malformed, 400, ErrorName::ValidationError),
            (
                close_request(ADMIN, security.id),
                409,
                ErrorName::NotClosable,
            ),
            (close_request(ADMIN, closed.id), 409, ErrorName::NotClosable),
        ] {
            let e = route(&m, request).await.unwrap_err();
            assert_eq!((e.status, e.error), (status, error), "{}", e.cause);
        }
        assert_eq!(m.store.snapshot(), before);
        assert!(m.closes.executions.lock().unwrap().is_empty());
    }

    fn suspension_request(route_key: &str, principal: &str, account: Uuid) -> ApiRequest {
        ApiRequest {
            route_key: route_key.into(),
            principal: Some(principal.into()),
            path: [("account_id".to_owned(), account.to_string())].into(),
            request_id: "req-1".into(),
            ..ApiRequest::default()
        }
    }

    #[tokio::test]
    async fn suspending_needs_an_active_member_and_reactivating_a_suspended_one() {
        let (m, account) = manager().await;
        let before = m.store.snapshot();
        for (route_key, principal, status, error) in [
            (REACTIVATE_ACCOUNT, ADMIN, 409, ErrorName::NotSuspendable),
            (SUSPEND_ACCOUNT, READER, 403, ErrorName::Forbidden),
        ] {
            let e = route(&m, suspension_request(route_key, principal, account.id))
                .await
                .unwrap_err();
            assert_eq!((e.status, e.error), (status, error), "{}", e.cause);
        }
        let mut with_body = suspension_request(SUSPEND_ACCOUNT, ADMIN, account.id);
        with_body.body = Some(r#"{"Reason": "x"}"#.into());
        assert_eq!(route(&m, with_body).await.unwrap_err().status, 400);
        assert_eq!(m.store.snapshot(), before, "refusals write nothing");

        let answer = route(&m, suspension_request(SUSPEND_ACCOUNT, ADMIN, account.id))
            .await
            .unwrap();
        assert_eq!(answer["DetailType"], "Account Suspend Requested");
        let after = stored(&m, account.id).await;
        assert_eq!(
            after.status,
            AccountStatus::Active,
            "ACTIVE until the SCP is on"
        );
        assert!(after.user_task_id.is_some());
        let input = m.suspensions.executions.lock().unwrap()[0].1.clone();
        assert_eq!(
            (input["Change"].as_str(), input["AwsAccountId"].as_str()),
            (Some("Suspend"), Some("444455556666"))
        );
    }

    #[tokio::test]
    async fn a_lock_left_by_an_update_whose_execution_ended_is_taken_over() {
        use domain::StartWorkflow;
        let (m, account) = manager().await;
        // An update's execution died (stopped by hand) holding the lock: the account is ACTIVE.
        route(&m, put(ADMIN, account.id, r#"{"Tags": {"A": "1"}}"#))
            .await
            .unwrap();
        let held = stored(&m, account.id).await.user_task_id.unwrap();
        let dead = m.store.get_task(held).await.unwrap().unwrap().value;
        let execution = dead
            .execution
            .clone()
            .expect("the task names its execution");
        m.updates
            .ended
            .lock()
            .unwrap()
            .insert(execution.clone(), "ABORTED".into());
        // Both workflows answer for every execution (a lock may be any operation's).
        m.closes.start_workflow("unused", &json!({})).await.unwrap();
        *m.closes.ended.lock().unwrap() = m.updates.ended.lock().unwrap().clone();
        m.closes
            .executions
            .lock()
            .unwrap()
            .extend(m.updates.executions.lock().unwrap().clone());

        route(&m, close_request(ADMIN, account.id)).await.unwrap();
        let after = stored(&m, account.id).await;
        assert_ne!(
            after.user_task_id,
            Some(held),
            "the closure holds the lock now"
        );
        assert_eq!(after.status, AccountStatus::Active);
        let dead = m.store.get_task(held).await.unwrap().unwrap().value;
        assert_eq!(dead.status, TaskStatus::Failed);
        assert!(
            dead.logs
                .last()
                .unwrap()
                .contains("its lock was taken over"),
            "{:?}",
            dead.logs
        );
    }

    /// Suspend and reactivate are extensions: openapi.json documents them.
    #[test]
    fn the_extension_routes_are_in_the_openapi_file() {
        let doc: Value = serde_json::from_str(include_str!("../../../openapi.json")).unwrap();
        for route in [SUSPEND_ACCOUNT, REACTIVATE_ACCOUNT] {
            let (method, path) = route.split_once(' ').unwrap();
            assert!(
                doc["paths"][path][method.to_lowercase()].is_object(),
                "{route} is not in openapi.json"
            );
        }
    }

    #[tokio::test]
    async fn fields_equal_to_the_record_are_not_applied_again() {
        let (m, account) = manager().await;
        let body = format!(
            r#"{{"Name": "bakery", "AccountType": "{}"}}"#,
            account.account_type.unwrap()
        );
        route(&m, put(ADMIN, account.id, &body)).await.unwrap();
        let input = m.updates.executions.lock().unwrap()[0].1.clone();
        assert_eq!(input["Update"], json!({}));
    }

    #[tokio::test]
    async fn a_workflow_that_cannot_start_fails_the_task_and_frees_the_account() {
        let (mut m, account) = manager().await;
        m.updates.refusal = Some("StateMachineDoesNotExist".into());
        let e = route(
            &m,
            put(
                ADMIN,
                account.id,
                r#"{"Name": "renamed", "Tags": {"A": "1"}}"#,
            ),
        )
        .await
        .unwrap_err();
        assert_eq!(e.status, 500);
        let after = stored(&m, account.id).await;
        assert_eq!(
            (after.status, after.user_task_id),
            (AccountStatus::Active, None)
        );
        assert_eq!(after.name, "bakery", "the rename is undone with the lock");
        assert!(
            m.store
                .get_account_by_name("renamed")
                .await
                .unwrap()
                .is_none()
        );
        let trail = m.store.audit_trail(account.id).await.unwrap();
        let released = trail.last().unwrap().lock_released_by.unwrap();
        let task = m.store.get_task(released).await.unwrap().unwrap().value;
        assert_eq!(task.status, TaskStatus::Failed);
        assert!(
            task.logs
                .last()
                .unwrap()
                .contains("StateMachineDoesNotExist")
        );
    }
}
