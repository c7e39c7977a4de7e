//! Who may do what: callers' IAM principals map to the Stax roles through configuration.
//!
//! API Gateway's IAM authorizer has already verified the SigV4 signature; what reaches the
//! handler is the caller's principal ARN. The mapping is a JSON object from principal ARN to role,
//! e.g. `{"arn:aws:iam::111122223333:role/PlatformAdmins": "admin"}`. An assumed-role session
//! (`arn:aws:sts::…:assumed-role/Name/session`) is the role `arn:aws:iam::…:role/Name`.

use std::collections::HashMap;

use domain::config::ConfigError;
use domain::string_enum;

string_enum! {
    pub enum AccessRole {
        Admin => "admin",
        Operations => "operations",
        User => "user",
        Readonly => "readonly",
    }
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Reads: any role.
    Read,
    /// Create, onboard, discover, update: admin or operations.
    Mutate,
    /// Close, suspend, reactivate; Account Types and policies: admin.
    Admin,
}

impl AccessRole {
    pub fn allows(self, p: Permission) -> bool {
        match p {
            Permission::Read => true,
            Permission::Mutate => matches!(self, AccessRole::Admin | AccessRole::Operations),
            Permission::Admin => self == AccessRole::Admin,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessPolicy {
    roles: HashMap<String, AccessRole>,
}

/// The form principals are compared in: assumed-role sessions become their role, and role paths
/// are dropped (an assumed-role ARN does not carry the path).
fn normalise(arn: &str) -> String {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [_, partition, service, _, account, resource] = parts[..] else {
        return arn.to_owned();
    };
    match (service, resource.split('/').collect::<Vec<_>>().as_slice()) {
        ("sts", ["assumed-role", role, ..]) | ("iam", ["role", .., role]) => {
            format!("arn:{partition}:iam::{account}:role/{role}")
        }
        _ => arn.to_owned(),
    }
}

impl AccessPolicy {
    /// Parses the `ACCESS_ROLES` JSON object.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            name: "ACCESS_ROLES",
            reason,
        };
        let raw: HashMap<String, String> = serde_json::from_str(json)
            .map_err(|e| invalid(format!("not a JSON object of strings: {e}")))?;
        let mut roles = HashMap::new();
        for (principal, role) in raw {
            if !principal.starts_with("arn:") {
                return Err(invalid(format!("{principal:?} is not an ARN")));
            }
            let role = role
                .parse()
                .map_err(|e| invalid(format!("{principal}: {e}")))?;
            roles.insert(normalise(&principal), role);
        }
        Ok(AccessPolicy { roles })
    }

    pub fn role_of(&self, principal_arn: &str) -> Option<AccessRole> {
        self.roles.get(&normalise(principal_arn)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assumed_role_sessions_map_to_their_role() {
        let p = AccessPolicy::from_json(
            r#"{"arn:aws:iam::111122223333:role/platform/Admins": "admin",
                "arn:aws:iam::111122223333:user/auditor": "readonly"}"#,
        )
        .unwrap();
        assert_eq!(
            p.role_of("arn:aws:sts::111122223333:assumed-role/Admins/alice@example.com"),
            Some(AccessRole::Admin)
        );
        assert_eq!(
            p.role_of("arn:aws:iam::111122223333:user/auditor"),
            Some(AccessRole::Readonly)
        );
        assert_eq!(p.role_of("arn:aws:iam::999999999999:user/auditor"), None);
        assert_eq!(
            p.role_of("arn:aws:sts::111122223333:assumed-role/Other/s"),
            None
        );
    }

    #[test]
    fn roles_grant_by_permission() {
        use AccessRole::*;
        let grid = [
            (Admin, [true, true, true]),
            (Operations, [true, true, false]),
            (User, [true, false, false]),
            (Readonly, [true, false, false]),
        ];
        for (role, expected) in grid {
            assert_eq!(
                [
                    role.allows(Permission::Read),
                    role.allows(Permission::Mutate),
                    role.allows(Permission::Admin)
                ],
                expected,
                "{role}"
            );
        }
    }

    #[test]
    fn bad_configuration_is_refused_with_a_reason() {
        for bad in [
            r#"["admin"]"#,
            r#"{"arn:aws:iam::1:user/a": "root"}"#,
            r#"{"alice": "admin"}"#,
        ] {
            let e = AccessPolicy::from_json(bad).unwrap_err();
            assert!(e.to_string().starts_with("ACCESS_ROLES is invalid"), "{e}");
        }
    }
}
