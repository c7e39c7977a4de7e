//! IAM policy documents as data: their statements and string-or-list fields, and the
//! provisioning role's trust policy. The foundation SCP exempts the provisioning role by name,
//! so the role must be assumable from the management account only: a role a member account's
//! own admins could assume would be a principal they control and the SCP spares.

use serde_json::{Value, json};

/// The tag the service puts on the Organizations resources it creates (its SCP, its OUs). Its
/// IAM policies let it change only resources carrying it (`aws:ResourceTag`), and it adopts no
/// resource without it: an SCP or OU someone else made is never silently taken over.
pub const MANAGED_TAG_KEY: &str = "accounts:managed-by";
pub const MANAGED_TAG_VALUE: &str = "accounts";

/// A policy's statements: IAM takes one statement object or a list of them.
pub fn statements(policy: &Value) -> Vec<&Value> {
    match &policy["Statement"] {
        Value::Array(list) => list.iter().collect(),
        one @ Value::Object(_) => vec![one],
        _ => Vec::new(),
    }
}

/// A string-or-list field (`Action`, `Resource`, a principal, a condition value) as its strings.
pub fn strings(field: &Value) -> Vec<&str> {
    match field {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Does the trust policy `document` admit principals of `management` only? Every `Allow`
/// statement must name principals of the management account and nothing else (no other
/// account, service, federated or anonymous principal, no `NotPrincipal`). `Err` says which
/// principal, in words.
pub fn trusts_only(document: &str, management: &str) -> Result<(), String> {
    let policy: Value = serde_json::from_str(document)
        .map_err(|e| format!("the provisioning role's trust policy is not JSON: {e}"))?;
    let untrusted = |who: String| {
        Err(format!(
            "the provisioning role also trusts {who}; it must trust only the management account {management}"
        ))
    };
    for s in statements(&policy)
        .into_iter()
        .filter(|s| s["Effect"] == "Allow")
    {
        if !s["NotPrincipal"].is_null() {
            return untrusted("everyone outside a NotPrincipal".into());
        }
        let principal = &s["Principal"];
        if principal == "*" {
            return untrusted("every principal (\"*\")".into());
        }
        let Some(kinds) = principal.as_object() else {
            return untrusted(format!("principal {principal}"));
        };
        for (kind, who) in kinds {
            if !(who.is_string() || who.is_array()) {
                return untrusted(format!("{kind} principal {who}"));
            }
            for name in strings(who) {
                if kind != "AWS" || !in_account(name, management) {
                    return untrusted(format!("{kind} principal {name}"));
                }
            }
        }
    }
    Ok(())
}

/// `123456789012`, `arn:aws:iam::123456789012:root` or any IAM ARN of that account.
fn in_account(principal: &str, account: &str) -> bool {
    if principal == account {
        return true;
    }
    let parts: Vec<&str> = principal.split(':').collect();
    parts.len() >= 6 && parts[0] == "arn" && parts[2] == "iam" && parts[4] == account
}

/// The trust policy Account Assurance restores when the role's has drifted: the management
/// account, and nothing else.
pub fn management_only(management: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{management}:root")},
            "Action": "sts:AssumeRole"
        }]
    })
}

/// The Stax id (a UUID) of an Organizations policy, derived from its AWS id: the same policy
/// always has the same id.
pub fn policy_uuid(aws_policy_id: &str) -> uuid::Uuid {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("accounts:policy:{aws_policy_id}").as_bytes(),
    )
}

/// The Stax id of a policy's attachment to one target (an account, OU or root id), derived
/// from both: the same attachment always has the same id.
pub fn attachment_uuid(aws_policy_id: &str, target: &str) -> uuid::Uuid {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("accounts:attachment:{aws_policy_id}:{target}").as_bytes(),
    )
}

/// The name of the SCP that suspends accounts.
pub const SUSPENSION_POLICY: &str = "accounts-suspended";

/// The SCP attached to a SUSPENDED account: every action denied to every principal but the
/// provisioning role (the service must still reach the account, to reactivate, score or close
/// it). SCPs do not apply to the management account, which is never suspended.
pub fn suspension_policy(role_name: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AccountSuspended",
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"ArnNotLike": {"aws:PrincipalArn": format!("arn:aws:iam::*:role/{role_name}")}}
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANAGEMENT: &str = "123456789012";

    fn trust(principal: Value) -> String {
        json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
        ]})
        .to_string()
    }

    #[test]
    fn the_management_account_alone_is_trusted() {
        assert_eq!(
            trusts_only(&management_only(MANAGEMENT).to_string(), MANAGEMENT),
            Ok(())
        );
        for p in [
            json!({"AWS": MANAGEMENT}),
            json!({"AWS": ["arn:aws:iam::123456789012:role/Accounts-Discover"]}),
        ] {
            assert_eq!(trusts_only(&trust(p), MANAGEMENT), Ok(()));
        }
    }

    #[test]
    fn any_other_principal_is_named_in_the_refusal() {
        let own =
            json!({"AWS": ["arn:aws:iam::123456789012:root", "arn:aws:iam::444455556666:root"]});
        let reason = trusts_only(&trust(own), MANAGEMENT).unwrap_err();
        assert!(
            reason.contains("AWS principal arn:aws:iam::444455556666:root"),
            "{reason}"
        );
        for p in [
            json!("*"),
            json!({"AWS": "*"}),
            json!({"AWS": "444455556666"}),
            json!({"Service": "ec2.amazonaws.com"}),
            json!({"Federated": "arn:aws:iam::123456789012:saml-provider/idp"}),
        ] {
            assert!(trusts_only(&trust(p.clone()), MANAGEMENT).is_err(), "{p}");
        }
        let not_principal = json!({"Statement": {"Effect": "Allow", "NotPrincipal": {"AWS": MANAGEMENT}, "Action": "sts:AssumeRole"}});
        assert!(trusts_only(&not_principal.to_string(), MANAGEMENT).is_err());
        assert!(trusts_only("{not json", MANAGEMENT).is_err());
    }

    #[test]
    fn statements_and_fields_are_read_in_either_form() {
        let one = json!({"Statement": {"Effect": "Allow", "Action": "s3:GetObject"}});
        let many = json!({"Statement": [{"Action": ["a:B", "c:D"]}, {"Action": "e:F"}]});
        assert_eq!(statements(&one).len(), 1);
        assert_eq!(strings(&statements(&one)[0]["Action"]), ["s3:GetObject"]);
        assert_eq!(strings(&statements(&many)[0]["Action"]), ["a:B", "c:D"]);
        assert!(statements(&json!({})).is_empty());
        assert!(strings(&json!(null)).is_empty());
    }

    #[test]
    fn deny_statements_do_not_widen_trust() {
        let doc = json!({"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": MANAGEMENT}, "Action": "sts:AssumeRole"},
            {"Effect": "Deny", "Principal": "*", "Action": "sts:AssumeRole", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
        ]});
        assert_eq!(trusts_only(&doc.to_string(), MANAGEMENT), Ok(()));
    }
}
