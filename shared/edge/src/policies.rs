//! The Stax Policies API's request and response shapes: `policies.CreatePolicy`,
//! `UpdatePolicy`, `AttachPolicy`, the 2023 `accounts.UpdateAccountTypePolicies`, and the
//! `Policy` and `PolicyAttachment` views.

use domain::policies::{AttachmentTarget, Policy, PolicyAttachment, PolicyOwner};
use domain::{AccountTypeRef, Tags, timestamp};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::ApiError;
use crate::stax::parse_uuid;

fn body<'a>(body: Option<&'a str>, schema: &str) -> Result<&'a str, ApiError> {
    body.filter(|b| !b.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("the request needs a JSON body ({schema})")))
}

fn parse<T: serde::de::DeserializeOwned>(raw: &str, schema: &str) -> Result<T, ApiError> {
    serde_json::from_str(raw)
        .map_err(|e| ApiError::bad_request(format!("the body is not a {schema}: {e}")))
}

/// A validated `policies.CreatePolicy` (every field) or `policies.UpdatePolicy` (any of them)
/// body. The content is checked as AWS checks an SCP ([`domain::scp::validate_scp`]) before
/// anything is written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicyRequest {
    pub name: Option<String>,
    pub description: Option<String>,
    pub content: Option<String>,
    pub tags: Option<Tags>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyBody {
    #[serde(rename = "Name", default)]
    name: Option<String>,
    #[serde(rename = "Description", default)]
    description: Option<String>,
    #[serde(rename = "Policy", default)]
    policy: Option<String>,
    #[serde(rename = "Tags", default)]
    tags: Option<Tags>,
}

impl PolicyRequest {
    pub fn parse_create(raw: Option<&str>) -> Result<Self, ApiError> {
        let schema = "policies.CreatePolicy";
        let r = Self::parse(raw, schema)?;
        for (field, given) in [
            ("Name", r.name.is_some()),
            ("Description", r.description.is_some()),
            ("Policy", r.content.is_some()),
        ] {
            if !given {
                return Err(ApiError::bad_request(format!(
                    "{field}: required by {schema}"
                )));
            }
        }
        Ok(r)
    }

    pub fn parse_update(raw: Option<&str>) -> Result<Self, ApiError> {
        let r = Self::parse(raw, "policies.UpdatePolicy")?;
        if r == PolicyRequest::default() {
            return Err(ApiError::bad_request(
                "give at least one of Name, Description, Policy and Tags",
            ));
        }
        Ok(r)
    }

    fn parse(raw: Option<&str>, schema: &str) -> Result<Self, ApiError> {
        let b: PolicyBody = parse(body(raw, schema)?, schema)?;
        if let Some(name) = &b.name {
            domain::policies::validate_policy_name(name)
                .map_err(|e| ApiError::bad_request(format!("Name: {e}")))?;
        }
        if let Some(description) = &b.description {
            domain::policies::validate_policy_description(description)
                .map_err(|e| ApiError::bad_request(format!("Description: {e}")))?;
        }
        if let Some(content) = &b.policy {
            domain::scp::validate_scp(content)
                .map_err(|e| ApiError::bad_request(format!("Policy: {e}")))?;
        }
        if let Some(tags) = &b.tags {
            domain::validate_tags(tags).map_err(|e| ApiError::bad_request(format!("Tags: {e}")))?;
        }
        Ok(PolicyRequest {
            name: b.name,
            description: b.description,
            content: b.policy,
            tags: b.tags,
        })
    }
}

/// Where a `policies.AttachPolicy` body puts the policy. Stax's `OrganisationalUnitId` is an
/// Account Type's id here (each type is one OU, and the service shows the type's id as its OU's
/// Stax id); `AccountTypeId` says the same by its own name (an extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachTo {
    Account(Uuid),
    AccountType(Uuid),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AttachBody {
    #[serde(rename = "AccountId", default)]
    account_id: Option<String>,
    #[serde(rename = "OrganisationalUnitId", default)]
    organisational_unit_id: Option<String>,
    #[serde(rename = "AccountTypeId", default)]
    account_type_id: Option<String>,
}

impl AttachTo {
    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let schema = "policies.AttachPolicy";
        let b: AttachBody = parse(body(raw, schema)?, schema)?;
        let uuid = |field: &str, v: &str| {
            parse_uuid(v).map_err(|e| ApiError::bad_request(format!("{field}: {e}")))
        };
        match (b.account_id, b.organisational_unit_id, b.account_type_id) {
            (Some(a), None, None) => Ok(AttachTo::Account(uuid("AccountId", &a)?)),
            (None, Some(ou), None) => Ok(AttachTo::AccountType(uuid("OrganisationalUnitId", &ou)?)),
            (None, None, Some(t)) => Ok(AttachTo::AccountType(uuid("AccountTypeId", &t)?)),
            _ => Err(ApiError::bad_request(
                "give one of AccountId, OrganisationalUnitId (an Account Type's id) and AccountTypeId",
            )),
        }
    }

    pub fn target(self) -> AttachmentTarget {
        match self {
            AttachTo::Account(account_id) => AttachmentTarget::Account { account_id },
            AttachTo::AccountType(account_type_id) => {
                AttachmentTarget::AccountType { account_type_id }
            }
        }
    }
}

