//! Compliance scoring: each scorable account (DISCOVERED, ONBOARDING, ACTIVE, SUSPENDED,
//! MAINTENANCE) evaluated through its provisioning role against the rule bundle
//! (`compliance/rules.json`), its score kept on the record, its per-rule results and history
//! beside it.
//!
//! One function, these triggers:
//! - the schedule (`{"Action": "Schedule"}`) and `POST /20190206/accounts/compliance` start an
//!   organization-wide run (one at a time) through the scoring state machine, which calls back:
//!   `Plan` splits the accounts into batches stored in the table (the state machine carries only
//!   batch numbers, so 10,000 accounts stay far inside Step Functions' payload and history
//!   limits), a Map runs `ScoreBatch` for each, `Finish` or `Abandon` ends the run's task;
//! - `POST /20190206/accounts/{account_id}/compliance` scores one account at once;
//! - reads: `GET /20190206/accounts/{account_id}/compliance` (latest per-rule results),
//!   `GET /20190206/accounts/{account_id}/compliance/history`, `GET /20190206/compliance/rules`.

pub mod checks;
pub mod facts;
#[cfg(test)]
mod fixtures;

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use aws::{Provisioning, StateMachine};
use domain::compliance::{Bundle, ComplianceSummary, Evaluation, RuleResult, score};
use domain::config::{self, ConfigError};
use domain::{
    Account, AccountFilter, AccountStatus, ErrorName, Named, Operation, StartWorkflow, TaskStatus,
};
use edge::events::{EventBridgeEvent, StepError};
use edge::stax::parse_uuid;
use edge::{AccessPolicy, ApiError, ApiRequest, Permission, authorize, task_envelope};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use store::{
    AccountReads, Compliance, DynamoStore, RunError, SingletonRun, Slots, StoreError, Tasks,
};
use uuid::Uuid;

use crate::facts::Facts;
use domain::assurance::RootCredentials;
use domain::regions::Regions;

pub const SCORE_ALL: &str = "POST /20190206/accounts/compliance";
pub const SCORE_ONE: &str = "POST /20190206/accounts/{account_id}/compliance";
pub const READ_RESULTS: &str = "GET /20190206/accounts/{account_id}/compliance";
pub const READ_HISTORY: &str = "GET /20190206/accounts/{account_id}/compliance/history";
pub const READ_RULES: &str = "GET /20190206/compliance/rules";
/// The slot that makes organization-wide runs one at a time.
pub const SINGLETON: &str = "compliance";
pub const LEASE: Duration = Duration::from_secs(6 * 60 * 60);
/// The statuses whose accounts are scored.
pub const SCORABLE: [AccountStatus; 5] = [
    AccountStatus::Discovered,
    AccountStatus::Onboarding,
    AccountStatus::Active,
    AccountStatus::Suspended,
    AccountStatus::Maintenance,
];

#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error("batch {1} of run {0} does not exist")]
    NoSuchBatch(Uuid, usize),
    #[error("an event this function does not handle: {0}")]
    UnknownEvent(String),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Named for ScoreError {
    fn name(&self) -> ErrorName {
        match self {
            ScoreError::NoSuchBatch(..) => ErrorName::NoSuchBatch,
            ScoreError::UnknownEvent(_) => ErrorName::UnknownEvent,
            ScoreError::Run(e) => e.name(),
            ScoreError::Store(e) => e.name(),
        }
    }
}

/// The events the function takes besides HTTP requests.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Event {
    /// The EventBridge Scheduler schedule's input, and the scoring state machine's steps.
    Step(Step),
    /// An EventBridge rule's schedule.
    EventBridge(EventBridgeEvent),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "Action")]
pub enum Step {
    /// Start an organization-wide run (the schedule).
    Schedule,
    /// Split the run's accounts into batches.
    Plan {
        #[serde(rename = "TaskId")]
        task: Uuid,
    },
    /// Score one batch.
    ScoreBatch {
        #[serde(rename = "TaskId")]
        task: Uuid,
        #[serde(rename = "Batch")]
        batch: usize,
    },
    /// End the run with the batches' results.
    Finish {
        #[serde(rename = "TaskId")]
        task: Uuid,
        #[serde(rename = "Results", default)]
        results: Vec<BatchSummary>,
    },
    /// Give up on the run.
    Abandon {
        #[serde(rename = "TaskId")]
        task: Uuid,
        #[serde(rename = "Error", default)]
        error: Option<StepError>,
    },
}

