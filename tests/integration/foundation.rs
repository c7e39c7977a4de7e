//! The foundation bootstrap state machine running the real register-foundation handler.

use std::collections::BTreeSet;

use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
use aws_sdk_sfn::types::ExecutionStatus;
use chrono::Utc;
use domain::AccountFilter;
use domain::{Account, AccountRole, AccountStatus, AssuranceState, Origin};
use domain::{NewAccount, Transition, Trigger};
use integration_tests::Stack;
use serde_json::Value;
#[allow(unused_imports)]
use store::prelude::*;
use uuid::Uuid;

const BOOTSTRAP: &str = "FoundationStateMachine";

fn outcomes(output: &str) -> Vec<(String, String, String)> {
    let v: Value = serde_json::from_str(output).unwrap();
    v["Accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["AwsAccountId"].as_str().unwrap().into(),
                a["AccountRole"].as_str().unwrap().into(),
                a["Outcome"].as_str().unwrap().into(),
            )
        })
        .collect()
}

/// Runs the bootstrap on a stack that has recorded nothing yet: it succeeds and records the
/// management, Security and Logging accounts, in that order.
async fn first_bootstrap(stack: &Stack) -> DescribeExecutionOutput {
    let org = &stack.ready.organization;
    let run = stack.run_execution(BOOTSTRAP, "{}").await;
    assert_eq!(
        run.status,
        ExecutionStatus::Succeeded,
        "{:?} {:?}",
        run.error,
        run.cause
    );
    assert_eq!(
        outcomes(run.output.as_deref().unwrap()),
        [
            (
                org.management_account_id.clone(),
                "MANAGEMENT".into(),
                "RECORDED".into()
            ),
            (
                org.security_account_id.clone(),
                "SECURITY".into(),
                "RECORDED".into()
            ),
            (
                org.logging_account_id.clone(),
                "LOGGING".into(),
                "RECORDED".into()
            ),
        ]
    );
    run
}

