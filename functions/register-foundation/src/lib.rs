//! Foundation bootstrap, first step: record the organization's management account and the
//! configured Security and Logging accounts, each in its built-in account type
//! (`foundation-management`, `foundation-security`, `foundation-logging`), and make sure the
//! `default` type exists.
//!
//! Idempotent: an account already recorded in its foundation role is reported, not rewritten.
//! Two runs at once record each account once (the store's unique AWS account id decides).

use std::future::Future;

use aws::OrganizationsError;
use chrono::Utc;
use domain::config::{self, ConfigError};
use domain::{
    Account, AccountRole, AccountStatus, BuiltInAccountType, ErrorName, LifecycleError, Named,
    NewAccount, Origin, Transition, Trigger, is_aws_account_id, organisation_id,
};
use serde::{Deserialize, Serialize};
use store::{
    AccountTypes, AccountWrites, DynamoStore, FoundationCompleted, FoundationStatus, StoreError,
};
use uuid::Uuid;

/// The facts about the organization this step needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationInfo {
    pub id: String,
    pub management_account_id: String,
}

/// An organization member as AWS Organizations describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberAccount {
    pub id: String,
    pub name: String,
    pub email: String,
    /// AWS reports the account ACTIVE (not suspended, not closing).
    pub active: bool,
}

/// What the bootstrap asks of AWS Organizations.
pub trait Organizations: Send + Sync {
    fn organization(&self) -> impl Future<Output = Result<OrganizationInfo, RegisterError>> + Send;
    fn account(
        &self,
        aws_account_id: &str,
    ) -> impl Future<Output = Result<MemberAccount, RegisterError>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("AWS account {0} is not a member of the organization")]
    NotInOrganization(String),
    #[error("AWS account {0} is not ACTIVE in AWS Organizations")]
    NotActive(String),
    #[error("the {role} account {aws_account_id} cannot also be the {other} account")]
    SameAccountTwice {
        aws_account_id: String,
        role: AccountRole,
        other: AccountRole,
    },
    #[error(
        "AWS account {aws_account_id} is already recorded as account {id} with role {recorded}; \
         move it to the {expected} account type before the bootstrap can adopt it"
    )]
    RecordedWithAnotherRole {
        aws_account_id: String,
        id: Uuid,
        recorded: AccountRole,
        expected: AccountRole,
    },
    #[error(transparent)]
    Organizations(#[from] OrganizationsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
}

impl Named for RegisterError {
    fn name(&self) -> ErrorName {
        use ErrorName as N;
        match self {
            RegisterError::NotInOrganization(_) => N::FoundationAccountNotInOrganization,
            RegisterError::NotActive(_) => N::FoundationAccountNotActive,
            RegisterError::SameAccountTwice { .. } => N::FoundationAccountsNotDistinct,
            RegisterError::RecordedWithAnotherRole { .. } => N::RecordedWithAnotherRole,
            RegisterError::Organizations(e) => e.name(),
            RegisterError::Store(e) => e.name(),
            RegisterError::Lifecycle(e) => e.name(),
        }
    }
}

/// The step's input (the state machine passes its execution id, recorded as the actor).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Input {
    #[serde(rename = "Execution", default)]
    pub execution: Option<String>,
    /// `Complete`: the bootstrap's last step, recording that the run completed (creation and
    /// onboarding wait for one). Absent: register the foundation accounts.
    #[serde(rename = "Action", default)]
    pub action: Option<Action>,
    /// With `Complete`: how Account Assurance of each foundation account ended (the bootstrap's
    /// Map results, `{"Status"}` each). The completion is recorded only if every one SUCCEEDED.
    #[serde(rename = "Assurance", default)]
    pub assurance: Vec<AssuranceOutcome>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct AssuranceOutcome {
    #[serde(rename = "Status")]
    pub status: String,
}

domain::string_enum! {
    pub enum Action {
        Complete => "Complete",
    }
}

