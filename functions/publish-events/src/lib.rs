//! Every account status change as an EventBridge event on the service's bus, so other systems
//! can react: `source` `accounts`, `detail-type` `Account Status Changed`, the detail the
//! change's audit event (`AccountId`, `AwsAccountId`, `From`, `To`, `Reason`, `TaskId`,
//! `Version`, `At`, `Actor`, `Trigger`).
//!
//! The source is the table itself: each version of an account is written with its audit event
//! in one transaction, and the table's stream hands this function every new audit item. So a
//! change is published if and only if it was recorded — never one that was rolled back, never
//! lost to a crash between the write and the publication. Delivery is at least once, in order
//! per account: a batch whose publication fails is reported back from its first unpublished
//! record (`ReportBatchItemFailures`) and delivered again; consumers tell a repeat by
//! `(AccountId, Version)`.

use std::future::Future;

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use domain::config::{self, ConfigError};
use domain::{AuditEvent, ErrorName, Named};
use serde_json::{Value, json};

pub const SOURCE: &str = "accounts";
pub const STATUS_CHANGED: &str = "Account Status Changed";
/// PutEvents takes at most ten entries a call.
pub const ENTRIES_PER_CALL: usize = 10;

#[derive(Debug, thiserror::Error)]
#[error("EventBridge PutEvents failed: {0}")]
pub struct PublishError(pub String);

impl Named for PublishError {
    fn name(&self) -> ErrorName {
        ErrorName::EventsNotPublished
    }
}

/// The status changes in a batch of stream records, each with its record's sequence number
/// (pure): new audit items whose version changed the status.
pub fn status_changes(event: &Event) -> Vec<(String, Value)> {
    event
        .records
        .iter()
        .filter(|r| r.event_name == "INSERT")
        .filter_map(|r| {
            let audit = store::dynamo::audit_event_of_item(r.change.new_image.clone())?;
            let sequence = r.change.sequence_number.clone()?;
            detail(&audit).map(|d| (sequence, d))
        })
        .collect()
}

/// The event detail of a status change; `None` for a version that kept the status.
pub fn detail(e: &AuditEvent) -> Option<Value> {
    let to = e.to?;
    Some(json!({
        "AccountId": e.account_id,
        "AwsAccountId": e.aws_account_id,
        "From": e.from,
        "To": to,
        "Reason": e.reason,
        "TaskId": e.task,
        "Version": e.version,
        "At": domain::timestamp::format(&e.at),
        "Actor": e.actor,
        "Trigger": e.trigger,
    }))
}

/// The service's event bus.
pub trait Bus: Send + Sync {
    /// Puts the details as `Account Status Changed` events (at most ten); answers, per entry,
    /// whether it was put.
    fn put(
        &self,
        details: &[Value],
    ) -> impl Future<Output = Result<Vec<bool>, PublishError>> + Send;
}

pub struct Publisher<B> {
    pub bus: B,
}

pub struct EventBus {
    pub client: aws_sdk_eventbridge::Client,
    pub name: String,
}

impl Publisher<EventBus> {
    /// `EVENT_BUS_NAME`.
    pub fn from_env(sdk: &aws::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Publisher {
            bus: EventBus {
                client: aws_sdk_eventbridge::Client::new(sdk),
                name: config::required("EVENT_BUS_NAME")?,
            },
        })
    }
}

pub async fn handle<B: Bus>(
    p: &Publisher<B>,
    event: Event,
) -> Result<DynamoDbEventResponse, PublishError> {
    let changes = status_changes(&event);
    let mut response = DynamoDbEventResponse::default();
    for chunk in changes.chunks(ENTRIES_PER_CALL) {
        let details: Vec<Value> = chunk.iter().map(|(_, d)| d.clone()).collect();
        let put = match p.bus.put(&details).await {
            Ok(put) => put,
            Err(e) => {
                tracing::error!(error = %e, "publication failed; the batch is delivered again");
                vec![false; chunk.len()]
            }
        };
        // Everything from the first entry not put on is delivered again, in order.
        if let Some(i) = put.iter().position(|ok| !ok) {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(chunk[i].0.clone());
            response.batch_item_failures.push(failure);
            break;
        }
    }
    tracing::info!(published = changes.len(), "status changes published");
    Ok(response)
}