/// Entering an account and reading what the rules look at.
pub trait Inspect: Send + Sync {
    /// The account's facts for `bundle`, or why the account could not be entered.
    fn facts(
        &self,
        aws_account_id: &str,
        bundle: &Bundle,
    ) -> impl Future<Output = Result<Vec<Facts>, String>> + Send;
}

/// Accounts as AWS shows them through their provisioning role; the management account, where
/// the function runs, with its own credentials (it has no provisioning role).
pub struct AwsInspector {
    pub provisioning: Provisioning,
    pub regions: Regions,
    pub management_account_id: String,
}

/// The store as scoring uses it.
pub trait Records: AccountReads + Compliance + Slots + Tasks {}
impl<S: AccountReads + Compliance + Slots + Tasks> Records for S {}

pub struct Scorer<S, I, W> {
    pub store: S,
    pub inspector: I,
    pub workflows: W,
    pub access: AccessPolicy,
    pub bundle: &'static Bundle,
    /// Accounts scored at once within one invocation.
    pub concurrency: usize,
    /// Accounts per batch (one Map iteration, one invocation).
    pub batch_size: usize,
}

impl Scorer<DynamoStore, AwsInspector, StateMachine> {
    /// `TABLE_NAME`, `PROVISIONING_ROLE_NAME`, `SCORING_STATE_MACHINE_ARN`, `ACCESS_ROLES`,
    /// `SCORING_CONCURRENCY` (1–64), `SCORING_BATCH_SIZE` (1–1000), `MANAGEMENT_ACCOUNT_ID`.
    pub fn from_env(sdk: aws::SdkConfig, regions: Regions) -> Result<Self, ConfigError> {
        Ok(Scorer {
            store: DynamoStore::from_env(&sdk)?,
            workflows: StateMachine::new(&sdk, config::required("SCORING_STATE_MACHINE_ARN")?),
            access: AccessPolicy::from_json(&config::required("ACCESS_ROLES")?)?,
            bundle: Bundle::builtin(),
            concurrency: config::count("SCORING_CONCURRENCY", 64)? as usize,
            batch_size: config::count("SCORING_BATCH_SIZE", 1000)? as usize,
            inspector: AwsInspector {
                management_account_id: config::required("MANAGEMENT_ACCOUNT_ID")?,
                provisioning: Provisioning::from_env(sdk)?,
                regions,
            },
        })
    }
}

impl AwsInspector {
    /// A member's root credentials, audited in a root session (the audit task alone).
    async fn root_credentials(&self, aws_account_id: &str) -> Result<RootCredentials, String> {
        let auditor = aws::root::root_session(
            &self.provisioning.sdk,
            aws_account_id,
            aws::root::AUDIT_TASK,
        )
        .await
        .map_err(|e| e.to_string())?;
        aws::root::audit(&aws_sdk_iam::Client::new(&auditor))
            .await
            .map_err(|e| e.to_string())
    }
}

impl Inspect for AwsInspector {
    async fn facts(&self, aws_account_id: &str, bundle: &Bundle) -> Result<Vec<Facts>, String> {
        let target = if aws_account_id == self.management_account_id {
            self.provisioning.sdk.clone()
        } else {
            self.provisioning
                .into_account(aws_account_id, aws::Session::Scoring)
                .await
                .map_err(|e| e.to_string())?
        };
        let config_rules: Vec<String> = bundle
            .rules
            .iter()
            .filter_map(|r| match &r.evaluation {
                Evaluation::ConfigRule { identifier } => Some(identifier.clone()),
                _ => None,
            })
            .collect();
        // Boxed: gathering awaits a dozen SDK calls at once, a future too deep for the
        // compiler to lay out inline inside the runtime's.
        let policy_arns = facts::policy_arns(bundle);
        let root_credentials = if aws_account_id == self.management_account_id {
            Ok(None)
        } else {
            self.root_credentials(aws_account_id).await.map(Some)
        };
        let gathering = Box::pin(facts::gather(
            &target,
            &self.regions,
            root_credentials,
            aws_account_id,
            &policy_arns,
            &config_rules,
        ));
        Ok(gathering.await)
    }
}

