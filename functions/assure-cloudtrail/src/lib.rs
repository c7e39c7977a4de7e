//! Assurance concern: the account's activity is recorded by a multi-region trail with log file
//! validation and global service events, delivered to the Logging account's CloudTrail bucket,
//! and logging — management events and S3 object-level read and write events of every bucket
//! (CIS AWS Foundations 3.8, 3.9) — its logs encrypted with the Logging account's trail key
//! (3.5), and delivered to a CloudWatch Logs log group too, where the monitoring concern's metric
//! filters watch them (4.1–4.15).

use aws::SdkConfig;
use aws::{AssuranceError, InConcern, Provisioning};
use aws_sdk_cloudtrail::types::builders::AdvancedFieldSelectorBuilder;
use aws_sdk_cloudtrail::types::{AdvancedEventSelector, AdvancedFieldSelector};
use domain::assurance::{BASELINE_TRAIL as TRAIL, ConcernInput, ConcernResult};
use domain::config::{self, ConfigError};
use domain::monitoring::{TRAIL_LOG_GROUP, TRAIL_LOGS_ROLE};

pub const CONCERN: &str = "cloudtrail";

/// The parts of a trail the baseline cares about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailState {
    pub bucket: String,
    /// The key its logs are encrypted with (CloudTrail answers the key's ARN).
    pub kms_key: Option<String>,
    /// The log group and role of its CloudWatch Logs delivery.
    pub log_group_arn: Option<String>,
    pub logs_role_arn: Option<String>,
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

/// Where and how the trail delivers: the Logging account's bucket and key, and the account's
/// log group through its delivery role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub bucket: String,
    pub kms_key: String,
    pub log_group_arn: String,
    pub logs_role_arn: String,
}

