//! The HTTP API as API Gateway (HTTP API, IAM auth, payload format 2.0) presents it to Lambda.
//!
//! Routing is axum's (API Gateway's `{param}` syntax is axum's too). The caller's identity comes
//! from the SigV4 `Authorization` header's access key, resolved to a principal by the emulator's
//! STS `GetCallerIdentity`; the signature itself is not verified locally. Unsigned requests are
//! treated as signed by `anonymous_principal` when one is configured, so `curl` works.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerIamDescription,
    ApiGatewayV2httpRequest, ApiGatewayV2httpRequestContext,
    ApiGatewayV2httpRequestContextHttpDescription, ApiGatewayV2httpResponse,
};
use aws_lambda_events::encodings::Body as EventBody;
use aws_lambda_events::query_map::QueryMap;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, RawPathParams, Request};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use serde::Deserialize;

use crate::Functions;
use crate::runtime::Outcome;

#[derive(Debug, Clone, Deserialize)]
pub struct Route {
    pub method: String,
    /// API Gateway route path, e.g. `/20190206/accounts/{account_id}`.
    pub path: String,
    pub function: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HttpApiConfig {
    pub routes: Vec<Route>,
    /// Principal ARN for requests without a SigV4 signature; none = they carry no identity.
    #[serde(default)]
    pub anonymous_principal: Option<String>,
    /// Where `GetCallerIdentity` resolves signed callers (the emulator).
    pub sts_endpoint: String,
    #[serde(default = "default_api_id")]
    pub api_id: String,
}

fn default_api_id() -> String {
    "local".into()
}

/// A caller as the IAM authorizer reports it.
#[derive(Debug, Clone)]
struct Caller {
    access_key: Option<String>,
    account_id: String,
    user_arn: String,
    user_id: String,
}

struct Shared {
    functions: Functions,
    config: HttpApiConfig,
    account_id: String,
    callers: Mutex<HashMap<String, Caller>>,
}

pub async fn router(
    config: HttpApiConfig,
    functions: Functions,
    account_id: &str,
) -> Result<Router, String> {
    for route in &config.routes {
        if functions.get(&route.function).is_none() {
            return Err(format!(
                "route {} {} names unknown function {}",
                route.method, route.path, route.function
            ));
        }
    }
    let shared = Arc::new(Shared {
        functions,
        config: config.clone(),
        account_id: account_id.to_owned(),
        callers: Mutex::new(HashMap::new()),
    });
    // One method router per path, so GET and POST on the same path coexist.
    let mut by_path: BTreeMap<String, MethodRouter> = BTreeMap::new();
    for route in config.routes {
        let method: Method = route
            .method
            .parse()
            .map_err(|_| format!("bad method {}", route.method))?;
        let filter = MethodFilter::try_from(method.clone()).map_err(|e| e.to_string())?;
        let path = axum_path(&route.path);
        let route_key = format!("{} {}", route.method, route.path);
        let function = route.function.clone();
        let shared = shared.clone();
        let handler = move |ConnectInfo(peer): ConnectInfo<SocketAddr>,
                            params: RawPathParams,
                            request: Request| {
            let shared = shared.clone();
            let route_key = route_key.clone();
            let function = function.clone();
            async move { forward(&shared, &route_key, &function, peer, params, request).await }
        };
        let entry = by_path.remove(&path).unwrap_or_default();
        by_path.insert(path, entry.on(filter, handler));
    }
    let mut router = Router::new();
    for (path, methods) in by_path {
        router = router.route(&path, methods);
    }
    Ok(router.fallback(|| async {
        (
            StatusCode::NOT_FOUND,
            [("content-type", "application/json")],
            r#"{"message":"Not Found"}"#,
        )
    }))
}

async fn forward(
    shared: &Shared,
    route_key: &str,
    function: &str,
    peer: SocketAddr,
    params: RawPathParams,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, 6 * 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                r#"{"message":"Request Too Long"}"#,
            )
                .into_response();
        }
    };
    let caller = match caller(shared, &parts.headers).await {
        Ok(c) => c,
        Err(message) => {
            let body = serde_json::json!({ "message": message }).to_string();
            return (
                StatusCode::FORBIDDEN,
                [("content-type", "application/json")],
                body,
            )
                .into_response();
        }
    };
    let event = event(
        shared,
        route_key,
        &parts.method,
        &parts.uri,
        &parts.headers,
        peer,
        &params,
        caller,
        body,
    );
    let payload = Bytes::from(serde_json::to_vec(&event).expect("the event serialises"));
    let pool = shared
        .functions
        .get(function)
        .expect("routes were checked at start-up")
        .clone();
    match pool.invoke(payload).await {
        Outcome::Ok(body) => response(&body),
        Outcome::FunctionError { body } => {
            tracing::error!(route_key, error = %String::from_utf8_lossy(&body), "integration failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [("content-type", "application/json")],
                r#"{"message":"Internal Server Error"}"#,
            )
                .into_response()
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn event(
    shared: &Shared,
    route_key: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    peer: SocketAddr,
    params: &RawPathParams,
    caller: Option<Caller>,
    body: Bytes,
) -> ApiGatewayV2httpRequest {
    let now = chrono::Utc::now();
    let mut http = ApiGatewayV2httpRequestContextHttpDescription::default();
    http.method = method.clone();
    http.path = Some(uri.path().to_owned());
    http.protocol = Some("HTTP/1.1".into());
    http.source_ip = Some(peer.ip().to_string());
    http.user_agent = headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);

    let mut context = ApiGatewayV2httpRequestContext::default();
    context.route_key = Some(route_key.to_owned());
    context.account_id = Some(shared.account_id.clone());
    context.stage = Some("$default".into());
    context.request_id = Some(uuid::Uuid::new_v4().to_string());
    context.apiid = Some(shared.config.api_id.clone());
    context.domain_name = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    context.time = Some(now.format("%d/%b/%Y:%H:%M:%S %z").to_string());
    context.time_epoch = now.timestamp_millis();
    context.http = http;
    if let Some(caller) = caller {
        let mut iam = ApiGatewayRequestAuthorizerIamDescription::default();
        iam.access_key = caller.access_key;
        iam.account_id = Some(caller.account_id);
        iam.caller_id = Some(caller.user_id.clone());
        iam.user_arn = Some(caller.user_arn);
        iam.user_id = Some(caller.user_id);
        let mut authorizer = ApiGatewayRequestAuthorizer::default();
        authorizer.iam = Some(iam);
        context.authorizer = Some(authorizer);
    }

    let raw_query = uri.query().unwrap_or_default().to_owned();
    let mut event = ApiGatewayV2httpRequest::default();
    event.version = Some("2.0".into());
    event.route_key = Some(route_key.to_owned());
    event.raw_path = Some(uri.path().to_owned());
    event.query_string_parameters = raw_query.parse::<QueryMap>().unwrap_or_default();
    event.raw_query_string = Some(raw_query);
    event.headers = headers.clone();
    event.path_parameters = params
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    event.request_context = context;
    if !body.is_empty() {
        event.body = Some(String::from_utf8_lossy(&body).into_owned());
    }
    event
}

/// API Gateway's greedy `{name+}` is axum's `{*name}`; `{name}` is the same in both.
fn axum_path(path: &str) -> String {
    path.split('/')
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix("+}")) {
                Some(name) => format!("{{*{name}}}"),
                None => segment.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

/// Translates the function's API Gateway v2 response back to HTTP.
fn response(body: &[u8]) -> Response {
    let parsed: ApiGatewayV2httpResponse = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "the function's response is not an API Gateway v2 response");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                r#"{"message":"Internal Server Error"}"#,
            )
                .into_response();
        }
    };
    let status = StatusCode::from_u16(parsed.status_code as u16)
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = Response::builder().status(status);
    for (name, value) in parsed.headers.iter() {
        out = out.header(name, value);
    }
    for cookie in &parsed.cookies {
        if let Ok(v) = HeaderValue::from_str(cookie) {
            out = out.header("set-cookie", v);
        }
    }
    let body = match parsed.body {
        Some(EventBody::Text(t)) => Body::from(t),
        Some(EventBody::Binary(b)) => Body::from(b),
        _ => Body::empty(),
    };
    out.body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The caller of a request, as API Gateway's IAM authorizer would establish it.
