//! Policies (the Stax `Policy`): service control policies the service owns on a platform
//! team's behalf, attached to Account Types (their OUs) and to accounts. The record is the
//! desired state — content, name, description, where it is attached — and Organizations is
//! made to match it: by the route that changes the record, and by the drift run ([`drift`]),
//! which repairs what was changed outside the service or left half-done by a crash.
//!
//! (`crate::policy` is about IAM documents in general; `crate::scp` validates SCP content.)

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::Tags;
use crate::policy::SUSPENSION_POLICY;
use crate::string_enum;

/// The name of the mandatory SCP the foundation bootstrap attaches to the root.
pub const FOUNDATION_POLICY: &str = "foundation";

/// The tag on each policy's SCP that names the record it is (with the service's own tag):
/// what ties an SCP to its record even before the record knows the SCP's id.
pub const POLICY_ID_TAG_KEY: &str = "accounts:policy-id";

/// AWS allows at most five SCPs directly attached to one root, OU or account (AWS's
/// `FullAWSAccess` counts among them).
pub const MAX_POLICIES_PER_TARGET: usize = 5;

string_enum! {
    /// Status of a Policy (values of the Stax enum the service uses).
    pub enum PolicyStatus {
        Active => "ACTIVE",
        /// Recorded; its SCP not yet known to exist (a crash here is finished by the drift run).
        CreateInProgress => "CREATE_IN_PROGRESS",
        Deleted => "DELETED",
    }
}

string_enum! {
    /// Who owns a policy (the Stax `PolicyOwner`).
    pub enum PolicyOwner {
        /// The service's own (the foundation policy): read-only through the API.
        Stax => "STAX",
        /// A platform team's, made through the API.
        Organisation => "ORGANISATION",
    }
}

/// Where an attachment puts the policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "Kind")]
pub enum AttachmentTarget {
    /// One account: the SCP on the AWS account itself.
    Account {
        #[serde(rename = "AccountId")]
        account_id: Uuid,
    },
    /// An Account Type: the SCP on the type's OU, so on every account of the type.
    AccountType {
        #[serde(rename = "AccountTypeId")]
        account_type_id: Uuid,
    },
    /// The organization's root: the service's own mandatory policy only.
    Root,
}

/// One attachment of a policy (the Stax `PolicyAttachment`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyAttachment {
    #[serde(rename = "Id")]
    pub id: Uuid,
    #[serde(rename = "Target")]
    pub target: AttachmentTarget,
    /// The Organizations target: the AWS account id or the OU id, resolved when attached.
    #[serde(rename = "AwsTargetId")]
    pub aws_target_id: String,
    #[serde(rename = "CreatedTS", with = "crate::timestamp")]
    pub created_ts: DateTime<Utc>,
    #[serde(rename = "UserTaskId", default)]
    pub task: Option<Uuid>,
}

/// A policy the service owns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    #[serde(rename = "Id")]
    pub id: Uuid,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Description")]
    pub description: String,
    /// The SCP document as given (validated by [`crate::scp::validate_scp`]).
    #[serde(rename = "Content")]
    pub content: String,
    #[serde(rename = "Status")]
    pub status: PolicyStatus,
    #[serde(rename = "PolicyOwner")]
    pub owner: PolicyOwner,
    /// The SCP's id in Organizations, once it exists.
    #[serde(rename = "AwsId", default)]
    pub aws_id: Option<String>,
    /// The installation's organisation ([`crate::organisation_id`]), learned from the SCP's ARN.
    #[serde(rename = "OrganisationId", default)]
    pub organisation_id: Option<Uuid>,
    #[serde(rename = "Tags", default)]
    pub tags: Tags,
    #[serde(rename = "Attachments", default)]
    pub attachments: Vec<PolicyAttachment>,
    #[serde(rename = "CreatedTS", with = "crate::timestamp")]
    pub created_ts: DateTime<Utc>,
    #[serde(rename = "ModifiedTS", with = "crate::timestamp")]
    pub modified_ts: DateTime<Utc>,
    /// The task that last changed it.
    #[serde(rename = "UserTaskId", default)]
    pub task: Option<Uuid>,
}

