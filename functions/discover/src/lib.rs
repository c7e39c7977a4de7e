//! Discovery: organization members the service does not know are recorded DISCOVERED
//! (Origin EXTERNAL) when their provisioning role can be assumed, or ERROR saying which role could
//! not be assumed and why; records follow what AWS reports (closed, suspended, gone, renamed).
//!
//! One function, three triggers:
//! - the HTTP API: `POST /20190206/accounts/discover` starts an organization-wide run (one at a
//!   time: 409 while one runs) through the discovery state machine, which calls back with
//!   `{"Action": "Run"}`; `POST /20190206/accounts/discover/{aws_account_id}` re-checks one account;
//! - the EventBridge schedule: an organization-wide run (skipped while one runs);
//! - `aws.organizations` events: the account an event names is re-checked; an accepted invitation
//!   starts an organization-wide run.
//!
//! A run over an unchanged organization writes nothing.

pub mod plan;

use aws_sdk_organizations::error::ProvideErrorMetadata;
use std::collections::HashSet;
use std::time::{Duration, Instant};

use aws_sdk_organizations::error::SdkError;
use chrono::Utc;
use futures::StreamExt;
use http_edge::{ApiRequest, authorize, v2_response};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;
use serde_json::{Value, json};
use shared::api::{ApiError, task_envelope};
use shared::assurance::Provisioning;
use shared::auth::{AccessPolicy, Permission};
use shared::config::{self, ConfigError};
use shared::domain::{
    Account, AccountRole, AccountStatus, EmailTemplate, Operation, Origin, Task, TaskStatus,
    is_aws_account_id, name_key, organisation_id,
};
use shared::lifecycle::{AccountChange, AccountFacts, NewAccount, Transition, Trigger};
use shared::store::{Store, StoreError};
use shared::workflows::StateMachine;
use uuid::Uuid;

use crate::plan::{Member, MemberState, Plan};

pub const DISCOVER_ALL: &str = "POST /20190206/accounts/discover";
pub const DISCOVER_ONE: &str = "POST /20190206/accounts/discover/{aws_account_id}";
/// The slot that makes organization-wide runs one at a time.
pub const SINGLETON: &str = "discovery";
/// Longer than a Lambda invocation may run: only an abandoned run lets it lapse.
pub const LEASE: Duration = Duration::from_secs(20 * 60);

#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("AWS Organizations call failed: {0}")]
    Organizations(String),
    #[error("the discovery workflow could not be started: {0}")]
    NotStarted(String),
    #[error("an event this function does not handle: {0}")]
    UnknownEvent(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DiscoverError {
    pub fn name(&self) -> &'static str {
        match self {
            DiscoverError::Organizations(_) => "OrganizationsCallFailed",
            DiscoverError::NotStarted(_) => "DiscoveryNotStarted",
            DiscoverError::UnknownEvent(_) => "UnknownEvent",
            DiscoverError::Store(e) => e.name(),
        }
    }
}

impl From<DiscoverError> for Diagnostic {
    fn from(e: DiscoverError) -> Self {
        Diagnostic {
            error_type: e.name().to_owned(),
            error_message: e.to_string(),
        }
    }
}

fn organizations_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    e: SdkError<E>,
) -> DiscoverError {
    DiscoverError::Organizations(shared::aws::error_message(&e))
}

/// The summary counter a change adds to.
type Counter = fn(&mut Summary) -> &mut usize;

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    #[serde(rename = "Members")]
    pub members: usize,
    #[serde(rename = "Known")]
    pub known: usize,
    #[serde(rename = "Discovered")]
    pub discovered: usize,
    #[serde(rename = "RoleMissing")]
    pub role_missing: usize,
    #[serde(rename = "RoleFixed")]
    pub role_fixed: usize,
    #[serde(rename = "Rejoined")]
    pub rejoined: usize,
    #[serde(rename = "Closed")]
    pub closed: usize,
    #[serde(rename = "Left")]
    pub left: usize,
    #[serde(rename = "Renamed")]
    pub renamed: usize,
    /// Records whose OU changed outside the service (MoveAccount events).
    #[serde(rename = "Moved")]
    pub moved: usize,
    #[serde(rename = "InFlight")]
    pub in_flight: usize,
    /// Records another writer changed between the read and the write; the next run sees them.
    #[serde(rename = "Skipped")]
    pub skipped: usize,
    #[serde(rename = "ListAccountsCalls")]
    pub list_calls: usize,
    #[serde(rename = "DurationMs")]
    pub duration_ms: u128,
}

