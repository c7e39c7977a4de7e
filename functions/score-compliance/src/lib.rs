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

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;
use http_edge::{ApiRequest, authorize, v2_response};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;
use serde_json::{Value, json};
use shared::api::{ApiError, task_envelope};
use shared::assurance::Provisioning;
use shared::auth::{AccessPolicy, Permission};
use shared::compliance::{Bundle, ComplianceSummary, Evaluation, RuleResult, score};
use shared::config::{self, ConfigError};
use shared::domain::{Account, AccountStatus, Operation};
use shared::filter::AccountFilter;
use shared::store::{Store, StoreError};
use shared::workflows::{RunError, SingletonRun, StateMachine};
use uuid::Uuid;

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
    #[error("the scoring workflow could not be started: {0}")]
    NotStarted(String),
    #[error("batch {1} of run {0} does not exist")]
    NoSuchBatch(Uuid, usize),
    #[error("an event this function does not handle: {0}")]
    UnknownEvent(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<RunError> for ScoreError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::NotStarted(reason) => ScoreError::NotStarted(reason),
            RunError::Store(e) => ScoreError::Store(e),
        }
    }
}

impl ScoreError {
    /// The error name Step Functions sees.
    pub fn name(&self) -> &'static str {
        match self {
            ScoreError::NotStarted(_) => "WorkflowNotStarted",
            ScoreError::NoSuchBatch(..) => "NoSuchBatch",
            ScoreError::UnknownEvent(_) => "UnknownEvent",
            ScoreError::Store(e) => e.name(),
        }
    }
}

impl From<ScoreError> for Diagnostic {
    fn from(e: ScoreError) -> Self {
        Diagnostic {
            error_type: e.name().to_owned(),
            error_message: e.to_string(),
        }
    }
}

pub struct Scorer {
    pub store: Store,
    pub provisioning: Provisioning,
    pub workflows: StateMachine,
    pub access: AccessPolicy,
    pub bundle: &'static Bundle,
    /// Accounts scored at once within one invocation.
    pub concurrency: usize,
    /// Accounts per batch (one Map iteration, one invocation).
    pub batch_size: usize,
    /// The management account, where the function runs: checked with its own credentials (it
    /// has no provisioning role).
    pub management_account_id: String,
}

