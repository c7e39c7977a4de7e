//! Facts of a compliant account, for the crate's tests.

use std::collections::HashMap;

use chrono::{Duration, Utc};
use domain::compliance::{Bundle, Evaluation};
use serde_json::Value;

use crate::facts::*;

/// An account configured the way the assurance baseline leaves it, plus the CIS settings the
/// baseline does not make (each test breaks one thing).
pub fn compliant() -> Facts {
    let now = Utc::now();
    let recent = now - Duration::days(3);
    Facts {
        aws_account_id: "111122223333".into(),
        region: "us-east-1".into(),
        home: true,
        now,
        account_summary: Ok(HashMap::from([
            ("AccountMFAEnabled".into(), 1),
            ("AccountAccessKeysPresent".into(), 0),
        ])),
        password_policy: Ok(Some(PasswordPolicy {
            minimum_length: 14,
            reuse_prevention: 24,
        })),
        credential_report: Ok(vec![
            CredentialRow {
                user: ROOT_USER.into(),
                mfa_active: true,
                ..Default::default()
            },
            CredentialRow {
                user: "alice".into(),
                created: Some(recent),
                password_enabled: true,
                password_last_used: Some(recent),
                mfa_active: true,
                keys: [
                    AccessKey {
                        active: true,
                        last_rotated: Some(recent),
                        last_used: Some(recent),
                    },
                    AccessKey::default(),
                ],
                ..Default::default()
            },
        ]),
        root_virtual_mfa: Ok(false),
        root_credentials: Ok(Some(domain::assurance::RootCredentials {
            password: true,
            mfa_devices: vec!["arn:aws:iam::111122223333:mfa/root".into()],
            ..Default::default()
        })),
        users_with_own_policies: Ok(vec![]),
        users: Ok(1),
        full_admin_policies: Ok(vec![]),
        policy_attachments: HashMap::from([
            ("arn:aws:iam::aws:policy/AWSSupportAccess".into(), Ok(1)),
            (
                "arn:aws:iam::aws:policy/AWSCloudShellFullAccess".into(),
                Ok(0),
            ),
        ]),
        expired_server_certificates: Ok(vec![]),
        public_access_block: Ok(Some([true; 4])),
        ebs_encryption_by_default: Ok(true),
        imdsv2_by_default: Ok(true),
        access_analyzers: Ok(vec![("accounts-access-analyzer".into(), "ACTIVE".into())]),
        vpcs: Ok(vec![("vpc-1".into(), true)]),
        nacl_entries: Ok(vec![NaclEntry {
            acl: "acl-1".into(),
            rule_number: 100,
            egress: false,
            allow: true,
            cidr: "10.0.0.0/8".into(),
            protocol: "6".into(),
            ports: Some((22, 22)),
        }]),
        security_groups: Ok(vec![
            SecurityGroup {
                id: "sg-default".into(),
                name: "default".into(),
                ingress: vec![],
                egress: vec![],
            },
            SecurityGroup {
                id: "sg-web".into(),
                name: "web".into(),
                ingress: vec![Permission {
                    protocol: "tcp".into(),
                    ports: Some((443, 443)),
                    cidrs: vec!["0.0.0.0/0".into(), "::/0".into()],
                }],
                egress: vec![],
            },
        ]),
        instances: Ok(vec![Instance {
            id: "i-1".into(),
            imdsv2_required: true,
            instance_profile: true,
        }]),
        trails: Ok(vec![Trail {
            name: "accounts-baseline".into(),
            multi_region: true,
            logging: true,
            log_file_validation: true,
            kms_key: true,
            log_group: Some("trail-logs".into()),
            s3_object_events: vec!["All".into()],
        }]),
        monitoring: Ok(monitoring_of_every_control()),
        config_recorders: Ok(vec![ConfigRecorder {
            all_supported: true,
            include_global: true,
            recording: true,
        }]),
        config_rules: Ok(HashMap::from([(
            "RDS_STORAGE_ENCRYPTED".into(),
            vec!["COMPLIANT".into()],
        )])),
        guardduty_enabled: Ok(true),
        session_preferences: Ok(Some(SessionPreferences {
            bucket: "accounts-ssm-1".into(),
            encrypted: true,
        })),
    }
}

/// A metric filter (its pattern has the control's terms) and an alarm for every section-4
/// control of the bundle.
fn monitoring_of_every_control() -> Monitoring {
    let mut m = Monitoring {
        filters: vec![],
        alarmed_metrics: vec![],
    };
    for r in &Bundle::builtin().rules {
        if let Evaluation::Check { check, parameters } = &r.evaluation
            && check == "metric-filter-alarm"
        {
            let terms: Vec<&str> = parameters["FilterPatternTerms"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let metric = ("CISBenchmark".to_owned(), r.id.clone());
            m.filters.push(MetricFilter {
                log_group: "trail-logs".into(),
                pattern: format!("{{ ($.x = \"{}\") }}", terms.join("\") || ($.x = \"")),
                metrics: vec![metric.clone()],
            });
            m.alarmed_metrics.push(metric);
        }
    }
    m
}
