//! Service control policies as the API takes them: what AWS Organizations would refuse in an
//! SCP is refused before anything is written, with the reason, so that a bad policy is a 400
//! and never a half-made change.
//!
//! The grammar is IAM's, narrowed to what SCPs admit: a JSON object of `Version`
//! (`2012-10-17`), `Statement` and an optional `Id`; each statement an `Effect` (`Allow` or
//! `Deny`), exactly one of `Action` / `NotAction`, at most one of `Resource` / `NotResource`,
//! an optional `Condition` and `Sid` — and no `Principal` or `NotPrincipal` (an SCP applies to
//! every principal of the accounts it is attached to). At most 5,120 characters, as AWS counts
//! them (the document as given, white space included).

use serde_json::{Map, Value};

/// AWS's limit on an SCP document, in characters.
pub const MAX_SCP_CHARACTERS: usize = 5120;

/// The document `content`, parsed, if AWS would take it as an SCP; otherwise why not.
pub fn validate_scp(content: &str) -> Result<Value, String> {
    let length = content.chars().count();
    if length > MAX_SCP_CHARACTERS {
        return Err(format!(
            "an SCP has at most {MAX_SCP_CHARACTERS} characters, this one has {length}"
        ));
    }
    let document: Value =
        serde_json::from_str(content).map_err(|e| format!("the policy is not JSON: {e}"))?;
    let Some(top) = document.as_object() else {
        return Err("the policy is not a JSON object".into());
    };
    if let Some(key) = top
        .keys()
        .find(|k| !["Version", "Statement", "Id"].contains(&k.as_str()))
    {
        return Err(format!(
            "an SCP has Version, Statement and Id only, not {key:?}"
        ));
    }
    if top.get("Version").and_then(Value::as_str) != Some("2012-10-17") {
        return Err("Version must be \"2012-10-17\"".into());
    }
    if top.get("Id").is_some_and(|id| !id.is_string()) {
        return Err("Id must be a string".into());
    }
    let statements: Vec<&Value> = match top.get("Statement") {
        Some(Value::Array(list)) if !list.is_empty() => list.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        Some(Value::Array(_)) => return Err("Statement has no statements".into()),
        _ => return Err("Statement must be a statement or a list of them".into()),
    };
    for (i, statement) in statements.iter().enumerate() {
        let Some(s) = statement.as_object() else {
            return Err(format!("Statement {i} is not an object"));
        };
        statement_ok(s).map_err(|e| format!("Statement {i}: {e}"))?;
    }
    Ok(document)
}

fn statement_ok(s: &Map<String, Value>) -> Result<(), String> {
    const KEYS: [&str; 7] = [
        "Sid",
        "Effect",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
    ];
    for key in s.keys() {
        if key == "Principal" || key == "NotPrincipal" {
            return Err(format!(
                "SCPs do not take {key}: a policy applies to every principal of the accounts it \
                 is attached to"
            ));
        }
        if !KEYS.contains(&key.as_str()) {
            return Err(format!("{key:?} is not a statement element"));
        }
    }
    if let Some(sid) = s.get("Sid")
        && !sid
            .as_str()
            .is_some_and(|sid| sid.chars().all(|c| c.is_ascii_alphanumeric()))
    {
        return Err("Sid must be letters and digits".into());
    }
    match s.get("Effect").and_then(Value::as_str) {
        Some("Allow" | "Deny") => {}
        _ => return Err("Effect must be \"Allow\" or \"Deny\"".into()),
    }
    match (s.get("Action"), s.get("NotAction")) {
        (Some(a), None) => strings_of(a, "Action", action_ok)?,
        (None, Some(a)) => strings_of(a, "NotAction", action_ok)?,
        _ => return Err("a statement has exactly one of Action and NotAction".into()),
    }
    match (s.get("Resource"), s.get("NotResource")) {
        (Some(r), None) => strings_of(r, "Resource", |_| true)?,
        (None, Some(r)) => strings_of(r, "NotResource", |_| true)?,
        (None, None) => {}
        _ => return Err("a statement has at most one of Resource and NotResource".into()),
    }
    if let Some(condition) = s.get("Condition") {
        condition_ok(condition)?;
    }
    Ok(())
}

/// `*`, or `service:action` where the action may carry wildcards.
fn action_ok(action: &str) -> bool {
    action == "*"
        || action.split_once(':').is_some_and(|(service, name)| {
            !service.is_empty()
                && service
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?')
        })
}

/// A string, or a non-empty list of strings, each admitted by `ok`.
fn strings_of(value: &Value, element: &str, ok: impl Fn(&str) -> bool) -> Result<(), String> {
    let items: Vec<&Value> = match value {
        Value::String(_) => vec![value],
        Value::Array(list) if !list.is_empty() => list.iter().collect(),
        _ => {
            return Err(format!(
                "{element} must be a string or a non-empty list of strings"
            ));
        }
    };
    for item in items {
        match item.as_str() {
            Some(s) if !s.is_empty() && ok(s) => {}
            Some(s) => return Err(format!("{element} {s:?} is not valid")),
            None => return Err(format!("{element} must be a string or a list of strings")),
        }
    }
    Ok(())
}

