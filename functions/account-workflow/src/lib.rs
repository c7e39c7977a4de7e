//! The account workflows' one writer of account and task progress: of the functions the create,
//! onboarding, assurance and foundation state machines call, this one alone writes the record.
//!
//! Each [`Step`] becomes one store transaction: the account change (a lifecycle transition, the
//! lock, facts learned about the AWS account, the assurance state) and the task's status and log
//! line land together or not at all. A step of a task that does not hold the account's lock is
//! refused (`NotLockHolder`) and writes nothing. Steps are idempotent: a step Step Functions
//! retries after it already took effect changes nothing.

use chrono::Utc;
use domain::assurance::ConcernResult;
use domain::config::ConfigError;
use domain::{
    Account, AccountChange, AccountFacts, AccountStatus, AssuranceState, ExecutionStates,
    LockChange, Operation, Task, TaskStatus, Transition, Trigger,
};
use edge::events::StepError;
use serde::{Deserialize, Serialize};
use store::{AccountWrites, DynamoStore, StoreError, TaskUpdate};
use uuid::Uuid;

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
    /// The placement step put the account in its Account Type's OU: the OU, and what was done.
    RecordPlacement {
        #[serde(rename = "AccountId")]
        account: Uuid,
        #[serde(rename = "TaskId")]
        task: Uuid,
        #[serde(rename = "OrgsOuId")]
        ou: String,
        #[serde(rename = "Log")]
        log: String,
    },
    /// An update applied a change in AWS (the alias, the AWS account name, the move to another
    /// Account Type's OU, the tags): the record takes it, after AWS did.
    RecordUpdate {
        #[serde(rename = "AccountId")]
        account: Uuid,
        #[serde(rename = "TaskId")]
        task: Uuid,
        #[serde(rename = "AwsAccountAlias", default)]
        aws_account_alias: Option<String>,
        #[serde(rename = "AwsAccountName", default)]
        aws_account_name: Option<String>,
        #[serde(rename = "AccountType", default)]
        account_type: Option<Uuid>,
        #[serde(rename = "OrgsOuId", default)]
        ou: Option<String>,
        #[serde(rename = "Tags", default)]
        tags: Option<domain::Tags>,
        #[serde(rename = "Log")]
        log: String,
    },
    /// An update finished: the lock is released and the task SUCCEEDED; the status stays.
    Finish {
        #[serde(rename = "AccountId")]
        account: Uuid,
        #[serde(rename = "TaskId")]
        task: Uuid,
        #[serde(rename = "Log")]
        log: String,
    },
    /// An update failed: the lock is released and the task FAILED with the reason; the status
    /// stays (what was applied before the failure is recorded, step by step, and is valid on
    /// its own).
    Abort {
        #[serde(rename = "AccountId")]
        account: Uuid,
        #[serde(rename = "TaskId")]
        task: Uuid,
        #[serde(rename = "Error")]
        error: StepError,
    },
    /// A line for the task's Logs while it runs (a closure waiting for AWS's quota says why).
    Log {
        #[serde(rename = "AccountId")]
        account: Uuid,
        #[serde(rename = "TaskId")]
        task: Uuid,
        #[serde(rename = "Log")]
        log: String,
    },
    /// AWS reports the account closing (`PENDING_CLOSURE`) or closed (`SUSPENDED`): the account
    /// is CLOSED, the lock released, the task SUCCEEDED.
    RecordClosure {
        #[serde(rename = "AccountId")]
        account: Uuid,
        #[serde(rename = "TaskId")]
        task: Uuid,
        /// The account's status in AWS.
        #[serde(rename = "AwsStatus")]
        aws_status: String,
    },
    /// The suspension SCP is attached (`Suspend`: SUSPENDED) or detached (`Reactivate`:
    /// ACTIVE): the status follows, the lock is released, the task SUCCEEDED.
    RecordSuspension {
        #[serde(rename = "AccountId")]
        account: Uuid,
        #[serde(rename = "TaskId")]
        task: Uuid,
        #[serde(rename = "Change")]
        change: SuspensionChange,
        #[serde(rename = "Log")]
        log: String,
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
    /// The last resort when [`Step::Fail`] (or a maintenance's end) could not be recorded — the
    /// record changed under the workflow so that ERROR is refused, or the store kept failing:
    /// the lock is released and the task FAILED with both reasons, the account's status left
    /// as it is. Nothing stays locked by a workflow that has ended.
    Release {
        #[serde(rename = "AccountId")]
        account: Uuid,
        #[serde(rename = "TaskId")]
        task: Uuid,
        #[serde(rename = "Error")]
        error: StepError,
        /// Why recording the outcome failed.
        #[serde(rename = "RecordError", default)]
        record_error: Option<StepError>,
    },
    /// A repair that ended without running (its Account Assurance execution could not be
    /// started): the account ACTIVE again, the lock released, the task FAILED with why
    /// ([`AccountChange::stand_down`], as the API's repair does). A task another step finished
    /// already (the execution ran and ended it) is left as it is.
    StandDown {
        #[serde(rename = "AccountId")]
        account: Uuid,
        #[serde(rename = "TaskId")]
        task: Uuid,
        #[serde(rename = "Error")]
        error: StepError,
    },
    /// Assurance re-runs on an ACTIVE account (the foundation bootstrap's re-assurance):
    /// MAINTENANCE, under a new task that takes the lock — the same change the API's repair
    /// makes ([`AccountChange::start_maintenance`]). The task's id derives from the execution,
    /// so a retried step finds its own task.
    StartMaintenance {
        #[serde(rename = "AccountId")]
        account: Uuid,
    },
}

