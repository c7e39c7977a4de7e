//! Assurance concern: AWS Config records every supported resource type with its service-linked
//! role, delivers to the Logging account's Config bucket, and is on — in every governed region.
//! Global resource types (IAM) are recorded in the home region only: recorded everywhere, each
//! change to them would be recorded (and billed) once per region.

use aws::SdkConfig;
use aws::{AssuranceError, InConcern, Provisioning};
use aws_sdk_config::types::{ConfigurationRecorder, DeliveryChannel, RecordingGroup};
use domain::assurance::{ConcernInput, ConcernResult};
use domain::config::{self, ConfigError};
use domain::regions::Regions;

pub const CONCERN: &str = "config";
const SERVICE: &str = "config.amazonaws.com";
/// The recorder's name when the account has none (one recorder per region is allowed).
const DEFAULT_NAME: &str = "default";

/// The recorder and channel as the baseline sees them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigState {
    pub recorder: Option<RecorderState>,
    pub channel_bucket: Option<String>,
    pub recording: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecorderState {
    pub name: String,
    pub role_arn: String,
    pub all_supported: bool,
    pub global_resources: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fix {
    PutRecorder,
    PutChannel,
    Start,
}

/// What to fix; `global`: this region records the global resource types.
pub fn fixes(s: &ConfigState, role_arn: &str, bucket: &str, global: bool) -> Vec<Fix> {
    let mut fixes = Vec::new();
    let recorder_ok = s
        .recorder
        .as_ref()
        .is_some_and(|r| r.role_arn == role_arn && r.all_supported && r.global_resources == global);
    if !recorder_ok {
        fixes.push(Fix::PutRecorder);
    }
    if s.channel_bucket.as_deref() != Some(bucket) {
        fixes.push(Fix::PutChannel);
    }
    if !s.recording {
        fixes.push(Fix::Start);
    }
    fixes
}

pub struct Assurer {
    pub provisioning: Provisioning,
    pub regions: Regions,
    pub bucket: String,
}

impl Assurer {
    /// `PROVISIONING_ROLE_NAME`, `CONFIG_BUCKET`.
    pub fn from_env(sdk: SdkConfig, regions: Regions) -> Result<Self, ConfigError> {
        Ok(Assurer {
            provisioning: Provisioning::from_env(sdk)?,
            regions,
            bucket: config::required("CONFIG_BUCKET")?,
        })
    }
}

/// Config's service-linked role, created if the account has none.
async fn service_role(
    iam: &aws_sdk_iam::Client,
    changes: &mut Vec<String>,
) -> Result<String, AssuranceError> {
    let prefix = format!("/aws-service-role/{SERVICE}/");
    let listed = iam
        .list_roles()
        .path_prefix(&prefix)
        .send()
        .await
        .concern(CONCERN)?;
    if let Some(role) = listed.roles().first() {
        return Ok(role.arn().to_owned());
    }
    let created = iam
        .create_service_linked_role()
        .aws_service_name(SERVICE)
        .send()
        .await
        .concern(CONCERN)?;
    changes.push("created the AWS Config service-linked role".to_owned());
    created
        .role
        .map(|r| r.arn)
        .ok_or_else(|| AssuranceError::Aws {
            concern: CONCERN,
            message: "CreateServiceLinkedRole returned no role".into(),
        })
}

pub async fn handle(a: &Assurer, input: ConcernInput) -> Result<ConcernResult, AssuranceError> {
    let target = a
        .provisioning
        .into_account(&input.aws_account_id, aws::Session::AssureConfig)
        .await?;
    let mut changes = Vec::new();
    // The service-linked role is the account's, one for every region.
    let role_arn = service_role(&aws_sdk_iam::Client::new(&target), &mut changes).await?;
    let role_arn = &role_arn;
    changes.extend(
        aws::in_every_region(&target, &a.regions, |cfg, region| async move {
            let global = a.regions.is_home(&region);
            assure_in_region(
                &aws_sdk_config::Client::new(&cfg),
                role_arn,
                &a.bucket,
                global,
            )
            .await
        })
        .await?,
    );
    Ok(ConcernResult::new(CONCERN, changes))
}

/// The recorder, its channel and its recording in the region `cfg` acts in.
async fn assure_in_region(
    cfg: &aws_sdk_config::Client,
    role_arn: &str,
    bucket: &str,
    global: bool,
) -> Result<Vec<String>, AssuranceError> {
    let mut changes = Vec::new();

    let recorders = cfg
        .describe_configuration_recorders()
        .send()
        .await
        .concern(CONCERN)?;
    let recorder = recorders
        .configuration_recorders()
        .first()
        .map(|r| RecorderState {
            name: r.name().unwrap_or(DEFAULT_NAME).to_owned(),
            role_arn: r.role_arn().unwrap_or_default().to_owned(),
            all_supported: r.recording_group().is_some_and(|g| g.all_supported()),
            global_resources: r
                .recording_group()
                .is_some_and(|g| g.include_global_resource_types()),
        });
    let name = recorder
        .as_ref()
        .map_or(DEFAULT_NAME.to_owned(), |r| r.name.clone());
    let channels = cfg
        .describe_delivery_channels()
        .send()
        .await
        .concern(CONCERN)?;
    let channel = channels.delivery_channels().first();
    let channel_name = channel
        .and_then(|c| c.name())
        .unwrap_or(DEFAULT_NAME)
        .to_owned();
    let status = cfg
        .describe_configuration_recorder_status()
        .send()
        .await
        .concern(CONCERN)?;
    let state = ConfigState {
        channel_bucket: channel.and_then(|c| c.s3_bucket_name()).map(str::to_owned),
        recording: status
            .configuration_recorders_status()
            .iter()
            .any(|s| s.name() == Some(&name) && s.recording()),
        recorder,
    };

    for fix in fixes(&state, role_arn, bucket, global) {
        match fix {
            Fix::PutRecorder => {
                let group = RecordingGroup::builder()
                    .all_supported(true)
                    .include_global_resource_types(global)
                    .build();
                let recorder = ConfigurationRecorder::builder()
                    .name(&name)
                    .role_arn(role_arn)
                    .recording_group(group)
                    .build();
                cfg.put_configuration_recorder()
                    .configuration_recorder(recorder)
                    .send()
                    .await
                    .concern(CONCERN)?;
                changes.push(if global {
                    format!("configuration recorder {name} records all resource types, global ones included")
                } else {
                    format!("configuration recorder {name} records all regional resource types")
                });
            }
            Fix::PutChannel => {
                let channel = DeliveryChannel::builder()
                    .name(&channel_name)
                    .s3_bucket_name(bucket)
                    .build();
                cfg.put_delivery_channel()
                    .delivery_channel(channel)
                    .send()
                    .await
                    .concern(CONCERN)?;
                changes.push(format!(
                    "delivery channel {channel_name} delivers to s3://{bucket}"
                ));
            }
            Fix::Start => {
                cfg.start_configuration_recorder()
                    .configuration_recorder_name(&name)
                    .send()
                    .await
                    .concern(CONCERN)?;
                changes.push(format!("started configuration recorder {name}"));
            }
        }
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baseline() -> ConfigState {
        ConfigState {
            recorder: Some(RecorderState {
                name: "default".into(),
                role_arn: "arn:role".into(),
                all_supported: true,
                global_resources: true,
            }),
            channel_bucket: Some("config-logs".into()),
            recording: true,
        }
    }

    #[test]
    fn an_account_without_config_gets_all_three() {
        assert_eq!(
            fixes(&ConfigState::default(), "arn:role", "config-logs", true),
            [Fix::PutRecorder, Fix::PutChannel, Fix::Start]
        );
    }

    #[test]
    fn an_account_at_the_baseline_needs_nothing() {
        assert!(fixes(&baseline(), "arn:role", "config-logs", true).is_empty());
    }

    #[test]
    fn a_stopped_or_partial_recorder_is_repaired() {
        let stopped = ConfigState {
            recording: false,
            ..baseline()
        };
        assert_eq!(
            fixes(&stopped, "arn:role", "config-logs", true),
            [Fix::Start]
        );
        let mut partial = baseline();
        partial.recorder.as_mut().unwrap().all_supported = false;
        assert_eq!(
            fixes(&partial, "arn:role", "config-logs", true),
            [Fix::PutRecorder]
        );
        let elsewhere = ConfigState {
            channel_bucket: Some("other".into()),
            ..baseline()
        };
        assert_eq!(
            fixes(&elsewhere, "arn:role", "config-logs", true),
            [Fix::PutChannel]
        );
    }

    #[test]
    fn global_resource_types_are_recorded_in_the_home_region_alone() {
        assert!(fixes(&baseline(), "arn:role", "config-logs", false) == [Fix::PutRecorder]);
        let mut regional = baseline();
        regional.recorder.as_mut().unwrap().global_resources = false;
        assert!(fixes(&regional, "arn:role", "config-logs", false).is_empty());
        assert_eq!(
            fixes(&regional, "arn:role", "config-logs", true),
            [Fix::PutRecorder]
        );
    }
}
