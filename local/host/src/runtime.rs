//! Runs a function's real release/debug binary the way Lambda does: each instance is a process
//! that polls its own Lambda Runtime API endpoint (`AWS_LAMBDA_RUNTIME_API`) for events.
//!
//! A pool per function keeps warm instances and starts a new one when all are busy, up to the
//! function's concurrency. An instance that exits mid-invocation, fails its init or overruns the
//! function's timeout fails that invocation with the error Lambda would report.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::sync::{Semaphore, mpsc, oneshot};

/// How a function is run (from `template.yaml`, resolved by the local stack).
#[derive(Debug, Clone, Deserialize)]
pub struct FunctionSpec {
    pub binary: String,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub timeout_seconds: u64,
    pub memory_mb: u64,
    /// Instances that may run at once; further invocations wait for one to be free.
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
}

fn default_concurrency() -> usize {
    8
}

/// The result of one invocation.
#[derive(Debug)]
pub enum Outcome {
    /// The handler's response body.
    Ok(Bytes),
    /// The handler or its runtime failed; `body` is `{"errorType", "errorMessage"}`.
    FunctionError { body: Bytes },
}

struct Invocation {
    request_id: String,
    payload: Bytes,
    deadline_ms: u128,
    reply: oneshot::Sender<Outcome>,
}

fn error_body(error_type: &str, message: &str) -> Bytes {
    Bytes::from(serde_json::json!({"errorType": error_type, "errorMessage": message}).to_string())
}

struct Instance {
    id: u64,
    inbox: mpsc::Sender<Invocation>,
    next: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    /// The invocation the instance is working on.
    current: Mutex<Option<(String, oneshot::Sender<Outcome>)>>,
    /// Taken by a dispatcher (false only while the instance waits in `/next` with nothing queued).
    busy: AtomicBool,
    dead: AtomicBool,
    init_error: Mutex<Option<String>>,
    /// Asks the watcher task, which owns the process, to kill it.
    kill: tokio::sync::Notify,
    pool: Arc<Pool>,
}

pub struct Pool {
    name: String,
    spec: FunctionSpec,
    /// The caller's environment for every instance (AWS endpoint, region, credentials).
    base_env: BTreeMap<String, String>,
    arn: String,
    idle: Mutex<Vec<Arc<Instance>>>,
    slots: Semaphore,
    next_id: AtomicU64,
    instances: Mutex<Vec<Arc<Instance>>>,
}

impl Pool {
    pub fn new(
        name: &str,
        spec: FunctionSpec,
        base_env: BTreeMap<String, String>,
        arn: String,
    ) -> Arc<Self> {
        Arc::new(Pool {
            name: name.to_owned(),
            slots: Semaphore::new(spec.max_concurrency.max(1)),
            spec,
            base_env,
            arn,
            idle: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            instances: Mutex::new(Vec::new()),
        })
    }

    /// Runs one invocation to completion on a warm or new instance.
    pub async fn invoke(self: &Arc<Self>, payload: Bytes) -> Outcome {
        let _slot = self
            .slots
            .acquire()
            .await
            .expect("the pool's semaphore is never closed");
        let request_id = uuid::Uuid::new_v4().to_string();
        let timeout = Duration::from_secs(self.spec.timeout_seconds);
        let deadline_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
            + timeout.as_millis();
        let (reply, outcome) = oneshot::channel();
        let invocation = Invocation {
            request_id: request_id.clone(),
            payload,
            deadline_ms,
            reply,
        };
        let instance = match self.take_idle() {
            Some(instance) => {
                if instance.inbox.send(invocation).await.is_err() {
                    return Outcome::FunctionError {
                        body: error_body("Runtime.ExitError", "instance exited"),
                    };
                }
                instance
            }
            None => match self.start_instance(invocation).await {
                Ok(instance) => instance,
                Err(e) => {
                    return Outcome::FunctionError {
                        body: error_body("Runtime.InitError", &e),
                    };
                }
            },
        };
        match tokio::time::timeout(timeout, outcome).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Outcome::FunctionError {
                body: error_body("Runtime.ExitError", "instance exited"),
            },
            Err(_) => {
                tracing::warn!(
                    function = self.name,
                    instance = instance.id,
                    "timed out; stopping the instance"
                );
                instance.kill();
                Outcome::FunctionError {
                    body: error_body(
                        "Sandbox.Timedout",
                        &format!("Task timed out after {:.2} seconds", timeout.as_secs_f64()),
                    ),
                }
            }
        }
    }

    fn take_idle(&self) -> Option<Arc<Instance>> {
        let mut idle = self.idle.lock().unwrap();
        while let Some(instance) = idle.pop() {
            if !instance.dead.load(Ordering::SeqCst)
                && instance
                    .busy
                    .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            {
                return Some(instance);
            }
        }
        None
    }

    /// Starts a process with `first` already in its inbox, so its first poll finds it.
    async fn start_instance(self: &Arc<Self>, first: Invocation) -> Result<Arc<Instance>, String> {
        let (inbox, next) = mpsc::channel(1);
        inbox
            .send(first)
            .await
            .map_err(|_| "inbox closed".to_owned())?;
        let instance = Arc::new(Instance {
            id: self.next_id.fetch_add(1, Ordering::SeqCst),
            inbox,
            next: tokio::sync::Mutex::new(next),
            current: Mutex::new(None),
            busy: AtomicBool::new(true),
            dead: AtomicBool::new(false),
            init_error: Mutex::new(None),
            kill: tokio::sync::Notify::new(),
            pool: self.clone(),
        });
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let runtime_api = listener.local_addr().map_err(|e| e.to_string())?;
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_event))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route(
                "/2018-06-01/runtime/invocation/{id}/error",
                post(invocation_error),
            )
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(instance.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });

        let mut command = Command::new(&self.spec.binary);
        command
            .env_clear()
            .envs(&self.base_env)
            .envs(&self.spec.env)
            .env("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &self.name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                self.spec.memory_mb.to_string(),
            )
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", self.name),
            )
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                format!("local/{}", instance.id),
            )
            .env("AWS_LAMBDA_FUNCTION_ARN", &self.arn)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.spec.binary))?;
        self.instances.lock().unwrap().push(instance.clone());
        let label = format!("{}#{}", self.name, instance.id);
        if let Some(out) = child.stdout.take() {
            tokio::spawn(forward_lines(label.clone(), out));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(forward_lines(label.clone(), err));
        }
        tracing::info!(function = self.name, instance = instance.id, %runtime_api, "instance started");
        let watched = instance.clone();
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status,
                () = watched.kill.notified() => {
                    let _ = child.start_kill();
                    child.wait().await
                }
            };
            server.abort();
            watched
                .on_exit(
                    status
                        .map(|s| s.to_string())
                        .unwrap_or_else(|e| e.to_string()),
                )
                .await;
        });
        Ok(instance)
    }

    /// Stops every instance (host shutdown).
    pub fn kill_all(&self) {
        for instance in self.instances.lock().unwrap().drain(..) {
            instance.kill();
        }
    }
}

