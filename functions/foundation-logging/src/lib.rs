//! Foundation bootstrap: the Logging account's buckets, one per writer — CloudTrail, AWS Config,
//! Session Manager — private, encrypted, versioned, TLS-only, and admitting only that writer for
//! the organization's accounts. A bucket this creates gets Object Lock (governance mode, a
//! default retention in days), so no log can be deleted or overwritten before it expires. Every
//! call names the Logging account as the bucket's expected owner: a bucket of that name owned by
//! anyone else is refused, never written to. Idempotent: reports each change, none on a second
//! run.

use aws::SdkConfig;
use aws::{AssuranceError, InConcern, Provisioning};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, DefaultRetention,
    ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode, ObjectLockRule,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, VersioningConfiguration,
};
use domain::assurance::{BASELINE_TRAIL, ConcernResult};
use domain::config::{self, ConfigError};
use serde::Deserialize;
use serde_json::{Value, json};

pub const CONCERN: &str = "logging buckets";

/// Who writes into a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    CloudTrail,
    Config,
    SessionManager,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Input {
    /// The AWS organization whose accounts may write (`o-…`).
    #[serde(rename = "AwsOrganizationId")]
    pub organization: String,
}

/// The bucket policy for `writer`: only it, only for the organization's accounts, only over TLS.
pub fn bucket_policy(writer: Writer, bucket: &str, organization: &str) -> Value {
    let bucket_arn = format!("arn:aws:s3:::{bucket}");
    let objects = format!("{bucket_arn}/*");
    let tls_only = json!({
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, objects],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}
    });
    let mut statements = match writer {
        Writer::CloudTrail | Writer::Config => {
            let service = if writer == Writer::CloudTrail {
                "cloudtrail.amazonaws.com"
            } else {
                "config.amazonaws.com"
            };
            // CloudTrail: only the baseline trail of an organization account (the trail's ARN
            // is the request's source), not any trail someone in the organization creates.
            let source = |more: Value| {
                let mut condition = json!({"StringEquals": {"aws:SourceOrgID": organization}});
                if writer == Writer::CloudTrail {
                    condition["ArnLike"] = json!({"aws:SourceArn": format!("arn:aws:cloudtrail:*:*:trail/{BASELINE_TRAIL}")});
                }
                if let (Some(all), Some(more)) =
                    (condition["StringEquals"].as_object_mut(), more.as_object())
                {
                    all.extend(more.clone());
                }
                condition
            };
            vec![
                json!({
                    "Sid": "WriterChecksBucket",
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": ["s3:GetBucketAcl", "s3:ListBucket"],
                    "Resource": bucket_arn,
                    "Condition": source(json!({}))
                }),
                json!({
                    "Sid": "WriterDelivers",
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "s3:PutObject",
                    "Resource": format!("{bucket_arn}/AWSLogs/*"),
                    "Condition": source(json!({"s3:x-amz-acl": "bucket-owner-full-control"}))
                }),
            ]
        }
        // Session Manager writes with the credentials of the instance or user in the session:
        // each account only under its own prefix (assure-ssm sets the account id as the prefix).
        Writer::SessionManager => vec![
            json!({
                "Sid": "OrganizationSessionsDeliver",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": "s3:PutObject",
                "Resource": format!("{bucket_arn}/${{aws:PrincipalAccount}}/*"),
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": organization}}
            }),
            json!({
                "Sid": "OrganizationSessionsCheckEncryption",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": "s3:GetEncryptionConfiguration",
                "Resource": bucket_arn,
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": organization}}
            }),
        ],
    };
    statements.push(tls_only);
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The trail key's policy: the Logging account administers it; CloudTrail encrypts with it for
/// the baseline trail of the organization's accounts, and describes it; the organization's
/// principals decrypt the logs it encrypted (reading a log needs the key too).
pub fn trail_key_policy(logging: &str, organization: &str) -> Value {
    let trail = format!("arn:aws:cloudtrail:*:*:trail/{BASELINE_TRAIL}");
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "LoggingAccountAdministers", "Effect": "Allow",
             "Principal": {"AWS": format!("arn:aws:iam::{logging}:root")},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "BaselineTrailsEncrypt", "Effect": "Allow",
             "Principal": {"Service": "cloudtrail.amazonaws.com"},
             "Action": "kms:GenerateDataKey*", "Resource": "*",
             "Condition": {"StringEquals": {"aws:SourceOrgID": organization},
                           "ArnLike": {"aws:SourceArn": trail.clone()},
                           "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": trail}}},
            {"Sid": "CloudTrailDescribes", "Effect": "Allow",
             "Principal": {"Service": "cloudtrail.amazonaws.com"},
             "Action": "kms:DescribeKey", "Resource": "*",
             "Condition": {"StringEquals": {"aws:SourceOrgID": organization}}},
            {"Sid": "OrganizationReadsLogs", "Effect": "Allow",
             "Principal": {"AWS": "*"},
             "Action": ["kms:Decrypt", "kms:ReEncryptFrom"], "Resource": "*",
             "Condition": {"StringEquals": {"aws:PrincipalOrgID": organization},
                           "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": "arn:aws:cloudtrail:*:*:trail/*"}}}
        ]
    })
}

