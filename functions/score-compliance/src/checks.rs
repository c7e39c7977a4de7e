//! The direct checks, and AWS Config managed rules' results, as rule results. Pure functions of
//! [`Facts`]: every check is unit-tested against compliant and non-compliant fixtures.

use chrono::Duration;
use domain::compliance::{Evaluation, Rule, RuleResult, RuleState};
use serde_json::{Map, Value};

use crate::facts::{CredentialRow, Facts, Fetched, ROOT_USER, Trail};

/// (state, reason) of one evaluation.
pub type Outcome = (RuleState, String);

fn pass(reason: impl Into<String>) -> Outcome {
    (RuleState::Passed, reason.into())
}
fn fail(reason: impl Into<String>) -> Outcome {
    (RuleState::Failed, reason.into())
}
fn not_applicable(reason: impl Into<String>) -> Outcome {
    (RuleState::NotApplicable, reason.into())
}
/// PASSED when nothing is wrong, else FAILED listing what is.
fn none_of(wrong: Vec<String>, ok: &str, what: &str) -> Outcome {
    if wrong.is_empty() {
        pass(ok)
    } else {
        fail(format!("{what}: {}", wrong.join(", ")))
    }
}

/// Each of `items` must be `ok`: PASSED, or FAILED naming those that are not (by `name`);
/// `when_none` when there are no items to judge.
fn every<T>(
    items: impl IntoIterator<Item = T>,
    when_none: Outcome,
    ok: impl Fn(&T) -> bool,
    name: impl Fn(&T) -> String,
    passed: &str,
    failed: &str,
) -> Outcome {
    let items: Vec<T> = items.into_iter().collect();
    if items.is_empty() {
        return when_none;
    }
    none_of(
        items.iter().filter(|i| !ok(i)).map(name).collect(),
        passed,
        failed,
    )
}

/// The direct checks of regional settings: evaluated in every governed region. The others
/// judge account-wide settings (IAM, S3 Block Public Access, the multi-region trail and its
/// monitoring), read once in the home region. AWS Config rules are regional too.
pub const REGIONAL_CHECKS: &[&str] = &[
    "access-analyzer-enabled",
    "instance-profiles-attached",
    "imdsv2-required",
    "ebs-encryption-by-default",
    "config-recording",
    "vpc-flow-logs",
    "nacl-admin-ports-closed",
    "security-group-admin-ports-closed",
    "default-security-groups-closed",
    "guardduty-enabled",
    "session-manager-logging",
];

/// Is the rule judged in every governed region?
pub fn is_regional(evaluation: &Evaluation) -> bool {
    match evaluation {
        Evaluation::Check { check, .. } => REGIONAL_CHECKS.contains(&check.as_str()),
        Evaluation::ConfigRule { .. } => true,
        Evaluation::Manual { .. } => false,
    }
}

fn evaluate_in(rule: &Rule, facts: &Facts) -> Outcome {
    match &rule.evaluation {
        Evaluation::Manual { reason } => not_applicable(format!("manual control: {reason}")),
        Evaluation::ConfigRule { identifier } => config_rule(facts, identifier),
        Evaluation::Check { check, parameters } => match run(check, parameters, facts) {
            Ok(outcome) => outcome,
            Err(reason) => (RuleState::Unknown, reason),
        },
    }
}

/// One rule's result from its results in each governed region: FAILED when any region fails
/// it (naming those regions), else UNKNOWN when any could not be judged, else PASSED when any
/// passed (the rest had nothing to judge), else NOT_APPLICABLE.
pub fn across_regions(per_region: Vec<(&str, Outcome)>) -> Outcome {
    if per_region.len() == 1 {
        return per_region
            .into_iter()
            .next()
            .map(|(_, o)| o)
            .unwrap_or_else(|| not_applicable("no governed region"));
    }
    for state in [
        RuleState::Failed,
        RuleState::Unknown,
        RuleState::Passed,
        RuleState::NotApplicable,
    ] {
        let those: Vec<&(&str, Outcome)> = per_region
            .iter()
            .filter(|(_, (s, _))| *s == state)
            .collect();
        if those.is_empty() {
            continue;
        }
        let first = &those[0].1.1;
        let reason =
            if those.len() == per_region.len() && those.iter().all(|(_, (_, r))| r == first) {
                format!("in every governed region: {first}")
            } else {
                those
                    .iter()
                    .map(|(region, (_, r))| format!("{region}: {r}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            };
        return (state, reason);
    }
    unreachable!("every state was tried")
}

/// Evaluates one rule against an account's facts, one per governed region (the home region's
/// first): a regional rule in each region, an account-wide one in the home region.
pub fn evaluate(rule: &Rule, facts: &[Facts]) -> RuleResult {
    let (state, reason) = match facts {
        [] => (RuleState::Unknown, "no facts were read".to_owned()),
        [home, ..] if !is_regional(&rule.evaluation) => evaluate_in(rule, home),
        all => across_regions(
            all.iter()
                .map(|f| (f.region.as_str(), evaluate_in(rule, f)))
                .collect(),
        ),
    };
    RuleResult {
        rule_id: rule.id.clone(),
        state,
        reason,
    }
}

/// A rule's result for an account that could not be entered: manual rules stay unscored,
/// every other rule is UNKNOWN with the reason.
pub fn unreachable(rule: &Rule, reason: &str) -> RuleResult {
    let (state, reason) = match &rule.evaluation {
        Evaluation::Manual { reason } => not_applicable(format!("manual control: {reason}")),
        _ => (RuleState::Unknown, reason.to_owned()),
    };
    RuleResult {
        rule_id: rule.id.clone(),
        state,
        reason,
    }
}

fn config_rule(facts: &Facts, identifier: &str) -> Outcome {
    let deployed = match &facts.config_rules {
        Ok(rules) => rules.get(identifier),
        Err(e) => return (RuleState::Unknown, format!("AWS Config rules: {e}")),
    };
    let Some(results) = deployed else {
        return not_applicable(format!(
            "no data: the AWS Config managed rule {identifier} is not deployed in the account"
        ));
    };
    let has = |t: &str| results.iter().any(|r| r == t);
    if has("NON_COMPLIANT") {
        fail(format!(
            "AWS Config rule {identifier} reports NON_COMPLIANT"
        ))
    } else if has("INSUFFICIENT_DATA") {
        (
            RuleState::Unknown,
            format!("AWS Config rule {identifier} has insufficient data"),
        )
    } else if has("COMPLIANT") {
        pass(format!("AWS Config rule {identifier} reports COMPLIANT"))
    } else {
        not_applicable(format!(
            "AWS Config rule {identifier} reports NOT_APPLICABLE"
        ))
    }
}

fn param_i64(p: &Map<String, Value>, name: &str) -> Result<i64, String> {
    p.get(name)
        .and_then(Value::as_i64)
        .ok_or_else(|| format!("the rule's check needs the integer parameter {name}"))
}
fn param_str<'a>(p: &'a Map<String, Value>, name: &str) -> Result<&'a str, String> {
    p.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("the rule's check needs the string parameter {name}"))
}
fn param_ports(p: &Map<String, Value>) -> Result<Vec<i32>, String> {
    p.get("Ports")
        .and_then(Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .filter_map(|v| v.as_i64().map(|n| n as i32))
                .collect()
        })
        .ok_or_else(|| "the rule's check needs the parameter Ports".into())
}

