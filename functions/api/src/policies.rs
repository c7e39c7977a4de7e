//! `GET /20190206/accounts/{account_id}/policies` (Stax `accounts.ReadAccountPolicyAttachments`):
//! the SCPs in force on an account and why — attached to the account itself, to an OU above it
//! (its Account Type's, whose Stax id is the type's), or to the root (the mandatory `foundation`
//! policy, and any other the organization put there). Read from Organizations, not from the
//! table: what is in force is what AWS enforces.

use std::future::Future;

use aws::OrganizationsError;
use std::collections::BTreeSet;

use domain::Account;
use domain::policies::{Policy, PolicyStatus};
use domain::policy::policy_uuid;
use edge::{ApiError, ApiRequest};
use serde_json::{Value, json};

/// A policy attached to one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    pub aws_policy_id: String,
    pub name: String,
    /// It carries the service's tag.
    pub managed: bool,
}

/// One level of the account's place in the organization: the account, an OU, the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Level {
    Account,
    OrganizationalUnit(String),
    Root(String),
}

/// What reading the policies in force asks of Organizations.
pub trait PolicyReads: Send + Sync {
    /// The account's parents, nearest first, ending with the root.
    fn ancestors(
        &self,
        aws_account_id: &str,
    ) -> impl Future<Output = Result<Vec<Level>, OrganizationsError>> + Send;
    /// The SCPs attached directly to `target` (an account, OU or root id).
    fn attached(
        &self,
        target: &str,
    ) -> impl Future<Output = Result<Vec<Attached>, OrganizationsError>> + Send;
    /// The service's own SCPs on the root (the foundation policy), as read-only policies.
    fn service_policies(
        &self,
    ) -> impl Future<Output = Result<Vec<Policy>, OrganizationsError>> + Send;
}

/// Attachments of the policies the service records carry the records' ids (the policy's and
/// the attachment's), so that they can be detached by the id shown (pure).
pub fn with_record_ids(attachments: &mut [Value], records: &[Policy]) {
    for a in attachments.iter_mut() {
        let (Some(aws_policy), Some(target)) = (
            a["AwsPolicyId"].as_str().map(str::to_owned),
            a["AwsTargetId"].as_str().map(str::to_owned),
        ) else {
            continue;
        };
        let Some(p) = records
            .iter()
            .find(|p| p.aws_id.as_ref() == Some(&aws_policy) && p.status != PolicyStatus::Deleted)
        else {
            continue;
        };
        a["PolicyId"] = json!(p.id);
        if let Some(recorded) = p.attachments.iter().find(|r| r.aws_target_id == target) {
            a["Id"] = json!(recorded.id);
        }
    }
}

/// `GET /20190206/policies?status=ACTIVE,DELETED` (the 2023 document's filter, whose default
/// is `ACTIVE,DELETED`): the statuses asked for.
pub fn parse_statuses(req: &ApiRequest) -> Result<Option<BTreeSet<PolicyStatus>>, ApiError> {
    req.only_query(&["status"])?;
    let Some((_, raw)) = req.query_pairs().find(|(k, _)| *k == "status") else {
        return Ok(Some(BTreeSet::from([
            PolicyStatus::Active,
            PolicyStatus::Deleted,
        ])));
    };
    raw.split(',')
        .map(|s| {
            s.trim().parse::<PolicyStatus>().map_err(|_| {
                ApiError::bad_request(format!(
                    "status: {s:?} is not a policy status (ACTIVE, DELETED, CREATE_IN_PROGRESS)"
                ))
            })
        })
        .collect::<Result<BTreeSet<_>, _>>()
        .map(Some)
}

/// The Stax `PolicyAttachment`s of the SCPs at each level (pure). A root policy the service
/// owns is `STAX_MANDATORY` (the foundation policy), any other root policy
/// `STAX_ORGANISATION`; an OU's `ORGANISATIONAL_UNIT`, with the Account Type's id when the OU is
/// the account's type's; the account's own `ACCOUNT`. Extensions name the policy in AWS.
pub fn attachments(account: &Account, levels: &[(Level, String, Vec<Attached>)]) -> Vec<Value> {
    let mut out = Vec::new();
    for (level, target, policies) in levels {
        for p in policies {
            let (kind, ou, account_id) = match level {
                Level::Account => ("ACCOUNT", None, Some(account.id)),
                Level::OrganizationalUnit(ou) => (
                    "ORGANISATIONAL_UNIT",
                    account
                        .account_type
                        .filter(|_| account.orgs_ou_id.as_deref() == Some(ou.as_str())),
                    None,
                ),
                Level::Root(_) if p.managed => ("STAX_MANDATORY", None, None),
                Level::Root(_) => ("STAX_ORGANISATION", None, None),
            };
            out.push(json!({
                "Id": domain::policy::attachment_uuid(&p.aws_policy_id, target),
                "OrganisationId": account.organisation_id,
                "Status": "ACTIVE",
                "PolicyId": policy_uuid(&p.aws_policy_id),
                "OrganisationalUnitId": ou,
                "AccountId": account_id,
                "PolicyAttachmentType": kind,
                "PolicyName": p.name,
                "AwsPolicyId": p.aws_policy_id,
                "AwsTargetId": target,
            }));
        }
    }
    out
}