pub struct Bootstrap {
    pub provisioning: Provisioning,
    pub logging_account_id: String,
    pub buckets: Vec<(Writer, String)>,
    /// The default Object Lock retention of the buckets this creates.
    pub retention_days: i32,
}

impl Bootstrap {
    /// `PROVISIONING_ROLE_NAME`, `LOGGING_ACCOUNT_ID`, `CLOUDTRAIL_BUCKET`, `CONFIG_BUCKET`,
    /// `SSM_BUCKET`, `LOG_RETENTION_DAYS` (1–36,500).
    pub fn from_env(sdk: SdkConfig) -> Result<Self, ConfigError> {
        Ok(Bootstrap {
            provisioning: Provisioning::from_env(sdk)?,
            logging_account_id: config::required("LOGGING_ACCOUNT_ID")?,
            retention_days: config::count("LOG_RETENTION_DAYS", 36_500)? as i32,
            buckets: vec![
                (Writer::CloudTrail, config::required("CLOUDTRAIL_BUCKET")?),
                (Writer::Config, config::required("CONFIG_BUCKET")?),
                (Writer::SessionManager, config::required("SSM_BUCKET")?),
            ],
        })
    }
}

pub async fn handle(b: &Bootstrap, input: Input) -> Result<ConcernResult, AssuranceError> {
    let logging = b
        .provisioning
        .into_account(&b.logging_account_id, aws::Session::FoundationLogging)
        .await?;
    let s3 = aws_sdk_s3::Client::new(&logging);
    let region = logging
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".into());
    let mut changes = Vec::new();
    for (writer, bucket) in &b.buckets {
        let policy = bucket_policy(*writer, bucket, &input.organization);
        let bucket = Bucket {
            s3: &s3,
            name: bucket,
            owner: &b.logging_account_id,
        };
        let steps = [
            ensure_bucket(&bucket, &region).await?,
            block_public_access(&bucket).await?,
            encrypt_by_default(&bucket).await?,
            turn_on_versioning(&bucket).await?,
            lock_objects(&bucket, b.retention_days).await?,
            set_policy(&bucket, &policy).await?,
        ];
        changes.extend(steps.into_iter().flatten());
    }
    let kms = aws_sdk_kms::Client::new(&logging);
    changes.extend(ensure_trail_key(&kms, &b.logging_account_id, &input.organization).await?);
    Ok(ConcernResult::new(CONCERN, changes))
}

