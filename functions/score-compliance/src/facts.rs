//! What the checks look at, read from one account through its role. Every source is read once
//! per scoring, all at once; a source that could not be read carries why, and each rule that
//! needs it becomes UNKNOWN with that reason.

use std::collections::HashMap;

use aws::SdkConfig;
use aws::error_message;
use chrono::{DateTime, Utc};
use domain::assurance::RootCredentials;
use domain::regions::Regions;
use serde_json::Value;

/// A source's content, or why it could not be read.
pub type Fetched<T> = Result<T, String>;

/// The IAM credential report's columns the checks read, per user (`<root_account>` for root).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CredentialRow {
    pub user: String,
    pub created: Option<DateTime<Utc>>,
    pub password_enabled: bool,
    pub password_last_used: Option<DateTime<Utc>>,
    pub password_last_changed: Option<DateTime<Utc>>,
    pub mfa_active: bool,
    pub keys: [AccessKey; 2],
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccessKey {
    pub active: bool,
    pub last_rotated: Option<DateTime<Utc>>,
    pub last_used: Option<DateTime<Utc>>,
}

pub const ROOT_USER: &str = "<root_account>";

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PasswordPolicy {
    pub minimum_length: i32,
    pub reuse_prevention: i32,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trail {
    pub name: String,
    pub multi_region: bool,
    pub logging: bool,
    pub log_file_validation: bool,
    pub kms_key: bool,
    pub log_group: Option<String>,
    /// ReadWriteType of each selector that logs S3 object events ("All", "ReadOnly", "WriteOnly").
    pub s3_object_events: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricFilter {
    pub log_group: String,
    pub pattern: String,
    /// (namespace, metric name) of each transformation.
    pub metrics: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Monitoring {
    pub filters: Vec<MetricFilter>,
    /// (namespace, metric name) of each alarm that notifies someone (has an alarm action).
    pub alarmed_metrics: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct NaclEntry {
    pub acl: String,
    /// Entries are evaluated lowest number first; the first that matches decides.
    pub rule_number: i32,
    pub egress: bool,
    pub allow: bool,
    pub cidr: String,
    /// "-1" for all protocols, "6" TCP, "17" UDP, …
    pub protocol: String,
    pub ports: Option<(i32, i32)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Permission {
    /// "-1" for all, "tcp", "udp", "icmp", or a number.
    pub protocol: String,
    pub ports: Option<(i32, i32)>,
    pub cidrs: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
    pub ingress: Vec<Permission>,
    pub egress: Vec<Permission>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Instance {
    pub id: String,
    pub imdsv2_required: bool,
    pub instance_profile: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigRecorder {
    pub all_supported: bool,
    pub include_global: bool,
    pub recording: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionPreferences {
    pub bucket: String,
    pub encrypted: bool,
}

/// Everything the direct checks and the Config-rule lookups read from one account, as seen in
/// one governed region: the account-wide facts (IAM, S3, the trails and their monitoring, read
/// once in the home region) and the region's own.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub aws_account_id: String,
    /// The governed region the regional facts are from.
    pub region: String,
    /// The home region: global resource types are recorded here.
    pub home: bool,
    pub now: DateTime<Utc>,
    /// IAM GetAccountSummary (AccountMFAEnabled, AccountAccessKeysPresent, …).
    pub account_summary: Fetched<HashMap<String, i32>>,
    /// None: the account has no password policy.
    pub password_policy: Fetched<Option<PasswordPolicy>>,
    pub credential_report: Fetched<Vec<CredentialRow>>,
    /// A virtual MFA device is assigned to the root user.
    pub root_virtual_mfa: Fetched<bool>,
    /// The root user's credentials, audited through centralized root access; None for the
    /// management account (its root user is not centrally managed).
    pub root_credentials: Fetched<Option<RootCredentials>>,
    /// IAM users with policies attached to or embedded in them, with their policy names.
    pub users_with_own_policies: Fetched<Vec<String>>,
    pub users: Fetched<usize>,
    /// Attached customer managed policies that allow "*" on "*".
    pub full_admin_policies: Fetched<Vec<String>>,
    /// Per AWS managed policy ARN the checks ask about: how many users, groups and roles have it.
    pub policy_attachments: HashMap<String, Fetched<usize>>,
    pub expired_server_certificates: Fetched<Vec<String>>,
    /// The four account-level S3 Block Public Access settings; None: none configured.
    pub public_access_block: Fetched<Option<[bool; 4]>>,
    pub ebs_encryption_by_default: Fetched<bool>,
    /// The account's instance metadata defaults require IMDSv2 of new instances.
    pub imdsv2_by_default: Fetched<bool>,
    /// IAM Access Analyzer's analyzers in the region: (name, status).
    pub access_analyzers: Fetched<Vec<(String, String)>>,
    /// Each VPC and whether it has a flow log.
    pub vpcs: Fetched<Vec<(String, bool)>>,
    pub nacl_entries: Fetched<Vec<NaclEntry>>,
    pub security_groups: Fetched<Vec<SecurityGroup>>,
    pub instances: Fetched<Vec<Instance>>,
    pub trails: Fetched<Vec<Trail>>,
    pub monitoring: Fetched<Monitoring>,
    pub config_recorders: Fetched<Vec<ConfigRecorder>>,
    /// Per AWS Config managed rule identifier deployed in the account: each deployment's
    /// compliance (COMPLIANT, NON_COMPLIANT, NOT_APPLICABLE, INSUFFICIENT_DATA).
    pub config_rules: Fetched<HashMap<String, Vec<String>>>,
    pub guardduty_enabled: Fetched<bool>,
    /// None: no Session Manager preferences document.
    pub session_preferences: Fetched<Option<SessionPreferences>>,
}

/// Parses the IAM credential report (CSV with a header row; AWS writes no quoted fields).
pub fn parse_credential_report(csv: &str) -> Result<Vec<CredentialRow>, String> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines
        .next()
        .ok_or("the credential report is empty")?
        .split(',')
        .collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| format!("the credential report has no column {name}"))
    };
    let cols = [
        "user",
        "user_creation_time",
        "password_enabled",
        "password_last_used",
        "password_last_changed",
        "mfa_active",
        "access_key_1_active",
        "access_key_1_last_rotated",
        "access_key_1_last_used_date",
        "access_key_2_active",
        "access_key_2_last_rotated",
        "access_key_2_last_used_date",
    ]
    .map(column);
    let mut idx = [0usize; 12];
    for (i, c) in cols.into_iter().enumerate() {
        idx[i] = c?;
    }
    let time = |v: &str| {
        DateTime::parse_from_rfc3339(v)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    };
    let mut rows = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        let get = |i: usize| f.get(idx[i]).copied().unwrap_or_default();
        let key = |active: usize| AccessKey {
            active: get(active) == "true",
            last_rotated: time(get(active + 1)),
            last_used: time(get(active + 2)),
        };
        rows.push(CredentialRow {
            user: get(0).to_owned(),
            created: time(get(1)),
            password_enabled: get(2) == "true",
            password_last_used: time(get(3)),
            password_last_changed: time(get(4)),
            mfa_active: get(5) == "true",
            keys: [key(6), key(9)],
        });
    }
    Ok(rows)
}

/// Does a policy document (as IAM returns it: JSON, possibly URL-encoded) allow "*" on "*"?
pub fn allows_full_admin(document: &str) -> bool {
    let Ok(doc) = serde_json::from_str::<Value>(&aws::policy_text(document)) else {
        return false;
    };
    let has_star = |v: &Value| domain::policy::strings(v).contains(&"*");
    domain::policy::statements(&doc)
        .into_iter()
        .any(|s| s["Effect"] == "Allow" && has_star(&s["Action"]) && has_star(&s["Resource"]))
}

fn smithy_time(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), 0)
}

/// The AWS managed policies whose attachments the bundle's checks ask about.
pub fn policy_arns(bundle: &domain::compliance::Bundle) -> Vec<String> {
    let mut arns: Vec<String> = bundle
        .rules
        .iter()
        .filter_map(|r| match &r.evaluation {
            domain::compliance::Evaluation::Check { parameters, .. } => parameters
                .get("PolicyArn")
                .and_then(Value::as_str)
                .map(str::to_owned),
            _ => None,
        })
        .collect();
    arns.sort();
    arns.dedup();
    arns
}

/// Every item of a paginated call, or why not.
macro_rules! all_items {
    ($request:expr) => {
        $request
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| error_message(&e))
    };
}