fn fetched<'a, T>(source: &'a Fetched<T>, what: &str) -> Result<&'a T, String> {
    source.as_ref().map_err(|e| format!("{what}: {e}"))
}

fn users(report: &[CredentialRow]) -> impl Iterator<Item = &CredentialRow> {
    report.iter().filter(|r| r.user != ROOT_USER)
}

/// Trails that satisfy CIS 3.1: multi-region and logging.
fn logging_multi_region(trails: &[Trail]) -> impl Iterator<Item = &Trail> {
    trails.iter().filter(|t| t.multi_region && t.logging)
}

fn covers(ports: Option<(i32, i32)>, port: i32) -> bool {
    ports.is_none_or(|(from, to)| (from == -1 && to == -1) || (from <= port && port <= to))
}

/// A direct check: the outcome for the facts, given the rule's parameters; Err when the facts
/// it needs could not be read (the rule is then UNKNOWN with that reason).
pub type Check = fn(&Map<String, Value>, &Facts) -> Result<Outcome, String>;

/// Every direct check the bundle may name, by name.
pub const CHECKS: &[(&str, Check)] = &[
    ("root-access-keys-absent", root_access_keys_absent),
    ("root-mfa-enabled", root_mfa_enabled),
    ("root-hardware-mfa", root_hardware_mfa),
    ("root-not-used", root_not_used),
    ("password-min-length", password_min_length),
    ("password-reuse-prevention", password_reuse_prevention),
    ("console-users-mfa", console_users_mfa),
    (
        "no-unused-initial-access-keys",
        no_unused_initial_access_keys,
    ),
    ("unused-credentials-disabled", unused_credentials_disabled),
    ("one-active-access-key", one_active_access_key),
    ("access-keys-rotated", access_keys_rotated),
    ("permissions-through-groups", permissions_through_groups),
    ("no-full-admin-policies", no_full_admin_policies),
    ("support-role", support_role),
    ("access-analyzer-enabled", access_analyzer_enabled),
    ("policy-not-attached", policy_not_attached),
    ("instance-profiles-attached", instance_profiles_attached),
    ("imdsv2-required", imdsv2_required),
    (
        "no-expired-server-certificates",
        no_expired_server_certificates,
    ),
    (
        "s3-account-public-access-block",
        s3_account_public_access_block,
    ),
    ("ebs-encryption-by-default", ebs_encryption_by_default),
    ("cloudtrail-multi-region", cloudtrail_multi_region),
    (
        "cloudtrail-log-file-validation",
        cloudtrail_log_file_validation,
    ),
    ("cloudtrail-kms-encryption", cloudtrail_kms_encryption),
    ("cloudtrail-s3-data-events", cloudtrail_s3_data_events),
    ("metric-filter-alarm", metric_filter_alarm),
    ("config-recording", config_recording),
    ("vpc-flow-logs", vpc_flow_logs),
    ("nacl-admin-ports-closed", nacl_admin_ports_closed),
    (
        "security-group-admin-ports-closed",
        security_group_admin_ports_closed,
    ),
    (
        "default-security-groups-closed",
        default_security_groups_closed,
    ),
    ("guardduty-enabled", guardduty_enabled),
    ("session-manager-logging", session_manager_logging),
    ("baseline-trail", baseline_trail),
];

/// The check called `name`, if this build has it.
pub fn check(name: &str) -> Option<Check> {
    CHECKS.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
}

fn run(name: &str, p: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    let check = check(name)
        .ok_or_else(|| format!("the bundle names a check this build does not have: {name}"))?;
    check(p, f)
}

fn days(p: &Map<String, Value>, name: &str) -> Result<Duration, String> {
    param_i64(p, name).map(Duration::days)
}

fn root_access_keys_absent(_: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    let s = fetched(&f.account_summary, "IAM account summary")?;
    Ok(
        match s.get("AccountAccessKeysPresent").copied().unwrap_or(0) {
            0 => pass("the root user has no access keys"),
            _ => fail("the root user has an access key"),
        },
    )
}

/// A root user without credentials (centralized root access: none to sign in with, none to
/// recover) has nothing for MFA to protect: CIS 1.5 and 1.6 are met. None: the root user has
/// credentials, or is not centrally managed (the management account's).
fn root_without_credentials(f: &Facts) -> Result<Option<Outcome>, String> {
    Ok(
        match fetched(
            &f.root_credentials,
            "the root user's credentials (centralized root access)",
        )? {
            Some(c) if c.is_empty() => Some(pass(
                "the root user has no credentials (centralized root access): no one can sign in as root",
            )),
            _ => None,
        },
    )
}

fn root_mfa_enabled(_: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    let s = fetched(&f.account_summary, "IAM account summary")?;
    if s.get("AccountMFAEnabled").copied().unwrap_or(0) == 1 {
        return Ok(pass("MFA is enabled for the root user"));
    }
    Ok(root_without_credentials(f)?.unwrap_or_else(|| fail("the root user has no MFA device")))
}

