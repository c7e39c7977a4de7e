//! Assurance concern: the account-level defaults.
//!
//! - S3 Block Public Access on for the whole account (all four settings);
//! - EBS encryption by default;
//! - an IAM password policy at least as strict as CIS AWS Foundations 1.8 (14 characters) and 1.9
//!   (no reuse of the last 24), with every character class required (a stricter policy is kept);
//! - the IAM account alias the account record asks for;
//! - the provisioning role's trust policy: the management account alone (the foundation SCP
//!   exempts the role by name, so a role that trusted anyone else would give them a principal
//!   the SCP spares). A drifted one is replaced; discovery and onboarding refuse an account
//!   whose role trusts more, so this repairs only drift after onboarding;
//! - a support role (CIS 1.17): `accounts-support` with AWSSupportAccess, assumable from the
//!   management account alone (the foundation SCP keeps others from deleting it, detaching its
//!   policy or changing its trust).

use aws::SdkConfig;
use aws::{AssuranceError, InConcern, Provisioning};
use aws_sdk_iam::types::PasswordPolicy;
use aws_sdk_s3control::types::PublicAccessBlockConfiguration;
use domain::assurance::{ConcernInput, ConcernResult};
use domain::config::ConfigError;
use domain::regions::Regions;

pub const CONCERN: &str = "defaults";
pub const MIN_PASSWORD_LENGTH: i32 = 14;
pub const PASSWORD_REUSE_PREVENTION: i32 = 24;

/// The password policy settings the baseline checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    pub min_length: i32,
    pub reuse_prevention: i32,
    pub symbols: bool,
    pub numbers: bool,
    pub uppercase: bool,
    pub lowercase: bool,
}

/// Does the policy meet CIS 1.8/1.9 and the character-class rules?
pub fn meets_baseline(p: &Policy) -> bool {
    p.min_length >= MIN_PASSWORD_LENGTH
        && p.reuse_prevention >= PASSWORD_REUSE_PREVENTION
        && p.symbols
        && p.numbers
        && p.uppercase
        && p.lowercase
}

/// The policy to set: the baseline, keeping anything the current one does more strictly.
pub fn strengthened(current: Option<&Policy>) -> Policy {
    let c = current.copied().unwrap_or_default();
    Policy {
        min_length: c.min_length.max(MIN_PASSWORD_LENGTH),
        reuse_prevention: c.reuse_prevention.max(PASSWORD_REUSE_PREVENTION),
        symbols: true,
        numbers: true,
        uppercase: true,
        lowercase: true,
    }
}

pub struct Assurer {
    pub provisioning: Provisioning,
    pub regions: Regions,
    /// The only account the provisioning role may trust.
    pub management_account_id: String,
}

impl Assurer {
    /// `PROVISIONING_ROLE_NAME`, `MANAGEMENT_ACCOUNT_ID`.
    pub fn from_env(sdk: SdkConfig, regions: Regions) -> Result<Self, ConfigError> {
        Ok(Assurer {
            provisioning: Provisioning::from_env(sdk)?,
            regions,
            management_account_id: domain::config::required("MANAGEMENT_ACCOUNT_ID")?,
        })
    }
}

fn policy_of(p: &PasswordPolicy) -> Policy {
    Policy {
        min_length: p.minimum_password_length().unwrap_or(0),
        reuse_prevention: p.password_reuse_prevention().unwrap_or(0),
        symbols: p.require_symbols(),
        numbers: p.require_numbers(),
        uppercase: p.require_uppercase_characters(),
        lowercase: p.require_lowercase_characters(),
    }
}

pub async fn handle(a: &Assurer, input: ConcernInput) -> Result<ConcernResult, AssuranceError> {
    let account = &input.aws_account_id;
    let target = a
        .provisioning
        .into_account(account, aws::Session::AssureDefaults)
        .await?;
    let s3 = aws_sdk_s3control::Client::new(&target);
    let iam = aws_sdk_iam::Client::new(&target);
    // EC2's account defaults are regional.
    let regional = aws::in_every_region(&target, &a.regions, |target, _| async move {
        let ec2 = aws_sdk_ec2::Client::new(&target);
        let changes = [
            assure_ebs_encryption(&ec2).await?,
            assure_imdsv2_default(&ec2).await?,
            assure_access_analyzer(&aws_sdk_accessanalyzer::Client::new(&target)).await?,
        ];
        Ok(changes.into_iter().flatten().collect())
    })
    .await?;
    let changes = [
        assure_public_access_block(&s3, account).await?,
        assure_password_policy(&iam).await?,
        assure_role_trust(&iam, &a.provisioning.role, &a.management_account_id).await?,
        assure_support_role(&iam, &a.management_account_id).await?,
        match &input.aws_account_alias {
            Some(alias) => assure_alias(&iam, alias).await?,
            None => None,
        },
    ];
    Ok(ConcernResult::new(
        CONCERN,
        changes.into_iter().flatten().chain(regional).collect(),
    ))
}