/// A region's own facts.
struct Regional {
    ebs_encryption_by_default: Fetched<bool>,
    imdsv2_by_default: Fetched<bool>,
    access_analyzers: Fetched<Vec<(String, String)>>,
    vpcs: Fetched<Vec<(String, bool)>>,
    nacl_entries: Fetched<Vec<NaclEntry>>,
    security_groups: Fetched<Vec<SecurityGroup>>,
    instances: Fetched<Vec<Instance>>,
    config_recorders: Fetched<Vec<ConfigRecorder>>,
    config_rules: Fetched<HashMap<String, Vec<String>>>,
    guardduty_enabled: Fetched<bool>,
    session_preferences: Fetched<Option<SessionPreferences>>,
}

/// Reads the regional facts in the region `target` acts in.
async fn regional(target: &SdkConfig, config_identifiers: &[String]) -> Regional {
    let ec2 = aws_sdk_ec2::Client::new(target);
    let (
        ebs_encryption_by_default,
        imdsv2_by_default,
        vpcs,
        nacl_entries,
        security_groups,
        instances,
    ) = tokio::join!(
        ebs_encryption_by_default(&ec2),
        imdsv2_by_default(&ec2),
        vpcs(&ec2),
        nacl_entries(&ec2),
        security_groups(&ec2),
        instances(&ec2),
    );
    let (config_recorders, config_rules, guardduty_enabled, session_preferences, access_analyzers) = tokio::join!(
        config_recorders(target),
        config_rules(target, config_identifiers),
        guardduty_enabled(target),
        session_preferences(target),
        access_analyzers(target),
    );
    Regional {
        ebs_encryption_by_default,
        imdsv2_by_default,
        access_analyzers,
        vpcs,
        nacl_entries,
        security_groups,
        instances,
        config_recorders,
        config_rules,
        guardduty_enabled,
        session_preferences,
    }
}

