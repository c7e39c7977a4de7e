//! Account Types end to end: each type one tagged OU under the root, made, renamed and removed
//! with the type; its accounts placed in it; every refusal leaving the table and the
//! organization as they were.

use crate::create::unique;
use integration_tests::Stack;
use serde_json::{Value, json};
#[allow(unused_imports)]
use store::prelude::*;
use uuid::Uuid;

/// The root's OUs: (name, id, tagged by the service).
pub(crate) async fn root_ous(stack: &Stack) -> Vec<(String, String, bool)> {
    let orgs = aws_sdk_organizations::Client::new(&stack.sdk().await);
    let root = orgs.list_roots().send().await.unwrap().roots()[0]
        .id()
        .unwrap()
        .to_owned();
    let out = orgs
        .list_organizational_units_for_parent()
        .parent_id(&root)
        .send()
        .await
        .unwrap();
    let mut ous = Vec::new();
    for ou in out.organizational_units() {
        let id = ou.id().unwrap().to_owned();
        let tags = orgs
            .list_tags_for_resource()
            .resource_id(&id)
            .send()
            .await
            .unwrap();
        ous.push((
            ou.name().unwrap().to_owned(),
            id,
            aws::organizations::is_managed(tags.tags()),
        ));
    }
    ous
}

pub(crate) async fn ou_named(stack: &Stack, name: &str) -> Option<String> {
    root_ous(stack)
        .await
        .into_iter()
        .find(|(n, ..)| n == name)
        .map(|(_, id, tagged)| {
            assert!(tagged, "the service's OU {name} carries its tag");
            id
        })
}

pub(crate) async fn parent_of(stack: &Stack, aws_account_id: &str) -> String {
    let orgs = aws_sdk_organizations::Client::new(&stack.sdk().await);
    let out = orgs
        .list_parents()
        .child_id(aws_account_id)
        .send()
        .await
        .unwrap();
    out.parents()[0].id().unwrap().to_owned()
}

