//! Integration tests: the real store, handlers and state machines on the local stack.
//! One test binary (one link of the SDK); each module is a feature.

mod api;
mod foundation;
mod store;

use chrono::Utc;
use shared::domain::{Account, AccountRole, AccountStatus, Origin, organisation_id};
use shared::lifecycle::{NewAccount, Transition, Trigger};
use uuid::Uuid;

/// A random, valid AWS account id (unique per test run with overwhelming probability).
pub fn aws_account_id() -> String {
    format!("{:012}", Uuid::new_v4().as_u128() % 1_000_000_000_000)
}

/// The facts of an external member account.
pub fn new_account(name: &str, aws_account_id: &str) -> NewAccount {
    NewAccount {
        organisation_id: organisation_id("o-test"),
        name: name.into(),
        aws_account_id: Some(aws_account_id.into()),
        aws_account_name: Some(name.into()),
        aws_account_alias: None,
        email: None,
        account_type: None,
        account_role: AccountRole::Member,
        origin: Origin::External,
        tags: None,
        orgs_ou_id: None,
        task: None,
    }
}

/// An external account as discovery would record it.
pub fn discovered(name: &str, aws_account_id: &str) -> Account {
    Account::create(
        Uuid::new_v4(),
        new_account(name, aws_account_id),
        &Transition::to(Trigger::RecordDiscovered, AccountStatus::Discovered),
        Utc::now(),
    )
    .expect("DISCOVERED is a first status")
}
