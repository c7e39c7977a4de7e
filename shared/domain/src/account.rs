//! Accounts as the service records them, serialised exactly as the Stax public API
//! (PascalCase fields, the document's enum strings, `2018-10-11T01:05:45.000Z` timestamps), and
//! the rules their fields follow.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::string_enum;

string_enum! {
    /// Lifecycle status of an account (the Stax `Account.Status` values this service uses).
    pub enum AccountStatus {
        Initializing => "INITIALIZING",
        Discovered => "DISCOVERED",
        Error => "ERROR",
        Onboarding => "ONBOARDING",
        Active => "ACTIVE",
        Suspended => "SUSPENDED",
        Maintenance => "MAINTENANCE",
        Closed => "CLOSED",
    }
}

string_enum! {
    /// Every value of the Stax document's `Account.Status` enum. Filters accept all of them so
    /// that existing Stax clients keep working; the ones this service never assigns match nothing.
    pub enum StaxAccountStatus {
        Active => "ACTIVE",
        AwsError => "AWSERROR",
        Closed => "CLOSED",
        Discovered => "DISCOVERED",
        Error => "ERROR",
        Initializing => "INITIALIZING",
        Maintenance => "MAINTENANCE",
        New => "NEW",
        NoAws => "NOAWS",
        Suspended => "SUSPENDED",
        Offboarded => "OFFBOARDED",
        Onboarding => "ONBOARDING",
        Inactive => "INACTIVE",
    }
}

impl StaxAccountStatus {
    /// The status of this service that the Stax value names, if it is one this service uses.
    pub fn as_account_status(self) -> Option<AccountStatus> {
        self.as_str().parse().ok()
    }
}

string_enum! {
    /// Where an account came from. Set at creation and never changed.
    pub enum Origin {
        /// Created by this service.
        Stax => "STAX",
        /// Created outside the service and found in the organization.
        External => "EXTERNAL",
    }
}

string_enum! {
    /// The account's role in the organization.
    pub enum AccountRole {
        Member => "MEMBER",
        Management => "MANAGEMENT",
        ManagementResell => "MANAGEMENT_RESELL",
        Security => "SECURITY",
        Logging => "LOGGING",
    }
}

string_enum! {
    /// Hardening state of an account (Account Assurance).
    pub enum AssuranceState {
        None => "NONE",
        Updating => "UPDATING",
        Active => "ACTIVE",
        Error => "ERROR",
    }
}

/// Stax tags: string keys to string values.
pub type Tags = BTreeMap<String, String>;

/// An AWS account as the service records it (the Stax `Account` schema).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    #[serde(rename = "Id")]
    pub id: Uuid,
    /// The installation's organisation: derived from the AWS organization id.
    #[serde(rename = "OrganisationId")]
    pub organisation_id: Uuid,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(
        rename = "AwsAccountId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub aws_account_id: Option<String>,
    #[serde(
        rename = "AwsAccountName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub aws_account_name: Option<String>,
    #[serde(
        rename = "AwsAccountAlias",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub aws_account_alias: Option<String>,
    /// The id of the account's Account Type.
    #[serde(
        rename = "AccountType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub account_type: Option<Uuid>,
    #[serde(rename = "AccountRole")]
    pub account_role: AccountRole,
    #[serde(rename = "Status")]
    pub status: AccountStatus,
    /// Why the account is in ERROR (present only then). Not in the Stax document.
    #[serde(
        rename = "StatusReason",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub status_reason: Option<String>,
    #[serde(rename = "Origin")]
    pub origin: Origin,
    #[serde(rename = "AssuranceState")]
    pub assurance_state: AssuranceState,
    #[serde(
        rename = "AssuranceStateReason",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub assurance_state_reason: Option<String>,
    #[serde(rename = "Email", default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(rename = "Tags", default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Tags>,
    /// The AWS Organizations OU the account sits in.
    #[serde(rename = "OrgsOuId", default, skip_serializing_if = "Option::is_none")]
    pub orgs_ou_id: Option<String>,
    /// The task of the operation running on this account; while set, other operations are refused.
    #[serde(
        rename = "UserTaskId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub user_task_id: Option<Uuid>,
    /// The latest compliance score (not in the Stax document). Written by scoring alone, beside
    /// the record's versioned changes.
    #[serde(
        rename = "Compliance",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub compliance: Option<crate::compliance::ComplianceSummary>,
    #[serde(rename = "CreatedTS", with = "crate::timestamp")]
    pub created_ts: DateTime<Utc>,
    #[serde(rename = "ModifiedTS", with = "crate::timestamp")]
    pub modified_ts: DateTime<Utc>,
}

