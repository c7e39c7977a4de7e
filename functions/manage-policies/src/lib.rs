//! The API of Policies (`admin` only): service control policies the service owns, attached to
//! Account Types (the type's OU, so every account of the type) and to accounts.
//!
//! Each policy is a record — the desired state: name, description, content, attachments — and
//! an SCP tagged with the service's tag and the record's id. A change writes the record first,
//! over the version read (two changes at once: one 409), then makes the one Organizations call
//! it needs; a call AWS refuses puts the record back and answers 409 with AWS's reason. A change
//! cut short between the two (a crash, a timeout) is finished by the drift run ([`drift`]),
//! which makes Organizations match the records and repairs what was changed outside the
//! service. Each change is recorded as a finished task whose Logs say what was done.
//!
//! - `POST /20190206/policies` (Stax `policies.CreatePolicy`), `PUT`/`DELETE …/{policy_id}`;
//! - `POST /20190206/policies/{policy_id}/attachments` (`policies.AttachPolicy`: `AccountId`,
//!   `OrganisationalUnitId` — an Account Type's id — or the `AccountTypeId` extension),
//!   `DELETE /20190206/policies/attachments/{policy_attachment_id}` (`policies.DetachPolicy`);
//! - `PUT /20190206/account-types/policies` (the 2023 `accounts.UpdateAccountTypePolicies`);
//! - `POST /20190206/policies/drift` (an extension) and the schedule: the drift run.
//!
//! The foundation policy is visible (`PolicyOwner` STAX) but is the foundation bootstrap's: it
//! is never changed, detached or deleted here.

pub mod drift;
pub mod orgs;

use aws::OrganizationsError;
use aws::organizations::OuError;
use domain::config::{self, ConfigError};
use domain::policies::{
    AttachmentTarget, MAX_POLICIES_PER_TARGET, Policy, PolicyAttachment, PolicyOwner, PolicyStatus,
};
use domain::{
    AccountRole, AccountStatus, AccountTypeRef, AccountTypeStatus, ErrorName, Named, Operation,
    Task, TaskStatus,
};
use edge::policies::{AttachTo, PolicyRequest, UpdateAccountTypePoliciesRequest};
use edge::stax::parse_uuid;
use edge::{AccessPolicy, ApiError, ApiRequest, Permission, authorize};
use serde::Deserialize;
use serde_json::{Value, json};
use store::{AccountReads, AccountTypes, DynamoStore, Policies, StoreError, Tasks, Versioned};
use uuid::Uuid;

pub use drift::{DriftEvents, DriftReport};
pub use orgs::{CreatedScp, PolicyOrgs};

pub const CREATE_POLICY: &str = "POST /20190206/policies";
pub const UPDATE_POLICY: &str = "PUT /20190206/policies/{policy_id}";
pub const DELETE_POLICY: &str = "DELETE /20190206/policies/{policy_id}";
pub const ATTACH_POLICY: &str = "POST /20190206/policies/{policy_id}/attachments";
pub const DETACH_POLICY: &str = "DELETE /20190206/policies/attachments/{policy_attachment_id}";
pub const UPDATE_ACCOUNT_TYPE_POLICIES: &str = "PUT /20190206/account-types/policies";
pub const CHECK_POLICY_DRIFT: &str = "POST /20190206/policies/drift";

/// The store this function uses.
pub trait Records: AccountReads + AccountTypes + Policies + Tasks {}
impl<S: AccountReads + AccountTypes + Policies + Tasks> Records for S {}

pub struct PolicyManager<S, O, E> {
    pub store: S,
    pub organizations: O,
    pub events: E,
    pub access: AccessPolicy,
}

impl PolicyManager<DynamoStore, aws_sdk_organizations::Client, drift::Bus> {
    /// `TABLE_NAME`, `ACCESS_ROLES`, `EVENT_BUS_NAME`.
    pub fn from_env(sdk: &aws::SdkConfig) -> Result<Self, ConfigError> {
        Ok(PolicyManager {
            store: DynamoStore::from_env(sdk)?,
            organizations: aws::organizations(sdk),
            events: drift::Bus {
                client: aws_sdk_eventbridge::Client::new(sdk),
                bus: config::required("EVENT_BUS_NAME")?,
            },
            access: AccessPolicy::from_json(&config::required("ACCESS_ROLES")?)?,
        })
    }
}

