//! The accounts table: what the service remembers, behind narrow traits — one per entity
//! ([`AccountReads`], [`AccountWrites`], [`Tasks`], [`Slots`], [`AccountTypes`],
//! [`Compliance`]) — so that each function names only what it uses.
//!
//! [`DynamoStore`] keeps everything in one DynamoDB table (its layout: [`dynamo`]);
//! [`MemoryStore`] (feature `test-util`) keeps it in memory with the same rules, for unit tests.
//! Both refuse the same things the same way: every account change is conditional on the
//! version (and status) the writer read and lands with its audit event; names and AWS account
//! ids are unique; a finished task stays finished.

pub mod dynamo;
mod error;
mod ports;
pub mod runs;

#[cfg(any(test, feature = "test-util"))]
pub mod contract;
#[cfg(any(test, feature = "test-util"))]
pub mod memory;

pub use dynamo::DynamoStore;
pub use error::StoreError;
#[cfg(any(test, feature = "test-util"))]
pub use memory::MemoryStore;
pub use ports::{
    AccountReads, AccountTypes, AccountWrites, Compliance, FoundationCompleted, FoundationStatus,
    Policies, Slots, Tasks,
};
pub use runs::{RunError, SingletonRun};

/// Every port, for code that uses a whole store (tests, tools): `use store::prelude::*;`.
pub mod prelude {
    pub use crate::{
        AccountReads, AccountTypes, AccountWrites, Compliance, FoundationStatus, Policies, Slots,
        Tasks,
    };
}

use domain::{Task, TaskStatus};
use uuid::Uuid;

/// A stored value and the version it was read at (every write increments it).
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub value: T,
    pub version: u64,
}

/// A task's next status and the line it logs, written with an account change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskUpdate<'a> {
    pub id: Uuid,
    pub status: TaskStatus,
    pub log: Option<&'a str>,
}

/// What happens to a task in the same transaction as an account change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TaskWrite<'a> {
    /// A new task (refused if its id exists).
    Create(&'a Task),
    Update(TaskUpdate<'a>),
}

impl<'a> From<TaskUpdate<'a>> for TaskWrite<'a> {
    fn from(u: TaskUpdate<'a>) -> Self {
        TaskWrite::Update(u)
    }
}

/// How long score history is kept (the table's TTL attribute `ExpiresAt` removes older entries).
pub const COMPLIANCE_HISTORY_DAYS: i64 = 400;
/// How often a read-modify-write is repeated when another writer got in between.
pub(crate) const STALE_ATTEMPTS: u32 = 10;

/// Exponential backoff with full jitter: a random wait in [0, 25 ms × 2^attempt), capped at 1 s.
pub(crate) fn backoff(attempt: u32) -> std::time::Duration {
    let cap_ms = (25u64 << attempt.min(6)).min(1000);
    // A v4 UUID is 122 random bits; it spares a dependency on a random-number crate.
    let random = Uuid::new_v4().as_u128() as u64;
    std::time::Duration::from_millis(random % cap_ms.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_under_its_cap() {
        for attempt in 1..20 {
            assert!(backoff(attempt) < std::time::Duration::from_millis(1000));
        }
    }
}