fn root_hardware_mfa(_: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    let s = fetched(&f.account_summary, "IAM account summary")?;
    let virtual_mfa = *fetched(&f.root_virtual_mfa, "IAM virtual MFA devices")?;
    let outcome = match (
        s.get("AccountMFAEnabled").copied().unwrap_or(0),
        virtual_mfa,
    ) {
        (1, false) => pass("the root user's MFA is a hardware device"),
        (1, true) => fail("the root user's MFA is a virtual device"),
        _ => fail("the root user has no MFA device"),
    };
    Ok(match outcome.0 {
        RuleState::Passed => outcome,
        _ => root_without_credentials(f)?.unwrap_or(outcome),
    })
}

fn root_not_used(p: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    let report = fetched(&f.credential_report, "IAM credential report")?;
    let since = f.now - days(p, "Days")?;
    let root = report
        .iter()
        .find(|r| r.user == ROOT_USER)
        .ok_or("the credential report has no root user row")?;
    let used = [
        root.password_last_used,
        root.keys[0].last_used,
        root.keys[1].last_used,
    ]
    .into_iter()
    .flatten()
    .filter(|t| *t > since)
    .max();
    Ok(match used {
        None => pass(format!(
            "the root user was not used in the last {} days",
            p["Days"]
        )),
        Some(t) => fail(format!("the root user was used at {}", t.to_rfc3339())),
    })
}

fn password_min_length(p: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    let want = param_i64(p, "MinimumPasswordLength")? as i32;
    Ok(match fetched(&f.password_policy, "IAM password policy")? {
        None => fail("the account has no IAM password policy"),
        Some(pp) if pp.minimum_length >= want => pass(format!(
            "passwords need at least {} characters",
            pp.minimum_length
        )),
        Some(pp) => fail(format!(
            "passwords need only {} characters (at least {want} wanted)",
            pp.minimum_length
        )),
    })
}

fn password_reuse_prevention(p: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    let want = param_i64(p, "PasswordReusePrevention")? as i32;
    Ok(match fetched(&f.password_policy, "IAM password policy")? {
        None => fail("the account has no IAM password policy"),
        Some(pp) if pp.reuse_prevention >= want => pass(format!(
            "the last {} passwords cannot be reused",
            pp.reuse_prevention
        )),
        Some(pp) => fail(format!(
            "password reuse prevention is {} (at least {want} wanted)",
            pp.reuse_prevention
        )),
    })
}

fn console_users_mfa(_: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    let report = fetched(&f.credential_report, "IAM credential report")?;
    Ok(every(
        users(report).filter(|r| r.password_enabled),
        not_applicable("no IAM user has a console password"),
        |r| r.mfa_active,
        |r| r.user.clone(),
        "every IAM user with a console password has MFA",
        "console users without MFA",
    ))
}

fn no_unused_initial_access_keys(_: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    let report = fetched(&f.credential_report, "IAM credential report")?;
    Ok(none_of(
        users(report)
            .filter(|r| {
                r.password_enabled && r.keys.iter().any(|k| k.active && k.last_used.is_none())
            })
            .map(|r| r.user.clone())
            .collect(),
        "no console user has an active access key that was never used",
        "console users with never-used active access keys",
    ))
}

fn unused_credentials_disabled(p: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    let report = fetched(&f.credential_report, "IAM credential report")?;
    let since = f.now - days(p, "Days")?;
    let stale = |used: Option<chrono::DateTime<chrono::Utc>>,
                 set: Option<chrono::DateTime<chrono::Utc>>| {
        used.or(set).is_some_and(|t| t < since)
    };
    let mut wrong = Vec::new();
    for r in users(report) {
        if r.password_enabled && stale(r.password_last_used, r.password_last_changed.or(r.created))
        {
            wrong.push(format!("{} (password)", r.user));
        }
        for (i, k) in r.keys.iter().enumerate() {
            if k.active && stale(k.last_used, k.last_rotated) {
                wrong.push(format!("{} (access key {})", r.user, i + 1));
            }
        }
    }
    Ok(none_of(
        wrong,
        "no enabled credential has been unused that long",
        &format!("credentials unused for {} days or more", p["Days"]),
    ))
}

fn one_active_access_key(_: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    let report = fetched(&f.credential_report, "IAM credential report")?;
    Ok(none_of(
        users(report)
            .filter(|r| r.keys.iter().all(|k| k.active))
            .map(|r| r.user.clone())
            .collect(),
        "no IAM user has two active access keys",
        "IAM users with two active access keys",
    ))
}

fn access_keys_rotated(p: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    let report = fetched(&f.credential_report, "IAM credential report")?;
    let since = f.now - days(p, "Days")?;
    let mut wrong = Vec::new();
    for r in users(report) {
        for (i, k) in r.keys.iter().enumerate() {
            if k.active && k.last_rotated.is_some_and(|t| t < since) {
                wrong.push(format!("{} (access key {})", r.user, i + 1));
            }
        }
    }
    Ok(none_of(
        wrong,
        "every active access key was rotated recently",
        &format!("access keys older than {} days", p["Days"]),
    ))
}

fn permissions_through_groups(_: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    let count = *fetched(&f.users, "IAM users")?;
    let with = fetched(&f.users_with_own_policies, "IAM users")?;
    Ok(if count == 0 {
        not_applicable("the account has no IAM users")
    } else {
        none_of(
            with.clone(),
            "IAM users get permissions only through groups",
            "IAM users with policies of their own",
        )
    })
}

fn no_full_admin_policies(_: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    Ok(none_of(
        fetched(&f.full_admin_policies, "IAM policies")?.clone(),
        "no attached customer managed policy allows \"*\" on \"*\"",
        "attached policies allowing \"*\" on \"*\"",
    ))
}

fn support_role(p: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    let arn = param_str(p, "PolicyArn")?;
    let attached = f
        .policy_attachments
        .get(arn)
        .ok_or_else(|| format!("{arn} was not read"))?;
    Ok(match fetched(attached, arn)? {
        0 => fail(format!("no user, group or role has {arn}")),
        n => pass(format!("{n} user(s), group(s) or role(s) have {arn}")),
    })
}

