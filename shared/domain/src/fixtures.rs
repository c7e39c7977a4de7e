//! Valid records for tests, here and in the other crates, without the noise of every field.

use chrono::Utc;
use uuid::Uuid;

use crate::account::{Account, AccountRole, AccountStatus, Origin, organisation_id};
use crate::lifecycle::{NewAccount, Transition, Trigger};

/// A [`StartWorkflow`](crate::workflow::StartWorkflow) that records the executions it is asked
/// to start, or refuses every start with `refusal`.
#[derive(Debug, Default)]
pub struct RecordedStarts {
    pub executions: std::sync::Mutex<Vec<(String, serde_json::Value)>>,
    pub refusal: Option<String>,
    /// Executions that ended, and how (every other recorded one is running).
    pub ended: std::sync::Mutex<std::collections::BTreeMap<String, String>>,
}

impl crate::workflow::StartWorkflow for RecordedStarts {
    async fn start_workflow(&self, name: &str, input: &serde_json::Value) -> Result<(), String> {
        if let Some(refusal) = &self.refusal {
            return Err(refusal.clone());
        }
        self.executions
            .lock()
            .unwrap()
            .push((name.to_owned(), input.clone()));
        Ok(())
    }

    fn execution_id(&self, name: &str) -> String {
        format!("arn:aws:states:us-east-1:123456789012:execution:test:{name}")
    }
}

impl crate::workflow::ExecutionStates for RecordedStarts {
    async fn execution_state(&self, execution: &str) -> Result<crate::ExecutionState, String> {
        if let Some(status) = self.ended.lock().unwrap().get(execution) {
            return Ok(crate::ExecutionState::Ended(status.clone()));
        }
        let started = self
            .executions
            .lock()
            .unwrap()
            .iter()
            .any(|(name, _)| crate::StartWorkflow::execution_id(self, name) == execution);
        Ok(if started {
            crate::ExecutionState::Running
        } else {
            crate::ExecutionState::Missing
        })
    }
}

/// The facts of an external member account called `name`.
pub fn new_account(name: &str, aws_account_id: Option<&str>) -> NewAccount {
    NewAccount {
        organisation_id: organisation_id("o-test"),
        name: name.into(),
        aws_account_id: aws_account_id.map(Into::into),
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

/// An external account as discovery records it.
pub fn discovered(name: &str, aws_account_id: Option<&str>) -> Account {
    Account::create(
        Uuid::new_v4(),
        new_account(name, aws_account_id),
        &Transition::to(Trigger::RecordDiscovered, AccountStatus::Discovered),
        Utc::now(),
    )
    .expect("DISCOVERED is a first status")
}

/// An account in `status`, set directly rather than through the lifecycle (test setup only).
pub fn account_in(status: AccountStatus, name: &str, aws_account_id: Option<&str>) -> Account {
    let mut account = discovered(name, aws_account_id);
    account.status = status;
    account.status_reason =
        (status == AccountStatus::Error).then(|| "an earlier failure".to_owned());
    account
}