impl Summary {
    pub fn log_line(&self) -> String {
        format!(
            "{} members, {} known: {} discovered, {} without the provisioning role, {} role fixed, {} rejoined, {} closed, {} left the organization, {} renamed",
            self.members,
            self.known,
            self.discovered,
            self.role_missing,
            self.role_fixed,
            self.rejoined,
            self.closed,
            self.left,
            self.renamed
        )
    }
}

pub struct Discoverer {
    pub store: Store,
    pub organizations: aws_sdk_organizations::Client,
    pub provisioning: Provisioning,
    pub workflows: StateMachine,
    pub access: AccessPolicy,
    /// Recognizes the accounts the create workflow is making (they record themselves).
    pub email: Option<EmailTemplate>,
    /// Role checks in flight at once.
    pub concurrency: usize,
    /// The management, Security and Logging accounts: the foundation bootstrap records them.
    pub foundation: HashSet<String>,
}

impl From<shared::workflows::RunError> for DiscoverError {
    fn from(e: shared::workflows::RunError) -> Self {
        match e {
            shared::workflows::RunError::NotStarted(reason) => DiscoverError::NotStarted(reason),
            shared::workflows::RunError::Store(e) => DiscoverError::Store(e),
        }
    }
}

impl Discoverer {
    fn runs(&self) -> shared::workflows::SingletonRun<'_> {
        shared::workflows::SingletonRun {
            store: &self.store,
            workflows: &self.workflows,
            slot: SINGLETON,
            lease: LEASE,
        }
    }

    /// `TABLE_NAME`, `PROVISIONING_ROLE_NAME`, `DISCOVERY_STATE_MACHINE_ARN`, `ACCESS_ROLES`,
    /// `ROOT_EMAIL_TEMPLATE`, `ROLE_CHECK_CONCURRENCY`, `MANAGEMENT_ACCOUNT_ID`,
    /// `SECURITY_ACCOUNT_ID`, `LOGGING_ACCOUNT_ID`.
    pub fn from_env(sdk: shared::aws::SdkConfig) -> Result<Self, ConfigError> {
        let concurrency = config::parsed("ROLE_CHECK_CONCURRENCY", |v| {
            v.parse::<usize>()
                .ok()
                .filter(|n| (1..=64).contains(n))
                .ok_or_else(|| format!("{v:?} is not between 1 and 64"))
        })?;
        Ok(Discoverer {
            store: Store::new(
                aws_sdk_dynamodb::Client::new(&sdk),
                config::required("TABLE_NAME")?,
            ),
            organizations: shared::aws::organizations(&sdk),
            workflows: StateMachine::new(&sdk, config::required("DISCOVERY_STATE_MACHINE_ARN")?),
            access: AccessPolicy::from_json(&config::required("ACCESS_ROLES")?)?,
            email: Some(config::parsed("ROOT_EMAIL_TEMPLATE", EmailTemplate::parse)?),
            provisioning: Provisioning::from_env(sdk)?,
            concurrency,
            foundation: [
                "MANAGEMENT_ACCOUNT_ID",
                "SECURITY_ACCOUNT_ID",
                "LOGGING_ACCOUNT_ID",
            ]
            .into_iter()
            .map(config::required)
            .collect::<Result<_, _>>()?,
        })
    }
}