impl Policy {
    /// Whether the API may change, detach or delete it: a live policy of the organisation's.
    pub fn changeable(&self) -> Result<(), String> {
        if self.owner == PolicyOwner::Stax {
            return Err(format!(
                "{} is the service's own policy: it cannot be changed, detached or deleted",
                self.name
            ));
        }
        if self.status == PolicyStatus::Deleted {
            return Err(format!("policy {} is DELETED", self.name));
        }
        Ok(())
    }

    /// The Organizations targets the policy should be attached to.
    pub fn desired_targets(&self) -> BTreeSet<String> {
        if self.status == PolicyStatus::Deleted {
            return BTreeSet::new();
        }
        self.attachments
            .iter()
            .map(|a| a.aws_target_id.clone())
            .collect()
    }

    pub fn attachment_to(&self, target: &AttachmentTarget) -> Option<&PolicyAttachment> {
        self.attachments.iter().find(|a| &a.target == target)
    }
}

/// A policy name: 3–128 characters (Stax's bounds; AWS takes up to 128), not the name of one of
/// the service's own SCPs (an SCP of that name would be taken for the service's).
pub fn validate_policy_name(name: &str) -> Result<(), String> {
    let len = name.chars().count();
    if !(3..=128).contains(&len) {
        return Err(format!(
            "a policy name has 3 to 128 characters, {name:?} has {len}"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(format!(
            "a policy name has no control characters, {name:?} does"
        ));
    }
    if [FOUNDATION_POLICY, SUSPENSION_POLICY]
        .iter()
        .any(|reserved| reserved.eq_ignore_ascii_case(name.trim()))
    {
        return Err(format!(
            "{name:?} is the name of one of the service's own SCPs"
        ));
    }
    Ok(())
}

/// A policy description: 3–512 characters. (Stax's create schema admits 1,024, but its read
/// schema and AWS's `CreatePolicy` stop at 512: a longer one could not be stored in AWS.)
pub fn validate_policy_description(description: &str) -> Result<(), String> {
    let len = description.chars().count();
    if !(3..=512).contains(&len) {
        return Err(format!(
            "a policy description has 3 to 512 characters, this one has {len}"
        ));
    }
    Ok(())
}

/// The AWS organization (`o-…`) in an Organizations policy ARN
/// (`arn:aws:organizations::111111111111:policy/o-exampleorgid/service_control_policy/p-…`).
pub fn organization_of_policy_arn(arn: &str) -> Option<&str> {
    arn.split('/').nth(1).filter(|o| o.starts_with("o-"))
}

/// What Organizations holds of one policy's SCP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedScp {
    pub aws_id: String,
    pub arn: String,
    pub name: String,
    pub description: String,
    pub content: String,
    pub targets: BTreeSet<String>,
}

/// One repair that makes Organizations match a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    /// The SCP is missing: create it (tagged with the record's id), then attach it.
    Create,
    /// The SCP of a record still being created exists: the record takes its id.
    Adopt {
        aws_id: String,
    },
    /// Its content, name or description was changed outside the service: put the record's back.
    Restore {
        aws_id: String,
        what: Vec<&'static str>,
    },
    Attach {
        aws_id: String,
        target: String,
    },
    /// Attached outside the service to a target no attachment records.
    Detach {
        aws_id: String,
        target: String,
    },
    /// The record is deleted but its SCP is still there (a crash between the two): delete it.
    Delete {
        aws_id: String,
    },
}

