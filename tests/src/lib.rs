//! Test harness: starts the local stack (`local/stack.py up --json`) on free loopback ports and
//! gives tests SDK clients, a signed API client and helpers for it.
//!
//! The stack stops when its standard input closes: when a [`Stack`] is dropped, or when the test
//! process ends however it ends, so no emulator or host outlives the run.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, SystemTime};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
use aws_sdk_sfn::types::ExecutionStatus;
use serde::Deserialize;
use serde_json::Value;
use store::DynamoStore;

/// What `local/stack.py up --json` reports once everything is up.
#[derive(Debug, Clone, Deserialize)]
pub struct Ready {
    pub aws_endpoint: String,
    pub api_url: String,
    pub invoke_url: String,
    pub region: String,
    /// The regions the stack governs (`GovernedRegions`), the home region first.
    pub governed_regions: Vec<String>,
    pub account_id: String,
    pub table: String,
    pub state_machines: HashMap<String, String>,
    pub event_bus: String,
    pub event_log_group: String,
    pub organization: Organization,
    pub principals: HashMap<String, Principal>,
    pub logs: String,
    /// The role the Stax SDK's Cognito sign-in gives its callers (mapped to `admin`).
    pub stax_sdk_role: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Organization {
    pub organization_id: String,
    pub management_account_id: String,
    pub security_account_id: String,
    pub logging_account_id: String,
    pub members: Vec<Member>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Member {
    pub name: String,
    pub aws_account_id: String,
    pub provisioning_role: bool,
}

/// An IAM user of the management account that the local stack maps to a service role.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Principal {
    pub arn: String,
    pub role: Option<String>,
    pub access_key_id: String,
    pub secret_access_key: String,
}

pub struct Stack {
    pub ready: Ready,
    process: Mutex<Option<(Child, ChildStdin)>>,
    bootstrap: tokio::sync::OnceCell<()>,
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .to_owned()
}

impl Stack {
    /// The stack shared by tests that read, or whose writes are refused: after its foundation
    /// bootstrap its accounts table does not change, so such tests can compare snapshots. (Store
    /// tests use tables of their own in it.)
    pub fn shared() -> &'static Stack {
        static SHARED: OnceLock<Stack> = OnceLock::new();
        SHARED.get_or_init(Stack::start)
    }