/// The schedule's event: `{"Action": "Schedule"}`, a drift run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "Action")]
pub enum Event {
    Schedule,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DriftRunFailed(String);

impl Named for DriftRunFailed {
    fn name(&self) -> ErrorName {
        ErrorName::OrganizationsCallFailed
    }
}

/// The scheduled drift run: its task's id and what it found.
pub async fn handle<S: Records, O: PolicyOrgs, E: DriftEvents>(
    m: &PolicyManager<S, O, E>,
    event: Event,
) -> Result<Value, DriftRunFailed> {
    match event {
        Event::Schedule => {
            let task = drift::run(m, "Requested by schedule")
                .await
                .map_err(|e| DriftRunFailed(e.to_string()))?;
            Ok(json!({"TaskId": task.id, "Status": task.status, "Logs": task.logs}))
        }
    }
}

pub async fn route<S: Records, O: PolicyOrgs, E: DriftEvents>(
    m: &PolicyManager<S, O, E>,
    req: ApiRequest,
) -> Result<Value, ApiError> {
    let req = &req;
    if ![
        CREATE_POLICY,
        UPDATE_POLICY,
        DELETE_POLICY,
        ATTACH_POLICY,
        DETACH_POLICY,
        UPDATE_ACCOUNT_TYPE_POLICIES,
        CHECK_POLICY_DRIFT,
    ]
    .contains(&req.route_key.as_str())
    {
        return Err(ApiError::not_found(format!("no route {:?}", req.route_key)));
    }
    // Policies decide what whole groups of accounts may do: admin only.
    authorize(&m.access, req.principal.as_deref(), Permission::Admin)?;
    req.only_query(&[])?;
    match req.route_key.as_str() {
        CREATE_POLICY => create(m, req).await,
        UPDATE_POLICY => update(m, req).await,
        DELETE_POLICY => delete(m, req).await,
        ATTACH_POLICY => attach_route(m, req).await,
        DETACH_POLICY => detach_route(m, req).await,
        UPDATE_ACCOUNT_TYPE_POLICIES => update_type_policies(m, req).await,
        _ => {
            let principal = req.principal.as_deref().unwrap_or("an unsigned caller");
            let task = drift::run(m, &format!("Requested by {principal}"))
                .await
                .map_err(|e| store_error(req, e))?;
            Ok(event(
                "Policy Drift Checked",
                &task,
                task.logs.last().cloned().unwrap_or_default(),
                None,
            ))
        }
    }
}

/// A Stax `…PolicyEvent` body: the finished task and, for some, the policy or attachment.
fn event(detail_type: &str, task: &Task, message: String, extra: Option<(&str, Value)>) -> Value {
    let mut detail = json!({
        "Message": message,
        "Operation": task.operation,
        "OperationStatus": task.status,
        "Severity": if task.status == TaskStatus::Failed { "ERROR" } else { "INFO" },
        "TaskId": task.id,
    });
    if let Some((key, value)) = extra {
        detail[key] = value;
    }
    json!({"DetailType": detail_type, "Detail": detail})
}

/// A policy's change done: its task recorded `SUCCEEDED` with `logs`, and the Stax
/// `…PolicyEvent` answer (the first log line its Message).
async fn changed<S: Tasks, O, E>(
    m: &PolicyManager<S, O, E>,
    req: &ApiRequest,
    task: Task,
    detail_type: &str,
    what: (&str, Value),
    logs: Vec<String>,
) -> Result<Value, ApiError> {
    let message = logs.first().cloned().unwrap_or_default();
    let task = finish(&m.store, req, task, TaskStatus::Succeeded, logs).await?;
    tracing::info!(task = %task.id, principal = req.principal, detail = %what.1, "{detail_type}");
    Ok(event(detail_type, &task, message, Some(what)))
}

fn policy_ref(id: Uuid) -> (&'static str, Value) {
    ("Policy", json!({"PolicyId": id}))
}

fn attachment_ref(id: Uuid) -> (&'static str, Value) {
    ("PolicyAttachment", json!({"PolicyAttachmentId": id}))
}

/// Records `task` finished with `logs`.
async fn finish<S: Tasks>(
    store: &S,
    req: &ApiRequest,
    mut task: Task,
    status: TaskStatus,
    logs: Vec<String>,
) -> Result<Task, ApiError> {
    task.status = status;
    task.logs = logs;
    task.modified_ts = domain::timestamp::now();
    store
        .create_task(&task)
        .await
        .map_err(|e| req.internal(&e))?;
    Ok(task)
}

async fn create<S: Records, O: PolicyOrgs, E>(
    m: &PolicyManager<S, O, E>,
    req: &ApiRequest,
) -> Result<Value, ApiError> {
    let body = PolicyRequest::parse_create(req.body.as_deref())?;
    let name = body.name.expect("parse_create requires it");
    name_free(m, req, &name, None).await?;
    let task = Task::new(Operation::CreatePolicy, Vec::new(), chrono::Utc::now());
    let now = domain::timestamp::now();
    let policy = Policy {
        id: Uuid::new_v4(),
        name,
        description: body.description.expect("parse_create requires it"),
        content: body.content.expect("parse_create requires it"),
        status: PolicyStatus::CreateInProgress,
        owner: PolicyOwner::Organisation,
        aws_id: None,
        organisation_id: None,
        tags: body.tags.unwrap_or_default(),
        attachments: Vec::new(),
        created_ts: now,
        modified_ts: now,
        task: Some(task.id),
    };
    // Recorded first: a crash after the SCP is made leaves a record the drift run finishes.
    m.store
        .create_policy(&policy)
        .await
        .map_err(|e| store_error(req, e))?;
    let recorded = Versioned {
        value: policy.clone(),
        version: 1,
    };
    let created = match m.organizations.create_scp(&policy).await {
        Ok(created) => created,
        Err(e) => {
            // Nothing was made: the record goes (an SCP made after all is the drift run's to
            // remove, tagged with an id no record has).
            if let Err(undo) = m.store.remove_policy(&recorded).await {
                tracing::error!(error = %undo, policy = %policy.id, "a creation AWS refused left its record");
            }
            return Err(refusal(req, e, &format!("policy {}", policy.name)));
        }
    };
    let active = Policy {
        status: PolicyStatus::Active,
        aws_id: Some(created.aws_id.clone()),
        organisation_id: domain::policies::organization_of_policy_arn(&created.arn)
            .map(domain::organisation_id),
        modified_ts: domain::timestamp::now(),
        ..policy
    };
    match m.store.replace_policy(&recorded, &active).await {
        Ok(_) => {}
        // A drift run finished the creation first (it met the record mid-request): the same
        // SCP, found by the record's id, so the creation is done.
        Err(StoreError::StalePolicy(_))
            if m.store
                .get_policy(active.id)
                .await
                .ok()
                .flatten()
                .is_some_and(|now| {
                    now.value.aws_id.as_deref() == Some(created.aws_id.as_str())
                }) => {}
        Err(e) => return Err(store_error(req, e)),
    }
    let log = format!("Created SCP {} for policy {}", created.aws_id, active.name);
    changed(
        m,
        req,
        task,
        "Policy Created",
        policy_ref(active.id),
        vec![log],
    )
    .await
}

async fn update<S: Records, O: PolicyOrgs, E>(
    m: &PolicyManager<S, O, E>,
    req: &ApiRequest,
) -> Result<Value, ApiError> {
    let current = changeable(m, req, policy_id(req)?).await?;
    let body = PolicyRequest::parse_update(req.body.as_deref())?;
    if let Some(name) = &body.name {
        name_free(m, req, name, Some(current.value.id)).await?;
    }
    let task = Task::new(Operation::UpdatePolicy, Vec::new(), chrono::Utc::now());
    let next = Policy {
        name: body.name.unwrap_or_else(|| current.value.name.clone()),
        description: body
            .description
            .unwrap_or_else(|| current.value.description.clone()),
        content: body
            .content
            .unwrap_or_else(|| current.value.content.clone()),
        tags: body.tags.unwrap_or_else(|| current.value.tags.clone()),
        modified_ts: domain::timestamp::now(),
        task: Some(task.id),
        ..current.value.clone()
    };
    let updated = m
        .store
        .replace_policy(&current, &next)
        .await
        .map_err(|e| store_error(req, e))?;
    // A policy still being created gets the new content when its creation is finished.
    if let Some(aws_id) = &next.aws_id
        && let Err(e) = m.organizations.update_scp(aws_id, &next).await
    {
        undo(&m.store, &updated, &current.value).await;
        return Err(refusal(req, e, &format!("policy {}", next.name)));
    }
    let mut logs = vec![format!("Updated policy {}", next.name)];
    logs.extend(drift::settle(m, next.id, updated.version).await);
    changed(m, req, task, "Policy Updated", policy_ref(next.id), logs).await
}

async fn delete<S: Records, O: PolicyOrgs, E>(
    m: &PolicyManager<S, O, E>,
    req: &ApiRequest,
) -> Result<Value, ApiError> {
    let id = policy_id(req)?;
    let current = changeable(m, req, id).await?;
    if let Some(first) = current.value.attachments.first() {
        return Err(ApiError::conflict(
            ErrorName::PolicyInUse,
            format!(
                "policy {} has {} attachment(s), {} among them: detach it first \
                 (DELETE /20190206/policies/attachments/{})",
                current.value.name,
                current.value.attachments.len(),
                first.aws_target_id,
                first.id
            ),
        ));
    }
    let task = Task::new(Operation::DeletePolicy, Vec::new(), chrono::Utc::now());
    let deleted = Policy {
        status: PolicyStatus::Deleted,
        modified_ts: domain::timestamp::now(),
        task: Some(task.id),
        ..current.value.clone()
    };
    let written = m
        .store
        .replace_policy(&current, &deleted)
        .await
        .map_err(|e| store_error(req, e))?;
    if let Some(aws_id) = &deleted.aws_id
        && let Err(e) = m.organizations.delete_scp(aws_id).await
    {
        undo(&m.store, &written, &current.value).await;
        if e.code.as_deref() == Some("PolicyInUseException") {
            return Err(ApiError::conflict(
                ErrorName::PolicyInUse,
                format!(
                    "SCP {aws_id} of policy {} was attached outside the service; the next drift \
                     run detaches it, or detach it in AWS Organizations: {e}",
                    deleted.name
                ),
            ));
        }
        return Err(refusal(req, e, &format!("policy {}", deleted.name)));
    }
    let log = format!("Deleted policy {}", deleted.name);
    changed(m, req, task, "Policy Deleted", policy_ref(id), vec![log]).await
}

async fn attach_route<S: Records, O: PolicyOrgs, E>(
    m: &PolicyManager<S, O, E>,
    req: &ApiRequest,
) -> Result<Value, ApiError> {
    let id = policy_id(req)?;
    let to = AttachTo::parse(req.body.as_deref())?;
    let task = Task::new(Operation::AttachPolicy, Vec::new(), chrono::Utc::now());
    let target = resolve(m, req, to.target()).await?;
    let (attachment, log) = attach(m, req, id, target, task.id).await?;
    let what = attachment_ref(attachment.id);
    changed(m, req, task, "Policy Attached", what, vec![log]).await
}

async fn detach_route<S: Records, O: PolicyOrgs, E>(
    m: &PolicyManager<S, O, E>,
    req: &ApiRequest,
) -> Result<Value, ApiError> {
    let raw = req.path_param("policy_attachment_id");
    let attachment =
        parse_uuid(raw).map_err(|e| ApiError::bad_request(format!("policy_attachment_id: {e}")))?;
    let policies = m
        .store
        .list_policies()
        .await
        .map_err(|e| store_error(req, e))?;
    let Some(policy) = policies
        .iter()
        .find(|p| p.value.attachments.iter().any(|a| a.id == attachment))
    else {
        // The foundation policy's attachment to the root is the service's.
        let service = m
            .organizations
            .service_policies()
            .await
            .map_err(|e| req.internal(&e))?;
        if let Some(p) = service
            .iter()
            .find(|p| p.attachments.iter().any(|a| a.id == attachment))
        {
            return Err(not_changeable(p));
        }
        return Err(ApiError::not_found(format!(
            "no policy attachment has id {attachment}"
        )));
    };
    let target = policy
        .value
        .attachments
        .iter()
        .find(|a| a.id == attachment)
        .expect("found above")
        .target
        .clone();
    let task = Task::new(Operation::DetachPolicy, Vec::new(), chrono::Utc::now());
    let log = detach(m, req, policy.value.id, &target, task.id).await?;
    let what = attachment_ref(attachment);
    changed(m, req, task, "Policy Detached", what, vec![log]).await
}

/// `PUT /20190206/account-types/policies`: every type and policy the body names is checked
/// first (an unknown one is a 404 naming it, as the 2023 document says, nothing written); then
/// each change is made as the attachment routes make it — attaching what is attached, or
/// removing what is not, changes nothing ("duplicate additions or removals are ignored") — one
/// refusal stopping none of the others, each logged in the request's task (`FAILED` when any
/// was refused).
async fn update_type_policies<S: Records, O: PolicyOrgs, E>(
    m: &PolicyManager<S, O, E>,
    req: &ApiRequest,
) -> Result<Value, ApiError> {
    let body = UpdateAccountTypePoliciesRequest::parse(req.body.as_deref())?;
    let mut checked = Vec::new();
    for (adding, pairs) in [(true, &body.add), (false, &body.remove)] {
        for (reference, policy) in pairs {
            let account_type = m
                .store
                .find_account_type(reference)
                .await
                .map_err(|e| store_error(req, e))?
                .ok_or_else(|| {
                    ApiError::not_found(format!("no Account Type {}", describe(reference)))
                })?;
            if m.store
                .get_policy(*policy)
                .await
                .map_err(|e| store_error(req, e))?
                .is_none()
            {
                return Err(ApiError::not_found(format!("no policy has id {policy}")));
            }
            checked.push((adding, account_type, *policy));
        }
    }
    let task = Task::new(
        Operation::UpdateAccountTypePolicies,
        Vec::new(),
        chrono::Utc::now(),
    );
    let mut logs = Vec::new();
    let mut refused = 0;
    for (adding, account_type, policy) in checked {
        let target = AttachmentTarget::AccountType {
            account_type_id: account_type.id,
        };
        let done = if adding {
            match resolve(m, req, target).await {
                Ok(resolved) => attach(m, req, policy, resolved, task.id)
                    .await
                    .map(|(_, log)| log),
                Err(e) => Err(e),
            }
        } else {
            match detach(m, req, policy, &target, task.id).await {
                Err(e) if e.status == 404 => Ok(format!(
                    "Account Type {}: policy {policy} was not attached",
                    account_type.name
                )),
                done => done,
            }
        };
        logs.push(match done {
            Ok(log) => log,
            Err(e) => {
                refused += 1;
                format!(
                    "Account Type {}: policy {policy} not {}: {} ({})",
                    account_type.name,
                    if adding { "attached" } else { "detached" },
                    e.cause,
                    e.error
                )
            }
        });
    }
    let total = logs.len();
    let status = if refused == 0 {
        TaskStatus::Succeeded
    } else {
        TaskStatus::Failed
    };
    let task = finish(&m.store, req, task, status, logs).await?;
    Ok(event(
        "Account Type Policies Updated",
        &task,
        format!("{} of {total} policy changes made", total - refused),
        None,
    ))
}

fn describe(reference: &AccountTypeRef) -> String {
    match reference {
        AccountTypeRef::Id(id) => format!("has id {id}"),
        AccountTypeRef::Name(name) => format!("is named {name:?}"),
    }
}

/// An attachment's target with its Organizations id.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub target: AttachmentTarget,
    pub aws_target_id: String,
    /// In words, for the Logs and refusals.
    pub label: String,
}

