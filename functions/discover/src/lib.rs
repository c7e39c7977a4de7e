//! Discovery: organization members the service does not know are recorded DISCOVERED
//! (Origin EXTERNAL) when their provisioning role can be assumed and trusts the management
//! account alone, or ERROR saying why not; records follow what AWS reports (closed, suspended,
//! gone, renamed). The onboarding workflow asks for the same role check (`{"Action":
//! "CheckRole"}`) before it brings an account under management.
//!
//! One function, three triggers:
//! - the HTTP API: `POST /20190206/accounts/discover` starts an organization-wide run (one at a
//!   time: 409 while one runs) through the discovery state machine, which calls back with
//!   `{"Action": "Run"}`; `POST /20190206/accounts/discover/{aws_account_id}` re-checks one account;
//! - the EventBridge schedule: an organization-wide run (skipped while one runs);
//! - `aws.organizations` events: the account an event names is re-checked; an accepted invitation
//!   starts an organization-wide run.
//!
//! What to do is decided by [`plan`] (pure); this module reads, checks roles and writes. A run
//! over an unchanged organization writes nothing.

pub mod plan;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::{Duration, Instant};

use aws::{OrganizationsError, Provisioning, RoleCheckError, StateMachine};
use chrono::{DateTime, Utc};
use domain::config::{self, ConfigError};
use domain::{
    Account, EmailTemplate, ErrorName, Named, Operation, StartWorkflow, Task, TaskStatus, Trigger,
    is_aws_account_id, name_key, organisation_id,
};
use edge::events::{EventBridgeEvent, StepError};
use edge::{AccessPolicy, ApiError, ApiRequest, Permission, authorize, task_envelope};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use store::{AccountWrites, DynamoStore, RunError, SingletonRun, Slots, StoreError, Versioned};
use uuid::Uuid;

use crate::plan::{Counted, Member, MemberState, Plan, RoleChecks};

pub const DISCOVER_ALL: &str = "POST /20190206/accounts/discover";
pub const DISCOVER_ONE: &str = "POST /20190206/accounts/discover/{aws_account_id}";
/// The slot that makes organization-wide runs one at a time.
pub const SINGLETON: &str = "discovery";
/// Longer than the longest run the discovery state machine makes, every retry included (a test
/// checks it against the definition): only an execution that died without its Catch lets it
/// lapse, and then a later run may start.
pub const LEASE: Duration = Duration::from_secs(3 * 60 * 60);

#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error(transparent)]
    Organizations(#[from] OrganizationsError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("an event this function does not handle: {0}")]
    UnknownEvent(String),
    #[error(transparent)]
    RoleCheck(#[from] RoleCheckError),
}

impl Named for DiscoverError {
    fn name(&self) -> ErrorName {
        match self {
            DiscoverError::UnknownEvent(_) => ErrorName::UnknownEvent,
            DiscoverError::RoleCheck(e) => e.name(),
            DiscoverError::Organizations(e) => e.name(),
            DiscoverError::Run(e) => e.name(),
            DiscoverError::Store(e) => e.name(),
        }
    }
}

/// The events the function takes besides HTTP requests.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Event {
    /// The EventBridge Scheduler schedule's input, and the discovery state machine's steps.
    Step(Step),
    /// An EventBridge event: an `aws.organizations` event, or an EventBridge rule's schedule.
    EventBridge(EventBridgeEvent),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "Action")]
pub enum Step {
    /// Start an organization-wide run (the schedule).
    Schedule,
    /// The discovery state machine runs the task's organization-wide discovery.
    Run {
        #[serde(rename = "TaskId")]
        task: Uuid,
    },
    /// The onboarding workflow checks the account's provisioning role again before it
    /// brings the account under management (discovery checked it, but the role may have
    /// changed since): assumable, and trusting the management account alone.
    CheckRole {
        #[serde(rename = "AccountId")]
        account: Uuid,
    },
    /// The discovery state machine gives up on the task's run.
    Abandon {
        #[serde(rename = "TaskId")]
        task: Uuid,
        #[serde(rename = "Error", default)]
        error: Option<StepError>,
    },
}

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
    /// Accounts AWS created for records whose create workflow no longer waited (ERROR, linked).
    #[serde(rename = "Linked")]
    pub linked: usize,
    /// Records left for the next run: held by an operation, changed after the listing began,
    /// or changed by another writer between the read and the write.
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
            "{} members, {} known: {} discovered, {} without a usable provisioning role, {} role fixed, {} rejoined, {} closed, {} left the organization, {} renamed, {} linked to the records they were created for",
            self.members,
            self.known,
            self.discovered,
            self.role_missing,
            self.role_fixed,
            self.rejoined,
            self.closed,
            self.left,
            self.renamed,
            self.linked
        )
    }

    fn count(&mut self, counted: Counted) {
        *match counted {
            Counted::RoleFixed => &mut self.role_fixed,
            Counted::Rejoined => &mut self.rejoined,
            Counted::Closed => &mut self.closed,
            Counted::Left => &mut self.left,
            Counted::Renamed => &mut self.renamed,
            Counted::Linked => &mut self.linked,
        } += 1;
    }
}

