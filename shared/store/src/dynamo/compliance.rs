//! Compliance summaries, latest results and history, and scoring runs' batches.

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use chrono::Utc;
use domain::compliance::{ComplianceSummary, RuleResult, RuleState};
use serde::{Deserialize, Serialize};
use serde_dynamo::aws_sdk_dynamodb_1::{from_item, to_item};
use uuid::Uuid;

use super::*;
use crate::{AccountReads, COMPLIANCE_HISTORY_DAYS, Compliance, STALE_ATTEMPTS};

const COMPLIANCE_LATEST_SK: &str = "COMPLIANCE#LATEST";
const COMPLIANCE_HISTORY_SK: &str = "COMPLIANCE#HISTORY#";

#[derive(Serialize, Deserialize)]
struct ComplianceItem {
    pk: String,
    sk: String,
    #[serde(rename = "Summary")]
    summary: ComplianceSummary,
    #[serde(rename = "Results")]
    results: Vec<RuleResult>,
}

#[derive(Serialize, Deserialize)]
struct BatchItem {
    pk: String,
    sk: String,
    #[serde(rename = "Accounts")]
    accounts: Vec<Uuid>,
    #[serde(rename = "ExpiresAt")]
    expires_at: i64,
}

#[derive(Serialize, Deserialize)]
struct ComplianceHistoryItem {
    pk: String,
    sk: String,
    #[serde(rename = "Summary")]
    summary: ComplianceSummary,
    #[serde(rename = "Failed")]
    failed: Vec<String>,
    #[serde(rename = "ExpiresAt")]
    expires_at: i64,
}

impl Compliance for DynamoStore {
    /// Records one scoring of an account: the summary on the account record (without a new
    /// version: a score is not a change of the record), the per-rule results as the latest, and a
    /// history entry, in one transaction. `Ok(false)` when a result at least as new is already
    /// there (a retried scoring), which writes nothing; `AccountNotFound` for an unknown account.
    async fn record_compliance(
        &self,
        account: Uuid,
        summary: &ComplianceSummary,
        results: &[RuleResult],
    ) -> Result<bool, StoreError> {
        let at = domain::timestamp::format(&summary.evaluated_ts);
        let summary_value =
            serde_dynamo::aws_sdk_dynamodb_1::to_attribute_value(summary).map_err(corrupt)?;
        let update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(account_pk(account), ACCOUNT_SK)))
            .update_expression("SET #a.#c = :summary")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(#a.#c) OR #a.#c.#t < :at)",
            )
            .expression_attribute_names("#a", "Account")
            .expression_attribute_names("#c", "Compliance")
            .expression_attribute_names("#t", "EvaluatedTS")
            .expression_attribute_values(":summary", summary_value)
            .expression_attribute_values(":at", AttributeValue::S(at.clone()))
            .build()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let latest = to_item(ComplianceItem {
            pk: account_pk(account),
            sk: COMPLIANCE_LATEST_SK.into(),
            summary: summary.clone(),
            results: results.to_vec(),
        })
        .map_err(corrupt)?;
        let history = to_item(ComplianceHistoryItem {
            pk: account_pk(account),
            sk: format!("{COMPLIANCE_HISTORY_SK}{at}"),
            summary: summary.clone(),
            failed: results
                .iter()
                .filter(|r| r.state == RuleState::Failed)
                .map(|r| r.rule_id.clone())
                .collect(),
            expires_at: (summary.evaluated_ts + chrono::Duration::days(COMPLIANCE_HISTORY_DAYS))
                .timestamp(),
        })
        .map_err(corrupt)?;
        let items = vec![
            TransactWriteItem::builder().update(update).build(),
            // The latest results replace the previous ones (the update above refuses older ones).
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(latest))
                        .build()
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                )
                .build(),
            put(&self.table, history, NOT_EXISTS).build()?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(Refused::Conditions(failed)) => {
                if failed.contains(&0) && self.get_account(account).await?.is_none() {
                    return Err(StoreError::AccountNotFound(account));
                }
                Ok(false)
            }
            Err(Refused::Other(e)) => Err(e),
        }
    }

    /// Splits a run's work into numbered batches of account ids, kept for a week, so that each
    /// step of a fan-out reads its own batch and the run's input stays small.
    async fn put_batches(&self, run: Uuid, batches: &[Vec<Uuid>]) -> Result<(), StoreError> {
        let expires_at = (Utc::now() + chrono::Duration::days(7)).timestamp();
        let mut requests = Vec::with_capacity(batches.len());
        for (index, accounts) in batches.iter().enumerate() {
            let item = to_item(BatchItem {
                pk: format!("RUN#{run}"),
                sk: format!("BATCH#{index:06}"),
                accounts: accounts.clone(),
                expires_at,
            })
            .map_err(corrupt)?;
            let put = aws_sdk_dynamodb::types::PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            requests.push(
                aws_sdk_dynamodb::types::WriteRequest::builder()
                    .put_request(put)
                    .build(),
            );
        }
        for chunk in requests.chunks(25) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                attempt += 1;
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(unavailable)?;
                pending = out
                    .unprocessed_items()
                    .and_then(|u| u.get(&self.table))
                    .cloned()
                    .unwrap_or_default();
                if !pending.is_empty() {
                    if attempt >= STALE_ATTEMPTS {
                        return Err(StoreError::Unavailable(
                            "DynamoDB left batch items unprocessed".into(),
                        ));
                    }
                    tokio::time::sleep(backoff(attempt)).await;
                }
            }
        }
        Ok(())
    }

    /// Batch `index` of run `run`, if there is one.
    async fn get_batch(&self, run: Uuid, index: usize) -> Result<Option<Vec<Uuid>>, StoreError> {
        let Some(item) = self
            .get(format!("RUN#{run}"), &format!("BATCH#{index:06}"))
            .await?
        else {
            return Ok(None);
        };
        let it: BatchItem = from_item(item).map_err(corrupt)?;
        Ok(Some(it.accounts))
    }

    /// The latest per-rule results of an account (None before its first scoring).
    async fn latest_compliance(
        &self,
        account: Uuid,
    ) -> Result<Option<(ComplianceSummary, Vec<RuleResult>)>, StoreError> {
        let Some(item) = self.get(account_pk(account), COMPLIANCE_LATEST_SK).await? else {
            return Ok(None);
        };
        let it: ComplianceItem = from_item(item).map_err(corrupt)?;
        Ok(Some((it.summary, it.results)))
    }

    /// An account's scores, newest first, at most `limit`, with the rules that failed each time.
    async fn compliance_history(
        &self,
        account: Uuid,
        limit: usize,
    ) -> Result<Vec<(ComplianceSummary, Vec<String>)>, StoreError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :history)")
            .expression_attribute_values(":pk", AttributeValue::S(account_pk(account)))
            .expression_attribute_values(
                ":history",
                AttributeValue::S(COMPLIANCE_HISTORY_SK.into()),
            )
            .scan_index_forward(false)
            .limit(limit.clamp(1, 1000) as i32)
            .into_paginator()
            .items()
            .send();
        let mut entries = Vec::new();
        while entries.len() < limit {
            let Some(item) = pages.next().await else {
                break;
            };
            let it: ComplianceHistoryItem =
                from_item(item.map_err(unavailable)?).map_err(corrupt)?;
            entries.push((it.summary, it.failed));
        }
        Ok(entries)
    }
}