/// Where `target` is in Organizations, if it admits policies: a member account that is in the
/// organization and not closed (SCPs do not apply to the management account, and the
/// foundation accounts hold what the service's own policy protects); an active Account Type
/// that is not a foundation type (its OU, made for a built-in type that has none yet).
async fn resolve<S: Records, O: PolicyOrgs, E>(
    m: &PolicyManager<S, O, E>,
    req: &ApiRequest,
    target: AttachmentTarget,
) -> Result<Resolved, ApiError> {
    let refuse = |why: String| ApiError::conflict(ErrorName::NotAttachable, why);
    match target {
        AttachmentTarget::Account { account_id } => {
            let account = m
                .store
                .get_account(account_id)
                .await
                .map_err(|e| store_error(req, e))?
                .ok_or_else(|| ApiError::not_found(format!("account {account_id} does not exist")))?
                .value;
            if account.account_role != AccountRole::Member {
                return Err(refuse(format!(
                    "{} is the organization's {} account: policies are attached to member \
                     accounts only",
                    account.name, account.account_role
                )));
            }
            if matches!(account.status, AccountStatus::Closed) {
                return Err(refuse(format!("account {} is CLOSED", account.name)));
            }
            let aws_target_id = account.aws_account_id.clone().ok_or_else(|| {
                refuse(format!(
                    "account {} has no AWS account yet ({})",
                    account.name, account.status
                ))
            })?;
            Ok(Resolved {
                label: format!("account {} ({aws_target_id})", account.name),
                target,
                aws_target_id,
            })
        }
        AttachmentTarget::AccountType { account_type_id } => {
            let t = m
                .store
                .get_account_type(account_type_id)
                .await
                .map_err(|e| store_error(req, e))?
                .ok_or_else(|| {
                    ApiError::not_found(format!("no Account Type has id {account_type_id}"))
                })?;
            if t.status != AccountTypeStatus::Active {
                return Err(refuse(format!("Account Type {} is {}", t.name, t.status)));
            }
            if t.built_in()
                .is_some_and(|b| b.account_role() != AccountRole::Member)
            {
                return Err(refuse(format!(
                    "{} holds a foundation account, which the foundation policy protects: \
                     policies are attached to the other types",
                    t.name
                )));
            }
            let ou = match &t.ou {
                Some(ou) => ou.clone(),
                // `default` finds its OU by name until it is first renamed or attached to.
                None => m
                    .organizations
                    .type_ou(&t.name)
                    .await
                    .map_err(|e| ou_error(req, e))?,
            };
            Ok(Resolved {
                label: format!("Account Type {} (OU {ou})", t.name),
                target,
                aws_target_id: ou,
            })
        }
        AttachmentTarget::Root => Err(refuse(
            "the root carries the service's own policy only".into(),
        )),
    }
}

