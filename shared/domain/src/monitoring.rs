//! CIS AWS Foundations section 4 (monitoring), as Account Assurance lays it down in every account:
//! the baseline trail delivers to a CloudWatch Logs log group in the home region (a multi-region
//! trail delivers every region's events there); on that log group, one metric filter per control
//! with the benchmark's filter pattern; on each filter's metric, an alarm that notifies the
//! account's security alarm topic when the metric is 1 or more in 5 minutes.
//!
//! Per account, not central: the benchmark (and Security Hub's CloudWatch.1–14) audit each
//! account's own trail, log group, filters and alarms, and an account's score is read from the
//! account itself. The README gives what it costs.

/// The log group the baseline trail delivers to.
pub const TRAIL_LOG_GROUP: &str = "accounts-baseline-trail";
/// The role CloudTrail delivers to the log group with.
pub const TRAIL_LOGS_ROLE: &str = "accounts-cloudtrail-logs";
/// The SNS topic every alarm notifies.
pub const ALARM_TOPIC: &str = "accounts-security-alarms";
/// The metrics' namespace.
pub const METRIC_NAMESPACE: &str = "Accounts/CISBenchmark";
/// Every alarm's name starts with it (the SCP protects them by it).
pub const ALARM_PREFIX: &str = "accounts-cis-";
/// How long the trail's log group keeps events, in days (the trail's S3 copy is the long-term
/// record, under Object Lock).
pub const LOG_RETENTION_DAYS: i32 = 365;

/// One monitoring control: a metric filter and its alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Control {
    /// The CIS AWS Foundations v3.0.0 control.
    pub cis: &'static str,
    /// The metric filter's, the metric's and (after [`ALARM_PREFIX`]) the alarm's name.
    pub name: &'static str,
    pub pattern: &'static str,
}

impl Control {
    pub fn alarm_name(&self) -> String {
        format!("{ALARM_PREFIX}{}", self.name)
    }
}