/// Reads everything from the account `target` acts in: the account-wide facts once, in the
/// home region, and each governed region's own; one [`Facts`] per region, the home region's
/// first.
pub async fn gather(
    target: &SdkConfig,
    regions: &Regions,
    root_credentials: Fetched<Option<RootCredentials>>,
    aws_account_id: &str,
    policy_arns: &[String],
    config_identifiers: &[String],
) -> Vec<Facts> {
    let iam = aws_sdk_iam::Client::new(target);
    let trails = aws_sdk_cloudtrail::Client::new(target);
    let (
        account_summary,
        password_policy,
        credential_report,
        root_virtual_mfa,
        users,
        full_admin_policies,
        expired_server_certificates,
        public_access_block,
        trail_list,
        per_region,
    ) = tokio::join!(
        account_summary(&iam),
        password_policy(&iam),
        credential_report(&iam),
        root_virtual_mfa(&iam, aws_account_id),
        users(&iam),
        full_admin_policies(&iam),
        expired_server_certificates(&iam),
        public_access_block(target, aws_account_id),
        trail_facts(&trails),
        futures::future::join_all(regions.all().iter().map(|r| async move {
            regional(&aws::in_region(target, r), config_identifiers).await
        })),
    );
    let monitoring = monitoring(target, &trail_list).await;
    let mut policy_attachments = HashMap::new();
    for arn in policy_arns {
        policy_attachments.insert(arn.clone(), policy_attachments_of(&iam, arn).await);
    }
    let (users_count, users_with_own_policies) = match users {
        Ok((count, with)) => (Ok(count), Ok(with)),
        Err(e) => (Err(e.clone()), Err(e)),
    };
    let now = Utc::now();
    regions
        .all()
        .iter()
        .zip(per_region)
        .map(|(region, r)| Facts {
            aws_account_id: aws_account_id.to_owned(),
            region: region.clone(),
            home: regions.is_home(region),
            now,
            account_summary: account_summary.clone(),
            password_policy: password_policy.clone(),
            credential_report: credential_report.clone(),
            root_virtual_mfa: root_virtual_mfa.clone(),
            root_credentials: root_credentials.clone(),
            users_with_own_policies: users_with_own_policies.clone(),
            users: users_count.clone(),
            full_admin_policies: full_admin_policies.clone(),
            policy_attachments: policy_attachments.clone(),
            expired_server_certificates: expired_server_certificates.clone(),
            public_access_block: public_access_block.clone(),
            trails: trail_list.clone(),
            monitoring: monitoring.clone(),
            ebs_encryption_by_default: r.ebs_encryption_by_default,
            imdsv2_by_default: r.imdsv2_by_default,
            access_analyzers: r.access_analyzers,
            vpcs: r.vpcs,
            nacl_entries: r.nacl_entries,
            security_groups: r.security_groups,
            instances: r.instances,
            config_recorders: r.config_recorders,
            config_rules: r.config_rules,
            guardduty_enabled: r.guardduty_enabled,
            session_preferences: r.session_preferences,
        })
        .collect()
}

