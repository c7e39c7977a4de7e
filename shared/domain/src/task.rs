//! Tasks: the asynchronous operations the API answers with (Stax `tasks.ReadTask`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::string_enum;

string_enum! {
    /// Status of an asynchronous operation (a Task).
    pub enum TaskStatus {
        Started => "STARTED",
        Running => "RUNNING",
        Succeeded => "SUCCEEDED",
        Failed => "FAILED",
    }
}

impl TaskStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, TaskStatus::Succeeded | TaskStatus::Failed)
    }
}

string_enum! {
    /// The operation a task performs (values of the Stax `Operation` enum).
    pub enum Operation {
        CreateAccount => "accounts:CreateAccount",
        OnboardAccount => "accounts:OnboardAccount",
        DiscoverAccounts => "accounts:DiscoverAccounts",
        DiscoverAccount => "accounts:DiscoverAccount",
        UpdateAccount => "accounts:UpdateAccount",
        CloseAccount => "accounts:CloseAccount",
        UpdateAccountTypeMembers => "accounts:UpdateAccountTypeMembers",
        /// The 2023 document's `PUT /20190206/account-types/policies`.
        UpdateAccountTypePolicies => "accounts:UpdateAccountTypePolicies",
        CreatePolicy => "policies:CreatePolicy",
        UpdatePolicy => "policies:UpdatePolicy",
        DeletePolicy => "policies:DeletePolicy",
        AttachPolicy => "policies:AttachPolicy",
        DetachPolicy => "policies:DetachPolicy",
        /// Not in the Stax document: a comparison of the policies' SCPs with their records,
        /// repairing what differs.
        CheckPolicyDrift => "policies:CheckPolicyDrift",
        HardenAccount => "account_assurance:HardenAccount",
        /// Not in the Stax document: a compliance scoring run over every scorable account.
        ScoreAccounts => "compliance:ScoreAccounts",
        /// Not in the Stax document: one account scored on request.
        ScoreAccount => "compliance:ScoreAccount",
    }
}

/// An asynchronous operation (the Stax `tasks.ReadTask` schema plus its identity).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    #[serde(rename = "TaskId")]
    pub id: Uuid,
    #[serde(rename = "Operation")]
    pub operation: Operation,
    #[serde(rename = "Status")]
    pub status: TaskStatus,
    #[serde(rename = "Logs", default)]
    pub logs: Vec<String>,
    /// The accounts the task acts on, the primary one first.
    #[serde(rename = "Accounts", default)]
    pub accounts: Vec<Uuid>,
    #[serde(rename = "CreatedTS", with = "crate::timestamp")]
    pub created_ts: DateTime<Utc>,
    #[serde(rename = "ModifiedTS", with = "crate::timestamp")]
    pub modified_ts: DateTime<Utc>,
    /// The workflow execution that works for the task (its ARN), when one does: what tells a
    /// lock whose execution ended without releasing it from one still in use.
    #[serde(rename = "Execution", default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
}

/// How long a task's execution may take to appear after the task was recorded: the API records
/// the task, then starts its execution in the same request (a Lambda invocation of at most 30
/// seconds), and undoes the task if the start fails.
pub const EXECUTION_START_LIMIT: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// What Step Functions says of a task's execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionState {
    Running,
    /// It ended: `SUCCEEDED`, `FAILED`, `TIMED_OUT` or `ABORTED`.
    Ended(String),
    /// There is no such execution.
    Missing,
}

/// Why the lock that `task` holds is abandoned — its execution ended without releasing it, or
/// never began — or `None` while its execution may still release it. `state` is what Step
/// Functions says of `task.execution` (`None`: the task names no execution).
pub fn abandoned(
    task: &Task,
    state: Option<&ExecutionState>,
    now: DateTime<Utc>,
) -> Option<String> {
    if task.status.is_terminal() {
        return Some(format!(
            "task {} is {} but still held the lock",
            task.id,
            task.status.as_str()
        ));
    }
    let late = now - task.created_ts > EXECUTION_START_LIMIT;
    match (state, &task.execution) {
        (Some(ExecutionState::Running), _) => None,
        (Some(ExecutionState::Ended(status)), Some(execution)) => Some(format!(
            "execution {execution} ended {status} without recording the outcome of task {}",
            task.id
        )),
        (Some(ExecutionState::Missing), Some(execution)) if late => Some(format!(
            "execution {execution} of task {} never started",
            task.id
        )),
        (None, None) if late => Some(format!(
            "task {} names no execution and has not finished since {}",
            task.id,
            crate::timestamp::format(&task.created_ts)
        )),
        _ => None,
    }
}