/// The support role (CIS 1.17): made if missing, trusting the management account alone, with
/// AWSSupportAccess attached. The changes made, if any, in one line.
async fn assure_support_role(
    iam: &aws_sdk_iam::Client,
    management: &str,
) -> Result<Option<String>, AssuranceError> {
    use domain::assurance::{SUPPORT_POLICY_ARN, SUPPORT_ROLE, support_role_trust};
    let trust = support_role_trust(management);
    let mut changes = Vec::new();
    match iam.get_role().role_name(SUPPORT_ROLE).send().await {
        Ok(out) => {
            let raw = out
                .role
                .and_then(|r| r.assume_role_policy_document)
                .unwrap_or_default();
            if let Err(drift) = domain::policy::trusts_only(&aws::policy_text(&raw), management) {
                iam.update_assume_role_policy()
                    .role_name(SUPPORT_ROLE)
                    .policy_document(&trust)
                    .send()
                    .await
                    .concern(CONCERN)?;
                changes.push(format!(
                    "restored the trust policy of role {SUPPORT_ROLE} ({})",
                    drift.replace("the provisioning role", "it")
                ));
            }
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            match iam
                .create_role()
                .role_name(SUPPORT_ROLE)
                .assume_role_policy_document(&trust)
                .description("AWS Support incidents (CIS 1.17); made by the accounts service")
                .send()
                .await
            {
                Ok(_) => changes.push(format!(
                    "created role {SUPPORT_ROLE} for AWS Support, assumable from the management account {management}"
                )),
                // Made meanwhile (IAM's reads lag its writes): it is there; the next run checks
                // its trust.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_entity_already_exists_exception()) => {}
                Err(e) => return Err(AssuranceError::aws(CONCERN, e)),
            }
        }
        Err(e) => return Err(AssuranceError::aws(CONCERN, e)),
    }
    let attached = iam
        .list_attached_role_policies()
        .role_name(SUPPORT_ROLE)
        .send()
        .await
        .concern(CONCERN)?;
    if !attached
        .attached_policies()
        .iter()
        .any(|p| p.policy_arn() == Some(SUPPORT_POLICY_ARN))
    {
        iam.attach_role_policy()
            .role_name(SUPPORT_ROLE)
            .policy_arn(SUPPORT_POLICY_ARN)
            .send()
            .await
            .concern(CONCERN)?;
        changes.push(format!("attached AWSSupportAccess to role {SUPPORT_ROLE}"));
    }
    Ok((!changes.is_empty()).then(|| changes.join("; ")))
}

/// The provisioning role trusts the management account alone. The change made, if any.
async fn assure_role_trust(
    iam: &aws_sdk_iam::Client,
    role: &str,
    management: &str,
) -> Result<Option<String>, AssuranceError> {
    let current = aws::provisioning::role_trust(iam, role).await?;
    let Err(drift) = domain::policy::trusts_only(&current, management) else {
        return Ok(None);
    };
    iam.update_assume_role_policy()
        .role_name(role)
        .policy_document(domain::policy::management_only(management).to_string())
        .send()
        .await
        .concern(CONCERN)?;
    Ok(Some(format!(
        "restored the trust policy of role {role} to the management account alone ({drift})"
    )))
}

/// S3 Block Public Access, all four settings, for the whole account. The change made, if any.
async fn assure_public_access_block(
    s3: &aws_sdk_s3control::Client,
    account: &str,
) -> Result<Option<String>, AssuranceError> {
    let current = match s3
        .get_public_access_block()
        .account_id(account)
        .send()
        .await
    {
        Ok(out) => out.public_access_block_configuration,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_public_access_block_configuration()) =>
        {
            None
        }
        Err(e) => return Err(AssuranceError::aws(CONCERN, e)),
    };
    let blocked = current.is_some_and(|c| {
        c.block_public_acls() == Some(true)
            && c.ignore_public_acls() == Some(true)
            && c.block_public_policy() == Some(true)
            && c.restrict_public_buckets() == Some(true)
    });
    if blocked {
        return Ok(None);
    }
    let all = PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(true)
        .restrict_public_buckets(true)
        .build();
    s3.put_public_access_block()
        .account_id(account)
        .public_access_block_configuration(all)
        .send()
        .await
        .concern(CONCERN)?;
    Ok(Some(
        "turned on S3 Block Public Access for the account".to_owned(),
    ))
}

/// EBS encryption by default (in the region the session works in).
async fn assure_ebs_encryption(
    ec2: &aws_sdk_ec2::Client,
) -> Result<Option<String>, AssuranceError> {
    let encrypted = ec2
        .get_ebs_encryption_by_default()
        .send()
        .await
        .concern(CONCERN)?
        .ebs_encryption_by_default();
    if encrypted == Some(true) {
        return Ok(None);
    }
    ec2.enable_ebs_encryption_by_default()
        .send()
        .await
        .concern(CONCERN)?;
    Ok(Some("turned on EBS encryption by default".to_owned()))
}