impl Instance {
    fn kill(&self) {
        self.dead.store(true, Ordering::SeqCst);
        // `notify_one` stores a permit, so a kill asked for before the watcher waits still counts.
        self.kill.notify_one();
    }

    async fn on_exit(self: &Arc<Self>, status: String) {
        self.dead.store(true, Ordering::SeqCst);
        let init_error = self.init_error.lock().unwrap().clone();
        let message = match &init_error {
            Some(e) => format!("the instance failed to start: {e}"),
            None => format!("the instance exited: {status}"),
        };
        let kind = if init_error.is_some() {
            "Runtime.InitError"
        } else {
            "Runtime.ExitError"
        };
        tracing::info!(function = self.pool.name, instance = self.id, %status, "instance exited");
        self.pool
            .instances
            .lock()
            .unwrap()
            .retain(|i| i.id != self.id);
        if let Some((_, reply)) = self.current.lock().unwrap().take() {
            let _ = reply.send(Outcome::FunctionError {
                body: error_body(kind, &message),
            });
        }
        let mut next = self.next.lock().await;
        next.close();
        while let Ok(queued) = next.try_recv() {
            let _ = queued.reply.send(Outcome::FunctionError {
                body: error_body(kind, &message),
            });
        }
    }
}

async fn forward_lines(label: String, stream: impl tokio::io::AsyncRead + Unpin) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        eprintln!("[{label}] {line}");
    }
}

async fn next_event(State(instance): State<Arc<Instance>>) -> Response {
    let mut next = instance.next.lock().await;
    let invocation = match next.try_recv() {
        Ok(invocation) => invocation,
        Err(_) => {
            instance.busy.store(false, Ordering::SeqCst);
            instance.pool.idle.lock().unwrap().push(instance.clone());
            match next.recv().await {
                Some(invocation) => invocation,
                None => return StatusCode::GONE.into_response(),
            }
        }
    };
    drop(next);
    *instance.current.lock().unwrap() = Some((invocation.request_id.clone(), invocation.reply));
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set("lambda-runtime-aws-request-id", invocation.request_id);
    set(
        "lambda-runtime-deadline-ms",
        invocation.deadline_ms.to_string(),
    );
    set(
        "lambda-runtime-invoked-function-arn",
        instance.pool.arn.clone(),
    );
    set(
        "lambda-runtime-trace-id",
        format!("Root=1-{:x}-local", invocation.deadline_ms),
    );
    set("content-type", "application/json".into());
    (headers, invocation.payload).into_response()
}

fn finish(instance: &Instance, id: &str, outcome: Outcome) -> StatusCode {
    let mut current = instance.current.lock().unwrap();
    match current.take() {
        Some((current_id, reply)) if current_id == id => {
            let _ = reply.send(outcome);
            StatusCode::ACCEPTED
        }
        other => {
            *current = other;
            StatusCode::BAD_REQUEST
        }
    }
}

async fn response(
    State(instance): State<Arc<Instance>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    finish(&instance, &id, Outcome::Ok(body))
}

async fn invocation_error(
    State(instance): State<Arc<Instance>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let body = if serde_json::from_slice::<serde_json::Value>(&body)
        .is_ok_and(|v| v.get("errorType").is_some())
    {
        body
    } else {
        let kind = headers
            .get("lambda-runtime-function-error-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("Unhandled");
        error_body(kind, &String::from_utf8_lossy(&body))
    };
    finish(&instance, &id, Outcome::FunctionError { body })
}

async fn init_error(State(instance): State<Arc<Instance>>, body: Bytes) -> StatusCode {
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v.get("errorMessage")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    tracing::error!(
        function = instance.pool.name,
        instance = instance.id,
        message,
        "init error"
    );
    *instance.init_error.lock().unwrap() = Some(message);
    StatusCode::ACCEPTED
}