/// Attaches policy `id` to `to`: recorded first over the version read, then in AWS (put back
/// when AWS refuses). Already attached there answers the attachment there is.
async fn attach<S: Records, O: PolicyOrgs, E>(
    m: &PolicyManager<S, O, E>,
    req: &ApiRequest,
    id: Uuid,
    to: Resolved,
    task: Uuid,
) -> Result<(PolicyAttachment, String), ApiError> {
    let current = changeable(m, req, id).await?;
    if let Some(existing) = current.value.attachment_to(&to.target) {
        return Ok((
            existing.clone(),
            format!(
                "Policy {} was already attached to {}",
                current.value.name, to.label
            ),
        ));
    }
    let Some(aws_id) = current.value.aws_id.clone() else {
        return Err(ApiError::conflict(
            ErrorName::PolicyNotChangeable,
            format!(
                "policy {} is still being created: try again in a minute",
                current.value.name
            ),
        ));
    };
    // AWS counts every SCP directly on the target, FullAWSAccess among them: refused before
    // anything is written.
    let on_target = m
        .organizations
        .policies_on(&to.aws_target_id)
        .await
        .map_err(|e| refusal(req, e, &to.label))?;
    if on_target.len() >= places(&to.target) {
        return Err(limit_reached(&to, on_target.len()));
    }
    let attachment = PolicyAttachment {
        id: Uuid::new_v4(),
        target: to.target.clone(),
        aws_target_id: to.aws_target_id.clone(),
        created_ts: domain::timestamp::now(),
        task: Some(task),
    };
    let mut next = current.value.clone();
    next.attachments.push(attachment.clone());
    next.modified_ts = domain::timestamp::now();
    let written = m
        .store
        .replace_policy(&current, &next)
        .await
        .map_err(|e| store_error(req, e))?;
    if let Err(e) = m.organizations.attach(&aws_id, &to.aws_target_id).await {
        undo(&m.store, &written, &current.value).await;
        // Another attachment took the last place between the count and this call (AWS says
        // so in the exception's Reason, which the SDK's error does not carry): count again.
        if e.code.as_deref() == Some("ConstraintViolationException")
            && let Ok(now) = m.organizations.policies_on(&to.aws_target_id).await
            && now.len() >= MAX_POLICIES_PER_TARGET
        {
            return Err(limit_reached(&to, now.len()));
        }
        return Err(refusal(req, e, &to.label));
    }
    tracing::info!(policy = %id, target = to.aws_target_id, principal = req.principal, "policy attached");
    let mut log = format!("Attached policy {} to {}", next.name, to.label);
    for line in drift::settle(m, id, written.version).await {
        log.push_str("; then ");
        log.push_str(&line);
    }
    Ok((attachment, log))
}