/// Which way a suspension goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SuspensionChange {
    Suspend,
    Reactivate,
}

/// The store write a step makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// An account change with the task's next status and log line.
    Update {
        account: Uuid,
        change: AccountChange,
        task: Uuid,
        status: TaskStatus,
        log: String,
        /// A finished task means the step has nothing left to do, however it finished (else
        /// only a task finished the same way does).
        unless_finished: bool,
    },
    /// An account change under a new task.
    StartTask {
        account: Uuid,
        change: AccountChange,
        task: Task,
    },
}

/// The task a maintenance run started by `execution` works under. Its id derives from the
/// execution and the account, so a retried step finds its own task and one execution (the
/// foundation bootstrap's Map) may maintain several accounts.
pub fn maintenance_task(account: Uuid, execution: &str) -> Task {
    let mut task = Task::new(Operation::HardenAccount, vec![account], Utc::now()).run_by(execution);
    task.id = Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("{execution}/{account}").as_bytes(),
    );
    task
}

/// The store write `step` makes (pure: no I/O).
pub fn plan(step: &Step, execution: &str) -> Plan {
    // A step while the task runs: it must hold the account's lock.
    let running = |account: &Uuid, task: &Uuid, change: AccountChange, log: String| Plan::Update {
        account: *account,
        change: change.with_lock(LockChange::Hold(*task)),
        task: *task,
        status: TaskStatus::Running,
        log,
        unless_finished: false,
    };
    // The step that ends the task's operation: `change` releases the lock.
    let ending = |account: &Uuid, task: &Uuid, change, status, log: String| Plan::Update {
        account: *account,
        change,
        task: *task,
        status,
        log,
        unless_finished: false,
    };
    match step {
        Step::Start { account, task, log } | Step::Log { account, task, log } => {
            running(account, task, AccountChange::default(), log.clone())
        }
        Step::RecordSuspension {
            account,
            task,
            change,
            log,
        } => {
            let transition = match change {
                SuspensionChange::Suspend => {
                    Transition::to(Trigger::Suspend, AccountStatus::Suspended)
                }
                SuspensionChange::Reactivate => {
                    Transition::to(Trigger::Reactivate, AccountStatus::Active)
                }
            };
            ending(
                account,
                task,
                AccountChange::end_operation(*task, transition),
                TaskStatus::Succeeded,
                log.clone(),
            )
        }
        Step::RecordClosure {
            account,
            task,
            aws_status,
        } => ending(
            account,
            task,
            AccountChange::end_operation(
                *task,
                Transition::because(
                    Trigger::Close,
                    AccountStatus::Closed,
                    format!("closed through the service; AWS reports the account {aws_status}"),
                ),
            ),
            TaskStatus::Succeeded,
            format!("Account is CLOSED (AWS reports it {aws_status})"),
        ),
        Step::RecordAwsAccount {
            account,
            task,
            aws_account_id,
            email,
        } => running(
            account,
            task,
            AccountChange::facts(AccountFacts {
                aws_account_id: Some(aws_account_id.clone()),
                email: email.clone(),
                ..Default::default()
            }),
            format!("AWS account {aws_account_id} created"),
        ),
        Step::RecordPlacement {
            account,
            task,
            ou,
            log,
        } => running(
            account,
            task,
            AccountChange::facts(AccountFacts {
                orgs_ou_id: Some(ou.clone()),
                ..Default::default()
            }),
            log.clone(),
        ),
        Step::RecordUpdate {
            account,
            task,
            aws_account_alias,
            aws_account_name,
            account_type,
            ou,
            tags,
            log,
        } => running(
            account,
            task,
            AccountChange::facts(AccountFacts {
                aws_account_alias: aws_account_alias.clone(),
                aws_account_name: aws_account_name.clone(),
                account_type: *account_type,
                orgs_ou_id: ou.clone(),
                tags: tags.clone(),
                ..Default::default()
            }),
            log.clone(),
        ),
        Step::Finish { account, task, log } => ending(
            account,
            task,
            AccountChange::release(*task),
            TaskStatus::Succeeded,
            log.clone(),
        ),
        Step::Abort {
            account,
            task,
            error,
        } => Plan::Update {
            account: *account,
            change: AccountChange::release(*task),
            task: *task,
            status: TaskStatus::Failed,
            log: error.reason(),
            unless_finished: true,
        },
        Step::AssuranceStarted { account, task } => running(
            account,
            task,
            AccountChange::assurance(AssuranceState::Updating, None),
            "Account Assurance started".to_owned(),
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
            running(
                account,
                task,
                AccountChange::assurance(AssuranceState::Active, None),
                log,
            )
        }
        Step::AssuranceFailed {
            account,
            task,
            error,
        } => {
            let reason = error.reason();
            running(
                account,
                task,
                AccountChange::assurance(AssuranceState::Error, Some(reason.clone())),
                format!("Account Assurance failed: {reason}"),
            )
        }
        Step::Complete { account, task, log } => ending(
            account,
            task,
            AccountChange::end_operation(
                *task,
                Transition::to(Trigger::CompleteWorkflow, AccountStatus::Active),
            ),
            TaskStatus::Succeeded,
            log.clone(),
        ),
        Step::Fail {
            account,
            task,
            error,
        } => {
            let reason = error.reason();
            ending(
                account,
                task,
                AccountChange::end_operation(
                    *task,
                    Transition::error(Trigger::FailWorkflow, reason.clone()),
                ),
                TaskStatus::Failed,
                reason,
            )
        }
        Step::StandDown {
            account,
            task,
            error,
        } => Plan::Update {
            account: *account,
            change: AccountChange::stand_down(*task),
            task: *task,
            status: TaskStatus::Failed,
            log: format!(
                "Account Assurance could not be run: {}; the account is ACTIVE as it was",
                error.reason()
            ),
            unless_finished: true,
        },
        Step::Release {
            account,
            task,
            error,
            record_error,
        } => Plan::Update {
            account: *account,
            change: AccountChange::lock(LockChange::Release(*task)),
            task: *task,
            status: TaskStatus::Failed,
            log: format!(
                "{}; the outcome could not be recorded ({}): the lock is released and the account left as it is",
                error.reason(),
                record_error
                    .as_ref()
                    .map(StepError::reason)
                    .unwrap_or_else(|| "no reason given".into())
            ),
            unless_finished: true,
        },
        Step::StartMaintenance { account } => {
            let task = maintenance_task(*account, execution);
            Plan::StartTask {
                account: *account,
                change: AccountChange::start_maintenance(task.id),
                task,
            }
        }
    }
}

