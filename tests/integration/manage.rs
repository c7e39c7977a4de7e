//! Day-2 management end to end: updates applied in the emulated AWS and recorded, one operation
//! at a time, and every refusal leaving the table as it was.

use crate::create::unique;
use integration_tests::Stack;
use serde_json::{Value, json};
#[allow(unused_imports)]
use store::prelude::*;
use uuid::Uuid;

/// A new ACTIVE account of type `default`: (its id, its AWS account id).
async fn active_account(stack: &Stack) -> (String, String) {
    let body = json!({"Name": unique("day2"), "AccountType": "default", "Tags": {"Team": "bread"}});
    let task = stack
        .operation_ends(
            "/20190206/accounts",
            &body,
            Some("local-admin"),
            "SUCCEEDED",
        )
        .await;
    let id = task["Accounts"][0].as_str().unwrap().to_owned();
    let account = read(stack, &id).await;
    (id, account["AwsAccountId"].as_str().unwrap().to_owned())
}

async fn read(stack: &Stack, id: &str) -> Value {
    let r = stack
        .api("GET", &format!("/20190206/accounts/{id}"), None, None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["Accounts"][0].clone()
}

/// PUTs an update as `local-admin`, expects it accepted and waits for its task to end `status`.
async fn update_ends(stack: &Stack, id: &str, body: &Value, status: &str) -> Value {
    let r = stack
        .api(
            "PUT",
            &format!("/20190206/accounts/{id}"),
            Some(&body.to_string()),
            Some("local-admin"),
        )
        .await;
    assert_eq!(r.status, 200, "{body}: {:?}", r.body);
    assert_eq!(r.body["Detail"]["Operation"], "accounts:UpdateAccount");
    let task = stack
        .finished_task(r.body["TaskId"].as_str().expect("a TaskId"))
        .await;
    assert_eq!(task["Status"], status, "{body}: {task:?}");
    task
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_update_field_reaches_aws_and_the_record() {
    let stack = Stack::workflows().bootstrapped().await;
    let (id, aws_account_id) = active_account(stack).await;
    let production = stack
        .store()
        .await
        .ensure_account_type(&unique("production"))
        .await
        .unwrap();
    let (name, alias) = (unique("renamed"), unique("renamed-alias"));
    let body = json!({
        "Name": name,
        "AwsAccountAlias": alias,
        "AwsAccountName": "Renamed in AWS",
        "AccountType": production.id,
        "OrganisationalUnitId": production.id,
        "Tags": {"Team": "cake", "CostCode": "42"},
    });
    let task = update_ends(stack, &id, &body, "SUCCEEDED").await;
    let logs: Vec<&str> = task["Logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(logs.first(), Some(&"Updating the account"));
    assert_eq!(logs.last(), Some(&"Account updated"));
    for expected in [
        format!("Moved AWS account {aws_account_id} to OU"),
        format!("Set the IAM account alias to {alias}"),
        format!("Renamed AWS account {aws_account_id}"),
        format!("Tagged AWS account {aws_account_id}: put CostCode, Team"),
    ] {
        assert!(
            logs.iter().any(|l| l.starts_with(&expected)),
            "{expected}: {logs:?}"
        );
    }

    // The record …
    let a = read(stack, &id).await;
    assert_eq!(a["Name"], name.as_str());
    assert_eq!(a["AwsAccountAlias"], alias.as_str());
    assert_eq!(a["AwsAccountName"], "Renamed in AWS");
    assert_eq!(a["AccountType"], production.id.to_string());
    assert_eq!(a["Tags"], json!({"Team": "cake", "CostCode": "42"}));
    assert_eq!(a["Status"], "ACTIVE");
    assert!(a.get("UserTaskId").is_none(), "the lock is released");

    // … and the emulated AWS.
    let orgs = aws_sdk_organizations::Client::new(&stack.sdk().await);
    let parent = orgs
        .list_parents()
        .child_id(&aws_account_id)
        .send()
        .await
        .unwrap();
    let ou = parent.parents()[0].id().unwrap().to_owned();
    assert_eq!(a["OrgsOuId"], ou.as_str());
    let ou_name = orgs
        .describe_organizational_unit()
        .organizational_unit_id(&ou)
        .send()
        .await
        .unwrap();
    assert_eq!(
        ou_name.organizational_unit().unwrap().name(),
        Some(production.name.as_str())
    );
    let described = orgs
        .describe_account()
        .account_id(&aws_account_id)
        .send()
        .await
        .unwrap();
    assert_eq!(described.account().unwrap().name(), Some("Renamed in AWS"));
    let tags = orgs
        .list_tags_for_resource()
        .resource_id(&aws_account_id)
        .send()
        .await
        .unwrap();
    let mut tags: Vec<(&str, &str)> = tags.tags().iter().map(|t| (t.key(), t.value())).collect();
    tags.sort();
    // The service's own tag (the record's id, put at creation) is left alone.
    assert_eq!(
        tags,
        [
            ("CostCode", "42"),
            ("Team", "cake"),
            ("accounts:id", id.as_str())
        ]
    );
    let iam = aws_sdk_iam::Client::new(&stack.in_account(&aws_account_id).await);
    let aliases = iam.list_account_aliases().send().await.unwrap();
    assert_eq!(aliases.account_aliases(), std::slice::from_ref(&alias));

    // The audit trail lists every version, newest first, the update's among them.
    let trail = stack
        .api(
            "GET",
            &format!("/20190206/accounts/{id}/events?limit=1000"),
            None,
            Some("local-readonly"),
        )
        .await;
    assert_eq!(trail.status, 200, "{:?}", trail.body);
    let events = trail.body["Events"].as_array().unwrap();
    let versions: Vec<u64> = events
        .iter()
        .map(|e| e["Version"].as_u64().unwrap())
        .collect();
    let newest = versions[0];
    assert_eq!(
        versions,
        (1..=newest).rev().collect::<Vec<_>>(),
        "every version"
    );
    assert_eq!(trail.body["Paging"]["Total"], newest);
    let renamed = events
        .iter()
        .find(|e| {
            e["Changed"]
                .as_array()
                .is_some_and(|c| c.contains(&json!("Name")))
        })
        .expect("the rename is an event");
    assert!(
        renamed["Actor"].as_str().unwrap().contains("local-admin"),
        "{renamed}"
    );
    assert!(renamed["TaskId"].is_string(), "{renamed}");
    assert_eq!(events.last().unwrap()["To"], "INITIALIZING");

    // The old name is free again; the same update again changes nothing in AWS.
    let again = update_ends(stack, &id, &body, "SUCCEEDED").await;
    let logs = again["Logs"].to_string();
    assert!(logs.contains("has its tags already"), "{logs}");
    assert!(!logs.contains("Moved"), "{logs}");

    // Dropping a tag removes it from the account; a new alias replaces the old one.
    let alias = unique("second-alias");
    let task = update_ends(
        stack,
        &id,
        &json!({"Tags": {"Team": "cake"}, "AwsAccountAlias": alias}),
        "SUCCEEDED",
    )
    .await;
    assert!(
        task["Logs"]
            .to_string()
            .contains("put none; removed CostCode"),
        "{task}"
    );
    let tags = orgs
        .list_tags_for_resource()
        .resource_id(&aws_account_id)
        .send()
        .await
        .unwrap();
    assert!(
        tags.tags().iter().all(|t| t.key() != "CostCode"),
        "{tags:?}"
    );
    let aliases = iam.list_account_aliases().send().await.unwrap();
    assert_eq!(aliases.account_aliases(), [alias]);
    assert_eq!(read(stack, &id).await["Tags"], json!({"Team": "cake"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alias_aws_says_is_taken_fails_the_update_with_aws_s_reason() {
    let stack = Stack::workflows().bootstrapped().await;
    let (id, _) = active_account(stack).await;
    // Another account of the organization holds the alias.
    let taken = unique("taken");
    let security = &stack.ready.organization.security_account_id;
    aws_sdk_iam::Client::new(&stack.in_account(security).await)
        .create_account_alias()
        .account_alias(&taken)
        .send()
        .await
        .unwrap();
    let before = read(stack, &id).await;
    let task = update_ends(
        stack,
        &id,
        &json!({"AwsAccountAlias": taken, "Tags": {"Team": "never"}}),
        "FAILED",
    )
    .await;
    let reason = task["Logs"].as_array().unwrap().last().unwrap().to_string();
    assert!(reason.contains("EntityAlreadyExists"), "{reason}");
    let after = read(stack, &id).await;
    assert_eq!(after["Status"], "ACTIVE");
    assert!(after.get("UserTaskId").is_none(), "the lock is released");
    assert_eq!(after["AwsAccountAlias"], before["AwsAccountAlias"]);
    assert_eq!(
        after["Tags"], before["Tags"],
        "the steps after the failure did not run"
    );
    // The account takes the next update.
    update_ends(stack, &id, &json!({"Tags": {"Team": "rye"}}), "SUCCEEDED").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_updates_of_one_account_at_once_one_runs_the_other_is_refused() {
    let stack = Stack::workflows().bootstrapped().await;
    let (id, _) = active_account(stack).await;
    let path = format!("/20190206/accounts/{id}");
    let put = |team: &'static str| {
        let body = json!({"Tags": {"Team": team}}).to_string();
        let path = path.clone();
        async move {
            stack
                .api("PUT", &path, Some(&body), Some("local-operations"))
                .await
        }
    };
    let (a, b) = tokio::join!(put("a"), put("b"));
    let accepted = crate::one_accepted(vec![a, b], "OperationInProgress");
    let task = stack
        .finished_task(accepted.body["TaskId"].as_str().unwrap())
        .await;
    assert_eq!(task["Status"], "SUCCEEDED", "{task:?}");
    let account = read(stack, &id).await;
    assert!(account.get("UserTaskId").is_none(), "the lock is released");
}

#[tokio::test]
async fn refused_updates_say_why_and_write_nothing() {
    let stack = Stack::shared().bootstrapped().await;
    let store = stack.store().await;
    let org = &stack.ready.organization;
    let id_of = async |aws: &str| {
        store
            .get_account_by_aws_id(aws)
            .await
            .unwrap()
            .unwrap()
            .value
    };
    let security = id_of(&org.security_account_id).await;
    let logging = id_of(&org.logging_account_id).await;
    let management = id_of(&org.management_account_id).await;
    let default = store
        .get_account_type_by_name("default")
        .await
        .unwrap()
        .unwrap();
    let before = store.snapshot().await.unwrap();
    let (s, m) = (security.id.to_string(), management.id.to_string());
    let unknown = Uuid::new_v4().to_string();
    let cases: [(&str, Value, &str, u16, &str); 10] = [
        (&s, json!({"Name": "x"}), "local-readonly", 403, "Forbidden"),
        (&s, json!({"Name": "x"}), "local-outsider", 403, "Forbidden"),
        (
            &unknown,
            json!({"Name": "x"}),
            "local-admin",
            404,
            "NotFound",
        ),
        (
            "nope",
            json!({"Name": "x"}),
            "local-admin",
            400,
            "ValidationError",
        ),
        (&s, json!({}), "local-admin", 400, "ValidationError"),
        (
            &s,
            json!({"AccountType": default.id}),
            "local-admin",
            409,
            "NotUpdatable",
        ),
        (
            &s,
            json!({"AccountType": "foundation-logging"}),
            "local-admin",
            400,
            "ValidationError",
        ),
        (
            &s,
            json!({"OrganisationalUnitId": unknown}),
            "local-admin",
            400,
            "ValidationError",
        ),
        (
            &s,
            json!({"Name": logging.name.to_uppercase()}),
            "local-admin",
            409,
            "NameTaken",
        ),
        (
            &m,
            json!({"AwsAccountAlias": "mgmt"}),
            "local-admin",
            409,
            "NotUpdatable",
        ),
    ];
    for (id, body, user, status, error) in cases {
        let r = stack
            .api(
                "PUT",
                &format!("/20190206/accounts/{id}"),
                Some(&body.to_string()),
                Some(user),
            )
            .await;
        r.assert_refused(status, error, &format!("{id} {body} {user}"));
    }
    assert_eq!(
        store.snapshot().await.unwrap(),
        before,
        "refusals write nothing"
    );
}

/// POSTs a closure of account `id` as `user`.
async fn close(stack: &Stack, id: &str, user: &str) -> integration_tests::ApiResponse {
    let body = json!({"Id": id}).to_string();
    stack
        .api("POST", "/20190206/accounts/close", Some(&body), Some(user))
        .await
}

/// The AWS account's status as Organizations reports it.
async fn aws_status(stack: &Stack, aws_account_id: &str) -> String {
    let orgs = aws_sdk_organizations::Client::new(&stack.sdk().await);
    let out = orgs
        .describe_account()
        .account_id(aws_account_id)
        .send()
        .await
        .unwrap();
    out.account().unwrap().status().unwrap().as_str().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_account_is_closed_in_aws_and_recorded_closed() {
    let stack = Stack::workflows().bootstrapped().await;
    let (id, aws_account_id) = active_account(stack).await;
    let r = close(stack, &id, "local-admin").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["Detail"]["Operation"], "accounts:CloseAccount");
    let task = stack
        .finished_task(r.body["TaskId"].as_str().unwrap())
        .await;
    assert_eq!(task["Status"], "SUCCEEDED", "{task:?}");
    let logs = task["Logs"].to_string();
    assert!(logs.contains("Account is CLOSED"), "{logs}");
    let a = read(stack, &id).await;
    assert_eq!(a["Status"], "CLOSED");
    assert!(
        a["StatusReason"]
            .as_str()
            .unwrap()
            .starts_with("closed through the service"),
        "{a}"
    );
    assert!(a.get("UserTaskId").is_none(), "the lock is released");
    assert_eq!(aws_status(stack, &aws_account_id).await, "SUSPENDED");
    // Every status change went on the service's bus, the closure's with its task.
    let changes = status_events(stack, &id, 3).await;
    let seen: Vec<(&str, &str)> = changes
        .iter()
        .map(|d| (d["From"].as_str().unwrap_or("-"), d["To"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [
            ("-", "INITIALIZING"),
            ("INITIALIZING", "ACTIVE"),
            ("ACTIVE", "CLOSED")
        ]
    );
    let closing = &changes[2];
    assert_eq!(closing["TaskId"], r.body["TaskId"]);
    assert_eq!(closing["AwsAccountId"], aws_account_id.as_str());
    assert!(closing["Version"].as_u64().unwrap() > 1);
    // Closed is closed: a second closure and an update are refused.
    close(stack, &id, "local-admin")
        .await
        .assert_refused(409, "NotClosable", "a second closure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_and_a_close_of_one_account_at_once_one_runs_the_other_is_refused() {
    let stack = Stack::workflows().bootstrapped().await;
    let (id, _) = active_account(stack).await;
    let body = json!({"Tags": {"Team": "last-minute"}}).to_string();
    let path = format!("/20190206/accounts/{id}");
    let (updated, closed) = tokio::join!(
        stack.api("PUT", &path, Some(&body), Some("local-admin")),
        close(stack, &id, "local-admin")
    );
    let accepted = crate::one_accepted(vec![updated, closed], "OperationInProgress");
    let task = stack
        .finished_task(accepted.body["TaskId"].as_str().unwrap())
        .await;
    assert_eq!(task["Status"], "SUCCEEDED", "{task:?}");
    assert!(read(stack, &id).await.get("UserTaskId").is_none());
}

#[tokio::test]
async fn refused_closures_say_why_and_write_nothing() {
    let stack = Stack::shared().bootstrapped().await;
    let store = stack.store().await;
    let org = &stack.ready.organization;
    let security = store
        .get_account_by_aws_id(&org.security_account_id)
        .await
        .unwrap()
        .unwrap()
        .value
        .id
        .to_string();
    let management = store
        .get_account_by_aws_id(&org.management_account_id)
        .await
        .unwrap()
        .unwrap()
        .value
        .id
        .to_string();
    let before = store.snapshot().await.unwrap();
    let unknown = Uuid::new_v4().to_string();
    for (id, user, status, error) in [
        (security.as_str(), "local-operations", 403, "Forbidden"),
        (security.as_str(), "local-readonly", 403, "Forbidden"),
        (unknown.as_str(), "local-admin", 404, "NotFound"),
        ("nope", "local-admin", 400, "ValidationError"),
        (security.as_str(), "local-admin", 409, "NotClosable"),
        (management.as_str(), "local-admin", 409, "NotClosable"),
    ] {
        close(stack, id, user)
            .await
            .assert_refused(status, error, &format!("{id} {user}"));
    }
    assert_eq!(
        store.snapshot().await.unwrap(),
        before,
        "refusals write nothing"
    );
}

/// The tasks' statuses, and how many of them say they are queued.
async fn closure_progress(stack: &Stack, tasks: &[String]) -> (usize, usize, usize) {
    let (mut succeeded, mut queued, mut failed) = (0, 0, 0);
    for task in tasks {
        let r = stack
            .api("GET", &format!("/20190206/task/{task}"), None, None)
            .await;
        match r.body["Status"].as_str() {
            Some("SUCCEEDED") => succeeded += 1,
            Some("FAILED") => failed += 1,
            _ if r.body["Logs"].to_string().contains("Queued: ") => queued += 1,
            _ => {}
        }
    }
    (succeeded, queued, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closures_beyond_aws_s_quota_wait_for_its_window_and_none_fail() {
    // A stack of its own: the quota counts every closure of the organization.
    let stack = Stack::start();
    stack.bootstrapped().await;
    let seeded = reqwest::Client::new()
        .post(format!(
            "{}/_local/organizations/members",
            stack.ready.aws_endpoint
        ))
        .json(&json!({"count": 15, "prefix": "closing",
                      "management": stack.ready.organization.management_account_id}))
        .send()
        .await
        .unwrap();
    assert!(seeded.status().is_success());
    let r = stack
        .api("POST", "/20190206/accounts/discover", Some("{}"), None)
        .await;
    let task = stack
        .finished_task(r.body["TaskId"].as_str().unwrap())
        .await;
    assert_eq!(task["Status"], "SUCCEEDED", "{task:?}");
    let listed = stack
        .api("GET", "/20190206/accounts?name_filter=closing-", None, None)
        .await;
    let accounts: Vec<(String, String)> = listed.body["Accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["Id"].as_str().unwrap().to_owned(),
                a["AwsAccountId"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // 21 members: the quota is 10 (10 % of 21, at least 10).
    assert_eq!(accounts.len(), 15, "{listed:?}");

    // Every closure asked for at once.
    let answers = futures::future::join_all(
        accounts
            .iter()
            .map(|(id, _)| close(&stack, id, "local-admin")),
    )
    .await;
    let tasks: Vec<String> = answers
        .iter()
        .map(|r| {
            assert_eq!(r.status, 200, "{:?}", r.body);
            r.body["TaskId"].as_str().unwrap().to_owned()
        })
        .collect();

    let mut progress = (0, 0, 0);
    for _ in 0..300 {
        progress = closure_progress(&stack, &tasks).await;
        if progress == (10, 5, 0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(progress, (10, 5, 0), "(succeeded, queued, failed)");
    // Several retries later (every 2 s locally) the five are still waiting, none failed.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    assert_eq!(closure_progress(&stack, &tasks).await, (10, 5, 0));

    // The window passes: the queue drains.
    let moved = reqwest::Client::new()
        .post(format!(
            "{}/_local/organizations/close-quota",
            stack.ready.aws_endpoint
        ))
        .json(&json!({"advance_days": 30}))
        .send()
        .await
        .unwrap();
    assert!(moved.status().is_success());
    for task in &tasks {
        let done = stack.finished_task(task).await;
        assert_eq!(done["Status"], "SUCCEEDED", "{done:?}");
    }
    for (id, aws_account_id) in &accounts {
        assert_eq!(read(&stack, id).await["Status"], "CLOSED");
        assert_eq!(aws_status(&stack, aws_account_id).await, "SUSPENDED");
    }
}

/// The ids of the SCPs attached directly to the AWS account, by name.
async fn scps_on(stack: &Stack, aws_account_id: &str) -> Vec<String> {
    let orgs = aws_sdk_organizations::Client::new(&stack.sdk().await);
    let out = orgs
        .list_policies_for_target()
        .target_id(aws_account_id)
        .filter(aws_sdk_organizations::types::PolicyType::ServiceControlPolicy)
        .send()
        .await
        .unwrap();
    out.policies()
        .iter()
        .filter_map(|p| p.name().map(str::to_owned))
        .collect()
}

/// POSTs `…/{id}/{what}` (suspend, reactivate) as `local-admin` and waits for its task.
async fn suspension_ends(stack: &Stack, id: &str, what: &str, status: &str) -> Value {
    let path = format!("/20190206/accounts/{id}/{what}");
    stack
        .operation_ends(&path, &json!({}), Some("local-admin"), status)
        .await
}

/// Closes account `id` as `local-admin` and expects the closure to succeed.
async fn closure_ends(stack: &Stack, id: &str) -> Value {
    stack
        .operation_ends(
            "/20190206/accounts/close",
            &json!({"Id": id}),
            Some("local-admin"),
            "SUCCEEDED",
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_account_carries_the_deny_scp_until_it_is_reactivated() {
    let stack = Stack::workflows().bootstrapped().await;
    let (id, aws_account_id) = active_account(stack).await;
    let suspended = "accounts-suspended".to_owned();

    // The bus refuses the first publication after this: the stream delivers the batch again.
    stack
        .inject_fault("AWSEvents.PutEvents", "AccessDeniedException", 1)
        .await;
    suspension_ends(stack, &id, "suspend", "SUCCEEDED").await;
    let a = read(stack, &id).await;
    assert_eq!(a["Status"], "SUSPENDED");
    let changes = status_events(stack, &id, 3).await;
    let suspended_events: Vec<&Value> = changes.iter().filter(|d| d["To"] == "SUSPENDED").collect();
    assert_eq!(suspended_events.len(), 1, "published once: {changes:?}");
    assert!(stack.faults_served("AWSEvents.PutEvents").await >= 1);
    assert!(a.get("UserTaskId").is_none(), "the lock is released");
    assert!(scps_on(stack, &aws_account_id).await.contains(&suspended));
    // The SCP is the service's, and says what suspended means.
    let orgs = aws_sdk_organizations::Client::new(&stack.sdk().await);
    let listed = orgs
        .list_policies_for_target()
        .target_id(&aws_account_id)
        .filter(aws_sdk_organizations::types::PolicyType::ServiceControlPolicy)
        .send()
        .await
        .unwrap();
    let policy_id = listed
        .policies()
        .iter()
        .find(|p| p.name() == Some("accounts-suspended"))
        .and_then(|p| p.id())
        .unwrap()
        .to_owned();
    let described = orgs
        .describe_policy()
        .policy_id(&policy_id)
        .send()
        .await
        .unwrap();
    let content: Value =
        serde_json::from_str(described.policy().unwrap().content().unwrap()).unwrap();
    assert_eq!(
        content,
        domain::policy::suspension_policy("stax-provisioning")
    );
    let tags = orgs
        .list_tags_for_resource()
        .resource_id(&policy_id)
        .send()
        .await
        .unwrap();
    assert!(aws::organizations::is_managed(tags.tags()));
    // The policies in force say so, and why.
    let in_force = policies_in_force(stack, &id).await;
    for expected in [
        ("accounts-suspended", "ACCOUNT"),
        ("foundation", "STAX_MANDATORY"),
    ] {
        assert!(
            in_force
                .iter()
                .any(|(n, k)| (n.as_str(), k.as_str()) == expected),
            "{expected:?}: {in_force:?}"
        );
    }

    // A suspended account is not suspended again, nor updated; it is reactivated.
    let again = stack
        .api(
            "POST",
            &format!("/20190206/accounts/{id}/suspend"),
            None,
            Some("local-admin"),
        )
        .await;
    again.assert_refused(409, "NotSuspendable", "a second suspension");
    suspension_ends(stack, &id, "reactivate", "SUCCEEDED").await;
    assert_eq!(read(stack, &id).await["Status"], "ACTIVE");
    assert!(!scps_on(stack, &aws_account_id).await.contains(&suspended));
    let in_force = policies_in_force(stack, &id).await;
    assert!(
        !in_force
            .iter()
            .any(|(name, _)| name == "accounts-suspended"),
        "{in_force:?}"
    );

    // A suspended account can be closed.
    suspension_ends(stack, &id, "suspend", "SUCCEEDED").await;
    closure_ends(stack, &id).await;
    assert_eq!(read(stack, &id).await["Status"], "CLOSED");
}

#[tokio::test]
async fn refused_suspensions_say_why_and_write_nothing() {
    let stack = Stack::shared().bootstrapped().await;
    let store = stack.store().await;
    let security = store
        .get_account_by_aws_id(&stack.ready.organization.security_account_id)
        .await
        .unwrap()
        .unwrap()
        .value
        .id
        .to_string();
    let before = store.snapshot().await.unwrap();
    let unknown = Uuid::new_v4().to_string();
    for (what, id, body, user, status, error) in [
        (
            "suspend",
            security.as_str(),
            None,
            "local-admin",
            409,
            "NotSuspendable",
        ),
        (
            "reactivate",
            security.as_str(),
            None,
            "local-admin",
            409,
            "NotSuspendable",
        ),
        (
            "suspend",
            security.as_str(),
            None,
            "local-operations",
            403,
            "Forbidden",
        ),
        (
            "suspend",
            unknown.as_str(),
            None,
            "local-admin",
            404,
            "NotFound",
        ),
        (
            "suspend",
            "nope",
            None,
            "local-admin",
            400,
            "ValidationError",
        ),
        (
            "suspend",
            security.as_str(),
            Some(r#"{"Now": true}"#),
            "local-admin",
            400,
            "ValidationError",
        ),
    ] {
        stack
            .api(
                "POST",
                &format!("/20190206/accounts/{id}/{what}"),
                body,
                Some(user),
            )
            .await
            .assert_refused(status, error, &format!("{what} {id} {user}"));
    }
    assert_eq!(
        store.snapshot().await.unwrap(),
        before,
        "refusals write nothing"
    );
}

/// `GET …/{id}/policies`: (policy name, attachment type) of each SCP in force.
async fn policies_in_force(stack: &Stack, id: &str) -> Vec<(String, String)> {
    let r = stack
        .api(
            "GET",
            &format!("/20190206/accounts/{id}/policies"),
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
            )
        })
        .collect()
}

/// The `Account Status Changed` events of account `id` the service's bus delivered, oldest
/// first, once there are `at_least` of them.
async fn status_events(stack: &Stack, id: &str, at_least: usize) -> Vec<Value> {
    let mut found = stack
        .bus_events("Account Status Changed", at_least, |d| d["AccountId"] == id)
        .await;
    found.sort_by_key(|d| d["Version"].as_u64());
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stax_python_sdk_updates_and_closes_an_account_unchanged() {
    let stack = Stack::workflows().bootstrapped().await;
    let (id, aws_account_id) = active_account(stack).await;
    let default = stack
        .store()
        .await
        .get_account_type_by_name("default")
        .await
        .unwrap()
        .unwrap();
    let name = unique("sdk");
    let alias = unique("sdk-alias");
    let update = json!({"account_id": id, "Name": name, "AwsAccountAlias": alias,
                        "AccountType": default.id, "Tags": {"Team": "sdk"}});
    let answers = stack.stax_sdk(&[("accounts.UpdateAccount", update)]);
    let (status, body) = &answers[0];
    assert_eq!(*status, 200, "{body}");
    let task = stack.finished_task(body["TaskId"].as_str().unwrap()).await;
    assert_eq!(task["Status"], "SUCCEEDED", "{task:?}");
    let a = read(stack, &id).await;
    assert_eq!(
        (a["Name"].as_str(), a["AwsAccountAlias"].as_str()),
        (Some(name.as_str()), Some(alias.as_str()))
    );
    assert_eq!(a["Tags"], json!({"Team": "sdk"}));

    // The SDK refuses a body the Stax schema does not admit before it sends anything; ours
    // refuses what the record does not admit.
    let answers = stack.stax_sdk(&[
        ("accounts.CloseAccount", json!({"Id": id})),
        ("accounts.CloseAccount", json!({"Id": id})),
    ]);
    assert_eq!(answers[0].0, 200, "{:?}", answers[0].1);
    let task = stack
        .finished_task(answers[0].1["TaskId"].as_str().unwrap())
        .await;
    assert_eq!(task["Status"], "SUCCEEDED", "{task:?}");
    assert_eq!(answers[1].0, 409, "{:?}", answers[1].1);
    assert_eq!(read(stack, &id).await["Status"], "CLOSED");
    assert_eq!(aws_status(stack, &aws_account_id).await, "SUSPENDED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_organizations_calls_are_retried_to_success() {
    let stack = Stack::workflows().bootstrapped().await;
    let (id, _) = active_account(stack).await;
    stack
        .inject_fault(
            "AWSOrganizationsV20161128.TagResource",
            "TooManyRequestsException",
            2,
        )
        .await;
    update_ends(
        stack,
        &id,
        &json!({"Tags": {"Team": "patient"}}),
        "SUCCEEDED",
    )
    .await;
    assert_eq!(read(stack, &id).await["Tags"], json!({"Team": "patient"}));
    stack
        .inject_fault(
            "AWSOrganizationsV20161128.CloseAccount",
            "ConcurrentModificationException",
            2,
        )
        .await;
    closure_ends(stack, &id).await;
    assert_eq!(read(stack, &id).await["Status"], "CLOSED");
}