impl Bus for EventBus {
    async fn put(&self, details: &[Value]) -> Result<Vec<bool>, PublishError> {
        let entries = details
            .iter()
            .map(|d| {
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .event_bus_name(&self.name)
                    .source(SOURCE)
                    .detail_type(STATUS_CHANGED)
                    .detail(d.to_string())
                    .build()
            })
            .collect();
        let out = self
            .client
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| PublishError(aws::error_message(&e)))?;
        Ok(out
            .entries()
            .iter()
            .map(|e| e.error_code().is_none())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A stream batch: one audit item per (version, from, to), the account item's update beside
    /// each (which is not an event).
    fn batch(versions: &[(u64, Option<&str>, Option<&str>)]) -> Event {
        let account = "5d3b6a3e-1f0e-4a7e-9c62-2f3b6f7a9e10";
        let mut records = Vec::new();
        for (version, from, to) in versions {
            let mut event = json!({"AccountId": {"S": account}, "Version": {"N": version.to_string()},
                "At": {"S": "2026-12-02T07:00:00.000Z"}, "Actor": {"S": "arn:aws:iam::123456789012:role/Admin"},
                "AwsAccountId": {"S": "444455556666"}});
            if let Some(from) = from {
                event["From"] = json!({"S": from});
            }
            if let Some(to) = to {
                event["To"] = json!({"S": to});
            }
            records.push(json!({"eventID": format!("a{version}"), "eventName": "INSERT", "awsRegion": "us-east-1",
                "dynamodb": {"SequenceNumber": format!("{version}1"), "SizeBytes": 1,
                    "NewImage": {"pk": {"S": format!("ACCOUNT#{account}")}, "sk": {"S": format!("AUDIT#{version:020}")},
                                 "Event": {"M": event}}}}));
            records.push(json!({"eventID": format!("b{version}"), "eventName": "MODIFY", "awsRegion": "us-east-1",
                "dynamodb": {"SequenceNumber": format!("{version}2"), "SizeBytes": 1,
                    "NewImage": {"pk": {"S": format!("ACCOUNT#{account}")}, "sk": {"S": "#ACCOUNT"}}}}));
        }
        serde_json::from_value(json!({"Records": records})).unwrap()
    }

    #[derive(Default)]
    struct Recorded {
        put: Mutex<Vec<Value>>,
        /// Entries refused, by position in the call.
        refuse: Mutex<Option<usize>>,
    }

    impl Bus for Recorded {
        async fn put(&self, details: &[Value]) -> Result<Vec<bool>, PublishError> {
            let refuse = *self.refuse.lock().unwrap();
            let mut put = self.put.lock().unwrap();
            Ok(details
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    let ok = refuse != Some(i);
                    if ok {
                        put.push(d.clone());
                    }
                    ok
                })
                .collect())
        }
    }

    #[tokio::test]
    async fn only_status_changes_are_published_with_their_account_and_task() {
        let p = Publisher {
            bus: Recorded::default(),
        };
        let event = batch(&[
            (1, None, Some("INITIALIZING")),
            (2, Some("INITIALIZING"), None),
            (3, Some("INITIALIZING"), Some("ACTIVE")),
        ]);
        let response = handle(&p, event).await.unwrap();
        assert!(response.batch_item_failures.is_empty());
        let put = p.bus.put.lock().unwrap();
        let seen: Vec<(Value, Value)> = put
            .iter()
            .map(|d| (d["From"].clone(), d["To"].clone()))
            .collect();
        assert_eq!(
            seen,
            [
                (Value::Null, json!("INITIALIZING")),
                (json!("INITIALIZING"), json!("ACTIVE"))
            ]
        );
        assert_eq!(put[1]["AwsAccountId"], "444455556666");
        assert_eq!(put[1]["Version"], 3);
    }

    #[tokio::test]
    async fn an_entry_not_put_is_delivered_again_from_its_record_on() {
        let p = Publisher {
            bus: Recorded::default(),
        };
        *p.bus.refuse.lock().unwrap() = Some(1);
        let event = batch(&[
            (1, None, Some("DISCOVERED")),
            (2, Some("DISCOVERED"), Some("ONBOARDING")),
        ]);
        let response = handle(&p, event).await.unwrap();
        let failed: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone().unwrap())
            .collect();
        assert_eq!(failed, ["21"], "the record of version 2");
    }
}