impl Scorer {
    /// `TABLE_NAME`, `PROVISIONING_ROLE_NAME`, `SCORING_STATE_MACHINE_ARN`, `ACCESS_ROLES`,
    /// `SCORING_CONCURRENCY` (1–64), `SCORING_BATCH_SIZE` (1–1000), `MANAGEMENT_ACCOUNT_ID`.
    pub fn from_env(sdk: shared::aws::SdkConfig) -> Result<Self, ConfigError> {
        let within = |name: &'static str, max: usize| {
            config::parsed(name, move |v| {
                v.parse::<usize>()
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| format!("{v:?} is not between 1 and {max}"))
            })
        };
        Ok(Scorer {
            store: Store::new(
                aws_sdk_dynamodb::Client::new(&sdk),
                config::required("TABLE_NAME")?,
            ),
            workflows: StateMachine::new(&sdk, config::required("SCORING_STATE_MACHINE_ARN")?),
            access: AccessPolicy::from_json(&config::required("ACCESS_ROLES")?)?,
            bundle: Bundle::builtin(),
            concurrency: within("SCORING_CONCURRENCY", 64)?,
            batch_size: within("SCORING_BATCH_SIZE", 1000)?,
            management_account_id: config::required("MANAGEMENT_ACCOUNT_ID")?,
            provisioning: Provisioning::from_env(sdk)?,
        })
    }

    fn runs(&self) -> SingletonRun<'_> {
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
        let entered = if aws_account_id == self.management_account_id {
            Ok(self.provisioning.sdk.clone())
        } else {
            self.provisioning
                .into_account(aws_account_id, "accounts-compliance")
                .await
        };
        let facts = match entered {
            Ok(target) => {
                let identifiers: Vec<String> = self
                    .bundle
                    .rules
                    .iter()
                    .filter_map(|r| match &r.evaluation {
                        Evaluation::ConfigRule { identifier } => Some(identifier.clone()),
                        _ => None,
                    })
                    .collect();
                facts::gather(
                    &target,
                    aws_account_id,
                    &facts::policy_arns(self.bundle),
                    &identifiers,
                )
                .await
            }
            Err(e) => {
                let reason = e.to_string();
                let results = self
                    .bundle
                    .rules
                    .iter()
                    .map(|rule| checks::unreachable(rule, &reason))
                    .collect();
                return (results, false);
            }
        };
        let results = self
            .bundle
            .rules
            .iter()
            .map(|rule| checks::evaluate(rule, &facts))
            .collect();
        (results, true)
    }

    /// Scores one account and records the result; `false`: the account could not be entered.
    pub async fn score_account(
        &self,
        account: &Account,
    ) -> Result<(ComplianceSummary, Vec<RuleResult>, bool), StoreError> {
        let aws_account_id = account.aws_account_id.as_deref().unwrap_or_default();
        let (results, entered) = self.evaluate(aws_account_id).await;
        let summary = score(self.bundle, &results, shared::compliance::now());
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
pub async fn plan(s: &Scorer, task: Uuid) -> Result<Value, ScoreError> {
    match s
        .store
        .update_task(
            task,
            shared::domain::TaskStatus::Running,
            Some("Scoring the accounts"),
        )
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
pub async fn score_batch(s: &Scorer, task: Uuid, index: usize) -> Result<BatchSummary, ScoreError> {
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
pub async fn finish(s: &Scorer, task: Uuid, batches: &[BatchSummary]) -> Result<Value, ScoreError> {
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

pub async fn handle(s: &Scorer, event: LambdaEvent<Value>) -> Result<Value, ScoreError> {
    let request_id = event.context.request_id.clone();
    let payload = event.payload;
    if payload.get("requestContext").is_some() && payload.get("routeKey").is_some() {
        let event =
            serde_json::from_value(payload).map_err(|e| ScoreError::UnknownEvent(e.to_string()))?;
        let req = ApiRequest::from_v2_event(event, &request_id);
        let result = route(s, &req).await;
        return Ok(serde_json::to_value(v2_response(&req.route_key, result)).unwrap_or_default());
    }
    let task = payload
        .get("TaskId")
        .and_then(Value::as_str)
        .and_then(|t| Uuid::parse_str(t).ok());
    let action = payload.get("Action").and_then(Value::as_str);
    let scheduled = payload.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event");
    if action == Some("Schedule") || (action.is_none() && scheduled) {
        return Ok(
            match s.runs().start(Operation::ScoreAccounts, "schedule").await? {
                Some(task) => json!({"Started": task.id}),
                None => json!({"Skipped": "a scoring run is in progress"}),
            },
        );
    }
    match (action, task) {
        (Some("Plan"), Some(task)) => plan(s, task).await,
        (Some("ScoreBatch"), Some(task)) => {
            let index = payload
                .get("Batch")
                .and_then(Value::as_u64)
                .ok_or_else(|| ScoreError::UnknownEvent(payload.to_string()))?;
            Ok(
                serde_json::to_value(score_batch(s, task, index as usize).await?)
                    .unwrap_or_default(),
            )
        }
        (Some("Finish"), Some(task)) => {
            let batches: Vec<BatchSummary> = payload
                .get("Results")
                .cloned()
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| ScoreError::UnknownEvent(e.to_string()))?
                .unwrap_or_default();
            finish(s, task, &batches).await
        }
        (Some("Abandon"), Some(task)) => {
            let cause = payload
                .pointer("/Error/Cause")
                .and_then(Value::as_str)
                .unwrap_or("the run failed");
            s.runs().abandon(task, cause).await?;
            Ok(json!({"TaskId": task, "Status": "FAILED"}))
        }
        _ => Err(ScoreError::UnknownEvent(payload.to_string())),
    }
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
    let raw = req.path_param("account_id");
    Uuid::parse_str(raw)
        .map_err(|_| ApiError::bad_request(format!("account_id: {raw:?} is not an account id")))
}

fn empty_body(req: &ApiRequest) -> Result<(), ApiError> {
    match req.body.as_deref().map(str::trim) {
        None | Some("") | Some("{}") => Ok(()),
        Some(_) => Err(ApiError::bad_request("the body must be empty or {}")),
    }
}

pub async fn route(s: &Scorer, req: &ApiRequest) -> Result<Value, ApiError> {
    let internal = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, request_id = req.request_id, "compliance request failed");
        ApiError::internal(&req.request_id)
    };
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
            empty_body(req)?;
            let actor = req.principal.clone().unwrap_or_default();
            let task = s
                .runs()
                .start(Operation::ScoreAccounts, &actor)
                .await
                .map_err(|e| internal(&e))?
                .ok_or_else(|| {
                    ApiError::conflict(
                        "ScoringInProgress",
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
            empty_body(req)?;
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
                    "NotScorable",
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
            serde_json::to_value(score(Bundle::builtin(), &[], shared::compliance::now())).unwrap();
        for field in example.as_object().unwrap().keys() {
            assert!(summary[field].is_object(), "{field} is not in openapi.json");
        }
    }
}
