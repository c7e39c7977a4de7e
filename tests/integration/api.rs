//! The HTTP API through the local API Gateway stand-in, signed as the local principals.

use integration_tests::Stack;
use serde_json::Value;
#[allow(unused_imports)]
use store::prelude::*;
use uuid::Uuid;

async fn bootstrapped() -> &'static Stack {
    Stack::shared().bootstrapped().await
}

fn accounts(body: &Value) -> &Vec<Value> {
    body["Accounts"].as_array().expect("an Accounts list")
}

#[tokio::test]
async fn lists_the_foundation_accounts_with_their_roles_and_types() {
    let stack = bootstrapped().await;
    let org = &stack.ready.organization;
    let r = stack.api("GET", "/20190206/accounts", None, None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let security = accounts(&r.body)
        .iter()
        .find(|a| a["AwsAccountId"] == org.security_account_id.as_str())
        .expect("the Security account");
    assert_eq!(security["AccountRole"], "SECURITY");
    assert_eq!(security["AccountTypeName"], "foundation-security");
    assert_eq!(security["Status"], "ACTIVE");
    assert_eq!(security["Origin"], "EXTERNAL");
    assert!(Uuid::parse_str(security["Id"].as_str().unwrap()).is_ok());
    assert!(Uuid::parse_str(security["AccountType"].as_str().unwrap()).is_ok());
    assert!(security["CreatedTS"].as_str().unwrap().ends_with('Z'));
    let roles: Vec<&str> = accounts(&r.body)
        .iter()
        .map(|a| a["AccountRole"].as_str().unwrap())
        .collect();
    assert!(roles.contains(&"MANAGEMENT") && roles.contains(&"LOGGING"));
}

#[tokio::test]
async fn lists_the_account_types_with_their_accounts() {
    let stack = bootstrapped().await;
    let all = stack.api("GET", "/20190206/accounts", None, None).await;
    let security = accounts(&all.body)
        .iter()
        .find(|a| a["AccountRole"] == "SECURITY")
        .expect("the Security account")
        .clone();
    let r = stack
        .api(
            "GET",
            "/20190206/accounts/types",
            None,
            Some("local-readonly"),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let types = r.body["AccountTypes"].as_array().unwrap();
    let names: Vec<&str> = types.iter().map(|t| t["Name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "default",
            "foundation-logging",
            "foundation-management",
            "foundation-security"
        ]
    );
    let security_type = &types[3];
    assert_eq!(security_type["Id"], security["AccountType"]);
    assert_eq!(
        security_type["Accounts"],
        serde_json::json!([security["Id"]])
    );
    assert_eq!(security_type["OrganisationId"], security["OrganisationId"]);
    assert_eq!(security_type["Status"], "ACTIVE");

    // One type by id, as a create request may name it.
    let id = security_type["Id"].as_str().unwrap();
    let one = stack
        .api(
            "GET",
            &format!("/20190206/accounts/types?id_filter={id}"),
            None,
            None,
        )
        .await;
    assert_eq!(one.body["AccountTypes"].as_array().unwrap().len(), 1);
    assert_eq!(one.body["AccountTypes"][0]["Name"], "foundation-security");

    let outsider = stack
        .api(
            "GET",
            "/20190206/accounts/types",
            None,
            Some("local-outsider"),
        )
        .await;
    outsider.assert_refused(403, "Forbidden", "an unmapped caller");
}

#[tokio::test]
async fn gets_one_account_and_an_empty_list_for_an_unknown_id() {
    let stack = bootstrapped().await;
    let all = stack
        .api("GET", "/20190206/accounts?filter=ACTIVE", None, None)
        .await;
    let id = accounts(&all.body)[0]["Id"].as_str().unwrap().to_owned();
    let one = stack
        .api(
            "GET",
            &format!("/20190206/accounts/{id}"),
            None,
            Some("local-readonly"),
        )
        .await;
    assert_eq!(one.status, 200);
    assert_eq!(accounts(&one.body).len(), 1);
    assert_eq!(accounts(&one.body)[0]["Id"], id.as_str());
    let none = stack
        .api(
            "GET",
            &format!("/20190206/accounts/{}", Uuid::new_v4()),
            None,
            None,
        )
        .await;
    assert_eq!(
        (none.status, none.body.clone()),
        (200, serde_json::json!({"Accounts": []}))
    );
}

#[tokio::test]
async fn pages_carry_their_position() {
    let stack = bootstrapped().await;
    let r = stack
        .api(
            "GET",
            "/20190206/accounts?filter=ACTIVE&sort=Name&sort_order=ASC&limit=1&offset=1",
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(accounts(&r.body).len(), 1);
    let total = r.body["Paging"]["Total"].as_u64().unwrap();
    assert!(total >= 3);
    assert_eq!(r.body["Paging"]["NextOffset"], 2);
    assert_eq!(r.body["Paging"]["PrevOffset"], 0);
}

#[tokio::test]
async fn every_role_may_read_and_a_caller_without_a_role_is_forbidden() {
    let stack = bootstrapped().await;
    for user in [
        "local-admin",
        "local-operations",
        "local-user",
        "local-readonly",
    ] {
        let r = stack
            .api("GET", "/20190206/accounts", None, Some(user))
            .await;
        assert_eq!(r.status, 200, "{user}: {:?}", r.body);
    }
    let r = stack
        .api("GET", "/20190206/accounts", None, Some("local-outsider"))
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body["Error"], "Forbidden");
    let outsider = &stack.ready.principals["local-outsider"].arn;
    assert_eq!(
        r.body["Cause"],
        format!("{outsider} has no role in this service")
    );
}

#[tokio::test]
async fn bad_input_is_a_400_that_says_why_and_changes_nothing() {
    let stack = bootstrapped().await;
    let store = stack.store().await;
    let before = store.snapshot().await.unwrap();
    let cases = [
        (
            "/20190206/accounts/not-a-uuid",
            "account_id: \"not-a-uuid\" is not a UUID",
        ),
        (
            "/20190206/accounts?limit=0",
            "limit must be between 1 and 1000, got 0",
        ),
        (
            "/20190206/accounts?limit=5000",
            "limit must be between 1 and 1000, got 5000",
        ),
        (
            "/20190206/accounts?offset=-1",
            "offset must be a whole number, got \"-1\"",
        ),
        (
            "/20190206/accounts?filter=ACTIVE,SLEEPING",
            "filter: \"SLEEPING\" is not one of",
        ),
        (
            "/20190206/accounts?id_filter=123",
            "id_filter: \"123\" is not a UUID",
        ),
        (
            "/20190206/accounts?aws_account_id_filter=1234",
            "aws_account_id_filter: \"1234\" is not a 12-digit AWS account id",
        ),
        (
            "/20190206/accounts?sort_order=SIDEWAYS",
            "sort_order: \"SIDEWAYS\" is not one of ASC, DESC",
        ),
        (
            "/20190206/accounts?include_tags=maybe",
            "include_tags must be true or false, got \"maybe\"",
        ),
        (
            "/20190206/accounts?status=ACTIVE",
            "unknown query parameter \"status\"",
        ),
        (
            "/20190206/accounts/types?id_filter=default",
            "id_filter: \"default\" is not a UUID",
        ),
        (
            "/20190206/accounts/types?filter=ACTIVE",
            "unknown query parameter \"filter\"",
        ),
    ];
    for (path, cause) in cases {
        let r = stack.api("GET", path, None, Some("local-admin")).await;
        assert_eq!(r.status, 400, "{path}: {:?}", r.body);
        assert_eq!(r.body["Error"], "ValidationError", "{path}");
        assert!(
            r.body["Cause"].as_str().unwrap().starts_with(cause),
            "{path}: {}",
            r.body["Cause"]
        );
    }
    assert_eq!(store.snapshot().await.unwrap(), before);
}

#[tokio::test]
async fn an_unknown_task_is_a_404_and_a_malformed_id_a_400() {
    let stack = Stack::shared();
    let r = stack
        .api(
            "GET",
            &format!("/20190206/task/{}", Uuid::new_v4()),
            None,
            Some("local-readonly"),
        )
        .await;
    r.assert_refused(404, "NotFound", "an unknown task");
    let r = stack.api("GET", "/20190206/task/42", None, None).await;
    r.assert_refused(400, "ValidationError", "a malformed task id");
}

#[tokio::test]
async fn a_route_the_api_does_not_have_is_a_404() {
    let stack = Stack::shared();
    let r = stack.api("GET", "/20190206/widgets", None, None).await;
    assert_eq!(r.status, 404);
}