/// Detaches policy `id` from `target`: the record first, then AWS (put back when AWS refuses).
/// Not attached there is a 404.
async fn detach<S: Records, O: PolicyOrgs, E>(
    m: &PolicyManager<S, O, E>,
    req: &ApiRequest,
    id: Uuid,
    target: &AttachmentTarget,
    task: Uuid,
) -> Result<String, ApiError> {
    let current = changeable(m, req, id).await?;
    let Some(attachment) = current.value.attachment_to(target).cloned() else {
        return Err(ApiError::not_found(format!(
            "policy {} is not attached there",
            current.value.name
        )));
    };
    let mut next = current.value.clone();
    next.attachments.retain(|a| a.id != attachment.id);
    next.modified_ts = domain::timestamp::now();
    next.task = Some(task);
    let written = m
        .store
        .replace_policy(&current, &next)
        .await
        .map_err(|e| store_error(req, e))?;
    if let Some(aws_id) = &next.aws_id
        && let Err(e) = m
            .organizations
            .detach(aws_id, &attachment.aws_target_id)
            .await
    {
        undo(&m.store, &written, &current.value).await;
        return Err(refusal(req, e, &attachment.aws_target_id));
    }
    tracing::info!(policy = %id, target = attachment.aws_target_id, principal = req.principal, "policy detached");
    let mut log = format!(
        "Detached policy {} from {}",
        next.name, attachment.aws_target_id
    );
    for line in drift::settle(m, id, written.version).await {
        log.push_str("; then ");
        log.push_str(&line);
    }
    Ok(log)
}