/// Every event the function takes.
pub async fn handle(d: &Discoverer, event: LambdaEvent<Value>) -> Result<Value, DiscoverError> {
    let request_id = event.context.request_id.clone();
    let payload = event.payload;
    if payload.get("requestContext").is_some() && payload.get("routeKey").is_some() {
        let event = serde_json::from_value(payload)
            .map_err(|e| DiscoverError::UnknownEvent(e.to_string()))?;
        let req = ApiRequest::from_v2_event(event, &request_id);
        let result = route(d, &req).await;
        return Ok(serde_json::to_value(v2_response(&req.route_key, result)).unwrap_or_default());
    }
    // The EventBridge Scheduler schedule's input.
    if payload.get("Action").and_then(Value::as_str) == Some("Schedule") {
        return Ok(match start_organization_run(d, "schedule").await? {
            Some(task) => json!({"Started": task.id}),
            None => json!({"Skipped": "a discovery run is in progress"}),
        });
    }
    if let Some(action) = payload.get("Action").and_then(Value::as_str) {
        let task = payload
            .get("TaskId")
            .and_then(Value::as_str)
            .and_then(|t| Uuid::parse_str(t).ok());
        return match (action, task) {
            ("Run", Some(task)) => {
                Ok(serde_json::to_value(run_task(d, task).await?).unwrap_or_default())
            }
            ("Abandon", Some(task)) => {
                let cause = payload
                    .pointer("/Error/Cause")
                    .and_then(Value::as_str)
                    .unwrap_or("the run failed");
                abandon(d, task, cause).await?;
                Ok(json!({"TaskId": task, "Status": TaskStatus::Failed}))
            }
            _ => Err(DiscoverError::UnknownEvent(payload.to_string())),
        };
    }
    if let Some(detail_type) = payload.get("detail-type").and_then(Value::as_str) {
        return on_event(d, &payload, detail_type).await;
    }
    Err(DiscoverError::UnknownEvent(payload.to_string()))
}

async fn on_event(
    d: &Discoverer,
    event: &Value,
    detail_type: &str,
) -> Result<Value, DiscoverError> {
    let source = event
        .get("source")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if source == "aws.events" && detail_type == "Scheduled Event" {
        return Ok(match start_organization_run(d, "schedule").await? {
            Some(task) => json!({"Started": task.id}),
            None => json!({"Skipped": "a discovery run is in progress"}),
        });
    }
    if source != "aws.organizations" {
        return Err(DiscoverError::UnknownEvent(format!(
            "{source} {detail_type}"
        )));
    }
    let detail = &event["detail"];
    let name = detail["eventName"].as_str().unwrap_or_default();
    let account = [
        "/serviceEventDetails/createAccountStatus/accountId",
        "/serviceEventDetails/closeAccountStatus/accountId",
        "/requestParameters/accountId",
    ]
    .iter()
    .find_map(|p| detail.pointer(p).and_then(Value::as_str))
    .filter(|id| is_aws_account_id(id));
    match account {
        Some(aws_account_id) => {
            tracing::info!(
                event = name,
                aws_account_id,
                "re-checking the account an Organizations event names"
            );
            let actor = format!("event:{name}");
            let mut summary = run_single(d, aws_account_id, &actor).await?;
            if let Some(parent) = detail
                .pointer("/requestParameters/destinationParentId")
                .and_then(Value::as_str)
            {
                summary.moved +=
                    usize::from(d.record_parent(aws_account_id, parent, &actor).await?);
            }
            Ok(serde_json::to_value(summary).unwrap_or_default())
        }
        // An accepted invitation does not name the new member in a fixed place: look at all.
        None => Ok(
            match start_organization_run(d, &format!("event:{name}")).await? {
                Some(task) => json!({"Started": task.id}),
                None => json!({"Skipped": "a discovery run is in progress"}),
            },
        ),
    }
}

