//! Assurance concern: CIS AWS Foundations monitoring (4.1–4.15) on the baseline trail's log
//! group, in the home region — the account's security alarm topic, and for each control a
//! metric filter with the benchmark's pattern and an alarm on its metric that notifies the
//! topic. See [`domain::monitoring`] for the design.
//!
//! The trail's delivery to the log group is the CloudTrail concern's; this one makes the log
//! group too when it runs first (both run at once), so the order does not matter.

use aws::SdkConfig;
use aws::{AssuranceError, InConcern, Provisioning};
use aws_sdk_cloudwatch::types::{ComparisonOperator, Statistic};
use aws_sdk_cloudwatchlogs::types::MetricTransformation;
use domain::assurance::{ConcernInput, ConcernResult};
use domain::config::ConfigError;
use domain::monitoring::{
    ALARM_PREFIX, ALARM_TOPIC, AlarmKey, CONTROLS, LOG_RETENTION_DAYS, METRIC_NAMESPACE, Observed,
    TRAIL_LOG_GROUP, repairs,
};
use serde_json::json;

pub const CONCERN: &str = "monitoring";

pub struct Assurer {
    pub provisioning: Provisioning,
}

impl Assurer {
    /// `PROVISIONING_ROLE_NAME`.
    pub fn from_env(sdk: SdkConfig) -> Result<Self, ConfigError> {
        Ok(Assurer {
            provisioning: Provisioning::from_env(sdk)?,
        })
    }
}

/// The topic's access policy: CloudWatch alarms of this account publish to it, and no one else
/// but the account's own principals.
pub fn topic_policy(topic_arn: &str, account: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AccountAlarmsPublish", "Effect": "Allow",
             "Principal": {"Service": "cloudwatch.amazonaws.com"},
             "Action": "sns:Publish", "Resource": topic_arn,
             "Condition": {"StringEquals": {"aws:SourceAccount": account}}},
            {"Sid": "AccountOwns", "Effect": "Allow",
             "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
             "Action": ["sns:GetTopicAttributes", "sns:Subscribe", "sns:ListSubscriptionsByTopic", "sns:Publish"],
             "Resource": topic_arn}
        ]
    })
    .to_string()
}

pub async fn handle(a: &Assurer, input: ConcernInput) -> Result<ConcernResult, AssuranceError> {
    let account = &input.aws_account_id;
    let target = a
        .provisioning
        .into_account(account, aws::Session::AssureMonitoring)
        .await?;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&target);
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&target);
    let sns = aws_sdk_sns::Client::new(&target);
    let mut changes = Vec::new();

    ensure_log_group(&logs, &mut changes).await?;
    let topic_arn = ensure_topic(&sns, account, &mut changes).await?;

    let filters = logs
        .describe_metric_filters()
        .log_group_name(TRAIL_LOG_GROUP)
        .send()
        .await
        .concern(CONCERN)?;
    let alarms = cloudwatch
        .describe_alarms()
        .alarm_name_prefix(ALARM_PREFIX)
        .max_records(100)
        .send()
        .await
        .concern(CONCERN)?;
    let mut filters_written = Vec::new();
    let mut alarms_written = Vec::new();
    for control in &CONTROLS {
        let observed = Observed {
            filter: filters
                .metric_filters()
                .iter()
                .find(|f| f.filter_name() == Some(control.name))
                .map(|f| {
                    (
                        f.filter_pattern().unwrap_or_default().to_owned(),
                        f.metric_transformations()
                            .iter()
                            .map(|m| (m.metric_namespace().to_owned(), m.metric_name().to_owned()))
                            .collect(),
                    )
                }),
            alarm: alarms
                .metric_alarms()
                .iter()
                .find(|x| x.alarm_name() == Some(control.alarm_name().as_str()))
                .map(|x| AlarmKey {
                    namespace: x.namespace().unwrap_or_default().to_owned(),
                    metric: x.metric_name().unwrap_or_default().to_owned(),
                    threshold: x.threshold().map(|t| t.to_string()).unwrap_or_default(),
                    actions: x.alarm_actions().to_vec(),
                }),
        };
        let (filter, alarm) = repairs(control, &observed, &topic_arn);
        if filter {
            let transformation = MetricTransformation::builder()
                .metric_namespace(METRIC_NAMESPACE)
                .metric_name(control.name)
                .metric_value("1")
                .build()
                .map_err(|e| AssuranceError::Aws {
                    concern: CONCERN,
                    message: e.to_string(),
                })?;
            logs.put_metric_filter()
                .log_group_name(TRAIL_LOG_GROUP)
                .filter_name(control.name)
                .filter_pattern(control.pattern)
                .metric_transformations(transformation)
                .send()
                .await
                .concern(CONCERN)?;
            filters_written.push(control.cis);
        }
        if alarm {
            cloudwatch
                .put_metric_alarm()
                .alarm_name(control.alarm_name())
                .alarm_description(format!(
                    "CIS AWS Foundations {}: {} (kept by the accounts service)",
                    control.cis, control.name
                ))
                .namespace(METRIC_NAMESPACE)
                .metric_name(control.name)
                .statistic(Statistic::Sum)
                .period(300)
                .evaluation_periods(1)
                .threshold(1.0)
                .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
                .treat_missing_data("notBreaching")
                .alarm_actions(&topic_arn)
                .send()
                .await
                .concern(CONCERN)?;
            alarms_written.push(control.cis);
        }
    }
    if !filters_written.is_empty() {
        changes.push(format!(
            "metric filters on log group {TRAIL_LOG_GROUP} for CIS {}",
            filters_written.join(", ")
        ));
    }
    if !alarms_written.is_empty() {
        changes.push(format!(
            "alarms notifying {ALARM_TOPIC} for CIS {}",
            alarms_written.join(", ")
        ));
    }
    Ok(ConcernResult::new(CONCERN, changes))
}