fn access_analyzer_enabled(_: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    let analyzers = fetched(&f.access_analyzers, "IAM Access Analyzer")?;
    Ok(
        match analyzers.iter().find(|(_, status)| status == "ACTIVE") {
            Some((name, _)) => pass(format!("IAM Access Analyzer {name} is active")),
            None if analyzers.is_empty() => fail("the region has no IAM Access Analyzer"),
            None => fail(format!(
                "no IAM Access Analyzer is active: {}",
                analyzers
                    .iter()
                    .map(|(n, s)| format!("{n} ({s})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        },
    )
}

fn policy_not_attached(p: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    let arn = param_str(p, "PolicyArn")?;
    let attached = f
        .policy_attachments
        .get(arn)
        .ok_or_else(|| format!("{arn} was not read"))?;
    Ok(match fetched(attached, arn)? {
        0 => pass(format!("no user, group or role has {arn}")),
        n => fail(format!("{n} user(s), group(s) or role(s) have {arn}")),
    })
}

fn instance_profiles_attached(_: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    every_instance(
        f,
        |i| i.instance_profile,
        "every instance has an instance profile",
        "instances without an instance profile",
    )
}

/// Every instance requires IMDSv2, and so will every instance launched from now on: the
/// account's instance metadata defaults require it.
fn imdsv2_required(_: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    let by_default = *fetched(&f.imdsv2_by_default, "EC2 instance metadata defaults")?;
    let instances = every_instance(
        f,
        |i| i.imdsv2_required,
        "every instance requires IMDSv2",
        "instances that allow IMDSv1",
    )?;
    Ok(match (instances, by_default) {
        ((RuleState::Failed, reason), _) => fail(reason),
        (_, false) => fail(
            "the account's instance metadata defaults do not require IMDSv2: new instances may allow IMDSv1",
        ),
        ((RuleState::Passed, reason), true) => {
            pass(format!("{reason}, and new instances require it by default"))
        }
        (_, true) => pass("new instances require IMDSv2 by default (the account has no instances)"),
    })
}

fn no_expired_server_certificates(_: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    Ok(none_of(
        fetched(&f.expired_server_certificates, "IAM server certificates")?.clone(),
        "no expired server certificate is stored in IAM",
        "expired server certificates",
    ))
}

fn s3_account_public_access_block(_: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    Ok(
        match fetched(&f.public_access_block, "S3 Block Public Access")? {
            Some(settings) if settings.iter().all(|s| *s) => {
                pass("all four account-level Block Public Access settings are on")
            }
            Some(_) => fail("some account-level Block Public Access settings are off"),
            None => fail("the account has no S3 Block Public Access configuration"),
        },
    )
}

fn ebs_encryption_by_default(_: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    Ok(
        match *fetched(&f.ebs_encryption_by_default, "EBS encryption by default")? {
            true => pass("new EBS volumes are encrypted by default"),
            false => fail("EBS encryption by default is off"),
        },
    )
}

fn cloudtrail_multi_region(_: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    let trails = fetched(&f.trails, "CloudTrail")?;
    Ok(match logging_multi_region(trails).next() {
        Some(t) => pass(format!("trail {} is multi-region and logging", t.name)),
        None => fail("no multi-region trail is logging"),
    })
}

fn cloudtrail_log_file_validation(_: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    let trails = fetched(&f.trails, "CloudTrail")?;
    Ok(every(
        logging_multi_region(trails),
        fail("no multi-region trail is logging"),
        |t| t.log_file_validation,
        |t| t.name.clone(),
        "log file validation is on for every logging multi-region trail",
        "trails without log file validation",
    ))
}

fn cloudtrail_kms_encryption(_: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    let trails = fetched(&f.trails, "CloudTrail")?;
    Ok(every(
        trails,
        fail("the account has no trail"),
        |t| t.kms_key,
        |t| t.name.clone(),
        "every trail encrypts its logs with a KMS key",
        "trails without a KMS key",
    ))
}

fn cloudtrail_s3_data_events(p: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    let wanted = param_str(p, "ReadWriteType")?;
    let trails = fetched(&f.trails, "CloudTrail")?;
    Ok(
        match logging_multi_region(trails).find(|t| {
            t.s3_object_events
                .iter()
                .any(|rw| rw == "All" || rw == wanted)
        }) {
            Some(t) => pass(format!("trail {} logs S3 object events ({wanted})", t.name)),
            None => fail(format!(
                "no logging multi-region trail logs S3 object-level events ({wanted})"
            )),
        },
    )
}

fn config_recording(_: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    let recorders = fetched(&f.config_recorders, "AWS Config")?;
    Ok(match recorders.first() {
        None => fail("the account has no AWS Config recorder"),
        Some(r) if !r.recording => fail("the AWS Config recorder is not recording"),
        Some(r) if !r.all_supported => {
            fail("the AWS Config recorder does not record all resource types")
        }
        // Global resource types are recorded once, in the home region.
        Some(r) if f.home && !r.include_global => {
            fail("the AWS Config recorder of the home region does not record global resource types")
        }
        Some(_) if f.home => pass("AWS Config records all resource types, global ones included"),
        Some(_) => {
            pass("AWS Config records all regional resource types (global ones in the home region)")
        }
    })
}

fn vpc_flow_logs(_: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    let vpcs = fetched(&f.vpcs, "VPCs")?;
    Ok(every(
        vpcs,
        not_applicable("the account has no VPC in this region"),
        |(_, logged)| *logged,
        |(id, _)| id.clone(),
        "every VPC has a flow log",
        "VPCs without a flow log",
    ))
}

/// A network ACL admits the world to a port when, of its inbound entries for the whole IPv4 or
/// IPv6 internet that cover the port over TCP, the lowest-numbered one (the one AWS applies
/// first) allows: a deny ahead of an allow-all closes the port.
fn nacl_admin_ports_closed(p: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    let ports = param_ports(p)?;
    let entries = fetched(&f.nacl_entries, "network ACLs")?;
    let mut acls: Vec<&str> = entries.iter().map(|e| e.acl.as_str()).collect();
    acls.sort();
    acls.dedup();
    let open: Vec<String> = acls
        .into_iter()
        .filter(|acl| {
            ["0.0.0.0/0", "::/0"].iter().any(|world| {
                ports.iter().any(|port| {
                    entries
                        .iter()
                        .filter(|e| {
                            e.acl == *acl
                                && !e.egress
                                && e.cidr == *world
                                && (e.protocol == "-1" || e.protocol == "6")
                                && covers(e.ports, *port)
                        })
                        .min_by_key(|e| e.rule_number)
                        .is_some_and(|first| first.allow)
                })
            })
        })
        .map(str::to_owned)
        .collect();
    Ok(none_of(
        open,
        "no network ACL admits the world to remote administration ports",
        "network ACLs admitting 0.0.0.0/0 or ::/0 to remote administration ports",
    ))
}

fn security_group_admin_ports_closed(p: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    let cidr = param_str(p, "Cidr")?;
    let ports = param_ports(p)?;
    let groups = fetched(&f.security_groups, "security groups")?;
    Ok(none_of(
        groups
            .iter()
            .filter(|g| {
                g.ingress.iter().any(|perm| {
                    perm.cidrs.iter().any(|c| c == cidr)
                        && (perm.protocol == "-1" || perm.protocol == "tcp" || perm.protocol == "6")
                        && ports.iter().any(|port| covers(perm.ports, *port))
                })
            })
            .map(|g| g.id.clone())
            .collect(),
        &format!("no security group admits {cidr} to remote administration ports"),
        &format!("security groups admitting {cidr} to remote administration ports"),
    ))
}

fn default_security_groups_closed(_: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    let groups = fetched(&f.security_groups, "security groups")?;
    Ok(every(
        groups.iter().filter(|g| g.name == "default"),
        not_applicable("the account has no default security group in this region"),
        |g| g.ingress.is_empty() && g.egress.is_empty(),
        |g| g.id.clone(),
        "every default security group allows no traffic",
        "default security groups with rules",
    ))
}

fn guardduty_enabled(_: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    Ok(match *fetched(&f.guardduty_enabled, "GuardDuty")? {
        true => pass("a GuardDuty detector is enabled"),
        false => fail("no GuardDuty detector is enabled"),
    })
}

fn session_manager_logging(_: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    Ok(
        match fetched(&f.session_preferences, "Session Manager preferences")? {
            Some(s) if !s.bucket.is_empty() && s.encrypted => pass(format!(
                "sessions are logged to s3://{}, encrypted",
                s.bucket
            )),
            Some(s) if !s.bucket.is_empty() => fail(format!(
                "sessions are logged to s3://{} unencrypted",
                s.bucket
            )),
            _ => fail("Session Manager sessions are not logged to S3"),
        },
    )
}

fn baseline_trail(p: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    let name = param_str(p, "TrailName")?;
    let trails = fetched(&f.trails, "CloudTrail")?;
    Ok(match trails.iter().find(|t| t.name == name) {
        Some(t) if t.logging => pass(format!("trail {name} is logging")),
        Some(_) => fail(format!("trail {name} is not logging")),
        None => fail(format!("trail {name} is missing")),
    })
}

/// PASSED when every EC2 instance is `ok`; NOT_APPLICABLE without instances.
fn every_instance(
    f: &Facts,
    ok: impl Fn(&crate::facts::Instance) -> bool,
    passed: &str,
    failed: &str,
) -> Result<Outcome, String> {
    Ok(every(
        fetched(&f.instances, "EC2 instances")?,
        not_applicable("the account has no EC2 instances in this region"),
        |i| ok(i),
        |i| i.id.clone(),
        passed,
        failed,
    ))
}

/// CIS section 4: a logging multi-region trail delivers to CloudWatch Logs, a metric filter on
/// that log group matches the control's events (its pattern has every term), and an alarm with
/// an action watches the filter's metric.
fn metric_filter_alarm(p: &Map<String, Value>, f: &Facts) -> Result<Outcome, String> {
    let terms: Vec<&str> = p
        .get("FilterPatternTerms")
        .and_then(Value::as_array)
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .ok_or("the rule's check needs the parameter FilterPatternTerms")?;
    let trails = fetched(&f.trails, "CloudTrail")?;
    let groups: Vec<&str> = logging_multi_region(trails)
        .filter_map(|t| t.log_group.as_deref())
        .collect();
    if groups.is_empty() {
        return Ok(fail(
            "no logging multi-region trail delivers to CloudWatch Logs",
        ));
    }
    let monitoring = fetched(&f.monitoring, "CloudWatch metric filters and alarms")?;
    let matching: Vec<_> = monitoring
        .filters
        .iter()
        .filter(|mf| groups.contains(&mf.log_group.as_str()))
        .filter(|mf| terms.iter().all(|t| mf.pattern.contains(t)))
        .collect();
    if matching.is_empty() {
        return Ok(fail(format!(
            "no metric filter on the trail's log group matches {}",
            terms.join(" + ")
        )));
    }
    Ok(
        match matching.iter().find(|mf| {
            mf.metrics
                .iter()
                .any(|m| monitoring.alarmed_metrics.contains(m))
        }) {
            Some(mf) => pass(format!("metric filter {:?} has an alarm", mf.pattern)),
            None => fail("the metric filter's metric has no alarm with an action"),
        },
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use chrono::Utc;
    use domain::compliance::Bundle;

    use super::*;
    use crate::facts::*;
    use crate::fixtures::compliant;

    fn rule(id: &str) -> &'static Rule {
        Bundle::builtin()
            .rule(id)
            .unwrap_or_else(|| panic!("no rule {id}"))
    }

    fn state(id: &str, f: &Facts) -> RuleState {
        evaluate(rule(id), std::slice::from_ref(f)).state
    }

    /// `id` passes on the compliant fixture and fails once `breaks` changed it.
    fn flips(id: &str, breaks: impl FnOnce(&mut Facts)) {
        let good = compliant();
        let r = evaluate(rule(id), std::slice::from_ref(&good));
        assert_eq!(
            r.state,
            RuleState::Passed,
            "{id} on the compliant fixture: {}",
            r.reason
        );
        let mut bad = compliant();
        breaks(&mut bad);
        let r = evaluate(rule(id), std::slice::from_ref(&bad));
        assert_eq!(
            r.state,
            RuleState::Failed,
            "{id} after the change: {}",
            r.reason
        );
        assert!(!r.reason.is_empty());
    }

    /// The compliant fixture as seen in a second governed region.
    fn elsewhere(region: &str) -> Facts {
        Facts {
            region: region.into(),
            home: false,
            ..compliant()
        }
    }

    #[test]
    fn a_regional_rule_fails_when_one_region_fails_it_and_names_that_region() {
        let home = compliant();
        let mut ireland = elsewhere("eu-west-1");
        ireland.guardduty_enabled = Ok(false);
        let r = evaluate(rule("accounts-guardduty"), &[home.clone(), ireland]);
        assert_eq!(r.state, RuleState::Failed, "{}", r.reason);
        assert!(r.reason.starts_with("eu-west-1: "), "{}", r.reason);
        assert!(!r.reason.contains("us-east-1"), "{}", r.reason);
        let both = evaluate(
            rule("accounts-guardduty"),
            &[home.clone(), elsewhere("eu-west-1")],
        );
        assert_eq!(both.state, RuleState::Passed);
        assert!(
            both.reason.starts_with("in every governed region: "),
            "{}",
            both.reason
        );
    }

    #[test]
    fn an_account_wide_rule_is_judged_once_in_the_home_region() {
        let home = compliant();
        let mut ireland = elsewhere("eu-west-1");
        // What another region reports of account-wide settings is not read.
        ireland.password_policy = Ok(None);
        let r = evaluate(rule("cis-1.8"), &[home, ireland]);
        assert_eq!(r.state, RuleState::Passed, "{}", r.reason);
        assert!(!is_regional(&rule("cis-1.8").evaluation));
        assert!(is_regional(&rule("cis-2.2.1").evaluation));
        assert!(
            is_regional(&rule("cis-2.1.1").evaluation),
            "AWS Config rules are regional"
        );
    }

    #[test]
    fn failures_outrank_unknowns_which_outrank_passes_and_nothing_to_judge() {
        let o = |s: RuleState, r: &str| (s, r.to_owned());
        let r = across_regions(vec![
            ("us-east-1", o(RuleState::Unknown, "throttled")),
            ("eu-west-1", o(RuleState::Failed, "off")),
            ("ap-south-1", o(RuleState::Passed, "on")),
        ]);
        assert_eq!(r, o(RuleState::Failed, "eu-west-1: off"));
        let r = across_regions(vec![
            ("us-east-1", o(RuleState::Passed, "on")),
            ("eu-west-1", o(RuleState::Unknown, "throttled")),
        ]);
        assert_eq!(r, o(RuleState::Unknown, "eu-west-1: throttled"));
        let r = across_regions(vec![
            ("us-east-1", o(RuleState::NotApplicable, "no VPC")),
            ("eu-west-1", o(RuleState::Passed, "flow logs on")),
        ]);
        assert_eq!(r, o(RuleState::Passed, "eu-west-1: flow logs on"));
        let one = across_regions(vec![("us-east-1", o(RuleState::Failed, "off"))]);
        assert_eq!(one, o(RuleState::Failed, "off"), "one region: no prefix");
    }

    #[test]
    fn global_resource_types_are_wanted_in_the_recorder_of_the_home_region_only() {
        let regional_only = |f: &mut Facts| {
            f.config_recorders = Ok(vec![ConfigRecorder {
                all_supported: true,
                include_global: false,
                recording: true,
            }])
        };
        let mut ireland = elsewhere("eu-west-1");
        regional_only(&mut ireland);
        assert_eq!(state("cis-3.3", &ireland), RuleState::Passed);
        flips("cis-3.3", regional_only);
    }

    #[test]
    fn a_root_user_without_credentials_needs_no_mfa() {
        let without = |f: &mut Facts| {
            f.account_summary = Ok(HashMap::from([
                ("AccountMFAEnabled".into(), 0),
                ("AccountAccessKeysPresent".into(), 0),
            ]));
            f.root_credentials = Ok(Some(domain::assurance::RootCredentials::default()));
        };
        let mut f = compliant();
        without(&mut f);
        for id in ["cis-1.5", "cis-1.6"] {
            let r = evaluate(rule(id), std::slice::from_ref(&f));
            assert_eq!(r.state, RuleState::Passed, "{id}: {}", r.reason);
            assert!(r.reason.contains("no credentials"), "{}", r.reason);
        }
        // A password and no MFA: the benchmark's failure.
        f.root_credentials = Ok(Some(domain::assurance::RootCredentials {
            password: true,
            ..Default::default()
        }));
        assert_eq!(state("cis-1.5", &f), RuleState::Failed);
        assert_eq!(state("cis-1.6", &f), RuleState::Failed);
        // Not centrally managed (the management account): MFA is what counts.
        f.root_credentials = Ok(None);
        assert_eq!(state("cis-1.5", &f), RuleState::Failed);
        // The audit failed and MFA is off: not known.
        f.root_credentials = Err("AccessDenied".into());
        assert_eq!(state("cis-1.5", &f), RuleState::Unknown);
    }

    #[test]
    fn an_active_access_analyzer_is_wanted_in_every_region() {
        flips("cis-1.20", |f| f.access_analyzers = Ok(vec![]));
        flips("cis-1.20", |f| {
            f.access_analyzers = Ok(vec![("a".into(), "DISABLED".into())])
        });
        let mut ireland = elsewhere("eu-west-1");
        ireland.access_analyzers = Ok(vec![]);
        let r = evaluate(rule("cis-1.20"), &[compliant(), ireland]);
        assert_eq!(r.state, RuleState::Failed);
        assert_eq!(r.reason, "eu-west-1: the region has no IAM Access Analyzer");
    }

    #[test]
    fn imdsv2_is_required_of_instances_and_by_the_accounts_defaults() {
        flips("cis-5.6", |f| f.imdsv2_by_default = Ok(false));
        let mut none = compliant();
        none.instances = Ok(vec![]);
        assert_eq!(state("cis-5.6", &none), RuleState::Passed);
        none.imdsv2_by_default = Ok(false);
        assert_eq!(state("cis-5.6", &none), RuleState::Failed);
        none.imdsv2_by_default = Err("throttled".into());
        assert_eq!(state("cis-5.6", &none), RuleState::Unknown);
    }

    #[test]
    fn every_check_the_bundle_names_exists_and_every_check_is_used() {
        for r in &Bundle::builtin().rules {
            if let Evaluation::Check { check: name, .. } = &r.evaluation {
                assert!(check(name).is_some(), "{}: no check {name}", r.id);
            }
        }
        for (name, _) in CHECKS {
            assert!(
                Bundle::builtin().rules.iter().any(
                    |r| matches!(&r.evaluation, Evaluation::Check { check: c, .. } if c == name)
                ),
                "{name} is not used"
            );
            assert_eq!(
                CHECKS.iter().filter(|(n, _)| n == name).count(),
                1,
                "{name} twice in the table"
            );
        }
    }

    #[test]
    fn a_check_this_build_does_not_have_is_unknown_with_the_reason() {
        let mut rule = rule("cis-1.8").clone();
        rule.evaluation = Evaluation::Check {
            check: "crystal-ball".into(),
            parameters: Map::new(),
        };
        let r = evaluate(&rule, &[compliant()]);
        assert_eq!(r.state, RuleState::Unknown);
        assert!(r.reason.contains("crystal-ball"), "{}", r.reason);
    }

    #[test]
    fn the_compliant_fixture_passes_every_direct_check() {
        let f = compliant();
        for r in &Bundle::builtin().rules {
            if matches!(r.evaluation, Evaluation::Check { .. }) {
                let result = evaluate(r, std::slice::from_ref(&f));
                assert_eq!(
                    result.state,
                    RuleState::Passed,
                    "{}: {}",
                    r.id,
                    result.reason
                );
            }
        }
    }

    #[test]
    fn root_user_checks() {
        flips("cis-1.4", |f| {
            f.account_summary = Ok(HashMap::from([
                ("AccountMFAEnabled".into(), 1),
                ("AccountAccessKeysPresent".into(), 1),
            ]))
        });
        flips("cis-1.5", |f| {
            f.account_summary = Ok(HashMap::from([("AccountMFAEnabled".into(), 0)]))
        });
        flips("cis-1.6", |f| f.root_virtual_mfa = Ok(true));
        flips("cis-1.7", |f| {
            if let Ok(rows) = &mut f.credential_report {
                rows[0].password_last_used = Some(Utc::now() - Duration::days(1));
            }
        });
    }

    #[test]
    fn password_policy_checks() {
        flips("cis-1.8", |f| f.password_policy = Ok(None));
        flips("cis-1.8", |f| {
            f.password_policy = Ok(Some(PasswordPolicy {
                minimum_length: 8,
                reuse_prevention: 24,
            }))
        });
        flips("cis-1.9", |f| {
            f.password_policy = Ok(Some(PasswordPolicy {
                minimum_length: 14,
                reuse_prevention: 5,
            }))
        });
    }

    fn alice(f: &mut Facts) -> &mut CredentialRow {
        match &mut f.credential_report {
            Ok(rows) => &mut rows[1],
            Err(_) => unreachable!(),
        }
    }

    #[test]
    fn iam_user_checks() {
        flips("cis-1.10", |f| alice(f).mfa_active = false);
        flips("cis-1.11", |f| alice(f).keys[0].last_used = None);
        flips("cis-1.12", |f| {
            alice(f).password_last_used = Some(Utc::now() - Duration::days(60))
        });
        flips("cis-1.12", |f| {
            alice(f).keys[0].last_used = Some(Utc::now() - Duration::days(50))
        });
        flips("cis-1.13", |f| {
            alice(f).keys[1] = AccessKey {
                active: true,
                ..Default::default()
            }
        });
        flips("cis-1.14", |f| {
            alice(f).keys[0].last_rotated = Some(Utc::now() - Duration::days(120))
        });
        flips("cis-1.15", |f| {
            f.users_with_own_policies = Ok(vec!["alice (AdministratorAccess)".into()])
        });
        flips("cis-1.16", |f| {
            f.full_admin_policies = Ok(vec!["god-mode".into()])
        });
        flips("cis-1.17", |f| {
            f.policy_attachments
                .insert("arn:aws:iam::aws:policy/AWSSupportAccess".into(), Ok(0));
        });
        flips("cis-1.19", |f| {
            f.expired_server_certificates = Ok(vec!["old".into()])
        });
        flips("cis-1.22", |f| {
            f.policy_attachments.insert(
                "arn:aws:iam::aws:policy/AWSCloudShellFullAccess".into(),
                Ok(2),
            );
        });
        let mut nobody = compliant();
        nobody.credential_report = Ok(vec![]);
        assert_eq!(state("cis-1.10", &nobody), RuleState::NotApplicable);
        nobody.users = Ok(0);
        assert_eq!(state("cis-1.15", &nobody), RuleState::NotApplicable);
    }

    #[test]
    fn storage_and_instance_checks() {
        flips("cis-2.1.4", |f| f.public_access_block = Ok(None));
        flips("cis-2.1.4", |f| {
            f.public_access_block = Ok(Some([true, true, false, true]))
        });
        flips("cis-2.2.1", |f| f.ebs_encryption_by_default = Ok(false));
        flips("cis-1.18", |f| {
            f.instances = Ok(vec![Instance {
                id: "i-2".into(),
                imdsv2_required: true,
                instance_profile: false,
            }])
        });
        flips("cis-5.6", |f| {
            f.instances = Ok(vec![Instance {
                id: "i-2".into(),
                imdsv2_required: false,
                instance_profile: true,
            }])
        });
        let mut empty = compliant();
        empty.instances = Ok(vec![]);
        assert_eq!(state("cis-1.18", &empty), RuleState::NotApplicable);
    }

    fn trail(f: &mut Facts) -> &mut Trail {
        match &mut f.trails {
            Ok(trails) => &mut trails[0],
            Err(_) => unreachable!(),
        }
    }

    #[test]
    fn logging_checks() {
        flips("cis-3.1", |f| trail(f).multi_region = false);
        flips("cis-3.1", |f| trail(f).logging = false);
        flips("cis-3.2", |f| trail(f).log_file_validation = false);
        flips("cis-3.5", |f| trail(f).kms_key = false);
        flips("cis-3.8", |f| {
            trail(f).s3_object_events = vec!["ReadOnly".into()]
        });
        flips("cis-3.9", |f| {
            trail(f).s3_object_events = vec!["WriteOnly".into()]
        });
        flips("cis-3.3", |f| f.config_recorders = Ok(vec![]));
        flips("cis-3.3", |f| {
            f.config_recorders = Ok(vec![ConfigRecorder {
                all_supported: true,
                include_global: true,
                recording: false,
            }])
        });
        flips("cis-3.7", |f| f.vpcs = Ok(vec![("vpc-1".into(), false)]));
        flips("accounts-baseline-trail", |f| {
            trail(f).name = "other".into()
        });
        flips("accounts-guardduty", |f| f.guardduty_enabled = Ok(false));
        flips("accounts-session-logging", |f| {
            f.session_preferences = Ok(None)
        });
        flips("accounts-session-logging", |f| {
            f.session_preferences = Ok(Some(SessionPreferences {
                bucket: "b".into(),
                encrypted: false,
            }))
        });
    }

    #[test]
    fn monitoring_checks() {
        flips("cis-4.1", |f| trail(f).log_group = None);
        flips("cis-4.1", |f| {
            if let Ok(m) = &mut f.monitoring {
                m.alarmed_metrics.clear();
            }
        });
        let mut f = compliant();
        if let Ok(m) = &mut f.monitoring {
            m.filters
                .retain(|mf| !mf.pattern.contains("userIdentity.type"));
        }
        let r = evaluate(rule("cis-4.3"), std::slice::from_ref(&f));
        assert_eq!(r.state, RuleState::Failed);
        assert!(r.reason.contains("userIdentity.type"), "{}", r.reason);
    }

    #[test]
    fn network_checks() {
        flips("cis-5.1", |f| {
            f.nacl_entries = Ok(vec![NaclEntry {
                acl: "acl-1".into(),
                rule_number: 100,
                egress: false,
                allow: true,
                cidr: "0.0.0.0/0".into(),
                protocol: "-1".into(),
                ports: None,
            }])
        });
        // The same allow-all behind denies of the admin ports (as a kept default VPC's ACL has
        // them): closed. A deny of one port only leaves the other open.
        let deny = |rule_number, cidr: &str, port| NaclEntry {
            acl: "acl-1".into(),
            rule_number,
            egress: false,
            allow: false,
            cidr: cidr.into(),
            protocol: "6".into(),
            ports: Some((port, port)),
        };
        let allow_all = NaclEntry {
            acl: "acl-1".into(),
            rule_number: 100,
            egress: false,
            allow: true,
            cidr: "0.0.0.0/0".into(),
            protocol: "-1".into(),
            ports: None,
        };
        let mut f = compliant();
        f.nacl_entries = Ok(vec![
            deny(1, "0.0.0.0/0", 22),
            deny(2, "0.0.0.0/0", 3389),
            allow_all.clone(),
        ]);
        assert_eq!(state("cis-5.1", &f), RuleState::Passed);
        f.nacl_entries = Ok(vec![deny(1, "0.0.0.0/0", 22), allow_all.clone()]);
        assert_eq!(state("cis-5.1", &f), RuleState::Failed);
        let mut late = deny(200, "0.0.0.0/0", 22);
        late.rule_number = 200;
        f.nacl_entries = Ok(vec![late, deny(201, "0.0.0.0/0", 3389), allow_all]);
        assert_eq!(
            state("cis-5.1", &f),
            RuleState::Failed,
            "a deny after the allow is never reached"
        );
        let open = |cidr: &str, ports| SecurityGroup {
            id: "sg-open".into(),
            name: "open".into(),
            ingress: vec![Permission {
                protocol: "tcp".into(),
                ports,
                cidrs: vec![cidr.into()],
            }],
            egress: vec![],
        };
        flips("cis-5.2", |f| {
            f.security_groups = Ok(vec![open("0.0.0.0/0", Some((0, 65535)))])
        });
        flips("cis-5.3", |f| {
            f.security_groups = Ok(vec![open("::/0", Some((3389, 3389)))])
        });
        let mut ipv4_only = compliant();
        ipv4_only.security_groups = Ok(vec![open("0.0.0.0/0", Some((22, 22)))]);
        assert_eq!(state("cis-5.3", &ipv4_only), RuleState::Passed);
        flips("cis-5.4", |f| {
            if let Ok(groups) = &mut f.security_groups {
                groups[0].egress.push(Permission {
                    protocol: "-1".into(),
                    ports: None,
                    cidrs: vec!["0.0.0.0/0".into()],
                });
            }
        });
    }

    #[test]
    fn config_rules_give_their_result_or_no_data() {
        let f = compliant();
        assert_eq!(state("cis-2.3.1", &f), RuleState::Passed);
        let r = evaluate(rule("cis-2.4.1"), std::slice::from_ref(&f));
        assert_eq!(r.state, RuleState::NotApplicable);
        assert!(r.reason.contains("EFS_ENCRYPTED_CHECK"), "{}", r.reason);
        let mut g = compliant();
        g.config_rules = Ok(HashMap::from([(
            "RDS_STORAGE_ENCRYPTED".into(),
            vec!["COMPLIANT".into(), "NON_COMPLIANT".into()],
        )]));
        assert_eq!(state("cis-2.3.1", &g), RuleState::Failed);
        g.config_rules = Ok(HashMap::from([(
            "RDS_STORAGE_ENCRYPTED".into(),
            vec!["INSUFFICIENT_DATA".into()],
        )]));
        assert_eq!(state("cis-2.3.1", &g), RuleState::Unknown);
        g.config_rules = Err("AccessDenied: no".into());
        assert_eq!(state("cis-2.3.1", &g), RuleState::Unknown);
    }

    #[test]
    fn a_source_that_could_not_be_read_makes_its_rules_unknown_never_passed() {
        let mut f = compliant();
        f.password_policy = Err("AccessDenied: not allowed".into());
        let r = evaluate(rule("cis-1.8"), std::slice::from_ref(&f));
        assert_eq!(r.state, RuleState::Unknown);
        assert!(r.reason.contains("AccessDenied"), "{}", r.reason);
        assert_eq!(state("cis-1.5", &f), RuleState::Passed);
    }

    #[test]
    fn manual_controls_are_not_scored() {
        let r = evaluate(rule("cis-1.3"), &[compliant()]);
        assert_eq!(r.state, RuleState::NotApplicable);
        assert!(r.reason.starts_with("manual control"));
    }
}