impl<S: Records, I: Inspect, W: StartWorkflow> Scorer<S, I, W> {
    fn runs(&self) -> SingletonRun<'_, S, W> {
        SingletonRun {
            store: &self.store,
            workflows: &self.workflows,
            slot: SINGLETON,
            lease: LEASE,
        }
    }

    /// Evaluates every rule of the bundle in the account, and says whether the account could
    /// be entered. One whose role cannot be assumed gets every evaluable rule UNKNOWN with that
    /// reason: its score says so.
    pub async fn evaluate(&self, aws_account_id: &str) -> (Vec<RuleResult>, bool) {
        match self.inspector.facts(aws_account_id, self.bundle).await {
            Ok(facts) => {
                let results = self
                    .bundle
                    .rules
                    .iter()
                    .map(|rule| checks::evaluate(rule, &facts))
                    .collect();
                (results, true)
            }
            Err(reason) => {
                let results = self
                    .bundle
                    .rules
                    .iter()
                    .map(|rule| checks::unreachable(rule, &reason))
                    .collect();
                (results, false)
            }
        }
    }

    /// Scores one account and records the result; `false`: the account could not be entered.
    pub async fn score_account(
        &self,
        account: &Account,
    ) -> Result<(ComplianceSummary, Vec<RuleResult>, bool), StoreError> {
        let aws_account_id = account.aws_account_id.as_deref().unwrap_or_default();
        let (results, entered) = self.evaluate(aws_account_id).await;
        let summary = score(self.bundle, &results, domain::timestamp::now());
        self.store
            .record_compliance(account.id, &summary, &results)
            .await?;
        Ok((summary, results, entered))
    }
}

/// What one batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BatchSummary {
    #[serde(rename = "Scored")]
    pub scored: usize,
    /// Accounts whose provisioning role could not be assumed (scored 0, every rule UNKNOWN).
    #[serde(rename = "Unreachable")]
    pub unreachable: usize,
    /// Accounts no longer scorable when their batch ran (closed meanwhile), left alone.
    #[serde(rename = "Skipped")]
    pub skipped: usize,
    /// Set by the state machine for a batch that failed after its retries.
    #[serde(rename = "FailedBatches", default)]
    pub failed_batches: usize,
    #[serde(rename = "Cause", default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

fn scorable(a: &Account) -> bool {
    SCORABLE.contains(&a.status) && a.aws_account_id.is_some()
}