async fn account_summary(iam: &aws_sdk_iam::Client) -> Fetched<HashMap<String, i32>> {
    let out = iam
        .get_account_summary()
        .send()
        .await
        .map_err(|e| error_message(&e))?;
    Ok(out
        .summary_map()
        .map(|m| m.iter().map(|(k, v)| (k.as_str().to_owned(), *v)).collect())
        .unwrap_or_default())
}

async fn password_policy(iam: &aws_sdk_iam::Client) -> Fetched<Option<PasswordPolicy>> {
    match iam.get_account_password_policy().send().await {
        Ok(out) => Ok(out.password_policy().map(|p| PasswordPolicy {
            minimum_length: p.minimum_password_length().unwrap_or_default(),
            reuse_prevention: p.password_reuse_prevention().unwrap_or_default(),
        })),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(error_message(&e)),
    }
}

/// Asks IAM for a fresh report and reads it once it is ready (a few seconds at most).
async fn credential_report(iam: &aws_sdk_iam::Client) -> Fetched<Vec<CredentialRow>> {
    const ATTEMPTS: u32 = 8;
    for attempt in 1..=ATTEMPTS {
        iam.generate_credential_report()
            .send()
            .await
            .map_err(|e| error_message(&e))?;
        match iam.get_credential_report().send().await {
            Ok(out) => {
                let content = out
                    .content()
                    .map(|b| b.as_ref().to_vec())
                    .unwrap_or_default();
                let text = String::from_utf8(content)
                    .map_err(|_| "the credential report is not UTF-8".to_owned())?;
                return parse_credential_report(&text);
            }
            Err(e)
                if attempt < ATTEMPTS
                    && e.as_service_error().is_some_and(|s| {
                        s.is_credential_report_not_ready_exception()
                            || s.is_credential_report_not_present_exception()
                            || s.is_credential_report_expired_exception()
                    }) =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(500 * u64::from(attempt)))
                    .await;
            }
            Err(e) => return Err(error_message(&e)),
        }
    }
    Err("the credential report was not ready in time".into())
}

async fn root_virtual_mfa(iam: &aws_sdk_iam::Client, aws_account_id: &str) -> Fetched<bool> {
    let root = format!("arn:aws:iam::{aws_account_id}:root");
    let devices = all_items!(
        iam.list_virtual_mfa_devices()
            .assignment_status(aws_sdk_iam::types::AssignmentStatusType::Assigned)
    )?;
    Ok(devices.iter().any(|d| {
        d.user().is_some_and(|u| u.arn() == root)
            || d.serial_number().ends_with(":mfa/root-account-mfa-device")
    }))
}

/// How many users there are, and those with policies of their own.
async fn users(iam: &aws_sdk_iam::Client) -> Fetched<(usize, Vec<String>)> {
    let users = all_items!(iam.list_users())?;
    let mut with = Vec::new();
    for user in &users {
        let name = user.user_name();
        let attached = iam
            .list_attached_user_policies()
            .user_name(name)
            .send()
            .await
            .map_err(|e| error_message(&e))?;
        let inline = iam
            .list_user_policies()
            .user_name(name)
            .send()
            .await
            .map_err(|e| error_message(&e))?;
        let mut policies: Vec<String> = attached
            .attached_policies()
            .iter()
            .filter_map(|p| p.policy_name().map(str::to_owned))
            .collect();
        policies.extend(inline.policy_names().iter().cloned());
        if !policies.is_empty() {
            with.push(format!("{name} ({})", policies.join(", ")));
        }
    }
    Ok((users.len(), with))
}

