//! Creating an account end to end: the API, the create workflow, Account Assurance, ACTIVE — and
//! every way it can go wrong, against the emulated AWS Organization.

use crate::one_accepted;
use aws_sdk_sfn::types::ExecutionStatus;
use domain::{AccountStatus, Task, TaskStatus};
use integration_tests::{ApiResponse, Stack, workspace_root};
use serde_json::{Value, json};
#[allow(unused_imports)]
use store::prelude::*;
use uuid::Uuid;

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &Uuid::new_v4().simple().to_string()[..8])
}

/// Asks for an account and returns (task id, the 200 body).
async fn ask(stack: &Stack, body: &Value, user: &str) -> (String, Value) {
    let r = stack
        .api(
            "POST",
            "/20190206/accounts",
            Some(&body.to_string()),
            Some(user),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    (
        r.body["TaskId"].as_str().expect("a TaskId").to_owned(),
        r.body,
    )
}

/// The same create request twice at once: one is accepted, the other refused with a 409.
/// Answers (accepted, refused).
async fn post_twice_at_once(stack: &Stack, body: &Value) -> (ApiResponse, ApiResponse) {
    let body = body.to_string();
    let post = || {
        stack.api(
            "POST",
            "/20190206/accounts",
            Some(&body),
            Some("local-admin"),
        )
    };
    let (a, b) = tokio::join!(post(), post());
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
    if a.status == 200 { (a, b) } else { (b, a) }
}

async fn account(stack: &Stack, id: &str) -> Value {
    let r = stack
        .api("GET", &format!("/20190206/accounts/{id}"), None, None)
        .await;
    assert_eq!(r.status, 200);
    r.body["Accounts"][0].clone()
}

/// What the baseline left in the account, read through its provisioning role.
/// `alias`: the IAM account alias asked for (assurance sets none otherwise).
pub(crate) async fn assert_hardened(stack: &Stack, aws_account_id: &str, alias: Option<&str>) {
    let sdk = stack.in_account(aws_account_id).await;
    let logging = &stack.ready.organization.logging_account_id;
    let security = &stack.ready.organization.security_account_id;

    let ct = aws_sdk_cloudtrail::Client::new(&sdk);
    let trails = ct
        .describe_trails()
        .trail_name_list("accounts-baseline")
        .send()
        .await
        .unwrap();
    let trail = &trails.trail_list()[0];
    assert_eq!(
        trail.s3_bucket_name(),
        Some(format!("accounts-cloudtrail-{logging}").as_str())
    );
    assert_eq!(
        (
            trail.is_multi_region_trail(),
            trail.log_file_validation_enabled()
        ),
        (Some(true), Some(true))
    );
    assert_eq!(
        ct.get_trail_status()
            .name("accounts-baseline")
            .send()
            .await
            .unwrap()
            .is_logging(),
        Some(true)
    );
    // Management events and every bucket's S3 object-level reads and writes but the log
    // buckets' (CIS 3.8, 3.9; recording the deliveries into those would record itself).
    let selectors = ct
        .get_event_selectors()
        .trail_name("accounts-baseline")
        .send()
        .await
        .unwrap();
    let objects = selectors
        .advanced_event_selectors()
        .iter()
        .find(|s| {
            s.field_selectors()
                .iter()
                .any(|f| f.field() == "resources.type" && f.equals() == ["AWS::S3::Object"])
        })
        .unwrap_or_else(|| panic!("no S3 object selector: {selectors:?}"));
    let skipped = objects
        .field_selectors()
        .iter()
        .find(|f| f.field() == "resources.ARN")
        .map(|f| f.not_starts_with().to_vec())
        .unwrap_or_default();
    assert!(
        skipped.contains(&format!("arn:aws:s3:::accounts-cloudtrail-{logging}/")),
        "{skipped:?}"
    );
    assert!(
        selectors.advanced_event_selectors().iter().any(|s| {
            s.field_selectors()
                .iter()
                .any(|f| f.field() == "eventCategory" && f.equals() == ["Management"])
        }),
        "{selectors:?}"
    );

    // No default VPC left (nothing used it): CIS 3.7, 5.1 and 5.4 have nothing open to judge.
    let default_vpcs = aws_sdk_ec2::Client::new(&sdk)
        .describe_vpcs()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("isDefault")
                .values("true")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(default_vpcs.vpcs().is_empty(), "{default_vpcs:?}");

    // The support role (CIS 1.17): AWSSupportAccess, assumable from the management account.
    let iam = aws_sdk_iam::Client::new(&sdk);
    let support = iam
        .get_role()
        .role_name(domain::assurance::SUPPORT_ROLE)
        .send()
        .await
        .unwrap();
    let trust = aws::provisioning::policy_text(
        support
            .role()
            .unwrap()
            .assume_role_policy_document()
            .unwrap(),
    );
    assert_eq!(
        domain::policy::trusts_only(&trust, &stack.ready.account_id),
        Ok(())
    );
    let attached = iam
        .list_attached_role_policies()
        .role_name(domain::assurance::SUPPORT_ROLE)
        .send()
        .await
        .unwrap();
    assert_eq!(
        attached.attached_policies()[0].policy_arn(),
        Some(domain::assurance::SUPPORT_POLICY_ARN)
    );

    let gd = aws_sdk_guardduty::Client::new(&sdk);
    let detectors = gd.list_detectors().send().await.unwrap();
    assert_eq!(detectors.detector_ids().len(), 1);
    let admin = gd
        .get_administrator_account()
        .detector_id(&detectors.detector_ids()[0])
        .send()
        .await
        .unwrap();
    assert_eq!(
        admin.administrator().and_then(|a| a.account_id()),
        Some(security.as_str())
    );

    let cfg = aws_sdk_config::Client::new(&sdk);
    let recorders = cfg.describe_configuration_recorders().send().await.unwrap();
    let group = recorders.configuration_recorders()[0]
        .recording_group()
        .unwrap();
    assert!(group.all_supported() && group.include_global_resource_types());
    let channels = cfg.describe_delivery_channels().send().await.unwrap();
    assert_eq!(
        channels.delivery_channels()[0].s3_bucket_name(),
        Some(format!("accounts-config-{logging}").as_str())
    );
    let status = cfg
        .describe_configuration_recorder_status()
        .send()
        .await
        .unwrap();
    assert!(status.configuration_recorders_status()[0].recording());

    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let doc = ssm
        .get_document()
        .name("SSM-SessionManagerRunShell")
        .send()
        .await
        .unwrap();
    let content: Value = serde_json::from_str(doc.content().unwrap()).unwrap();
    assert_eq!(
        content["inputs"]["s3BucketName"],
        format!("accounts-ssm-{logging}")
    );
    assert_eq!(content["inputs"]["s3EncryptionEnabled"], true);

    let s3 = aws_sdk_s3control::Client::new(&sdk);
    let pab = s3
        .get_public_access_block()
        .account_id(aws_account_id)
        .send()
        .await
        .unwrap();
    let pab = pab.public_access_block_configuration().unwrap();
    assert_eq!(
        (
            pab.block_public_acls(),
            pab.ignore_public_acls(),
            pab.block_public_policy(),
            pab.restrict_public_buckets()
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    assert_eq!(
        ec2.get_ebs_encryption_by_default()
            .send()
            .await
            .unwrap()
            .ebs_encryption_by_default(),
        Some(true)
    );
    let iam = aws_sdk_iam::Client::new(&sdk);
    let policy = iam.get_account_password_policy().send().await.unwrap();
    let policy = policy.password_policy().unwrap();
    assert_eq!(
        (
            policy.minimum_password_length(),
            policy.password_reuse_prevention()
        ),
        (Some(14), Some(24))
    );
    assert_eq!(
        iam.list_account_aliases()
            .send()
            .await
            .unwrap()
            .account_aliases(),
        alias.map(str::to_owned).as_slice()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_asked_for_comes_out_active_and_hardened() {
    let stack = Stack::workflows().bootstrapped().await;
    let name = unique("bakery");
    let alias = unique("bakery-prod");
    let body = json!({"Name": name, "AccountType": "default", "AwsAccountAlias": alias, "Tags": {"CostCode": "12345"}});
    let (task_id, answer) = ask(stack, &body, "local-operations").await;
    assert_eq!(answer["Detail"]["OperationStatus"], "STARTED");

    let task = stack.finished_task(&task_id).await;
    assert_eq!(task["Status"], "SUCCEEDED", "{task:?}");
    let logs: Vec<&str> = task["Logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(logs.first(), Some(&"Creating the AWS account"));
    assert_eq!(logs.last(), Some(&"Account is ACTIVE"));
    assert!(
        logs.iter()
            .any(|l| l.starts_with("Account Assurance applied")),
        "{logs:?}"
    );

    let id = task["Accounts"][0].as_str().unwrap();
    let a = account(stack, id).await;
    assert_eq!(
        (
            a["Status"].as_str(),
            a["AssuranceState"].as_str(),
            a["Origin"].as_str()
        ),
        (Some("ACTIVE"), Some("ACTIVE"), Some("STAX"))
    );
    assert_eq!(a["Name"], name.as_str());
    assert_eq!(a["AccountTypeName"], "default");
    assert_eq!(a["Email"], format!("aws+{id}@example.com"));
    assert_eq!(a["Tags"], json!({"CostCode": "12345"}));
    assert!(a["OrgsOuId"].as_str().unwrap().starts_with("ou-"));
    assert!(a.get("UserTaskId").is_none(), "the lock is released");
    assert_hardened(stack, a["AwsAccountId"].as_str().unwrap(), Some(&alias)).await;

    // The README's way of looking: ./dev show-account reads the same through the role.
    let aws_account_id = a["AwsAccountId"].as_str().unwrap();
    let shown = std::process::Command::new(workspace_root().join(".venv/bin/python"))
        .args([
            "local/show_account.py",
            "--endpoint",
            &stack.ready.aws_endpoint,
            aws_account_id,
        ])
        .current_dir(workspace_root())
        .output()
        .expect("show_account.py runs");
    let shown = String::from_utf8_lossy(&shown.stdout);
    let logging = &stack.ready.organization.logging_account_id;
    for line in [
        format!(
            "trail accounts-baseline: multi-region yes, log file validation yes, logging yes, bucket accounts-cloudtrail-{logging}"
        ),
        format!(
            "administrator {} (Enabled)",
            stack.ready.organization.security_account_id
        ),
        format!(
            "all resources yes, global yes, recording yes; delivery channel default to accounts-config-{logging}"
        ),
        format!("logs to s3://accounts-ssm-{logging}/{aws_account_id}, encrypted yes"),
        "S3 Block Public Access     all four on".to_owned(),
        "EBS encryption by default  on".to_owned(),
        format!("password policy: min length 14, reuse prevention 24; alias {alias}"),
    ] {
        assert!(shown.contains(&line), "{line:?} not in:\n{shown}");
    }

    let trail = stack
        .store()
        .await
        .audit_trail(Uuid::parse_str(id).unwrap())
        .await
        .unwrap();
    let statuses: Vec<_> = trail.iter().filter_map(|e| e.to).collect();
    assert_eq!(
        statuses,
        [AccountStatus::Initializing, AccountStatus::Active]
    );
}

#[tokio::test]
async fn a_create_account_aws_refuses_ends_in_error_with_its_reason_and_asking_again_retries_it() {
    let stack = Stack::start();
    stack.bootstrapped().await;
    // As AWS does: IN_PROGRESS for a while, then FAILED with a reason.
    stack
        .plan_create_account(&[("FAILED", "ACCOUNT_LIMIT_EXCEEDED", 3)])
        .await;
    let (task_id, _) = ask(
        &stack,
        &json!({"Name": "too-many", "AccountType": "default"}),
        "local-admin",
    )
    .await;
    let task = stack.finished_task(&task_id).await;
    assert_eq!(task["Status"], "FAILED");
    let reason = "CreateAccountFailed: AWS Organizations could not create the account: ACCOUNT_LIMIT_EXCEEDED";
    assert_eq!(task["Logs"].as_array().unwrap().last().unwrap(), reason);
    let a = account(&stack, task["Accounts"][0].as_str().unwrap()).await;
    assert_eq!(
        (a["Status"].as_str(), a["StatusReason"].as_str()),
        (Some("ERROR"), Some(reason))
    );
    assert!(a.get("AwsAccountId").is_none() && a.get("UserTaskId").is_none());
    let store = stack.store().await;
    assert_eq!(
        store
            .slots_in_use("organizations-create-account")
            .await
            .unwrap(),
        0,
        "the slot is given back"
    );

    // The limit raised, the same request twice at once: one retries the same record, the other
    // is refused; the account comes out ACTIVE with one AWS account.
    let body = json!({"Name": "too-many", "AccountType": "default"});
    let (accepted, refused) = post_twice_at_once(&stack, &body).await;
    assert!(
        ["OperationInProgress", "NameTaken"].contains(&refused.body["Error"].as_str().unwrap()),
        "{refused:?}"
    );
    assert_eq!(
        accepted.body["Detail"]["Message"],
        "Retrying the creation of account too-many"
    );
    let retried = stack
        .finished_task(accepted.body["TaskId"].as_str().unwrap())
        .await;
    assert_eq!(retried["Status"], "SUCCEEDED", "{retried:?}");
    assert_eq!(retried["Accounts"], task["Accounts"], "the same record");
    let a = account(&stack, task["Accounts"][0].as_str().unwrap()).await;
    assert_eq!(a["Status"], "ACTIVE");
    assert!(a.get("StatusReason").is_none(), "{a}");
    let trail = store
        .audit_trail(Uuid::parse_str(a["Id"].as_str().unwrap()).unwrap())
        .await
        .unwrap();
    let statuses: Vec<_> = trail.iter().filter_map(|e| e.to).collect();
    assert_eq!(
        statuses,
        [
            AccountStatus::Initializing,
            AccountStatus::Error,
            AccountStatus::Initializing,
            AccountStatus::Active
        ]
    );
    let organizations = aws_sdk_organizations::Client::new(&stack.sdk().await);
    let named: Vec<_> = organizations
        .list_accounts()
        .send()
        .await
        .unwrap()
        .accounts
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.name() == Some("too-many"))
        .collect();
    assert_eq!(named.len(), 1, "{named:?}");
}

#[tokio::test]
async fn throttling_and_concurrent_modification_are_retried_to_success() {
    let stack = Stack::start();
    stack.bootstrapped().await;
    let create = "AWSOrganizationsV20161128.CreateAccount";
    let mv = "AWSOrganizationsV20161128.MoveAccount";
    stack
        .inject_fault(create, "TooManyRequestsException", 2)
        .await;
    stack
        .inject_fault(mv, "ConcurrentModificationException", 2)
        .await;
    let (task_id, _) = ask(
        &stack,
        &json!({"Name": "patient", "AccountType": "default"}),
        "local-admin",
    )
    .await;
    assert_eq!(stack.finished_task(&task_id).await["Status"], "SUCCEEDED");
    assert_eq!(
        (
            stack.faults_served(create).await,
            stack.faults_served(mv).await
        ),
        (2, 2)
    );

    // Both were retried inside the SDK: each step ran once, with no Step Functions retry.
    let history = stack
        .execution_history("CreateAccountStateMachine", &task_id)
        .await;
    let scheduled = |function: &str| {
        history
            .iter()
            .filter_map(|e| e.task_scheduled_event_details())
            .filter(|d| d.parameters().contains(function))
            .filter(|d| {
                function != "CreateAwsAccountFunction" || d.parameters().contains("\"Create\"")
            })
            .count()
    };
    assert_eq!(
        (
            scheduled("CreateAwsAccountFunction"),
            scheduled("PlaceAccountFunction")
        ),
        (1, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_request_twice_at_once_creates_one_account() {
    let stack = Stack::workflows().bootstrapped().await;
    let name = unique("twin");
    let body = json!({"Name": name, "AccountType": "default"});
    let (winner, _) = post_twice_at_once(stack, &body).await;
    let task = stack
        .finished_task(winner.body["TaskId"].as_str().unwrap())
        .await;
    assert_eq!(task["Status"], "SUCCEEDED");
    let listed = stack
        .api(
            "GET",
            &format!("/20190206/accounts?account_names={name}"),
            None,
            None,
        )
        .await;
    assert_eq!(listed.body["Accounts"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_create_step_makes_one_aws_account() {
    let stack = Stack::workflows().bootstrapped().await;
    // A recorded account whose create step Step Functions runs twice (the first answer lost).
    let name = unique("retried");
    let (task_id, _) = ask(
        stack,
        &json!({"Name": name, "AccountType": "default"}),
        "local-admin",
    )
    .await;
    let task = stack.finished_task(&task_id).await;
    let id = task["Accounts"][0].as_str().unwrap();
    let step = json!({"Action": "Create", "AccountId": id, "TaskId": task_id});
    let (ok, again) = stack.invoke("CreateAwsAccountFunction", &step).await;
    assert!(ok, "{again:?}");
    assert_eq!(again["State"], "SUCCEEDED");
    assert_eq!(
        again["AwsAccountId"],
        account(stack, id).await["AwsAccountId"]
    );
    let organizations = aws_sdk_organizations::Client::new(&stack.sdk().await);
    let requests = organizations
        .list_create_account_status()
        .send()
        .await
        .unwrap();
    let named = requests
        .create_account_statuses()
        .iter()
        .filter(|s| s.account_name() == Some(name.as_str()))
        .count();
    assert_eq!(named, 1, "one CreateAccount request for the account");
}

/// Runs Account Assurance on an ACTIVE account, as an operator would (the API's repair, the
/// one way into MAINTENANCE), and returns the task the run worked under, finished.
async fn maintain(stack: &Stack, id: &str) -> domain::Task {
    let path = format!("/20190206/accounts/{id}/assurance");
    let started = stack
        .api("POST", &path, None, Some("local-operations"))
        .await;
    assert_eq!(started.status, 200, "{started:?}");
    let task = started.body["TaskId"].as_str().unwrap().to_owned();
    stack.finished_task(&task).await;
    stack
        .store()
        .await
        .get_task(Uuid::parse_str(&task).unwrap())
        .await
        .unwrap()
        .unwrap()
        .value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assurance_run_again_changes_nothing_and_repairs_drift() {
    let stack = Stack::workflows().bootstrapped().await;
    let (task_id, _) = ask(
        stack,
        &json!({"Name": unique("drifty"), "AccountType": "default"}),
        "local-admin",
    )
    .await;
    let id = stack.finished_task(&task_id).await["Accounts"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let aws_account_id = account(stack, &id).await["AwsAccountId"]
        .as_str()
        .unwrap()
        .to_owned();

    // Run again: nothing to do.
    let task = maintain(stack, &id).await;
    assert_eq!(task.status, TaskStatus::Succeeded);
    assert!(
        task.logs.iter().any(|l| l.contains("nothing changed")),
        "{:?}",
        task.logs
    );

    // Drift: the password policy deleted, the recorder stopped, the provisioning role made to
    // trust the account itself too.
    let sdk = stack.in_account(&aws_account_id).await;
    let widened = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": [format!("arn:aws:iam::{}:root", stack.ready.account_id),
                              format!("arn:aws:iam::{aws_account_id}:root")]},
        "Action": "sts:AssumeRole"}]});
    aws_sdk_iam::Client::new(&sdk)
        .update_assume_role_policy()
        .role_name("stax-provisioning")
        .policy_document(widened.to_string())
        .send()
        .await
        .unwrap();
    aws_sdk_iam::Client::new(&sdk)
        .delete_account_password_policy()
        .send()
        .await
        .unwrap();
    aws_sdk_config::Client::new(&sdk)
        .stop_configuration_recorder()
        .configuration_recorder_name("default")
        .send()
        .await
        .unwrap();
    // A default VPC made again (by someone the SCP does not stop: the test's administrator).
    aws_sdk_ec2::Client::new(&sdk)
        .create_default_vpc()
        .send()
        .await
        .unwrap();
    // The trail's S3 data events turned off (management events only).
    let management = aws_sdk_cloudtrail::types::AdvancedEventSelector::builder()
        .name("Management events")
        .field_selectors(
            aws_sdk_cloudtrail::types::AdvancedFieldSelector::builder()
                .field("eventCategory")
                .equals("Management")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    aws_sdk_cloudtrail::Client::new(&sdk)
        .put_event_selectors()
        .trail_name("accounts-baseline")
        .advanced_event_selectors(management)
        .send()
        .await
        .unwrap();
    // And the support role (CIS 1.17) stripped of AWSSupportAccess.
    let iam = aws_sdk_iam::Client::new(&sdk);
    iam.detach_role_policy()
        .role_name(domain::assurance::SUPPORT_ROLE)
        .policy_arn(domain::assurance::SUPPORT_POLICY_ARN)
        .send()
        .await
        .unwrap();
    // The repair asked for through the API, twice at once: one runs, the other is refused.
    let path = format!("/20190206/accounts/{id}/assurance");
    let repair = || stack.api("POST", &path, None, Some("local-operations"));
    let (r1, r2) = tokio::join!(repair(), repair());
    let accepted = one_accepted(vec![r1, r2], "OperationInProgress");
    assert_eq!(
        accepted.body["Detail"]["Operation"],
        "account_assurance:HardenAccount"
    );
    let finished = stack
        .finished_task(accepted.body["TaskId"].as_str().unwrap())
        .await;
    assert_eq!(finished["Status"], "SUCCEEDED", "{finished:?}");
    assert_eq!(finished["Accounts"], json!([id]));
    let task: Task = stack
        .store()
        .await
        .get_task(Uuid::parse_str(accepted.body["TaskId"].as_str().unwrap()).unwrap())
        .await
        .unwrap()
        .unwrap()
        .value;
    let applied = task
        .logs
        .iter()
        .find(|l| l.starts_with("Account Assurance applied"))
        .expect("a repair");
    assert!(
        applied.contains("set the IAM password policy")
            && applied.contains("started configuration recorder default")
            && applied.contains("restored the trust policy of role stax-provisioning")
            && applied.contains("attached AWSSupportAccess to role accounts-support")
            && applied
                .contains("S3 object-level reads and writes of every bucket but the log buckets")
            && applied.contains("removed the default VPC"),
        "{applied}"
    );
    let support = iam
        .list_attached_role_policies()
        .role_name(domain::assurance::SUPPORT_ROLE)
        .send()
        .await
        .unwrap();
    assert_eq!(
        support.attached_policies()[0].policy_arn(),
        Some(domain::assurance::SUPPORT_POLICY_ARN)
    );
    let role = aws_sdk_iam::Client::new(&sdk)
        .get_role()
        .role_name("stax-provisioning")
        .send()
        .await
        .unwrap();
    let trust = aws::provisioning::policy_text(
        role.role
            .unwrap()
            .assume_role_policy_document()
            .unwrap_or_default(),
    );
    assert_eq!(
        domain::policy::trusts_only(&trust, &stack.ready.account_id),
        Ok(()),
        "{trust}"
    );
    assert!(
        !applied.contains("created trail")
            && !applied.contains("restored trail")
            && !applied.contains("started logging"),
        "only what drifted is touched: {applied}"
    );

    let a = account(stack, &id).await;
    assert_eq!(
        (a["Status"].as_str(), a["AssuranceState"].as_str()),
        (Some("ACTIVE"), Some("ACTIVE"))
    );
    let trail = stack
        .store()
        .await
        .audit_trail(Uuid::parse_str(&id).unwrap())
        .await
        .unwrap();
    let maintenance = trail
        .iter()
        .filter(|e| e.to == Some(AccountStatus::Maintenance))
        .count();
    assert_eq!(maintenance, 2, "each run was MAINTENANCE while it ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assurance_of_a_busy_account_is_refused_and_changes_nothing() {
    let stack = Stack::workflows().bootstrapped().await;
    let (task_id, _) = ask(
        stack,
        &json!({"Name": unique("busy"), "AccountType": "default"}),
        "local-admin",
    )
    .await;
    let id = Uuid::parse_str(
        stack.finished_task(&task_id).await["Accounts"][0]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let store = stack.store().await;
    // Another operation, just started (its execution may still be starting): its lock is kept.
    let holder = Task::new(
        domain::Operation::HardenAccount,
        vec![id],
        chrono::Utc::now(),
    );
    store
        .start_operation(
            id,
            &domain::AccountChange::lock(domain::LockChange::Acquire(holder.id)),
            &holder,
            "another operation",
        )
        .await
        .unwrap();
    let before = store.get_account(id).await.unwrap();
    // The one way in: the API refuses while another operation holds the account …
    let r = stack
        .api(
            "POST",
            &format!("/20190206/accounts/{id}/assurance"),
            None,
            Some("local-operations"),
        )
        .await;
    r.assert_refused(409, "OperationInProgress", "a busy account");
    assert_eq!(store.get_account(id).await.unwrap(), before, "unchanged");
    // … and the state machine started by hand without a task (the old drift-repair shape) is
    // refused by its input check, before anything is written.
    let run = stack
        .run_execution(
            "AssuranceStateMachine",
            &json!({"AccountId": id}).to_string(),
        )
        .await;
    assert_eq!(run.status, ExecutionStatus::Failed);
    assert_eq!(run.error(), Some("InvalidWorkflowInput"));
    assert!(run.cause().unwrap().contains("TaskId"), "{:?}", run.cause());
    assert_eq!(store.get_account(id).await.unwrap(), before, "unchanged");
    // … and started with a task that does not hold the account's lock, every step of it is
    // refused (NotLockHolder), so it fails having written nothing to the account.
    let stranger = Task::new(
        domain::Operation::HardenAccount,
        vec![id],
        chrono::Utc::now(),
    );
    store.create_task(&stranger).await.unwrap();
    let run = stack
        .run_execution(
            "AssuranceStateMachine",
            &json!({"AccountId": id, "TaskId": stranger.id}).to_string(),
        )
        .await;
    assert_eq!(run.status, ExecutionStatus::Failed);
    assert!(
        run.cause().unwrap_or_default().contains("NotLockHolder"),
        "{:?} {:?}",
        run.error(),
        run.cause()
    );
    assert_eq!(store.get_account(id).await.unwrap(), before, "unchanged");
    let task = store.get_task(stranger.id).await.unwrap().unwrap().value;
    assert_eq!(task.status, TaskStatus::Started, "nor its task");
    store
        .release_lock(id, holder.id, "another operation")
        .await
        .unwrap();
}

#[tokio::test]
async fn refused_repairs_say_why_and_write_nothing() {
    let stack = Stack::shared().bootstrapped().await;
    let store = stack.store().await;
    let before = store.snapshot().await.unwrap();
    let management = store
        .get_account_by_aws_id(&stack.ready.organization.management_account_id)
        .await
        .unwrap()
        .unwrap()
        .value
        .id;
    let security = store
        .get_account_by_aws_id(&stack.ready.organization.security_account_id)
        .await
        .unwrap()
        .unwrap()
        .value
        .id;
    let unknown = Uuid::new_v4();
    let cases = [
        (
            format!("{management}"),
            None,
            "local-admin",
            409,
            "NotAssurable",
        ),
        (format!("{unknown}"), None, "local-admin", 404, "NotFound"),
        (
            "nope".to_owned(),
            None,
            "local-admin",
            400,
            "ValidationError",
        ),
        (
            format!("{security}"),
            Some(r#"{"Force": true}"#),
            "local-admin",
            400,
            "ValidationError",
        ),
        (
            format!("{security}"),
            None,
            "local-readonly",
            403,
            "Forbidden",
        ),
        (
            format!("{security}"),
            None,
            "local-outsider",
            403,
            "Forbidden",
        ),
    ];
    for (id, body, user, status, error) in cases {
        let r = stack
            .api(
                "POST",
                &format!("/20190206/accounts/{id}/assurance"),
                body,
                Some(user),
            )
            .await;
        r.assert_refused(status, error, &format!("{id} {user}"));
    }
    assert_eq!(
        store.snapshot().await.unwrap(),
        before,
        "refusals write nothing"
    );
}

#[tokio::test]
async fn refused_creates_say_why_and_write_nothing() {
    let stack = Stack::shared().bootstrapped().await;
    let store = stack.store().await;
    let before = store.snapshot().await.unwrap();
    let valid = json!({"Name": "refused", "AccountType": "default"}).to_string();
    let cases: [(&str, &str, u16, &str); 10] = [
        ("local-admin", "{", 400, "ValidationError"),
        (
            "local-admin",
            r#"{"AccountType": "default"}"#,
            400,
            "ValidationError",
        ),
        (
            "local-admin",
            r#"{"Name": "x", "AccountType": "default", "AwsAccountAlias": "Not_An_Alias"}"#,
            400,
            "ValidationError",
        ),
        (
            "local-admin",
            r#"{"Name": "x", "AccountType": "production"}"#,
            400,
            "ValidationError",
        ),
        (
            "local-admin",
            r#"{"Name": "x", "AccountType": "foundation-security"}"#,
            400,
            "ValidationError",
        ),
        (
            "local-admin",
            r#"{"Name": "x", "AccountType": "default", "Tags": {"aws:owner": "me"}}"#,
            400,
            "ValidationError",
        ),
        (
            "local-admin",
            r#"{"Name": "SECURITY", "AccountType": "default"}"#,
            409,
            "NameTaken",
        ),
        ("local-user", &valid, 403, "Forbidden"),
        ("local-readonly", &valid, 403, "Forbidden"),
        ("local-outsider", &valid, 403, "Forbidden"),
    ];
    for (user, body, status, error) in cases {
        let r = stack
            .api("POST", "/20190206/accounts", Some(body), Some(user))
            .await;
        r.assert_refused(status, error, &format!("{user} {body}"));
    }
    assert_eq!(
        store.snapshot().await.unwrap(),
        before,
        "refusals write nothing"
    );
}

#[tokio::test]
async fn an_assurance_failure_ends_the_creation_in_error_with_the_concerns_reason() {
    let stack = Stack::start();
    stack.bootstrapped().await;
    // The new account refuses Config's recorder every time it is asked.
    stack
        .inject_fault(
            "StarlingDoveService.PutConfigurationRecorder",
            "InsufficientPermissionsException",
            20,
        )
        .await;
    let (task_id, _) = ask(
        &stack,
        &json!({"Name": "unlucky", "AccountType": "default"}),
        "local-admin",
    )
    .await;
    let task = stack.finished_task(&task_id).await;
    assert_eq!(task["Status"], "FAILED", "{task:?}");
    let a = account(&stack, task["Accounts"][0].as_str().unwrap()).await;
    assert_eq!(
        (a["Status"].as_str(), a["AssuranceState"].as_str()),
        (Some("ERROR"), Some("ERROR"))
    );
    let reason = a["StatusReason"].as_str().unwrap();
    assert!(
        reason.contains("config") && reason.contains("InsufficientPermissionsException"),
        "{reason}"
    );
    assert!(
        a["AssuranceStateReason"]
            .as_str()
            .unwrap()
            .contains("InsufficientPermissionsException")
    );
    assert!(a.get("UserTaskId").is_none(), "the lock is released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creations_beyond_the_organizations_slots_wait_their_turn() {
    let stack = Stack::start();
    stack.bootstrapped().await;
    // Each request stays IN_PROGRESS for a few status calls, so two hold both slots
    // (CreateAccountConcurrency is 2) while the third asks.
    stack
        .plan_create_account(&[
            ("SUCCEEDED", "", 3),
            ("SUCCEEDED", "", 3),
            ("SUCCEEDED", "", 3),
        ])
        .await;
    let bodies: Vec<Value> = (1..=3)
        .map(|n| json!({"Name": format!("queued-{n}"), "AccountType": "default"}))
        .collect();
    let (a, b, c) = tokio::join!(
        ask(&stack, &bodies[0], "local-admin"),
        ask(&stack, &bodies[1], "local-admin"),
        ask(&stack, &bodies[2], "local-admin"),
    );
    let mut busy_retries = 0;
    for (task_id, _) in [a, b, c] {
        assert_eq!(stack.finished_task(&task_id).await["Status"], "SUCCEEDED");
        busy_retries += stack
            .execution_history("CreateAccountStateMachine", &task_id)
            .await
            .iter()
            .filter_map(|e| {
                e.lambda_function_failed_event_details()
                    .map(|d| d.error().unwrap_or_default().to_owned())
                    .or_else(|| {
                        e.task_failed_event_details()
                            .map(|d| d.error().unwrap_or_default().to_owned())
                    })
            })
            .filter(|error| error == "CreateSlotsBusy")
            .count();
    }
    assert!(busy_retries >= 1, "one creation waited for a slot");
    let store = stack.store().await;
    assert_eq!(
        store
            .slots_in_use("organizations-create-account")
            .await
            .unwrap(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_aws_finished_after_the_workflow_stopped_waiting_is_linked_and_onboarded() {
    // A stack of its own: the injected fault is this test's alone.
    let stack = &Stack::start();
    stack.bootstrapped().await;
    // AWS accepts the CreateAccount request; the workflow's first status call is refused, so
    // the workflow records ERROR without an AWS account while AWS goes on creating it.
    const DESCRIBE: &str = "AWSOrganizationsV20161128.DescribeCreateAccountStatus";
    stack
        .inject_fault(DESCRIBE, "AccessDeniedException", 1)
        .await;
    let name = unique("late");
    let (task_id, _) = ask(
        stack,
        &json!({"Name": name, "AccountType": "default"}),
        "local-admin",
    )
    .await;
    let task = stack.finished_task(&task_id).await;
    assert_eq!(task["Status"], "FAILED", "{task:?}");
    let id = task["Accounts"][0].as_str().unwrap().to_owned();
    let a = account(stack, &id).await;
    assert_eq!(a["Status"], "ERROR");
    assert!(a.get("AwsAccountId").is_none(), "{a}");

    // AWS finishes the account (its CreateAccountResult event re-checks it).
    let org = aws_sdk_organizations::Client::new(&stack.sdk().await);
    let pending = org
        .list_create_account_status()
        .states(aws_sdk_organizations::types::CreateAccountState::InProgress)
        .send()
        .await
        .unwrap();
    let request = pending
        .create_account_statuses()
        .iter()
        .find(|s| s.account_name() == Some(name.as_str()))
        .expect("AWS still creating the account")
        .id()
        .unwrap()
        .to_owned();
    let aws_account_id = loop {
        let s = org
            .describe_create_account_status()
            .create_account_request_id(&request)
            .send()
            .await
            .unwrap()
            .create_account_status
            .unwrap();
        if let Some(id) = s.account_id() {
            break id.to_owned();
        }
    };

    // The member is linked to its record (its root email names it), which says what to do.
    let mut linked = Value::Null;
    for _ in 0..150 {
        linked = account(stack, &id).await;
        if linked.get("AwsAccountId").is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(linked["AwsAccountId"], aws_account_id.as_str(), "{linked}");
    assert_eq!(linked["Status"], "ERROR");
    assert!(
        linked["StatusReason"]
            .as_str()
            .unwrap()
            .contains("onboard it"),
        "{linked}"
    );
    let all = stack.api("GET", "/20190206/accounts", None, None).await;
    let records = all.body["Accounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["AwsAccountId"] == aws_account_id.as_str())
        .count();
    assert_eq!(records, 1, "linked, not discovered as a second record");

    // Onboarding finishes it.
    let body = json!({"AwsAccountId": aws_account_id, "AccountType": "default"});
    stack
        .operation_ends(
            "/20190206/accounts/onboard",
            &body,
            Some("local-admin"),
            "SUCCEEDED",
        )
        .await;
    let a = account(stack, &id).await;
    assert_eq!(
        (a["Status"].as_str(), a["Name"].as_str()),
        (Some("ACTIVE"), Some(name.as_str()))
    );
}
