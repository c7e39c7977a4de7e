//! Foundation bootstrap: the Security account is the organization's delegated GuardDuty
//! administrator and has a detector in every governed region (both are regional), so Account
//! Assurance can make every account its member there.

use aws::SdkConfig;
use aws::{AssuranceError, InConcern, Provisioning};
use domain::assurance::ConcernResult;
use domain::config::{self, ConfigError};
use domain::regions::Regions;
use serde::Deserialize;

pub const CONCERN: &str = "guardduty administrator";

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Input {}

pub struct Bootstrap {
    pub provisioning: Provisioning,
    pub regions: Regions,
    pub security_account_id: String,
}

impl Bootstrap {
    /// `PROVISIONING_ROLE_NAME`, `SECURITY_ACCOUNT_ID`.
    pub fn from_env(sdk: SdkConfig, regions: Regions) -> Result<Self, ConfigError> {
        Ok(Bootstrap {
            provisioning: Provisioning::from_env(sdk)?,
            regions,
            security_account_id: config::required("SECURITY_ACCOUNT_ID")?,
        })
    }
}

/// Whether GuardDuty administration must still be delegated to the Security account, given the
/// delegated administrators AWS lists. An organization has one; when it is another account,
/// delegating would fail (and silently taking it over would cut that account's team off), so
/// the bootstrap stops and says what to do.
pub fn delegation_needed(admins: &[&str], security: &str) -> Result<bool, AssuranceError> {
    if admins.contains(&security) {
        return Ok(false);
    }
    match admins.first() {
        None => Ok(true),
        Some(other) => Err(AssuranceError::Prerequisite {
            concern: CONCERN,
            message: format!(
                "GuardDuty is administered by AWS account {other}, not the Security account \
                 {security}: remove that delegation (DisableOrganizationAdminAccount) and run \
                 the bootstrap again"
            ),
        }),
    }
}

pub async fn handle(b: &Bootstrap, _: Input) -> Result<ConcernResult, AssuranceError> {
    let security = b
        .provisioning
        .into_account(&b.security_account_id, aws::Session::FoundationGuardDuty)
        .await?;
    let security = &security;
    // The delegation is made from the management account, where this function runs.
    let changes = aws::in_every_region(&b.provisioning.sdk, &b.regions, |management, region| {
        let security = aws::in_region(security, &region);
        async move { bootstrap_in_region(b, &management, &security).await }
    })
    .await?;
    Ok(ConcernResult::new(CONCERN, changes))
}

/// The delegation and the Security account's detector in one region: `management` and
/// `security` act there.
async fn bootstrap_in_region(
    b: &Bootstrap,
    management: &SdkConfig,
    security: &SdkConfig,
) -> Result<Vec<String>, AssuranceError> {
    let mut changes = Vec::new();
    let management = aws_sdk_guardduty::Client::new(management);
    let admins = management
        .list_organization_admin_accounts()
        .send()
        .await
        .concern(CONCERN)?;
    let listed: Vec<&str> = admins
        .admin_accounts()
        .iter()
        .filter_map(|a| a.admin_account_id())
        .collect();
    if delegation_needed(&listed, &b.security_account_id)? {
        management
            .enable_organization_admin_account()
            .admin_account_id(&b.security_account_id)
            .send()
            .await
            .concern(CONCERN)?;
        changes.push(format!(
            "made the Security account {} the organization's GuardDuty administrator",
            b.security_account_id
        ));
    }
    let gd = aws_sdk_guardduty::Client::new(security);
    if gd
        .list_detectors()
        .send()
        .await
        .concern(CONCERN)?
        .detector_ids()
        .is_empty()
    {
        gd.create_detector()
            .enable(true)
            .send()
            .await
            .concern(CONCERN)?;
        changes.push("created the Security account's GuardDuty detector".to_owned());
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delegates_once_and_never_takes_over_another_administrator() {
        let security = "111111111111";
        assert!(delegation_needed(&[], security).unwrap());
        assert!(!delegation_needed(&[security], security).unwrap());
        let e = delegation_needed(&["222222222222"], security).unwrap_err();
        assert_eq!(
            domain::Named::name(&e),
            domain::ErrorName::AssurancePrerequisiteMissing
        );
        assert!(
            e.to_string()
                .contains("administered by AWS account 222222222222, not the Security account"),
            "{e}"
        );
    }
}