async fn full_admin_policies(iam: &aws_sdk_iam::Client) -> Fetched<Vec<String>> {
    let policies = all_items!(
        iam.list_policies()
            .scope(aws_sdk_iam::types::PolicyScopeType::Local)
            .only_attached(true)
    )?;
    let mut admin = Vec::new();
    for p in &policies {
        let (Some(arn), Some(version)) = (p.arn(), p.default_version_id()) else {
            continue;
        };
        let out = iam
            .get_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send()
            .await
            .map_err(|e| error_message(&e))?;
        if out
            .policy_version()
            .and_then(|v| v.document())
            .is_some_and(allows_full_admin)
        {
            admin.push(p.policy_name().unwrap_or(arn).to_owned());
        }
    }
    Ok(admin)
}

async fn policy_attachments_of(iam: &aws_sdk_iam::Client, arn: &str) -> Fetched<usize> {
    match iam.list_entities_for_policy().policy_arn(arn).send().await {
        Ok(out) => {
            Ok(out.policy_groups().len() + out.policy_users().len() + out.policy_roles().len())
        }
        // A policy that does not exist is attached to nobody.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            Ok(0)
        }
        Err(e) => Err(error_message(&e)),
    }
}

async fn expired_server_certificates(iam: &aws_sdk_iam::Client) -> Fetched<Vec<String>> {
    let out = iam
        .list_server_certificates()
        .send()
        .await
        .map_err(|e| error_message(&e))?;
    let now = Utc::now();
    Ok(out
        .server_certificate_metadata_list()
        .iter()
        .filter(|c| {
            c.expiration()
                .and_then(smithy_time)
                .is_some_and(|t| t < now)
        })
        .map(|c| c.server_certificate_name().to_owned())
        .collect())
}

async fn public_access_block(
    target: &SdkConfig,
    aws_account_id: &str,
) -> Fetched<Option<[bool; 4]>> {
    let s3control = aws_sdk_s3control::Client::new(target);
    match s3control
        .get_public_access_block()
        .account_id(aws_account_id)
        .send()
        .await
    {
        Ok(out) => Ok(out.public_access_block_configuration().map(|c| {
            [
                c.block_public_acls().unwrap_or(false),
                c.ignore_public_acls().unwrap_or(false),
                c.block_public_policy().unwrap_or(false),
                c.restrict_public_buckets().unwrap_or(false),
            ]
        })),
        Err(e)
            if aws_sdk_s3control::error::ProvideErrorMetadata::code(&e)
                == Some("NoSuchPublicAccessBlockConfiguration") =>
        {
            Ok(None)
        }
        Err(e) => Err(error_message(&e)),
    }
}

async fn ebs_encryption_by_default(ec2: &aws_sdk_ec2::Client) -> Fetched<bool> {
    ec2.get_ebs_encryption_by_default()
        .send()
        .await
        .map(|o| o.ebs_encryption_by_default().unwrap_or(false))
        .map_err(|e| error_message(&e))
}

async fn access_analyzers(target: &SdkConfig) -> Fetched<Vec<(String, String)>> {
    let listed = all_items!(aws_sdk_accessanalyzer::Client::new(target).list_analyzers())?;
    Ok(listed
        .iter()
        .map(|a| (a.name().to_owned(), a.status().as_str().to_owned()))
        .collect())
}

async fn imdsv2_by_default(ec2: &aws_sdk_ec2::Client) -> Fetched<bool> {
    ec2.get_instance_metadata_defaults()
        .send()
        .await
        .map(|o| {
            o.account_level()
                .and_then(|l| l.http_tokens())
                .is_some_and(|t| *t == aws_sdk_ec2::types::HttpTokensState::Required)
        })
        .map_err(|e| error_message(&e))
}

async fn vpcs(ec2: &aws_sdk_ec2::Client) -> Fetched<Vec<(String, bool)>> {
    let vpcs = all_items!(ec2.describe_vpcs())?;
    let logs = all_items!(ec2.describe_flow_logs())?;
    Ok(vpcs
        .iter()
        .filter_map(|v| v.vpc_id())
        .map(|id| {
            let logged = logs.iter().any(|l| l.resource_id() == Some(id));
            (id.to_owned(), logged)
        })
        .collect())
}

fn port_range(from: Option<i32>, to: Option<i32>) -> Option<(i32, i32)> {
    match (from, to) {
        (Some(f), Some(t)) => Some((f, t)),
        _ => None,
    }
}