    /// The stack shared by tests that create and change accounts. They must not assume they are
    /// alone in it: they look only at the accounts they made.
    pub fn workflows() -> &'static Stack {
        static WORKFLOWS: OnceLock<Stack> = OnceLock::new();
        WORKFLOWS.get_or_init(Stack::start)
    }

    /// Runs the foundation bootstrap once for this stack (later callers wait for the first).
    pub async fn bootstrapped(&self) -> &Self {
        self.bootstrap
            .get_or_init(|| async {
                let run = self.run_execution("FoundationStateMachine", "{}").await;
                assert_eq!(
                    run.status,
                    ExecutionStatus::Succeeded,
                    "bootstrap: {:?}",
                    run.cause
                );
            })
            .await;
        self
    }

    /// A stack of the test's own, for tests that change organization-wide state.
    pub fn start() -> Stack {
        Stack::start_with(&[])
    }

    /// A stack of the test's own, started with more `local/stack.py up` options.
    pub fn start_with(options: &[&str]) -> Stack {
        let root = workspace_root();
        let python = root.join(".venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run the tests with ./dev test, which installs the emulator",
            python.display()
        );
        let stderr_path =
            std::env::temp_dir().join(format!("accounts-stack-{}.log", uuid::Uuid::new_v4()));
        let stderr = std::fs::File::create(&stderr_path).expect("a log file for the stack");
        let mut child = Command::new(python)
            .args(["local/stack.py", "up", "--json", "--no-lifecycle"])
            .args(options)
            .current_dir(&root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("the local stack starts");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(180))
            .unwrap_or_default();
        let ready: Ready = serde_json::from_str(&line).unwrap_or_else(|_| {
            let _ = child.kill();
            let mut log = String::new();
            let _ = std::fs::File::open(&stderr_path).and_then(|mut f| f.read_to_string(&mut log));
            panic!("the local stack did not come up:\n{log}")
        });
        let _ = std::fs::remove_file(stderr_path);
        Stack {
            ready,
            process: Mutex::new(Some((child, stdin))),
            bootstrap: tokio::sync::OnceCell::new(),
        }
    }

    /// SDK configuration for the emulator, acting in the management account. Requests go
    /// through the emulator as their proxy, as the functions' do, so S3 Control (whose endpoint
    /// the SDK prefixes with an account id) reaches it too.
    pub async fn sdk(&self) -> SdkConfig {
        let proxy = aws::ProxyConfig::http(&self.ready.aws_endpoint).expect("the emulator's URL");
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(self.ready.region.clone()))
            .endpoint_url(&self.ready.aws_endpoint)
            .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
            .http_client(aws::http_client_with_proxy(proxy))
            .load()
            .await
    }

    /// SDK configuration acting in a member account through its provisioning role.
    pub async fn in_account(&self, aws_account_id: &str) -> SdkConfig {
        aws::assume_role(
            &self.sdk().await,
            aws_account_id,
            "stax-provisioning",
            "integration-tests",
            None,
        )
        .await
        .expect("the provisioning role can be assumed")
    }

    /// Gives a member account's root user credentials (as one made outside the organization
    /// has): a password, and `access_keys` access keys.
    pub async fn give_root_credentials(&self, aws_account_id: &str, access_keys: u32) -> Value {
        let r = reqwest::Client::new()
            .post(format!(
                "{}/_local/iam/root-credentials",
                self.ready.aws_endpoint
            ))
            .json(&serde_json::json!({"AccountId": aws_account_id, "Password": true, "AccessKeys": access_keys}))
            .send()
            .await
            .expect("root credentials given");
        assert!(r.status().is_success());
        r.json().await.expect("the root user's credentials")
    }

    /// Plans how the next CreateAccount requests end: `(state, reason, status calls before)`.
    pub async fn plan_create_account(&self, outcomes: &[(&str, &str, u32)]) {
        let outcomes: Vec<Value> = outcomes
            .iter()
            .map(|(state, reason, polls)| serde_json::json!({"state": state, "reason": reason, "polls": polls}))
            .collect();
        let r = reqwest::Client::new()
            .post(format!(
                "{}/_local/organizations/create-account",
                self.ready.aws_endpoint
            ))
            .json(&serde_json::json!({"outcomes": outcomes}))
            .send()
            .await
            .expect("outcomes planned");
        assert!(r.status().is_success());
    }

    /// Waits until the task has finished and returns it (`tasks.ReadTask`).
    pub async fn finished_task(&self, task_id: &str) -> Value {
        for _ in 0..600 {
            let r = self
                .api("GET", &format!("/20190206/task/{task_id}"), None, None)
                .await;
            assert_eq!(r.status, 200, "{:?}", r.body);
            if matches!(r.body["Status"].as_str(), Some("SUCCEEDED" | "FAILED")) {
                return r.body;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("task {task_id} did not finish within 2 minutes");
    }

    /// POSTs an operation (`body` as `as_user`), expects it accepted (200, a task envelope),
    /// waits for its task and checks it ended `status`: the finished task.
    pub async fn operation_ends(
        &self,
        path: &str,
        body: &Value,
        as_user: Option<&str>,
        status: &str,
    ) -> Value {
        let r = self
            .api("POST", path, Some(&body.to_string()), as_user)
            .await;
        assert_eq!(r.status, 200, "{path} {body}: {:?}", r.body);
        let task = self
            .finished_task(r.body["TaskId"].as_str().expect("a TaskId"))
            .await;
        assert_eq!(task["Status"], status, "{path} {body}: {task:?}");
        task
    }

    /// Invokes a function of the stack through the Lambda Invoke API, as Step Functions does.
    pub async fn invoke(&self, function: &str, payload: &Value) -> (bool, Value) {
        let r = reqwest::Client::new()
            .post(format!(
                "{}/2015-03-31/functions/{function}/invocations",
                self.ready.invoke_url
            ))
            .json(payload)
            .send()
            .await
            .expect("the host answers");
        let failed = r.headers().contains_key("x-amz-function-error");
        (!failed, r.json().await.expect("a JSON answer"))
    }

    pub async fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk().await)
    }

    /// The store over the stack's own accounts table.
    pub async fn store(&self) -> DynamoStore {
        DynamoStore::new(self.dynamodb().await, &self.ready.table)
    }

    /// A new, empty table declared exactly as template.yaml declares the accounts table.
    pub async fn fresh_store(&self) -> DynamoStore {
        let name = format!("test-{}", uuid::Uuid::new_v4());
        let root = workspace_root();
        let out = tokio::process::Command::new(root.join(".venv/bin/python"))
            .args([
                "local/stack.py",
                "create-table",
                "--endpoint",
                &self.ready.aws_endpoint,
                "--name",
                &name,
            ])
            .current_dir(&root)
            .output()
            .await
            .expect("create-table runs");
        assert!(
            out.status.success(),
            "create-table failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        DynamoStore::new(self.dynamodb().await, name)
    }

    pub fn state_machine(&self, logical_id: &str) -> &str {
        &self.ready.state_machines[logical_id]
    }

    /// The history of execution `name` of a state machine (by logical id), oldest first.
    pub async fn execution_history(
        &self,
        state_machine: &str,
        name: &str,
    ) -> Vec<aws_sdk_sfn::types::HistoryEvent> {
        let arn = format!(
            "{}:{name}",
            self.state_machine(state_machine)
                .replace(":stateMachine:", ":execution:")
        );
        aws_sdk_sfn::Client::new(&self.sdk().await)
            .get_execution_history()
            .execution_arn(arn)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .expect("the execution's history")
    }

    /// Starts an execution under a unique name and waits for it to finish.
    pub async fn run_execution(&self, state_machine: &str, input: &str) -> DescribeExecutionOutput {
        let sfn = aws_sdk_sfn::Client::new(&self.sdk().await);
        let name = format!("test-{}", uuid::Uuid::new_v4());
        let arn = sfn
            .start_execution()
            .state_machine_arn(self.state_machine(state_machine))
            .name(name)
            .input(input)
            .send()
            .await
            .expect("the execution starts")
            .execution_arn;
        for _ in 0..1200 {
            let d = sfn
                .describe_execution()
                .execution_arn(&arn)
                .send()
                .await
                .expect("describe");
            if d.status != ExecutionStatus::Running {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{arn} did not finish within 2 minutes");
    }

    /// Fires an EventBridge Scheduler schedule the stack made from the template's `ScheduleV2`
    /// event (`<Function><Event>`), exactly as when it is due (its target, its `Input`), and
    /// returns the finished task of the run it started in `state_machine` (a logical id).
    pub async fn fire_schedule(&self, schedule: &str, state_machine: &str) -> Value {
        let sfn = aws_sdk_sfn::Client::new(&self.sdk().await);
        let executions = || async {
            sfn.list_executions()
                .state_machine_arn(self.state_machine(state_machine))
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await
                .expect("the executions")
                .into_iter()
                .map(|e| e.name)
                .collect::<std::collections::HashSet<_>>()
        };
        let before = executions().await;
        let r = reqwest::Client::new()
            .post(format!("{}/_local/scheduler/run", self.ready.aws_endpoint))
            .json(&serde_json::json!({"Name": schedule}))
            .send()
            .await
            .expect("the schedule fires");
        assert!(r.status().is_success(), "no schedule {schedule}");
        for _ in 0..300 {
            for name in executions().await.difference(&before) {
                let task = self
                    .api("GET", &format!("/20190206/task/{name}"), None, None)
                    .await;
                let by_schedule = task.body["Logs"]
                    .as_array()
                    .is_some_and(|l| l.iter().any(|l| l == "Requested by schedule"));
                if by_schedule {
                    return self.finished_task(name).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("schedule {schedule} started no run of {state_machine} within a minute");
    }

    /// Registers an emulator fault: the next `count` calls of `target` (an `X-Amz-Target`, such
    /// as `AWSOrganizationsV20161128.DescribeOrganization`) fail with `error`.
    pub async fn inject_fault(&self, target: &str, error: &str, count: u32) {
        self.inject_fault_after(target, error, 0, count).await;
    }

    /// As [`Stack::inject_fault`], letting the next `after` calls through first.
    pub async fn inject_fault_after(&self, target: &str, error: &str, after: u32, count: u32) {
        let r = reqwest::Client::new()
            .post(format!("{}/_local/faults", self.ready.aws_endpoint))
            .json(&serde_json::json!({"target": target, "error": error, "count": count, "after": after}))
            .send()
            .await
            .expect("fault registered");
        assert!(r.status().is_success());
    }

    /// The details of the events of `detail_type` the service's bus delivered (its log rule
    /// keeps them) that `matches`, once there are `at_least` of them (delivery is asynchronous;
    /// after 30 s, whatever arrived).
    pub async fn bus_events(
        &self,
        detail_type: &str,
        at_least: usize,
        matches: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        let logs = aws_sdk_cloudwatchlogs::Client::new(&self.sdk().await);
        let mut found = Vec::new();
        for _ in 0..150 {
            let pages = logs
                .filter_log_events()
                .log_group_name(&self.ready.event_log_group)
                .into_paginator()
                .send()
                .collect::<Vec<_>>()
                .await;
            found = pages
                .into_iter()
                .flat_map(|p| p.unwrap().events.unwrap_or_default())
                .filter_map(|e| serde_json::from_str::<Value>(e.message()?).ok())
                .filter(|e| e["detail-type"] == detail_type && matches(&e["detail"]))
                .map(|e| e["detail"].clone())
                .collect();
            if found.len() >= at_least {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        found
    }

    /// What the emulator's IAM enforcement granted, allowed and refused, by principal
    /// (`GET /_local/iam/access`).
    pub async fn iam_access(&self) -> Value {
        reqwest::get(format!("{}/_local/iam/access", self.ready.aws_endpoint))
            .await
            .expect("the emulator answers")
            .json()
            .await
            .expect("a JSON report")
    }

    /// How many injected faults the emulator has served for `target`.
    pub async fn faults_served(&self, target: &str) -> u64 {
        let report: Value = reqwest::get(format!("{}/_local/faults", self.ready.aws_endpoint))
            .await
            .expect("faults report")
            .json()
            .await
            .expect("JSON");
        report["served"][target].as_u64().unwrap_or(0)
    }

    /// Makes `calls` (`("accounts.UpdateAccount", {...keyword arguments})`) through the Stax
    /// Python SDK, unchanged (`local/stax_sdk.py`): each call's (HTTP status, body).
    pub fn stax_sdk(&self, calls: &[(&str, Value)]) -> Vec<(u16, Value)> {
        let root = workspace_root();
        let mut command = Command::new(root.join(".venv/bin/python"));
        command.current_dir(&root).args([
            "local/stax_sdk.py",
            "--endpoint",
            &self.ready.aws_endpoint,
            "--api",
            &self.ready.api_url,
            "--role",
            &self.ready.stax_sdk_role,
        ]);
        for (call, arguments) in calls {
            command.arg(call).arg(arguments.to_string());
        }
        let out = command.output().expect("local/stax_sdk.py runs");
        assert!(
            out.status.success(),
            "stax_sdk.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|line| {
                let v: Value = serde_json::from_str(line).expect("a JSON line");
                (v["status"].as_u64().unwrap_or(0) as u16, v["body"].clone())
            })
            .collect()
    }

    /// Calls the HTTP API. `as_user` signs the request (SigV4, service `execute-api`) with that
    /// local principal's keys; `None` sends it unsigned.
    pub async fn api(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<&str>,
        as_user: Option<&str>,
    ) -> ApiResponse {
        let url = format!("{}{}", self.ready.api_url, path_and_query);
        let mut builder = reqwest::Client::new().request(method.parse().expect("method"), &url);
        if let Some(body) = body {
            builder = builder
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let mut request = builder.build().expect("request");
        if let Some(user) = as_user {
            let p = &self.ready.principals[user];
            sign(
                &mut request,
                &p.access_key_id,
                &p.secret_access_key,
                &self.ready.region,
            );
        }
        let response = reqwest::Client::new()
            .execute(request)
            .await
            .expect("the API answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        ApiResponse { status, body }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some((mut child, stdin)) = self.process.lock().unwrap().take() {
            drop(stdin); // the stack's signal to stop
            for _ in 0..100 {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[derive(Debug)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Value,
}

impl ApiResponse {
    /// A refusal as the API promises it: `status`, the stable error name, and a cause that says
    /// why. `what` names the request in the failure message.
    pub fn assert_refused(&self, status: u16, error: &str, what: &str) {
        assert_eq!(
            (self.status, self.body["Error"].as_str()),
            (status, Some(error)),
            "{what}: {:?}",
            self.body
        );
        let cause = self.body["Cause"].as_str().unwrap_or_default();
        assert!(!cause.is_empty(), "{what}: no Cause in {:?}", self.body);
    }
}

fn sign(request: &mut reqwest::Request, access_key: &str, secret: &str, region: &str) {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4;
    let identity = Credentials::new(access_key, secret, None, None, "tests").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("execute-api")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .expect("signing parameters")
        .into();
    let host = request.url().host_str().unwrap_or_default().to_owned()
        + &request
            .url()
            .port()
            .map(|p| format!(":{p}"))
            .unwrap_or_default();
    let body = request
        .body()
        .and_then(|b| b.as_bytes())
        .unwrap_or_default()
        .to_vec();
    let headers = [("host".to_owned(), host)];
    let signable = SignableRequest::new(
        request.method().as_str(),
        request.url().as_str(),
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(&body),
    )
    .expect("signable request");
    let (instructions, _signature) = sign(signable, &params).expect("signed").into_parts();
    for (name, value) in instructions.headers() {
        request.headers_mut().insert(
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            reqwest::header::HeaderValue::from_str(value).expect("header value"),
        );
    }
}