/// What brings `current` to the baseline.
pub fn fixes(current: Option<&TrailState>, wanted: &Delivery) -> Vec<Fix> {
    let Some(t) = current else {
        return vec![Fix::Create, Fix::EventSelectors, Fix::StartLogging];
    };
    let mut fixes = Vec::new();
    if t.bucket != wanted.bucket
        || t.kms_key.as_deref() != Some(&wanted.kms_key)
        || t.log_group_arn.as_deref() != Some(&wanted.log_group_arn)
        || t.logs_role_arn.as_deref() != Some(&wanted.logs_role_arn)
        || !t.multi_region
        || !t.log_file_validation
        || !t.global_events
    {
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
    /// The Logging account: its trail key encrypts the logs.
    pub logging_account_id: String,
    pub bucket: String,
    /// The Logging account's buckets (the trail's, Config's, Session Manager's): their object
    /// events are not recorded.
    pub log_buckets: Vec<String>,
}

impl Assurer {
    /// `PROVISIONING_ROLE_NAME`, `LOGGING_ACCOUNT_ID`, `CLOUDTRAIL_BUCKET`, `CONFIG_BUCKET`,
    /// `SSM_BUCKET`.
    pub fn from_env(sdk: SdkConfig) -> Result<Self, ConfigError> {
        Ok(Assurer {
            provisioning: Provisioning::from_env(sdk)?,
            logging_account_id: config::required("LOGGING_ACCOUNT_ID")?,
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
    let region = target.region().map(|r| r.to_string()).unwrap_or_default();
    let mut changes = Vec::new();
    let wanted = Delivery {
        bucket: a.bucket.clone(),
        kms_key: trail_key(a).await?,
        log_group_arn: ensure_log_group(&target, &region, &input.aws_account_id, &mut changes)
            .await?,
        logs_role_arn: ensure_logs_role(
            &aws_sdk_iam::Client::new(&target),
            &region,
            &input.aws_account_id,
            &mut changes,
        )
        .await?,
    };
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
                kms_key: trail.kms_key_id().map(str::to_owned),
                log_group_arn: trail.cloud_watch_logs_log_group_arn().map(str::to_owned),
                logs_role_arn: trail.cloud_watch_logs_role_arn().map(str::to_owned),
                multi_region: trail.is_multi_region_trail().unwrap_or(false),
                log_file_validation: trail.log_file_validation_enabled().unwrap_or(false),
                global_events: trail.include_global_service_events().unwrap_or(false),
                logging: status.is_logging().unwrap_or(false),
            })
        }
        None => None,
    };
    for fix in fixes(current.as_ref(), &wanted) {
        match fix {
            Fix::Create => {
                ct.create_trail()
                    .name(TRAIL)
                    .s3_bucket_name(&a.bucket)
                    .kms_key_id(&wanted.kms_key)
                    .cloud_watch_logs_log_group_arn(&wanted.log_group_arn)
                    .cloud_watch_logs_role_arn(&wanted.logs_role_arn)
                    .is_multi_region_trail(true)
                    .enable_log_file_validation(true)
                    .include_global_service_events(true)
                    .send()
                    .await
                    .concern(CONCERN)?;
                changes.push(format!(
                    "created trail {TRAIL} (multi-region, log file validation) delivering to s3://{} encrypted with the Logging account's trail key, and to log group {TRAIL_LOG_GROUP}",
                    a.bucket
                ));
            }
            Fix::Update => {
                ct.update_trail()
                    .name(TRAIL)
                    .s3_bucket_name(&a.bucket)
                    .kms_key_id(&wanted.kms_key)
                    .cloud_watch_logs_log_group_arn(&wanted.log_group_arn)
                    .cloud_watch_logs_role_arn(&wanted.logs_role_arn)
                    .is_multi_region_trail(true)
                    .enable_log_file_validation(true)
                    .include_global_service_events(true)
                    .send()
                    .await
                    .concern(CONCERN)?;
                changes.push(format!("restored trail {TRAIL}: multi-region, log file validation, global events, s3://{} with the trail key, log group {TRAIL_LOG_GROUP}", a.bucket));
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

/// The trail key's ARN, looked up in the Logging account (the foundation bootstrap makes it).
async fn trail_key(a: &Assurer) -> Result<String, AssuranceError> {
    use domain::assurance::TRAIL_KEY_ALIAS;
    let logging = a
        .provisioning
        .into_account(&a.logging_account_id, aws::Session::TrailKeyLookup)
        .await?;
    match aws_sdk_kms::Client::new(&logging)
        .describe_key()
        .key_id(TRAIL_KEY_ALIAS)
        .send()
        .await
    {
        Ok(out) => out
            .key_metadata()
            .and_then(|m| m.arn())
            .map(str::to_owned)
            .ok_or_else(|| AssuranceError::Aws {
                concern: CONCERN,
                message: "DescribeKey returned no key ARN".into(),
            }),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_not_found_exception()) =>
        {
            Err(AssuranceError::Prerequisite {
                concern: CONCERN,
                message: format!(
                    "the Logging account {} has no {TRAIL_KEY_ALIAS}; run the foundation bootstrap",
                    a.logging_account_id
                ),
            })
        }
        Err(e) => Err(AssuranceError::aws(CONCERN, e)),
    }
}

/// The log group the trail delivers to (the monitoring concern keeps its retention); its ARN
/// as CloudTrail takes it.
async fn ensure_log_group(
    target: &SdkConfig,
    region: &str,
    account: &str,
    changes: &mut Vec<String>,
) -> Result<String, AssuranceError> {
    let logs = aws_sdk_cloudwatchlogs::Client::new(target);
    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix(TRAIL_LOG_GROUP)
        .send()
        .await
        .concern(CONCERN)?;
    if !groups
        .log_groups()
        .iter()
        .any(|g| g.log_group_name() == Some(TRAIL_LOG_GROUP))
    {
        match logs
            .create_log_group()
            .log_group_name(TRAIL_LOG_GROUP)
            .send()
            .await
        {
            Ok(_) => changes.push(format!("created log group {TRAIL_LOG_GROUP}")),
            // The monitoring concern, running at the same time, made it first.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_already_exists_exception()) => {}
            Err(e) => return Err(AssuranceError::aws(CONCERN, e)),
        }
    }
    Ok(format!(
        "arn:aws:logs:{region}:{account}:log-group:{TRAIL_LOG_GROUP}:*"
    ))
}

/// The role CloudTrail delivers to the log group with: trusting CloudTrail for this account's
/// trails only, allowed to write that log group's streams and nothing else. Its ARN.
async fn ensure_logs_role(
    iam: &aws_sdk_iam::Client,
    region: &str,
    account: &str,
    changes: &mut Vec<String>,
) -> Result<String, AssuranceError> {
    let (trust, permissions) = logs_role_policies(region, account);
    const POLICY: &str = "deliver-to-log-group";
    let arn = match iam.get_role().role_name(TRAIL_LOGS_ROLE).send().await {
        Ok(out) => {
            let role = out.role;
            let current = role
                .as_ref()
                .and_then(|r| r.assume_role_policy_document())
                .map(aws::policy_text)
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
            if current.as_ref() != Some(&trust) {
                iam.update_assume_role_policy()
                    .role_name(TRAIL_LOGS_ROLE)
                    .policy_document(trust.to_string())
                    .send()
                    .await
                    .concern(CONCERN)?;
                changes.push(format!(
                    "restored the trust policy of role {TRAIL_LOGS_ROLE}"
                ));
            }
            role.map(|r| r.arn).unwrap_or_default()
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            let created = iam
                .create_role()
                .role_name(TRAIL_LOGS_ROLE)
                .assume_role_policy_document(trust.to_string())
                .description(
                    "CloudTrail delivers the baseline trail to CloudWatch Logs (accounts service)",
                )
                .send()
                .await
                .concern(CONCERN)?;
            changes.push(format!(
                "created role {TRAIL_LOGS_ROLE} for CloudTrail's delivery to log group {TRAIL_LOG_GROUP}"
            ));
            created.role.map(|r| r.arn).unwrap_or_default()
        }
        Err(e) => return Err(AssuranceError::aws(CONCERN, e)),
    };
    let current = match iam
        .get_role_policy()
        .role_name(TRAIL_LOGS_ROLE)
        .policy_name(POLICY)
        .send()
        .await
    {
        Ok(out) => {
            serde_json::from_str::<serde_json::Value>(&aws::policy_text(out.policy_document())).ok()
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            None
        }
        Err(e) => return Err(AssuranceError::aws(CONCERN, e)),
    };
    if current.as_ref() != Some(&permissions) {
        iam.put_role_policy()
            .role_name(TRAIL_LOGS_ROLE)
            .policy_name(POLICY)
            .policy_document(permissions.to_string())
            .send()
            .await
            .concern(CONCERN)?;
        changes.push(format!(
            "role {TRAIL_LOGS_ROLE} may write log group {TRAIL_LOG_GROUP} and nothing else"
        ));
    }
    Ok(arn)
}

/// The delivery role's trust and permissions policies.
pub fn logs_role_policies(region: &str, account: &str) -> (serde_json::Value, serde_json::Value) {
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": account}}
        }]
    });
    let permissions = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": format!("arn:aws:logs:{region}:{account}:log-group:{TRAIL_LOG_GROUP}:log-stream:*")
        }]
    });
    (trust, permissions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted() -> Delivery {
        Delivery {
            bucket: "logs".into(),
            kms_key: "arn:aws:kms:us-east-1:222222222222:key/k".into(),
            log_group_arn:
                "arn:aws:logs:us-east-1:111122223333:log-group:accounts-baseline-trail:*".into(),
            logs_role_arn: "arn:aws:iam::111122223333:role/accounts-cloudtrail-logs".into(),
        }
    }

    fn baseline() -> TrailState {
        let w = wanted();
        TrailState {
            bucket: w.bucket,
            kms_key: Some(w.kms_key),
            log_group_arn: Some(w.log_group_arn),
            logs_role_arn: Some(w.logs_role_arn),
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
            fixes(None, &wanted()),
            [Fix::Create, Fix::EventSelectors, Fix::StartLogging]
        );
    }

    #[test]
    fn a_trail_at_the_baseline_needs_nothing() {
        assert!(fixes(Some(&baseline()), &wanted()).is_empty());
    }

    #[test]
    fn drift_is_repaired() {
        let single_region = TrailState {
            multi_region: false,
            ..baseline()
        };
        assert_eq!(fixes(Some(&single_region), &wanted()), [Fix::Update]);
        let elsewhere = TrailState {
            bucket: "other".into(),
            ..baseline()
        };
        assert_eq!(fixes(Some(&elsewhere), &wanted()), [Fix::Update]);
        let stopped = TrailState {
            logging: false,
            ..baseline()
        };
        assert_eq!(fixes(Some(&stopped), &wanted()), [Fix::StartLogging]);
        let management_only = TrailState {
            s3_data_events: false,
            ..baseline()
        };
        assert_eq!(
            fixes(Some(&management_only), &wanted()),
            [Fix::EventSelectors]
        );
        let unencrypted = TrailState {
            kms_key: None,
            ..baseline()
        };
        assert_eq!(fixes(Some(&unencrypted), &wanted()), [Fix::Update]);
        let other_key = TrailState {
            kms_key: Some("arn:aws:kms:us-east-1:111122223333:key/mine".into()),
            ..baseline()
        };
        assert_eq!(fixes(Some(&other_key), &wanted()), [Fix::Update]);
        let not_to_logs = TrailState {
            log_group_arn: None,
            logs_role_arn: None,
            ..baseline()
        };
        assert_eq!(fixes(Some(&not_to_logs), &wanted()), [Fix::Update]);
    }

    #[test]
    fn cloudtrail_alone_delivers_and_only_to_the_trails_log_group() {
        let (trust, permissions) = logs_role_policies("us-east-1", "111122223333");
        assert_eq!(
            trust["Statement"][0]["Principal"]["Service"],
            "cloudtrail.amazonaws.com"
        );
        assert_eq!(
            trust["Statement"][0]["Condition"]["StringEquals"]["aws:SourceAccount"],
            "111122223333"
        );
        assert_eq!(
            permissions["Statement"][0]["Resource"],
            "arn:aws:logs:us-east-1:111122223333:log-group:accounts-baseline-trail:log-stream:*"
        );
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