/// How many SCPs the target may carry: AWS's five — but an account keeps one place for the
/// service's `accounts-suspended` SCP, so that it can always be suspended.
fn places(target: &AttachmentTarget) -> usize {
    match target {
        AttachmentTarget::Account { .. } => MAX_POLICIES_PER_TARGET - 1,
        _ => MAX_POLICIES_PER_TARGET,
    }
}

fn limit_reached(to: &Resolved, count: usize) -> ApiError {
    let label = &to.label;
    let why = match to.target {
        AttachmentTarget::Account { .. } => format!(
            "AWS allows {MAX_POLICIES_PER_TARGET} on one target, FullAWSAccess among them, and \
             an account keeps one place for the service's suspension SCP"
        ),
        _ => format!(
            "the most AWS allows on one target ({MAX_POLICIES_PER_TARGET}, FullAWSAccess among them)"
        ),
    };
    ApiError::conflict(
        ErrorName::PolicyLimitReached,
        format!("{label} has {count} SCPs attached: {why}; detach one first"),
    )
}

/// Puts `before` back over `written` after AWS refused the change (unless someone changed the
/// record since: then theirs stands, and the drift run reconciles).
async fn undo<S: Policies>(store: &S, written: &Versioned<Policy>, before: &Policy) {
    if let Err(e) = store.replace_policy(written, before).await {
        tracing::error!(error = %e, policy = %before.id, "a change AWS refused could not be undone in the store");
    }
}

