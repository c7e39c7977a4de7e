//! The state machines' one writer of account and task progress.
//!
//! Each [`Step`] becomes one store transaction: the account change (a lifecycle transition, the
//! lock, facts learned about the AWS account, the assurance state) and the task's status and log
//! line land together or not at all. Steps are idempotent: a step Step Functions retries after it
//! already took effect changes nothing.

use lambda_runtime::Diagnostic;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::config::{self, ConfigError};
use shared::domain::{AccountStatus, AssuranceState, TaskStatus};
use shared::lifecycle::{AccountChange, AccountFacts, LockChange, Transition, Trigger};
use shared::store::{Store, StoreError, TaskUpdate};
use uuid::Uuid;

/// An error as Step Functions hands it to a `Catch`: `{"Error": name, "Cause": text}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct StepError {
    #[serde(rename = "Error", default)]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: String,
}

impl StepError {
    /// The reason a person reads on the account: a handler's own message where there is one.
    pub fn reason(&self) -> String {
        // A Lambda failure's cause is the handler's {"errorType", "errorMessage"}.
        if let Ok(v) = serde_json::from_str::<Value>(&self.cause)
            && let Some(message) = v.get("errorMessage").and_then(Value::as_str)
        {
            let kind = v
                .get("errorType")
                .and_then(Value::as_str)
                .unwrap_or(&self.error);
            return format!("{kind}: {message}");
        }
        match (self.error.is_empty(), self.cause.is_empty()) {
            (_, true) => self.error.clone(),
            (true, false) => self.cause.clone(),
            (false, false) => format!("{}: {}", self.error, self.cause),
        }
    }
}

/// One step of a workflow, as its state machine sends it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "Action")]
pub enum Step {
    /// The workflow picked the task up: STARTED → RUNNING.
    Start {
        #[serde(rename = "AccountId")]
        account: Uuid,
        #[serde(rename = "TaskId")]
        task: Uuid,
        #[serde(rename = "Log")]
        log: String,
    },
    /// A line for the task's Logs.
    Log {
        #[serde(rename = "AccountId")]
        account: Uuid,
        #[serde(rename = "TaskId")]
        task: Uuid,
        #[serde(rename = "Log")]
        log: String,
    },
    /// AWS created the account: its id (unique across records) and root email.
    RecordAwsAccount {
        #[serde(rename = "AccountId")]
        account: Uuid,
        #[serde(rename = "TaskId")]
        task: Uuid,
        #[serde(rename = "AwsAccountId")]
        aws_account_id: String,
        #[serde(rename = "Email", default)]
        email: Option<String>,
    },
    /// Assurance runs: AssuranceState UPDATING.
    AssuranceStarted {
        #[serde(rename = "AccountId")]
        account: Uuid,
        #[serde(rename = "TaskId")]
        task: Uuid,
    },
    /// Every assurance concern holds: AssuranceState ACTIVE, with what changed.
    AssuranceSucceeded {
        #[serde(rename = "AccountId")]
        account: Uuid,
        #[serde(rename = "TaskId")]
        task: Uuid,
        #[serde(rename = "Results", default)]
        results: Vec<ConcernResult>,
    },
    /// A concern failed: AssuranceState ERROR with why.
    AssuranceFailed {
        #[serde(rename = "AccountId")]
        account: Uuid,
        #[serde(rename = "TaskId")]
        task: Uuid,
        #[serde(rename = "Error")]
        error: StepError,
    },
    /// The workflow finished: the account becomes ACTIVE, the lock is released, the task SUCCEEDED.
    Complete {
        #[serde(rename = "AccountId")]
        account: Uuid,
        #[serde(rename = "TaskId")]
        task: Uuid,
        #[serde(rename = "Log")]
        log: String,
    },
    /// The workflow failed: the account becomes ERROR with the reason, the lock is released, the
    /// task FAILED with the reason in its Logs.
    Fail {
        #[serde(rename = "AccountId")]
        account: Uuid,
        #[serde(rename = "TaskId")]
        task: Uuid,
        #[serde(rename = "Error")]
        error: StepError,
    },
}

/// What one assurance concern reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConcernResult {
    #[serde(rename = "Concern")]
    pub concern: String,
    #[serde(rename = "Changes", default)]
    pub changes: Vec<String>,
}