pub async fn route(d: &Discoverer, req: &ApiRequest) -> Result<Value, ApiError> {
    if req.route_key != DISCOVER_ALL && req.route_key != DISCOVER_ONE {
        return Err(ApiError::not_found(format!("no route {:?}", req.route_key)));
    }
    authorize(&d.access, req.principal.as_deref(), Permission::Mutate)?;
    req.only_query(&[])?;
    // accounts.DiscoverAccounts and accounts.DiscoverAccount are empty objects.
    match req.body.as_deref().map(str::trim) {
        None | Some("") => {}
        Some(body) => match serde_json::from_str::<Value>(body) {
            Ok(Value::Object(fields)) if fields.is_empty() => {}
            Ok(Value::Object(fields)) => {
                let names: Vec<&String> = fields.keys().collect();
                return Err(ApiError::bad_request(format!(
                    "the body takes no fields, got {names:?}"
                )));
            }
            _ => {
                return Err(ApiError::bad_request(
                    "the body must be an empty JSON object",
                ));
            }
        },
    }
    let internal = |e: DiscoverError| {
        tracing::error!(error = %e, request_id = req.request_id, "discovery failed");
        ApiError::internal(&req.request_id)
    };
    let organisation = d.organisation_id().await.map_err(internal)?;
    let actor = req.principal.clone().unwrap_or_default();
    if req.route_key == DISCOVER_ALL {
        let task = start_organization_run(d, &actor)
            .await
            .map_err(internal)?
            .ok_or_else(|| {
                ApiError::conflict(
                    "DiscoveryInProgress",
                    "an organization-wide discovery is already running",
                )
            })?;
        return Ok(task_envelope(
            &task,
            organisation,
            &req.request_id,
            "Accounts Discovery Requested",
            "Discovering the organization's accounts".into(),
            None,
        ));
    }

    let aws_account_id = req.path_param("aws_account_id");
    if !is_aws_account_id(aws_account_id) {
        return Err(ApiError::bad_request(format!(
            "aws_account_id: {aws_account_id:?} is not a 12-digit AWS account id"
        )));
    }
    let (member, known) = d.one(aws_account_id).await.map_err(internal)?;
    if let Some(task) = known.as_ref().and_then(|k| k.user_task_id) {
        return Err(ApiError::conflict(
            "OperationInProgress",
            format!(
                "the account of AWS account {aws_account_id} has an operation in progress (task {task})"
            ),
        ));
    }
    if member.is_none() && known.is_none() {
        return Err(ApiError::not_found(format!(
            "AWS account {aws_account_id} is not a member of the organization"
        )));
    }
    let summary = d
        .reconcile_one(member, known, &actor)
        .await
        .map_err(internal)?;
    let recorded = d
        .store
        .get_account_by_aws_id(aws_account_id)
        .await
        .map_err(|e| internal(e.into()))?;
    let mut task = Task::new(
        Operation::DiscoverAccount,
        recorded.iter().map(|r| r.value.id).collect(),
        Utc::now(),
    );
    task.status = TaskStatus::Succeeded;
    task.logs.push(match &recorded {
        Some(r) => format!(
            "AWS account {aws_account_id} is account {}: {}{}",
            r.value.id,
            r.value.status,
            r.value
                .status_reason
                .as_deref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default()
        ),
        None => format!("AWS account {aws_account_id}: nothing to record"),
    });
    task.logs.push(summary.log_line());
    d.store
        .create_task(&task)
        .await
        .map_err(|e| internal(e.into()))?;
    Ok(task_envelope(
        &task,
        organisation,
        &req.request_id,
        "Account Discovery Completed",
        format!("Discovered AWS account {aws_account_id}"),
        None,
    ))
}

/// Starts an organization-wide run under a new task, unless one is running (`None`).
pub async fn start_organization_run(
    d: &Discoverer,
    actor: &str,
) -> Result<Option<Task>, DiscoverError> {
    Ok(d.runs().start(Operation::DiscoverAccounts, actor).await?)
}

/// The discovery state machine's run step.
pub async fn run_task(d: &Discoverer, task: Uuid) -> Result<Summary, DiscoverError> {
    d.store
        .update_task(
            task,
            TaskStatus::Running,
            Some("Discovering the organization's accounts"),
        )
        .await?;
    let summary = run_organization(d, &format!("discovery:{task}")).await?;
    d.runs().finish(task, &summary.log_line()).await?;
    tracing::info!(?summary, "discovery run finished");
    Ok(summary)
}