async fn nacl_entries(ec2: &aws_sdk_ec2::Client) -> Fetched<Vec<NaclEntry>> {
    let acls = all_items!(ec2.describe_network_acls())?;
    let mut entries = Vec::new();
    for acl in &acls {
        for e in acl.entries() {
            entries.push(NaclEntry {
                acl: acl.network_acl_id().unwrap_or_default().to_owned(),
                rule_number: e.rule_number().unwrap_or_default(),
                egress: e.egress().unwrap_or(false),
                allow: e.rule_action() == Some(&aws_sdk_ec2::types::RuleAction::Allow),
                cidr: e
                    .cidr_block()
                    .or(e.ipv6_cidr_block())
                    .unwrap_or_default()
                    .to_owned(),
                protocol: e.protocol().unwrap_or("-1").to_owned(),
                ports: e.port_range().and_then(|p| port_range(p.from(), p.to())),
            });
        }
    }
    Ok(entries)
}

fn permissions(list: &[aws_sdk_ec2::types::IpPermission]) -> Vec<Permission> {
    list.iter()
        .map(|p| Permission {
            protocol: p.ip_protocol().unwrap_or("-1").to_owned(),
            ports: port_range(p.from_port(), p.to_port()),
            cidrs: p
                .ip_ranges()
                .iter()
                .filter_map(|r| r.cidr_ip().map(str::to_owned))
                .chain(
                    p.ipv6_ranges()
                        .iter()
                        .filter_map(|r| r.cidr_ipv6().map(str::to_owned)),
                )
                .collect(),
        })
        .collect()
}

async fn security_groups(ec2: &aws_sdk_ec2::Client) -> Fetched<Vec<SecurityGroup>> {
    let groups = all_items!(ec2.describe_security_groups())?;
    Ok(groups
        .iter()
        .map(|g| SecurityGroup {
            id: g.group_id().unwrap_or_default().to_owned(),
            name: g.group_name().unwrap_or_default().to_owned(),
            ingress: permissions(g.ip_permissions()),
            egress: permissions(g.ip_permissions_egress()),
        })
        .collect())
}

async fn instances(ec2: &aws_sdk_ec2::Client) -> Fetched<Vec<Instance>> {
    let reservations = all_items!(ec2.describe_instances())?;
    use aws_sdk_ec2::types::{HttpTokensState, InstanceStateName};
    Ok(reservations
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| {
            i.state()
                .and_then(|s| s.name())
                .is_none_or(|n| *n != InstanceStateName::Terminated)
        })
        .map(|i| Instance {
            id: i.instance_id().unwrap_or_default().to_owned(),
            imdsv2_required: i
                .metadata_options()
                .and_then(|m| m.http_tokens())
                .is_some_and(|t| *t == HttpTokensState::Required),
            instance_profile: i.iam_instance_profile().is_some(),
        })
        .collect())
}

