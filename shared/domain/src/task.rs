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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
