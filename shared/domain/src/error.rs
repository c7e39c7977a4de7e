//! The service's one error vocabulary: every name an error goes out with — as the `errorType`
//! a Lambda function reports (what the state machines' `Retry` and `Catch` match), as the
//! `Error` of an API refusal, or as the `Error` of a state machine's own `Fail` state. Each
//! error type of the code says which of these names it is through [`Named`]; nothing else
//! spells them. A unit test checks every name the state machines use against this list.

use crate::string_enum;

string_enum! {
    /// A stable error name.
    pub enum ErrorName {
        // The API's refusals.
        /// 400: a malformed request; the cause names the field.
        ValidationError => "ValidationError",
        /// 403: no role, or a role that may not do this.
        Forbidden => "Forbidden",
        /// 404: no such route, account or task.
        NotFound => "NotFound",
        /// 500: a failure inside the service (the cause carries only the request id).
        InternalError => "InternalError",
        /// The foundation bootstrap has not recorded the management account yet.
        FoundationNotReady => "FoundationNotReady",
        /// The account's status does not admit onboarding.
        NotOnboardable => "NotOnboardable",
        /// The account's status does not admit a re-run of Account Assurance.
        NotAssurable => "NotAssurable",
        /// The account's status, role or type does not admit the update asked for.
        NotUpdatable => "NotUpdatable",
        /// The account's status or role does not admit closing it.
        NotClosable => "NotClosable",
        /// The account's status or role does not admit suspending or reactivating it.
        NotSuspendable => "NotSuspendable",
        /// The account's status does not admit scoring.
        NotScorable => "NotScorable",
        /// A built-in or deleted Account Type: it is not renamed or deleted.
        AccountTypeNotChangeable => "AccountTypeNotChangeable",
        /// An Account Type that accounts are still in is not deleted.
        AccountTypeInUse => "AccountTypeInUse",
        /// The service's own policy (the foundation policy) or a deleted one: not changed,
        /// detached or deleted.
        PolicyNotChangeable => "PolicyNotChangeable",
        /// A policy that is still attached is not deleted.
        PolicyInUse => "PolicyInUse",
        /// A policy of that name exists.
        PolicyNameTaken => "PolicyNameTaken",
        /// The target does not take policies: the management account, a foundation account or
        /// type, a closed account, a deleted type.
        NotAttachable => "NotAttachable",
        /// The target has the most SCPs AWS allows attached to it.
        PolicyLimitReached => "PolicyLimitReached",
        /// An organization-wide discovery is already running.
        DiscoveryInProgress => "DiscoveryInProgress",
        /// An organization-wide scoring run is already running.
        ScoringInProgress => "ScoringInProgress",

        // The store.
        NameTaken => "NameTaken",
        AwsAccountIdTaken => "AwsAccountIdTaken",
        AccountExists => "AccountExists",
        AccountNotFound => "AccountNotFound",
        TaskNotFound => "TaskNotFound",
        TaskExists => "TaskExists",
        TaskFinished => "TaskFinished",
        /// Another writer changed the record between the read and the write: retry.
        StaleRecord => "StaleRecord",
        AccountTypeNameTaken => "AccountTypeNameTaken",
        /// DynamoDB could not be reached or refused for a reason not worth telling a caller.
        StoreUnavailable => "StoreUnavailable",
        StoreCorrupt => "StoreCorrupt",

        // The lifecycle.
        TransitionRefused => "TransitionRefused",
        MissingReason => "MissingReason",
        OperationInProgress => "OperationInProgress",
        NotLockHolder => "NotLockHolder",
        AwsAccountIdChange => "AwsAccountIdChange",

        // AWS calls.
        /// An Organizations call failed in a way worth retrying (throttled, unreachable).
        OrganizationsCallFailed => "OrganizationsCallFailed",
        /// The provisioning role of a member account could not be assumed.
        RoleNotAssumable => "RoleNotAssumable",
        /// The provisioning role cannot be assumed, or trusts more than the management account:
        /// the account is not brought under management.
        ProvisioningRoleRefused => "ProvisioningRoleRefused",
        /// The provisioning role could not be checked (STS or IAM did not answer): retry.
        RoleCheckFailed => "RoleCheckFailed",
        /// An Account Assurance (or bootstrap) concern's AWS call failed.
        AssuranceCallFailed => "AssuranceCallFailed",
        /// Something a concern needs is missing and will not appear by retrying.
        AssurancePrerequisiteMissing => "AssurancePrerequisiteMissing",
        /// A CreateAccount request adopted by name created an account whose root email is not
        /// the record's: someone else's request; the record does not take that account.
        CreatedAccountNotOurs => "CreatedAccountNotOurs",
        /// Every CreateAccount slot of the organization is taken: wait and try again.
        CreateSlotsBusy => "CreateSlotsBusy",
        /// Organizations refused a request for a reason retrying will not change (a
        /// constraint, a limit, access).
        OrganizationsRequestRefused => "OrganizationsRequestRefused",
        /// An Account Management API call (the account's name in AWS) failed in a way worth
        /// retrying (throttled, unreachable).
        AccountManagementCallFailed => "AccountManagementCallFailed",
        /// The Account Management API refused the request for a reason retrying will not change.
        AccountManagementRequestRefused => "AccountManagementRequestRefused",
        /// An account without an AWS account or an Account Type cannot be placed in an OU.
        NotPlaceable => "NotPlaceable",
        /// The account is in an OU the service does not manage, and the request did not say
        /// to move it out.
        UnmanagedOrganizationalUnit => "UnmanagedOrganizationalUnit",
        /// An Organizations resource the service would create exists already, made by someone
        /// else (it lacks the service's tag): it is not adopted.
        NotManagedByTheService => "NotManagedByTheService",
        /// The service's event bus did not take the events (retried by the stream's delivery).
        EventsNotPublished => "EventsNotPublished",
        /// A state machine could not be started.
        WorkflowNotStarted => "WorkflowNotStarted",
        /// A scoring run's batch is missing from the table.
        NoSuchBatch => "NoSuchBatch",

        // The foundation bootstrap.
        FoundationAccountNotInOrganization => "FoundationAccountNotInOrganization",
        FoundationAccountNotActive => "FoundationAccountNotActive",
        FoundationAccountsNotDistinct => "FoundationAccountsNotDistinct",
        RecordedWithAnotherRole => "RecordedWithAnotherRole",

        // Events.
        /// An event a function does not take.
        UnknownEvent => "UnknownEvent",

        // The state machines' own failures (their `Fail` states, and causes they compose).
        /// Organizations ended the CreateAccount request FAILED (with AWS's reason).
        CreateAccountFailed => "CreateAccountFailed",
        AccountCreationFailed => "AccountCreationFailed",
        AccountOnboardingFailed => "AccountOnboardingFailed",
        AccountUpdateFailed => "AccountUpdateFailed",
        AccountClosureFailed => "AccountClosureFailed",
        AccountSuspensionFailed => "AccountSuspensionFailed",
        AssuranceFailed => "AssuranceFailed",
        DiscoveryFailed => "DiscoveryFailed",
        ScoringFailed => "ScoringFailed",
        FoundationBootstrapFailed => "FoundationBootstrapFailed",
        /// A state machine started with input that does not follow its documented contract.
        InvalidWorkflowInput => "InvalidWorkflowInput",
    }
}