/// A run that failed: its task says why, and the next run may start.
pub async fn abandon(d: &Discoverer, task: Uuid, cause: &str) -> Result<(), DiscoverError> {
    Ok(d.runs().abandon(task, cause).await?)
}

/// The whole organization against every record.
pub async fn run_organization(d: &Discoverer, actor: &str) -> Result<Summary, DiscoverError> {
    let started = Instant::now();
    let (members, list_calls) = d.members().await?;
    tracing::info!(
        members = members.len(),
        list_calls,
        elapsed_ms = started.elapsed().as_millis(),
        "listed the organization"
    );
    let known = d.store.list_accounts(&Default::default()).await?;
    tracing::info!(
        records = known.len(),
        elapsed_ms = started.elapsed().as_millis(),
        "read the records"
    );
    let count = members.len();
    let p = d.plan(members, &known, true);
    let mut summary = d.apply(&p, &known, count, actor).await?;
    summary.list_calls = list_calls;
    summary.duration_ms = started.elapsed().as_millis();
    Ok(summary)
}

/// One AWS account against its record.
pub async fn run_single(
    d: &Discoverer,
    aws_account_id: &str,
    actor: &str,
) -> Result<Summary, DiscoverError> {
    let (member, known) = d.one(aws_account_id).await?;
    d.reconcile_one(member, known, actor).await
}

impl Discoverer {
    /// The plan for `members` against `known`, leaving out foundation accounts the bootstrap has
    /// not recorded yet (it records them with their roles; discovery would make them members).
    fn plan(&self, mut members: Vec<Member>, known: &[Account], complete: bool) -> Plan {
        let recorded: HashSet<&str> = known
            .iter()
            .filter_map(|a| a.aws_account_id.as_deref())
            .collect();
        members.retain(|m| !self.foundation.contains(&m.id) || recorded.contains(m.id.as_str()));
        plan::plan(&members, known, complete, self.email.as_ref())
    }

    /// An AWS account as the organization lists it, and its record: by AWS account id, or — for
    /// an account the create workflow has made but not yet recorded — by the id its root email
    /// carries.
    async fn one(
        &self,
        aws_account_id: &str,
    ) -> Result<(Option<Member>, Option<Account>), DiscoverError> {
        let member = self.member(aws_account_id).await?;
        let mut known = self
            .store
            .get_account_by_aws_id(aws_account_id)
            .await?
            .map(|v| v.value);
        if known.is_none() {
            let ours = member
                .as_ref()
                .and_then(|m| self.email.as_ref()?.account_of(&m.email));
            if let Some(id) = ours {
                known = self.store.get_account(id).await?.map(|v| v.value);
            }
        }
        Ok((member, known))
    }

