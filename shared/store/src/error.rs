use domain::{ErrorName, LifecycleError, Named, TaskFinished};
use uuid::Uuid;

/// Why the store did not do what it was asked. Nothing is written when one of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("an account named {0:?} already exists")]
    NameTaken(String),
    #[error("AWS account {0} is already recorded")]
    AwsAccountIdTaken(String),
    #[error("account {0} is already recorded")]
    AccountExists(Uuid),
    #[error("account {0} is not recorded")]
    AccountNotFound(Uuid),
    #[error("task {0} is not recorded")]
    TaskNotFound(Uuid),
    #[error("task {0} is already recorded")]
    TaskExists(Uuid),
    #[error(transparent)]
    TaskFinished(#[from] TaskFinished),
    #[error("task {0} changed while it was being updated")]
    StaleTask(Uuid),
    #[error("an account type named {0:?} already exists")]
    AccountTypeNameTaken(String),
    #[error("Account Type {0} changed while it was being changed: read it again")]
    StaleAccountType(Uuid),
    #[error("policy {0} changed while it was being changed: read it again")]
    StalePolicy(Uuid),
    #[error("account {account} changed since version {expected} was read")]
    Stale { account: Uuid, expected: u64 },
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    #[error("the account store is unavailable: {0}")]
    Unavailable(String),
    #[error("a stored item could not be read: {0}")]
    Corrupt(String),
}

impl Named for StoreError {
    fn name(&self) -> ErrorName {
        use ErrorName as N;
        match self {
            StoreError::NameTaken(_) => N::NameTaken,
            StoreError::AwsAccountIdTaken(_) => N::AwsAccountIdTaken,
            StoreError::AccountExists(_) => N::AccountExists,
            StoreError::AccountNotFound(_) => N::AccountNotFound,
            StoreError::TaskNotFound(_) => N::TaskNotFound,
            StoreError::TaskExists(_) => N::TaskExists,
            StoreError::TaskFinished(_) => N::TaskFinished,
            StoreError::StaleTask(_)
            | StoreError::Stale { .. }
            | StoreError::StaleAccountType(_)
            | StoreError::StalePolicy(_) => N::StaleRecord,
            StoreError::AccountTypeNameTaken(_) => N::AccountTypeNameTaken,
            StoreError::Lifecycle(e) => e.name(),
            StoreError::Unavailable(_) => N::StoreUnavailable,
            StoreError::Corrupt(_) => N::StoreCorrupt,
        }
    }
}