/// What discovery asks of AWS: the organization's members, and whether a member's provisioning
/// role can be assumed.
pub trait Organizations: Send + Sync {
    /// Every member, and how many ListAccounts calls that took (pages of 20).
    fn members(
        &self,
    ) -> impl Future<Output = Result<(Vec<Member>, usize), OrganizationsError>> + Send;
    /// The member with this AWS account id, if it is one.
    fn member(
        &self,
        aws_account_id: &str,
    ) -> impl Future<Output = Result<Option<Member>, OrganizationsError>> + Send;
    /// The installation's organisation id (derived from the AWS organization's id).
    fn organisation_id(&self) -> impl Future<Output = Result<Uuid, OrganizationsError>> + Send;
    /// `Ok` when the account's provisioning role can be assumed and trusts the management
    /// account alone, else why not.
    fn check_role(
        &self,
        aws_account_id: &str,
    ) -> impl Future<Output = Result<(), RoleCheckError>> + Send;
}

/// The organization as AWS Organizations and STS show it.
pub struct AwsOrganization {
    pub organizations: aws_sdk_organizations::Client,
    pub provisioning: Provisioning,
    /// The only account a member's provisioning role may trust.
    pub management_account_id: String,
}

pub struct Discoverer<S, O, W> {
    pub store: S,
    pub organization: O,
    pub workflows: W,
    pub access: AccessPolicy,
    /// Recognizes the accounts the create workflow is making (they record themselves).
    pub email: Option<EmailTemplate>,
    /// Role checks in flight at once.
    pub concurrency: usize,
    /// The management, Security and Logging accounts: the foundation bootstrap records them.
    pub foundation: HashSet<String>,
}

/// The store as discovery uses it.
pub trait Records: AccountWrites + Slots {}
impl<S: AccountWrites + Slots> Records for S {}

impl Discoverer<DynamoStore, AwsOrganization, StateMachine> {
    /// `TABLE_NAME`, `PROVISIONING_ROLE_NAME`, `DISCOVERY_STATE_MACHINE_ARN`, `ACCESS_ROLES`,
    /// `ROOT_EMAIL_TEMPLATE`, `ROLE_CHECK_CONCURRENCY`, `MANAGEMENT_ACCOUNT_ID`,
    /// `SECURITY_ACCOUNT_ID`, `LOGGING_ACCOUNT_ID`.
    pub fn from_env(sdk: aws::SdkConfig) -> Result<Self, ConfigError> {
        let management = config::required("MANAGEMENT_ACCOUNT_ID")?;
        let foundation = [
            management.clone(),
            config::required("SECURITY_ACCOUNT_ID")?,
            config::required("LOGGING_ACCOUNT_ID")?,
        ];
        Ok(Discoverer {
            store: DynamoStore::from_env(&sdk)?,
            workflows: StateMachine::new(&sdk, config::required("DISCOVERY_STATE_MACHINE_ARN")?),
            access: AccessPolicy::from_json(&config::required("ACCESS_ROLES")?)?,
            email: Some(config::parsed("ROOT_EMAIL_TEMPLATE", EmailTemplate::parse)?),
            organization: AwsOrganization {
                organizations: aws::organizations(&sdk),
                provisioning: Provisioning::from_env(sdk)?,
                management_account_id: management,
            },
            concurrency: config::count("ROLE_CHECK_CONCURRENCY", 64)? as usize,
            foundation: foundation.into(),
        })
    }
}

impl<S: Records, O: Organizations, W: StartWorkflow> Discoverer<S, O, W> {
    fn runs(&self) -> SingletonRun<'_, S, W> {
        SingletonRun {
            store: &self.store,
            workflows: &self.workflows,
            slot: SINGLETON,
            lease: LEASE,
        }
    }
}

/// Every event but HTTP requests ([`route`] takes those).
pub async fn handle<S: Records, O: Organizations, W: StartWorkflow>(
    d: &Discoverer<S, O, W>,
    event: Event,
) -> Result<Value, DiscoverError> {
    match event {
        Event::Step(Step::Schedule) => scheduled(d, "schedule").await,
        Event::Step(Step::Run { task }) => {
            Ok(serde_json::to_value(run_task(d, task).await?).unwrap_or_default())
        }
        Event::Step(Step::CheckRole { account }) => check_recorded_role(d, account).await,
        Event::Step(Step::Abandon { task, error }) => {
            let cause = error.map(|e| e.reason()).filter(|c| !c.is_empty());
            abandon(d, task, cause.as_deref().unwrap_or("the run failed")).await?;
            Ok(json!({"TaskId": task, "Status": TaskStatus::Failed}))
        }
        Event::EventBridge(e) if e.is_schedule() => scheduled(d, "schedule").await,
        Event::EventBridge(e) if e.source == "aws.organizations" => {
            on_organizations_event(d, &e).await
        }
        Event::EventBridge(e) => Err(DiscoverError::UnknownEvent(format!(
            "{} {}",
            e.source, e.detail_type
        ))),
    }
}