/// An error that goes out under one of the vocabulary's names.
pub trait Named: std::error::Error {
    fn name(&self) -> ErrorName;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names Step Functions and its service integrations produce themselves; state machines may
    /// match them, and no code of the service does.
    const BUILT_IN_PREFIXES: &[&str] = &[
        "States.",
        "Lambda.",
        "Sandbox.",
        "StepFunctions.",
        "EventBridge.",
    ];
    use serde_json::Value;
    use std::collections::BTreeSet;
    use std::path::Path;

    /// Every error name a definition uses: in `ErrorEquals` (of `Retry` and `Catch`), as a
    /// `Fail` state's `Error`, and as the `Error` a state composes for a later `Catch`.
    fn names_in(definition: &Value, found: &mut BTreeSet<String>) {
        match definition {
            Value::Object(fields) => {
                for (key, value) in fields {
                    match (key.as_str(), value) {
                        ("ErrorEquals", Value::Array(names)) => {
                            found.extend(names.iter().filter_map(Value::as_str).map(str::to_owned))
                        }
                        ("Error", Value::String(name)) => {
                            found.insert(name.clone());
                        }
                        _ => names_in(value, found),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| names_in(i, found)),
            _ => {}
        }
    }

    /// Names the vocabulary lacks, per state machine definition in `dir`.
    fn unknown_names(dir: &Path) -> Vec<String> {
        let mut unknown = Vec::new();
        let mut definitions: Vec<_> = std::fs::read_dir(dir)
            .expect("the statemachines folder")
            .map(|e| e.expect("a directory entry").path())
            .filter(|p| p.to_string_lossy().ends_with(".asl.json"))
            .collect();
        definitions.sort();
        assert!(
            !definitions.is_empty(),
            "no definitions in {}",
            dir.display()
        );
        for path in definitions {
            let text = std::fs::read_to_string(&path).expect("a readable definition");
            let definition: Value = serde_json::from_str(&text).expect("a JSON definition");
            let mut names = BTreeSet::new();
            names_in(&definition, &mut names);
            for name in names {
                let built_in = BUILT_IN_PREFIXES.iter().any(|p| name.starts_with(p));
                if !built_in && name.parse::<ErrorName>().is_err() {
                    let file = path.file_name().unwrap_or_default().to_string_lossy();
                    unknown.push(format!("{file}: {name}"));
                }
            }
        }
        unknown
    }

    #[test]
    fn every_error_name_a_state_machine_uses_is_in_the_vocabulary() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../statemachines");
        let unknown = unknown_names(&dir);
        assert!(
            unknown.is_empty(),
            "state machines name errors outside the vocabulary (domain::ErrorName): {unknown:?}"
        );
    }
}
