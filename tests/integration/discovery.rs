//! Discovery and onboarding of accounts created outside the service, against the emulated
//! organization: the API routes, Organizations events, the schedule's event, and what each
//! writes — or, for an unchanged organization, does not write.

use std::sync::OnceLock;
use std::time::Duration;

use aws_sdk_organizations::types::CreateAccountState;
use domain::AccountStatus;
use integration_tests::Stack;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::create::assert_hardened;
use crate::{one_accepted, race};
#[allow(unused_imports)]
use store::prelude::*;

/// The table without the items that say a run happened (its task, the discovery slot).
fn records(
    items: Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    items
        .into_iter()
        .filter(|i| {
            let pk = i
                .get("pk")
                .and_then(|v| v.as_s().ok())
                .map_or("", String::as_str);
            !pk.starts_with("TASK#") && !pk.starts_with("SLOTS#")
        })
        .collect()
}

/// A stack of its own: these tests change the organization (accounts created, closed, removed)
/// and check that an unchanged organization means an unchanged table.
fn organization() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(Stack::start)
}

fn member<'a>(stack: &'a Stack, name: &str) -> &'a str {
    &stack
        .ready
        .organization
        .members
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("the seed has no member {name}"))
        .aws_account_id
}

/// The record of an AWS account, through the API (`None` when there is none).
async fn record_of(stack: &Stack, aws_account_id: &str) -> Option<Value> {
    let r = stack
        .api(
            "GET",
            &format!("/20190206/accounts?aws_account_id_filter={aws_account_id}"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let accounts = r.body["Accounts"].as_array().unwrap();
    assert!(
        accounts.len() <= 1,
        "one record per AWS account: {accounts:?}"
    );
    accounts.first().cloned()
}

/// Waits until the AWS account's record satisfies `done` (Organizations events arrive
/// asynchronously).
async fn eventually(stack: &Stack, aws_account_id: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..150 {
        if let Some(record) = record_of(stack, aws_account_id).await
            && done(&record)
        {
            return record;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "the record of {aws_account_id} never got there: {:?}",
        record_of(stack, aws_account_id).await
    );
}

/// Runs an organization-wide discovery through the API and returns its finished task.
async fn discover_all(stack: &Stack) -> Value {
    let r = stack
        .api("POST", "/20190206/accounts/discover", Some("{}"), None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["Detail"]["Operation"], "accounts:DiscoverAccounts");
    let task = stack
        .finished_task(r.body["TaskId"].as_str().unwrap())
        .await;
    assert_eq!(task["Status"], "SUCCEEDED", "{task:?}");
    task
}

fn last_log(task: &Value) -> &str {
    task["Logs"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap()
}

/// Creates an AWS account the way a platform team does outside the service.
pub(crate) async fn create_outside(stack: &Stack, name: &str, role: &str) -> String {
    let org = aws_sdk_organizations::Client::new(&stack.sdk().await);
    let mut status = org
        .create_account()
        .account_name(name)
        .email(format!("{name}@outside.example.com"))
        .role_name(role)
        .send()
        .await
        .unwrap()
        .create_account_status
        .unwrap();
    while status.state() == Some(&CreateAccountState::InProgress) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        status = org
            .describe_create_account_status()
            .create_account_request_id(status.id().unwrap())
            .send()
            .await
            .unwrap()
            .create_account_status
            .unwrap();
    }
    assert_eq!(status.state(), Some(&CreateAccountState::Succeeded));
    status.account_id().unwrap().to_owned()
}

/// Gives an account the provisioning role, through the role Organizations put in it, with
/// AdministratorAccess's document (the emulator enforces the role's policies).
async fn add_provisioning_role(stack: &Stack, aws_account_id: &str) {
    let sdk = aws::assume_role(
        &stack.sdk().await,
        aws_account_id,
        "OrganizationAccountAccessRole",
        "tests",
        None,
    )
    .await
    .unwrap();
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{}:root", stack.ready.account_id)},
        "Action": "sts:AssumeRole"}]});
    let iam = aws_sdk_iam::Client::new(&sdk);
    iam.create_role()
        .role_name("stax-provisioning")
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .unwrap();
    let administrator = json!({"Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    iam.put_role_policy()
        .role_name("stax-provisioning")
        .policy_name("AdministratorAccess")
        .policy_document(administrator.to_string())
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_records_the_organization_and_follows_it() {
    let stack = organization();
    stack.bootstrapped().await;
    let store = stack.store().await;
    let (alpha, beta, gamma) = (
        member(stack, "workload-alpha"),
        member(stack, "workload-beta"),
        member(stack, "legacy-gamma"),
    );

    // First run: the seeded members, recorded once each; the foundation accounts stay as the
    // bootstrap recorded them.
    let task = discover_all(stack).await;
    assert!(
        last_log(&task).contains("2 discovered, 1 without a usable provisioning role"),
        "{task:?}"
    );
    for id in [alpha, beta] {
        let a = record_of(stack, id).await.unwrap();
        assert_eq!(
            (a["Status"].as_str(), a["Origin"].as_str()),
            (Some("DISCOVERED"), Some("EXTERNAL"))
        );
        assert!(a.get("StatusReason").is_none());
    }
    let g = record_of(stack, gamma).await.unwrap();
    assert_eq!(g["Status"], "ERROR");
    let reason = g["StatusReason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!(
            "could not assume role stax-provisioning in AWS account {gamma}: AccessDenied: "
        )),
        "{reason}"
    );
    let all = stack.api("GET", "/20190206/accounts", None, None).await;
    assert_eq!(all.body["Accounts"].as_array().unwrap().len(), 6);

    // Again, over an unchanged organization: not one write, not one audit event.
    let before = store.snapshot().await.unwrap();
    let task = discover_all(stack).await;
    assert!(
        last_log(&task).contains("6 members, 6 known: 0 discovered"),
        "{task:?}"
    );
    assert_eq!(records(store.snapshot().await.unwrap()), records(before));

    // Two organization-wide runs asked for at once: one runs, the other is told so.
    let answers = race(2, |_| async {
        organization()
            .api("POST", "/20190206/accounts/discover", None, None)
            .await
    })
    .await;
    let started = one_accepted(answers, "DiscoveryInProgress");
    let task = stack
        .finished_task(started.body["TaskId"].as_str().unwrap())
        .await;
    assert_eq!(task["Status"], "SUCCEEDED");
    // The slot is free again.
    discover_all(stack).await;

    // The role is fixed: re-discovering the account makes it DISCOVERED.
    add_provisioning_role(stack, gamma).await;
    let r = stack
        .api(
            "POST",
            &format!("/20190206/accounts/discover/{gamma}"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["Detail"]["OperationStatus"], "SUCCEEDED");
    let g = record_of(stack, gamma).await.unwrap();
    assert_eq!(g["Status"], "DISCOVERED");
    assert!(g.get("StatusReason").is_none());

    // An account created outside the service: the CreateAccountResult event records it.
    let delta = create_outside(stack, "outside-delta", "stax-provisioning").await;
    let d = eventually(stack, &delta, |a| a["Status"] == "DISCOVERED").await;
    assert_eq!(
        (d["Name"].as_str(), d["Origin"].as_str()),
        (Some("outside-delta"), Some("EXTERNAL"))
    );

    // Closed in AWS, and removed from the organization: CLOSED, kept, saying why.
    let org = aws_sdk_organizations::Client::new(&stack.sdk().await);
    org.close_account().account_id(&delta).send().await.unwrap();
    let d = eventually(stack, &delta, |a| a["Status"] == "CLOSED").await;
    assert_eq!(d["StatusReason"], "AWS reports the account SUSPENDED");
    org.remove_account_from_organization()
        .account_id(beta)
        .send()
        .await
        .unwrap();
    let b = eventually(stack, beta, |a| a["Status"] == "CLOSED").await;
    assert_eq!(
        b["StatusReason"],
        format!("AWS account {beta} is no longer a member of the organization")
    );

    // The schedule's run agrees with what the events did: nothing left to write.
    let before = store.snapshot().await.unwrap();
    let task = discover_all(stack).await;
    assert!(
        last_log(&task).contains(": 0 discovered, 0 without"),
        "{task:?}"
    );
    assert!(last_log(&task).contains("0 closed, 0 left"), "{task:?}");
    assert_eq!(records(store.snapshot().await.unwrap()), records(before));
    let trail = store
        .audit_trail(Uuid::parse_str(b["Id"].as_str().unwrap()).unwrap())
        .await
        .unwrap();
    let statuses: Vec<_> = trail.iter().filter_map(|e| e.to).collect();
    assert_eq!(statuses, [AccountStatus::Discovered, AccountStatus::Closed]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_and_repeated_events_start_one_run_and_record_once() {
    // The workflows stack: the organization-wide run meets creations in flight there.
    let stack = Stack::workflows().bootstrapped().await;
    // The schedule starts an organization-wide run; one that finds a run going skips. Both
    // inputs a schedule can deliver: EventBridge Scheduler's (the template's `Input`) and an
    // EventBridge rule's scheduled event.
    let scheduler = json!({"Action": "Schedule"});
    let scheduled = json!({"source": "aws.events", "detail-type": "Scheduled Event",
        "detail": {}, "resources": ["arn:aws:events:us-east-1:123456789012:rule/discovery"]});
    let (ok, first) = stack.invoke("DiscoverFunction", &scheduler).await;
    assert!(ok, "{first:?}");
    let (ok, second) = stack.invoke("DiscoverFunction", &scheduled).await;
    assert!(ok, "{second:?}");
    let started: Vec<&Value> = [&first, &second]
        .into_iter()
        .filter(|a| a.get("Started").is_some())
        .collect();
    assert!(!started.is_empty(), "{first:?} {second:?}");
    for answer in [&first, &second] {
        assert!(
            answer.get("Started").is_some()
                || answer["Skipped"] == "a discovery run is in progress",
            "{answer:?}"
        );
    }
    let task = stack
        .finished_task(started[0]["Started"].as_str().unwrap())
        .await;
    assert_eq!(task["Status"], "SUCCEEDED", "{task:?}");
    // The template's schedule, as the emulator's EventBridge Scheduler fires it.
    let task = stack
        .fire_schedule("DiscoverFunctionSchedule", "DiscoveryStateMachine")
        .await;
    assert_eq!(task["Status"], "SUCCEEDED", "{task:?}");

    // The same CreateAccountResult delivered several times at once (EventBridge delivers at
    // least once), while the emulator's own delivery races them: one record.
    let epsilon = create_outside(stack, "outside-epsilon", "stax-provisioning").await;
    let event = json!({"source": "aws.organizations", "detail-type": "AWS Service Event via CloudTrail",
        "detail": {"eventSource": "organizations.amazonaws.com", "eventName": "CreateAccountResult",
            "serviceEventDetails": {"createAccountStatus": {"accountId": epsilon, "state": "SUCCEEDED"}}}});
    let answers = race(4, |_| {
        let event = event.clone();
        async move { Stack::workflows().invoke("DiscoverFunction", &event).await }
    })
    .await;
    assert!(answers.iter().all(|(ok, _)| *ok), "{answers:?}");
    let e = eventually(stack, &epsilon, |a| a["Status"] == "DISCOVERED").await;
    let trail = stack
        .store()
        .await
        .audit_trail(Uuid::parse_str(e["Id"].as_str().unwrap()).unwrap())
        .await
        .unwrap();
    assert_eq!(trail.len(), 1, "{trail:?}");

    // An accepted invitation names no account where the others do: it starts a run.
    let accepted = json!({"source": "aws.organizations", "detail-type": "AWS API Call via CloudTrail",
        "detail": {"eventSource": "organizations.amazonaws.com", "eventName": "AcceptHandshake"}});
    let (ok, answer) = stack.invoke("DiscoverFunction", &accepted).await;
    assert!(
        ok && (answer.get("Started").is_some() || answer.get("Skipped").is_some()),
        "{answer:?}"
    );
    if let Some(task) = answer["Started"].as_str() {
        assert_eq!(stack.finished_task(task).await["Status"], "SUCCEEDED");
    }
}

/// Onboards (with `more` in the body), waits for the task and checks it ended `status`.
async fn onboarding_ends(stack: &Stack, aws_account_id: &str, more: Value, status: &str) -> Value {
    let body = onboard_body(aws_account_id, more);
    stack
        .operation_ends(
            "/20190206/accounts/onboard",
            &body,
            Some("local-operations"),
            status,
        )
        .await
}

/// The record of `aws_account_id` is ERROR, unlocked, saying `why`: its reason.
async fn assert_error_saying(stack: &Stack, aws_account_id: &str, why: &str) -> String {
    let a = record_of(stack, aws_account_id).await.unwrap();
    assert_eq!(a["Status"], "ERROR", "{a}");
    let reason = a["StatusReason"].as_str().unwrap().to_owned();
    assert!(reason.contains(why), "{reason}");
    assert!(a.get("UserTaskId").is_none(), "the lock is released");
    reason
}

async fn onboard(stack: &Stack, aws_account_id: &str) -> integration_tests::ApiResponse {
    onboard_with(stack, aws_account_id, json!({})).await
}

/// An onboarding body for `aws_account_id` (type `default`), with more fields (`Name`,
/// `LeaveOrganisationalUnit`).
fn onboard_body(aws_account_id: &str, more: Value) -> Value {
    let mut body =
        json!({"AwsAccountId": aws_account_id, "AccountType": "default", "Tags": {"Team": "data"}});
    for (field, value) in more.as_object().unwrap() {
        body[field] = value.clone();
    }
    body
}

/// Onboards with more fields in the body.
async fn onboard_with(
    stack: &Stack,
    aws_account_id: &str,
    more: Value,
) -> integration_tests::ApiResponse {
    let body = onboard_body(aws_account_id, more);
    stack
        .api(
            "POST",
            "/20190206/accounts/onboard",
            Some(&body.to_string()),
            Some("local-operations"),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_onboarded_account_ends_active_and_hardened_and_a_second_onboarding_is_refused() {
    let stack = Stack::workflows().bootstrapped().await;
    let alpha = member(stack, "workload-alpha");
    let r = stack
        .api(
            "POST",
            &format!("/20190206/accounts/discover/{alpha}"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        record_of(stack, alpha).await.unwrap()["Status"],
        "DISCOVERED"
    );

    let answers = race(2, |_| async move {
        let stack = Stack::workflows();
        // Renamed as it is onboarded: the unique-name item moves inside the transaction (a
        // Delete, which the function's role must allow: the emulator enforces it).
        onboard_with(
            stack,
            member(stack, "workload-alpha"),
            json!({"Name": "alpha-data"}),
        )
        .await
    })
    .await;
    let started = one_accepted(answers, "OperationInProgress");
    assert_eq!(
        started.body["Detail"]["Operation"],
        "accounts:OnboardAccount"
    );
    let task = stack
        .finished_task(started.body["TaskId"].as_str().unwrap())
        .await;
    assert_eq!(task["Status"], "SUCCEEDED", "{task:?}");

    let a = record_of(stack, alpha).await.unwrap();
    assert_eq!(
        (
            a["Status"].as_str(),
            a["AssuranceState"].as_str(),
            a["Origin"].as_str()
        ),
        (Some("ACTIVE"), Some("ACTIVE"), Some("EXTERNAL"))
    );
    assert_eq!(a["AccountTypeName"], "default");
    assert_eq!(a["Tags"], json!({"Team": "data"}));
    assert_eq!(a["Name"], "alpha-data");
    for (name, found) in [("alpha-data", 1), ("workload-alpha", 0)] {
        let r = stack
            .api(
                "GET",
                &format!("/20190206/accounts?account_names={name}"),
                None,
                None,
            )
            .await;
        assert_eq!(
            r.body["Accounts"].as_array().unwrap().len(),
            found,
            "{name}: {:?}",
            r.body
        );
    }
    assert!(a["OrgsOuId"].as_str().unwrap().starts_with("ou-"));
    assert!(a.get("UserTaskId").is_none(), "the lock is released");
    assert_hardened(stack, alpha, None).await;
    let trail = stack
        .store()
        .await
        .audit_trail(Uuid::parse_str(a["Id"].as_str().unwrap()).unwrap())
        .await
        .unwrap();
    let statuses: Vec<_> = trail.iter().filter_map(|e| e.to).collect();
    assert_eq!(
        statuses,
        [
            AccountStatus::Discovered,
            AccountStatus::Onboarding,
            AccountStatus::Active
        ]
    );

    // Managed now: onboarding it again is refused, and changes nothing.
    let r = onboard(stack, alpha).await;
    r.assert_refused(409, "NotOnboardable", "a second onboarding");
    assert_eq!(record_of(stack, alpha).await.unwrap(), a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_an_account_without_the_role_ends_in_error_saying_which_role() {
    let stack = Stack::workflows().bootstrapped().await;
    let gamma = member(stack, "legacy-gamma");
    stack
        .api(
            "POST",
            &format!("/20190206/accounts/discover/{gamma}"),
            None,
            None,
        )
        .await;
    assert_eq!(record_of(stack, gamma).await.unwrap()["Status"], "ERROR");

    let task = onboarding_ends(stack, gamma, json!({}), "FAILED").await;
    let reason = assert_error_saying(
        stack,
        gamma,
        &format!("could not assume role stax-provisioning in AWS account {gamma}"),
    )
    .await;
    assert_eq!(last_log(&task), reason);
}

#[tokio::test]
async fn refused_discoveries_and_onboardings_say_why_and_write_nothing() {
    let stack = Stack::shared().bootstrapped().await;
    let store = stack.store().await;
    let before = store.snapshot().await.unwrap();
    let management = stack.ready.organization.management_account_id.clone();
    let onboard_cases: &[(Value, u16, &str)] = &[
        (
            json!(null),
            400,
            "the body is not an accounts.OnboardAccount",
        ),
        (
            json!({"AccountType": "default"}),
            400,
            "missing field `AwsAccountId`",
        ),
        (
            json!({"AwsAccountId": "12345", "AccountType": "default"}),
            400,
            "AwsAccountId: \"12345\" is not a 12-digit AWS account id",
        ),
        (
            json!({"AwsAccountId": "111122223333", "AccountType": "default", "Colour": "red"}),
            400,
            "unknown field `Colour`",
        ),
        (
            json!({"AwsAccountId": "111122223333", "AccountType": "production"}),
            400,
            "AccountType: no Account Type is named \"production\"",
        ),
        (
            json!({"AwsAccountId": management, "AccountType": "foundation-security"}),
            400,
            "AccountType: ",
        ),
        (
            json!({"AwsAccountId": "111122223333", "AccountType": "default"}),
            404,
            "AWS account 111122223333 has not been discovered",
        ),
        (
            json!({"AwsAccountId": "111122223333", "AccountType": "default", "LeaveOrganisationalUnit": "r-ab12"}),
            400,
            "LeaveOrganisationalUnit: \"r-ab12\" is not an AWS Organizations OU id",
        ),
        (
            json!({"AwsAccountId": management, "AccountType": "default"}),
            409,
            "is the organization's MANAGEMENT account; the foundation bootstrap records it",
        ),
    ];
    for (body, status, cause) in onboard_cases {
        let r = stack
            .api(
                "POST",
                "/20190206/accounts/onboard",
                Some(&body.to_string()),
                None,
            )
            .await;
        assert_eq!(r.status, *status, "{body} -> {:?}", r.body);
        assert!(
            r.body["Cause"].as_str().unwrap().contains(cause),
            "{body} -> {:?}",
            r.body
        );
    }
    let body = json!({"AwsAccountId": management, "AccountType": "default"}).to_string();
    let r = stack
        .api(
            "POST",
            "/20190206/accounts/onboard",
            Some(&body),
            Some("local-readonly"),
        )
        .await;
    assert_eq!(r.status, 403);

    for (path, body, status) in [
        ("/20190206/accounts/discover/12345", None, 400),
        ("/20190206/accounts/discover/999988887777", None, 404),
        (
            "/20190206/accounts/discover",
            Some(r#"{"Scope": "all"}"#),
            400,
        ),
        ("/20190206/accounts/discover", Some("[]"), 400),
        ("/20190206/accounts/discover?dry_run=true", None, 400),
    ] {
        let r = stack.api("POST", path, body, None).await;
        assert_eq!(r.status, status, "{path} -> {:?}", r.body);
        assert!(r.body["Cause"].is_string(), "{:?}", r.body);
    }
    let r = stack
        .api(
            "POST",
            "/20190206/accounts/discover",
            None,
            Some("local-readonly"),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(store.snapshot().await.unwrap(), before);
}

/// Sets the trust policy of `aws_account_id`'s provisioning role to admit `principals`.
async fn trust_provisioning_role(stack: &Stack, aws_account_id: &str, principals: &[String]) {
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": principals}, "Action": "sts:AssumeRole"}]});
    aws_sdk_iam::Client::new(&stack.in_account(aws_account_id).await)
        .update_assume_role_policy()
        .role_name("stax-provisioning")
        .policy_document(trust.to_string())
        .send()
        .await
        .unwrap();
}

async fn discover_one(stack: &Stack, aws_account_id: &str) {
    let path = format!("/20190206/accounts/discover/{aws_account_id}");
    let r = stack.api("POST", &path, None, None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provisioning_role_that_also_trusts_its_own_account_is_refused_until_fixed() {
    // The foundation SCP exempts the provisioning role by name: a role the account's own admins
    // could assume would be an exempt principal they control.
    let stack = Stack::workflows().bootstrapped().await;
    let name = crate::create::unique("selfish");
    let id = create_outside(stack, &name, "stax-provisioning").await;
    eventually(stack, &id, |a| a["Status"] == "DISCOVERED").await;
    let management = format!("arn:aws:iam::{}:root", stack.ready.account_id);
    let own = format!("arn:aws:iam::{id}:root");
    trust_provisioning_role(stack, &id, &[management.clone(), own.clone()]).await;

    // Onboarding checks the role again before anything is placed or assured.
    onboarding_ends(stack, &id, json!({}), "FAILED").await;
    assert_error_saying(stack, &id, &format!("also trusts AWS principal {own}")).await;

    // Discovery keeps refusing it while the role trusts more than the management account.
    discover_one(stack, &id).await;
    assert_eq!(record_of(stack, &id).await.unwrap()["Status"], "ERROR");

    // Fixed: discovered again, then onboarded.
    trust_provisioning_role(stack, &id, &[management]).await;
    discover_one(stack, &id).await;
    assert_eq!(record_of(stack, &id).await.unwrap()["Status"], "DISCOVERED");
    onboarding_ends(stack, &id, json!({}), "SUCCEEDED").await;
}

/// The OU `aws_account_id` is in.
async fn parent_of(stack: &Stack, aws_account_id: &str) -> String {
    let org = aws_sdk_organizations::Client::new(&stack.sdk().await);
    let parents = org
        .list_parents()
        .child_id(aws_account_id)
        .send()
        .await
        .unwrap();
    parents.parents()[0].id().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_in_another_team_s_ou_is_moved_only_when_the_request_names_that_ou() {
    let stack = Stack::workflows().bootstrapped().await;
    let id = create_outside(stack, &crate::create::unique("kept"), "stax-provisioning").await;
    eventually(stack, &id, |a| a["Status"] == "DISCOVERED").await;
    let org = aws_sdk_organizations::Client::new(&stack.sdk().await);
    let root = parent_of(stack, &id).await;
    let legacy = org
        .create_organizational_unit()
        .parent_id(&root)
        .name(crate::create::unique("legacy"))
        .send()
        .await
        .unwrap()
        .organizational_unit
        .and_then(|ou| ou.id)
        .unwrap();
    org.move_account()
        .account_id(&id)
        .source_parent_id(&root)
        .destination_parent_id(&legacy)
        .send()
        .await
        .unwrap();

    onboarding_ends(stack, &id, json!({}), "FAILED").await;
    assert_error_saying(
        stack,
        &id,
        &format!("\"LeaveOrganisationalUnit\": \"{legacy}\""),
    )
    .await;
    assert_eq!(parent_of(stack, &id).await, legacy, "not moved");

    onboarding_ends(
        stack,
        &id,
        json!({"LeaveOrganisationalUnit": legacy}),
        "SUCCEEDED",
    )
    .await;
    let a = record_of(stack, &id).await.unwrap();
    assert_eq!(a["Status"], "ACTIVE");
    assert_eq!(parent_of(stack, &id).await, a["OrgsOuId"].as_str().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_whose_execution_was_stopped_is_taken_over_by_the_next_onboarding() {
    let stack = Stack::workflows().bootstrapped().await;
    let id = create_outside(
        stack,
        &crate::create::unique("stopped"),
        "stax-provisioning",
    )
    .await;
    eventually(stack, &id, |a| a["Status"] == "DISCOVERED").await;
    // Placement keeps being throttled: the onboarding stays under way until it is stopped.
    const LIST_PARENTS: &str = "AWSOrganizationsV20161128.ListParents";
    stack
        .inject_fault(LIST_PARENTS, "TooManyRequestsException", 10_000)
        .await;
    let r = onboard(stack, &id).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let first = Uuid::parse_str(r.body["TaskId"].as_str().unwrap()).unwrap();
    let store = stack.store().await;
    let execution = store
        .get_task(first)
        .await
        .unwrap()
        .unwrap()
        .value
        .execution
        .expect("the task names its execution");

    // While its execution runs, the lock is kept.
    onboard(stack, &id)
        .await
        .assert_refused(409, "OperationInProgress", "a running onboarding");

    // Stopped by hand: the execution ends without recording anything. (The emulator's
    // interpreter, like Step Functions, ends it once the step in flight returns: the throttling
    // is lifted so that it returns soon.)
    let sfn = aws_sdk_sfn::Client::new(&stack.sdk().await);
    sfn.stop_execution()
        .execution_arn(&execution)
        .send()
        .await
        .unwrap();
    stack
        .inject_fault(LIST_PARENTS, "TooManyRequestsException", 0)
        .await;
    let mut status = aws_sdk_sfn::types::ExecutionStatus::Running;
    for _ in 0..600 {
        status = sfn
            .describe_execution()
            .execution_arn(&execution)
            .send()
            .await
            .unwrap()
            .status;
        if status != aws_sdk_sfn::types::ExecutionStatus::Running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, aws_sdk_sfn::types::ExecutionStatus::Aborted);
    let a = record_of(stack, &id).await.unwrap();
    assert_eq!(
        a["Status"], "ONBOARDING",
        "left as the stopped execution had it"
    );
    assert_eq!(a["UserTaskId"], first.to_string());

    // The next onboarding takes the abandoned lock over and runs.
    onboarding_ends(stack, &id, json!({}), "SUCCEEDED").await;
    assert_eq!(record_of(stack, &id).await.unwrap()["Status"], "ACTIVE");
    let stopped = store.get_task(first).await.unwrap().unwrap().value;
    assert_eq!(stopped.status, domain::TaskStatus::Failed);
    let reason = stopped.logs.last().unwrap();
    assert!(
        reason.contains(&format!("{execution} ended ABORTED")),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_onboarding_whose_failure_cannot_be_recorded_still_releases_the_lock() {
    // A stack of its own: the fault counts this test's DynamoDB transactions alone.
    let stack = &Stack::start();
    stack.bootstrapped().await;
    let id = create_outside(
        stack,
        &crate::create::unique("unrecorded"),
        "stax-provisioning",
    )
    .await;
    eventually(stack, &id, |a| a["Status"] == "DISCOVERED").await;
    // Placement is refused for good; then every attempt of RecordFailure to write fails: the
    // API's start and MarkRunning are the two transactions let through.
    stack
        .inject_fault(
            "AWSOrganizationsV20161128.ListParents",
            "AccessDeniedException",
            1,
        )
        .await;
    stack
        .inject_fault_after(
            "DynamoDB_20120810.TransactWriteItems",
            "ValidationException",
            2,
            6,
        )
        .await;
    let task = onboarding_ends(stack, &id, json!({}), "FAILED").await;
    assert_eq!(
        stack
            .faults_served("DynamoDB_20120810.TransactWriteItems")
            .await,
        6,
        "RecordFailure gave up on each attempt"
    );
    let log = last_log(&task);
    assert!(log.contains("the lock is released"), "{log}");
    let a = record_of(stack, &id).await.unwrap();
    assert!(a.get("UserTaskId").is_none(), "the lock is released: {a}");
    assert_eq!(
        a["Status"], "ONBOARDING",
        "the status is left as the record has it"
    );
    // Nothing stays stuck: the next onboarding records the abandoned one as ERROR and runs.
    onboarding_ends(stack, &id, json!({}), "SUCCEEDED").await;
    assert_eq!(record_of(stack, &id).await.unwrap()["Status"], "ACTIVE");
}
