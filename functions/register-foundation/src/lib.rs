//! Foundation bootstrap, first step: record the organization's management account and the
//! configured Security and Logging accounts, each in its built-in account type
//! (`foundation-management`, `foundation-security`, `foundation-logging`), and make sure the
//! `default` type exists.
//!
//! Idempotent: an account already recorded in its foundation role is reported, not rewritten.
//! Two runs at once record each account once (the store's unique AWS account id decides).

use aws_sdk_organizations::error::ProvideErrorMetadata;
use std::future::Future;

use aws_sdk_organizations::error::SdkError;
use chrono::Utc;
use lambda_runtime::Diagnostic;
use serde::{Deserialize, Serialize};
use shared::config::{self, ConfigError};
use shared::domain::{
    Account, AccountRole, AccountType, BuiltInAccountType, Origin, is_aws_account_id,
    organisation_id,
};
use shared::lifecycle::{LifecycleError, NewAccount, Transition, Trigger};
use shared::store::{Store, StoreError};
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

pub trait OrganizationDirectory: Send + Sync {
    fn organization(&self) -> impl Future<Output = Result<OrganizationInfo, RegisterError>> + Send;
    fn account(
        &self,
        aws_account_id: &str,
    ) -> impl Future<Output = Result<MemberAccount, RegisterError>> + Send;
}