/// The trail key: made with its alias, its policy kept, its rotation on (CIS 3.6).
async fn ensure_trail_key(
    kms: &aws_sdk_kms::Client,
    logging: &str,
    organization: &str,
) -> Result<Vec<String>, AssuranceError> {
    use domain::assurance::TRAIL_KEY_ALIAS;
    let policy = trail_key_policy(logging, organization);
    let mut changes = Vec::new();
    let key_id = match kms.describe_key().key_id(TRAIL_KEY_ALIAS).send().await {
        Ok(out) => out
            .key_metadata()
            .map(|m| m.key_id().to_owned())
            .unwrap_or_default(),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_not_found_exception()) =>
        {
            let created = kms
                .create_key()
                .description("Encrypts the baseline trails' logs (kept by the accounts service)")
                .policy(policy.to_string())
                .send()
                .await
                .concern(CONCERN)?;
            let id = created
                .key_metadata()
                .map(|m| m.key_id().to_owned())
                .unwrap_or_default();
            kms.create_alias()
                .alias_name(TRAIL_KEY_ALIAS)
                .target_key_id(&id)
                .send()
                .await
                .concern(CONCERN)?;
            changes.push(format!(
                "created the trail key {TRAIL_KEY_ALIAS} ({id}) for the organization's baseline trails"
            ));
            id
        }
        Err(e) => return Err(AssuranceError::aws(CONCERN, e)),
    };
    let current = kms
        .get_key_policy()
        .key_id(&key_id)
        .policy_name("default")
        .send()
        .await
        .concern(CONCERN)?;
    let current: Option<Value> = current.policy().and_then(|p| serde_json::from_str(p).ok());
    if current.as_ref() != Some(&policy) {
        kms.put_key_policy()
            .key_id(&key_id)
            .policy_name("default")
            .policy(policy.to_string())
            .send()
            .await
            .concern(CONCERN)?;
        changes.push(format!(
            "restored the policy of the trail key {TRAIL_KEY_ALIAS}"
        ));
    }
    let rotating = kms
        .get_key_rotation_status()
        .key_id(&key_id)
        .send()
        .await
        .concern(CONCERN)?
        .key_rotation_enabled();
    if !rotating {
        kms.enable_key_rotation()
            .key_id(&key_id)
            .send()
            .await
            .concern(CONCERN)?;
        changes.push(format!(
            "turned on yearly rotation of the trail key {TRAIL_KEY_ALIAS}"
        ));
    }
    Ok(changes)
}

/// An S3 error's code, for the answers that mean "not configured".
fn code<E: ProvideErrorMetadata>(e: &SdkError<E>) -> Option<&str> {
    e.as_service_error().and_then(|s| s.code())
}

/// A Logging-account bucket: every call on it names the Logging account as its owner.
struct Bucket<'a> {
    s3: &'a aws_sdk_s3::Client,
    name: &'a str,
    owner: &'a str,
}

/// The bucket exists (created in the Logging account's region, with Object Lock). The change
/// made, if any.
async fn ensure_bucket(b: &Bucket<'_>, region: &str) -> Result<Option<String>, AssuranceError> {
    let (s3, bucket) = (b.s3, b.name);
    match s3
        .head_bucket()
        .bucket(bucket)
        .expected_bucket_owner(b.owner)
        .send()
        .await
    {
        Ok(_) => return Ok(None),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => {}
        Err(e) => return Err(AssuranceError::aws(CONCERN, e)),
    }
    // CreateBucket takes no expected owner: a name someone else holds fails with
    // BucketAlreadyExists, and the calls after it check the owner.
    let mut create = s3
        .create_bucket()
        .bucket(bucket)
        .object_lock_enabled_for_bucket(true);
    if region != "us-east-1" {
        let location = CreateBucketConfiguration::builder()
            .location_constraint(BucketLocationConstraint::from(region))
            .build();
        create = create.create_bucket_configuration(location);
    }
    match create.send().await {
        Ok(_) => Ok(Some(format!("created bucket {bucket} with Object Lock"))),
        // A concurrent bootstrap created it first.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_bucket_already_owned_by_you()) =>
        {
            Ok(None)
        }
        Err(e) => Err(AssuranceError::aws(CONCERN, e)),
    }
}

/// All four Block Public Access settings on the bucket.
async fn block_public_access(b: &Bucket<'_>) -> Result<Option<String>, AssuranceError> {
    let (s3, bucket) = (b.s3, b.name);
    let blocked = match s3
        .get_public_access_block()
        .bucket(bucket)
        .expected_bucket_owner(b.owner)
        .send()
        .await
    {
        Ok(out) => out.public_access_block_configuration.is_some_and(|c| {
            c.block_public_acls() == Some(true)
                && c.ignore_public_acls() == Some(true)
                && c.block_public_policy() == Some(true)
                && c.restrict_public_buckets() == Some(true)
        }),
        Err(e) if code(&e) == Some("NoSuchPublicAccessBlockConfiguration") => false,
        Err(e) => return Err(AssuranceError::aws(CONCERN, e)),
    };
    if blocked {
        return Ok(None);
    }
    let all = PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(true)
        .restrict_public_buckets(true)
        .build();
    s3.put_public_access_block()
        .bucket(bucket)
        .expected_bucket_owner(b.owner)
        .public_access_block_configuration(all)
        .send()
        .await
        .concern(CONCERN)?;
    Ok(Some(format!("blocked public access to {bucket}")))
}