/// The benchmark's fifteen monitoring controls, with its filter patterns.
pub const CONTROLS: [Control; 15] = [
    Control {
        cis: "4.1",
        name: "unauthorized-api-calls",
        pattern: r#"{ (($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*")) && ($.sourceIPAddress != "delivery.logs.amazonaws.com") && ($.eventName != "HeadBucket") }"#,
    },
    Control {
        cis: "4.2",
        name: "console-sign-in-without-mfa",
        pattern: r#"{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") && ($.userIdentity.type = "IAMUser") && ($.responseElements.ConsoleLogin = "Success") }"#,
    },
    Control {
        cis: "4.3",
        name: "root-usage",
        pattern: r#"{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType != "AwsServiceEvent" }"#,
    },
    Control {
        cis: "4.4",
        name: "iam-policy-changes",
        pattern: r#"{ ($.eventSource = iam.amazonaws.com) && (($.eventName = DeleteGroupPolicy) || ($.eventName = DeleteRolePolicy) || ($.eventName = DeleteUserPolicy) || ($.eventName = PutGroupPolicy) || ($.eventName = PutRolePolicy) || ($.eventName = PutUserPolicy) || ($.eventName = CreatePolicy) || ($.eventName = DeletePolicy) || ($.eventName = CreatePolicyVersion) || ($.eventName = DeletePolicyVersion) || ($.eventName = AttachRolePolicy) || ($.eventName = DetachRolePolicy) || ($.eventName = AttachUserPolicy) || ($.eventName = DetachUserPolicy) || ($.eventName = AttachGroupPolicy) || ($.eventName = DetachGroupPolicy)) }"#,
    },
    Control {
        cis: "4.5",
        name: "cloudtrail-changes",
        pattern: r#"{ ($.eventName = CreateTrail) || ($.eventName = UpdateTrail) || ($.eventName = DeleteTrail) || ($.eventName = StartLogging) || ($.eventName = StopLogging) }"#,
    },
    Control {
        cis: "4.6",
        name: "console-authentication-failures",
        pattern: r#"{ ($.eventName = ConsoleLogin) && ($.errorMessage = "Failed authentication") }"#,
    },
    Control {
        cis: "4.7",
        name: "kms-key-disabled-or-deleted",
        pattern: r#"{ ($.eventSource = kms.amazonaws.com) && (($.eventName = DisableKey) || ($.eventName = ScheduleKeyDeletion)) }"#,
    },
    Control {
        cis: "4.8",
        name: "s3-bucket-policy-changes",
        pattern: r#"{ ($.eventSource = s3.amazonaws.com) && (($.eventName = PutBucketAcl) || ($.eventName = PutBucketPolicy) || ($.eventName = PutBucketCors) || ($.eventName = PutBucketLifecycle) || ($.eventName = PutBucketReplication) || ($.eventName = DeleteBucketPolicy) || ($.eventName = DeleteBucketCors) || ($.eventName = DeleteBucketLifecycle) || ($.eventName = DeleteBucketReplication)) }"#,
    },
    Control {
        cis: "4.9",
        name: "config-changes",
        pattern: r#"{ ($.eventSource = config.amazonaws.com) && (($.eventName = StopConfigurationRecorder) || ($.eventName = DeleteDeliveryChannel) || ($.eventName = PutDeliveryChannel) || ($.eventName = PutConfigurationRecorder)) }"#,
    },
    Control {
        cis: "4.10",
        name: "security-group-changes",
        pattern: r#"{ ($.eventName = AuthorizeSecurityGroupIngress) || ($.eventName = AuthorizeSecurityGroupEgress) || ($.eventName = RevokeSecurityGroupIngress) || ($.eventName = RevokeSecurityGroupEgress) || ($.eventName = CreateSecurityGroup) || ($.eventName = DeleteSecurityGroup) }"#,
    },
    Control {
        cis: "4.11",
        name: "network-acl-changes",
        pattern: r#"{ ($.eventName = CreateNetworkAcl) || ($.eventName = CreateNetworkAclEntry) || ($.eventName = DeleteNetworkAcl) || ($.eventName = DeleteNetworkAclEntry) || ($.eventName = ReplaceNetworkAclEntry) || ($.eventName = ReplaceNetworkAclAssociation) }"#,
    },
    Control {
        cis: "4.12",
        name: "network-gateway-changes",
        pattern: r#"{ ($.eventName = CreateCustomerGateway) || ($.eventName = DeleteCustomerGateway) || ($.eventName = AttachInternetGateway) || ($.eventName = CreateInternetGateway) || ($.eventName = DeleteInternetGateway) || ($.eventName = DetachInternetGateway) }"#,
    },
    Control {
        cis: "4.13",
        name: "route-table-changes",
        pattern: r#"{ ($.eventSource = ec2.amazonaws.com) && (($.eventName = CreateRoute) || ($.eventName = CreateRouteTable) || ($.eventName = ReplaceRoute) || ($.eventName = ReplaceRouteTableAssociation) || ($.eventName = DeleteRouteTable) || ($.eventName = DeleteRoute) || ($.eventName = DisassociateRouteTable)) }"#,
    },
    Control {
        cis: "4.14",
        name: "vpc-changes",
        pattern: r#"{ ($.eventName = CreateVpc) || ($.eventName = DeleteVpc) || ($.eventName = ModifyVpcAttribute) || ($.eventName = AcceptVpcPeeringConnection) || ($.eventName = CreateVpcPeeringConnection) || ($.eventName = DeleteVpcPeeringConnection) || ($.eventName = RejectVpcPeeringConnection) || ($.eventName = AttachClassicLinkVpc) || ($.eventName = DetachClassicLinkVpc) || ($.eventName = DisableVpcClassicLink) || ($.eventName = EnableVpcClassicLink) }"#,
    },
    Control {
        cis: "4.15",
        name: "organizations-changes",
        pattern: r#"{ ($.eventSource = organizations.amazonaws.com) && (($.eventName = "AcceptHandshake") || ($.eventName = "AttachPolicy") || ($.eventName = "CreateAccount") || ($.eventName = "CreateOrganizationalUnit") || ($.eventName = "CreatePolicy") || ($.eventName = "DeclineHandshake") || ($.eventName = "DeleteOrganization") || ($.eventName = "DeleteOrganizationalUnit") || ($.eventName = "DeletePolicy") || ($.eventName = "DetachPolicy") || ($.eventName = "DisablePolicyType") || ($.eventName = "EnablePolicyType") || ($.eventName = "InviteAccountToOrganization") || ($.eventName = "LeaveOrganization") || ($.eventName = "MoveAccount") || ($.eventName = "RemoveAccountFromOrganization") || ($.eventName = "UpdatePolicy") || ($.eventName = "UpdateOrganizationalUnit")) }"#,
    },
];

