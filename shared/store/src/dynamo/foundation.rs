//! The foundation bootstrap's completion: one item.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_dynamo::aws_sdk_dynamodb_1::{from_item, to_item};

use super::*;
use crate::{FoundationCompleted, FoundationStatus};

const FOUNDATION_PK: &str = "FOUNDATION";
const COMPLETED_SK: &str = "COMPLETED";

#[derive(Serialize, Deserialize)]
struct CompletedItem {
    pk: String,
    sk: String,
    #[serde(rename = "Execution")]
    execution: String,
    #[serde(rename = "CompletedTS", with = "domain::timestamp")]
    completed_ts: DateTime<Utc>,
}

impl FoundationStatus for DynamoStore {
    async fn foundation_completed(&self) -> Result<Option<FoundationCompleted>, StoreError> {
        let Some(item) = self.get(FOUNDATION_PK.to_owned(), COMPLETED_SK).await? else {
            return Ok(None);
        };
        let item: CompletedItem = from_item(item).map_err(corrupt)?;
        Ok(Some(FoundationCompleted {
            execution: item.execution,
            completed_ts: item.completed_ts,
        }))
    }

    async fn record_foundation_completed(
        &self,
        completed: &FoundationCompleted,
    ) -> Result<(), StoreError> {
        let item = to_item(CompletedItem {
            pk: FOUNDATION_PK.to_owned(),
            sk: COMPLETED_SK.to_owned(),
            execution: completed.execution.clone(),
            completed_ts: completed.completed_ts,
        })
        .map_err(corrupt)?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
