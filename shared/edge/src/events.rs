//! The typed events functions take besides HTTP requests: what Step Functions hands a `Catch`
//! state, and EventBridge's envelope (rules' schedules, `aws.organizations` events).

use serde::Deserialize;
use serde_json::Value;

/// An error as Step Functions hands it to a `Catch`: `{"Error": name, "Cause": text}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct StepError {
    #[serde(rename = "Error", default)]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: String,
}

impl StepError {
    /// The reason a person reads on the account: a handler's own message where there is one.
    pub fn reason(&self) -> String {
        // A Lambda failure's cause is the handler's {"errorType", "errorMessage"}.
        if let Ok(v) = serde_json::from_str::<Value>(&self.cause)
            && let Some(message) = v.get("errorMessage").and_then(Value::as_str)
        {
            let kind = v
                .get("errorType")
                .and_then(Value::as_str)
                .unwrap_or(&self.error);
            return format!("{kind}: {message}");
        }
        match (self.error.is_empty(), self.cause.is_empty()) {
            (_, true) => self.error.clone(),
            (true, false) => self.cause.clone(),
            (false, false) => format!("{}: {}", self.error, self.cause),
        }
    }
}

/// An EventBridge event: its source, detail type and detail.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EventBridgeEvent {
    #[serde(default)]
    pub source: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    #[serde(default)]
    pub detail: Value,
}

impl EventBridgeEvent {
    /// An EventBridge rule's `rate`/`cron` schedule firing.
    pub fn is_schedule(&self) -> bool {
        self.source == "aws.events" && self.detail_type == "Scheduled Event"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lambda_failure_reads_as_its_handlers_message() {
        let e = StepError {
            error: "RoleNotAssumable".into(),
            cause: r#"{"errorType":"RoleNotAssumable","errorMessage":"stax-provisioning in 111122223333: AccessDenied"}"#.into(),
        };
        assert_eq!(
            e.reason(),
            "RoleNotAssumable: stax-provisioning in 111122223333: AccessDenied"
        );
        let e = StepError {
            error: "CreateAccountFailed".into(),
            cause: "EMAIL_ALREADY_EXISTS".into(),
        };
        assert_eq!(e.reason(), "CreateAccountFailed: EMAIL_ALREADY_EXISTS");
        let e = StepError {
            error: "States.Timeout".into(),
            cause: String::new(),
        };
        assert_eq!(e.reason(), "States.Timeout");
    }
}