/// A validated `accounts.UpdateAccountTypePolicies` body: (type, policy) pairs to attach and to
/// detach, repeats dropped ("duplicate policy additions or removals are ignored").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateAccountTypePoliciesRequest {
    pub add: Vec<(AccountTypeRef, Uuid)>,
    pub remove: Vec<(AccountTypeRef, Uuid)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TypePoliciesBody {
    #[serde(rename = "AddPolicies", default)]
    add: Vec<TypePolicyBody>,
    #[serde(rename = "RemovePolicies", default)]
    remove: Vec<TypePolicyBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TypePolicyBody {
    #[serde(rename = "AccountTypeId", default)]
    account_type_id: Option<String>,
    #[serde(rename = "AccountTypeName", default)]
    account_type_name: Option<String>,
    #[serde(rename = "PolicyId")]
    policy_id: String,
}

impl UpdateAccountTypePoliciesRequest {
    /// At most this many changes in one request (each is one or two Organizations calls within
    /// the request's time).
    pub const MAX_CHANGES: usize = 20;

    pub fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let schema = "accounts.UpdateAccountTypePolicies";
        let b: TypePoliciesBody = parse(body(raw, schema)?, schema)?;
        let count = b.add.len() + b.remove.len();
        if count == 0 || count > Self::MAX_CHANGES {
            return Err(ApiError::bad_request(format!(
                "AddPolicies and RemovePolicies: 1 to {} changes in all, not {count}",
                Self::MAX_CHANGES
            )));
        }
        let pairs = |list: Vec<TypePolicyBody>, field: &str| {
            let mut out: Vec<(AccountTypeRef, Uuid)> = Vec::new();
            for (i, m) in list.into_iter().enumerate() {
                let at = |name: &str| format!("{field}[{i}].{name}");
                let policy = parse_uuid(&m.policy_id)
                    .map_err(|e| ApiError::bad_request(format!("{}: {e}", at("PolicyId"))))?;
                let account_type = match (m.account_type_id, m.account_type_name) {
                    (Some(id), None) => AccountTypeRef::Id(parse_uuid(&id).map_err(|e| {
                        ApiError::bad_request(format!("{}: {e}", at("AccountTypeId")))
                    })?),
                    (None, Some(name)) => {
                        domain::validate_account_type_name(&name).map_err(|e| {
                            ApiError::bad_request(format!("{}: {e}", at("AccountTypeName")))
                        })?;
                        AccountTypeRef::Name(name)
                    }
                    _ => {
                        return Err(ApiError::bad_request(format!(
                            "{field}[{i}]: give one of AccountTypeId and AccountTypeName"
                        )));
                    }
                };
                if !out.contains(&(account_type.clone(), policy)) {
                    out.push((account_type, policy));
                }
            }
            Ok(out)
        };
        let add = pairs(b.add, "AddPolicies")?;
        let remove = pairs(b.remove, "RemovePolicies")?;
        if let Some(both) = add.iter().find(|p| remove.contains(p)) {
            return Err(ApiError::bad_request(format!(
                "policy {} is both added to and removed from one Account Type",
                both.1
            )));
        }
        Ok(UpdateAccountTypePoliciesRequest { add, remove })
    }
}

/// A policy as Stax's `Policy` shows it.
pub fn policy_view(p: &Policy) -> Value {
    let organisation_id = p.organisation_id;
    let content: Value = serde_json::from_str(&p.content).unwrap_or(Value::Null);
    // The service's own policy is the organisation-wide, mandatory one.
    let organisation_attachment = (p.owner == PolicyOwner::Stax).then(|| {
        json!({
            "Id": p.attachments.first().map_or(p.id, |a| a.id),
            "OrganisationId": organisation_id,
            "PolicyId": p.id,
            "Status": "ACTIVE",
            "CreatedTS": timestamp::format(&p.created_ts),
            "CreatedBy": null,
            "ModifiedTS": timestamp::format(&p.modified_ts),
        })
    });
    json!({
        "Id": p.id,
        "OrganisationId": organisation_id,
        "Status": p.status,
        "Name": p.name,
        "Description": p.description,
        "PolicyType": "SCP",
        "Content": content,
        "PolicyOwner": p.owner,
        "AwsId": p.aws_id,
        "ExternalResource": false,
        "OrganisationAttachment": organisation_attachment,
        "CreatedTS": timestamp::format(&p.created_ts),
        "CreatedBy": null,
        "ModifiedTS": timestamp::format(&p.modified_ts),
        "Tags": p.tags,
        "UserTaskId": p.task,
    })
}