/// `{operator: {key: value or values}}`.
fn condition_ok(condition: &Value) -> Result<(), String> {
    let Some(operators) = condition.as_object().filter(|o| !o.is_empty()) else {
        return Err("Condition must map operators to keys and values".into());
    };
    for (operator, keys) in operators {
        let Some(keys) = keys.as_object().filter(|k| !k.is_empty()) else {
            return Err(format!("Condition {operator} must map keys to values"));
        };
        for (key, value) in keys {
            let scalar = |v: &Value| v.is_string() || v.is_boolean() || v.is_number();
            let fine = scalar(value)
                || value
                    .as_array()
                    .is_some_and(|l| !l.is_empty() && l.iter().all(scalar));
            if !fine {
                return Err(format!(
                    "Condition {operator} {key} must be a value or a list of values"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn with(statement: Value) -> String {
        json!({"Version": "2012-10-17", "Statement": [statement]}).to_string()
    }

    #[test]
    fn what_aws_takes_is_taken() {
        for ok in [
            with(json!({"Effect": "Deny", "Action": "*", "Resource": "*"})),
            with(json!({"Sid": "NoLeaving", "Effect": "Deny", "Action": ["organizations:LeaveOrganization"]})),
            with(json!({"Effect": "Deny", "NotAction": ["iam:*", "sts:Get*"], "NotResource": "arn:aws:iam::*:role/x",
                        "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["eu-west-1"]}, "Bool": {"aws:SecureTransport": false}}})),
            json!({"Version": "2012-10-17", "Id": "x", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}).to_string(),
        ] {
            assert!(validate_scp(&ok).is_ok(), "{ok}: {:?}", validate_scp(&ok));
        }
    }

    #[test]
    fn what_aws_refuses_is_refused_with_the_reason() {
        let long = with(
            json!({"Effect": "Deny", "Action": "*", "Resource": format!("arn:aws:s3:::{}", "b".repeat(5100))}),
        );
        for (content, reason) in [
            ("{not json".to_owned(), "the policy is not JSON"),
            ("[]".to_owned(), "the policy is not a JSON object"),
            (long, "an SCP has at most 5120 characters, this one has"),
            (
                json!({"Version": "2008-10-17", "Statement": []}).to_string(),
                "Version must be",
            ),
            (
                json!({"Version": "2012-10-17"}).to_string(),
                "Statement must be",
            ),
            (
                json!({"Version": "2012-10-17", "Statement": []}).to_string(),
                "Statement has no statements",
            ),
            (
                json!({"Version": "2012-10-17", "Statement": [], "Extra": 1}).to_string(),
                "not \"Extra\"",
            ),
            (
                with(json!({"Effect": "Deny", "Action": "*", "Principal": "*"})),
                "Statement 0: SCPs do not take Principal",
            ),
            (
                with(json!({"Effect": "Deny", "Action": "*", "NotPrincipal": {"AWS": "x"}})),
                "SCPs do not take NotPrincipal",
            ),
            (
                with(json!({"Effect": "Maybe", "Action": "*"})),
                "Effect must be",
            ),
            (
                with(json!({"Effect": "Deny"})),
                "exactly one of Action and NotAction",
            ),
            (
                with(json!({"Effect": "Deny", "Action": "*", "NotAction": "s3:*"})),
                "exactly one of Action and NotAction",
            ),
            (
                with(json!({"Effect": "Deny", "Action": "s3"})),
                "Action \"s3\" is not valid",
            ),
            (
                with(json!({"Effect": "Deny", "Action": []})),
                "Action must be a string or a non-empty list",
            ),
            (
                with(json!({"Effect": "Deny", "Action": [1]})),
                "Action must be a string or a list of strings",
            ),
            (
                with(json!({"Effect": "Deny", "Action": "*", "Resource": "*", "NotResource": "*"})),
                "at most one of Resource and NotResource",
            ),
            (
                with(
                    json!({"Effect": "Deny", "Action": "*", "Condition": {"StringEquals": {"k": {"nested": 1}}}}),
                ),
                "Condition StringEquals k must be",
            ),
            (
                with(json!({"Effect": "Deny", "Action": "*", "Condition": []})),
                "Condition must map",
            ),
            (
                with(json!({"Effect": "Deny", "Action": "*", "Sid": "not ok"})),
                "Sid must be letters and digits",
            ),
            (
                with(json!({"Effect": "Deny", "Action": "*", "Actions": "*"})),
                "\"Actions\" is not a statement element",
            ),
        ] {
            let e = validate_scp(&content).unwrap_err();
            assert!(e.contains(reason), "{content}: {e} (wanted {reason})");
        }
    }

    #[test]
    fn the_service_s_own_suspension_policy_is_a_valid_scp() {
        let own = crate::policy::suspension_policy(&"r".repeat(64)).to_string();
        assert!(validate_scp(&own).is_ok(), "{:?}", validate_scp(&own));
    }

    #[test]
    fn the_limit_counts_characters_as_given() {
        let at_limit = |n: usize| {
            let base = with(json!({"Effect": "Deny", "Action": "*", "Resource": ""}));
            let pad = n - base.chars().count();
            with(json!({"Effect": "Deny", "Action": "*", "Resource": "r".repeat(pad)}))
        };
        assert!(validate_scp(&at_limit(MAX_SCP_CHARACTERS)).is_ok());
        assert!(validate_scp(&at_limit(MAX_SCP_CHARACTERS + 1)).is_err());
    }
}