#[tokio::test]
async fn bootstraps_the_foundation_and_a_second_run_changes_nothing() {
    let stack = Stack::start();
    let org = &stack.ready.organization;
    let run = first_bootstrap(&stack).await;

    let store = stack.store().await;
    let security = store
        .get_account_by_aws_id(&org.security_account_id)
        .await
        .unwrap()
        .unwrap()
        .value;
    assert_eq!(
        (security.status, security.account_role, security.origin),
        (
            AccountStatus::Active,
            AccountRole::Security,
            Origin::External
        )
    );
    assert_eq!(security.name, "security");
    let types = store.list_account_types().await.unwrap();
    let security_type = types
        .iter()
        .find(|t| Some(t.id) == security.account_type)
        .unwrap();
    assert_eq!(security_type.name, "foundation-security");
    let type_names: BTreeSet<_> = types.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        type_names,
        [
            "default",
            "foundation-logging",
            "foundation-management",
            "foundation-security"
        ]
        .into()
    );

    let trail = store.audit_trail(security.id).await.unwrap();
    assert_eq!(trail[0].trigger, Some(Trigger::RegisterFoundation));
    assert_eq!(
        &trail[0].actor,
        run.execution_arn(),
        "the audit names the execution"
    );

    // The bootstrap announced itself on the service's bus; the log rule kept the event.
    let logs = aws_sdk_cloudwatchlogs::Client::new(&stack.sdk().await);
    let events = logs
        .filter_log_events()
        .log_group_name(&stack.ready.event_log_group)
        .send()
        .await
        .unwrap();
    // (Status changes go on the bus too: publish-events, tested in manage.rs.)
    let announced: Vec<Value> = events
        .events()
        .iter()
        .map(|e| serde_json::from_str::<Value>(e.message().unwrap()).unwrap())
        .filter(|e| e["detail-type"] != "Account Status Changed")
        .collect();
    assert_eq!(announced.len(), 1, "{announced:?}");
    assert_eq!(
        announced[0]["detail-type"],
        "Foundation Accounts Registered"
    );
    assert_eq!(
        announced[0]["detail"]["Accounts"].as_array().unwrap().len(),
        3
    );

    // The bootstrap assured the Security and Logging accounts.
    let output: Value = serde_json::from_str(run.output.as_deref().unwrap()).unwrap();
    assert_eq!(
        output["Steps"]["Assurance"],
        serde_json::json!([{"Status": "SUCCEEDED"}, {"Status": "SUCCEEDED"}])
    );
    assert_eq!(security.assurance_state, AssuranceState::Active);
    assert!(
        !output["Steps"]["Policy"]["Changes"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // The log buckets: Object Lock by default (governance, the template's 365 days), Session
    // Manager writes only under each account's own prefix, CloudTrail only from the baseline
    // trail; every call on them named the Logging account as the owner.
    let logging = aws_sdk_s3::Client::new(&stack.in_account(&org.logging_account_id).await);
    for kind in ["cloudtrail", "config", "ssm"] {
        let bucket = format!("accounts-{kind}-{}", org.logging_account_id);
        let lock = logging
            .get_object_lock_configuration()
            .bucket(&bucket)
            .send()
            .await
            .unwrap()
            .object_lock_configuration
            .unwrap();
        let retention = lock.rule().unwrap().default_retention().unwrap();
        assert_eq!(
            (retention.mode().map(|m| m.as_str()), retention.days()),
            (Some("GOVERNANCE"), Some(365)),
            "{bucket}"
        );
        let policy: Value = serde_json::from_str(
            &logging
                .get_bucket_policy()
                .bucket(&bucket)
                .send()
                .await
                .unwrap()
                .policy
                .unwrap(),
        )
        .unwrap();
        let delivers = &policy["Statement"][1];
        match kind {
            "ssm" => assert_eq!(
                policy["Statement"][0]["Resource"],
                format!("arn:aws:s3:::{bucket}/${{aws:PrincipalAccount}}/*")
            ),
            "cloudtrail" => assert_eq!(
                delivers["Condition"]["ArnLike"]["aws:SourceArn"],
                "arn:aws:cloudtrail:*:*:trail/accounts-baseline"
            ),
            _ => assert_eq!(
                delivers["Condition"]["StringEquals"]["aws:SourceOrgID"],
                org.organization_id.as_str()
            ),
        }
    }
    let access = stack.iam_access().await;
    assert!(
        access["allowed"]["stax-provisioning/accounts-foundation-logging"]
            .as_object()
            .is_some_and(|a| a.contains_key("s3:PutBucketObjectLockConfiguration"))
    );
    assert_eq!(
        access["s3_without_expected_owner"].get("stax-provisioning/accounts-foundation-logging"),
        None,
        "{access}"
    );

    // Renaming member accounts needs the Account Management API's trusted access.
    let first: Value = serde_json::from_str(run.output().unwrap()).unwrap();
    assert!(
        first["Steps"]["Policy"]["Changes"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(
                "enabled the organization's trusted access for account.amazonaws.com"
            )),
        "{first}"
    );

    // A second run: nothing recorded twice, nothing left to change.
    let again = stack.run_execution(BOOTSTRAP, "{}").await;
    assert_eq!(
        again.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        again.cause
    );
    assert!(
        outcomes(again.output.as_deref().unwrap())
            .iter()
            .all(|(_, _, o)| o == "ALREADY_RECORDED")
    );
    let output: Value = serde_json::from_str(again.output.as_deref().unwrap()).unwrap();
    for step in ["Logging", "GuardDuty", "Policy"] {
        assert_eq!(
            output["Steps"][step]["Changes"],
            serde_json::json!([]),
            "{step} changed on a second run"
        );
    }
    assert_eq!(
        store
            .list_accounts(&AccountFilter::default())
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(store.list_account_types().await.unwrap().len(), 4);
    let registered = store
        .audit_trail(security.id)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.trigger == Some(Trigger::RegisterFoundation))
        .count();
    assert_eq!(registered, 1);
}

#[tokio::test]
async fn a_deployment_without_foundation_accounts_creates_them_and_the_bootstrap_adopts_them() {
    // Deployed with SecurityAccountId and LoggingAccountId empty: the template's
    // SecurityAccount and LoggingAccount (AWS::Organizations::Account) create them.
    let stack = Stack::start_with(&["--foundation-accounts", "create"]);
    let org = &stack.ready.organization;
    let organizations = aws_sdk_organizations::Client::new(&stack.sdk().await);
    for (id, name, email) in [
        (
            &org.security_account_id,
            "security",
            "aws+foundation-security@example.com",
        ),
        (
            &org.logging_account_id,
            "logging",
            "aws+foundation-logging@example.com",
        ),
    ] {
        let account = organizations
            .describe_account()
            .account_id(id)
            .send()
            .await
            .unwrap()
            .account
            .unwrap();
        assert_eq!((account.name(), account.email()), (Some(name), Some(email)));
        assert!(org.members.iter().all(|m| &m.aws_account_id != id));
    }

    let run = first_bootstrap(&stack).await;
    // Hardened through the provisioning role CreateAccount put in them; the buckets are in the
    // new Logging account.
    let output: Value = serde_json::from_str(run.output.as_deref().unwrap()).unwrap();
    assert_eq!(
        output["Steps"]["Assurance"],
        serde_json::json!([{"Status": "SUCCEEDED"}, {"Status": "SUCCEEDED"}])
    );
    let bucket = format!(
        "created bucket accounts-cloudtrail-{} with Object Lock",
        org.logging_account_id
    );
    assert!(
        output["Steps"]["Logging"]["Changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == &Value::from(bucket.as_str())),
        "{output}"
    );
    let logging = stack
        .store()
        .await
        .get_account_by_aws_id(&org.logging_account_id)
        .await
        .unwrap()
        .unwrap()
        .value;
    assert_eq!(
        (
            logging.status,
            logging.account_role,
            logging.assurance_state
        ),
        (
            AccountStatus::Active,
            AccountRole::Logging,
            AssuranceState::Active
        )
    );
    // Exactly one account each: the organization is the three seeded members, the management
    // account and the two the stack made.
    let members = organizations
        .list_accounts()
        .send()
        .await
        .unwrap()
        .accounts
        .unwrap_or_default();
    assert_eq!(members.len(), 6, "{members:?}");
}

#[tokio::test]
async fn a_run_after_a_partial_write_records_each_account_once() {
    let stack = Stack::start();
    let org = &stack.ready.organization;
    // An earlier invocation recorded the management account, as the handler does, and then
    // died before recording the others; Step Functions retries the step.
    let store = stack.store().await;
    let management_type = store
        .ensure_account_type("foundation-management")
        .await
        .unwrap();
    let management = Account::create(
        Uuid::new_v4(),
        NewAccount {
            account_type: Some(management_type.id),
            account_role: AccountRole::Management,
            ..domain::fixtures::new_account("master", Some(&org.management_account_id))
        },
        &Transition::to(Trigger::RegisterFoundation, AccountStatus::Active),
        Utc::now(),
    )
    .unwrap();
    store
        .create_account(
            &management,
            Trigger::RegisterFoundation,
            None,
            "crashed-run",
        )
        .await
        .unwrap();

    let run = stack.run_execution(BOOTSTRAP, "{}").await;
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.cause);
    let outcome: Vec<String> = outcomes(run.output.as_deref().unwrap())
        .into_iter()
        .map(|(_, _, o)| o)
        .collect();
    assert_eq!(outcome, ["ALREADY_RECORDED", "RECORDED", "RECORDED"]);
    assert_eq!(
        store
            .list_accounts(&AccountFilter::default())
            .await
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_bootstraps_record_each_account_once() {
    let stack = std::sync::Arc::new(Stack::start());
    let runs = crate::race(3, |_| {
        let stack = stack.clone();
        async move { stack.run_execution(BOOTSTRAP, "{}").await }
    })
    .await;
    for run in runs {
        assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.cause);
    }
    let store = stack.store().await;
    let accounts = store
        .list_accounts(&AccountFilter::default())
        .await
        .unwrap();
    assert_eq!(accounts.len(), 3, "{accounts:?}");
    assert_eq!(store.list_account_types().await.unwrap().len(), 4);
}

#[tokio::test]
async fn a_throttled_organizations_call_is_retried_to_success() {
    let stack = Stack::start();
    let target = "AWSOrganizationsV20161128.DescribeOrganization";
    stack
        .inject_fault(target, "TooManyRequestsException", 2)
        .await;
    let run = stack.run_execution(BOOTSTRAP, "{}").await;
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.cause);
    assert_eq!(
        stack.faults_served(target).await,
        2,
        "both throttled calls were made and retried"
    );
}

#[tokio::test]
async fn a_foundation_account_outside_the_organization_fails_the_run_with_the_reason() {
    let stack = Stack::start();
    let logging = stack.ready.organization.logging_account_id.clone();
    let organizations = aws_sdk_organizations::Client::new(&stack.sdk().await);
    organizations
        .remove_account_from_organization()
        .account_id(&logging)
        .send()
        .await
        .unwrap();

    let run = stack.run_execution(BOOTSTRAP, "{}").await;
    assert_eq!(run.status, ExecutionStatus::Failed);
    assert_eq!(run.error.as_deref(), Some("FoundationBootstrapFailed"));
    let cause: Value = serde_json::from_str(run.cause.as_deref().unwrap()).unwrap();
    assert_eq!(cause["errorType"], "FoundationAccountNotInOrganization");
    assert_eq!(
        cause["errorMessage"],
        format!("AWS account {logging} is not a member of the organization")
    );
    let store = stack.store().await;
    assert!(
        store
            .get_account_by_aws_id(&logging)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn an_scp_named_foundation_that_the_service_did_not_create_is_not_adopted() {
    let stack = Stack::start();
    let organizations = aws_sdk_organizations::Client::new(&stack.sdk().await);
    let theirs = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}"#;
    let id = organizations
        .create_policy()
        .name("foundation")
        .description("another team's")
        .r#type(aws_sdk_organizations::types::PolicyType::ServiceControlPolicy)
        .content(theirs)
        .send()
        .await
        .unwrap()
        .policy
        .and_then(|p| p.policy_summary)
        .and_then(|s| s.id)
        .unwrap();

    let run = stack.run_execution(BOOTSTRAP, "{}").await;
    assert_eq!(run.status, ExecutionStatus::Failed);
    let cause: Value = serde_json::from_str(run.cause.as_deref().unwrap()).unwrap();
    assert_eq!(cause["errorType"], "NotManagedByTheService");
    assert!(
        cause["errorMessage"].as_str().unwrap().contains(&id),
        "{cause}"
    );
    let policy = |id: String| {
        let organizations = organizations.clone();
        async move {
            let described = organizations
                .describe_policy()
                .policy_id(id.clone())
                .send()
                .await
                .unwrap();
            let targets = organizations
                .list_targets_for_policy()
                .policy_id(id)
                .send()
                .await
                .unwrap();
            (
                described.policy.unwrap().content.unwrap(),
                targets.targets().len(),
            )
        }
    };
    assert_eq!(
        policy(id.clone()).await,
        (theirs.to_owned(), 0),
        "neither rewritten nor attached"
    );
    // The management account is recorded, but the bootstrap did not complete: no account may
    // be created or onboarded yet (it would go unprotected by the SCP).
    let store = stack.store().await;
    let management = &stack.ready.organization.management_account_id;
    assert!(
        store
            .get_account_by_aws_id(management)
            .await
            .unwrap()
            .is_some()
    );
    let before = store.snapshot().await.unwrap();
    let create = serde_json::json!({"Name": "too-early", "AccountType": "default"}).to_string();
    let onboard =
        serde_json::json!({"AwsAccountId": stack.ready.organization.members[0].aws_account_id,
        "AccountType": "default"})
        .to_string();
    for (path, body) in [
        ("/20190206/accounts", &create),
        ("/20190206/accounts/onboard", &onboard),
    ] {
        stack
            .api("POST", path, Some(body), Some("local-admin"))
            .await
            .assert_refused(409, "FoundationNotReady", path);
    }
    assert_eq!(store.snapshot().await.unwrap(), before, "nothing written");

    // Tagged as the service's, it is taken over: its content restored and attached.
    let tag = aws_sdk_organizations::types::Tag::builder()
        .key(domain::policy::MANAGED_TAG_KEY)
        .value(domain::policy::MANAGED_TAG_VALUE)
        .build()
        .unwrap();
    organizations
        .tag_resource()
        .resource_id(&id)
        .tags(tag)
        .send()
        .await
        .unwrap();
    let run = stack.run_execution(BOOTSTRAP, "{}").await;
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.cause);
    let (content, targets) = policy(id).await;
    assert_ne!(content, theirs);
    assert_eq!(targets, 1);
    let r = stack
        .api(
            "POST",
            "/20190206/accounts",
            Some(&create),
            Some("local-admin"),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}