impl Repair {
    /// What was found, in words, for the drift run's Logs.
    pub fn describe(&self, policy: &Policy) -> String {
        let name = &policy.name;
        match self {
            Repair::Create if policy.status == PolicyStatus::CreateInProgress => {
                format!("policy {name}: its creation was cut short, created its SCP")
            }
            Repair::Create => format!("policy {name}: its SCP was missing, created it"),
            Repair::Adopt { aws_id } => {
                format!("policy {name}: finished its creation (SCP {aws_id})")
            }
            Repair::Restore { aws_id, what } => format!(
                "policy {name}: SCP {aws_id} had its {} changed outside the service, restored",
                what.join(", ")
            ),
            Repair::Attach { aws_id, target } => format!(
                "policy {name}: SCP {aws_id} was detached from {target} outside the service, attached it again"
            ),
            Repair::Detach { aws_id, target } => format!(
                "policy {name}: SCP {aws_id} was attached to {target} outside the service, detached it"
            ),
            Repair::Delete { aws_id } => {
                format!("policy {name}: deleted, its SCP {aws_id} was left behind, deleted it")
            }
        }
    }
}

/// Two SCP documents say the same (AWS may store them reformatted).
pub fn same_content(a: &str, b: &str) -> bool {
    match (
        serde_json::from_str::<Value>(a),
        serde_json::from_str::<Value>(b),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The repairs that make Organizations match `policy` (pure): `observed` is the SCP tagged with
/// the record's id, if there is one. A policy of the service's own (`STAX`) is the foundation
/// bootstrap's to keep and gets none.
pub fn drift(policy: &Policy, observed: Option<&ObservedScp>) -> Vec<Repair> {
    if policy.owner == PolicyOwner::Stax {
        return Vec::new();
    }
    let Some(scp) = observed else {
        return match policy.status {
            PolicyStatus::Deleted => Vec::new(),
            // Attachments follow the creation (they need its id).
            PolicyStatus::Active | PolicyStatus::CreateInProgress => vec![Repair::Create],
        };
    };
    let aws_id = scp.aws_id.clone();
    if policy.status == PolicyStatus::Deleted {
        let mut repairs: Vec<Repair> = scp
            .targets
            .iter()
            .map(|target| Repair::Detach {
                aws_id: aws_id.clone(),
                target: target.clone(),
            })
            .collect();
        repairs.push(Repair::Delete { aws_id });
        return repairs;
    }
    let mut repairs = Vec::new();
    if policy.aws_id.as_deref() != Some(aws_id.as_str()) {
        repairs.push(Repair::Adopt {
            aws_id: aws_id.clone(),
        });
    }
    let mut what = Vec::new();
    if !same_content(&policy.content, &scp.content) {
        what.push("content");
    }
    if policy.name != scp.name {
        what.push("name");
    }
    if policy.description != scp.description {
        what.push("description");
    }
    if !what.is_empty() {
        repairs.push(Repair::Restore {
            aws_id: aws_id.clone(),
            what,
        });
    }
    let desired = policy.desired_targets();
    for target in desired.difference(&scp.targets) {
        repairs.push(Repair::Attach {
            aws_id: aws_id.clone(),
            target: target.clone(),
        });
    }
    for target in scp.targets.difference(&desired) {
        repairs.push(Repair::Detach {
            aws_id: aws_id.clone(),
            target: target.clone(),
        });
    }
    repairs
}

#[cfg(test)]
mod tests {
    use super::*;

    const DENY_ALL: &str =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#;

    fn policy(status: PolicyStatus, targets: &[&str]) -> Policy {
        let now = crate::timestamp::now();
        Policy {
            id: Uuid::new_v4(),
            name: "deny-all".into(),
            description: "denies everything".into(),
            content: DENY_ALL.into(),
            status,
            owner: PolicyOwner::Organisation,
            aws_id: Some("p-1".into()),
            organisation_id: None,
            tags: Tags::new(),
            attachments: targets
                .iter()
                .map(|t| PolicyAttachment {
                    id: Uuid::new_v4(),
                    target: AttachmentTarget::AccountType {
                        account_type_id: Uuid::new_v4(),
                    },
                    aws_target_id: (*t).into(),
                    created_ts: now,
                    task: None,
                })
                .collect(),
            created_ts: now,
            modified_ts: now,
            task: None,
        }
    }

    fn observed(content: &str, targets: &[&str]) -> ObservedScp {
        ObservedScp {
            aws_id: "p-1".into(),
            arn: "arn:aws:organizations::111111111111:policy/o-test/service_control_policy/p-1"
                .into(),
            name: "deny-all".into(),
            description: "denies everything".into(),
            content: content.into(),
            targets: targets.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    #[test]
    fn a_policy_as_recorded_needs_no_repair_even_reformatted() {
        let p = policy(PolicyStatus::Active, &["ou-a"]);
        let pretty =
            serde_json::to_string_pretty(&serde_json::from_str::<Value>(DENY_ALL).unwrap())
                .unwrap();
        assert_eq!(drift(&p, Some(&observed(&pretty, &["ou-a"]))), []);
    }

    #[test]
    fn what_was_changed_outside_is_put_back() {
        let p = policy(PolicyStatus::Active, &["ou-a", "111122223333"]);
        let changed = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
        let mut scp = observed(changed, &["111122223333", "ou-stranger"]);
        scp.description = "edited".into();
        assert_eq!(
            drift(&p, Some(&scp)),
            [
                Repair::Restore {
                    aws_id: "p-1".into(),
                    what: vec!["content", "description"]
                },
                Repair::Attach {
                    aws_id: "p-1".into(),
                    target: "ou-a".into()
                },
                Repair::Detach {
                    aws_id: "p-1".into(),
                    target: "ou-stranger".into()
                },
            ]
        );
    }

    #[test]
    fn a_missing_scp_is_created_and_a_half_created_one_adopted() {
        let p = policy(PolicyStatus::Active, &["ou-a"]);
        assert_eq!(drift(&p, None), [Repair::Create]);
        let mut creating = policy(PolicyStatus::CreateInProgress, &[]);
        creating.aws_id = None;
        assert_eq!(drift(&creating, None), [Repair::Create]);
        assert_eq!(
            drift(&creating, Some(&observed(DENY_ALL, &[]))),
            [Repair::Adopt {
                aws_id: "p-1".into()
            }]
        );
    }

    #[test]
    fn a_deleted_policy_left_in_aws_is_detached_and_deleted_and_one_gone_is_left_alone() {
        let p = policy(PolicyStatus::Deleted, &["ou-a"]);
        assert_eq!(
            drift(&p, Some(&observed(DENY_ALL, &["ou-a"]))),
            [
                Repair::Detach {
                    aws_id: "p-1".into(),
                    target: "ou-a".into()
                },
                Repair::Delete {
                    aws_id: "p-1".into()
                }
            ]
        );
        assert_eq!(drift(&p, None), []);
    }

    #[test]
    fn the_service_s_own_policy_is_the_bootstrap_s_to_keep() {
        let mut p = policy(PolicyStatus::Active, &["r-root"]);
        p.owner = PolicyOwner::Stax;
        assert_eq!(drift(&p, None), []);
        assert!(p.changeable().is_err());
    }

    #[test]
    fn the_organization_is_read_from_a_policy_arn() {
        assert_eq!(
            organization_of_policy_arn(
                "arn:aws:organizations::111111111111:policy/o-exampleorgid/service_control_policy/p-examplepolicyid111"
            ),
            Some("o-exampleorgid")
        );
        assert_eq!(organization_of_policy_arn("p-1"), None);
    }

    #[test]
    fn names_and_descriptions_keep_the_bounds_aws_and_stax_share() {
        assert!(validate_policy_name("deny-all").is_ok());
        assert!(validate_policy_name("ab").is_err());
        assert!(validate_policy_name(&"x".repeat(129)).is_err());
        assert!(validate_policy_name("Foundation").is_err());
        assert!(validate_policy_name("accounts-suspended").is_err());
        assert!(validate_policy_name("tab\there").is_err());
        assert!(validate_policy_description("abc").is_ok());
        assert!(validate_policy_description(&"x".repeat(513)).is_err());
    }
}