async fn caller(shared: &Shared, headers: &HeaderMap) -> Result<Option<Caller>, String> {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
    let Some(access_key) = authorization.and_then(sigv4_access_key) else {
        if authorization.is_some() {
            return Err("Authorization header requires 'Credential' parameter.".into());
        }
        return Ok(shared
            .config
            .anonymous_principal
            .as_ref()
            .map(|arn| Caller {
                access_key: None,
                account_id: arn.split(':').nth(4).unwrap_or_default().to_owned(),
                user_arn: arn.clone(),
                user_id: "ANONYMOUS".into(),
            }));
    };
    if let Some(known) = shared.callers.lock().unwrap().get(&access_key) {
        return Ok(Some(known.clone()));
    }
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(aws_sdk_sts::config::Region::new("us-east-1"))
            .endpoint_url(&shared.config.sts_endpoint)
            .credentials_provider(aws_sdk_sts::config::Credentials::new(
                &access_key,
                "the local stack does not verify signatures",
                None,
                None,
                "local-host",
            ))
            .build(),
    );
    let identity = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| format!("The security token included in the request is invalid ({e})"))?;
    let caller = Caller {
        access_key: Some(access_key.clone()),
        account_id: identity.account.unwrap_or_default(),
        user_arn: identity.arn.unwrap_or_default(),
        user_id: identity.user_id.unwrap_or_default(),
    };
    shared
        .callers
        .lock()
        .unwrap()
        .insert(access_key, caller.clone());
    Ok(Some(caller))
}

/// The access key id of a SigV4 `Authorization` header
/// (`AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/execute-api/aws4_request, …`).
fn sigv4_access_key(authorization: &str) -> Option<String> {
    let rest = authorization.strip_prefix("AWS4-HMAC-SHA256")?;
    rest.split(',')
        .map(str::trim)
        .find_map(|part| part.strip_prefix("Credential="))
        .and_then(|credential| credential.split('/').next())
        .filter(|key| !key.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_route_parameters_become_wildcards() {
        assert_eq!(
            axum_path("/20190206/accounts/{account_id}"),
            "/20190206/accounts/{account_id}"
        );
        assert_eq!(axum_path("/files/{proxy+}"), "/files/{*proxy}");
    }

    #[test]
    fn reads_the_access_key_of_a_sigv4_header() {
        let h = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/execute-api/aws4_request, \
                 SignedHeaders=host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
        assert_eq!(sigv4_access_key(h).as_deref(), Some("AKIDEXAMPLE"));
        assert_eq!(sigv4_access_key("Bearer abc"), None);
        assert_eq!(
            sigv4_access_key("AWS4-HMAC-SHA256 SignedHeaders=host"),
            None
        );
    }
}