/// What a step answers: the registration, or the completion recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Answer {
    Registered(Output),
    Completed {
        #[serde(rename = "CompletedTS", with = "domain::timestamp")]
        completed_ts: chrono::DateTime<Utc>,
    },
    /// Not every foundation account was assured: creation and onboarding keep waiting.
    NotCompleted {
        #[serde(rename = "NotCompleted")]
        reason: String,
    },
}

/// Registers the foundation accounts, or records the bootstrap's completion.
pub async fn run<O: Organizations, R: AccountWrites + AccountTypes + FoundationStatus>(
    r: &Registrar<O, R>,
    input: Input,
) -> Result<Answer, RegisterError> {
    if input.action == Some(Action::Complete) {
        let unassured = input
            .assurance
            .iter()
            .filter(|a| a.status != "SUCCEEDED")
            .count();
        if unassured > 0 {
            return Ok(Answer::NotCompleted {
                reason: format!(
                    "{unassured} of {} foundation accounts were not assured; the bootstrap is not complete",
                    input.assurance.len()
                ),
            });
        }
        let completed = FoundationCompleted {
            execution: input
                .execution
                .unwrap_or_else(|| "register-foundation".to_owned()),
            completed_ts: domain::timestamp::now(),
        };
        r.registry.record_foundation_completed(&completed).await?;
        return Ok(Answer::Completed {
            completed_ts: completed.completed_ts,
        });
    }
    handle(r, input).await.map(Answer::Registered)
}

domain::string_enum! {
    /// What happened to a foundation account: written now, or found already written.
    pub enum Outcome {
        Recorded => "RECORDED",
        AlreadyRecorded => "ALREADY_RECORDED",
    }
}

/// What happened to each foundation account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Registered {
    #[serde(rename = "Id")]
    pub id: Uuid,
    #[serde(rename = "AwsAccountId")]
    pub aws_account_id: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "AccountRole")]
    pub account_role: AccountRole,
    #[serde(rename = "AccountTypeName")]
    pub account_type_name: &'static str,
    #[serde(rename = "Outcome")]
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Output {
    #[serde(rename = "Accounts")]
    pub accounts: Vec<Registered>,
    /// The AWS organization (`o-…`) the later bootstrap steps grant access to.
    #[serde(rename = "AwsOrganizationId")]
    pub aws_organization_id: String,
    /// The foundation accounts Account Assurance hardens (the Security and Logging accounts;
    /// the management account runs the service and is not assured through a role).
    #[serde(rename = "AssuranceTargets")]
    pub assurance_targets: Vec<Uuid>,
}

pub struct Registrar<O, R> {
    pub organizations: O,
    pub registry: R,
    pub security_account_id: String,
    pub logging_account_id: String,
}

fn aws_account_id_var(name: &'static str) -> Result<String, ConfigError> {
    config::parsed(name, |v| {
        if is_aws_account_id(v) {
            Ok(v.to_owned())
        } else {
            Err(format!("{v:?} is not a 12-digit AWS account id"))
        }
    })
}

impl Registrar<aws_sdk_organizations::Client, DynamoStore> {
    /// `TABLE_NAME`, `SECURITY_ACCOUNT_ID`, `LOGGING_ACCOUNT_ID`.
    pub fn from_env(sdk: &aws::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Registrar {
            organizations: aws::organizations(sdk),
            registry: DynamoStore::from_env(sdk)?,
            security_account_id: aws_account_id_var("SECURITY_ACCOUNT_ID")?,
            logging_account_id: aws_account_id_var("LOGGING_ACCOUNT_ID")?,
        })
    }
}