/// The trail's log group, with its retention.
async fn ensure_log_group(
    logs: &aws_sdk_cloudwatchlogs::Client,
    changes: &mut Vec<String>,
) -> Result<(), AssuranceError> {
    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix(TRAIL_LOG_GROUP)
        .send()
        .await
        .concern(CONCERN)?;
    let group = groups
        .log_groups()
        .iter()
        .find(|g| g.log_group_name() == Some(TRAIL_LOG_GROUP));
    if group.is_none() {
        match logs
            .create_log_group()
            .log_group_name(TRAIL_LOG_GROUP)
            .send()
            .await
        {
            Ok(_) => changes.push(format!("created log group {TRAIL_LOG_GROUP}")),
            // The CloudTrail concern, running at the same time, made it first.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_already_exists_exception()) => {}
            Err(e) => return Err(AssuranceError::aws(CONCERN, e)),
        }
    }
    if group.and_then(|g| g.retention_in_days()) != Some(LOG_RETENTION_DAYS) {
        logs.put_retention_policy()
            .log_group_name(TRAIL_LOG_GROUP)
            .retention_in_days(LOG_RETENTION_DAYS)
            .send()
            .await
            .concern(CONCERN)?;
        changes.push(format!(
            "log group {TRAIL_LOG_GROUP} keeps events {LOG_RETENTION_DAYS} days"
        ));
    }
    Ok(())
}

/// The security alarm topic (CreateTopic is idempotent and answers its ARN), with its policy.
async fn ensure_topic(
    sns: &aws_sdk_sns::Client,
    account: &str,
    changes: &mut Vec<String>,
) -> Result<String, AssuranceError> {
    let created = sns
        .create_topic()
        .name(ALARM_TOPIC)
        .send()
        .await
        .concern(CONCERN)?;
    let arn = created.topic_arn().unwrap_or_default().to_owned();
    let attributes = sns
        .get_topic_attributes()
        .topic_arn(&arn)
        .send()
        .await
        .concern(CONCERN)?;
    let wanted = topic_policy(&arn, account);
    let current = attributes
        .attributes()
        .and_then(|a| a.get("Policy"))
        .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok());
    if current.as_ref()
        != serde_json::from_str::<serde_json::Value>(&wanted)
            .ok()
            .as_ref()
    {
        sns.set_topic_attributes()
            .topic_arn(&arn)
            .attribute_name("Policy")
            .attribute_value(&wanted)
            .send()
            .await
            .concern(CONCERN)?;
        changes.push(format!(
            "topic {ALARM_TOPIC} admits this account's CloudWatch alarms"
        ));
    }
    Ok(arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_accounts_alarms_publish_to_the_topic() {
        let arn = "arn:aws:sns:us-east-1:111122223333:accounts-security-alarms";
        let policy: serde_json::Value =
            serde_json::from_str(&topic_policy(arn, "111122223333")).unwrap();
        let publish = &policy["Statement"][0];
        assert_eq!(publish["Principal"]["Service"], "cloudwatch.amazonaws.com");
        assert_eq!(
            publish["Condition"]["StringEquals"]["aws:SourceAccount"],
            "111122223333"
        );
        assert_eq!(
            policy["Statement"][1]["Principal"]["AWS"],
            "arn:aws:iam::111122223333:root"
        );
    }
}