/// How root emails are made: a template with one `{AccountId}`, e.g.
/// `aws+{AccountId}@example.com`; the result must fit AWS's 64 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailTemplate(String);

impl EmailTemplate {
    pub fn parse(template: &str) -> Result<Self, String> {
        if template.matches("{AccountId}").count() != 1 {
            return Err(format!(
                "{template:?} must contain {{AccountId}} exactly once"
            ));
        }
        let longest = template.replace("{AccountId}", &Uuid::nil().to_string());
        let (local, domain) = longest
            .split_once('@')
            .ok_or_else(|| format!("{template:?} is not an email address"))?;
        if local.is_empty() || !domain.contains('.') || domain.contains('@') {
            return Err(format!("{template:?} is not an email address"));
        }
        if longest.len() > 64 {
            return Err(format!(
                "{template:?} makes addresses of {} characters; AWS allows 64",
                longest.len()
            ));
        }
        Ok(EmailTemplate(template.to_owned()))
    }

    pub fn email(&self, account: Uuid) -> String {
        self.0.replace("{AccountId}", &account.to_string())
    }

    /// The account whose root email `email` is, if the template made it.
    pub fn account_of(&self, email: &str) -> Option<Uuid> {
        let (prefix, suffix) = self.0.split_once("{AccountId}")?;
        let id = email.strip_prefix(prefix)?.strip_suffix(suffix)?;
        Uuid::parse_str(id).ok()
    }
}

/// The `OrganisationId` of the installation that manages AWS organization `aws_organization_id`.
/// Stax clients expect a UUID; deriving it (UUID v5) keeps it stable without storing it.
pub fn organisation_id(aws_organization_id: &str) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("aws-organizations:{aws_organization_id}").as_bytes(),
    )
}

/// Is `s` a 12-digit AWS account id?
pub fn is_aws_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Account names as the Stax document allows them: 1–50 printable ASCII characters other than
/// `<` and `>` (pattern `^[ -;=?-~]+$`).
pub fn validate_account_name(name: &str) -> Result<(), String> {
    let len = name.chars().count();
    if !(1..=50).contains(&len) {
        return Err(format!(
            "an account name has 1 to 50 characters, {name:?} has {len}"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(' '..='~').contains(c) || *c == '<' || *c == '>')
    {
        return Err(format!(
            "an account name is printable ASCII without '<' or '>', {name:?} contains {c:?}"
        ));
    }
    Ok(())
}

/// The key under which account names are unique: names are compared case-insensitively.
pub fn name_key(name: &str) -> String {
    name.to_lowercase()
}

/// An IAM account alias: 1–48 lowercase letters, digits and single hyphens inside.
pub fn validate_alias(alias: &str) -> Result<(), String> {
    let ok = (1..=48).contains(&alias.len())
        && alias
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !alias.starts_with('-')
        && !alias.ends_with('-')
        && !alias.contains("--");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{alias:?} must be 1 to 48 lowercase letters, digits and single hyphens, starting and ending with a letter or digit"
        ))
    }
}

