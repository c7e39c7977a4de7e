//! The HTTP edge: an API Gateway HTTP API request (payload 2.0, IAM auth) becomes an
//! [`ApiRequest`]; a route's `Result<Value, ApiError>` becomes the HTTP response. API Gateway
//! has matched the route already: functions dispatch on the route key
//! (`GET /20190206/accounts/{account_id}`) and never see Lambda types.

use std::collections::HashMap;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::query_map::QueryMap;
use domain::{
    AccountChange, AccountStatus, AccountType, AccountTypeRef, ErrorName, ExecutionStates,
    LifecycleError, StartWorkflow, Task,
};
use serde_json::Value;
use store::{AccountTypes, AccountWrites, FoundationStatus, StoreError};
use uuid::Uuid;

use crate::ApiError;
use crate::auth::{AccessPolicy, AccessRole, Permission};

/// A request as the API functions see it.
#[derive(Debug, Clone, Default)]
pub struct ApiRequest {
    /// The matched route, e.g. `GET /20190206/accounts`.
    pub route_key: String,
    /// The caller's IAM principal ARN, as verified by the IAM authorizer.
    pub principal: Option<String>,
    pub path: HashMap<String, String>,
    pub query: Vec<(String, String)>,
    pub body: Option<String>,
    pub request_id: String,
}