/// What a control's filter and alarm should be, against what the account has.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    /// The filter's pattern and its metric (namespace, name), when the filter exists.
    pub filter: Option<(String, Vec<(String, String)>)>,
    /// The alarm's metric, threshold and actions, when it exists.
    pub alarm: Option<AlarmKey>,
}

/// An alarm as read, its threshold as text (`1` for the baseline's 1.0).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlarmKey {
    pub namespace: String,
    pub metric: String,
    pub threshold: String,
    pub actions: Vec<String>,
}

/// What to (re)write for `control`: (the filter, the alarm).
pub fn repairs(control: &Control, observed: &Observed, topic_arn: &str) -> (bool, bool) {
    let metric = (METRIC_NAMESPACE.to_owned(), control.name.to_owned());
    let filter_ok = observed.filter.as_ref().is_some_and(|(pattern, metrics)| {
        pattern == control.pattern && metrics == std::slice::from_ref(&metric)
    });
    let alarm_ok = observed.alarm.as_ref().is_some_and(|a| {
        a.namespace == metric.0
            && a.metric == metric.1
            && a.threshold == "1"
            && a.actions.iter().any(|x| x == topic_arn)
    });
    (!filter_ok, !alarm_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_control_has_its_own_name_and_a_pattern_cloudwatch_takes() {
        let mut names: Vec<&str> = CONTROLS.iter().map(|c| c.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), CONTROLS.len());
        for c in CONTROLS {
            // CloudWatch Logs takes filter patterns of at most 1024 characters.
            assert!(c.pattern.len() <= 1024, "{}", c.cis);
            assert!(c.pattern.starts_with("{ ") && c.pattern.ends_with(" }"));
            assert_eq!(
                c.pattern.matches('(').count(),
                c.pattern.matches(')').count(),
                "{}",
                c.cis
            );
            // Alarm names are at most 255 characters; metric names 255.
            assert!(c.alarm_name().len() <= 255);
        }
    }

    #[test]
    fn a_missing_or_changed_filter_or_alarm_is_rewritten() {
        let c = &CONTROLS[2];
        let topic = "arn:aws:sns:us-east-1:111122223333:accounts-security-alarms";
        let good = Observed {
            filter: Some((
                c.pattern.to_owned(),
                vec![(METRIC_NAMESPACE.to_owned(), c.name.to_owned())],
            )),
            alarm: Some(AlarmKey {
                namespace: METRIC_NAMESPACE.into(),
                metric: c.name.into(),
                threshold: "1".into(),
                actions: vec![topic.into()],
            }),
        };
        assert_eq!(repairs(c, &good, topic), (false, false));
        assert_eq!(repairs(c, &Observed::default(), topic), (true, true));
        let mut weakened = good.clone();
        weakened.filter.as_mut().unwrap().0 = r#"{ $.userIdentity.type = "Nobody" }"#.into();
        assert_eq!(repairs(c, &weakened, topic), (true, false));
        let mut silenced = good.clone();
        silenced.alarm.as_mut().unwrap().actions.clear();
        assert_eq!(repairs(c, &silenced, topic), (false, true));
    }
}