async fn trail_facts(client: &aws_sdk_cloudtrail::Client) -> Fetched<Vec<Trail>> {
    let out = client
        .describe_trails()
        .send()
        .await
        .map_err(|e| error_message(&e))?;
    let mut trails = Vec::new();
    for t in out.trail_list() {
        let id = t.trail_arn().or(t.name()).unwrap_or_default();
        let status = client
            .get_trail_status()
            .name(id)
            .send()
            .await
            .map_err(|e| error_message(&e))?;
        let selectors = client
            .get_event_selectors()
            .trail_name(id)
            .send()
            .await
            .map_err(|e| error_message(&e))?;
        let mut s3_object_events: Vec<String> = selectors
            .event_selectors()
            .iter()
            .filter(|s| {
                s.data_resources()
                    .iter()
                    .any(|d| d.r#type() == Some("AWS::S3::Object"))
            })
            .map(|s| s.read_write_type().map_or("All", |r| r.as_str()).to_owned())
            .collect();
        for advanced in selectors.advanced_event_selectors() {
            let fields = advanced.field_selectors();
            let equals = |field: &str| {
                fields
                    .iter()
                    .find(|f| f.field() == field)
                    .map(|f| f.equals().to_vec())
            };
            if equals("resources.type").is_some_and(|v| v.iter().any(|x| x == "AWS::S3::Object")) {
                s3_object_events.push(match equals("readOnly").as_deref() {
                    Some([v]) if v == "true" => "ReadOnly".into(),
                    Some([v]) if v == "false" => "WriteOnly".into(),
                    _ => "All".into(),
                });
            }
        }
        trails.push(Trail {
            name: t.name().unwrap_or_default().to_owned(),
            multi_region: t.is_multi_region_trail().unwrap_or(false),
            logging: status.is_logging().unwrap_or(false),
            log_file_validation: t.log_file_validation_enabled().unwrap_or(false),
            kms_key: t.kms_key_id().is_some_and(|k| !k.is_empty()),
            log_group: t
                .cloud_watch_logs_log_group_arn()
                .and_then(|arn| arn.split(':').nth(6))
                .map(str::to_owned),
            s3_object_events,
        });
    }
    Ok(trails)
}

/// The metric filters on the log groups trails deliver to, and the metrics alarms watch.
async fn monitoring(target: &SdkConfig, trails: &Fetched<Vec<Trail>>) -> Fetched<Monitoring> {
    let trails = trails.as_ref().map_err(Clone::clone)?;
    let logs = aws_sdk_cloudwatchlogs::Client::new(target);
    let mut filters = Vec::new();
    let mut groups: Vec<&str> = trails
        .iter()
        .filter_map(|t| t.log_group.as_deref())
        .collect();
    groups.sort();
    groups.dedup();
    for group in groups {
        let found = all_items!(logs.describe_metric_filters().log_group_name(group))?;
        filters.extend(found.iter().map(|f| {
            MetricFilter {
                log_group: group.to_owned(),
                pattern: f.filter_pattern().unwrap_or_default().to_owned(),
                metrics: f
                    .metric_transformations()
                    .iter()
                    .map(|m| (m.metric_namespace().to_owned(), m.metric_name().to_owned()))
                    .collect(),
            }
        }));
    }
    let mut alarmed_metrics = Vec::new();
    if !filters.is_empty() {
        let cloudwatch = aws_sdk_cloudwatch::Client::new(target);
        let pages = cloudwatch
            .describe_alarms()
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| error_message(&e))?;
        for page in &pages {
            for alarm in page.metric_alarms() {
                if let (Some(ns), Some(name)) = (alarm.namespace(), alarm.metric_name())
                    && !alarm.alarm_actions().is_empty()
                {
                    alarmed_metrics.push((ns.to_owned(), name.to_owned()));
                }
            }
        }
    }
    Ok(Monitoring {
        filters,
        alarmed_metrics,
    })
}

async fn config_recorders(target: &SdkConfig) -> Fetched<Vec<ConfigRecorder>> {
    let config = aws_sdk_config::Client::new(target);
    let recorders = config
        .describe_configuration_recorders()
        .send()
        .await
        .map_err(|e| error_message(&e))?;
    let status = config
        .describe_configuration_recorder_status()
        .send()
        .await
        .map_err(|e| error_message(&e))?;
    Ok(recorders
        .configuration_recorders()
        .iter()
        .map(|r| {
            let group = r.recording_group();
            ConfigRecorder {
                all_supported: group.is_some_and(|g| g.all_supported()),
                include_global: group.is_some_and(|g| g.include_global_resource_types()),
                recording: status
                    .configuration_recorders_status()
                    .iter()
                    .any(|s| s.name() == r.name() && s.recording()),
            }
        })
        .collect())
}