/// The account and task after a step: the facts later states need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recorded {
    #[serde(rename = "Status")]
    pub status: AccountStatus,
    #[serde(rename = "AssuranceState")]
    pub assurance_state: AssuranceState,
    #[serde(rename = "TaskId")]
    pub task_id: Uuid,
    #[serde(rename = "TaskStatus")]
    pub task_status: TaskStatus,
    #[serde(rename = "AwsAccountId")]
    pub aws_account_id: Option<String>,
    #[serde(rename = "Email")]
    pub email: Option<String>,
    #[serde(rename = "AwsAccountAlias")]
    pub aws_account_alias: Option<String>,
}

impl Recorded {
    fn of(account: &Account, task: &Task) -> Self {
        Recorded {
            status: account.status,
            assurance_state: account.assurance_state,
            task_id: task.id,
            task_status: task.status,
            aws_account_id: account.aws_account_id.clone(),
            email: account.email.clone(),
            aws_account_alias: account.aws_account_alias.clone(),
        }
    }
}

pub struct Recorder<S, E> {
    pub store: S,
    /// Whether the execution holding an account's lock still runs (a maintenance the bootstrap
    /// starts takes over an abandoned one's lock).
    pub executions: E,
}

impl Recorder<DynamoStore, aws::Executions> {
    /// `TABLE_NAME`.
    pub fn from_env(sdk: &aws::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Recorder {
            store: DynamoStore::from_env(sdk)?,
            executions: aws::Executions::new(sdk),
        })
    }
}

