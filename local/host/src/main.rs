//! The local stack's Lambda and API Gateway stand-in.
//!
//! `local-host --config host.json` serves, on loopback:
//! - the Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`), which the emulator
//!   forwards its `Invoke` calls to, so state machines run the real handlers;
//! - the HTTP API: each route of `template.yaml` becomes an API Gateway v2 (payload 2.0) event
//!   for its function, with the caller's IAM identity in `requestContext.authorizer.iam`.
//!
//! It prints one JSON line with both addresses when it is ready, and stops its function
//! processes when it is told to stop or its parent goes away.

mod http_api;
mod runtime;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use tokio::net::TcpListener;

use crate::runtime::{FunctionSpec, Outcome, Pool};

#[derive(Debug, Deserialize)]
struct Config {
    /// Logical id (the function name locally) → how to run it.
    functions: BTreeMap<String, FunctionSpec>,
    http_api: http_api::HttpApiConfig,
    /// Environment every function instance starts with (endpoint, region, credentials).
    #[serde(default)]
    base_env: BTreeMap<String, String>,
    /// Account and region for the ARNs the host reports.
    account_id: String,
    region: String,
}

#[derive(Clone)]
pub struct Functions {
    pools: Arc<HashMap<String, Arc<Pool>>>,
}

impl Functions {
    pub fn get(&self, name_or_arn: &str) -> Option<&Arc<Pool>> {
        // `arn:aws:lambda:region:account:function:Name[:qualifier]` or a plain name.
        let name = match name_or_arn.split(':').collect::<Vec<_>>().as_slice() {
            ["arn", _, "lambda", _, _, "function", name, ..] => *name,
            _ => name_or_arn,
        };
        self.pools.get(name)
    }
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOCAL_HOST_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = serve().await {
        eprintln!("local-host: {e}");
        std::process::exit(1);
    }
}

async fn serve() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let path = match args.as_slice() {
        [_, flag, path] if flag == "--config" => path,
        _ => return Err("usage: local-host --config FILE".into()),
    };
    let raw = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let config: Config = serde_json::from_str(&raw).map_err(|e| format!("{path}: {e}"))?;

    let mut pools = HashMap::new();
    for (name, spec) in config.functions {
        let arn = format!(
            "arn:aws:lambda:{}:{}:function:{name}",
            config.region, config.account_id
        );
        pools.insert(
            name.clone(),
            Pool::new(&name, spec, config.base_env.clone(), arn),
        );
    }
    let functions = Functions {
        pools: Arc::new(pools),
    };

    let invoke_listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let http_listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let invoke_addr = invoke_listener.local_addr().map_err(|e| e.to_string())?;
    let http_addr = http_listener.local_addr().map_err(|e| e.to_string())?;

    let invoke_app = Router::new()
        .route("/2015-03-31/functions/{function}/invocations", post(invoke))
        .with_state(functions.clone());
    let http_app = http_api::router(config.http_api, functions.clone(), &config.account_id).await?;

    println!(
        "{}",
        serde_json::json!({"invoke_url": format!("http://{invoke_addr}"), "api_url": format!("http://{http_addr}")})
    );

    let stop = shutdown_signal();
    tokio::select! {
        r = axum::serve(invoke_listener, invoke_app) => r.map_err(|e| e.to_string())?,
        r = axum::serve(http_listener, http_app.into_make_service_with_connect_info::<std::net::SocketAddr>()) => r.map_err(|e| e.to_string())?,
        reason = stop => tracing::info!(reason, "stopping"),
    }
    for pool in functions.pools.values() {
        pool.kill_all();
    }
    // Give the watchers a moment to reap the processes they were asked to kill.
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(())
}

/// Resolves on SIGINT, SIGTERM, or when the process that started the host has gone (so a killed
/// local stack never leaves a host behind).
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let parent = std::os::unix::process::parent_id();
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    let orphaned = async move {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if std::os::unix::process::parent_id() != parent {
                return;
            }
        }
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
        () = orphaned => "parent exited",
    }
}

/// `POST /2015-03-31/functions/{function}/invocations` (RequestResponse and Event).
async fn invoke(
    State(functions): State<Functions>,
    Path(function): Path<String>,
    headers: HeaderMap,
    payload: Bytes,
) -> Response {
    let Some(pool) = functions.get(&function).cloned() else {
        let body = serde_json::json!({"Type": "User", "Message": format!("Function not found: {function}")});
        return (
            StatusCode::NOT_FOUND,
            [("x-amzn-errortype", "ResourceNotFoundException")],
            body.to_string(),
        )
            .into_response();
    };
    let invocation_type = headers
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if invocation_type == "Event" {
        tokio::spawn(async move {
            if let Outcome::FunctionError { body } = pool.invoke(payload).await {
                tracing::warn!(function, error = %String::from_utf8_lossy(&body), "asynchronous invocation failed");
            }
        });
        return StatusCode::ACCEPTED.into_response();
    }
    match pool.invoke(payload).await {
        Outcome::Ok(body) => {
            (StatusCode::OK, [("content-type", "application/json")], body).into_response()
        }
        Outcome::FunctionError { body } => (
            StatusCode::OK,
            [
                ("content-type", "application/json"),
                ("x-amz-function-error", "Unhandled"),
            ],
            body,
        )
            .into_response(),
    }
}