fn policy_id(req: &ApiRequest) -> Result<Uuid, ApiError> {
    parse_uuid(req.path_param("policy_id"))
        .map_err(|e| ApiError::bad_request(format!("policy_id: {e}")))
}

fn not_changeable(p: &Policy) -> ApiError {
    ApiError::conflict(
        ErrorName::PolicyNotChangeable,
        p.changeable().err().unwrap_or_default(),
    )
}

/// The live policy of the organisation's with id `id`: 404 when there is none, 409 for the
/// service's own (the foundation policy) and for a deleted one.
async fn changeable<S: Records, O: PolicyOrgs, E>(
    m: &PolicyManager<S, O, E>,
    req: &ApiRequest,
    id: Uuid,
) -> Result<Versioned<Policy>, ApiError> {
    if let Some(p) = m
        .store
        .get_policy(id)
        .await
        .map_err(|e| store_error(req, e))?
    {
        if p.value.changeable().is_err() {
            return Err(not_changeable(&p.value));
        }
        return Ok(p);
    }
    let service = m
        .organizations
        .service_policies()
        .await
        .map_err(|e| req.internal(&e))?;
    match service.iter().find(|p| p.id == id) {
        Some(p) => Err(not_changeable(p)),
        None => Err(ApiError::not_found(format!("no policy has id {id}"))),
    }
}

