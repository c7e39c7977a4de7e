//! The Accounts domain: what the service knows and decides, with no I/O. Accounts, Account
//! Types and tasks are serialised exactly as the Stax public API shows them; every status
//! change goes through the lifecycle table; errors go out under the names of one vocabulary.

pub mod string_enum;

pub mod account;
pub mod account_type;
pub mod assurance;
pub mod audit;
pub mod compliance;
pub mod config;
pub mod error;
pub mod filter;
pub mod lifecycle;
pub mod monitoring;
pub mod policies;
pub mod policy;
pub mod regions;
pub mod scp;
pub mod task;
pub mod timestamp;
pub mod workflow;

#[cfg(any(test, feature = "test-util"))]
pub mod fixtures;

pub use account::{
    Account, AccountRole, AccountStatus, AssuranceState, EmailTemplate, Origin, StaxAccountStatus,
    Tags, is_aws_account_id, name_key, organisation_id, validate_account_name, validate_alias,
    validate_tags,
};
pub use account_type::{
    AccountType, AccountTypeRef, AccountTypeStatus, BuiltInAccountType, validate_account_type_name,
    validate_new_account_type_name,
};
pub use audit::AuditEvent;
pub use error::{ErrorName, Named};
pub use filter::AccountFilter;
pub use lifecycle::{
    AccountChange, AccountFacts, LifecycleError, LockChange, NewAccount, Transition, Trigger,
};
pub use task::{ExecutionState, Operation, Task, TaskFinished, TaskStatus, abandoned};
pub use workflow::{ExecutionStates, StartWorkflow};
