//! Organization-wide runs (discovery, scoring) that go one at a time.

use std::time::Duration;

use domain::{ErrorName, Named, Operation, StartWorkflow, Task, TaskStatus};
use uuid::Uuid;

use crate::{Slots, StoreError, Tasks};

/// An organization-wide run that goes one at a time: its task, the slot that makes it a
/// singleton (with a lease that outlives any Lambda invocation, so only an abandoned run lets it
/// lapse), and its execution, named after the task.
#[derive(Debug, Clone, Copy)]
pub struct SingletonRun<'a, S, W> {
    pub store: &'a S,
    pub workflows: &'a W,
    pub slot: &'a str,
    pub lease: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the workflow could not be started: {0}")]
    NotStarted(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Named for RunError {
    fn name(&self) -> ErrorName {
        match self {
            RunError::NotStarted(_) => ErrorName::WorkflowNotStarted,
            RunError::Store(e) => e.name(),
        }
    }
}

impl<S: Slots + Tasks, W: StartWorkflow> SingletonRun<'_, S, W> {
    /// Starts a run with `operation`'s task unless one is running (`None`).
    pub async fn start(&self, operation: Operation, actor: &str) -> Result<Option<Task>, RunError> {
        let mut task = Task::new(operation, Vec::new(), chrono::Utc::now());
        if !self
            .store
            .acquire_slot(self.slot, 1, task.id, self.lease)
            .await?
        {
            return Ok(None);
        }
        task.logs.push(format!("Requested by {actor}"));
        self.store.create_task(&task).await?;
        let input = serde_json::json!({"TaskId": task.id});
        if let Err(reason) = self
            .workflows
            .start_workflow(&task.id.to_string(), &input)
            .await
        {
            self.abandon(task.id, &reason).await?;
            return Err(RunError::NotStarted(reason));
        }
        Ok(Some(task))
    }

    /// The run ended well: its task SUCCEEDED with `log`, and the next run may start.
    pub async fn finish(&self, task: Uuid, log: &str) -> Result<(), RunError> {
        match self
            .store
            .update_task(task, TaskStatus::Succeeded, Some(log))
            .await
        {
            // A retried step finds its task already finished.
            Ok(_) | Err(StoreError::TaskFinished(_)) => {}
            Err(e) => return Err(e.into()),
        }
        self.store.release_slot(self.slot, task).await?;
        Ok(())
    }

    /// A run that failed: its task says why, and the next run may start.
    pub async fn abandon(&self, task: Uuid, cause: &str) -> Result<(), RunError> {
        match self
            .store
            .update_task(task, TaskStatus::Failed, Some(cause))
            .await
        {
            Ok(_) | Err(StoreError::TaskFinished(_)) | Err(StoreError::TaskNotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        self.store.release_slot(self.slot, task).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;
    use domain::fixtures::RecordedStarts;

    fn run<'a>(
        store: &'a MemoryStore,
        w: &'a RecordedStarts,
    ) -> SingletonRun<'a, MemoryStore, RecordedStarts> {
        SingletonRun {
            store,
            workflows: w,
            slot: "discovery",
            lease: Duration::from_secs(60),
        }
    }

    #[tokio::test]
    async fn one_run_at_a_time_and_the_next_after_it_ends() {
        let (store, w) = (MemoryStore::new(), RecordedStarts::default());
        let first = run(&store, &w)
            .start(Operation::DiscoverAccounts, "alice")
            .await
            .unwrap()
            .expect("the first run starts");
        assert!(
            run(&store, &w)
                .start(Operation::DiscoverAccounts, "bob")
                .await
                .unwrap()
                .is_none()
        );
        run(&store, &w).finish(first.id, "done").await.unwrap();
        run(&store, &w).finish(first.id, "done").await.unwrap();
        let task = store.get_task(first.id).await.unwrap().unwrap().value;
        assert_eq!(
            (task.status, task.logs.clone()),
            (
                TaskStatus::Succeeded,
                vec!["Requested by alice".to_owned(), "done".to_owned()]
            )
        );
        assert!(
            run(&store, &w)
                .start(Operation::DiscoverAccounts, "bob")
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(w.executions.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_run_that_cannot_start_fails_its_task_and_frees_the_slot() {
        let store = MemoryStore::new();
        let refusing = RecordedStarts {
            refusal: Some("ThrottlingException: Rate exceeded".into()),
            ..Default::default()
        };
        let e = run(&store, &refusing)
            .start(Operation::ScoreAccounts, "schedule")
            .await
            .unwrap_err();
        assert_eq!(e.name(), ErrorName::WorkflowNotStarted);
        assert_eq!(store.slots_in_use("discovery").await.unwrap(), 0);
        let ok = RecordedStarts::default();
        assert!(
            run(&store, &ok)
                .start(Operation::ScoreAccounts, "schedule")
                .await
                .unwrap()
                .is_some()
        );
    }
}
