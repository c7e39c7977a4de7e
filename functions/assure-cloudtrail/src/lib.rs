//! Assurance concern: the account's activity is recorded by a multi-region trail with log file
//! validation and global service events, delivered to the Logging account's CloudTrail bucket,
//! and logging.

use aws::SdkConfig;
use aws::{AssuranceError, InConcern, Provisioning};
use domain::assurance::{BASELINE_TRAIL as TRAIL, ConcernInput, ConcernResult};
use domain::config::{self, ConfigError};

pub const CONCERN: &str = "cloudtrail";

/// The parts of a trail the baseline cares about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailState {
    pub bucket: String,
    pub multi_region: bool,
    pub log_file_validation: bool,
    pub global_events: bool,
    pub logging: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fix {
    Create,
    Update,
    StartLogging,
}

/// What brings `current` to the baseline.
pub fn fixes(current: Option<&TrailState>, bucket: &str) -> Vec<Fix> {
    let Some(t) = current else {
        return vec![Fix::Create, Fix::StartLogging];
    };
    let mut fixes = Vec::new();
    if t.bucket != bucket || !t.multi_region || !t.log_file_validation || !t.global_events {
        fixes.push(Fix::Update);
    }
    if !t.logging {
        fixes.push(Fix::StartLogging);
    }
    fixes
}

pub struct Assurer {
    pub provisioning: Provisioning,
    pub bucket: String,
}

impl Assurer {
    /// `PROVISIONING_ROLE_NAME`, `CLOUDTRAIL_BUCKET`.
    pub fn from_env(sdk: SdkConfig) -> Result<Self, ConfigError> {
        Ok(Assurer {
            provisioning: Provisioning::from_env(sdk)?,
            bucket: config::required("CLOUDTRAIL_BUCKET")?,
        })
    }
}

pub async fn handle(a: &Assurer, input: ConcernInput) -> Result<ConcernResult, AssuranceError> {
    let target = a
        .provisioning
        .into_account(&input.aws_account_id, aws::Session::AssureCloudTrail)
        .await?;
    let ct = aws_sdk_cloudtrail::Client::new(&target);
    let described = ct
        .describe_trails()
        .trail_name_list(TRAIL)
        .send()
        .await
        .concern(CONCERN)?;
    let current = match described
        .trail_list()
        .iter()
        .find(|t| t.name() == Some(TRAIL))
    {
        Some(trail) => {
            let status = ct
                .get_trail_status()
                .name(TRAIL)
                .send()
                .await
                .concern(CONCERN)?;
            Some(TrailState {
                bucket: trail.s3_bucket_name().unwrap_or_default().to_owned(),
                multi_region: trail.is_multi_region_trail().unwrap_or(false),
                log_file_validation: trail.log_file_validation_enabled().unwrap_or(false),
                global_events: trail.include_global_service_events().unwrap_or(false),
                logging: status.is_logging().unwrap_or(false),
            })
        }
        None => None,
    };
    let mut changes = Vec::new();
    for fix in fixes(current.as_ref(), &a.bucket) {
        match fix {
            Fix::Create => {
                ct.create_trail()
                    .name(TRAIL)
                    .s3_bucket_name(&a.bucket)
                    .is_multi_region_trail(true)
                    .enable_log_file_validation(true)
                    .include_global_service_events(true)
                    .send()
                    .await
                    .concern(CONCERN)?;
                changes.push(format!(
                    "created trail {TRAIL} (multi-region, log file validation) delivering to s3://{}",
                    a.bucket
                ));
            }
            Fix::Update => {
                ct.update_trail()
                    .name(TRAIL)
                    .s3_bucket_name(&a.bucket)
                    .is_multi_region_trail(true)
                    .enable_log_file_validation(true)
                    .include_global_service_events(true)
                    .send()
                    .await
                    .concern(CONCERN)?;
                changes.push(format!("restored trail {TRAIL}: multi-region, log file validation, global events, s3://{}", a.bucket));
            }
            Fix::StartLogging => {
                ct.start_logging()
                    .name(TRAIL)
                    .send()
                    .await
                    .concern(CONCERN)?;
                changes.push(format!("started logging on trail {TRAIL}"));
            }
        }
    }
    Ok(ConcernResult::new(CONCERN, changes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baseline() -> TrailState {
        TrailState {
            bucket: "logs".into(),
            multi_region: true,
            log_file_validation: true,
            global_events: true,
            logging: true,
        }
    }

    #[test]
    fn a_missing_trail_is_created_and_started() {
        assert_eq!(fixes(None, "logs"), [Fix::Create, Fix::StartLogging]);
    }

    #[test]
    fn a_trail_at_the_baseline_needs_nothing() {
        assert!(fixes(Some(&baseline()), "logs").is_empty());
    }

    #[test]
    fn drift_is_repaired() {
        let single_region = TrailState {
            multi_region: false,
            ..baseline()
        };
        assert_eq!(fixes(Some(&single_region), "logs"), [Fix::Update]);
        let elsewhere = TrailState {
            bucket: "other".into(),
            ..baseline()
        };
        assert_eq!(fixes(Some(&elsewhere), "logs"), [Fix::Update]);
        let stopped = TrailState {
            logging: false,
            ..baseline()
        };
        assert_eq!(fixes(Some(&stopped), "logs"), [Fix::StartLogging]);
    }
}