/// The deployed AWS Config rules whose managed-rule identifier the bundle uses, and their
/// compliance.
async fn config_rules(
    target: &SdkConfig,
    identifiers: &[String],
) -> Fetched<HashMap<String, Vec<String>>> {
    let config = aws_sdk_config::Client::new(target);
    let mut deployed: HashMap<String, String> = HashMap::new(); // rule name -> identifier
    let mut next = None;
    loop {
        let out = config
            .describe_config_rules()
            .set_next_token(next)
            .send()
            .await
            .map_err(|e| error_message(&e))?;
        for rule in out.config_rules() {
            if let (Some(name), Some(source)) = (rule.config_rule_name(), rule.source())
                && let Some(identifier) = source.source_identifier()
                && identifiers.iter().any(|i| i == identifier)
            {
                deployed.insert(name.to_owned(), identifier.to_owned());
            }
        }
        next = out.next_token().map(str::to_owned);
        if next.is_none() {
            break;
        }
    }
    let mut results: HashMap<String, Vec<String>> = HashMap::new();
    if deployed.is_empty() {
        return Ok(results);
    }
    let names: Vec<String> = deployed.keys().cloned().collect();
    // DescribeComplianceByConfigRule takes at most 25 rule names.
    for chunk in names.chunks(25) {
        let out = config
            .describe_compliance_by_config_rule()
            .set_config_rule_names(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| error_message(&e))?;
        for c in out.compliance_by_config_rules() {
            let (Some(name), Some(compliance)) = (c.config_rule_name(), c.compliance()) else {
                continue;
            };
            if let Some(identifier) = deployed.get(name) {
                results.entry(identifier.clone()).or_default().push(
                    compliance
                        .compliance_type()
                        .map_or("INSUFFICIENT_DATA", |t| t.as_str())
                        .to_owned(),
                );
            }
        }
    }
    // A deployed rule Config has not reported on yet has insufficient data.
    for (name, identifier) in &deployed {
        let _ = name;
        results
            .entry(identifier.clone())
            .or_insert_with(|| vec!["INSUFFICIENT_DATA".into()]);
    }
    Ok(results)
}

async fn guardduty_enabled(target: &SdkConfig) -> Fetched<bool> {
    let guardduty = aws_sdk_guardduty::Client::new(target);
    let detectors = guardduty
        .list_detectors()
        .send()
        .await
        .map_err(|e| error_message(&e))?;
    for id in detectors.detector_ids() {
        let d = guardduty
            .get_detector()
            .detector_id(id)
            .send()
            .await
            .map_err(|e| error_message(&e))?;
        if d.status() == Some(&aws_sdk_guardduty::types::DetectorStatus::Enabled) {
            return Ok(true);
        }
    }
    Ok(false)
}

async fn session_preferences(target: &SdkConfig) -> Fetched<Option<SessionPreferences>> {
    let ssm = aws_sdk_ssm::Client::new(target);
    match ssm
        .get_document()
        .name(domain::assurance::SESSION_MANAGER_DOCUMENT)
        .send()
        .await
    {
        Ok(doc) => {
            let content: Value = doc
                .content()
                .and_then(|c| serde_json::from_str(c).ok())
                .unwrap_or(Value::Null);
            let inputs = &content["inputs"];
            Ok(Some(SessionPreferences {
                bucket: inputs["s3BucketName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                encrypted: inputs["s3EncryptionEnabled"].as_bool().unwrap_or(false),
            }))
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_invalid_document()) =>
        {
            Ok(None)
        }
        Err(e) => Err(error_message(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated
<root_account>,arn:aws:iam::111122223333:root,2020-01-01T00:00:00+00:00,not_supported,2026-11-01T10:00:00+00:00,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A
alice,arn:aws:iam::111122223333:user/alice,2021-05-01T00:00:00+00:00,true,no_information,2021-05-01T00:00:00+00:00,N/A,false,true,2021-05-01T00:00:00+00:00,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A
";

    #[test]
    fn the_credential_report_is_read_by_column_name() {
        let rows = parse_credential_report(REPORT).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].user, ROOT_USER);
        assert!(rows[0].mfa_active);
        assert!(rows[0].password_last_used.is_some());
        let alice = &rows[1];
        assert!(alice.password_enabled && !alice.mfa_active);
        assert!(alice.password_last_used.is_none());
        assert!(alice.keys[0].active && alice.keys[0].last_used.is_none());
        assert!(alice.keys[0].last_rotated.is_some());
        assert!(!alice.keys[1].active);
        assert!(parse_credential_report("user,arn\n").is_err());
    }

    #[test]
    fn full_admin_is_allow_star_on_star_in_any_statement_encoded_or_not() {
        let admin = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},{"Effect":"Allow","Action":["*"],"Resource":"*"}]}"#;
        assert!(allows_full_admin(admin));
        assert!(allows_full_admin(&urlencoding::encode(admin)));
        let single = r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":["*"]}}"#;
        assert!(allows_full_admin(single));
        assert!(!allows_full_admin(
            r#"{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#
        ));
        assert!(!allows_full_admin(
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#
        ));
        assert!(!allows_full_admin("not json"));
    }
}