/// Reads the levels of `aws_account_id` and what is attached at each.
pub async fn in_force<O: PolicyReads>(
    organizations: &O,
    account: &Account,
) -> Result<Vec<Value>, OrganizationsError> {
    // SCPs do not apply to the management account: none is in force there.
    if account.account_role == domain::AccountRole::Management {
        return Ok(Vec::new());
    }
    let Some(aws_account_id) = &account.aws_account_id else {
        return Ok(Vec::new());
    };
    let mut levels = vec![(Level::Account, aws_account_id.clone())];
    for level in organizations.ancestors(aws_account_id).await? {
        let target = match &level {
            Level::OrganizationalUnit(id) | Level::Root(id) => id.clone(),
            Level::Account => continue,
        };
        levels.push((level, target));
    }
    let mut read = Vec::with_capacity(levels.len());
    for (level, target) in levels {
        let policies = organizations.attached(&target).await?;
        read.push((level, target, policies));
    }
    Ok(attachments(account, &read))
}

impl PolicyReads for aws_sdk_organizations::Client {
    async fn ancestors(&self, aws_account_id: &str) -> Result<Vec<Level>, OrganizationsError> {
        let mut child = aws_account_id.to_owned();
        let mut levels = Vec::new();
        // OUs nest at most five deep under the root.
        for _ in 0..6 {
            let out = self.list_parents().child_id(&child).send().await?;
            let parent = out
                .parents()
                .first()
                .ok_or_else(|| OrganizationsError::new(format!("{child} has no parent")))?;
            let id = parent.id().unwrap_or_default().to_owned();
            if parent.r#type() == Some(&aws_sdk_organizations::types::ParentType::Root) {
                levels.push(Level::Root(id));
                return Ok(levels);
            }
            levels.push(Level::OrganizationalUnit(id.clone()));
            child = id;
        }
        Err(OrganizationsError::new(format!(
            "no root above {aws_account_id} within six levels"
        )))
    }

    async fn attached(&self, target: &str) -> Result<Vec<Attached>, OrganizationsError> {
        let mut attached = Vec::new();
        for p in aws::organizations::scps_on(self, target).await? {
            let id = p.id().unwrap_or_default().to_owned();
            // AWS's own FullAWSAccess carries no tags to read.
            let managed = !p.aws_managed()
                && aws::organizations::is_managed(
                    self.list_tags_for_resource()
                        .resource_id(&id)
                        .send()
                        .await?
                        .tags(),
                );
            attached.push(Attached {
                aws_policy_id: id,
                name: p.name().unwrap_or_default().to_owned(),
                managed,
            });
        }
        Ok(attached)
    }

    async fn service_policies(&self) -> Result<Vec<Policy>, OrganizationsError> {
        aws::organizations::service_policies(self).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::AccountStatus;
    use uuid::Uuid;

    fn attached(id: &str, name: &str, managed: bool) -> Attached {
        Attached {
            aws_policy_id: id.into(),
            name: name.into(),
            managed,
        }
    }

    #[test]
    fn each_policy_says_where_it_is_attached() {
        let mut account =
            domain::fixtures::account_in(AccountStatus::Suspended, "bakery", Some("444455556666"));
        let production = Uuid::new_v4();
        account.account_type = Some(production);
        account.orgs_ou_id = Some("ou-root-production".into());
        let levels = [
            (
                Level::Account,
                "444455556666".to_owned(),
                vec![attached("p-suspended", "accounts-suspended", true)],
            ),
            (
                Level::OrganizationalUnit("ou-root-production".into()),
                "ou-root-production".to_owned(),
                vec![attached("p-prod", "production-guardrails", false)],
            ),
            (
                Level::OrganizationalUnit("ou-root-legacy".into()),
                "ou-root-legacy".to_owned(),
                vec![attached("p-legacy", "legacy", false)],
            ),
            (
                Level::Root("r-root".into()),
                "r-root".to_owned(),
                vec![
                    attached("p-foundation", "foundation", true),
                    attached("p-FullAWSAccess", "FullAWSAccess", false),
                ],
            ),
        ];
        let found = attachments(&account, &levels);
        let kinds: Vec<(&str, &str)> = found
            .iter()
            .map(|a| {
                (
                    a["PolicyName"].as_str().unwrap(),
                    a["PolicyAttachmentType"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("accounts-suspended", "ACCOUNT"),
                ("production-guardrails", "ORGANISATIONAL_UNIT"),
                ("legacy", "ORGANISATIONAL_UNIT"),
                ("foundation", "STAX_MANDATORY"),
                ("FullAWSAccess", "STAX_ORGANISATION"),
            ]
        );
        assert_eq!(found[0]["AccountId"], account.id.to_string());
        assert_eq!(found[1]["OrganisationalUnitId"], production.to_string());
        assert!(
            found[2]["OrganisationalUnitId"].is_null(),
            "not a type's OU"
        );
        assert_eq!(
            found[3]["PolicyId"],
            policy_uuid("p-foundation").to_string()
        );
        assert_eq!(
            attachments(&account, &levels)[3]["Id"],
            found[3]["Id"],
            "ids are stable"
        );
    }
}
