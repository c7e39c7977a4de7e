//! Starting the service's state machines.

use serde_json::Value;

/// One state machine, started by name: the name is the task's id, so a retried request or
/// step starts one execution, never two.
#[derive(Debug, Clone)]
pub struct StateMachine {
    pub client: aws_sdk_sfn::Client,
    pub arn: String,
}

impl StateMachine {
    pub fn new(sdk: &aws_config::SdkConfig, arn: String) -> Self {
        StateMachine {
            client: aws_sdk_sfn::Client::new(sdk),
            arn,
        }
    }

    /// Starts the execution `name`; an execution of that name already started counts as started.
    pub async fn start(&self, name: &str, input: &Value) -> Result<(), String> {
        match self
            .client
            .start_execution()
            .state_machine_arn(&self.arn)
            .name(name)
            .input(input.to_string())
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_execution_already_exists()) =>
            {
                Ok(())
            }
            Err(e) => Err(crate::aws::error_message(&e)),
        }
    }
}

/// What a handler that starts a workflow needs: starting an execution by name (the state
/// machine in Lambda, a recording fake in tests).
pub trait StartWorkflow: Send + Sync {
    /// Starts execution `name`; starting the same name twice starts one execution.
    fn start_workflow(
        &self,
        name: &str,
        input: &Value,
    ) -> impl std::future::Future<Output = Result<(), String>> + Send;
}

impl StartWorkflow for StateMachine {
    async fn start_workflow(&self, name: &str, input: &Value) -> Result<(), String> {
        self.start(name, input).await
    }
}

/// An organization-wide run that goes one at a time: its task, the slot that makes it a
/// singleton (with a lease that outlives any Lambda invocation, so only an abandoned run lets it
/// lapse), and its execution, named after the task.
#[derive(Debug, Clone, Copy)]
pub struct SingletonRun<'a> {
    pub store: &'a crate::store::Store,
    pub workflows: &'a StateMachine,
    pub slot: &'a str,
    pub lease: std::time::Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the workflow could not be started: {0}")]
    NotStarted(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl SingletonRun<'_> {
    /// Starts a run with `operation`'s task unless one is running (`None`).
    pub async fn start(
        &self,
        operation: crate::domain::Operation,
        actor: &str,
    ) -> Result<Option<crate::domain::Task>, RunError> {
        let mut task = crate::domain::Task::new(operation, Vec::new(), chrono::Utc::now());
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
        if let Err(reason) = self.workflows.start(&task.id.to_string(), &input).await {
            self.abandon(task.id, &reason).await?;
            return Err(RunError::NotStarted(reason));
        }
        Ok(Some(task))
    }

    /// The run ended well: its task SUCCEEDED with `log`, and the next run may start.
    pub async fn finish(&self, task: uuid::Uuid, log: &str) -> Result<(), RunError> {
        use crate::domain::TaskStatus;
        match self
            .store
            .update_task(task, TaskStatus::Succeeded, Some(log))
            .await
        {
            // A retried step finds its task already finished.
            Ok(_) | Err(crate::store::StoreError::TaskFinished(_)) => {}
            Err(e) => return Err(e.into()),
        }
        self.store.release_slot(self.slot, task).await?;
        Ok(())
    }

    /// A run that failed: its task says why, and the next run may start.
    pub async fn abandon(&self, task: uuid::Uuid, cause: &str) -> Result<(), RunError> {
        use crate::domain::TaskStatus;
        use crate::store::StoreError;
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