/// The account change and task update a step makes.
pub fn plan(step: &Step) -> (Uuid, AccountChange, TaskUpdate<'static>, String) {
    let running = |task, log: String| (task, TaskStatus::Running, log);
    let (account, change, (task, status, log)) = match step {
        Step::Start { account, task, log } => (
            *account,
            AccountChange::default(),
            running(*task, log.clone()),
        ),
        Step::Log { account, task, log } => (
            *account,
            AccountChange::default(),
            running(*task, log.clone()),
        ),
        Step::RecordAwsAccount {
            account,
            task,
            aws_account_id,
            email,
        } => (
            *account,
            AccountChange::facts(AccountFacts {
                aws_account_id: Some(aws_account_id.clone()),
                email: email.clone(),
                ..Default::default()
            }),
            running(*task, format!("AWS account {aws_account_id} created")),
        ),
        Step::AssuranceStarted { account, task } => (
            *account,
            AccountChange::assurance(AssuranceState::Updating, None),
            running(*task, "Account Assurance started".to_owned()),
        ),
        Step::AssuranceSucceeded {
            account,
            task,
            results,
        } => {
            let changed: Vec<String> = results
                .iter()
                .filter(|r| !r.changes.is_empty())
                .map(|r| format!("{}: {}", r.concern, r.changes.join("; ")))
                .collect();
            let log = if changed.is_empty() {
                "Account Assurance: every control already in place, nothing changed".to_owned()
            } else {
                format!("Account Assurance applied {}", changed.join(" | "))
            };
            (
                *account,
                AccountChange::assurance(AssuranceState::Active, None),
                running(*task, log),
            )
        }
        Step::AssuranceFailed {
            account,
            task,
            error,
        } => {
            let reason = error.reason();
            (
                *account,
                AccountChange::assurance(AssuranceState::Error, Some(reason.clone())),
                running(*task, format!("Account Assurance failed: {reason}")),
            )
        }
        Step::Complete { account, task, log } => (
            *account,
            AccountChange::transition(Transition::to(
                Trigger::CompleteWorkflow,
                AccountStatus::Active,
            ))
            .with_lock(LockChange::Release(*task)),
            (*task, TaskStatus::Succeeded, log.clone()),
        ),
        Step::Fail {
            account,
            task,
            error,
        } => {
            let reason = error.reason();
            (
                *account,
                AccountChange::transition(Transition::error(Trigger::FailWorkflow, reason.clone()))
                    .with_lock(LockChange::Release(*task)),
                (*task, TaskStatus::Failed, reason),
            )
        }
    };
    (
        account,
        change,
        TaskUpdate {
            id: task,
            status,
            log: None,
        },
        log,
    )
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<RecordError> for Diagnostic {
    fn from(e: RecordError) -> Self {
        let RecordError::Store(s) = &e;
        Diagnostic {
            error_type: s.name().to_owned(),
            error_message: e.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recorded {
    #[serde(rename = "Status")]
    pub status: AccountStatus,
    #[serde(rename = "AssuranceState")]
    pub assurance_state: AssuranceState,
    #[serde(rename = "TaskStatus")]
    pub task_status: TaskStatus,
}

pub struct Recorder {
    pub store: Store,
}

impl Recorder {
    /// `TABLE_NAME`.
    pub fn from_env(sdk: &shared::aws::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Recorder {
            store: Store::new(
                aws_sdk_dynamodb::Client::new(sdk),
                config::required("TABLE_NAME")?,
            ),
        })
    }
}

/// A step and the execution that sends it (recorded as the actor of its writes).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StepInput {
    #[serde(flatten)]
    pub step: Step,
    #[serde(rename = "Execution", default)]
    pub execution: Option<String>,
}

pub async fn record(r: &Recorder, input: StepInput) -> Result<Recorded, RecordError> {
    let (account, change, mut update, log) = plan(&input.step);
    update.log = Some(&log);
    let actor = input
        .execution
        .unwrap_or_else(|| "account-workflow".to_owned());
    let task = r
        .store
        .get_task(update.id)
        .await?
        .ok_or(StoreError::TaskNotFound(update.id))?;
    // A final step retried after it took effect: the task says so; do not apply it twice.
    if task.value.status.is_terminal() && task.value.status == update.status {
        let account = r
            .store
            .get_account(account)
            .await?
            .ok_or(StoreError::AccountNotFound(account))?;
        return Ok(Recorded {
            status: account.value.status,
            assurance_state: account.value.assurance_state,
            task_status: task.value.status,
        });
    }
    let (account, task) = r
        .store
        .update_with_task(account, &change, Some(update), &actor)
        .await?;
    tracing::info!(account = %account.value.id, status = %account.value.status, log, "recorded");
    Ok(Recorded {
        status: account.value.status,
        assurance_state: account.value.assurance_state,
        task_status: task.map_or(TaskStatus::Running, |t| t.value.status),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn step(v: Value) -> Step {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_lambda_failure_reads_as_its_handlers_message() {
        let e = StepError {
            error: "FoundationAccountNotInOrganization".into(),
            cause: r#"{"errorType":"RoleNotAssumable","errorMessage":"stax-provisioning in 111122223333: AccessDenied"}"#.into(),
        };
        assert_eq!(
            e.reason(),
            "RoleNotAssumable: stax-provisioning in 111122223333: AccessDenied"
        );
        let e = StepError {
            error: "CreateAccountFailed".into(),
            cause: "EMAIL_ALREADY_EXISTS".into(),
        };
        assert_eq!(e.reason(), "CreateAccountFailed: EMAIL_ALREADY_EXISTS");
        let e = StepError {
            error: "States.Timeout".into(),
            cause: String::new(),
        };
        assert_eq!(e.reason(), "States.Timeout");
    }

    #[test]
    fn completing_releases_the_lock_and_succeeds_the_task() {
        let (account, task) = (Uuid::new_v4(), Uuid::new_v4());
        let (id, change, update, log) = plan(&step(
            json!({"Action": "Complete", "AccountId": account, "TaskId": task, "Log": "Account is ACTIVE"}),
        ));
        assert_eq!(id, account);
        assert_eq!(
            change.transition,
            Some(Transition::to(
                Trigger::CompleteWorkflow,
                AccountStatus::Active
            ))
        );
        assert_eq!(change.lock, Some(LockChange::Release(task)));
        assert_eq!(
            (update.status, log.as_str()),
            (TaskStatus::Succeeded, "Account is ACTIVE")
        );
    }

    #[test]
    fn failing_records_the_reason_on_account_and_task() {
        let (account, task) = (Uuid::new_v4(), Uuid::new_v4());
        let (_, change, update, log) = plan(&step(json!({
            "Action": "Fail", "AccountId": account, "TaskId": task,
            "Error": {"Error": "CreateAccountFailed", "Cause": "AWS Organizations could not create the account: EMAIL_ALREADY_EXISTS"}
        })));
        let reason = "CreateAccountFailed: AWS Organizations could not create the account: EMAIL_ALREADY_EXISTS";
        assert_eq!(change.transition.unwrap().reason.as_deref(), Some(reason));
        assert_eq!((update.status, log.as_str()), (TaskStatus::Failed, reason));
    }

    #[test]
    fn assurance_results_are_summarised_in_the_log() {
        let (account, task) = (Uuid::new_v4(), Uuid::new_v4());
        let (_, change, _, log) = plan(&step(json!({
            "Action": "AssuranceSucceeded", "AccountId": account, "TaskId": task,
            "Results": [{"Concern": "guardduty", "Changes": ["created detector"]}, {"Concern": "ssm", "Changes": []}]
        })));
        assert_eq!(change.assurance, Some((AssuranceState::Active, None)));
        assert_eq!(log, "Account Assurance applied guardduty: created detector");
        let (_, _, _, log) = plan(&step(
            json!({"Action": "AssuranceSucceeded", "AccountId": account, "TaskId": task, "Results": []}),
        ));
        assert!(log.contains("nothing changed"));
    }

    #[test]
    fn the_execution_comes_along_with_any_step() {
        let input: StepInput = serde_json::from_value(json!({
            "Action": "Log", "AccountId": Uuid::nil(), "TaskId": Uuid::nil(), "Log": "waiting", "Execution": "arn:aws:states:x"
        }))
        .unwrap();
        assert_eq!(input.execution.as_deref(), Some("arn:aws:states:x"));
        assert!(matches!(input.step, Step::Log { .. }));
    }

    #[test]
    fn recording_the_aws_account_sets_its_id() {
        let (account, task) = (Uuid::new_v4(), Uuid::new_v4());
        let (_, change, update, _) = plan(&step(json!({
            "Action": "RecordAwsAccount", "AccountId": account, "TaskId": task, "AwsAccountId": "444455556666"
        })));
        assert_eq!(change.facts.aws_account_id.as_deref(), Some("444455556666"));
        assert_eq!(update.status, TaskStatus::Running);
    }
}
