//! Policies end to end: SCPs the service owns, attached to Account Types' OUs and to accounts,
//! read back from the emulated Organizations; refusals that leave the table and the
//! organization as they were; the drift run repairing what was changed outside the service.

use std::collections::BTreeSet;

use crate::create::unique;
use crate::types::{active_account_of, call, create_type, ou_named, parent_of, read_type};
use integration_tests::Stack;
use serde_json::{Value, json};
#[allow(unused_imports)]
use store::prelude::*;
use uuid::Uuid;

const DENY_LEAVE: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"organizations:LeaveOrganization","Resource":"*"}]}"#;

fn deny(action: &str) -> String {
    DENY_LEAVE.replace("organizations:LeaveOrganization", action)
}

async fn orgs(stack: &Stack) -> aws_sdk_organizations::Client {
    aws_sdk_organizations::Client::new(&stack.sdk().await)
}

/// A policy made through the API: its id.
async fn create_policy(stack: &Stack, name: &str, content: &str) -> String {
    let r = call(
        stack,
        "POST",
        "/20190206/policies",
        Some(json!({"Name": name, "Description": "made by a test", "Policy": content})),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["Detail"]["OperationStatus"], "SUCCEEDED");
    r.body["Detail"]["Policy"]["PolicyId"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn read_policy(stack: &Stack, id: &str) -> Value {
    let r = stack
        .api(
            "GET",
            &format!("/20190206/policies/{id}"),
            None,
            Some("local-readonly"),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["Policies"][0].clone()
}

async fn attach(stack: &Stack, policy: &str, body: Value) -> integration_tests::ApiResponse {
    call(
        stack,
        "POST",
        &format!("/20190206/policies/{policy}/attachments"),
        Some(body),
    )
    .await
}

/// The targets the SCP is attached to in Organizations.
async fn targets_of(stack: &Stack, aws_id: &str) -> BTreeSet<String> {
    orgs(stack)
        .await
        .list_targets_for_policy()
        .policy_id(aws_id)
        .send()
        .await
        .unwrap()
        .targets()
        .iter()
        .map(|t| t.target_id().unwrap().to_owned())
        .collect()
}

/// The names of the policies in force on an account, as the API reads them from Organizations.
async fn in_force(stack: &Stack, account: Uuid) -> Vec<(String, String, Value)> {
    let r = stack
        .api(
            "GET",
            &format!("/20190206/accounts/{account}/policies"),
            None,
            Some("local-readonly"),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["PolicyAttachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["PolicyName"].as_str().unwrap().to_owned(),
                a["PolicyAttachmentType"].as_str().unwrap().to_owned(),
                a["PolicyId"].clone(),
            )
        })
        .collect()
}

/// Every SCP of the organization: (id, name, content, targets), for refusals that must leave
/// it as it was.
async fn organization_scps(stack: &Stack) -> Vec<(String, String, String, BTreeSet<String>)> {
    let c = orgs(stack).await;
    let list = c
        .list_policies()
        .filter(aws_sdk_organizations::types::PolicyType::ServiceControlPolicy)
        .send()
        .await
        .unwrap();
    let mut scps = Vec::new();
    for p in list.policies() {
        let id = p.id().unwrap().to_owned();
        let content = c
            .describe_policy()
            .policy_id(&id)
            .send()
            .await
            .unwrap()
            .policy()
            .unwrap()
            .content()
            .unwrap_or_default()
            .to_owned();
        let targets = targets_of(stack, &id).await;
        scps.push((id, p.name().unwrap().to_owned(), content, targets));
    }
    scps.sort();
    scps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_type_s_policy_is_in_force_on_its_new_accounts_and_a_move_changes_them() {
    let stack = Stack::workflows().bootstrapped().await;
    let guarded = unique("Guarded");
    let open = unique("Open");
    let guarded_id = create_type(stack, &guarded).await;
    create_type(stack, &open).await;
    let name = unique("no-leaving");
    let policy = create_policy(stack, &name, DENY_LEAVE).await;
    let r = attach(stack, &policy, json!({"AccountTypeId": guarded_id})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.body["Detail"]["PolicyAttachment"]["PolicyAttachmentId"].is_string());

    // The SCP is on the type's OU in Organizations, tagged as the service's.
    let view = read_policy(stack, &policy).await;
    assert_eq!(
        (view["PolicyOwner"].as_str(), view["Status"].as_str()),
        (Some("ORGANISATION"), Some("ACTIVE"))
    );
    assert_eq!(
        view["Content"],
        serde_json::from_str::<Value>(DENY_LEAVE).unwrap()
    );
    let aws_id = view["AwsId"].as_str().unwrap().to_owned();
    let ou = ou_named(stack, &guarded).await.unwrap();
    assert_eq!(
        targets_of(stack, &aws_id).await,
        BTreeSet::from([ou.clone()])
    );
    assert_eq!(
        read_type(stack, &guarded_id).await["Policies"],
        json!([policy])
    );

    // A new account of the type has it in force, through its OU.
    let account = active_account_of(stack, &guarded).await;
    assert_eq!(
        parent_of(stack, account.aws_account_id.as_deref().unwrap()).await,
        ou
    );
    let policies = in_force(stack, account.id).await;
    assert!(
        policies.contains(&(name.clone(), "ORGANISATIONAL_UNIT".into(), json!(policy))),
        "{policies:?}"
    );

    // Moved to another type, it no longer has.
    let members = json!({"Members": [{"AccountId": account.id, "AccountTypeName": open}]});
    let r = call(
        stack,
        "PUT",
        "/20190206/account-types/members",
        Some(members),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let task = stack
        .finished_task(r.body["Detail"]["TaskId"].as_str().unwrap())
        .await;
    let child = task["Logs"][0]
        .as_str()
        .unwrap()
        .rsplit("under task ")
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(stack.finished_task(&child).await["Status"], "SUCCEEDED");
    let policies = in_force(stack, account.id).await;
    assert!(!policies.iter().any(|(n, ..)| *n == name), "{policies:?}");
    assert!(
        policies
            .iter()
            .any(|(n, kind, _)| n == "foundation" && kind == "STAX_MANDATORY")
    );

    // Attached to the account itself, it is in force again; its attachments list both.
    let r = attach(stack, &policy, json!({"AccountId": account.id})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let attachment = r.body["Detail"]["PolicyAttachment"]["PolicyAttachmentId"].clone();
    let policies = in_force(stack, account.id).await;
    assert!(
        policies.contains(&(name.clone(), "ACCOUNT".into(), json!(policy))),
        "{policies:?}"
    );
    let listed = stack
        .api(
            "GET",
            &format!("/20190206/policies/{policy}/attachments"),
            None,
            Some("local-readonly"),
        )
        .await;
    let kinds: BTreeSet<_> = listed.body["PolicyAttachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["PolicyAttachmentType"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["ACCOUNT".into(), "ORGANISATIONAL_UNIT".into()])
    );

    // Detached and then deleted; the type lists it no more.
    let r = call(
        stack,
        "DELETE",
        &format!(
            "/20190206/policies/attachments/{}",
            attachment.as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let remove = json!({"RemovePolicies": [{"AccountTypeName": guarded, "PolicyId": policy}]});
    let r = call(
        stack,
        "PUT",
        "/20190206/account-types/policies",
        Some(remove),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.body["Detail"]["OperationStatus"], "SUCCEEDED",
        "{:?}",
        r.body
    );
    assert!(targets_of(stack, &aws_id).await.is_empty());
    assert_eq!(read_type(stack, &guarded_id).await["Policies"], json!([]));
    let r = call(
        stack,
        "DELETE",
        &format!("/20190206/policies/{policy}"),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(read_policy(stack, &policy).await["Status"], "DELETED");
    assert!(
        !organization_scps(stack)
            .await
            .iter()
            .any(|(id, ..)| *id == aws_id),
        "the SCP is gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_policies_say_why_and_change_nothing() {
    let own = Stack::start();
    let stack = own.bootstrapped().await;
    let store = stack.store().await;
    let full = unique("Full");
    let full_id = create_type(stack, &full).await;
    // FullAWSAccess and four of ours fill the type's OU.
    for i in 0..4 {
        let p = create_policy(
            stack,
            &format!("filler-{i}"),
            &deny(&format!("s3:Delete{i}*")),
        )
        .await;
        let r = attach(stack, &p, json!({"OrganisationalUnitId": full_id})).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    let sixth = create_policy(stack, "sixth", &deny("ec2:*")).await;
    let listed = stack
        .api("GET", "/20190206/policies", None, Some("local-readonly"))
        .await;
    let foundation = listed.body["Policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["PolicyOwner"] == "STAX")
        .expect("the foundation policy is listed")
        .clone();
    assert_eq!(
        (foundation["Name"].as_str(), foundation["Status"].as_str()),
        (Some("foundation"), Some("ACTIVE"))
    );
    let foundation_id = foundation["Id"].as_str().unwrap().to_owned();
    let management = store
        .get_account_by_aws_id(&stack.ready.organization.management_account_id)
        .await
        .unwrap()
        .unwrap()
        .value;

    let before = (
        store.snapshot().await.unwrap(),
        organization_scps(stack).await,
    );
    let principal = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}]}"#;
    let too_long = deny(&vec!["s3:GetObject"; 500].join("\",\""));
    type Case<'a> = (&'a str, String, Option<Value>, &'a str, u16, &'a str);
    let create =
        |body: Value, who: &'static str, status: u16, error: &'static str| -> Case<'static> {
            (
                "POST",
                "/20190206/policies".to_owned(),
                Some(body),
                who,
                status,
                error,
            )
        };
    let cases: Vec<Case> = vec![
        create(
            json!({"Name": "bad-json", "Description": "bad", "Policy": "{\"Version\": "}),
            "local-admin",
            400,
            "ValidationError",
        ),
        create(
            json!({"Name": "principal", "Description": "bad", "Policy": principal}),
            "local-admin",
            400,
            "ValidationError",
        ),
        create(
            json!({"Name": "too-long", "Description": "bad", "Policy": too_long}),
            "local-admin",
            400,
            "ValidationError",
        ),
        create(
            json!({"Name": "sixth", "Description": "taken", "Policy": DENY_LEAVE}),
            "local-admin",
            409,
            "PolicyNameTaken",
        ),
        create(
            json!({"Name": "fine", "Description": "fine", "Policy": DENY_LEAVE}),
            "local-operations",
            403,
            "Forbidden",
        ),
        (
            "POST",
            format!("/20190206/policies/{sixth}/attachments"),
            Some(json!({"AccountTypeId": full_id})),
            "local-admin",
            409,
            "PolicyLimitReached",
        ),
        (
            "POST",
            format!("/20190206/policies/{sixth}/attachments"),
            Some(json!({"AccountId": management.id})),
            "local-admin",
            409,
            "NotAttachable",
        ),
        (
            "POST",
            format!("/20190206/policies/{sixth}/attachments"),
            Some(json!({"AccountId": Uuid::new_v4()})),
            "local-admin",
            404,
            "NotFound",
        ),
        (
            "PUT",
            format!("/20190206/policies/{sixth}"),
            Some(json!({"Policy": principal})),
            "local-admin",
            400,
            "ValidationError",
        ),
        (
            "PUT",
            format!("/20190206/policies/{foundation_id}"),
            Some(json!({"Description": "mine"})),
            "local-admin",
            409,
            "PolicyNotChangeable",
        ),
        (
            "DELETE",
            format!("/20190206/policies/{foundation_id}"),
            None,
            "local-admin",
            409,
            "PolicyNotChangeable",
        ),
        (
            "DELETE",
            format!("/20190206/policies/{}", Uuid::new_v4()),
            None,
            "local-admin",
            404,
            "NotFound",
        ),
        (
            "PUT",
            "/20190206/account-types/policies".into(),
            Some(json!({"AddPolicies": [{"AccountTypeName": "Nowhere", "PolicyId": sixth}]})),
            "local-admin",
            404,
            "NotFound",
        ),
    ];
    for (method, path, body, who, status, error) in cases {
        let body = body.map(|b| b.to_string());
        let r = stack.api(method, &path, body.as_deref(), Some(who)).await;
        r.assert_refused(status, error, &format!("{method} {path} {body:?}"));
    }
    let cause = attach(stack, &sixth, json!({"AccountTypeId": full_id}))
        .await
        .body["Cause"]
        .clone();
    assert!(cause.as_str().unwrap().contains("5 SCPs"), "{cause}");
    assert_eq!(
        (
            store.snapshot().await.unwrap(),
            organization_scps(stack).await
        ),
        before,
        "refusals leave the table and the organization as they were"
    );
    // Throttled twice, CreatePolicy is retried by the SDK to success.
    const CREATE: &str = "AWSOrganizationsV20161128.CreatePolicy";
    stack
        .inject_fault(CREATE, "TooManyRequestsException", 2)
        .await;
    let retried = create_policy(stack, "retried", DENY_LEAVE).await;
    assert_eq!(read_policy(stack, &retried).await["Status"], "ACTIVE");
    // Throttled for good, the request fails (the SDK's backoff outlasts the function's 30 s, so
    // the function may be stopped mid-request, its record left CREATE_IN_PROGRESS); once AWS
    // answers again, the drift run finishes what was recorded, and nothing is made twice.
    stack
        .inject_fault(CREATE, "TooManyRequestsException", 10_000)
        .await;
    let body = json!({"Name": "throttled", "Description": "throttled past the retries", "Policy": DENY_LEAVE});
    let r = call(stack, "POST", "/20190206/policies", Some(body)).await;
    stack
        .inject_fault(CREATE, "TooManyRequestsException", 0)
        .await;
    assert_eq!(r.status, 500, "{:?}", r.body);
    let r = call(stack, "POST", "/20190206/policies/drift", None).await;
    assert_eq!(
        r.body["Detail"]["OperationStatus"], "SUCCEEDED",
        "{:?}",
        r.body
    );
    let recorded: Vec<_> = store
        .list_policies()
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.value.name == "throttled")
        .collect();
    let made: Vec<_> = organization_scps(stack)
        .await
        .into_iter()
        .filter(|(_, name, ..)| name == "throttled")
        .collect();
    match recorded.as_slice() {
        [] => assert!(made.is_empty(), "no record, no SCP: {made:?}"),
        [one] => {
            assert_eq!(one.value.status.as_str(), "ACTIVE");
            assert_eq!(made.len(), 1, "made once: {made:?}");
            assert_eq!(one.value.aws_id.as_deref(), Some(made[0].0.as_str()));
        }
        more => panic!("recorded twice: {more:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_of_one_policy_at_once_leave_its_scp_as_its_record() {
    let stack = Stack::workflows().bootstrapped().await;
    let policy = create_policy(stack, &unique("contested"), DENY_LEAVE).await;
    let answers = crate::race(2, |i| {
        let policy = policy.clone();
        async move {
            let stack = Stack::workflows();
            let body = json!({"Policy": deny(&format!("s3:Put{i}*"))}).to_string();
            stack
                .api(
                    "PUT",
                    &format!("/20190206/policies/{policy}"),
                    Some(&body),
                    Some("local-admin"),
                )
                .await
        }
    })
    .await;
    for r in &answers {
        assert!(
            r.status == 200 || (r.status == 409 && r.body["Error"] == "StaleRecord"),
            "{r:?}"
        );
    }
    assert!(answers.iter().any(|r| r.status == 200));
    let view = read_policy(stack, &policy).await;
    let scp = orgs(stack)
        .await
        .describe_policy()
        .policy_id(view["AwsId"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let content: Value = serde_json::from_str(scp.policy().unwrap().content().unwrap()).unwrap();
    assert_eq!(
        content, view["Content"],
        "the SCP says what the record says"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_detached_outside_the_service_is_reported_and_reattached_by_the_drift_run() {
    let stack = Stack::workflows().bootstrapped().await;
    let t = unique("Drifting");
    let type_id = create_type(stack, &t).await;
    let name = unique("kept-on");
    let policy = create_policy(stack, &name, DENY_LEAVE).await;
    let r = attach(stack, &policy, json!({"AccountTypeId": type_id})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let aws_id = read_policy(stack, &policy).await["AwsId"]
        .as_str()
        .unwrap()
        .to_owned();
    let ou = ou_named(stack, &t).await.unwrap();

    // Someone detaches it in Organizations, and edits its content.
    let c = orgs(stack).await;
    c.detach_policy()
        .policy_id(&aws_id)
        .target_id(&ou)
        .send()
        .await
        .unwrap();
    c.update_policy()
        .policy_id(&aws_id)
        .content(deny("s3:GetObject"))
        .send()
        .await
        .unwrap();
    let r = call(stack, "POST", "/20190206/policies/drift", None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let task = stack
        .finished_task(r.body["Detail"]["TaskId"].as_str().unwrap())
        .await;
    let logs = task["Logs"].to_string();
    assert!(
        logs.contains(&format!("policy {name}: SCP {aws_id} was detached from {ou} outside the service, attached it again")),
        "{logs}"
    );
    assert!(
        logs.contains(&format!(
            "policy {name}: SCP {aws_id} had its content changed"
        )),
        "{logs}"
    );
    assert_eq!(
        targets_of(stack, &aws_id).await,
        BTreeSet::from([ou.clone()])
    );
    let restored = c.describe_policy().policy_id(&aws_id).send().await.unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(restored.policy().unwrap().content().unwrap()).unwrap(),
        serde_json::from_str::<Value>(DENY_LEAVE).unwrap()
    );
    let task_id = r.body["Detail"]["TaskId"].clone();
    let events = stack
        .bus_events("Policy Drift Detected", 1, |d| d["TaskId"] == task_id)
        .await;
    assert!(
        events[0]["Repaired"].to_string().contains(&aws_id),
        "{events:?}"
    );

    // Detached again, the schedule's run repairs it too.
    c.detach_policy()
        .policy_id(&aws_id)
        .target_id(&ou)
        .send()
        .await
        .unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/_local/scheduler/run", stack.ready.aws_endpoint))
        .json(&json!({"Name": "ManagePoliciesFunctionSchedule"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "the drift schedule exists");
    let events = stack
        .bus_events("Policy Drift Detected", 1, |d| {
            d["TaskId"] != task_id && d["Repaired"].to_string().contains(&aws_id)
        })
        .await;
    let scheduled = stack
        .finished_task(events[0]["TaskId"].as_str().unwrap())
        .await;
    assert_eq!(scheduled["Logs"][0], "Requested by schedule");
    assert_eq!(targets_of(stack, &aws_id).await, BTreeSet::from([ou]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stax_sdk_manages_policies_unchanged() {
    let stack = Stack::workflows().bootstrapped().await;
    let t = unique("SdkGuarded");
    let type_id = create_type(stack, &t).await;
    let name = unique("sdk-policy");
    let answers = stack.stax_sdk(&[(
        "organisations.CreatePolicy",
        json!({"Name": name, "Description": "made by the Stax SDK", "Policy": DENY_LEAVE}),
    )]);
    assert_eq!(answers[0].0, 200, "{:?}", answers[0].1);
    let policy = answers[0].1["Detail"]["Policy"]["PolicyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let answers = stack.stax_sdk(&[
        ("organisations.ReadPolicies", json!({})),
        ("organisations.ReadPolicies", json!({"policy_id": policy})),
        (
            "organisations.UpdatePolicy",
            json!({"policy_id": policy, "Description": "changed by the Stax SDK"}),
        ),
        (
            "policies.AttachPolicy",
            json!({"policy_id": policy, "OrganisationalUnitId": type_id}),
        ),
        (
            "policies.ReadPolicyAttachments",
            json!({"policy_id": policy}),
        ),
    ]);
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body:?}");
    }
    assert!(
        answers[0].1["Policies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["Id"] == policy.as_str())
    );
    assert_eq!(answers[1].1["Policies"][0]["Name"], name);
    assert_eq!(answers[2].1["Detail"]["OperationStatus"], "SUCCEEDED");
    let attachment = answers[3].1["Detail"]["PolicyAttachment"]["PolicyAttachmentId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        answers[4].1["PolicyAttachments"][0]["OrganisationalUnitId"],
        type_id.as_str()
    );
    assert_eq!(
        read_policy(stack, &policy).await["Description"],
        "changed by the Stax SDK"
    );
    let answers = stack.stax_sdk(&[
        (
            "policies.DetachPolicy",
            json!({"policy_attachment_id": attachment}),
        ),
        ("organisations.DeletePolicy", json!({"policy_id": policy})),
    ]);
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body:?}");
    }
    assert_eq!(read_policy(stack, &policy).await["Status"], "DELETED");
}
