//! Tasks.

use aws_sdk_dynamodb::types::AttributeValue;
use domain::{Task, TaskStatus};
use serde::{Deserialize, Serialize};
use serde_dynamo::aws_sdk_dynamodb_1::{from_item, to_item};
use uuid::Uuid;

use super::*;
use crate::{STALE_ATTEMPTS, Tasks, Versioned};

#[derive(Serialize, Deserialize)]
struct TaskItem {
    pk: String,
    sk: String,
    #[serde(rename = "Version")]
    version: u64,
    #[serde(rename = "Task")]
    task: Task,
}

pub(super) fn task_item(task: &Task, version: u64) -> Result<Item, StoreError> {
    to_item(TaskItem {
        pk: task_pk(task.id),
        sk: TASK_SK.into(),
        version,
        task: task.clone(),
    })
    .map_err(corrupt)
}

impl Tasks for DynamoStore {
    async fn create_task(&self, task: &Task) -> Result<(), StoreError> {
        let items = vec![put(&self.table, task_item(task, 1)?, NOT_EXISTS).build()?];
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(Refused::Conditions(_)) => Err(StoreError::TaskExists(task.id)),
            Err(Refused::Other(e)) => Err(e),
        }
    }

    async fn get_task(&self, id: Uuid) -> Result<Option<Versioned<Task>>, StoreError> {
        let Some(item) = self.get(task_pk(id), TASK_SK).await? else {
            return Ok(None);
        };
        let it: TaskItem = from_item(item).map_err(corrupt)?;
        Ok(Some(Versioned {
            value: it.task,
            version: it.version,
        }))
    }

    /// Moves a task to `status` and appends `log` to its Logs ([`Task::advance`]'s rules: a
    /// finished task stays finished; finishing it the same way again is a no-op).
    async fn update_task(
        &self,
        id: Uuid,
        status: TaskStatus,
        log: Option<&str>,
    ) -> Result<Versioned<Task>, StoreError> {
        for attempt in 1..=STALE_ATTEMPTS {
            let current = self
                .get_task(id)
                .await?
                .ok_or(StoreError::TaskNotFound(id))?;
            let Some(next) = current
                .value
                .advance(status, log, domain::timestamp::now())?
            else {
                return Ok(current);
            };
            let version = current.version + 1;
            let items = vec![
                put(&self.table, task_item(&next, version)?, "#v = :expected")
                    .name("#v", "Version")
                    .value(":expected", AttributeValue::N(current.version.to_string()))
                    .build()?,
            ];
            match self.transact(items).await {
                Ok(()) => {
                    return Ok(Versioned {
                        value: next,
                        version,
                    });
                }
                Err(Refused::Conditions(_)) if attempt < STALE_ATTEMPTS => {
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(Refused::Conditions(_)) => return Err(StoreError::StaleTask(id)),
                Err(Refused::Other(e)) => return Err(e),
            }
        }
        unreachable!("the last attempt returns")
    }
}