/// [`Step::CheckRole`]: `{"Checked": <AWS account id>}`, or why not ([`RoleCheckError`]).
async fn check_recorded_role<S: Records, O: Organizations, W: StartWorkflow>(
    d: &Discoverer<S, O, W>,
    account: Uuid,
) -> Result<Value, DiscoverError> {
    let record = d
        .store
        .get_account(account)
        .await?
        .ok_or(StoreError::AccountNotFound(account))?
        .value;
    let aws_account_id = record
        .aws_account_id
        .ok_or_else(|| RoleCheckError::Refused(format!("account {account} has no AWS account")))?;
    d.organization.check_role(&aws_account_id).await?;
    Ok(json!({"Checked": aws_account_id}))
}

/// A run the schedule (or an event that names no account) asks for: started, or skipped while
/// one runs.
async fn scheduled<S: Records, O: Organizations, W: StartWorkflow>(
    d: &Discoverer<S, O, W>,
    actor: &str,
) -> Result<Value, DiscoverError> {
    Ok(match start_organization_run(d, actor).await? {
        Some(task) => json!({"Started": task.id}),
        None => json!({"Skipped": "a discovery run is in progress"}),
    })
}

async fn on_organizations_event<S: Records, O: Organizations, W: StartWorkflow>(
    d: &Discoverer<S, O, W>,
    event: &EventBridgeEvent,
) -> Result<Value, DiscoverError> {
    let detail = &event.detail;
    let name = detail["eventName"].as_str().unwrap_or_default();
    let account = [
        "/serviceEventDetails/createAccountStatus/accountId",
        "/serviceEventDetails/closeAccountStatus/accountId",
        "/requestParameters/accountId",
    ]
    .iter()
    .find_map(|p| detail.pointer(p).and_then(Value::as_str))
    .filter(|id| is_aws_account_id(id));
    let Some(aws_account_id) = account else {
        // An accepted invitation does not name the new member in a fixed place: look at all.
        return scheduled(d, &format!("event:{name}")).await;
    };
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
        summary.moved += usize::from(record_parent(d, aws_account_id, parent, &actor).await?);
    }
    Ok(serde_json::to_value(summary).unwrap_or_default())
}