/// One attachment as Stax's `PolicyAttachment` shows it. An Account Type's attachment names the
/// type as its `OrganisationalUnitId` (and, as extensions, `AccountTypeId` and the OU in AWS).
pub fn attachment_view(p: &Policy, a: &PolicyAttachment) -> Value {
    let organisation_id = p.organisation_id;
    let (kind, ou, account, account_type) = match a.target {
        AttachmentTarget::Account { account_id } => ("ACCOUNT", None, Some(account_id), None),
        AttachmentTarget::AccountType { account_type_id } => (
            "ORGANISATIONAL_UNIT",
            Some(account_type_id),
            None,
            Some(account_type_id),
        ),
        AttachmentTarget::Root => ("STAX_MANDATORY", None, None, None),
    };
    json!({
        "Id": a.id,
        "OrganisationId": organisation_id,
        "Status": "ACTIVE",
        "PolicyId": p.id,
        "OrganisationalUnitId": ou,
        "AccountId": account,
        "PolicyAttachmentType": kind,
        "CreatedTS": timestamp::format(&a.created_ts),
        "CreatedBy": null,
        "ModifiedTS": timestamp::format(&a.created_ts),
        "UserTaskId": a.task,
        "AccountTypeId": account_type,
        "AwsTargetId": a.aws_target_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DENY_ALL: &str = r#"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Deny\",\"Action\":\"*\",\"Resource\":\"*\"}]}"#;

    #[test]
    fn a_create_needs_its_three_fields_and_valid_content() {
        let ok = format!(
            r#"{{"Name": "deny-all", "Description": "denies all", "Policy": "{DENY_ALL}", "Tags": {{"team": "platform"}}}}"#
        );
        let r = PolicyRequest::parse_create(Some(&ok)).unwrap();
        assert_eq!(r.name.as_deref(), Some("deny-all"));
        assert!(r.content.unwrap().contains("Deny"));
        let cause = |body: &str| PolicyRequest::parse_create(Some(body)).unwrap_err().cause;
        assert!(
            cause(r#"{"Name": "deny-all", "Description": "denies all"}"#)
                .starts_with("Policy: required")
        );
        assert!(
            cause(r#"{"Name": "deny-all", "Description": "denies all", "Policy": "{not json"}"#)
                .starts_with("Policy: ")
        );
        let principal = r#"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"*\"}]}"#;
        assert!(
            cause(&format!(
                r#"{{"Name": "deny-all", "Description": "denies all", "Policy": "{principal}"}}"#
            ))
            .contains("Principal")
        );
        assert!(
            cause(r#"{"Name": "x", "Description": "denies all", "Policy": "{}"}"#)
                .starts_with("Name: ")
        );
        assert!(cause(r#"{"Name": "deny-all", "Extra": 1}"#).contains("unknown field"));
        assert!(PolicyRequest::parse_update(Some("{}")).is_err());
        assert_eq!(
            PolicyRequest::parse_update(Some(r#"{"Description": "now this"}"#))
                .unwrap()
                .description
                .as_deref(),
            Some("now this")
        );
    }

    #[test]
    fn an_attachment_names_one_target_and_an_ou_is_a_type() {
        let id = Uuid::new_v4();
        assert_eq!(
            AttachTo::parse(Some(&format!(r#"{{"AccountId": "{id}"}}"#))).unwrap(),
            AttachTo::Account(id)
        );
        assert_eq!(
            AttachTo::parse(Some(&format!(r#"{{"OrganisationalUnitId": "{id}"}}"#))).unwrap(),
            AttachTo::AccountType(id)
        );
        assert_eq!(
            AttachTo::parse(Some(&format!(r#"{{"AccountTypeId": "{id}"}}"#))).unwrap(),
            AttachTo::AccountType(id)
        );
        assert!(
            AttachTo::parse(Some(&format!(
                r#"{{"AccountId": "{id}", "AccountTypeId": "{id}"}}"#
            )))
            .is_err()
        );
        assert!(AttachTo::parse(Some("{}")).is_err());
    }

    #[test]
    fn type_policy_changes_drop_repeats_and_refuse_contradictions() {
        let (t, p) = (Uuid::new_v4(), Uuid::new_v4());
        let body = format!(
            r#"{{"AddPolicies": [{{"AccountTypeId": "{t}", "PolicyId": "{p}"}}, {{"AccountTypeId": "{t}", "PolicyId": "{p}"}}],
                "RemovePolicies": [{{"AccountTypeName": "Sandbox", "PolicyId": "{p}"}}]}}"#
        );
        let r = UpdateAccountTypePoliciesRequest::parse(Some(&body)).unwrap();
        assert_eq!(r.add, [(AccountTypeRef::Id(t), p)]);
        assert_eq!(r.remove, [(AccountTypeRef::Name("Sandbox".into()), p)]);
        let both = format!(
            r#"{{"AddPolicies": [{{"AccountTypeId": "{t}", "PolicyId": "{p}"}}], "RemovePolicies": [{{"AccountTypeId": "{t}", "PolicyId": "{p}"}}]}}"#
        );
        assert!(UpdateAccountTypePoliciesRequest::parse(Some(&both)).is_err());
        assert!(UpdateAccountTypePoliciesRequest::parse(Some("{}")).is_err());
    }
}