/// A task status change that is not allowed (a finished task stays finished).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("task {task} is {status} and cannot become {requested}")]
pub struct TaskFinished {
    pub task: Uuid,
    pub status: TaskStatus,
    pub requested: TaskStatus,
}

impl Task {
    /// The task after moving to `status` and logging `log`; `Ok(None)` when a finished task is
    /// asked to finish the same way again (a retried step). STARTED may not come back.
    pub fn advance(
        &self,
        status: TaskStatus,
        log: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<Task>, TaskFinished> {
        let refused = || TaskFinished {
            task: self.id,
            status: self.status,
            requested: status,
        };
        if self.status.is_terminal() {
            return if self.status == status {
                Ok(None)
            } else {
                Err(refused())
            };
        }
        if status == TaskStatus::Started && self.status != TaskStatus::Started {
            return Err(refused());
        }
        let mut next = self.clone();
        next.status = status;
        next.logs.extend(log.map(str::to_owned));
        next.modified_ts = crate::timestamp::to_millis(now);
        Ok(Some(next))
    }

    pub fn new(operation: Operation, accounts: Vec<Uuid>, now: DateTime<Utc>) -> Self {
        let now = crate::timestamp::to_millis(now);
        Task {
            id: Uuid::new_v4(),
            operation,
            status: TaskStatus::Started,
            logs: Vec::new(),
            accounts,
            created_ts: now,
            modified_ts: now,
            execution: None,
        }
    }

    /// A new task whose execution is the one starting `workflows` with the task's id starts
    /// (recorded before the start: see [`Task::execution`]).
    pub fn for_workflow<W: crate::StartWorkflow>(
        operation: Operation,
        accounts: Vec<Uuid>,
        now: DateTime<Utc>,
        workflows: &W,
    ) -> Self {
        let task = Task::new(operation, accounts, now);
        let execution = workflows.execution_id(&task.id.to_string());
        task.run_by(execution)
    }

    /// The task, worked for by `execution`.
    pub fn run_by(mut self, execution: impl Into<String>) -> Self {
        self.execution = Some(execution.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_is_abandoned_only_when_its_execution_cannot_release_it() {
        let now = Utc::now();
        let fresh = Task::new(Operation::OnboardAccount, vec![], now).run_by("arn:execution:1");
        let old = Task {
            created_ts: now - chrono::TimeDelta::hours(1),
            ..fresh.clone()
        };
        let ended = ExecutionState::Ended("ABORTED".into());
        assert_eq!(abandoned(&fresh, Some(&ExecutionState::Running), now), None);
        assert_eq!(abandoned(&old, Some(&ExecutionState::Running), now), None);
        let reason = abandoned(&fresh, Some(&ended), now).unwrap();
        assert!(reason.contains("arn:execution:1 ended ABORTED"), "{reason}");
        // Not yet started: the API may still be starting it.
        assert_eq!(abandoned(&fresh, Some(&ExecutionState::Missing), now), None);
        assert!(
            abandoned(&old, Some(&ExecutionState::Missing), now)
                .unwrap()
                .contains("never started")
        );
        // A task of before executions were recorded: only by its age.
        let unnamed = Task {
            execution: None,
            ..old.clone()
        };
        assert!(abandoned(&unnamed, None, now).is_some());
        assert_eq!(
            abandoned(
                &Task {
                    created_ts: now,
                    ..unnamed
                },
                None,
                now
            ),
            None
        );
        let finished = Task {
            status: TaskStatus::Succeeded,
            ..fresh
        };
        assert!(abandoned(&finished, Some(&ExecutionState::Running), now).is_some());
    }

    #[test]
    fn tasks_move_forward_and_stay_finished() {
        let t = Task::new(Operation::CreateAccount, vec![], Utc::now());
        let running = t
            .advance(TaskStatus::Running, Some("creating"), Utc::now())
            .unwrap()
            .unwrap();
        let logged = running
            .advance(TaskStatus::Running, Some("waiting"), Utc::now())
            .unwrap()
            .unwrap();
        assert_eq!(logged.logs, ["creating", "waiting"]);
        assert!(
            logged
                .advance(TaskStatus::Started, None, Utc::now())
                .is_err()
        );
        let done = logged
            .advance(TaskStatus::Succeeded, Some("done"), Utc::now())
            .unwrap()
            .unwrap();
        assert_eq!(
            done.advance(TaskStatus::Succeeded, Some("done"), Utc::now()),
            Ok(None)
        );
        assert!(done.advance(TaskStatus::Failed, None, Utc::now()).is_err());
    }
}