/// The discovery routes: `POST /20190206/accounts/discover[/{aws_account_id}]`.
pub async fn route<S: Records, O: Organizations, W: StartWorkflow>(
    d: &Discoverer<S, O, W>,
    req: ApiRequest,
) -> Result<Value, ApiError> {
    let req = &req;
    if req.route_key != DISCOVER_ALL && req.route_key != DISCOVER_ONE {
        return Err(ApiError::not_found(format!("no route {:?}", req.route_key)));
    }
    authorize(&d.access, req.principal.as_deref(), Permission::Mutate)?;
    req.only_query(&[])?;
    // accounts.DiscoverAccounts and accounts.DiscoverAccount are empty objects.
    req.empty_body()?;
    let internal = |e: DiscoverError| req.internal(&e);
    let organisation = d
        .organization
        .organisation_id()
        .await
        .map_err(|e| internal(e.into()))?;
    let actor = req.actor();
    if req.route_key == DISCOVER_ALL {
        let task = start_organization_run(d, &actor)
            .await
            .map_err(internal)?
            .ok_or_else(|| {
                ApiError::conflict(
                    ErrorName::DiscoveryInProgress,
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
    let (member, known, looked_up) = one(d, aws_account_id).await.map_err(internal)?;
    if let Some(task) = known.as_ref().and_then(|k| k.value.user_task_id) {
        return Err(ApiError::conflict(
            ErrorName::OperationInProgress,
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
    let summary = reconcile_one(d, member, known, looked_up, &actor)
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
pub async fn start_organization_run<S: Records, O: Organizations, W: StartWorkflow>(
    d: &Discoverer<S, O, W>,
    actor: &str,
) -> Result<Option<Task>, DiscoverError> {
    Ok(d.runs().start(Operation::DiscoverAccounts, actor).await?)
}

/// The discovery state machine's run step.
pub async fn run_task<S: Records, O: Organizations, W: StartWorkflow>(
    d: &Discoverer<S, O, W>,
    task: Uuid,
) -> Result<Summary, DiscoverError> {
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
pub async fn abandon<S: Records, O: Organizations, W: StartWorkflow>(
    d: &Discoverer<S, O, W>,
    task: Uuid,
    cause: &str,
) -> Result<(), DiscoverError> {
    Ok(d.runs().abandon(task, cause).await?)
}

/// The whole organization against every record.
pub async fn run_organization<S: Records, O: Organizations, W: StartWorkflow>(
    d: &Discoverer<S, O, W>,
    actor: &str,
) -> Result<Summary, DiscoverError> {
    let started = Instant::now();
    // Records are stamped to the millisecond: one stamped in this millisecond may be newer.
    let listing_began = domain::timestamp::now();
    let (members, list_calls) = d.organization.members().await?;
    tracing::info!(
        members = members.len(),
        list_calls,
        elapsed_ms = started.elapsed().as_millis(),
        "listed the organization"
    );
    let known = Known::from(d.store.list_account_versions(&Default::default()).await?);
    tracing::info!(
        records = known.accounts.len(),
        elapsed_ms = started.elapsed().as_millis(),
        "read the records"
    );
    let count = members.len();
    let p = plan_for(d, members, &known.accounts, listing_began);
    let mut summary = apply(d, &p, &known, count, actor).await?;
    summary.list_calls = list_calls;
    summary.duration_ms = started.elapsed().as_millis();
    Ok(summary)
}

/// The records a run read, and the version of each: every change is applied against the
/// version the plan saw, never re-read and forced onto a newer one.
#[derive(Debug, Default)]
struct Known {
    accounts: Vec<Account>,
    versions: HashMap<Uuid, u64>,
}

impl From<Vec<Versioned<Account>>> for Known {
    fn from(read: Vec<Versioned<Account>>) -> Self {
        let (accounts, versions) = read
            .into_iter()
            .map(|v| {
                let id = v.value.id;
                (v.value, (id, v.version))
            })
            .unzip();
        Known { accounts, versions }
    }
}

/// One AWS account against its record.
pub async fn run_single<S: Records, O: Organizations, W: StartWorkflow>(
    d: &Discoverer<S, O, W>,
    aws_account_id: &str,
    actor: &str,
) -> Result<Summary, DiscoverError> {
    let (member, known, looked_up) = one(d, aws_account_id).await?;
    reconcile_one(d, member, known, looked_up, actor).await
}

/// The plan for `members` against `known`, leaving out foundation accounts the bootstrap has
/// not recorded yet (it records them with their roles; discovery would make them members).
fn plan_for<S, O, W>(
    d: &Discoverer<S, O, W>,
    mut members: Vec<Member>,
    known: &[Account],
    listing_began: DateTime<Utc>,
) -> Plan {
    let recorded: HashSet<&str> = known
        .iter()
        .filter_map(|a| a.aws_account_id.as_deref())
        .collect();
    members.retain(|m| !d.foundation.contains(&m.id) || recorded.contains(m.id.as_str()));
    plan::plan(&members, known, listing_began, d.email.as_ref())
}

/// An AWS account as the organization lists it, and its record: by AWS account id, or — for
/// an account the create workflow has made but not yet recorded — by the id its root email
/// carries; and when the lookup began (the record was read after it).
async fn one<S: Records, O: Organizations, W: StartWorkflow>(
    d: &Discoverer<S, O, W>,
    aws_account_id: &str,
) -> Result<(Option<Member>, Option<Versioned<Account>>, DateTime<Utc>), DiscoverError> {
    let looked_up = domain::timestamp::now();
    let member = d.organization.member(aws_account_id).await?;
    let mut known = d.store.get_account_by_aws_id(aws_account_id).await?;
    if known.is_none() {
        let ours = member
            .as_ref()
            .and_then(|m| d.email.as_ref()?.account_of(&m.email));
        if let Some(id) = ours {
            known = d.store.get_account(id).await?;
        }
    }
    Ok((member, known, looked_up))
}

/// Records the OU an account was moved to outside the service ([`plan::moved`]).
async fn record_parent<S: Records, O: Organizations, W: StartWorkflow>(
    d: &Discoverer<S, O, W>,
    aws_account_id: &str,
    parent: &str,
    actor: &str,
) -> Result<bool, DiscoverError> {
    let Some(current) = d.store.get_account_by_aws_id(aws_account_id).await? else {
        return Ok(false);
    };
    let Some(change) = plan::moved(&current.value, parent) else {
        return Ok(false);
    };
    match d.store.apply(&current, &change, actor).await {
        Ok(_) => Ok(true),
        // Changed meanwhile: a later event or run sees the account as it is now.
        Err(StoreError::Stale { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

async fn reconcile_one<S: Records, O: Organizations, W: StartWorkflow>(
    d: &Discoverer<S, O, W>,
    member: Option<Member>,
    known: Option<Versioned<Account>>,
    looked_up: DateTime<Utc>,
    actor: &str,
) -> Result<Summary, DiscoverError> {
    // The one member is the whole listing as far as its record goes: absent, it has left.
    let members: Vec<Member> = member.into_iter().collect();
    let known = Known::from(Vec::from_iter(known));
    let count = members.len();
    let p = plan_for(d, members, &known.accounts, looked_up);
    apply(d, &p, &known, count, actor).await
}

/// The provisioning role of each account, at most `concurrency` checks at once.
async fn check_roles<S, O: Organizations, W>(
    d: &Discoverer<S, O, W>,
    accounts: Vec<String>,
) -> RoleChecks {
    futures::stream::iter(accounts)
        .map(|id| async move {
            // Discovery records either failure as ERROR with the reason; a later re-check
            // (event, schedule, API) makes it DISCOVERED once the role passes.
            let result = d
                .organization
                .check_role(&id)
                .await
                .map_err(|e| e.to_string());
            (id, result)
        })
        .buffer_unordered(d.concurrency)
        .collect()
        .await
}

/// Carries a plan out: role checks, then batched records for new members, then one
/// conditional change per record that AWS has moved on from.
async fn apply<S: Records, O: Organizations, W: StartWorkflow>(
    d: &Discoverer<S, O, W>,
    p: &Plan,
    known: &Known,
    members: usize,
    actor: &str,
) -> Result<Summary, DiscoverError> {
    let mut s = Summary {
        members,
        known: known.accounts.len(),
        in_flight: p.in_flight,
        skipped: p.busy,
        ..Summary::default()
    };
    if p.is_empty() {
        return Ok(s);
    }
    let started = Instant::now();
    let to_check = plan::role_checks_needed(p);
    let checks = to_check.len();
    let roles = check_roles(d, to_check).await;
    tracing::info!(
        checks,
        elapsed_ms = started.elapsed().as_millis(),
        "checked provisioning roles"
    );

    if !p.new.is_empty() {
        let organisation = d.organization.organisation_id().await?;
        let mut taken: HashSet<String> = known.accounts.iter().map(|a| name_key(&a.name)).collect();
        let records = plan::new_records(p, &roles, &mut taken, organisation, Utc::now());
        let started = Instant::now();
        let outcomes = d
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
                Err(StoreError::NameTaken(_)) => d
                    .store
                    .create_account(
                        &plan::renamed_record(account),
                        Trigger::RecordDiscovered,
                        None,
                        actor,
                    )
                    .await
                    .map(drop),
                other => other,
            };
            match outcome {
                Ok(()) if account.status == domain::AccountStatus::Discovered => s.discovered += 1,
                Ok(()) => s.role_missing += 1,
                // Recorded meanwhile by another run or the create workflow.
                Err(StoreError::AwsAccountIdTaken(_) | StoreError::NameTaken(_)) => s.skipped += 1,
                Err(e) => return Err(e.into()),
            }
        }
    }

    for (account, change, counted) in plan::changes(p, &roles) {
        let read = Versioned {
            value: account.clone(),
            version: known.versions[&account.id],
        };
        match d.store.apply(&read, &change, actor).await {
            Ok(_) => s.count(counted),
            Err(e @ (StoreError::Stale { .. } | StoreError::Lifecycle(_))) => {
                tracing::info!(account = %account.id, error = %e, "changed meanwhile; the next run sees it");
                s.skipped += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(s)
}

impl Organizations for AwsOrganization {
    async fn members(&self) -> Result<(Vec<Member>, usize), OrganizationsError> {
        let mut pages = self
            .organizations
            .list_accounts()
            .max_results(20)
            .into_paginator()
            .send();
        let (mut members, mut calls) = (Vec::new(), 0);
        while let Some(page) = pages.next().await {
            calls += 1;
            members.extend(page?.accounts().iter().map(member_of));
        }
        Ok((members, calls))
    }

    async fn member(&self, aws_account_id: &str) -> Result<Option<Member>, OrganizationsError> {
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
            Err(e) => Err(e.into()),
        }
    }

    async fn organisation_id(&self) -> Result<Uuid, OrganizationsError> {
        let org = self.organizations.describe_organization().send().await?;
        Ok(organisation_id(
            org.organization
                .and_then(|o| o.id)
                .as_deref()
                .unwrap_or_default(),
        ))
    }

    async fn check_role(&self, aws_account_id: &str) -> Result<(), RoleCheckError> {
        self.provisioning
            .check_role(aws_account_id, &self.management_account_id)
            .await
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

#[cfg(test)]
mod tests {
    use super::*;
    use domain::fixtures::RecordedStarts;
    use domain::{AccountStatus, Origin};
    use std::collections::HashMap;
    use std::sync::Mutex;
    use store::{AccountReads, MemoryStore, Tasks};

    const ADMIN: &str = "arn:aws:iam::123456789012:role/Admin";
    const MANAGEMENT: &str = "123456789012";

    /// An organization: its members, and which members' provisioning roles refuse (and why).
    #[derive(Default)]
    struct Org {
        members: Mutex<Vec<Member>>,
        refusing: HashMap<String, String>,
        /// Accounts whose role check STS or IAM cannot answer.
        unanswered: HashSet<String>,
    }

    impl Organizations for Org {
        async fn members(&self) -> Result<(Vec<Member>, usize), OrganizationsError> {
            let members = self.members.lock().unwrap().clone();
            let pages = members.len().div_ceil(20);
            Ok((members, pages))
        }
        async fn member(&self, id: &str) -> Result<Option<Member>, OrganizationsError> {
            let members = self.members.lock().unwrap();
            Ok(members.iter().find(|m| m.id == id).cloned())
        }
        async fn organisation_id(&self) -> Result<Uuid, OrganizationsError> {
            Ok(organisation_id("o-test"))
        }
        async fn check_role(&self, id: &str) -> Result<(), RoleCheckError> {
            if self.unanswered.contains(id) {
                return Err(RoleCheckError::Unavailable(
                    "Throttling: Rate exceeded".into(),
                ));
            }
            match self.refusing.get(id) {
                Some(why) => Err(RoleCheckError::Refused(why.clone())),
                None => Ok(()),
            }
        }
    }

    fn member(id: &str, name: &str) -> Member {
        Member {
            id: id.into(),
            name: name.into(),
            email: format!("{name}@example.com"),
            state: MemberState::Active,
        }
    }

    type D = Discoverer<MemoryStore, Org, RecordedStarts>;

    fn discoverer(members: Vec<Member>, refusing: &[(&str, &str)]) -> D {
        Discoverer {
            store: MemoryStore::new(),
            organization: Org {
                members: Mutex::new(members),
                refusing: refusing
                    .iter()
                    .map(|(id, why)| ((*id).to_owned(), (*why).to_owned()))
                    .collect(),
                unanswered: HashSet::new(),
            },
            workflows: RecordedStarts::default(),
            access: AccessPolicy::from_json(&format!(r#"{{"{ADMIN}": "admin"}}"#)).unwrap(),
            email: Some(EmailTemplate::parse("aws+{AccountId}@example.com").unwrap()),
            concurrency: 4,
            foundation: HashSet::from([MANAGEMENT.to_owned()]),
        }
    }

    /// A run leaves records changed in the millisecond its listing began (or later) alone.
    async fn next_millisecond() {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    async fn recorded(d: &D, aws_account_id: &str) -> Option<Account> {
        let v = d.store.get_account_by_aws_id(aws_account_id).await.unwrap();
        v.map(|v| v.value)
    }

    #[tokio::test]
    async fn a_run_records_new_members_and_a_second_run_writes_nothing() {
        let d = discoverer(
            vec![
                member(MANAGEMENT, "management"),
                member("111111111111", "alpha"),
                member("222222222222", "beta"),
            ],
            &[(
                "222222222222",
                "could not assume role stax-provisioning: AccessDenied",
            )],
        );
        let s = run_organization(&d, "test").await.unwrap();
        assert_eq!(
            (s.members, s.discovered, s.role_missing, s.list_calls),
            (3, 1, 1, 1)
        );
        let alpha = recorded(&d, "111111111111").await.unwrap();
        assert_eq!(
            (alpha.status, alpha.origin, alpha.name.as_str()),
            (AccountStatus::Discovered, Origin::External, "alpha")
        );
        let beta = recorded(&d, "222222222222").await.unwrap();
        assert_eq!(beta.status, AccountStatus::Error);
        assert!(beta.status_reason.unwrap().contains("AccessDenied"));
        assert!(
            recorded(&d, MANAGEMENT).await.is_none(),
            "the bootstrap records the foundation accounts"
        );
        let before = d.store.snapshot();
        let again = run_organization(&d, "test").await.unwrap();
        assert_eq!((again.discovered, again.known), (0, 2));
        assert_eq!(
            d.store.snapshot(),
            before,
            "an unchanged organization writes nothing"
        );
    }

    #[tokio::test]
    async fn records_follow_what_aws_reports() {
        let d = discoverer(
            vec![
                member("111111111111", "alpha"),
                member("222222222222", "beta"),
            ],
            &[],
        );
        run_organization(&d, "test").await.unwrap();
        next_millisecond().await;
        {
            let mut members = d.organization.members.lock().unwrap();
            members[0].state = MemberState::Suspended;
            members[1].name = "beta-renamed".into();
        }
        let s = run_organization(&d, "test").await.unwrap();
        assert_eq!((s.closed, s.renamed), (1, 1));
        let alpha = recorded(&d, "111111111111").await.unwrap();
        assert_eq!(
            (alpha.status, alpha.status_reason.as_deref()),
            (
                AccountStatus::Closed,
                Some("AWS reports the account SUSPENDED")
            )
        );
        let beta = recorded(&d, "222222222222").await.unwrap();
        assert_eq!(beta.aws_account_name.as_deref(), Some("beta-renamed"));
        d.organization.members.lock().unwrap().remove(1);
        next_millisecond().await;
        let s = run_organization(&d, "test").await.unwrap();
        assert_eq!(s.left, 1);
        assert_eq!(
            recorded(&d, "222222222222").await.unwrap().status,
            AccountStatus::Closed
        );
    }

    #[tokio::test]
    async fn an_account_recorded_during_the_listing_is_not_closed_or_unlocked() {
        // The create workflow records the AWS id of an account AWS made after the run had
        // fetched the listing's page it would be on: absent from the listing, yet a member.
        let d = discoverer(vec![member("111111111111", "alpha")], &[]);
        let mut creating = domain::fixtures::account_in(AccountStatus::Initializing, "new", None);
        let task = Some(Uuid::new_v4());
        creating.user_task_id = task;
        d.store.insert(creating.clone());
        let mut during = creating;
        during.aws_account_id = Some("333333333333".into());
        d.store.interleave_before_list(during.clone());
        let mut unlocked = domain::fixtures::account_in(AccountStatus::Active, "quiet", None);
        d.store.insert(unlocked.clone());
        unlocked.aws_account_id = Some("444444444444".into());
        d.store.interleave_before_list(unlocked);

        let s = run_organization(&d, "test").await.unwrap();
        assert_eq!((s.left, s.skipped, s.discovered), (0, 2, 1));
        let after = d.store.get_account(during.id).await.unwrap().unwrap().value;
        assert_eq!(
            (after.status, after.user_task_id),
            (AccountStatus::Initializing, task),
            "the workflow keeps its account and its lock"
        );
        let quiet = recorded(&d, "444444444444").await.unwrap();
        assert_eq!(
            quiet.status,
            AccountStatus::Active,
            "changed after the listing began"
        );
    }

    #[tokio::test]
    async fn onboarding_s_role_check_refuses_for_good_or_asks_to_be_retried() {
        let mut d = discoverer(
            vec![],
            &[(
                "222222222222",
                "the provisioning role also trusts AWS principal arn:aws:iam::222222222222:root",
            )],
        );
        d.organization.unanswered.insert("333333333333".into());
        let check = |record: &Account| Event::Step(Step::CheckRole { account: record.id });
        let [fine, untrusted, unanswered, unplaced] = [
            Some("111111111111"),
            Some("222222222222"),
            Some("333333333333"),
            None,
        ]
        .map(|aws| {
            domain::fixtures::account_in(
                AccountStatus::Onboarding,
                &format!("account-{}", aws.unwrap_or("none")),
                aws,
            )
        });
        for record in [&fine, &untrusted, &unanswered, &unplaced] {
            d.store.insert(record.clone());
        }
        let before = d.store.snapshot();
        assert_eq!(
            handle(&d, check(&fine)).await.unwrap(),
            json!({"Checked": "111111111111"})
        );
        let name = |e: DiscoverError| (e.name(), e.to_string());
        let (refused, why) = name(handle(&d, check(&untrusted)).await.unwrap_err());
        assert_eq!(refused, ErrorName::ProvisioningRoleRefused);
        assert!(why.contains("also trusts"), "{why}");
        let (retry, _) = name(handle(&d, check(&unanswered)).await.unwrap_err());
        assert_eq!(
            retry,
            ErrorName::RoleCheckFailed,
            "retried by the onboarding workflow"
        );
        let (no_aws, _) = name(handle(&d, check(&unplaced)).await.unwrap_err());
        assert_eq!(no_aws, ErrorName::ProvisioningRoleRefused);
        assert_eq!(d.store.snapshot(), before, "a check writes nothing");
    }

    #[tokio::test]
    async fn a_name_taken_between_the_read_and_the_write_gets_the_account_id() {
        let d = discoverer(vec![member("111111111111", "alpha")], &[]);
        d.store
            .interleave(domain::fixtures::discovered("alpha", Some("999999999999")));
        let s = run_organization(&d, "test").await.unwrap();
        assert_eq!(s.discovered, 1);
        let alpha = recorded(&d, "111111111111").await.unwrap();
        assert_eq!(alpha.name, "alpha-111111111111");
    }

    #[tokio::test]
    async fn organization_runs_go_one_at_a_time() {
        let d = discoverer(vec![member("111111111111", "alpha")], &[]);
        let started = handle(&d, Event::Step(Step::Schedule)).await.unwrap();
        let task = Uuid::parse_str(started["Started"].as_str().unwrap()).unwrap();
        let skipped = handle(&d, Event::Step(Step::Schedule)).await.unwrap();
        assert_eq!(skipped["Skipped"], "a discovery run is in progress");
        let e = route(&d, post(DISCOVER_ALL, &[])).await.unwrap_err();
        assert_eq!((e.status, e.error), (409, ErrorName::DiscoveryInProgress));
        handle(&d, Event::Step(Step::Run { task })).await.unwrap();
        let t = d.store.get_task(task).await.unwrap().unwrap().value;
        assert_eq!(t.status, TaskStatus::Succeeded);
        assert!(
            t.logs.last().unwrap().contains("1 discovered"),
            "{:?}",
            t.logs
        );
        assert!(
            route(&d, post(DISCOVER_ALL, &[])).await.is_ok(),
            "the next run may start"
        );
        assert_eq!(d.workflows.executions.lock().unwrap().len(), 2);
    }

    fn post(route_key: &str, path: &[(&str, &str)]) -> ApiRequest {
        ApiRequest {
            route_key: route_key.into(),
            principal: Some(ADMIN.into()),
            path: path
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            request_id: "req-1".into(),
            ..ApiRequest::default()
        }
    }

    #[tokio::test]
    async fn discovering_one_account_records_it_and_refusals_write_nothing() {
        let d = discoverer(vec![member("111111111111", "alpha")], &[]);
        let path = [("aws_account_id", "111111111111")];
        let answer = route(&d, post(DISCOVER_ONE, &path)).await.unwrap();
        assert_eq!(
            answer["Detail"]["Message"],
            "Discovered AWS account 111111111111"
        );
        let alpha = recorded(&d, "111111111111").await.unwrap();
        assert_eq!(alpha.status, AccountStatus::Discovered);

        let before = d.store.snapshot();
        for (path, status, error) in [
            ("999999999999", 404, ErrorName::NotFound),
            ("12345", 400, ErrorName::ValidationError),
        ] {
            let e = route(&d, post(DISCOVER_ONE, &[("aws_account_id", path)]))
                .await
                .unwrap_err();
            assert_eq!((e.status, e.error), (status, error), "{path}");
        }
        let mut with_body = post(DISCOVER_ONE, &path);
        with_body.body = Some(r#"{"Force": true}"#.into());
        assert_eq!(route(&d, with_body).await.unwrap_err().status, 400);
        let mut stranger = post(DISCOVER_ALL, &[]);
        stranger.principal = Some("arn:aws:iam::123456789012:user/mallory".into());
        assert_eq!(route(&d, stranger).await.unwrap_err().status, 403);
        d.store
            .acquire_lock(alpha.id, Uuid::new_v4(), "another operation")
            .await
            .unwrap();
        let busy = d.store.snapshot();
        let e = route(&d, post(DISCOVER_ONE, &path)).await.unwrap_err();
        assert_eq!((e.status, e.error), (409, ErrorName::OperationInProgress));
        assert_eq!(d.store.snapshot(), busy);
        assert_ne!(before, busy);
    }

    fn organizations_event(name: &str, detail: Value) -> Event {
        let mut detail = detail;
        detail["eventName"] = json!(name);
        Event::EventBridge(EventBridgeEvent {
            source: "aws.organizations".into(),
            detail_type: "AWS API Call via CloudTrail".into(),
            detail,
        })
    }

    #[tokio::test]
    async fn an_organizations_event_rechecks_the_account_it_names() {
        let d = discoverer(vec![member("111111111111", "alpha")], &[]);
        let created = organizations_event(
            "CreateAccountResult",
            json!({"serviceEventDetails": {"createAccountStatus": {"accountId": "111111111111"}}}),
        );
        let s = handle(&d, created).await.unwrap();
        assert_eq!(s["Discovered"], 1);
        let moved = organizations_event(
            "MoveAccount",
            json!({"requestParameters": {"accountId": "111111111111", "destinationParentId": "ou-x"}}),
        );
        let s = handle(&d, moved.clone()).await.unwrap();
        assert_eq!(s["Moved"], 1);
        let alpha = recorded(&d, "111111111111").await.unwrap();
        assert_eq!(alpha.orgs_ou_id.as_deref(), Some("ou-x"));
        let before = d.store.snapshot();
        assert_eq!(handle(&d, moved).await.unwrap()["Moved"], 0);
        assert_eq!(
            d.store.snapshot(),
            before,
            "a repeated event writes nothing"
        );
        let invited = organizations_event("AcceptHandshake", json!({}));
        assert!(handle(&d, invited).await.unwrap().get("Started").is_some());
    }

    #[tokio::test]
    async fn an_event_of_another_source_is_an_unknown_event() {
        let d = discoverer(vec![], &[]);
        let e = handle(
            &d,
            Event::EventBridge(EventBridgeEvent {
                source: "aws.ec2".into(),
                detail_type: "EC2 Instance State-change Notification".into(),
                detail: json!({}),
            }),
        )
        .await
        .unwrap_err();
        assert_eq!(e.name(), ErrorName::UnknownEvent);
    }

    /// The longest a Task state can take: every attempt its retries allow, each up to the
    /// state's TimeoutSeconds, with the longest waits in between.
    fn longest_run(state: &Value) -> Duration {
        let timeout = state["TimeoutSeconds"]
            .as_u64()
            .expect("the state bounds each attempt");
        let mut seconds = timeout;
        for r in state["Retry"].as_array().unwrap() {
            let (interval, rate) = (
                r["IntervalSeconds"].as_f64().unwrap_or(1.0),
                r["BackoffRate"].as_f64().unwrap_or(2.0),
            );
            for attempt in 0..r["MaxAttempts"].as_u64().unwrap_or(3) {
                seconds += timeout + (interval * rate.powi(attempt as i32)).ceil() as u64;
            }
        }
        Duration::from_secs(seconds)
    }

    #[test]
    fn the_discovery_slot_outlives_the_longest_run() {
        let definition: Value =
            serde_json::from_str(include_str!("../../../statemachines/discovery.asl.json"))
                .unwrap();
        let run = longest_run(&definition["States"]["Discover"]);
        assert!(LEASE > run, "lease {LEASE:?}, longest run {run:?}");
    }

    #[test]
    fn the_state_machines_and_schedules_events_parse() {
        let task = Uuid::new_v4();
        let parse = |v: Value| serde_json::from_value::<Event>(v).unwrap();
        assert_eq!(
            parse(json!({"Action": "Schedule"})),
            Event::Step(Step::Schedule)
        );
        assert_eq!(
            parse(json!({"Action": "Run", "TaskId": task})),
            Event::Step(Step::Run { task })
        );
        assert!(matches!(
            parse(json!({"Action": "Abandon", "TaskId": task, "Error": {"Error": "States.Timeout", "Cause": "slow"}})),
            Event::Step(Step::Abandon { error: Some(e), .. }) if e.cause == "slow"
        ));
        assert!(matches!(
            parse(json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})),
            Event::EventBridge(e) if e.is_schedule()
        ));
        assert!(serde_json::from_value::<Event>(json!({"Action": "Run"})).is_err());
    }
}
