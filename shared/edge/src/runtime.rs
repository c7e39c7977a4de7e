//! How a function meets the Lambda runtime: its events come in typed, its answers go out, and
//! its failures go out under their names in the error vocabulary — the `errorType` the state
//! machines' `Retry` and `Catch` match. A function's `main` is tracing, configuration, clients,
//! and one of [`run`], [`run_http`] or [`run_with_http`].

use std::future::Future;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use domain::{ErrorName, Named};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::{ApiError, ApiRequest, v2_response};

pub use lambda_runtime::Error;

/// Logging for a function: the Lambda runtime's subscriber, which honours `AWS_LAMBDA_LOG_LEVEL`
/// and `AWS_LAMBDA_LOG_FORMAT` (JSON in the cloud).
pub fn init_tracing() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// A handler's failure as the runtime reports it: `errorType` is the error's name,
/// `errorMessage` its text. Every named error converts into one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub name: ErrorName,
    pub message: String,
}

impl<E: Named> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            name: e.name(),
            message: e.to_string(),
        }
    }
}

impl From<Failure> for Diagnostic {
    fn from(f: Failure) -> Self {
        Diagnostic {
            error_type: f.name.as_str().to_owned(),
            error_message: f.message,
        }
    }
}

impl Failure {
    fn unknown_event(e: serde_json::Error, payload: &Value) -> Self {
        let mut shown = payload.to_string();
        shown.truncate(500);
        Failure {
            name: ErrorName::UnknownEvent,
            message: format!("an event this function does not handle ({e}): {shown}"),
        }
    }
}

/// What reached a function that takes both HTTP requests and events of type `E`.
#[derive(Debug)]
pub enum Incoming<E> {
    Http(ApiRequest),
    Event(E),
}

impl<E: DeserializeOwned> Incoming<E> {
    /// An API Gateway HTTP API (payload 2.0) request, or else an `E`.
    pub fn parse(payload: Value, request_id: &str) -> Result<Self, Failure> {
        let http = payload.get("version").and_then(Value::as_str) == Some("2.0")
            && payload.get("routeKey").is_some()
            && payload.get("requestContext").is_some();
        if http {
            let event: ApiGatewayV2httpRequest = serde_json::from_value(payload.clone())
                .map_err(|e| Failure::unknown_event(e, &payload))?;
            return Ok(Incoming::Http(ApiRequest::from_v2_event(event, request_id)));
        }
        serde_json::from_value(payload.clone())
            .map(Incoming::Event)
            .map_err(|e| Failure::unknown_event(e, &payload))
    }
}

/// Runs a function whose events are `E` (a state machine's step, a schedule's input, …):
/// `handle`'s answer goes back serialised, its error under its name.
pub async fn run<E, R, Err, H, Fut>(handle: H) -> Result<(), Error>
where
    E: DeserializeOwned,
    R: Serialize,
    Err: Named,
    H: Fn(E) -> Fut,
    Fut: Future<Output = Result<R, Err>>,
{
    let handle = &handle;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let input: E = serde_json::from_value(event.payload.clone())
            .map_err(|e| Failure::unknown_event(e, &event.payload))?;
        // Boxed: a handler's future nests the store's and the SDK's, deeper than the compiler
        // lays out inline; one allocation per event keeps the runtime's own future small.
        Box::pin(handle(input)).await.map_err(Failure::from)
    }))
    .await
}

/// Runs an HTTP API function: every request goes to `route`; its answer, or its refusal as
/// `{"Error", "Cause"}` with the refusal's status, goes back.
pub async fn run_http<H, Fut>(route: H) -> Result<(), Error>
where
    H: Fn(ApiRequest) -> Fut,
    Fut: Future<Output = Result<Value, ApiError>>,
{
    run_with_http(route, no_event).await
}

/// The events of a function that takes nothing but HTTP API requests: none.
#[derive(Debug)]
enum NoEvent {}

impl<'de> Deserialize<'de> for NoEvent {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom(
            "this function takes only API Gateway HTTP API requests",
        ))
    }
}

async fn no_event(never: NoEvent) -> Result<Value, Failure> {
    match never {}
}

/// Runs a function that takes HTTP API requests (to `route`) and events of type `E` (to
/// `handle`).
pub async fn run_with_http<E, R, Err, Hr, FutR, He, FutE>(
    route: Hr,
    handle: He,
) -> Result<(), Error>
where
    E: DeserializeOwned,
    R: Serialize,
    Err: Into<Failure>,
    Hr: Fn(ApiRequest) -> FutR,
    FutR: Future<Output = Result<Value, ApiError>>,
    He: Fn(E) -> FutE,
    FutE: Future<Output = Result<R, Err>>,
{
    let (route, handle) = (&route, &handle);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        match Incoming::<E>::parse(event.payload, &event.context.request_id)? {
            Incoming::Http(req) => {
                let route_key = req.route_key.clone();
                // Boxed, as in `run`.
                let answer = Box::pin(route(req)).await;
                Ok::<Value, Failure>(
                    serde_json::to_value(v2_response(&route_key, answer)).unwrap_or_default(),
                )
            }
            Incoming::Event(e) => {
                let answer = Box::pin(handle(e)).await.map_err(Into::into)?;
                Ok(serde_json::to_value(answer).unwrap_or_default())
            }
        }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(tag = "Action")]
    enum Step {
        Run {
            #[serde(rename = "TaskId")]
            task: String,
        },
    }

    #[test]
    fn an_http_request_and_an_event_are_told_apart() {
        let http = json!({
            "version": "2.0", "routeKey": "POST /20190206/accounts/discover",
            "rawPath": "/20190206/accounts/discover", "rawQueryString": "",
            "headers": {}, "isBase64Encoded": false,
            "requestContext": {"accountId": "123456789012", "apiId": "api", "domainName": "x",
                "domainPrefix": "x", "requestId": "r", "routeKey": "POST /20190206/accounts/discover",
                "stage": "$default", "time": "t", "timeEpoch": 0,
                "http": {"method": "POST", "path": "/20190206/accounts/discover",
                         "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "t"}}
        });
        match Incoming::<Step>::parse(http, "req-1").unwrap() {
            Incoming::Http(req) => {
                assert_eq!(req.route_key, "POST /20190206/accounts/discover");
                assert_eq!(req.request_id, "req-1");
            }
            other => panic!("an HTTP request, got {other:?}"),
        }
        match Incoming::<Step>::parse(json!({"Action": "Run", "TaskId": "t"}), "r").unwrap() {
            Incoming::Event(step) => assert_eq!(step, Step::Run { task: "t".into() }),
            other => panic!("an event, got {other:?}"),
        }
    }

    #[test]
    fn an_event_of_no_known_shape_is_an_unknown_event() {
        let f = Incoming::<Step>::parse(json!({"Action": "Dance"}), "r").unwrap_err();
        assert_eq!(f.name, ErrorName::UnknownEvent);
        assert!(f.message.contains("Dance"), "{}", f.message);
    }

    #[test]
    fn a_named_error_goes_out_under_its_name() {
        let f = Failure::from(store::StoreError::Unavailable("timeout".into()));
        let d = Diagnostic::from(f);
        assert_eq!(d.error_type, "StoreUnavailable");
        assert_eq!(d.error_message, "the account store is unavailable: timeout");
    }
}