/// New instances require IMDSv2 (session tokens) unless launched otherwise (CIS 5.6): the
/// account's instance metadata defaults, in the region the session works in.
async fn assure_imdsv2_default(
    ec2: &aws_sdk_ec2::Client,
) -> Result<Option<String>, AssuranceError> {
    use aws_sdk_ec2::types::{HttpTokensState, MetadataDefaultHttpTokensState};
    let current = ec2
        .get_instance_metadata_defaults()
        .send()
        .await
        .concern(CONCERN)?;
    let required = current
        .account_level()
        .and_then(|l| l.http_tokens())
        .is_some_and(|t| *t == HttpTokensState::Required);
    if required {
        return Ok(None);
    }
    ec2.modify_instance_metadata_defaults()
        .http_tokens(MetadataDefaultHttpTokensState::Required)
        .send()
        .await
        .concern(CONCERN)?;
    Ok(Some(
        "new instances require IMDSv2 by default (instance metadata defaults)".to_owned(),
    ))
}

/// IAM Access Analyzer on (CIS 1.20), in the region the session works in: an active analyzer
/// of the account's (or the organization's) is kept; without one, the account gets its own.
async fn assure_access_analyzer(
    analyzer: &aws_sdk_accessanalyzer::Client,
) -> Result<Option<String>, AssuranceError> {
    use aws_sdk_accessanalyzer::types::{AnalyzerStatus, Type};
    use domain::assurance::ACCESS_ANALYZER;
    let listed = analyzer.list_analyzers().send().await.concern(CONCERN)?;
    if listed
        .analyzers()
        .iter()
        .any(|a| *a.status() == AnalyzerStatus::Active)
    {
        return Ok(None);
    }
    match analyzer
        .create_analyzer()
        .analyzer_name(ACCESS_ANALYZER)
        .r#type(Type::Account)
        .send()
        .await
    {
        Ok(_) => Ok(Some(format!(
            "created IAM Access Analyzer {ACCESS_ANALYZER} for the account"
        ))),
        // Made meanwhile (a retried run): it is there.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_conflict_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(AssuranceError::aws(CONCERN, e)),
    }
}

/// The IAM password policy: the baseline, keeping anything stricter.
async fn assure_password_policy(
    iam: &aws_sdk_iam::Client,
) -> Result<Option<String>, AssuranceError> {
    let policy = match iam.get_account_password_policy().send().await {
        Ok(out) => out.password_policy.as_ref().map(policy_of),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            None
        }
        Err(e) => return Err(AssuranceError::aws(CONCERN, e)),
    };
    if policy.as_ref().is_some_and(meets_baseline) {
        return Ok(None);
    }
    let p = strengthened(policy.as_ref());
    iam.update_account_password_policy()
        .minimum_password_length(p.min_length)
        .password_reuse_prevention(p.reuse_prevention)
        .require_symbols(p.symbols)
        .require_numbers(p.numbers)
        .require_uppercase_characters(p.uppercase)
        .require_lowercase_characters(p.lowercase)
        .allow_users_to_change_password(true)
        .send()
        .await
        .concern(CONCERN)?;
    Ok(Some(format!(
        "set the IAM password policy: at least {} characters, no reuse of the last {}, every character class",
        p.min_length, p.reuse_prevention
    )))
}

/// The IAM account alias the record asks for (an account has at most one).
async fn assure_alias(
    iam: &aws_sdk_iam::Client,
    alias: &str,
) -> Result<Option<String>, AssuranceError> {
    let aliases = iam.list_account_aliases().send().await.concern(CONCERN)?;
    if aliases.account_aliases().first().map(String::as_str) == Some(alias) {
        return Ok(None);
    }
    let old = aliases.account_aliases().first().cloned();
    if let Some(old) = &old {
        iam.delete_account_alias()
            .account_alias(old)
            .send()
            .await
            .concern(CONCERN)?;
    }
    if let Err(e) = iam.create_account_alias().account_alias(alias).send().await {
        // Refused (taken by another account, typically): the account keeps the alias it had.
        if let Some(old) = &old
            && let Err(restore) = iam.create_account_alias().account_alias(old).send().await
        {
            tracing::error!(error = %aws::error_message(&restore), old, "the old alias could not be restored");
        }
        return Err(e).concern(CONCERN);
    }
    Ok(Some(format!("set the IAM account alias to {alias}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_policy_or_a_weak_one_is_strengthened() {
        assert!(!meets_baseline(&Policy::default()));
        let p = strengthened(None);
        assert!(meets_baseline(&p));
        assert_eq!((p.min_length, p.reuse_prevention), (14, 24));
    }

    #[test]
    fn a_stricter_policy_is_kept_stricter() {
        let strict = Policy {
            min_length: 20,
            reuse_prevention: 24,
            symbols: true,
            numbers: true,
            uppercase: true,
            lowercase: true,
        };
        assert!(meets_baseline(&strict));
        let no_symbols = Policy {
            symbols: false,
            ..strict
        };
        assert!(!meets_baseline(&no_symbols));
        assert_eq!(strengthened(Some(&no_symbols)).min_length, 20);
    }
}