impl ApiRequest {
    /// The request an API Gateway v2 event carries; `request_id` is the Lambda invocation's.
    pub fn from_v2_event(event: ApiGatewayV2httpRequest, request_id: &str) -> Self {
        let principal = event
            .request_context
            .authorizer
            .as_ref()
            .and_then(|a| a.iam.as_ref())
            .and_then(|i| i.user_arn.clone());
        // The raw query string keeps repeated parameters apart (API Gateway's map joins them).
        let query: Vec<(String, String)> = match event.raw_query_string.as_deref() {
            Some(raw) if !raw.is_empty() => raw
                .parse::<QueryMap>()
                .map(|q| {
                    q.iter()
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let body = match event.body {
            Some(b) if event.is_base64_encoded => aws_smithy_types::base64::decode(&b)
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .ok()
                .or(Some(b)),
            other => other,
        };
        ApiRequest {
            route_key: event
                .route_key
                .or(event.request_context.route_key)
                .unwrap_or_default(),
            principal,
            path: event.path_parameters,
            query,
            body,
            request_id: request_id.to_owned(),
        }
    }

    /// A path parameter, or "" when absent.
    pub fn path_param(&self, name: &str) -> &str {
        self.path.get(name).map(String::as_str).unwrap_or_default()
    }

    pub fn query_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.query.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// 400 for a query parameter the route does not take (only `allowed` are taken).
    pub fn only_query(&self, allowed: &[&str]) -> Result<(), ApiError> {
        match self.query_pairs().find(|(k, _)| !allowed.contains(k)) {
            Some((k, _)) => Err(ApiError::bad_request(format!(
                "unknown query parameter {k:?}"
            ))),
            None => Ok(()),
        }
    }

    /// 400 unless the body is absent, blank or `{}` (the Stax document's empty request objects).
    pub fn empty_body(&self) -> Result<(), ApiError> {
        let Some(body) = self
            .body
            .as_deref()
            .map(str::trim)
            .filter(|b| !b.is_empty())
        else {
            return Ok(());
        };
        match serde_json::from_str::<Value>(body) {
            Ok(Value::Object(fields)) if fields.is_empty() => Ok(()),
            Ok(Value::Object(fields)) => {
                let names: Vec<&String> = fields.keys().collect();
                Err(ApiError::bad_request(format!(
                    "the body takes no fields, got {names:?}"
                )))
            }
            _ => Err(ApiError::bad_request("the body must be empty or {}")),
        }
    }

    /// Who the request acts as, for the audit trail.
    pub fn actor(&self) -> String {
        self.principal.clone().unwrap_or_default()
    }

    /// A failure inside the service, logged with the request and answered without internals.
    pub fn internal(&self, e: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, request_id = self.request_id, route = self.route_key, "request failed inside the service");
        ApiError::internal(&self.request_id)
    }
}

/// A route's answer as the API Gateway v2 response.
pub fn v2_response(route_key: &str, result: Result<Value, ApiError>) -> ApiGatewayV2httpResponse {
    use aws_lambda_events::http::HeaderValue;
    let (status, body) = match result {
        Ok(body) => (200, body),
        Err(e) => {
            if e.status >= 500 {
                tracing::error!(route = route_key, error = %e, "request failed");
            } else {
                tracing::info!(route = route_key, error = %e, "request refused");
            }
            (e.status, serde_json::to_value(e.body()).unwrap_or_default())
        }
    };
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = i64::from(status);
    response
        .headers
        .insert("content-type", HeaderValue::from_static("application/json"));
    response.body = Some(Body::Text(body.to_string()));
    response
}

/// The Account Type a create or onboard request's `AccountType` names, if member accounts may
/// join it; 400 naming the field otherwise.
pub async fn member_account_type<S: AccountTypes>(
    store: &S,
    reference: &AccountTypeRef,
    req: &ApiRequest,
) -> Result<AccountType, ApiError> {
    let account_type = store
        .find_account_type(reference)
        .await
        .map_err(|e| req.internal(&e))?
        .ok_or_else(|| ApiError::bad_request(format!("AccountType: {reference}")))?;
    account_type
        .admits_member_accounts()
        .map_err(|e| ApiError::bad_request(format!("AccountType: {e}")))?;
    Ok(account_type)
}

/// 409 `FoundationNotReady` until a foundation bootstrap has completed (its accounts recorded,
/// the log buckets, GuardDuty's delegation and the SCP in place, the Security and Logging
/// accounts assured): an account created or onboarded before would miss its baseline's
/// destinations and protection.
pub async fn foundation_ready<S: FoundationStatus>(
    store: &S,
    req: &ApiRequest,
) -> Result<(), ApiError> {
    match store.foundation_completed().await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(ApiError::conflict(
            ErrorName::FoundationNotReady,
            "the foundation bootstrap has not completed yet; run it (the foundation state machine) first",
        )),
        Err(e) => Err(req.internal(&e)),
    }
}

/// Starts an operation on the account (see `AccountWrites::start_operation`), first taking over
/// what an abandoned operation left: a lock whose execution ended (or never began) without
/// releasing it, or an in-flight status without a lock (its workflow released the lock but could
/// not record its outcome). The account then is as the dead workflow's failure record would
/// have left it — ERROR with why, or ACTIVE again after a maintenance — the holder's task
/// FAILED, and the start is tried once more. Nothing is taken over when the operation asked
/// for would be refused afterwards too (nothing is written on a refusal), nor while the
/// holder's execution runs (`OperationInProgress`).
pub async fn start_operation_taking_over<S: AccountWrites, W: ExecutionStates>(
    store: &S,
    workflows: &W,
    account: Uuid,
    change: &AccountChange,
    task: &Task,
    actor: &str,
) -> Result<(), StoreError> {
    let refused = match store.start_operation(account, change, task, actor).await {
        Err(
            e @ StoreError::Lifecycle(
                LifecycleError::OperationInProgress { .. }
                | LifecycleError::TransitionRefused { .. },
            ),
        ) => e,
        other => return other,
    };
    let Some(current) = store.get_account(account).await? else {
        return Err(refused);
    };
    let status = current.value.status;
    let after = match status {
        AccountStatus::Maintenance => AccountStatus::Active,
        AccountStatus::Initializing | AccountStatus::Onboarding => AccountStatus::Error,
        // A lock held on a settled status: released, the status kept.
        other if current.value.user_task_id.is_some() => other,
        _ => return Err(refused),
    };
    let admitted = change
        .transition
        .as_ref()
        .is_some_and(|t| domain::lifecycle::is_allowed(t.trigger, Some(after), t.to));
    if !admitted {
        return Err(refused);
    }
    let (holder, reason) = match current.value.user_task_id {
        Some(holder) => {
            let Some(held) = store.get_task(holder).await? else {
                return Err(refused);
            };
            let Some(why) = abandoned(workflows, &held.value).await? else {
                return Err(refused);
            };
            (Some(held.value), format!("{why}; its lock was taken over"))
        }
        None => (
            None,
            format!(
                "the account was left {status} without a workflow (its last one could not record \
                 its outcome)"
            ),
        ),
    };
    tracing::warn!(%account, reason, "taking over what an abandoned operation left");
    match store
        .take_over(&current, holder.as_ref(), after, &reason, actor)
        .await
    {
        // Someone else moved first: the account is theirs now.
        Err(StoreError::Stale { .. }) => return Err(refused),
        other => other?,
    }
    store.start_operation(account, change, task, actor).await
}

/// Why the lock `held` holds is abandoned, or `None` while its execution may release it.
async fn abandoned<W: ExecutionStates>(
    workflows: &W,
    held: &Task,
) -> Result<Option<String>, StoreError> {
    let state = match &held.execution {
        Some(execution) => Some(
            workflows
                .execution_state(execution)
                .await
                .map_err(StoreError::Unavailable)?,
        ),
        None => None,
    };
    Ok(domain::abandoned(held, state.as_ref(), chrono::Utc::now()))
}

/// The caller's role, if it allows `needed`; 403 otherwise.
pub fn authorize(
    access: &AccessPolicy,
    principal: Option<&str>,
    needed: Permission,
) -> Result<AccessRole, ApiError> {
    let principal =
        principal.ok_or_else(|| ApiError::forbidden("the request carries no IAM identity"))?;
    match access.role_of(principal) {
        Some(role) if role.allows(needed) => Ok(role),
        Some(role) => Err(ApiError::forbidden(format!("role {role} may not do this"))),
        None => Err(ApiError::forbidden(format!(
            "{principal} has no role in this service"
        ))),
    }
}

/// The answer to an operation the account refused to start: 409 `OperationInProgress` while
/// another operation holds the account, `not_allowed(from)` when its status does not admit the
/// operation, `other(e)` for anything else (a 500, or a route's own conflict).
pub fn refused_operation(
    e: StoreError,
    not_allowed: impl FnOnce(Option<AccountStatus>) -> ApiError,
    other: impl FnOnce(StoreError) -> ApiError,
) -> ApiError {
    match e {
        StoreError::Lifecycle(LifecycleError::OperationInProgress { account, task }) => {
            ApiError::conflict(
                ErrorName::OperationInProgress,
                format!("account {account} has an operation in progress (task {task})"),
            )
        }
        StoreError::Lifecycle(LifecycleError::TransitionRefused { from, .. }) => not_allowed(from),
        e => other(e),
    }
}

/// Starts `workflow`'s execution named after `task` (so a retried request starts one). When it
/// cannot be started, `undo` records why on the account and the task — nothing is left waiting
/// for a workflow that never ran — and the request answers 500 without the internals.
pub async fn start_or_undo<W: StartWorkflow>(
    workflow: &W,
    what: &str,
    task: &Task,
    input: &Value,
    request_id: &str,
    undo: impl AsyncFnOnce(String) -> Result<(), StoreError>,
) -> Result<(), ApiError> {
    let Err(e) = workflow.start_workflow(&task.id.to_string(), input).await else {
        return Ok(());
    };
    tracing::error!(error = e, task = %task.id, "{what} did not start");
    if let Err(e) = undo(format!("{what} could not be started: {e}")).await {
        tracing::error!(error = %e, task = %task.id, "could not record the failed start");
    }
    Err(ApiError::internal(request_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::encodings::Body as EventBody;
    use serde_json::json;

    /// An API Gateway HTTP API (payload 2.0) event with IAM auth, as Lambda receives it.
    fn event(raw_query: &str, principal: Option<&str>) -> ApiGatewayV2httpRequest {
        let mut context = json!({
            "accountId": "123456789012", "apiId": "api", "domainName": "example.com",
            "domainPrefix": "api", "requestId": "r", "routeKey": "GET /20190206/accounts/{account_id}",
            "stage": "$default", "time": "27/Nov/2026:14:00:00 +0000", "timeEpoch": 0,
            "http": {"method": "GET", "path": "/20190206/accounts/x", "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "test"}
        });
        if let Some(arn) = principal {
            context["authorizer"] = json!({"iam": {"accessKey": "AKIA", "accountId": "123456789012",
                "callerId": "AIDA", "principalOrgId": null, "userArn": arn, "userId": "AIDA"}});
        }
        serde_json::from_value(json!({
            "version": "2.0",
            "routeKey": "GET /20190206/accounts/{account_id}",
            "rawPath": "/20190206/accounts/x",
            "rawQueryString": raw_query,
            "headers": {},
            "pathParameters": {"account_id": "x"},
            "requestContext": context,
            "body": "{\"Name\": \"a\"}",
            "isBase64Encoded": false
        }))
        .expect("a payload 2.0 event")
    }

    #[test]
    fn a_v2_event_becomes_the_request_its_route_sees() {
        let req = ApiRequest::from_v2_event(
            event(
                "filter=ACTIVE&filter=ERROR&name_filter=a%20b",
                Some("arn:aws:iam::123456789012:user/alice"),
            ),
            "req-1",
        );
        assert_eq!(req.route_key, "GET /20190206/accounts/{account_id}");
        assert_eq!(
            req.principal.as_deref(),
            Some("arn:aws:iam::123456789012:user/alice")
        );
        assert_eq!(req.path_param("account_id"), "x");
        assert_eq!(req.path_param("missing"), "");
        let mut query: Vec<_> = req.query_pairs().collect();
        query.sort();
        assert_eq!(
            query,
            [
                ("filter", "ACTIVE"),
                ("filter", "ERROR"),
                ("name_filter", "a b")
            ]
        );
        assert_eq!(req.body.as_deref(), Some("{\"Name\": \"a\"}"));
        assert_eq!(req.request_id, "req-1");

        let anonymous = ApiRequest::from_v2_event(event("", None), "req-2");
        assert_eq!(anonymous.principal, None);
        assert!(anonymous.query.is_empty());
    }

    #[test]
    fn a_query_parameter_the_route_does_not_take_is_a_400() {
        let req = ApiRequest::from_v2_event(event("limit=5&colour=red", None), "r");
        assert!(req.only_query(&["limit", "colour"]).is_ok());
        let e = req.only_query(&["limit"]).unwrap_err();
        assert_eq!((e.status, e.error), (400, ErrorName::ValidationError));
        assert!(e.cause.contains("colour"), "{}", e.cause);
    }

    #[test]
    fn answers_and_refusals_become_json_responses() {
        let ok = v2_response("GET /x", Ok(json!({"Accounts": []})));
        assert_eq!(ok.status_code, 200);
        assert_eq!(ok.headers["content-type"], "application/json");
        assert!(matches!(ok.body, Some(EventBody::Text(ref t)) if t == r#"{"Accounts":[]}"#));

        let refused = v2_response("GET /x", Err(ApiError::not_found("no task t")));
        assert_eq!(refused.status_code, 404);
        let Some(EventBody::Text(body)) = refused.body else {
            panic!("a text body")
        };
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body, json!({"Error": "NotFound", "Cause": "no task t"}));
    }

    #[test]
    fn only_a_mapped_principal_whose_role_allows_it_is_authorized() {
        let access = AccessPolicy::from_json(
            r#"{"arn:aws:iam::123456789012:user/ops": "operations",
                "arn:aws:iam::123456789012:user/viewer": "readonly"}"#,
        )
        .unwrap();
        let ops = Some("arn:aws:iam::123456789012:user/ops");
        let viewer = Some("arn:aws:iam::123456789012:user/viewer");
        assert_eq!(
            authorize(&access, ops, Permission::Mutate).unwrap(),
            AccessRole::Operations
        );
        assert_eq!(
            authorize(&access, viewer, Permission::Read).unwrap(),
            AccessRole::Readonly
        );
        for (principal, needed) in [
            (viewer, Permission::Mutate),
            (ops, Permission::Admin),
            (
                Some("arn:aws:iam::123456789012:user/stranger"),
                Permission::Read,
            ),
            (None, Permission::Read),
        ] {
            let e = authorize(&access, principal, needed).unwrap_err();
            assert_eq!(
                (e.status, e.error),
                (403, ErrorName::Forbidden),
                "{principal:?}"
            );
        }
    }

    #[test]
    fn a_refused_operation_is_a_409_that_names_the_refusal() {
        use domain::Trigger;
        let id = |name| domain::fixtures::account_in(AccountStatus::Active, name, None).id;
        let (account, task) = (id("a"), id("b"));
        let busy = StoreError::Lifecycle(LifecycleError::OperationInProgress { account, task });
        let e = refused_operation(busy, |_| unreachable!(), |_| unreachable!());
        assert_eq!((e.status, e.error), (409, ErrorName::OperationInProgress));
        assert!(e.cause.contains(&task.to_string()));

        let refused = StoreError::Lifecycle(LifecycleError::TransitionRefused {
            trigger: Trigger::StartMaintenance,
            from: Some(AccountStatus::Discovered),
            to: AccountStatus::Maintenance,
        });
        let e = refused_operation(
            refused,
            |from| ApiError::conflict(ErrorName::NotAssurable, format!("{from:?}")),
            |_| unreachable!(),
        );
        assert_eq!(
            (e.error, e.cause.as_str()),
            (ErrorName::NotAssurable, "Some(Discovered)")
        );

        let other = StoreError::Unavailable("timeout".into());
        let e = refused_operation(other, |_| unreachable!(), |_| ApiError::internal("req-9"));
        assert_eq!(e.status, 500);
    }

    #[test]
    fn an_empty_body_is_absent_blank_or_an_empty_object() {
        let with = |body: Option<&str>| ApiRequest {
            body: body.map(str::to_owned),
            ..ApiRequest::default()
        };
        for ok in [None, Some(""), Some("  "), Some("{}"), Some("{ }")] {
            assert!(with(ok).empty_body().is_ok(), "{ok:?}");
        }
        let e = with(Some(r#"{"Force": true}"#)).empty_body().unwrap_err();
        assert_eq!(e.cause, r#"the body takes no fields, got ["Force"]"#);
        for bad in ["[]", "x", "null"] {
            let e = with(Some(bad)).empty_body().unwrap_err();
            assert_eq!(
                (e.status, e.cause.as_str()),
                (400, "the body must be empty or {}")
            );
        }
    }

    #[test]
    fn a_base64_body_is_decoded() {
        let mut e = event("", None);
        e.body = Some("eyJOYW1lIjogImEifQ==".into());
        e.is_base64_encoded = true;
        let req = ApiRequest::from_v2_event(e, "r");
        assert_eq!(req.body.as_deref(), Some("{\"Name\": \"a\"}"));
    }
}