/// Lists the scorable accounts and stores them in batches; answers the batch numbers.
pub async fn plan<S: Records, I: Inspect, W: StartWorkflow>(
    s: &Scorer<S, I, W>,
    task: Uuid,
) -> Result<Value, ScoreError> {
    match s
        .store
        .update_task(task, TaskStatus::Running, Some("Scoring the accounts"))
        .await
    {
        // A retried step finds its task RUNNING already.
        Ok(_) | Err(StoreError::TaskFinished(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let filter = AccountFilter {
        statuses: Some(SCORABLE.iter().copied().collect::<BTreeSet<_>>()),
        ..Default::default()
    };
    let mut ids: Vec<Uuid> = s
        .store
        .list_accounts(&filter)
        .await?
        .into_iter()
        .filter(scorable)
        .map(|a| a.id)
        .collect();
    ids.sort();
    let batches: Vec<Vec<Uuid>> = ids.chunks(s.batch_size).map(<[Uuid]>::to_vec).collect();
    s.store.put_batches(task, &batches).await?;
    tracing::info!(
        accounts = ids.len(),
        batches = batches.len(),
        "planned a scoring run"
    );
    Ok(json!({
        "TaskId": task,
        "Accounts": ids.len(),
        "Batches": (0..batches.len()).collect::<Vec<_>>(),
    }))
}

/// Scores the accounts of one batch, `concurrency` at a time.
pub async fn score_batch<S: Records, I: Inspect, W: StartWorkflow>(
    s: &Scorer<S, I, W>,
    task: Uuid,
    index: usize,
) -> Result<BatchSummary, ScoreError> {
    let ids = s
        .store
        .get_batch(task, index)
        .await?
        .ok_or(ScoreError::NoSuchBatch(task, index))?;
    let outcomes: Vec<Result<Option<bool>, StoreError>> = futures::stream::iter(ids)
        .map(|id| async move {
            let Some(account) = s.store.get_account(id).await? else {
                return Ok(None);
            };
            if !scorable(&account.value) {
                return Ok(None);
            }
            let (_, _, entered) = s.score_account(&account.value).await?;
            Ok(Some(entered))
        })
        .buffer_unordered(s.concurrency)
        .collect()
        .await;
    let mut summary = BatchSummary::default();
    for outcome in outcomes {
        match outcome? {
            Some(true) => summary.scored += 1,
            Some(false) => summary.unreachable += 1,
            None => summary.skipped += 1,
        }
    }
    tracing::info!(batch = index, ?summary, "scored a batch");
    Ok(summary)
}

/// Ends a run: its task SUCCEEDED with the totals.
pub async fn finish<S: Records, I: Inspect, W: StartWorkflow>(
    s: &Scorer<S, I, W>,
    task: Uuid,
    batches: &[BatchSummary],
) -> Result<Value, ScoreError> {
    let mut total = BatchSummary::default();
    let mut causes = Vec::new();
    for b in batches {
        total.scored += b.scored;
        total.unreachable += b.unreachable;
        total.skipped += b.skipped;
        total.failed_batches += b.failed_batches;
        causes.extend(b.cause.clone());
    }
    let mut log = format!(
        "{} accounts scored, {} unreachable through their provisioning role (scored 0, every rule UNKNOWN), {} no longer scorable; rule bundle {} {}",
        total.scored, total.unreachable, total.skipped, s.bundle.name, s.bundle.version
    );
    if total.failed_batches > 0 {
        log.push_str(&format!(
            "; {} batch(es) failed and kept their previous scores: {}",
            total.failed_batches,
            causes.join("; ")
        ));
    }
    s.runs().finish(task, &log).await?;
    Ok(serde_json::to_value(total).unwrap_or_default())
}

/// Every event but HTTP requests ([`route`] takes those).
pub async fn handle<S: Records, I: Inspect, W: StartWorkflow>(
    s: &Scorer<S, I, W>,
    event: Event,
) -> Result<Value, ScoreError> {
    match event {
        Event::Step(Step::Schedule) => scheduled(s).await,
        Event::EventBridge(e) if e.is_schedule() => scheduled(s).await,
        Event::EventBridge(e) => Err(ScoreError::UnknownEvent(format!(
            "{} {}",
            e.source, e.detail_type
        ))),
        Event::Step(Step::Plan { task }) => plan(s, task).await,
        Event::Step(Step::ScoreBatch { task, batch }) => {
            Ok(serde_json::to_value(score_batch(s, task, batch).await?).unwrap_or_default())
        }
        Event::Step(Step::Finish { task, results }) => finish(s, task, &results).await,
        Event::Step(Step::Abandon { task, error }) => {
            let cause = error.map(|e| e.reason()).filter(|c| !c.is_empty());
            s.runs()
                .abandon(task, cause.as_deref().unwrap_or("the run failed"))
                .await?;
            Ok(json!({"TaskId": task, "Status": TaskStatus::Failed}))
        }
    }
}

/// A run the schedule asks for: started, or skipped while one runs.
async fn scheduled<S: Records, I: Inspect, W: StartWorkflow>(
    s: &Scorer<S, I, W>,
) -> Result<Value, ScoreError> {
    Ok(
        match s.runs().start(Operation::ScoreAccounts, "schedule").await? {
            Some(task) => json!({"Started": task.id}),
            None => json!({"Skipped": "a scoring run is in progress"}),
        },
    )
}

/// A rule's result with the rule's description, as the API shows it.
fn described(bundle: &Bundle, results: &[RuleResult]) -> Vec<Value> {
    results
        .iter()
        .map(|r| {
            let rule = bundle.rule(&r.rule_id);
            json!({
                "RuleId": r.rule_id,
                "Title": rule.map(|x| x.title.as_str()),
                "Source": rule.map(|x| &x.source),
                "Level": rule.map(|x| x.level),
                "Weight": rule.map(|x| x.weight),
                "State": r.state,
                "Reason": r.reason,
            })
        })
        .collect()
}

fn account_id(req: &ApiRequest) -> Result<Uuid, ApiError> {
    parse_uuid(req.path_param("account_id"))
        .map_err(|e| ApiError::bad_request(format!("account_id: {e}")))
}

/// The compliance routes.
pub async fn route<S: Records, I: Inspect, W: StartWorkflow>(
    s: &Scorer<S, I, W>,
    req: ApiRequest,
) -> Result<Value, ApiError> {
    let req = &req;
    let internal = |e: &dyn std::fmt::Display| req.internal(e);
    let needed = if req.route_key.starts_with("POST ") {
        Permission::Mutate
    } else {
        Permission::Read
    };
    match req.route_key.as_str() {
        SCORE_ALL | SCORE_ONE | READ_RESULTS | READ_HISTORY | READ_RULES => {}
        other => return Err(ApiError::not_found(format!("no route {other:?}"))),
    }
    authorize(&s.access, req.principal.as_deref(), needed)?;
    match req.route_key.as_str() {
        READ_RULES => {
            req.only_query(&[])?;
            Ok(serde_json::to_value(s.bundle).unwrap_or_default())
        }
        SCORE_ALL => {
            req.only_query(&[])?;
            req.empty_body()?;
            let actor = req.actor();
            let task = s
                .runs()
                .start(Operation::ScoreAccounts, &actor)
                .await
                .map_err(|e| internal(&e))?
                .ok_or_else(|| {
                    ApiError::conflict(
                        ErrorName::ScoringInProgress,
                        "a compliance scoring run is already running",
                    )
                })?;
            Ok(task_envelope(
                &task,
                Uuid::nil(),
                &req.request_id,
                "Compliance Scoring Requested",
                "Scoring every scorable account".into(),
                None,
            ))
        }
        SCORE_ONE => {
            req.only_query(&[])?;
            req.empty_body()?;
            let id = account_id(req)?;
            let account = s
                .store
                .get_account(id)
                .await
                .map_err(|e| internal(&e))?
                .ok_or_else(|| ApiError::not_found(format!("no account {id}")))?
                .value;
            if !scorable(&account) {
                return Err(ApiError::conflict(
                    ErrorName::NotScorable,
                    format!(
                        "account {id} is {}; DISCOVERED, ONBOARDING, ACTIVE, SUSPENDED and MAINTENANCE accounts are scored",
                        account.status
                    ),
                ));
            }
            let (summary, results, _) =
                s.score_account(&account).await.map_err(|e| internal(&e))?;
            Ok(json!({
                "AccountId": id,
                "Compliance": summary,
                "Results": described(s.bundle, &results),
            }))
        }
        READ_RESULTS => {
            req.only_query(&[])?;
            let id = account_id(req)?;
            s.store
                .get_account(id)
                .await
                .map_err(|e| internal(&e))?
                .ok_or_else(|| ApiError::not_found(format!("no account {id}")))?;
            let latest = s
                .store
                .latest_compliance(id)
                .await
                .map_err(|e| internal(&e))?;
            Ok(match latest {
                Some((summary, results)) => json!({
                    "AccountId": id,
                    "Compliance": summary,
                    "Results": described(s.bundle, &results),
                }),
                None => json!({"AccountId": id, "Results": []}),
            })
        }
        READ_HISTORY => {
            req.only_query(&["limit"])?;
            let id = account_id(req)?;
            let limit = match req.query_pairs().find(|(k, _)| *k == "limit") {
                None => 100,
                Some((_, v)) => v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!("limit: {v:?} is not between 1 and 1000"))
                    })?,
            };
            s.store
                .get_account(id)
                .await
                .map_err(|e| internal(&e))?
                .ok_or_else(|| ApiError::not_found(format!("no account {id}")))?;
            let history = s
                .store
                .compliance_history(id, limit)
                .await
                .map_err(|e| internal(&e))?;
            Ok(json!({
                "AccountId": id,
                "History": history
                    .into_iter()
                    .map(|(summary, failed)| {
                        let mut entry = serde_json::to_value(summary).unwrap_or_default();
                        entry["FailedRules"] = json!(failed);
                        entry
                    })
                    .collect::<Vec<_>>(),
            }))
        }
        _ => unreachable!("routes matched above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use domain::fixtures::RecordedStarts;
    use domain::{ErrorName, Named};
    use std::collections::HashMap;
    use store::{AccountReads, MemoryStore, Tasks};

    const ADMIN: &str = "arn:aws:iam::123456789012:role/Admin";
    const READER: &str = "arn:aws:iam::123456789012:role/Reader";

    /// Accounts the way they look inside: compliant facts, or why they cannot be entered.
    #[derive(Default)]
    struct Inside {
        unreachable: HashMap<String, String>,
    }

    impl Inspect for Inside {
        async fn facts(&self, aws_account_id: &str, _: &Bundle) -> Result<Vec<Facts>, String> {
            match self.unreachable.get(aws_account_id) {
                Some(why) => Err(why.clone()),
                None => Ok(vec![crate::fixtures::compliant()]),
            }
        }
    }

    type Sc = Scorer<MemoryStore, Inside, RecordedStarts>;

    fn scorer(batch_size: usize) -> Sc {
        Scorer {
            store: MemoryStore::new(),
            inspector: Inside::default(),
            workflows: RecordedStarts::default(),
            access: AccessPolicy::from_json(&format!(
                r#"{{"{ADMIN}": "admin", "{READER}": "readonly"}}"#
            ))
            .unwrap(),
            bundle: Bundle::builtin(),
            concurrency: 2,
            batch_size,
        }
    }

    fn account(s: &Sc, name: &str, status: AccountStatus, aws: Option<&str>) -> Account {
        let a = domain::fixtures::account_in(status, name, aws);
        s.store.insert(a.clone());
        a
    }

    #[tokio::test]
    async fn a_run_scores_every_scorable_account_in_batches() {
        let mut s = scorer(2);
        s.inspector.unreachable.insert(
            "333333333333".into(),
            "could not assume role: AccessDenied".into(),
        );
        let active = account(&s, "a", AccountStatus::Active, Some("111111111111"));
        account(&s, "b", AccountStatus::Discovered, Some("222222222222"));
        let broken = account(&s, "c", AccountStatus::Active, Some("333333333333"));
        account(&s, "closed", AccountStatus::Closed, Some("444444444444"));
        account(&s, "new", AccountStatus::Initializing, None);
        let started = handle(&s, Event::Step(Step::Schedule)).await.unwrap();
        let task = Uuid::parse_str(started["Started"].as_str().unwrap()).unwrap();
        let planned = plan(&s, task).await.unwrap();
        assert_eq!(
            (planned["Accounts"].as_u64(), planned["Batches"].clone()),
            (Some(3), json!([0, 1]))
        );
        let mut results = Vec::new();
        for batch in [0, 1] {
            results.push(score_batch(&s, task, batch).await.unwrap());
        }
        let total = finish(&s, task, &results).await.unwrap();
        assert_eq!(
            (total["Scored"].as_u64(), total["Unreachable"].as_u64()),
            (Some(2), Some(1))
        );
        let scored = s.store.get_account(active.id).await.unwrap().unwrap().value;
        assert!(
            scored
                .compliance
                .unwrap()
                .score
                .is_some_and(|score| score > 0)
        );
        let unreachable = s.store.get_account(broken.id).await.unwrap().unwrap().value;
        assert_eq!(
            unreachable.compliance.unwrap().score,
            Some(0),
            "every evaluable rule UNKNOWN"
        );
        let t = s.store.get_task(task).await.unwrap().unwrap().value;
        assert_eq!(t.status, TaskStatus::Succeeded);
        assert!(
            t.logs
                .last()
                .unwrap()
                .starts_with("2 accounts scored, 1 unreachable"),
            "{:?}",
            t.logs
        );
        let e = score_batch(&s, task, 7).await.unwrap_err();
        assert_eq!(e.name(), ErrorName::NoSuchBatch);
    }

    #[tokio::test]
    async fn an_account_closed_after_the_plan_is_skipped() {
        let s = scorer(10);
        let a = account(&s, "a", AccountStatus::Active, Some("111111111111"));
        let task = Uuid::new_v4();
        s.store.put_batches(task, &[vec![a.id]]).await.unwrap();
        let mut closed = a.clone();
        closed.status = AccountStatus::Closed;
        s.store.insert(closed);
        let b = score_batch(&s, task, 0).await.unwrap();
        assert_eq!((b.scored, b.skipped), (0, 1));
    }

    fn request(route_key: &str, principal: &str, id: Option<Uuid>) -> ApiRequest {
        ApiRequest {
            route_key: route_key.into(),
            principal: Some(principal.into()),
            path: id
                .map(|id| HashMap::from([("account_id".to_owned(), id.to_string())]))
                .unwrap_or_default(),
            request_id: "req-1".into(),
            ..ApiRequest::default()
        }
    }

    #[tokio::test]
    async fn one_account_is_scored_on_request_and_its_results_read_back() {
        let s = scorer(10);
        let a = account(&s, "a", AccountStatus::Active, Some("111111111111"));
        let scored = route(&s, request(SCORE_ONE, ADMIN, Some(a.id)))
            .await
            .unwrap();
        assert!(scored["Compliance"]["Score"].as_u64().is_some());
        let read = route(&s, request(READ_RESULTS, READER, Some(a.id)))
            .await
            .unwrap();
        assert_eq!(read["Results"], scored["Results"]);
        let history = route(&s, request(READ_HISTORY, READER, Some(a.id)))
            .await
            .unwrap();
        assert_eq!(history["History"].as_array().unwrap().len(), 1);
        let rules = route(&s, request(READ_RULES, READER, None)).await.unwrap();
        assert_eq!(rules["Version"], Bundle::builtin().version);
    }

    #[tokio::test]
    async fn refused_scorings_say_why_and_write_nothing() {
        let s = scorer(10);
        let closed = account(&s, "closed", AccountStatus::Closed, Some("111111111111"));
        let before = s.store.snapshot();
        for (req, status, error) in [
            (
                request(SCORE_ONE, ADMIN, Some(closed.id)),
                409,
                ErrorName::NotScorable,
            ),
            (
                request(SCORE_ONE, ADMIN, Some(Uuid::new_v4())),
                404,
                ErrorName::NotFound,
            ),
            (
                request(SCORE_ONE, READER, Some(closed.id)),
                403,
                ErrorName::Forbidden,
            ),
            (
                request(READ_RESULTS, READER, Some(Uuid::new_v4())),
                404,
                ErrorName::NotFound,
            ),
            (
                request("GET /20190206/nowhere", READER, None),
                404,
                ErrorName::NotFound,
            ),
        ] {
            let what = req.route_key.clone();
            let e = route(&s, req).await.unwrap_err();
            assert_eq!((e.status, e.error), (status, error), "{what}");
        }
        let mut bad_limit = request(READ_HISTORY, READER, Some(closed.id));
        bad_limit.query = vec![("limit".into(), "0".into())];
        assert_eq!(route(&s, bad_limit).await.unwrap_err().status, 400);
        let mut with_body = request(SCORE_ALL, ADMIN, None);
        with_body.body = Some("[1]".into());
        assert_eq!(route(&s, with_body).await.unwrap_err().status, 400);
        assert_eq!(s.store.snapshot(), before);
        route(&s, request(SCORE_ALL, ADMIN, None)).await.unwrap();
        let e = route(&s, request(SCORE_ALL, ADMIN, None))
            .await
            .unwrap_err();
        assert_eq!((e.status, e.error), (409, ErrorName::ScoringInProgress));
    }

    #[test]
    fn the_state_machines_events_parse() {
        let task = Uuid::new_v4();
        let parse = |v: Value| serde_json::from_value::<Event>(v).unwrap();
        assert_eq!(
            parse(json!({"Action": "ScoreBatch", "TaskId": task, "Batch": 3})),
            Event::Step(Step::ScoreBatch { task, batch: 3 })
        );
        let finish = parse(json!({"Action": "Finish", "TaskId": task, "Results": [
            {"Scored": 1, "Unreachable": 0, "Skipped": 0},
            {"Scored": 0, "Unreachable": 0, "Skipped": 0, "FailedBatches": 1, "Cause": "timeout"}
        ]}));
        let Event::Step(Step::Finish { results, .. }) = finish else {
            panic!("a Finish step")
        };
        assert_eq!(results[1].cause.as_deref(), Some("timeout"));
        assert!(
            serde_json::from_value::<Event>(json!({"Action": "ScoreBatch", "TaskId": task}))
                .is_err()
        );
    }

    /// The project's OpenAPI file documents every compliance route the function serves.
    #[test]
    fn every_route_is_in_the_openapi_file() {
        let doc: Value = serde_json::from_str(include_str!("../../../openapi.json")).unwrap();
        for route in [SCORE_ALL, SCORE_ONE, READ_RESULTS, READ_HISTORY, READ_RULES] {
            let (method, path) = route.split_once(' ').unwrap();
            assert!(
                doc["paths"][path][method.to_lowercase()].is_object(),
                "{route} is not in openapi.json"
            );
        }
        let summary = &doc["components"]["schemas"]["ComplianceSummary"]["properties"];
        let example =
            serde_json::to_value(score(Bundle::builtin(), &[], domain::timestamp::now())).unwrap();
        for field in example.as_object().unwrap().keys() {
            assert!(summary[field].is_object(), "{field} is not in openapi.json");
        }
    }
}