/// Default encryption of new objects (SSE-S3).
async fn encrypt_by_default(b: &Bucket<'_>) -> Result<Option<String>, AssuranceError> {
    let (s3, bucket) = (b.s3, b.name);
    let encrypted = match s3
        .get_bucket_encryption()
        .bucket(bucket)
        .expected_bucket_owner(b.owner)
        .send()
        .await
    {
        Ok(out) => out
            .server_side_encryption_configuration
            .is_some_and(|c| !c.rules().is_empty()),
        Err(e) if code(&e) == Some("ServerSideEncryptionConfigurationNotFoundError") => false,
        Err(e) => return Err(AssuranceError::aws(CONCERN, e)),
    };
    if encrypted {
        return Ok(None);
    }
    let invalid = |e: aws_sdk_s3::error::BuildError| AssuranceError::Aws {
        concern: CONCERN,
        message: e.to_string(),
    };
    let by_default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::Aes256)
        .build()
        .map_err(invalid)?;
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(by_default)
        .build();
    let config = ServerSideEncryptionConfiguration::builder()
        .rules(rule)
        .build()
        .map_err(invalid)?;
    s3.put_bucket_encryption()
        .bucket(bucket)
        .expected_bucket_owner(b.owner)
        .server_side_encryption_configuration(config)
        .send()
        .await
        .concern(CONCERN)?;
    Ok(Some(format!("encrypted {bucket} by default")))
}

/// Versioning on, so no log can be overwritten unnoticed.
async fn turn_on_versioning(b: &Bucket<'_>) -> Result<Option<String>, AssuranceError> {
    let (s3, bucket) = (b.s3, b.name);
    let status = s3
        .get_bucket_versioning()
        .bucket(bucket)
        .expected_bucket_owner(b.owner)
        .send()
        .await
        .concern(CONCERN)?
        .status;
    if status == Some(BucketVersioningStatus::Enabled) {
        return Ok(None);
    }
    let on = VersioningConfiguration::builder()
        .status(BucketVersioningStatus::Enabled)
        .build();
    s3.put_bucket_versioning()
        .bucket(bucket)
        .expected_bucket_owner(b.owner)
        .versioning_configuration(on)
        .send()
        .await
        .concern(CONCERN)?;
    Ok(Some(format!("turned on versioning of {bucket}")))
}

/// On a bucket with Object Lock (one this created), the default retention: governance mode,
/// `days`. A bucket adopted without Object Lock keeps its setting (S3 cannot add it without
/// versioning every object anew); the README says how to turn it on.
async fn lock_objects(b: &Bucket<'_>, days: i32) -> Result<Option<String>, AssuranceError> {
    let (s3, bucket) = (b.s3, b.name);
    let current = match s3
        .get_object_lock_configuration()
        .bucket(bucket)
        .expected_bucket_owner(b.owner)
        .send()
        .await
    {
        Ok(out) => out.object_lock_configuration,
        Err(e) if code(&e) == Some("ObjectLockConfigurationNotFoundError") => None,
        Err(e) => return Err(AssuranceError::aws(CONCERN, e)),
    };
    let Some(current) =
        current.filter(|c| c.object_lock_enabled() == Some(&ObjectLockEnabled::Enabled))
    else {
        return Ok(None);
    };
    let retention = current.rule().and_then(|r| r.default_retention());
    if retention.is_some_and(|r| {
        r.mode() == Some(&ObjectLockRetentionMode::Governance) && r.days() == Some(days)
    }) {
        return Ok(None);
    }
    let rule = ObjectLockRule::builder()
        .default_retention(
            DefaultRetention::builder()
                .mode(ObjectLockRetentionMode::Governance)
                .days(days)
                .build(),
        )
        .build();
    let config = ObjectLockConfiguration::builder()
        .object_lock_enabled(ObjectLockEnabled::Enabled)
        .rule(rule)
        .build();
    s3.put_object_lock_configuration()
        .bucket(bucket)
        .expected_bucket_owner(b.owner)
        .object_lock_configuration(config)
        .send()
        .await
        .concern(CONCERN)?;
    Ok(Some(format!(
        "locked the objects of {bucket}: governance mode, kept {days} days"
    )))
}

