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
    /// The type's OU, once the service has made or found it. Types the service creates lazily
    /// (`default`, the foundation types) learn theirs when they are first renamed; until then
    /// placing finds it by the type's name under the root.
    #[serde(rename = "OrgsOuId", default, skip_serializing_if = "Option::is_none")]
    pub ou: Option<String>,
}

/// Account Type names as Stax allows them: 2–64 characters of letters, digits, spaces and
/// `+ - = . _ : / @`.
pub fn validate_account_type_name(name: &str) -> Result<(), String> {
    let len = name.chars().count();
    if !(2..=64).contains(&len) {
        return Err(format!(
            "an Account Type name has 2 to 64 characters, {name:?} has {len}"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && !"+-=._:/@ ".contains(*c))
    {
        return Err(format!(
            "an Account Type name has letters, digits, spaces and + - = . _ : / @ only, {name:?} \
             contains {c:?}"
        ));
    }
    Ok(())
}

/// A name a new or renamed type may take: valid, and not one of the built-in types' (those are
/// the service's, created when first needed).
pub fn validate_new_account_type_name(name: &str) -> Result<(), String> {
    validate_account_type_name(name)?;
    match BuiltInAccountType::ALL
        .iter()
        .find(|b| b.as_str().eq_ignore_ascii_case(name))
    {
        Some(b) => Err(format!("{b} is the name of a built-in Account Type")),
        None => Ok(()),
    }
}

impl AccountType {
    pub fn built_in(&self) -> Option<BuiltInAccountType> {
        self.name.parse().ok()
    }

    /// Whether the type may be renamed or deleted: not a built-in one, not a deleted one.
    pub fn changeable(&self) -> Result<(), String> {
        if let Some(b) = self.built_in() {
            return Err(format!(
                "{b} is a built-in Account Type: it cannot be renamed or deleted"
            ));
        }
        if self.status != AccountTypeStatus::Active {
            return Err(format!("Account Type {} is {}", self.name, self.status));
        }
        Ok(())
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn of(name: &str) -> AccountType {
        let now = crate::timestamp::now();
        AccountType {
            id: Uuid::new_v4(),
            name: name.into(),
            status: AccountTypeStatus::Active,
            created_ts: now,
            modified_ts: now,
            ou: None,
        }
    }

    #[test]
    fn names_follow_the_stax_rules() {
        for ok in ["QA", "Production", "team/a+b=c.d_e:f@g h", &"x".repeat(64)] {
            assert_eq!(validate_account_type_name(ok), Ok(()), "{ok}");
        }
        for bad in ["x", &"x".repeat(65), "no#hash", "naïve", ""] {
            assert!(validate_account_type_name(bad).is_err(), "{bad}");
        }
        let e = validate_new_account_type_name("Default").unwrap_err();
        assert!(e.contains("default is the name of a built-in"), "{e}");
        assert_eq!(validate_new_account_type_name("Sandbox"), Ok(()));
    }

    #[test]
    fn built_in_and_deleted_types_cannot_change() {
        assert_eq!(of("Sandbox").changeable(), Ok(()));
        for name in ["default", "foundation-security"] {
            let e = of(name).changeable().unwrap_err();
            assert!(e.contains("built-in Account Type"), "{e}");
        }
        let mut deleted = of("Old");
        deleted.status = AccountTypeStatus::Deleted;
        assert_eq!(
            deleted.changeable().unwrap_err(),
            "Account Type Old is DELETED"
        );
    }
}