/// A step and the execution that sends it (recorded as the actor of its writes).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StepInput {
    #[serde(flatten)]
    pub step: Step,
    /// The execution's id (`$$.Execution.Id`): the actor of the writes, and what a maintenance
    /// task's id derives from.
    #[serde(rename = "Execution")]
    pub execution: String,
}

pub async fn handle<S: AccountWrites, E: ExecutionStates>(
    r: &Recorder<S, E>,
    input: StepInput,
) -> Result<Recorded, StoreError> {
    let actor = &input.execution;
    match plan(&input.step, actor) {
        Plan::StartTask {
            account,
            change,
            task,
        } => {
            // Idempotent: a retried step whose task already holds the lock changes nothing. An
            // abandoned operation's lock (a bootstrap stopped mid-way) is taken over.
            edge::start_operation_taking_over(
                &r.store,
                &r.executions,
                account,
                &change,
                &task,
                actor,
            )
            .await?;
            let current = r
                .store
                .get_account(account)
                .await?
                .ok_or(StoreError::AccountNotFound(account))?;
            let task = r
                .store
                .get_task(task.id)
                .await?
                .ok_or(StoreError::TaskNotFound(task.id))?;
            tracing::info!(account = %account, task = %task.value.id, "maintenance started");
            Ok(Recorded::of(&current.value, &task.value))
        }
        Plan::Update {
            account,
            change,
            task,
            status,
            log,
            unless_finished,
        } => {
            let read = r
                .store
                .get_task(task)
                .await?
                .ok_or(StoreError::TaskNotFound(task))?;
            // A final step retried after it took effect: the task says so; do not apply it twice.
            let finished = read.value.status.is_terminal();
            if finished && (read.value.status == status || unless_finished) {
                let account = r
                    .store
                    .get_account(account)
                    .await?
                    .ok_or(StoreError::AccountNotFound(account))?;
                return Ok(Recorded::of(&account.value, &read.value));
            }
            let update = TaskUpdate {
                id: task,
                status,
                log: Some(&log),
            };
            let (account, task) = r
                .store
                .update_with_task(account, &change, Some(update.into()), actor)
                .await?;
            let task = task.map_or(read.value, |t| t.value);
            tracing::info!(account = %account.value.id, status = %account.value.status, log, "recorded");
            Ok(Recorded::of(&account.value, &task))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::fixtures::RecordedStarts;
    use serde_json::{Value, json};
    use store::{AccountReads, MemoryStore, Tasks};

    const EXECUTION: &str = "arn:aws:states:us-east-1:123456789012:execution:Assurance:x";

    fn update(v: Value) -> (Uuid, AccountChange, TaskStatus, String) {
        match plan(&serde_json::from_value(v).unwrap(), EXECUTION) {
            Plan::Update {
                account,
                change,
                status,
                log,
                ..
            } => (account, change, status, log),
            other => panic!("expected an update, got {other:?}"),
        }
    }

    #[test]
    fn completing_releases_the_lock_and_succeeds_the_task() {
        let (account, task) = (Uuid::new_v4(), Uuid::new_v4());
        let (id, change, status, log) = update(
            json!({"Action": "Complete", "AccountId": account, "TaskId": task, "Log": "Account is ACTIVE"}),
        );
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
            (status, log.as_str()),
            (TaskStatus::Succeeded, "Account is ACTIVE")
        );
    }

    #[test]
    fn failing_records_the_reason_on_account_and_task() {
        let (account, task) = (Uuid::new_v4(), Uuid::new_v4());
        let (_, change, status, log) = update(json!({
            "Action": "Fail", "AccountId": account, "TaskId": task,
            "Error": {"Error": "CreateAccountFailed", "Cause": "AWS Organizations could not create the account: EMAIL_ALREADY_EXISTS"}
        }));
        let reason = "CreateAccountFailed: AWS Organizations could not create the account: EMAIL_ALREADY_EXISTS";
        assert_eq!(change.transition.unwrap().reason.as_deref(), Some(reason));
        assert_eq!((status, log.as_str()), (TaskStatus::Failed, reason));
    }

    #[test]
    fn assurance_results_are_summarised_in_the_log() {
        let (account, task) = (Uuid::new_v4(), Uuid::new_v4());
        let (_, change, _, log) = update(json!({
            "Action": "AssuranceSucceeded", "AccountId": account, "TaskId": task,
            "Results": [{"Concern": "guardduty", "Changes": ["created detector"]}, {"Concern": "ssm", "Changes": []}]
        }));
        assert_eq!(change.assurance, Some((AssuranceState::Active, None)));
        assert_eq!(log, "Account Assurance applied guardduty: created detector");
        let (_, _, _, log) = update(
            json!({"Action": "AssuranceSucceeded", "AccountId": account, "TaskId": task, "Results": []}),
        );
        assert!(log.contains("nothing changed"));
    }

    #[test]
    fn every_step_names_its_execution() {
        let input: StepInput = serde_json::from_value(json!({
            "Action": "Start", "AccountId": Uuid::nil(), "TaskId": Uuid::nil(), "Log": "Creating", "Execution": EXECUTION
        }))
        .unwrap();
        assert_eq!(input.execution, EXECUTION);
        assert!(matches!(input.step, Step::Start { .. }));
        let without = serde_json::from_value::<StepInput>(json!({
            "Action": "StartMaintenance", "AccountId": Uuid::nil()
        }));
        assert!(
            without.is_err(),
            "a maintenance task's id derives from the execution"
        );
    }

    #[test]
    fn recording_the_aws_account_sets_its_id() {
        let (account, task) = (Uuid::new_v4(), Uuid::new_v4());
        let (_, change, status, _) = update(
            json!({"Action": "RecordAwsAccount", "AccountId": account, "TaskId": task, "AwsAccountId": "444455556666"}),
        );
        assert_eq!(change.facts.aws_account_id.as_deref(), Some("444455556666"));
        assert_eq!(status, TaskStatus::Running);
    }

    #[test]
    fn maintenance_runs_under_a_task_of_its_execution() {
        let account = Uuid::new_v4();
        let step: Step =
            serde_json::from_value(json!({"Action": "StartMaintenance", "AccountId": account}))
                .unwrap();
        let Plan::StartTask { change, task, .. } = plan(&step, EXECUTION) else {
            panic!("a new task")
        };
        assert_eq!(
            change.transition,
            Some(Transition::to(
                Trigger::StartMaintenance,
                AccountStatus::Maintenance
            ))
        );
        assert_eq!(change.lock, Some(LockChange::Acquire(task.id)));
        assert_eq!(
            (task.operation, task.accounts.clone()),
            (Operation::HardenAccount, vec![account])
        );
        let Plan::StartTask { task: again, .. } = plan(&step, EXECUTION) else {
            panic!("a new task")
        };
        assert_eq!(again.id, task.id, "a retried step names the same task");
        let other = Uuid::new_v4();
        let step: Step =
            serde_json::from_value(json!({"Action": "StartMaintenance", "AccountId": other}))
                .unwrap();
        let Plan::StartTask { task: theirs, .. } = plan(&step, EXECUTION) else {
            panic!("a new task")
        };
        assert_ne!(theirs.id, task.id, "another account of the same execution");
    }

    fn input(step: Value) -> StepInput {
        let mut v = step;
        v["Execution"] = json!(EXECUTION);
        serde_json::from_value(v).unwrap()
    }

    /// A recorder over a store holding one account in `status`, locked by a RUNNING task.
    fn recorder(status: AccountStatus) -> (Recorder<MemoryStore, RecordedStarts>, Uuid, Uuid) {
        let store = MemoryStore::new();
        let mut task = Task::new(Operation::CreateAccount, vec![], Utc::now());
        task.status = TaskStatus::Running;
        let mut account = domain::fixtures::account_in(status, "bakery", Some("444455556666"));
        account.user_task_id = Some(task.id);
        task.accounts = vec![account.id];
        store.insert(account.clone());
        store.insert_task(task.clone());
        (
            Recorder {
                store,
                executions: RecordedStarts::default(),
            },
            account.id,
            task.id,
        )
    }

    #[tokio::test]
    async fn the_placement_is_recorded_with_its_log_line_once() {
        let (r, account, task) = recorder(AccountStatus::Initializing);
        let step = json!({"Action": "RecordPlacement", "AccountId": account, "TaskId": task,
                          "OrgsOuId": "ou-1", "Log": "Moved AWS account 444455556666 to OU ou-1 (default)"});
        handle(&r, input(step.clone())).await.unwrap();
        let recorded = r.store.get_account(account).await.unwrap().unwrap();
        assert_eq!(recorded.value.orgs_ou_id.as_deref(), Some("ou-1"));
        let logs = r.store.get_task(task).await.unwrap().unwrap().value.logs;
        assert_eq!(
            logs,
            ["Moved AWS account 444455556666 to OU ou-1 (default)"]
        );
        let trail = r.store.audit_trail(account).await.unwrap();
        assert_eq!(trail.last().map(|e| e.actor.as_str()), Some(EXECUTION));
    }

    /// Every state of every workflow that writes through this function, each with its path
    /// ("file: state").
    fn states_writing_through_this_function() -> Vec<(String, Value)> {
        fn walk(file: &str, states: &Value, found: &mut Vec<(String, Value)>) {
            for (name, state) in states.as_object().into_iter().flatten() {
                let invoked = &state["Parameters"]["FunctionName"];
                if invoked == "${AccountWorkflowFunctionArn}" {
                    found.push((format!("{file}: {name}"), state.clone()));
                }
                for inner in [
                    &state["ItemProcessor"]["States"],
                    &state["Iterator"]["States"],
                ] {
                    walk(file, inner, found);
                }
                for branch in state["Branches"].as_array().into_iter().flatten() {
                    walk(file, &branch["States"], found);
                }
            }
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../statemachines");
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let definition: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            walk(&file, &definition["States"], &mut found);
        }
        found
    }

    #[test]
    fn every_step_that_writes_the_account_is_caught_and_every_failure_record_has_a_last_resort() {
        let states = states_writing_through_this_function();
        assert!(states.len() >= 19, "{}", states.len());
        for (name, state) in &states {
            assert!(
                state["Catch"].is_array(),
                "{name} has no Catch: a failure there would leave the lock held"
            );
            let action = state["Parameters"]["Payload"]["Action"].as_str().unwrap();
            let retried: Vec<&str> = state["Retry"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|r| domain::policy::strings(&r["ErrorEquals"]))
                .collect();
            for transient in [
                "Lambda.ServiceException",
                "Lambda.Unknown",
                "Sandbox.Timedout",
            ] {
                assert!(
                    retried.contains(&transient),
                    "{name} does not retry {transient}"
                );
            }
            if action == "Fail" {
                let caught_to = state["Catch"][0]["Next"].as_str().unwrap();
                let file = name.split(':').next().unwrap();
                let last_resort = states
                    .iter()
                    .find(|(n, _)| n == &format!("{file}: {caught_to}"))
                    .map(|(_, s)| &s["Parameters"]["Payload"]["Action"]);
                assert_eq!(
                    last_resort,
                    Some(&json!("Release")),
                    "{name}: a failure that cannot be recorded must still release the lock"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_failure_that_cannot_be_recorded_still_releases_the_lock() {
        // Another writer closed the account under the workflow: ERROR is refused.
        let (r, account, task) = recorder(AccountStatus::Closed);
        let error = json!({"Error": "AssuranceFailed", "Cause": "guardduty: AccessDenied"});
        let fail = json!({"Action": "Fail", "AccountId": account, "TaskId": task, "Error": error});
        assert!(handle(&r, input(fail)).await.is_err());
        let release = json!({"Action": "Release", "AccountId": account, "TaskId": task, "Error": error,
                             "RecordError": {"Error": "TransitionRefused", "Cause": "FailWorkflow from CLOSED"}});
        let released = handle(&r, input(release.clone())).await.unwrap();
        assert_eq!(
            (released.status, released.task_status),
            (AccountStatus::Closed, TaskStatus::Failed)
        );
        let stored = r.store.get_account(account).await.unwrap().unwrap().value;
        assert_eq!(stored.user_task_id, None, "the lock is released");
        let logs = r.store.get_task(task).await.unwrap().unwrap().value.logs;
        assert!(
            logs.last().unwrap().contains("guardduty: AccessDenied")
                && logs.last().unwrap().contains("FailWorkflow from CLOSED"),
            "{logs:?}"
        );
        let before = r.store.snapshot();
        handle(&r, input(release)).await.unwrap();
        assert_eq!(
            r.store.snapshot(),
            before,
            "a retried release writes nothing"
        );
    }

    #[tokio::test]
    async fn an_update_records_what_aws_took_and_ends_with_the_status_kept() {
        let (r, account, task) = recorder(AccountStatus::Active);
        let type_id = Uuid::new_v4();
        let step = json!({"Action": "RecordUpdate", "AccountId": account, "TaskId": task,
                          "AccountType": type_id, "OrgsOuId": "ou-2", "AwsAccountAlias": "bakery-two",
                          "Tags": {"Team": "bread"}, "Log": "Moved to OU ou-2"});
        handle(&r, input(step)).await.unwrap();
        let finish =
            json!({"Action": "Finish", "AccountId": account, "TaskId": task, "Log": "Updated"});
        let done = handle(&r, input(finish.clone())).await.unwrap();
        assert_eq!(
            (done.status, done.task_status),
            (AccountStatus::Active, TaskStatus::Succeeded)
        );
        let stored = r.store.get_account(account).await.unwrap().unwrap().value;
        assert_eq!(stored.account_type, Some(type_id));
        assert_eq!(stored.orgs_ou_id.as_deref(), Some("ou-2"));
        assert_eq!(stored.aws_account_alias.as_deref(), Some("bakery-two"));
        assert_eq!(stored.tags.unwrap()["Team"], "bread");
        assert_eq!(stored.user_task_id, None);
        let before = r.store.snapshot();
        handle(&r, input(finish)).await.unwrap();
        assert_eq!(
            r.store.snapshot(),
            before,
            "a retried finish writes nothing"
        );
    }

    #[tokio::test]
    async fn a_closure_ends_closed_with_the_lock_released_once() {
        let (r, account, task) = recorder(AccountStatus::Active);
        let step = json!({"Action": "RecordClosure", "AccountId": account, "TaskId": task,
                          "AwsStatus": "PENDING_CLOSURE"});
        let done = handle(&r, input(step.clone())).await.unwrap();
        assert_eq!(
            (done.status, done.task_status),
            (AccountStatus::Closed, TaskStatus::Succeeded)
        );
        let stored = r.store.get_account(account).await.unwrap().unwrap().value;
        assert_eq!(stored.user_task_id, None);
        assert!(
            stored.status_reason.unwrap().contains("PENDING_CLOSURE"),
            "the reason says what AWS reported"
        );
        let before = r.store.snapshot();
        handle(&r, input(step)).await.unwrap();
        assert_eq!(
            r.store.snapshot(),
            before,
            "a retried record writes nothing"
        );
    }

    #[tokio::test]
    async fn a_suspension_and_a_reactivation_move_the_status_and_release_the_lock() {
        let (r, account, task) = recorder(AccountStatus::Active);
        let step = json!({"Action": "RecordSuspension", "AccountId": account, "TaskId": task,
                          "Change": "Suspend", "Log": "Attached the accounts-suspended SCP"});
        let done = handle(&r, input(step)).await.unwrap();
        assert_eq!(
            (done.status, done.task_status),
            (AccountStatus::Suspended, TaskStatus::Succeeded)
        );
        let (r, account, task) = recorder(AccountStatus::Suspended);
        let step = json!({"Action": "RecordSuspension", "AccountId": account, "TaskId": task,
                          "Change": "Reactivate", "Log": "Detached the accounts-suspended SCP"});
        let done = handle(&r, input(step)).await.unwrap();
        assert_eq!(done.status, AccountStatus::Active);
        let stored = r.store.get_account(account).await.unwrap().unwrap().value;
        assert_eq!(stored.user_task_id, None);
    }

    #[tokio::test]
    async fn an_aborted_update_fails_its_task_with_the_reason_and_keeps_the_status() {
        let (r, account, task) = recorder(AccountStatus::Active);
        let abort = json!({"Action": "Abort", "AccountId": account, "TaskId": task,
            "Error": {"Error": "AssuranceCallFailed", "Cause": "EntityAlreadyExists: the alias bakery is taken"}});
        let ended = handle(&r, input(abort.clone())).await.unwrap();
        assert_eq!(
            (ended.status, ended.task_status),
            (AccountStatus::Active, TaskStatus::Failed)
        );
        let logs = r.store.get_task(task).await.unwrap().unwrap().value.logs;
        assert!(
            logs.last().unwrap().contains("the alias bakery is taken"),
            "{logs:?}"
        );
        let stored = r.store.get_account(account).await.unwrap().unwrap().value;
        assert_eq!(stored.user_task_id, None, "the lock is released");
        let before = r.store.snapshot();
        handle(&r, input(abort)).await.unwrap();
        assert_eq!(r.store.snapshot(), before, "a retried abort writes nothing");
    }

    #[tokio::test]
    async fn a_completion_retried_after_it_took_effect_changes_nothing() {
        let (r, account, task) = recorder(AccountStatus::Initializing);
        let step = json!({"Action": "Complete", "AccountId": account, "TaskId": task, "Log": "Account is ACTIVE"});
        let first = handle(&r, input(step.clone())).await.unwrap();
        assert_eq!(
            (first.status, first.task_status),
            (AccountStatus::Active, TaskStatus::Succeeded)
        );
        let before = r.store.snapshot();
        let again = handle(&r, input(step)).await.unwrap();
        assert_eq!(again, first);
        assert_eq!(r.store.snapshot(), before, "no second write");
    }

    #[tokio::test]
    async fn maintenance_takes_the_lock_once_and_a_busy_account_is_refused() {
        let store = MemoryStore::new();
        let active =
            domain::fixtures::account_in(AccountStatus::Active, "security", Some("111111111111"));
        store.insert(active.clone());
        let r = Recorder {
            store,
            executions: RecordedStarts::default(),
        };
        let step = json!({"Action": "StartMaintenance", "AccountId": active.id});
        let first = handle(&r, input(step.clone())).await.unwrap();
        assert_eq!(first.status, AccountStatus::Maintenance);
        let before = r.store.snapshot();
        let again = handle(&r, input(step)).await.unwrap();
        assert_eq!(
            again.task_id, first.task_id,
            "a retried step finds its own task"
        );
        assert_eq!(r.store.snapshot(), before);

        let (r, account, _) = recorder(AccountStatus::Active);
        let e = handle(
            &r,
            input(json!({"Action": "StartMaintenance", "AccountId": account})),
        )
        .await
        .unwrap_err();
        assert_eq!(
            domain::Named::name(&e),
            domain::ErrorName::OperationInProgress
        );
    }

    #[tokio::test]
    async fn the_maintenance_of_a_bootstrap_stopped_midway_is_taken_over_by_the_next_one() {
        let store = MemoryStore::new();
        let mut security = domain::fixtures::account_in(
            AccountStatus::Maintenance,
            "security",
            Some("111111111111"),
        );
        let stopped = "arn:aws:states:us-east-1:123456789012:execution:foundation:stopped";
        let old = maintenance_task(security.id, stopped);
        security.user_task_id = Some(old.id);
        store.insert(security.clone());
        store.insert_task(old.clone());
        let executions = RecordedStarts::default();
        executions
            .ended
            .lock()
            .unwrap()
            .insert(stopped.to_owned(), "ABORTED".to_owned());
        let r = Recorder { store, executions };
        let next = handle(
            &r,
            input(json!({"Action": "StartMaintenance", "AccountId": security.id})),
        )
        .await
        .unwrap();
        assert_eq!(next.status, AccountStatus::Maintenance);
        assert_eq!(next.task_id, maintenance_task(security.id, EXECUTION).id);
        let old = r.store.get_task(old.id).await.unwrap().unwrap().value;
        assert_eq!(old.status, TaskStatus::Failed);
        assert!(
            old.logs.last().unwrap().contains("ended ABORTED"),
            "{:?}",
            old.logs
        );
    }
}
