//! Assurance concern: the account's activity is recorded by a multi-region trail with log file
//! validation and global service events, delivered to the Logging account's CloudTrail bucket,
//! and logging — management events and S3 object-level read and write events of every bucket
//! (CIS AWS Foundations 3.8, 3.9).

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
    /// It records management events and every bucket's S3 object-level reads and writes.
    pub s3_data_events: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fix {
    Create,
    Update,
    StartLogging,
    /// Management events and S3 object-level read and write events of every bucket.
    EventSelectors,
}

/// What brings `current` to the baseline.
pub fn fixes(current: Option<&TrailState>, bucket: &str) -> Vec<Fix> {
    let Some(t) = current else {
        return vec![Fix::Create, Fix::EventSelectors, Fix::StartLogging];
    };
    let mut fixes = Vec::new();
    if t.bucket != bucket || !t.multi_region || !t.log_file_validation || !t.global_events {
        fixes.push(Fix::Update);
    }
    if !t.s3_data_events {
        fixes.push(Fix::EventSelectors);
    }
    if !t.logging {
        fixes.push(Fix::StartLogging);
    }
    fixes
}

/// `arn:aws:s3` as an `AWS::S3::Object` data resource: every bucket's objects, now and later.
pub const ALL_S3_OBJECTS: &str = "arn:aws:s3";

/// Do the trail's (basic) event selectors record management events and every bucket's object
/// reads and writes? Advanced selectors the service does not write count as not.
pub fn records_s3_data_events(selectors: &[aws_sdk_cloudtrail::types::EventSelector]) -> bool {
    use aws_sdk_cloudtrail::types::ReadWriteType;
    selectors.iter().any(|s| {
        s.read_write_type()
            .is_none_or(|rw| *rw == ReadWriteType::All)
            && s.include_management_events() != Some(false)
            && s.data_resources().iter().any(|d| {
                d.r#type() == Some("AWS::S3::Object")
                    && d.values().iter().any(|v| v == ALL_S3_OBJECTS)
            })
    })
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
            let selectors = ct
                .get_event_selectors()
                .trail_name(TRAIL)
                .send()
                .await
                .concern(CONCERN)?;
            Some(TrailState {
                s3_data_events: records_s3_data_events(selectors.event_selectors()),
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
            Fix::EventSelectors => {
                use aws_sdk_cloudtrail::types::{DataResource, EventSelector, ReadWriteType};
                let selector = EventSelector::builder()
                    .read_write_type(ReadWriteType::All)
                    .include_management_events(true)
                    .data_resources(
                        DataResource::builder()
                            .r#type("AWS::S3::Object")
                            .values(ALL_S3_OBJECTS)
                            .build(),
                    )
                    .build();
                ct.put_event_selectors()
                    .trail_name(TRAIL)
                    .event_selectors(selector)
                    .send()
                    .await
                    .concern(CONCERN)?;
                changes.push(format!(
                    "trail {TRAIL} records management events and every bucket's S3 object-level reads and writes"
                ));
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
            s3_data_events: true,
        }
    }

    #[test]
    fn a_missing_trail_is_created_and_started() {
        assert_eq!(
            fixes(None, "logs"),
            [Fix::Create, Fix::EventSelectors, Fix::StartLogging]
        );
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
        let management_only = TrailState {
            s3_data_events: false,
            ..baseline()
        };
        assert_eq!(fixes(Some(&management_only), "logs"), [Fix::EventSelectors]);
    }

    #[test]
    fn only_every_bucket_s_reads_and_writes_with_management_events_count() {
        use aws_sdk_cloudtrail::types::{DataResource, EventSelector, ReadWriteType};
        let selector = |rw: ReadWriteType, management: bool, values: &str| {
            EventSelector::builder()
                .read_write_type(rw)
                .include_management_events(management)
                .data_resources(
                    DataResource::builder()
                        .r#type("AWS::S3::Object")
                        .values(values)
                        .build(),
                )
                .build()
        };
        assert!(records_s3_data_events(&[selector(
            ReadWriteType::All,
            true,
            ALL_S3_OBJECTS
        )]));
        assert!(!records_s3_data_events(&[selector(
            ReadWriteType::WriteOnly,
            true,
            ALL_S3_OBJECTS
        )]));
        assert!(!records_s3_data_events(&[selector(
            ReadWriteType::All,
            false,
            ALL_S3_OBJECTS
        )]));
        assert!(!records_s3_data_events(&[selector(
            ReadWriteType::All,
            true,
            "arn:aws:s3:::one-bucket/"
        )]));
        assert!(!records_s3_data_events(&[]));
    }
}
