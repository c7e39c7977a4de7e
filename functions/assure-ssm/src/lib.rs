//! Assurance concern: Session Manager keeps a log of every session in the Logging account's
//! Session Manager bucket, encrypted, under the account's id; idle sessions end after 20 minutes
//! — in every governed region (the preferences are regional).
//!
//! Session Manager's account preferences are the `SSM-SessionManagerRunShell` document (type
//! `Session`); the concern creates it, or adds a version and makes it the default when the
//! settings the baseline cares about differ.

use aws::SdkConfig;
use aws::{AssuranceError, InConcern, Provisioning};
use aws_sdk_ssm::types::{DocumentFormat, DocumentType};
use domain::assurance::{ConcernInput, ConcernResult, SESSION_MANAGER_DOCUMENT as DOCUMENT};
use domain::config::{self, ConfigError};
use domain::regions::Regions;
use serde_json::{Value, json};

pub const CONCERN: &str = "ssm";

/// The preferences document the baseline wants.
pub fn preferences(bucket: &str, aws_account_id: &str) -> Value {
    json!({
        "schemaVersion": "1.0",
        "description": "Session Manager preferences kept by the Accounts service",
        "sessionType": "Standard_Stream",
        "inputs": {
            "s3BucketName": bucket,
            "s3KeyPrefix": aws_account_id,
            "s3EncryptionEnabled": true,
            "cloudWatchLogGroupName": "",
            "cloudWatchEncryptionEnabled": true,
            "cloudWatchStreamingEnabled": false,
            "kmsKeyId": "",
            "runAsEnabled": false,
            "runAsDefaultUser": "",
            "idleSessionTimeout": "20",
            "maxSessionDuration": "",
            "shellProfile": {"windows": "", "linux": ""}
        }
    })
}

/// The baseline settings a document's content differs in (empty: it meets the baseline).
pub fn differences(current: &Value, wanted: &Value) -> Vec<String> {
    [
        "s3BucketName",
        "s3KeyPrefix",
        "s3EncryptionEnabled",
        "idleSessionTimeout",
    ]
    .iter()
    .filter(|k| current["inputs"][**k] != wanted["inputs"][**k])
    .map(|k| (*k).to_owned())
    .collect()
}

pub struct Assurer {
    pub provisioning: Provisioning,
    pub regions: Regions,
    pub bucket: String,
}

impl Assurer {
    /// `PROVISIONING_ROLE_NAME`, `SSM_BUCKET`.
    pub fn from_env(sdk: SdkConfig, regions: Regions) -> Result<Self, ConfigError> {
        Ok(Assurer {
            provisioning: Provisioning::from_env(sdk)?,
            regions,
            bucket: config::required("SSM_BUCKET")?,
        })
    }
}

pub async fn handle(a: &Assurer, input: ConcernInput) -> Result<ConcernResult, AssuranceError> {
    let target = a
        .provisioning
        .into_account(&input.aws_account_id, aws::Session::AssureSsm)
        .await?;
    let wanted = preferences(&a.bucket, &input.aws_account_id);
    let (wanted, input) = (&wanted, &input);
    let changes = aws::in_every_region(&target, &a.regions, |target, _| async move {
        assure_in_region(&aws_sdk_ssm::Client::new(&target), a, input, wanted).await
    })
    .await?;
    Ok(ConcernResult::new(CONCERN, changes))
}

/// The preferences document in the region `ssm` acts in.
async fn assure_in_region(
    ssm: &aws_sdk_ssm::Client,
    a: &Assurer,
    input: &ConcernInput,
    wanted: &Value,
) -> Result<Vec<String>, AssuranceError> {
    let content = wanted.to_string();
    let existing = match ssm.get_document().name(DOCUMENT).send().await {
        Ok(doc) => Some(doc),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_invalid_document()) =>
        {
            None
        }
        Err(e) => return Err(AssuranceError::aws(CONCERN, e)),
    };
    let mut changes = Vec::new();
    match existing {
        None => {
            ssm.create_document()
                .name(DOCUMENT)
                .document_type(DocumentType::Session)
                .document_format(DocumentFormat::Json)
                .content(&content)
                .send()
                .await
                .concern(CONCERN)?;
            changes.push(format!(
                "Session Manager logs sessions to s3://{}/{}",
                a.bucket, input.aws_account_id
            ));
        }
        Some(doc) => {
            let current: Value = doc
                .content()
                .and_then(|c| serde_json::from_str(c).ok())
                .unwrap_or(Value::Null);
            let differ = differences(&current, wanted);
            if !differ.is_empty() {
                let updated = ssm
                    .update_document()
                    .name(DOCUMENT)
                    .document_version("$LATEST")
                    .document_format(DocumentFormat::Json)
                    .content(&content)
                    .send()
                    .await
                    .concern(CONCERN)?;
                let version = updated
                    .document_description()
                    .and_then(|d| d.document_version())
                    .unwrap_or("$LATEST")
                    .to_owned();
                ssm.update_document_default_version()
                    .name(DOCUMENT)
                    .document_version(&version)
                    .send()
                    .await
                    .concern(CONCERN)?;
                changes.push(format!(
                    "restored Session Manager preferences ({}) as version {version}",
                    differ.join(", ")
                ));
            }
        }
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_baseline_meets_itself() {
        let wanted = preferences("ssm-logs", "111122223333");
        assert!(differences(&wanted, &wanted).is_empty());
    }

    #[test]
    fn logging_elsewhere_or_unencrypted_differs() {
        let wanted = preferences("ssm-logs", "111122223333");
        let mut current = wanted.clone();
        current["inputs"]["s3BucketName"] = json!("");
        current["inputs"]["s3EncryptionEnabled"] = json!(false);
        assert_eq!(
            differences(&current, &wanted),
            ["s3BucketName", "s3EncryptionEnabled"]
        );
        assert_eq!(differences(&Value::Null, &wanted).len(), 4);
    }
}