    /// Records the OU an account was moved to outside the service. The service's own workflows
    /// move only accounts they hold locked, and record the OU themselves.
    async fn record_parent(
        &self,
        aws_account_id: &str,
        parent: &str,
        actor: &str,
    ) -> Result<bool, DiscoverError> {
        let Some(current) = self.store.get_account_by_aws_id(aws_account_id).await? else {
            return Ok(false);
        };
        if current.value.user_task_id.is_some()
            || current.value.orgs_ou_id.as_deref() == Some(parent)
        {
            return Ok(false);
        }
        let facts = AccountFacts {
            orgs_ou_id: Some(parent.to_owned()),
            ..Default::default()
        };
        match self
            .store
            .apply(&current, &AccountChange::facts(facts), actor)
            .await
        {
            Ok(_) => Ok(true),
            // Changed meanwhile: a later event or run sees the account as it is now.
            Err(StoreError::Stale { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn reconcile_one(
        &self,
        member: Option<Member>,
        known: Option<Account>,
        actor: &str,
    ) -> Result<Summary, DiscoverError> {
        let members: Vec<Member> = member.into_iter().collect();
        let known: Vec<Account> = known.into_iter().collect();
        let count = members.len();
        let p = self.plan(members, &known, true);
        self.apply(&p, &known, count, actor).await
    }

    /// Every member, and how many ListAccounts calls that took (pages of 20).
    async fn members(&self) -> Result<(Vec<Member>, usize), DiscoverError> {
        let mut pages = self
            .organizations
            .list_accounts()
            .max_results(20)
            .into_paginator()
            .send();
        let (mut members, mut calls) = (Vec::new(), 0);
        while let Some(page) = pages.next().await {
            calls += 1;
            members.extend(
                page.map_err(organizations_error)?
                    .accounts()
                    .iter()
                    .map(member_of),
            );
        }
        Ok((members, calls))
    }

    async fn member(&self, aws_account_id: &str) -> Result<Option<Member>, DiscoverError> {
        match self
            .organizations
            .describe_account()
            .account_id(aws_account_id)
            .send()
            .await
        {
            Ok(out) => Ok(out.account.as_ref().map(member_of)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_account_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(organizations_error(e)),
        }
    }

    async fn organisation_id(&self) -> Result<Uuid, DiscoverError> {
        let org = self
            .organizations
            .describe_organization()
            .send()
            .await
            .map_err(organizations_error)?;
        Ok(organisation_id(
            org.organization
                .and_then(|o| o.id)
                .as_deref()
                .unwrap_or_default(),
        ))
    }

    /// `Ok` when the provisioning role can be assumed, else why not — checked for many accounts
    /// with at most `concurrency` at once.
    async fn check_roles(&self, accounts: Vec<String>) -> Vec<(String, Result<(), String>)> {
        futures::stream::iter(accounts)
            .map(|id| async move {
                let result = self
                    .provisioning
                    .into_account(&id, "accounts-discovery")
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string());
                (id, result)
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await
    }

    /// Carries a plan out: role checks, then batched records for new members, then one
    /// conditional change per record that AWS has moved on from.
    async fn apply(
        &self,
        p: &Plan,
        known: &[Account],
        members: usize,
        actor: &str,
    ) -> Result<Summary, DiscoverError> {
        let mut s = Summary {
            members,
            known: known.len(),
            in_flight: p.in_flight,
            ..Summary::default()
        };
        if p.is_empty() {
            return Ok(s);
        }
        let to_check: Vec<String> = p
            .new
            .iter()
            .map(|m| m.id.clone())
            .chain(
                p.recheck
                    .iter()
                    .chain(&p.rejoined)
                    .map(|(_, m)| m.id.clone()),
            )
            .collect();
        let started = Instant::now();
        let checks = to_check.len();
        let roles: std::collections::HashMap<String, Result<(), String>> =
            self.check_roles(to_check).await.into_iter().collect();
        tracing::info!(
            checks,
            elapsed_ms = started.elapsed().as_millis(),
            "checked provisioning roles"
        );

        if !p.new.is_empty() {
            let organisation = self.organisation_id().await?;
            let mut taken: HashSet<String> = known.iter().map(|a| name_key(&a.name)).collect();
            let now = Utc::now();
            let mut records = Vec::with_capacity(p.new.len());
            for m in &p.new {
                let first = match &roles[&m.id] {
                    Ok(()) => Transition::to(Trigger::RecordDiscovered, AccountStatus::Discovered),
                    Err(reason) => Transition::error(Trigger::RecordDiscovered, reason.clone()),
                };
                let new = NewAccount {
                    organisation_id: organisation,
                    name: plan::record_name(m, &mut taken),
                    aws_account_id: Some(m.id.clone()),
                    aws_account_name: Some(m.name.clone()),
                    aws_account_alias: None,
                    email: Some(m.email.clone()),
                    account_type: None,
                    account_role: AccountRole::Member,
                    origin: Origin::External,
                    tags: None,
                    orgs_ou_id: None,
                    task: None,
                };
                match Account::create(Uuid::new_v4(), new, &first, now) {
                    Ok(account) => records.push(account),
                    Err(e) => tracing::error!(aws_account_id = m.id, error = %e, "not recordable"),
                }
            }
            let started = Instant::now();
            let outcomes = self
                .store
                .create_accounts(&records, Trigger::RecordDiscovered, actor)
                .await?;
            tracing::info!(
                records = records.len(),
                elapsed_ms = started.elapsed().as_millis(),
                "recorded new members"
            );
            for (account, outcome) in records.iter().zip(outcomes) {
                let outcome = match outcome {
                    // Another account took the name meanwhile (or a single re-check did not know
                    // it): the name with the AWS account id is unique.
                    Err(StoreError::NameTaken(_)) => {
                        let mut renamed = account.clone();
                        let member = Member {
                            id: account.aws_account_id.clone().unwrap_or_default(),
                            name: account.name.clone(),
                            email: String::new(),
                            state: MemberState::Active,
                        };
                        renamed.name = plan::record_name(
                            &member,
                            &mut HashSet::from([name_key(&account.name)]),
                        );
                        self.store
                            .create_account(&renamed, Trigger::RecordDiscovered, None, actor)
                            .await
                            .map(drop)
                    }
                    other => other,
                };
                match outcome {
                    Ok(()) if account.status == AccountStatus::Discovered => s.discovered += 1,
                    Ok(()) => s.role_missing += 1,
                    // Recorded meanwhile by another run or the create workflow.
                    Err(StoreError::AwsAccountIdTaken(_) | StoreError::NameTaken(_)) => {
                        s.skipped += 1
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }

        // Each change, and the summary counter it adds to.
        let mut changes: Vec<(&Account, AccountChange, Counter)> = Vec::new();
        for (account, m) in &p.recheck {
            if roles[&m.id].is_ok() {
                let t = Transition::to(Trigger::RecheckRole, AccountStatus::Discovered);
                changes.push((account, AccountChange::transition(t), |s| &mut s.role_fixed));
            }
        }
        for (account, m) in &p.rejoined {
            if roles[&m.id].is_ok() {
                let t = Transition::to(Trigger::Rejoined, AccountStatus::Discovered);
                changes.push((account, AccountChange::transition(t), |s| &mut s.rejoined));
            }
        }
        for (account, state) in &p.closed {
            let t = Transition::because(
                Trigger::ClosedInAws,
                AccountStatus::Closed,
                format!("AWS reports the account {state}"),
            );
            changes.push((account, AccountChange::transition(t), |s| &mut s.closed));
        }
        for account in &p.left {
            let reason = format!(
                "AWS account {} is no longer a member of the organization",
                account.aws_account_id.as_deref().unwrap_or_default()
            );
            let t = Transition::because(Trigger::LeftOrganization, AccountStatus::Closed, reason);
            changes.push((account, AccountChange::transition(t), |s| &mut s.left));
        }
        for (account, name) in &p.renamed {
            let facts = AccountFacts {
                aws_account_name: Some(name.clone()),
                ..Default::default()
            };
            changes.push((account, AccountChange::facts(facts), |s| &mut s.renamed));
        }
        for (account, change, counter) in changes {
            match self.store.update(account.id, &change, actor).await {
                Ok(_) => *counter(&mut s) += 1,
                Err(StoreError::Lifecycle(e)) => {
                    tracing::info!(account = %account.id, error = %e, "changed meanwhile; the next run sees it");
                    s.skipped += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(s)
    }
}

fn member_of(a: &aws_sdk_organizations::types::Account) -> Member {
    let state = a
        .state()
        .map(|s| s.as_str().to_owned())
        .or_else(|| a.status().map(|s| s.as_str().to_owned()))
        .unwrap_or_default();
    Member {
        id: a.id().unwrap_or_default().to_owned(),
        name: a.name().unwrap_or_default().to_owned(),
        email: a.email().unwrap_or_default().to_owned(),
        state: MemberState::from_aws(&state),
    }
}