pub async fn handle<O: Organizations, R: AccountWrites + AccountTypes>(
    r: &Registrar<O, R>,
    input: Input,
) -> Result<Output, RegisterError> {
    let actor = input
        .execution
        .unwrap_or_else(|| "register-foundation".to_owned());
    let org = r.organizations.organization().await?;
    let foundation = [
        (
            BuiltInAccountType::FoundationManagement,
            org.management_account_id.clone(),
        ),
        (
            BuiltInAccountType::FoundationSecurity,
            r.security_account_id.clone(),
        ),
        (
            BuiltInAccountType::FoundationLogging,
            r.logging_account_id.clone(),
        ),
    ];
    for (i, (t, id)) in foundation.iter().enumerate() {
        if let Some((other, _)) = foundation[..i].iter().find(|(_, o)| o == id) {
            return Err(RegisterError::SameAccountTwice {
                aws_account_id: id.clone(),
                role: t.account_role(),
                other: other.account_role(),
            });
        }
    }
    r.registry
        .ensure_account_type(BuiltInAccountType::Default.as_str())
        .await?;
    let mut accounts = Vec::with_capacity(foundation.len());
    for (built_in, aws_account_id) in foundation {
        let account_type = r.registry.ensure_account_type(built_in.as_str()).await?;
        let role = built_in.account_role();
        let recorded = r.registry.get_account_by_aws_id(&aws_account_id).await?;
        let (account, outcome) = match recorded {
            Some(existing) => (existing.value, Outcome::AlreadyRecorded),
            None => {
                let member = r.organizations.account(&aws_account_id).await?;
                if !member.active {
                    return Err(RegisterError::NotActive(aws_account_id));
                }
                let account = Account::create(
                    Uuid::new_v4(),
                    NewAccount {
                        organisation_id: organisation_id(&org.id),
                        name: member.name.clone(),
                        aws_account_id: Some(member.id),
                        aws_account_name: Some(member.name),
                        aws_account_alias: None,
                        email: Some(member.email),
                        account_type: Some(account_type.id),
                        account_role: role,
                        origin: Origin::External,
                        tags: None,
                        orgs_ou_id: None,
                        task: None,
                    },
                    &Transition::to(Trigger::RegisterFoundation, AccountStatus::Active),
                    Utc::now(),
                )?;
                let written = r
                    .registry
                    .create_account(&account, Trigger::RegisterFoundation, None, &actor)
                    .await;
                match written {
                    Ok(_) => (account, Outcome::Recorded),
                    // A concurrent run recorded it first.
                    Err(StoreError::AwsAccountIdTaken(_)) => {
                        let theirs = r.registry.get_account_by_aws_id(&aws_account_id).await?;
                        (
                            theirs.ok_or(StoreError::AccountNotFound(account.id))?.value,
                            Outcome::AlreadyRecorded,
                        )
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        if account.account_role != role || account.account_type != Some(account_type.id) {
            return Err(RegisterError::RecordedWithAnotherRole {
                aws_account_id,
                id: account.id,
                recorded: account.account_role,
                expected: role,
            });
        }
        tracing::info!(aws_account_id, id = %account.id, ?outcome, "foundation account");
        accounts.push(Registered {
            id: account.id,
            aws_account_id,
            name: account.name,
            account_role: role,
            account_type_name: built_in.as_str(),
            outcome,
        });
    }
    let assurance_targets = accounts
        .iter()
        .filter(|a| a.account_role != AccountRole::Management)
        .map(|a| a.id)
        .collect();
    Ok(Output {
        accounts,
        aws_organization_id: org.id,
        assurance_targets,
    })
}

impl Organizations for aws_sdk_organizations::Client {
    async fn organization(&self) -> Result<OrganizationInfo, RegisterError> {
        let out = self
            .describe_organization()
            .send()
            .await
            .map_err(OrganizationsError::from)?;
        let org = out.organization.ok_or_else(|| {
            OrganizationsError::new("DescribeOrganization returned no organization")
        })?;
        Ok(OrganizationInfo {
            id: org.id.unwrap_or_default(),
            management_account_id: org.master_account_id.unwrap_or_default(),
        })
    }

    async fn account(&self, aws_account_id: &str) -> Result<MemberAccount, RegisterError> {
        let out = match self
            .describe_account()
            .account_id(aws_account_id)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_account_not_found_exception()) =>
            {
                return Err(RegisterError::NotInOrganization(aws_account_id.to_owned()));
            }
            Err(e) => return Err(OrganizationsError::from(e).into()),
        };
        let a = out
            .account
            .ok_or_else(|| RegisterError::NotInOrganization(aws_account_id.to_owned()))?;
        let active = match (a.state(), a.status()) {
            (Some(state), _) => state.as_str() == "ACTIVE",
            (None, Some(status)) => status.as_str() == "ACTIVE",
            (None, None) => false,
        };
        Ok(MemberAccount {
            id: a.id.unwrap_or_default(),
            name: a.name.unwrap_or_default(),
            email: a.email.unwrap_or_default(),
            active,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{AccountFilter, AccountType};
    use store::{AccountReads, MemoryStore};

    struct Org {
        management: &'static str,
        members: Vec<MemberAccount>,
    }

    impl Organizations for Org {
        async fn organization(&self) -> Result<OrganizationInfo, RegisterError> {
            Ok(OrganizationInfo {
                id: "o-test".into(),
                management_account_id: self.management.into(),
            })
        }
        async fn account(&self, id: &str) -> Result<MemberAccount, RegisterError> {
            self.members
                .iter()
                .find(|m| m.id == id)
                .cloned()
                .ok_or_else(|| RegisterError::NotInOrganization(id.into()))
        }
    }

    async fn recorded(r: &Registrar<Org, MemoryStore>, aws_account_id: &str) -> Option<Account> {
        let v = r
            .registry
            .get_account_by_aws_id(aws_account_id)
            .await
            .unwrap();
        v.map(|v| v.value)
    }

    async fn type_named(r: &Registrar<Org, MemoryStore>, name: &str) -> AccountType {
        r.registry
            .get_account_type_by_name(name)
            .await
            .unwrap()
            .expect("the type")
    }

    async fn every_account(r: &Registrar<Org, MemoryStore>) -> Vec<Account> {
        r.registry
            .list_accounts(&AccountFilter::default())
            .await
            .unwrap()
    }

    fn member(id: &str, name: &str) -> MemberAccount {
        MemberAccount {
            id: id.into(),
            name: name.into(),
            email: format!("{name}@example.com"),
            active: true,
        }
    }

    fn registrar() -> Registrar<Org, MemoryStore> {
        Registrar {
            organizations: Org {
                management: "100000000000",
                members: vec![
                    member("100000000000", "management"),
                    member("200000000000", "security"),
                    member("300000000000", "logging"),
                ],
            },
            registry: MemoryStore::new(),
            security_account_id: "200000000000".into(),
            logging_account_id: "300000000000".into(),
        }
    }

    #[tokio::test]
    async fn the_last_step_records_the_completion_once_every_foundation_account_is_assured() {
        let r = registrar();
        assert_eq!(r.registry.foundation_completed().await.unwrap(), None);
        let outcome = |status: &str| AssuranceOutcome {
            status: status.into(),
        };
        let unassured = Input {
            execution: Some("arn:aws:states:::execution:foundation:1".into()),
            action: Some(Action::Complete),
            assurance: vec![outcome("SUCCEEDED"), outcome("FAILED")],
        };
        assert!(matches!(
            run(&r, unassured).await.unwrap(),
            Answer::NotCompleted { .. }
        ));
        assert_eq!(r.registry.foundation_completed().await.unwrap(), None);
        let input = Input {
            execution: Some("arn:aws:states:::execution:foundation:1".into()),
            action: Some(Action::Complete),
            assurance: vec![outcome("SUCCEEDED"), outcome("SUCCEEDED")],
        };
        let Answer::Completed { completed_ts } = run(&r, input).await.unwrap() else {
            panic!("not a completion");
        };
        let completed = r.registry.foundation_completed().await.unwrap().unwrap();
        assert_eq!(
            (completed.execution.as_str(), completed.completed_ts),
            ("arn:aws:states:::execution:foundation:1", completed_ts)
        );
        assert!(
            r.registry
                .list_accounts(&Default::default())
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn records_the_three_foundation_accounts_active_in_their_types() {
        let r = registrar();
        let out = handle(&r, Input::default()).await.unwrap();
        let summary: Vec<_> = out
            .accounts
            .iter()
            .map(|a| (a.name.as_str(), a.account_role, a.outcome))
            .collect();
        assert_eq!(
            summary,
            [
                ("management", AccountRole::Management, Outcome::Recorded),
                ("security", AccountRole::Security, Outcome::Recorded),
                ("logging", AccountRole::Logging, Outcome::Recorded),
            ]
        );
        let security = recorded(&r, "200000000000").await.expect("recorded");
        assert_eq!(
            (security.status, security.origin),
            (AccountStatus::Active, Origin::External)
        );
        let security_type = type_named(&r, "foundation-security").await;
        assert_eq!(security.account_type, Some(security_type.id));
        assert!(
            r.registry
                .get_account_type_by_name("default")
                .await
                .unwrap()
                .is_some()
        );
    }

    #[tokio::test]
    async fn a_second_run_changes_nothing() {
        let r = registrar();
        handle(&r, Input::default()).await.unwrap();
        let before = r.registry.snapshot();
        let out = handle(&r, Input::default()).await.unwrap();
        assert!(
            out.accounts
                .iter()
                .all(|a| a.outcome == Outcome::AlreadyRecorded)
        );
        assert_eq!(r.registry.snapshot(), before, "a second run writes nothing");
    }

    #[tokio::test]
    async fn losing_a_race_reports_the_winners_record() {
        let r = registrar();
        let management_type = r
            .registry
            .ensure_account_type("foundation-management")
            .await
            .unwrap();
        let theirs = Account::create(
            Uuid::new_v4(),
            NewAccount {
                account_type: Some(management_type.id),
                account_role: AccountRole::Management,
                ..new_account("100000000000")
            },
            &Transition::to(Trigger::RegisterFoundation, AccountStatus::Active),
            Utc::now(),
        )
        .unwrap();
        r.registry.interleave(theirs.clone());
        let out = handle(&r, Input::default()).await.unwrap();
        assert_eq!(
            (out.accounts[0].id, out.accounts[0].outcome),
            (theirs.id, Outcome::AlreadyRecorded)
        );
        assert_eq!(every_account(&r).await.len(), 3);
    }

    fn new_account(aws_account_id: &str) -> NewAccount {
        domain::fixtures::new_account(&format!("account-{aws_account_id}"), Some(aws_account_id))
    }

    #[tokio::test]
    async fn an_account_outside_the_organization_is_a_typed_error() {
        let mut r = registrar();
        r.logging_account_id = "999999999999".into();
        let e = handle(&r, Input::default()).await.unwrap_err();
        assert_eq!(e.name(), ErrorName::FoundationAccountNotInOrganization);
    }

    #[tokio::test]
    async fn a_suspended_account_is_not_adopted() {
        let mut r = registrar();
        r.organizations.members[2].active = false;
        let e = handle(&r, Input::default()).await.unwrap_err();
        assert_eq!(e.name(), ErrorName::FoundationAccountNotActive);
        assert!(recorded(&r, "300000000000").await.is_none());
    }

    #[tokio::test]
    async fn security_and_logging_must_be_different_accounts() {
        let mut r = registrar();
        r.logging_account_id = r.security_account_id.clone();
        let e = handle(&r, Input::default()).await.unwrap_err();
        assert_eq!(e.name(), ErrorName::FoundationAccountsNotDistinct);
        assert!(every_account(&r).await.is_empty(), "nothing recorded");
    }

    #[tokio::test]
    async fn an_account_recorded_in_another_role_is_not_silently_adopted() {
        let r = registrar();
        let member_type = r.registry.ensure_account_type("default").await.unwrap();
        let workload = Account::create(
            Uuid::new_v4(),
            NewAccount {
                account_type: Some(member_type.id),
                ..new_account("200000000000")
            },
            &Transition::to(Trigger::RecordDiscovered, AccountStatus::Discovered),
            Utc::now(),
        )
        .unwrap();
        r.registry
            .create_account(&workload, Trigger::RecordDiscovered, None, "test")
            .await
            .unwrap();
        let e = handle(&r, Input::default()).await.unwrap_err();
        assert_eq!(e.name(), ErrorName::RecordedWithAnotherRole);
    }
}