/// Refuses a name a live policy has (compared ignoring case) other than `except`.
async fn name_free<S: Records, O, E>(
    m: &PolicyManager<S, O, E>,
    req: &ApiRequest,
    name: &str,
    except: Option<Uuid>,
) -> Result<(), ApiError> {
    let policies = m
        .store
        .list_policies()
        .await
        .map_err(|e| store_error(req, e))?;
    if let Some(taken) = policies.iter().find(|p| {
        p.value.status != PolicyStatus::Deleted
            && Some(p.value.id) != except
            && p.value.name.eq_ignore_ascii_case(name)
    }) {
        return Err(ApiError::conflict(
            ErrorName::PolicyNameTaken,
            format!(
                "a policy named {:?} already exists ({})",
                taken.value.name, taken.value.id
            ),
        ));
    }
    Ok(())
}

fn store_error(req: &ApiRequest, e: StoreError) -> ApiError {
    match e {
        e @ StoreError::StalePolicy(_) => ApiError::conflict(e.name(), e.to_string()),
        e => req.internal(&e),
    }
}

fn ou_error(req: &ApiRequest, e: OuError) -> ApiError {
    match e {
        e @ OuError::NotManaged { .. } => ApiError::conflict(e.name(), e.to_string()),
        OuError::Organizations(e) => refusal(req, e, "the type's OU"),
    }
}

/// AWS's refusals (a duplicate name, a limit, a policy in use) are the caller's to see, as a
/// 409 with AWS's reason; failures (throttled past the retries, unreachable) are ours.
fn refusal(req: &ApiRequest, e: OrganizationsError, what: &str) -> ApiError {
    match e.code.as_deref() {
        // A document AWS reads otherwise than `validate_scp` does: the caller's to fix.
        Some("MalformedPolicyDocumentException") => {
            ApiError::bad_request(format!("Policy: AWS refused the document ({what}): {e}"))
        }
        Some("DuplicatePolicyException") => ApiError::conflict(
            ErrorName::PolicyNameTaken,
            format!("an SCP of that name exists in the organization ({what}): {e}"),
        ),
        Some(
            "PolicyInUseException"
            | "DuplicatePolicyAttachmentException"
            | "PolicyNotAttachedException"
            | "TargetNotFoundException"
            | "AccountNotFoundException"
            | "OrganizationalUnitNotFoundException"
            | "PolicyNotFoundException",
        ) => ApiError::conflict(
            ErrorName::OrganizationsRequestRefused,
            format!("{what}: {e}"),
        ),
        _ if e.is_refusal() => ApiError::conflict(
            ErrorName::OrganizationsRequestRefused,
            format!("{what}: {e}"),
        ),
        _ => req.internal(&e),
    }
}

#[cfg(test)]
mod tests;
