//! Assurance concern: the account's activity is recorded by a multi-region trail with log file
//! validation and global service events, delivered to the Logging account's CloudTrail bucket,
//! and logging — management events and S3 object-level read and write events of every bucket
//! (CIS AWS Foundations 3.8, 3.9).

use aws::SdkConfig;
use aws::{AssuranceError, InConcern, Provisioning};
use aws_sdk_cloudtrail::types::builders::AdvancedFieldSelectorBuilder;
use aws_sdk_cloudtrail::types::{AdvancedEventSelector, AdvancedFieldSelector};
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

/// The S3 object-level events the trail records: every bucket's but the Logging account's log
/// buckets' — every trail and recorder of the organization writes there, and recording those
/// writes would record its own deliveries (AWS's "recursive events"), at a cost that grows with
/// the organization.
pub fn data_event_prefixes(log_buckets: &[String]) -> Vec<String> {
    let mut prefixes: Vec<String> = log_buckets
        .iter()
        .map(|b| format!("arn:aws:s3:::{b}/"))
        .collect();
    prefixes.sort();
    prefixes
}

/// The trail's advanced event selectors: management events, and S3 object reads and writes of
/// every bucket but `log_buckets`.
pub fn baseline_selectors(log_buckets: &[String]) -> Vec<AdvancedEventSelector> {
    let field = |name: &str,
                 f: fn(AdvancedFieldSelectorBuilder, String) -> AdvancedFieldSelectorBuilder,
                 values: Vec<String>| {
        values
            .into_iter()
            .fold(AdvancedFieldSelector::builder().field(name), f)
            .build()
            .expect("the field is set")
    };
    let equals = |b: AdvancedFieldSelectorBuilder, v: String| b.equals(v);
    let not_starts_with = |b: AdvancedFieldSelectorBuilder, v: String| b.not_starts_with(v);
    vec![
        AdvancedEventSelector::builder()
            .name("Management events")
            .field_selectors(field("eventCategory", equals, vec!["Management".into()]))
            .build()
            .expect("the fields are set"),
        AdvancedEventSelector::builder()
            .name("S3 object-level events, but the log buckets'")
            .field_selectors(field("eventCategory", equals, vec!["Data".into()]))
            .field_selectors(field(
                "resources.type",
                equals,
                vec!["AWS::S3::Object".into()],
            ))
            .field_selectors(field(
                "resources.ARN",
                not_starts_with,
                data_event_prefixes(log_buckets),
            ))
            .build()
            .expect("the fields are set"),
    ]
}

/// Do the trail's advanced selectors record management events and S3 object reads and writes
/// of every bucket but `log_buckets` (the baseline's, or a broader recording of the same)?
pub fn records_baseline_events(
    selectors: &[AdvancedEventSelector],
    log_buckets: &[String],
) -> bool {
    let fields = |s: &AdvancedEventSelector| -> Vec<(String, Vec<String>, Vec<String>)> {
        s.field_selectors()
            .iter()
            .map(|f| {
                let mut equals = f.equals().to_vec();
                equals.sort();
                let mut not_starts = f.not_starts_with().to_vec();
                not_starts.sort();
                (f.field().to_owned(), equals, not_starts)
            })
            .collect()
    };
    let management = selectors.iter().any(|s| {
        fields(s)
            == [(
                "eventCategory".to_owned(),
                vec!["Management".to_owned()],
                vec![],
            )]
    });
    let prefixes = data_event_prefixes(log_buckets);
    let objects = selectors.iter().any(|s| {
        let f = fields(s);
        f.len() == 3
            && f.contains(&("eventCategory".into(), vec!["Data".into()], vec![]))
            && f.contains(&(
                "resources.type".into(),
                vec!["AWS::S3::Object".into()],
                vec![],
            ))
            && f.contains(&("resources.ARN".into(), vec![], prefixes.clone()))
    });
    management && objects
}

pub struct Assurer {
    pub provisioning: Provisioning,
    pub bucket: String,
    /// The Logging account's buckets (the trail's, Config's, Session Manager's): their object
    /// events are not recorded.
    pub log_buckets: Vec<String>,
}

impl Assurer {
    /// `PROVISIONING_ROLE_NAME`, `CLOUDTRAIL_BUCKET`, `CONFIG_BUCKET`, `SSM_BUCKET`.
    pub fn from_env(sdk: SdkConfig) -> Result<Self, ConfigError> {
        Ok(Assurer {
            provisioning: Provisioning::from_env(sdk)?,
            bucket: config::required("CLOUDTRAIL_BUCKET")?,
            log_buckets: vec![
                config::required("CLOUDTRAIL_BUCKET")?,
                config::required("CONFIG_BUCKET")?,
                config::required("SSM_BUCKET")?,
            ],
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
                s3_data_events: records_baseline_events(
                    selectors.advanced_event_selectors(),
                    &a.log_buckets,
                ),
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
                ct.put_event_selectors()
                    .trail_name(TRAIL)
                    .set_advanced_event_selectors(Some(baseline_selectors(&a.log_buckets)))
                    .send()
                    .await
                    .concern(CONCERN)?;
                changes.push(format!(
                    "trail {TRAIL} records management events and S3 object-level reads and writes of every bucket but the log buckets"
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
    fn the_baseline_selectors_record_every_bucket_but_the_log_buckets() {
        let logs = vec![
            "accounts-cloudtrail-1".to_owned(),
            "accounts-config-1".to_owned(),
        ];
        let baseline = baseline_selectors(&logs);
        assert!(records_baseline_events(&baseline, &logs));
        // The log buckets' own writes recorded too: a loop, not the baseline.
        assert!(!records_baseline_events(&baseline, &logs[..1]));
        assert!(
            !records_baseline_events(&baseline[..1], &logs),
            "management events only"
        );
        assert!(!records_baseline_events(&[], &logs));
    }
}
