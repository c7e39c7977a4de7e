//! Counted slots.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_dynamo::aws_sdk_dynamodb_1::{from_item, to_item};
use uuid::Uuid;

use super::*;
use crate::{STALE_ATTEMPTS, Slots};

/// Holders of a counted resource (e.g. CreateAccount requests in flight) and their lease ends.
#[derive(Serialize, Deserialize)]
struct SlotsItem {
    pk: String,
    sk: String,
    #[serde(rename = "Version")]
    version: u64,
    #[serde(rename = "Holders")]
    holders: BTreeMap<Uuid, i64>,
}

impl Slots for DynamoStore {
    /// Takes one of `capacity` slots named `name` for `holder` (a task), for at most `lease`.
    /// `Ok(false)` when all are taken: the caller waits and asks again. Idempotent per holder;
    /// leases of holders that never released (a workflow stopped by hand) lapse.
    async fn acquire_slot(
        &self,
        name: &str,
        capacity: usize,
        holder: Uuid,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        self.change_slots(name, |holders, now| {
            if holders.contains_key(&holder) {
                return None;
            }
            holders.retain(|_, expires| *expires > now);
            if holders.len() >= capacity {
                return Some(false);
            }
            holders.insert(holder, now + lease.as_secs() as i64);
            Some(true)
        })
        .await
        .map(|taken| taken.unwrap_or(true))
    }

    /// How many slots named `name` are held (leases that lapsed do not count).
    async fn slots_in_use(&self, name: &str) -> Result<usize, StoreError> {
        let Some(item) = self.get(format!("SLOTS#{name}"), SLOTS_SK).await? else {
            return Ok(0);
        };
        let now = Utc::now().timestamp();
        let slots: SlotsItem = from_item(item).map_err(corrupt)?;
        Ok(slots
            .holders
            .values()
            .filter(|expires| **expires > now)
            .count())
    }

    /// Gives the slot back. Idempotent.
    async fn release_slot(&self, name: &str, holder: Uuid) -> Result<(), StoreError> {
        self.change_slots(name, |holders, _| holders.remove(&holder).map(|_| true))
            .await
            .map(drop)
    }
}

impl DynamoStore {
    /// Read-modify-write of a slot item; `change` returns `None` when it changed nothing.
    async fn change_slots(
        &self,
        name: &str,
        change: impl Fn(&mut BTreeMap<Uuid, i64>, i64) -> Option<bool>,
    ) -> Result<Option<bool>, StoreError> {
        let pk = format!("SLOTS#{name}");
        for attempt in 1..=STALE_ATTEMPTS {
            let read: Option<SlotsItem> = match self.get(pk.clone(), SLOTS_SK).await? {
                Some(item) => Some(from_item(item).map_err(corrupt)?),
                None => None,
            };
            let version = read.as_ref().map_or(0, |r| r.version);
            let mut holders = read.map(|r| r.holders).unwrap_or_default();
            let before = holders.clone();
            let outcome = change(&mut holders, Utc::now().timestamp());
            if outcome.is_none() || holders == before {
                return Ok(outcome);
            }
            let item = to_item(SlotsItem {
                pk: pk.clone(),
                sk: SLOTS_SK.into(),
                version: version + 1,
                holders,
            })
            .map_err(corrupt)?;
            let write = if version == 0 {
                put(&self.table, item, NOT_EXISTS)
            } else {
                put(&self.table, item, "#v = :expected")
                    .name("#v", "Version")
                    .value(":expected", AttributeValue::N(version.to_string()))
            };
            match self.transact(vec![write.build()?]).await {
                Ok(()) => return Ok(outcome),
                Err(Refused::Conditions(_)) if attempt < STALE_ATTEMPTS => {
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(Refused::Conditions(_)) => {
                    return Err(StoreError::Unavailable(format!(
                        "slots {name}: too much contention"
                    )));
                }
                Err(Refused::Other(e)) => return Err(e),
            }
        }
        unreachable!("the last attempt returns")
    }
}