/// The bucket policy `wanted` (its writer, the organization's accounts, TLS only).
async fn set_policy(b: &Bucket<'_>, wanted: &Value) -> Result<Option<String>, AssuranceError> {
    let (s3, bucket) = (b.s3, b.name);
    let current: Option<Value> = match s3
        .get_bucket_policy()
        .bucket(bucket)
        .expected_bucket_owner(b.owner)
        .send()
        .await
    {
        Ok(out) => out.policy.and_then(|p| serde_json::from_str(&p).ok()),
        Err(e) if code(&e) == Some("NoSuchBucketPolicy") => None,
        Err(e) => return Err(AssuranceError::aws(CONCERN, e)),
    };
    if current.as_ref() == Some(wanted) {
        return Ok(None);
    }
    s3.put_bucket_policy()
        .bucket(bucket)
        .expected_bucket_owner(b.owner)
        .policy(wanted.to_string())
        .send()
        .await
        .concern(CONCERN)?;
    Ok(Some(format!(
        "set the bucket policy of {bucket}: its writer, the organization's accounts, TLS only"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bucket_admits_only_its_writer_from_the_organization() {
        let trail = bucket_policy(Writer::CloudTrail, "trail-logs", "o-abc");
        let allows: Vec<&Value> = trail["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["Effect"] == "Allow")
            .collect();
        assert!(
            allows
                .iter()
                .all(|s| s["Principal"]["Service"] == "cloudtrail.amazonaws.com")
        );
        assert!(
            allows
                .iter()
                .all(|s| s["Condition"]["StringEquals"]["aws:SourceOrgID"] == "o-abc")
        );
        assert_eq!(allows[1]["Resource"], "arn:aws:s3:::trail-logs/AWSLogs/*");
        // Only the baseline trail: a trail an account's admin creates may not write here.
        assert!(
            allows
                .iter()
                .all(|s| s["Condition"]["ArnLike"]["aws:SourceArn"]
                    == "arn:aws:cloudtrail:*:*:trail/accounts-baseline")
        );
        assert_eq!(
            allows[1]["Condition"]["StringEquals"]["s3:x-amz-acl"],
            "bucket-owner-full-control"
        );
        let config = bucket_policy(Writer::Config, "config-logs", "o-abc");
        assert!(config["Statement"][0]["Condition"].get("ArnLike").is_none());

        // Session Manager: each account writes under its own id only; nobody reads.
        let ssm = bucket_policy(Writer::SessionManager, "ssm-logs", "o-abc");
        let statements = ssm["Statement"].as_array().unwrap();
        let put: Vec<_> = statements
            .iter()
            .filter(|s| s["Effect"] == "Allow" && s["Action"] == "s3:PutObject")
            .collect();
        assert_eq!(put.len(), 1);
        assert_eq!(
            put[0]["Resource"],
            "arn:aws:s3:::ssm-logs/${aws:PrincipalAccount}/*"
        );
        for s in statements.iter().filter(|s| s["Effect"] == "Allow") {
            assert_eq!(
                s["Condition"]["StringEquals"]["aws:PrincipalOrgID"],
                "o-abc"
            );
            assert!(!s["Action"].to_string().contains("GetObject"), "{s}");
        }
    }

    #[test]
    fn every_bucket_refuses_plain_http() {
        for writer in [Writer::CloudTrail, Writer::Config, Writer::SessionManager] {
            let policy = bucket_policy(writer, "b", "o-abc");
            let last = policy["Statement"]
                .as_array()
                .unwrap()
                .last()
                .unwrap()
                .clone();
            assert_eq!(
                (
                    last["Effect"].as_str(),
                    last["Condition"]["Bool"]["aws:SecureTransport"].as_str()
                ),
                (Some("Deny"), Some("false"))
            );
        }
    }
}
