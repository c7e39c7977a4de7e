//! Account Types: groups of accounts, each one OU in the organization (which carries the
//! type's policies).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::account::AccountRole;
use crate::string_enum;

string_enum! {
    /// The account types every installation has. Foundation types hold the foundation accounts;
    /// accounts created without a more specific type get `default`.
    pub enum BuiltInAccountType {
        FoundationManagement => "foundation-management",
        FoundationSecurity => "foundation-security",
        FoundationLogging => "foundation-logging",
        Default => "default",
    }
}

impl BuiltInAccountType {
    /// The role an account of this type plays in the organization.
    pub fn account_role(self) -> AccountRole {
        match self {
            BuiltInAccountType::FoundationManagement => AccountRole::Management,
            BuiltInAccountType::FoundationSecurity => AccountRole::Security,
            BuiltInAccountType::FoundationLogging => AccountRole::Logging,
            BuiltInAccountType::Default => AccountRole::Member,
        }
    }
}

/// An Account Type (the Stax `AccountType` schema, without the derived member lists).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountType {
    #[serde(rename = "Id")]
    pub id: Uuid,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Status")]
    pub status: AccountTypeStatus,
    #[serde(rename = "CreatedTS", with = "crate::timestamp")]
    pub created_ts: DateTime<Utc>,
    #[serde(rename = "ModifiedTS", with = "crate::timestamp")]
    pub modified_ts: DateTime<Utc>,
}

impl AccountType {
    /// Whether accounts may be created in or onboarded to this type: not the deleted ones, and
    /// not the foundation types, each of which holds its one foundation account.
    pub fn admits_member_accounts(&self) -> Result<(), String> {
        if self.status != AccountTypeStatus::Active {
            return Err(format!("Account Type {} is {}", self.name, self.status));
        }
        match self.name.parse::<BuiltInAccountType>() {
            Ok(built_in) if built_in.account_role() != AccountRole::Member => Err(format!(
                "{} holds a foundation account; other accounts cannot join it",
                self.name
            )),
            _ => Ok(()),
        }
    }
}

string_enum! {
    pub enum AccountTypeStatus {
        Active => "ACTIVE",
        Deleted => "DELETED",
    }
}

/// How a request names an Account Type: Stax accepts its id or its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountTypeRef {
    Id(Uuid),
    Name(String),
}

/// Completes "AccountType: …" when no Account Type matches.
impl std::fmt::Display for AccountTypeRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccountTypeRef::Id(id) => write!(f, "no Account Type has id {id}"),
            AccountTypeRef::Name(name) => write!(f, "no Account Type is named {name:?}"),
        }
    }
}