pub(crate) async fn call(
    stack: &Stack,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> integration_tests::ApiResponse {
    let body = body.map(|b| b.to_string());
    stack
        .api(method, path, body.as_deref(), Some("local-admin"))
        .await
}

pub(crate) async fn create_type(stack: &Stack, name: &str) -> String {
    let r = call(
        stack,
        "POST",
        "/20190206/accounts/types",
        Some(json!({"Name": name})),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["Detail"]["AccountType"]["Id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A new account of the type `account_type` (its id or name), created to `ACTIVE`.
pub(crate) async fn active_account_of(stack: &Stack, account_type: &str) -> domain::Account {
    let task = stack
        .operation_ends(
            "/20190206/accounts",
            &json!({"Name": unique("typed"), "AccountType": account_type}),
            Some("local-admin"),
            "SUCCEEDED",
        )
        .await;
    let id = task["Accounts"][0].as_str().unwrap().parse().unwrap();
    let store = stack.store().await;
    store.get_account(id).await.unwrap().unwrap().value
}

pub(crate) async fn read_type(stack: &Stack, id: &str) -> Value {
    let r = stack
        .api(
            "GET",
            &format!("/20190206/accounts/types/{id}"),
            None,
            Some("local-readonly"),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["AccountTypes"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_type_is_its_own_ou_through_a_rename_and_its_accounts_are_placed_in_it() {
    let stack = Stack::workflows().bootstrapped().await;
    let name = unique("Sandbox");
    let id = create_type(stack, &name).await;
    let ou = ou_named(stack, &name)
        .await
        .expect("the type's OU is made at once");
    assert_eq!(read_type(stack, &id).await["Name"], name);

    // An account of the type is placed in its OU.
    let typed = active_account_of(stack, &name).await;
    let account = typed.id.to_string();
    let aws_account_id = typed.aws_account_id.unwrap();
    assert_eq!(parent_of(stack, &aws_account_id).await, ou);
    assert_eq!(read_type(stack, &id).await["Accounts"], json!([account]));

    // Renamed, the type keeps its OU, which takes the new name; new accounts still go there.
    let renamed = unique("Playground");
    let r = call(
        stack,
        "PUT",
        &format!("/20190206/accounts/types/{id}"),
        Some(json!({"Name": renamed})),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["AccountTypes"]["Name"], renamed);
    assert_eq!(
        ou_named(stack, &renamed).await.as_deref(),
        Some(ou.as_str())
    );
    assert_eq!(ou_named(stack, &name).await, None);
    let second = active_account_of(stack, &id).await;
    assert_eq!(
        parent_of(stack, second.aws_account_id.as_deref().unwrap()).await,
        ou
    );

    // In use, the type is not deleted, and neither it nor its OU changes (other tests share
    // this stack: the refusal test on a stack of its own compares everything).
    let store = stack.store().await;
    let type_id: Uuid = id.parse().unwrap();
    let before = store.get_versioned_account_type(type_id).await.unwrap();
    let r = call(
        stack,
        "DELETE",
        &format!("/20190206/accounts/types/{id}"),
        None,
    )
    .await;
    r.assert_refused(409, "AccountTypeInUse", "a type with accounts");
    assert_eq!(
        store.get_versioned_account_type(type_id).await.unwrap(),
        before
    );
    assert_eq!(
        ou_named(stack, &renamed).await.as_deref(),
        Some(ou.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_type_is_deleted_with_its_ou_and_its_name_is_free_again() {
    let stack = Stack::workflows().bootstrapped().await;
    let name = unique("Scratch");
    let id = create_type(stack, &name).await;
    assert!(ou_named(stack, &name).await.is_some());
    let r = call(
        stack,
        "DELETE",
        &format!("/20190206/accounts/types/{id}"),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["AccountTypes"]["Status"], "DELETED");
    assert_eq!(read_type(stack, &id).await["Status"], "DELETED");
    assert_eq!(
        ou_named(stack, &name).await,
        None,
        "the empty OU is removed"
    );
    // The name makes a new type, with a new OU.
    let again = create_type(stack, &name).await;
    assert_ne!(again, id);
    assert!(ou_named(stack, &name).await.is_some());
    // An account cannot be created in the deleted type.
    let r = call(
        stack,
        "POST",
        "/20190206/accounts",
        Some(json!({"Name": unique("late"), "AccountType": id})),
    )
    .await;
    assert!(r.status == 400 || r.status == 409, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_type_changes_say_why_and_change_nothing() {
    let own = Stack::start();
    let stack = own.bootstrapped().await;
    let store = stack.store().await;
    let taken = unique("Taken");
    let id = create_type(stack, &taken).await;
    let default = store
        .get_account_type_by_name("default")
        .await
        .unwrap()
        .unwrap()
        .id
        .to_string();
    let unknown = Uuid::new_v4().to_string();
    // Another team's OU: a type of its name is refused, not given their OU.
    let orgs = aws_sdk_organizations::Client::new(&stack.sdk().await);
    let root = aws::organizations::root_id(&orgs).await.unwrap();
    orgs.create_organizational_unit()
        .parent_id(&root)
        .name("Theirs")
        .send()
        .await
        .unwrap();
    let before = (store.snapshot().await.unwrap(), root_ous(stack).await);
    let types = "/20190206/accounts/types";
    let one = |id: &str| format!("{types}/{id}");
    /// (method, path, body, caller, status, error)
    type Case<'a> = (&'a str, String, Option<Value>, &'a str, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "POST",
            types.into(),
            Some(json!({"Name": taken.to_uppercase()})),
            "local-admin",
            409,
            "AccountTypeNameTaken",
        ),
        (
            "POST",
            types.into(),
            Some(json!({"Name": "x"})),
            "local-admin",
            400,
            "ValidationError",
        ),
        (
            "POST",
            types.into(),
            Some(json!({"Name": "no#hash"})),
            "local-admin",
            400,
            "ValidationError",
        ),
        (
            "POST",
            types.into(),
            Some(json!({"Name": "default"})),
            "local-admin",
            400,
            "ValidationError",
        ),
        (
            "POST",
            types.into(),
            Some(json!({"Name": "Fine", "Extra": 1})),
            "local-admin",
            400,
            "ValidationError",
        ),
        (
            "POST",
            types.into(),
            Some(json!({"Name": "Fine"})),
            "local-operations",
            403,
            "Forbidden",
        ),
        (
            "POST",
            types.into(),
            Some(json!({"Name": "Theirs"})),
            "local-admin",
            409,
            "NotManagedByTheService",
        ),
        (
            "PUT",
            one(&default),
            Some(json!({"Name": "Standard"})),
            "local-admin",
            409,
            "AccountTypeNotChangeable",
        ),
        (
            "PUT",
            one(&unknown),
            Some(json!({"Name": "Standard"})),
            "local-admin",
            404,
            "NotFound",
        ),
        (
            "PUT",
            one("nope"),
            Some(json!({"Name": "Standard"})),
            "local-admin",
            400,
            "ValidationError",
        ),
        (
            "PUT",
            one(&id),
            Some(json!({})),
            "local-admin",
            400,
            "ValidationError",
        ),
        (
            "PUT",
            one(&id),
            Some(json!({"Name": "Fine"})),
            "local-readonly",
            403,
            "Forbidden",
        ),
        (
            "DELETE",
            one(&default),
            None,
            "local-admin",
            409,
            "AccountTypeNotChangeable",
        ),
        (
            "DELETE",
            one(&unknown),
            None,
            "local-admin",
            404,
            "NotFound",
        ),
    ];
    for (method, path, body, user, status, error) in cases {
        let text = body.as_ref().map(Value::to_string);
        let r = stack.api(method, &path, text.as_deref(), Some(user)).await;
        r.assert_refused(
            status,
            error,
            &format!("{method} {path} {body:?} as {user}"),
        );
    }
    assert_eq!(
        (store.snapshot().await.unwrap(), root_ous(stack).await),
        before
    );

    // On this stack alone, faults reach no other test. A throttled OU call is retried to
    // success; a rename AWS refuses leaves the type its name and its OU.
    let create_ou = "AWSOrganizationsV20161128.CreateOrganizationalUnit";
    stack
        .inject_fault(create_ou, "TooManyRequestsException", 2)
        .await;
    let patient = create_type(stack, "Patient").await;
    assert_eq!(stack.faults_served(create_ou).await, 2);
    assert!(ou_named(stack, "Patient").await.is_some());
    stack
        .inject_fault(
            "AWSOrganizationsV20161128.UpdateOrganizationalUnit",
            "ConstraintViolationException",
            1,
        )
        .await;
    let r = call(
        stack,
        "PUT",
        &format!("/20190206/accounts/types/{patient}"),
        Some(json!({"Name": "Impatient"})),
    )
    .await;
    r.assert_refused(409, "OrganizationsRequestRefused", "a rename AWS refuses");
    assert_eq!(read_type(stack, &patient).await["Name"], "Patient");
    assert!(ou_named(stack, "Patient").await.is_some());
    assert!(
        store
            .get_account_type_by_name("Impatient")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renames_at_once_leave_the_ou_named_as_the_record() {
    let stack = Stack::workflows().bootstrapped().await;
    let id = create_type(stack, &unique("Racing")).await;
    let path = format!("/20190206/accounts/types/{id}");
    let names: Vec<String> = (0..4).map(|i| unique(&format!("Racer{i}"))).collect();
    let answers = futures::future::join_all(
        names
            .iter()
            .map(|n| call(stack, "PUT", &path, Some(json!({"Name": n})))),
    )
    .await;
    for a in &answers {
        assert!(a.status == 200 || a.status == 409, "{:?}", a.body);
        if a.status == 409 {
            a.assert_refused(409, "StaleRecord", "a rename beaten to the record");
        }
    }
    assert!(answers.iter().any(|a| a.status == 200));
    let recorded = read_type(stack, &id).await["Name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        ou_named(stack, &recorded).await.is_some(),
        "the OU has the record's name {recorded}"
    );
    for (name, answer) in names.iter().zip(&answers) {
        if answer.status == 409 || *name != recorded {
            assert_eq!(ou_named(stack, name).await, None, "{name}");
            // A name that did not stick is free.
            let free = stack
                .store()
                .await
                .get_account_type_by_name(name)
                .await
                .unwrap();
            assert!(free.is_none(), "{name}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stax_sdk_manages_account_types_unchanged() {
    let stack = Stack::workflows().bootstrapped().await;
    let name = unique("SdkType");
    let answers = stack.stax_sdk(&[("accounts.CreateAccountType", json!({"Name": name}))]);
    assert_eq!(answers[0].0, 200, "{:?}", answers[0].1);
    let id = answers[0].1["Detail"]["AccountType"]["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let renamed = unique("SdkRenamed");
    let answers = stack.stax_sdk(&[
        ("accounts.ReadAccountTypes", json!({"account_type_id": id})),
        (
            "accounts.UpdateAccountType",
            json!({"account_type_id": id, "Name": renamed}),
        ),
        ("accounts.DeleteAccountType", json!({"account_type_id": id})),
        ("accounts.ReadAccountTypes", json!({})),
    ]);
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body:?}");
    }
    assert_eq!(answers[0].1["AccountTypes"][0]["Name"], name);
    assert_eq!(answers[1].1["AccountTypes"]["Name"], renamed);
    assert_eq!(answers[2].1["AccountTypes"]["Status"], "DELETED");
    let listed = answers[3].1["AccountTypes"].as_array().unwrap();
    let ours = listed.iter().find(|t| t["Id"] == id.as_str()).unwrap();
    assert_eq!(
        (ours["Name"].as_str(), ours["Status"].as_str()),
        (Some(renamed.as_str()), Some("DELETED"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_move_to_their_type_s_ou_through_the_stax_sdk_and_a_refusal_stops_none() {
    let stack = Stack::workflows().bootstrapped().await;
    let name = unique("Members");
    let type_id = create_type(stack, &name).await;
    let ou = ou_named(stack, &name).await.unwrap();
    let account = active_account_of(stack, "default").await.id.to_string();
    let store = stack.store().await;
    let security = store
        .get_account_by_aws_id(&stack.ready.organization.security_account_id)
        .await
        .unwrap()
        .unwrap()
        .value;
    let members = json!({"Members": [
        {"AccountId": account, "AccountTypeId": type_id},
        {"AccountId": security.id, "AccountTypeName": name},
    ]});
    let answers = stack.stax_sdk(&[("accounts.UpdateAccountTypeMembers", members)]);
    let (status, body) = &answers[0];
    assert_eq!(*status, 200, "{body:?}");
    let parent = stack
        .finished_task(body["Detail"]["TaskId"].as_str().unwrap())
        .await;
    assert_eq!(
        parent["Status"], "FAILED",
        "the Security account stays: {parent:?}"
    );
    let logs: Vec<&str> = parent["Logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        logs[1].contains("not moved") && logs[1].contains("foundation"),
        "{logs:?}"
    );
    let child = logs[0]
        .rsplit("under task ")
        .next()
        .unwrap()
        .trim()
        .to_owned();
    let moved = stack.finished_task(&child).await;
    assert_eq!(moved["Status"], "SUCCEEDED", "{moved:?}");
    let record = store
        .get_account(account.parse().unwrap())
        .await
        .unwrap()
        .unwrap()
        .value;
    assert_eq!(
        record.account_type.map(|t| t.to_string()),
        Some(type_id.clone())
    );
    assert_eq!(
        parent_of(stack, record.aws_account_id.as_deref().unwrap()).await,
        ou
    );
    assert_eq!(
        read_type(stack, &type_id).await["Accounts"],
        json!([account])
    );
    let security_now = store.get_account(security.id).await.unwrap().unwrap().value;
    assert_eq!(security_now.account_type, security.account_type);
}