/// Stax tags: at most 100; keys 1–128 and values 1–256 characters of `a-zA-Z0-9+-=._:/@ `;
/// keys may not start with `aws:` (reserved by AWS) or `accounts:` (the service's).
pub fn validate_tags(tags: &Tags) -> Result<(), String> {
    if tags.len() > 100 {
        return Err(format!("at most 100 tags, got {}", tags.len()));
    }
    let allowed = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-=._:/@ ".contains(c))
    };
    for (k, v) in tags {
        if !(1..=128).contains(&k.chars().count())
            || !allowed(k)
            || k.to_lowercase().starts_with("aws:")
        {
            return Err(format!("key {k:?} is not a valid tag key"));
        }
        // The service's own tag says what it manages (domain::policy::MANAGED_TAG_KEY): only
        // the service puts it, never a request.
        if k.to_lowercase().starts_with("accounts:") {
            return Err(format!(
                "key {k:?} is reserved: keys starting accounts: belong to the service"
            ));
        }
        if !(1..=256).contains(&v.chars().count()) || !allowed(v) {
            return Err(format!("the value of {k:?} is not a valid tag value"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn sample() -> Account {
        let t = Utc.with_ymd_and_hms(2018, 10, 11, 1, 5, 45).unwrap();
        Account {
            id: Uuid::parse_str("e893d7e0-9306-11e9-bc42-526af7764f64").unwrap(),
            organisation_id: organisation_id("o-abc123"),
            name: "bakery".into(),
            aws_account_id: Some("012345678901".into()),
            aws_account_name: Some("bakery".into()),
            aws_account_alias: None,
            account_type: None,
            account_role: AccountRole::Member,
            status: AccountStatus::Active,
            status_reason: None,
            origin: Origin::Stax,
            assurance_state: AssuranceState::Active,
            assurance_state_reason: None,
            email: Some("aws+e893d7e0@example.com".into()),
            tags: Some(Tags::from([("CostCode".into(), "12345".into())])),
            orgs_ou_id: None,
            user_task_id: None,
            compliance: None,
            created_ts: t,
            modified_ts: t,
        }
    }

    #[test]
    fn account_serialises_in_the_stax_shape() {
        let v = serde_json::to_value(sample()).unwrap();
        assert_eq!(v["Id"], "e893d7e0-9306-11e9-bc42-526af7764f64");
        assert_eq!(v["AwsAccountId"], "012345678901");
        assert_eq!(v["Status"], "ACTIVE");
        assert_eq!(v["Origin"], "STAX");
        assert_eq!(v["AccountRole"], "MEMBER");
        assert_eq!(v["AssuranceState"], "ACTIVE");
        assert_eq!(v["CreatedTS"], "2018-10-11T01:05:45.000Z");
        assert_eq!(v["Tags"], json!({"CostCode": "12345"}));
        assert!(
            v.get("AwsAccountAlias").is_none(),
            "absent values are omitted"
        );
        let back: Account = serde_json::from_value(v).unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn enums_round_trip_through_their_wire_strings() {
        for s in AccountStatus::ALL {
            assert_eq!(s.as_str().parse::<AccountStatus>().unwrap(), *s);
            assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
        }
        assert!("active".parse::<AccountStatus>().is_err());
        assert_eq!(
            StaxAccountStatus::Offboarded.as_account_status(),
            None,
            "a Stax status this service never assigns"
        );
        assert_eq!(
            StaxAccountStatus::Onboarding.as_account_status(),
            Some(AccountStatus::Onboarding)
        );
    }

    #[test]
    fn email_templates_hold_the_id_and_fit_64_characters() {
        let t = EmailTemplate::parse("aws+{AccountId}@example.com").unwrap();
        let id = Uuid::new_v4();
        assert_eq!(t.email(id), format!("aws+{id}@example.com"));
        assert_eq!(t.account_of(&t.email(id)), Some(id));
        assert_eq!(t.account_of("aws+legacy@example.com"), None);
        assert_eq!(t.account_of("someone@example.com"), None);
        assert!(EmailTemplate::parse("aws@example.com").is_err());
        assert!(EmailTemplate::parse("aws+{AccountId}{AccountId}@example.com").is_err());
        assert!(EmailTemplate::parse("aws+{AccountId}").is_err());
        assert!(
            EmailTemplate::parse("platform-team-aws-root+{AccountId}@example.com").is_err(),
            "65 characters"
        );
    }

    #[test]
    fn organisation_id_is_stable_per_organization() {
        assert_eq!(organisation_id("o-abc"), organisation_id("o-abc"));
        assert_ne!(organisation_id("o-abc"), organisation_id("o-abd"));
    }

    #[test]
    fn account_names_follow_the_stax_pattern() {
        assert!(validate_account_name("bakery prod-1 (eu)").is_ok());
        assert!(validate_account_name("").is_err());
        assert!(validate_account_name(&"x".repeat(51)).is_err());
        assert!(validate_account_name("a<b").is_err());
        assert!(validate_account_name("caf\u{e9}").is_err());
        assert!(validate_account_name("tab\there").is_err());
    }

    #[test]
    fn aws_account_ids_are_twelve_digits() {
        assert!(is_aws_account_id("012345678901"));
        assert!(!is_aws_account_id("01234567890"));
        assert!(!is_aws_account_id("01234567890a"));
    }

    #[test]
    fn at_most_one_hundred_tags() {
        let tags: Tags = (0..101)
            .map(|i| (format!("k{i}"), "v".to_owned()))
            .collect();
        assert_eq!(
            validate_tags(&tags),
            Err("at most 100 tags, got 101".into())
        );
    }
}
