//! Assurance concern: GuardDuty on in the account in every governed region, with the Security
//! account as its administrator and the account its member (GuardDuty is regional: so are its
//! detectors, its delegated administrator and its memberships).
//!
//! The Security account is the organization's delegated GuardDuty administrator (the foundation
//! bootstrap makes it so and gives it a detector). Members of the organization that it adds
//! are enabled at once, without an invitation.

use aws::SdkConfig;
use aws::{AssuranceError, InConcern, Provisioning};
use aws_sdk_guardduty::types::{AccountDetail, DetectorStatus};
use domain::assurance::{ConcernInput, ConcernResult};
use domain::config::{self, ConfigError};
use domain::is_aws_account_id;
use domain::regions::Regions;

pub const CONCERN: &str = "guardduty";

/// The member's relationship to its administrator, as GuardDuty reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub administrator: String,
    pub status: String,
}

/// Whether the Security account must (re-)add the account as its member.
pub fn needs_membership(current: Option<&Membership>, security: &str) -> bool {
    !current
        .is_some_and(|m| m.administrator == security && m.status.eq_ignore_ascii_case("enabled"))
}

pub struct Assurer {
    pub provisioning: Provisioning,
    pub regions: Regions,
    pub security_account_id: String,
}

impl Assurer {
    /// `PROVISIONING_ROLE_NAME`, `SECURITY_ACCOUNT_ID`.
    pub fn from_env(sdk: SdkConfig, regions: Regions) -> Result<Self, ConfigError> {
        Ok(Assurer {
            provisioning: Provisioning::from_env(sdk)?,
            regions,
            security_account_id: config::parsed("SECURITY_ACCOUNT_ID", |v| {
                if is_aws_account_id(v) {
                    Ok(v.to_owned())
                } else {
                    Err(format!("{v:?} is not a 12-digit AWS account id"))
                }
            })?,
        })
    }
}

/// The account's detector, created or enabled as needed.
async fn ensure_detector(
    gd: &aws_sdk_guardduty::Client,
    changes: &mut Vec<String>,
) -> Result<String, AssuranceError> {
    let listed = gd.list_detectors().send().await.concern(CONCERN)?;
    let Some(id) = listed.detector_ids().first().cloned() else {
        let created = gd
            .create_detector()
            .enable(true)
            .send()
            .await
            .concern(CONCERN)?;
        changes.push("created and enabled a GuardDuty detector".to_owned());
        return created.detector_id.ok_or_else(|| AssuranceError::Aws {
            concern: CONCERN,
            message: "CreateDetector returned no id".into(),
        });
    };
    let detector = gd
        .get_detector()
        .detector_id(&id)
        .send()
        .await
        .concern(CONCERN)?;
    if detector.status() != Some(&DetectorStatus::Enabled) {
        gd.update_detector()
            .detector_id(&id)
            .enable(true)
            .send()
            .await
            .concern(CONCERN)?;
        changes.push(format!("enabled GuardDuty detector {id}"));
    }
    Ok(id)
}

pub async fn handle(a: &Assurer, input: ConcernInput) -> Result<ConcernResult, AssuranceError> {
    let account = &input.aws_account_id;
    let target = a
        .provisioning
        .into_account(account, aws::Session::AssureGuardDuty)
        .await?;
    let input = &input;
    let changes = aws::in_every_region(&target, &a.regions, |target, region| async move {
        assure_in_region(a, input, &target, &region).await
    })
    .await?;
    Ok(ConcernResult::new(CONCERN, changes))
}

/// The detector and the membership in the region `target` acts in.
async fn assure_in_region(
    a: &Assurer,
    input: &ConcernInput,
    target: &SdkConfig,
    region: &str,
) -> Result<Vec<String>, AssuranceError> {
    let account = &input.aws_account_id;
    let gd = aws_sdk_guardduty::Client::new(target);
    let mut changes = Vec::new();
    let detector = ensure_detector(&gd, &mut changes).await?;
    if *account == a.security_account_id {
        // The administrator is not a member of itself.
        return Ok(changes);
    }

    let current = gd
        .get_administrator_account()
        .detector_id(&detector)
        .send()
        .await
        .concern(CONCERN)?
        .administrator
        .map(|admin| Membership {
            administrator: admin.account_id.unwrap_or_default(),
            status: admin.relationship_status.unwrap_or_default(),
        });
    if needs_membership(current.as_ref(), &a.security_account_id) {
        let email = input
            .email
            .clone()
            .ok_or_else(|| AssuranceError::Prerequisite {
                concern: CONCERN,
                message: format!(
                    "AWS account {account} has no recorded email; GuardDuty membership needs it"
                ),
            })?;
        let security = a
            .provisioning
            .into_account(&a.security_account_id, aws::Session::GuardDutyAdministrator)
            .await?;
        let admin = aws_sdk_guardduty::Client::new(&aws::in_region(&security, region));
        let admin_detector = admin.list_detectors().send().await.concern(CONCERN)?.detector_ids().first().cloned().ok_or_else(|| {
            AssuranceError::Prerequisite {
                concern: CONCERN,
                message: format!(
                    "the Security account {} has no GuardDuty detector; run the foundation bootstrap",
                    a.security_account_id
                ),
            }
        })?;
        let detail = AccountDetail::builder()
            .account_id(account)
            .email(email)
            .build();
        let out = admin
            .create_members()
            .detector_id(&admin_detector)
            .account_details(detail)
            .send()
            .await
            .concern(CONCERN)?;
        if let Some(refused) = out.unprocessed_accounts().first() {
            return Err(AssuranceError::Aws {
                concern: CONCERN,
                message: format!(
                    "the Security account could not add {account}: {}",
                    refused.result().unwrap_or("refused")
                ),
            });
        }
        changes.push(format!(
            "made the account a GuardDuty member of the Security account {}",
            a.security_account_id
        ));
        let now = gd
            .get_administrator_account()
            .detector_id(&detector)
            .send()
            .await
            .concern(CONCERN)?;
        let admin_now = now
            .administrator
            .and_then(|x| x.account_id)
            .unwrap_or_default();
        if admin_now != a.security_account_id {
            return Err(AssuranceError::Prerequisite {
                concern: CONCERN,
                message: format!(
                    "after CreateMembers the account's GuardDuty administrator is {admin_now:?}, not the Security account {}; is the Security account the organization's delegated GuardDuty administrator?",
                    a.security_account_id
                ),
            });
        }
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn membership_is_needed_unless_enabled_under_the_security_account() {
        let security = "111111111111";
        assert!(needs_membership(None, security));
        let enabled = Membership {
            administrator: security.into(),
            status: "Enabled".into(),
        };
        assert!(!needs_membership(Some(&enabled), security));
        let invited = Membership {
            status: "Invited".into(),
            ..enabled.clone()
        };
        assert!(needs_membership(Some(&invited), security));
        let elsewhere = Membership {
            administrator: "222222222222".into(),
            ..enabled
        };
        assert!(needs_membership(Some(&elsewhere), security));
    }
}