pub trait FoundationRegistry: Send + Sync {
    fn ensure_account_type(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<AccountType, StoreError>> + Send;
    fn account_by_aws_id(
        &self,
        aws_account_id: &str,
    ) -> impl Future<Output = Result<Option<Account>, StoreError>> + Send;
    fn record(
        &self,
        account: &Account,
        actor: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
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
    #[error("AWS Organizations call failed: {0}")]
    Organizations(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
}

impl RegisterError {
    /// The error name Step Functions sees.
    pub fn name(&self) -> &'static str {
        match self {
            RegisterError::NotInOrganization(_) => "FoundationAccountNotInOrganization",
            RegisterError::NotActive(_) => "FoundationAccountNotActive",
            RegisterError::SameAccountTwice { .. } => "FoundationAccountsNotDistinct",
            RegisterError::RecordedWithAnotherRole { .. } => "RecordedWithAnotherRole",
            RegisterError::Organizations(_) => "OrganizationsCallFailed",
            RegisterError::Store(e) => e.name(),
            RegisterError::Lifecycle(e) => e.name(),
        }
    }
}

impl From<RegisterError> for Diagnostic {
    fn from(e: RegisterError) -> Self {
        Diagnostic {
            error_type: e.name().to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// The step's input (the state machine passes its execution id, recorded as the actor).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Input {
    #[serde(rename = "Execution", default)]
    pub execution: Option<String>,
}

shared::string_enum! {
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

impl Registrar<aws_sdk_organizations::Client, Store> {
    /// `TABLE_NAME`, `SECURITY_ACCOUNT_ID`, `LOGGING_ACCOUNT_ID`.
    pub fn from_env(sdk: &shared::aws::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Registrar {
            organizations: aws_sdk_organizations::Client::new(sdk),
            registry: Store::new(
                aws_sdk_dynamodb::Client::new(sdk),
                config::required("TABLE_NAME")?,
            ),
            security_account_id: aws_account_id_var("SECURITY_ACCOUNT_ID")?,
            logging_account_id: aws_account_id_var("LOGGING_ACCOUNT_ID")?,
        })
    }
}

pub async fn register<O: OrganizationDirectory, R: FoundationRegistry>(
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
        let (account, outcome) = match r.registry.account_by_aws_id(&aws_account_id).await? {
            Some(existing) => (existing, Outcome::AlreadyRecorded),
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
                    &Transition::to(
                        Trigger::RegisterFoundation,
                        shared::domain::AccountStatus::Active,
                    ),
                    Utc::now(),
                )?;
                match r.registry.record(&account, &actor).await {
                    Ok(()) => (account, Outcome::Recorded),
                    // A concurrent run recorded it first.
                    Err(StoreError::AwsAccountIdTaken(_)) => {
                        let theirs = r.registry.account_by_aws_id(&aws_account_id).await?;
                        (
                            theirs.ok_or(StoreError::AccountNotFound(account.id))?,
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

fn organizations_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    e: SdkError<E>,
) -> RegisterError {
    RegisterError::Organizations(shared::aws::error_message(&e))
}

impl OrganizationDirectory for aws_sdk_organizations::Client {
    async fn organization(&self) -> Result<OrganizationInfo, RegisterError> {
        let out = self
            .describe_organization()
            .send()
            .await
            .map_err(organizations_error)?;
        let org = out.organization.ok_or_else(|| {
            RegisterError::Organizations("DescribeOrganization returned no organization".into())
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
            Err(e) => return Err(organizations_error(e)),
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

impl FoundationRegistry for Store {
    async fn ensure_account_type(&self, name: &str) -> Result<AccountType, StoreError> {
        Store::ensure_account_type(self, name).await
    }
    async fn account_by_aws_id(&self, aws_account_id: &str) -> Result<Option<Account>, StoreError> {
        Ok(self
            .get_account_by_aws_id(aws_account_id)
            .await?
            .map(|v| v.value))
    }
    async fn record(&self, account: &Account, actor: &str) -> Result<(), StoreError> {
        self.create_account(account, Trigger::RegisterFoundation, None, actor)
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::{AccountStatus, AccountTypeStatus};
    use std::collections::HashMap;
    use std::sync::Mutex;

    struct Org {
        management: &'static str,
        members: Vec<MemberAccount>,
    }

    impl OrganizationDirectory for Org {
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

    /// Keeps the store's uniqueness rules: one account per AWS id, one type per name.
    #[derive(Default)]
    struct Registry {
        types: Mutex<HashMap<String, AccountType>>,
        accounts: Mutex<HashMap<String, Account>>,
        /// An account some other writer records just before ours (a concurrent run).
        racing: Mutex<Option<Account>>,
    }

    impl FoundationRegistry for Registry {
        async fn ensure_account_type(&self, name: &str) -> Result<AccountType, StoreError> {
            let mut types = self.types.lock().unwrap();
            Ok(types
                .entry(name.into())
                .or_insert_with(|| AccountType {
                    id: Uuid::new_v4(),
                    name: name.into(),
                    status: AccountTypeStatus::Active,
                    created_ts: Utc::now(),
                    modified_ts: Utc::now(),
                })
                .clone())
        }
        async fn account_by_aws_id(&self, id: &str) -> Result<Option<Account>, StoreError> {
            Ok(self.accounts.lock().unwrap().get(id).cloned())
        }
        async fn record(&self, account: &Account, _actor: &str) -> Result<(), StoreError> {
            let mut accounts = self.accounts.lock().unwrap();
            if let Some(theirs) = self.racing.lock().unwrap().take() {
                accounts.insert(theirs.aws_account_id.clone().unwrap(), theirs);
            }
            let key = account.aws_account_id.clone().unwrap();
            if accounts.contains_key(&key) {
                return Err(StoreError::AwsAccountIdTaken(key));
            }
            accounts.insert(key, account.clone());
            Ok(())
        }
    }

    fn member(id: &str, name: &str) -> MemberAccount {
        MemberAccount {
            id: id.into(),
            name: name.into(),
            email: format!("{name}@example.com"),
            active: true,
        }
    }

    fn registrar() -> Registrar<Org, Registry> {
        Registrar {
            organizations: Org {
                management: "100000000000",
                members: vec![
                    member("100000000000", "management"),
                    member("200000000000", "security"),
                    member("300000000000", "logging"),
                ],
            },
            registry: Registry::default(),
            security_account_id: "200000000000".into(),
            logging_account_id: "300000000000".into(),
        }
    }

    #[tokio::test]
    async fn records_the_three_foundation_accounts_active_in_their_types() {
        let r = registrar();
        let out = register(&r, Input::default()).await.unwrap();
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
        let accounts = r.registry.accounts.lock().unwrap();
        let security = &accounts["200000000000"];
        assert_eq!(
            (security.status, security.origin),
            (AccountStatus::Active, Origin::External)
        );
        let types = r.registry.types.lock().unwrap();
        assert_eq!(security.account_type, Some(types["foundation-security"].id));
        assert!(types.contains_key("default"));
    }

    #[tokio::test]
    async fn a_second_run_changes_nothing() {
        let r = registrar();
        register(&r, Input::default()).await.unwrap();
        let before = r.registry.accounts.lock().unwrap().clone();
        let out = register(&r, Input::default()).await.unwrap();
        assert!(
            out.accounts
                .iter()
                .all(|a| a.outcome == Outcome::AlreadyRecorded)
        );
        assert_eq!(*r.registry.accounts.lock().unwrap(), before);
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
        *r.registry.racing.lock().unwrap() = Some(theirs.clone());
        let out = register(&r, Input::default()).await.unwrap();
        assert_eq!(
            (out.accounts[0].id, out.accounts[0].outcome),
            (theirs.id, Outcome::AlreadyRecorded)
        );
        assert_eq!(r.registry.accounts.lock().unwrap().len(), 3);
    }

    fn new_account(aws_account_id: &str) -> NewAccount {
        shared::fixtures::new_account(&format!("account-{aws_account_id}"), Some(aws_account_id))
    }

    #[tokio::test]
    async fn an_account_outside_the_organization_is_a_typed_error() {
        let mut r = registrar();
        r.logging_account_id = "999999999999".into();
        let e = register(&r, Input::default()).await.unwrap_err();
        assert_eq!(e.name(), "FoundationAccountNotInOrganization");
        assert_eq!(
            Diagnostic::from(e).error_type,
            "FoundationAccountNotInOrganization"
        );
    }

    #[tokio::test]
    async fn a_suspended_account_is_not_adopted() {
        let mut r = registrar();
        r.organizations.members[2].active = false;
        let e = register(&r, Input::default()).await.unwrap_err();
        assert_eq!(e.name(), "FoundationAccountNotActive");
        assert!(
            !r.registry
                .accounts
                .lock()
                .unwrap()
                .contains_key("300000000000")
        );
    }

    #[tokio::test]
    async fn security_and_logging_must_be_different_accounts() {
        let mut r = registrar();
        r.logging_account_id = r.security_account_id.clone();
        let e = register(&r, Input::default()).await.unwrap_err();
        assert_eq!(e.name(), "FoundationAccountsNotDistinct");
        assert!(
            r.registry.accounts.lock().unwrap().is_empty(),
            "nothing recorded"
        );
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
        r.registry.record(&workload, "test").await.unwrap();
        let e = register(&r, Input::default()).await.unwrap_err();
        assert_eq!(e.name(), "RecordedWithAnotherRole");
    }
}
