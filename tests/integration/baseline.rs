//! The assurance baseline in every governed region: what a new and an onboarded account are
//! left with, a second run that changes nothing, deletions repaired in whichever region they
//! were made, and scores at or above 90 with a regional rule naming the region that fails it.

use integration_tests::Stack;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::create::unique;
use crate::discovery::create_outside;

/// A new account of type `default`, ACTIVE: (record id, AWS account id).
async fn created(stack: &Stack, name: &str) -> (String, String) {
    let body = json!({"Name": unique(name), "AccountType": "default"}).to_string();
    let r = stack
        .api("POST", "/20190206/accounts", Some(&body), None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let task = stack
        .finished_task(r.body["TaskId"].as_str().unwrap())
        .await;
    assert_eq!(task["Status"], "SUCCEEDED", "{task:?}");
    let id = task["Accounts"][0].as_str().unwrap().to_owned();
    let record = stack
        .api("GET", &format!("/20190206/accounts/{id}"), None, None)
        .await;
    let aws = record.body["Accounts"][0]["AwsAccountId"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, aws)
}

/// Runs Account Assurance again on the account; its task's log lines.
async fn maintain(stack: &Stack, id: &str) -> Vec<String> {
    let r = stack
        .api(
            "POST",
            &format!("/20190206/accounts/{id}/assurance"),
            None,
            Some("local-operations"),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let task = stack
        .finished_task(r.body["TaskId"].as_str().unwrap())
        .await;
    assert_eq!(task["Status"], "SUCCEEDED", "{task:?}");
    let stored = store::prelude::Tasks::get_task(
        &stack.store().await,
        Uuid::parse_str(r.body["TaskId"].as_str().unwrap()).unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    stored.value.logs
}

/// Scores the account now; the answer's body (summary and results).
async fn scored(stack: &Stack, id: &str) -> Value {
    let r = stack
        .api(
            "POST",
            &format!("/20190206/accounts/{id}/compliance"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body
}

/// The rules that did not pass, as "id STATE reason" lines.
fn not_passed(body: &Value) -> Vec<String> {
    body["Results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["State"] == "FAILED" || r["State"] == "UNKNOWN")
        .map(|r| format!("{} {} {}", r["RuleId"], r["State"], r["Reason"]))
        .collect()
}

fn result<'a>(body: &'a Value, rule: &str) -> &'a Value {
    body["Results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["RuleId"] == rule)
        .unwrap_or_else(|| panic!("no result for {rule}"))
}

/// At least 90, with every rule that did not pass printed (the test's output says why).
fn assert_at_least_90(body: &Value, what: &str) {
    let score = body["Compliance"]["Score"].as_u64().unwrap();
    for line in not_passed(body) {
        eprintln!("{what} ({score}): {line}");
    }
    assert!(score >= 90, "{what} scores {score}: {:?}", not_passed(body));
}

/// The second governed region (the first is the home region).
fn second(stack: &Stack) -> &str {
    let regions = &stack.ready.governed_regions;
    assert!(
        regions.len() >= 2,
        "the local stack governs two regions: {regions:?}"
    );
    &regions[1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_account_is_hardened_in_every_governed_region_and_scores_at_least_90() {
    let stack = Stack::workflows().bootstrapped().await;
    let (id, aws) = created(stack, "regional").await;
    let sdk = stack.in_account(&aws).await;
    let home = stack.ready.governed_regions[0].clone();
    let security = &stack.ready.organization.security_account_id;
    let logging = &stack.ready.organization.logging_account_id;
    second(stack);
    for region in &stack.ready.governed_regions {
        let here = aws::in_region(&sdk, region);
        let gd = aws_sdk_guardduty::Client::new(&here);
        let detectors = gd.list_detectors().send().await.unwrap();
        assert_eq!(detectors.detector_ids().len(), 1, "{region}");
        let admin = gd
            .get_administrator_account()
            .detector_id(&detectors.detector_ids()[0])
            .send()
            .await
            .unwrap();
        assert_eq!(
            admin.administrator().and_then(|a| a.account_id()),
            Some(security.as_str()),
            "{region}"
        );
        let cfg = aws_sdk_config::Client::new(&here);
        let recorders = cfg.describe_configuration_recorders().send().await.unwrap();
        let group = recorders.configuration_recorders()[0]
            .recording_group()
            .unwrap();
        assert!(group.all_supported(), "{region}");
        assert_eq!(
            group.include_global_resource_types(),
            *region == home,
            "global resource types in the home region alone ({region})"
        );
        let status = cfg
            .describe_configuration_recorder_status()
            .send()
            .await
            .unwrap();
        assert!(
            status.configuration_recorders_status()[0].recording(),
            "{region}"
        );
        let doc = aws_sdk_ssm::Client::new(&here)
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
        let ec2 = aws_sdk_ec2::Client::new(&here);
        assert_eq!(
            ec2.get_ebs_encryption_by_default()
                .send()
                .await
                .unwrap()
                .ebs_encryption_by_default(),
            Some(true),
            "{region}"
        );
        let imds = ec2.get_instance_metadata_defaults().send().await.unwrap();
        assert_eq!(
            imds.account_level().and_then(|l| l.http_tokens()),
            Some(&aws_sdk_ec2::types::HttpTokensState::Required),
            "{region}"
        );
        let default_vpcs = ec2
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
        assert!(default_vpcs.vpcs().is_empty(), "{region}: {default_vpcs:?}");
        let analyzers = aws_sdk_accessanalyzer::Client::new(&here)
            .list_analyzers()
            .send()
            .await
            .unwrap();
        assert_eq!(
            analyzers
                .analyzers()
                .iter()
                .map(|a| (a.name(), a.status().as_str()))
                .collect::<Vec<_>>(),
            [("accounts-access-analyzer", "ACTIVE")],
            "{region}"
        );
    }

    // The trail: the Logging account's key, and CloudWatch Logs, where the monitoring is.
    let trails = aws_sdk_cloudtrail::Client::new(&sdk)
        .describe_trails()
        .trail_name_list("accounts-baseline")
        .send()
        .await
        .unwrap();
    let trail = &trails.trail_list()[0];
    assert!(
        trail
            .kms_key_id()
            .unwrap_or_default()
            .starts_with(&format!("arn:aws:kms:{home}:{logging}:key/")),
        "{trail:?}"
    );
    assert_eq!(
        trail.cloud_watch_logs_log_group_arn(),
        Some(format!("arn:aws:logs:{home}:{aws}:log-group:accounts-baseline-trail:*").as_str())
    );
    let filters = aws_sdk_cloudwatchlogs::Client::new(&sdk)
        .describe_metric_filters()
        .log_group_name("accounts-baseline-trail")
        .send()
        .await
        .unwrap();
    assert_eq!(filters.metric_filters().len(), 15);
    let alarms = aws_sdk_cloudwatch::Client::new(&sdk)
        .describe_alarms()
        .alarm_name_prefix("accounts-cis-")
        .send()
        .await
        .unwrap();
    assert_eq!(alarms.metric_alarms().len(), 15);
    for alarm in alarms.metric_alarms() {
        assert_eq!(
            alarm.alarm_actions(),
            [format!("arn:aws:sns:{home}:{aws}:accounts-security-alarms")],
            "{alarm:?}"
        );
    }

    let body = scored(stack, &id).await;
    assert_at_least_90(&body, "a new account");
    for rule in [
        "cis-1.5", "cis-1.6", "cis-1.20", "cis-3.5", "cis-4.3", "cis-5.6",
    ] {
        assert_eq!(
            result(&body, rule)["State"],
            "PASSED",
            "{rule}: {}",
            result(&body, rule)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_changes_nothing_and_a_deletion_in_any_region_is_repaired() {
    let stack = Stack::workflows().bootstrapped().await;
    let (id, aws) = created(stack, "repaired").await;
    let logs = maintain(stack, &id).await;
    assert!(
        logs.iter().any(|l| l.contains("nothing changed")),
        "{logs:?}"
    );

    // Deletions in the second region (by the test's administrator, whom the SCP does not stop).
    let other = second(stack).to_owned();
    let home = stack.ready.governed_regions[0].clone();
    let sdk = stack.in_account(&aws).await;
    let there = aws::in_region(&sdk, &other);
    let ec2 = aws_sdk_ec2::Client::new(&there);
    ec2.disable_ebs_encryption_by_default()
        .send()
        .await
        .unwrap();
    ec2.modify_instance_metadata_defaults()
        .http_tokens(aws_sdk_ec2::types::MetadataDefaultHttpTokensState::Optional)
        .send()
        .await
        .unwrap();
    aws_sdk_ssm::Client::new(&there)
        .delete_document()
        .name("SSM-SessionManagerRunShell")
        .send()
        .await
        .unwrap();
    aws_sdk_accessanalyzer::Client::new(&there)
        .delete_analyzer()
        .analyzer_name("accounts-access-analyzer")
        .send()
        .await
        .unwrap();
    aws_sdk_config::Client::new(&there)
        .stop_configuration_recorder()
        .configuration_recorder_name("default")
        .send()
        .await
        .unwrap();
    // In the home region: one control's filter and alarm, and the trail's key.
    aws_sdk_cloudwatchlogs::Client::new(&sdk)
        .delete_metric_filter()
        .log_group_name("accounts-baseline-trail")
        .filter_name("root-usage")
        .send()
        .await
        .unwrap();
    aws_sdk_cloudwatch::Client::new(&sdk)
        .delete_alarms()
        .alarm_names("accounts-cis-root-usage")
        .send()
        .await
        .unwrap();
    aws_sdk_cloudtrail::Client::new(&sdk)
        .update_trail()
        .name("accounts-baseline")
        .kms_key_id("")
        .send()
        .await
        .unwrap();
    // And root credentials made again (as recovering the root password would, were it allowed).
    stack.give_root_credentials(&aws, 1).await;

    let logs = maintain(stack, &id).await;
    let applied = logs
        .iter()
        .find(|l| l.starts_with("Account Assurance applied"))
        .unwrap_or_else(|| panic!("a repair: {logs:?}"));
    for repair in [
        format!("{other}: turned on EBS encryption by default"),
        format!("{other}: new instances require IMDSv2 by default"),
        format!("{other}: Session Manager logs sessions"),
        format!("{other}: started configuration recorder default"),
        format!("{other}: created IAM Access Analyzer accounts-access-analyzer"),
        "metric filters on log group accounts-baseline-trail for CIS 4.3".to_owned(),
        "alarms notifying accounts-security-alarms for CIS 4.3".to_owned(),
        "restored trail accounts-baseline".to_owned(),
        "deleted the root user's credentials (a password, 1 access key)".to_owned(),
    ] {
        assert!(applied.contains(&repair), "{repair:?} in {applied}");
    }
    assert!(
        !applied.contains(&format!("{home}: turned on EBS"))
            && !applied.contains(&format!("{home}: Session Manager")),
        "only what drifted is touched: {applied}"
    );
    let logs = maintain(stack, &id).await;
    assert!(
        logs.iter().any(|l| l.contains("nothing changed")),
        "{logs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_failing_in_one_region_fails_naming_that_region() {
    let stack = Stack::workflows().bootstrapped().await;
    let (id, aws) = created(stack, "one-region-off").await;
    let other = second(stack).to_owned();
    let home = stack.ready.governed_regions[0].clone();
    let sdk = stack.in_account(&aws).await;
    aws_sdk_ec2::Client::new(&aws::in_region(&sdk, &other))
        .disable_ebs_encryption_by_default()
        .send()
        .await
        .unwrap();
    let body = scored(stack, &id).await;
    let ebs = result(&body, "cis-2.2.1");
    assert_eq!(ebs["State"], "FAILED", "{ebs}");
    let reason = ebs["Reason"].as_str().unwrap();
    assert!(reason.starts_with(&format!("{other}: ")), "{reason}");
    assert!(
        !reason.contains(&home),
        "the passing region is not named: {reason}"
    );
    // Account-wide rules are judged once, and still pass.
    assert_eq!(result(&body, "cis-1.8")["State"], "PASSED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_onboarded_account_loses_its_root_credentials_and_scores_at_least_90() {
    let stack = Stack::workflows().bootstrapped().await;
    let name = unique("joined");
    // The provisioning role made with the account (as Organizations does: administrator,
    // trusting the management account), so no discovery sees it half made.
    let aws = create_outside(stack, &name, "stax-provisioning").await;
    // Made outside the organization: a root password and an access key.
    let given = stack.give_root_credentials(&aws, 1).await;
    assert_eq!(
        (given["Password"].clone(), given["AccessKeys"].clone()),
        (json!(true), json!(1))
    );
    let r = stack
        .api(
            "POST",
            &format!("/20190206/accounts/discover/{aws}"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let body = json!({"AwsAccountId": aws, "AccountType": "default"});
    let task = stack
        .operation_ends(
            "/20190206/accounts/onboard",
            &body,
            Some("local-operations"),
            "SUCCEEDED",
        )
        .await;
    let id = task["Accounts"][0].as_str().unwrap().to_owned();
    let summary = aws_sdk_iam::Client::new(&stack.in_account(&aws).await)
        .get_account_summary()
        .send()
        .await
        .unwrap();
    assert_eq!(
        summary
            .summary_map()
            .and_then(|m| m.get(&aws_sdk_iam::types::SummaryKeyType::AccountAccessKeysPresent))
            .copied(),
        Some(0),
        "the root user's access key is gone"
    );
    let body = scored(stack, &id).await;
    assert_at_least_90(&body, "an onboarded account");
    let mfa = result(&body, "cis-1.5");
    assert_eq!(mfa["State"], "PASSED", "{mfa}");
    assert!(
        mfa["Reason"].as_str().unwrap().contains("no credentials"),
        "{mfa}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_vpc_in_use_is_kept_with_its_default_group_closed_and_admin_ports_denied() {
    let stack = Stack::workflows().bootstrapped().await;
    let (id, aws) = created(stack, "in-use").await;
    let other = second(stack).to_owned();
    let sdk = stack.in_account(&aws).await;
    let ec2 = aws_sdk_ec2::Client::new(&aws::in_region(&sdk, &other));
    // A default VPC again (the test's administrator is not held by the SCP), and a workload in it.
    let vpc = ec2
        .create_default_vpc()
        .send()
        .await
        .unwrap()
        .vpc
        .unwrap()
        .vpc_id
        .unwrap();
    let in_vpc = aws_sdk_ec2::types::Filter::builder()
        .name("vpc-id")
        .values(&vpc)
        .build();
    let subnets = ec2
        .describe_subnets()
        .filters(in_vpc.clone())
        .send()
        .await
        .unwrap();
    ec2.create_network_interface()
        .subnet_id(subnets.subnets()[0].subnet_id().unwrap())
        .send()
        .await
        .unwrap();

    let logs = maintain(stack, &id).await;
    let applied = logs
        .iter()
        .find(|l| l.starts_with("Account Assurance applied"))
        .unwrap_or_else(|| panic!("a change: {logs:?}"));
    for said in [
        format!("{other}: default VPC {vpc} is in use (1 network interface(s)): kept, and closed:"),
        "admits and sends nothing".to_owned(),
        "denies 0.0.0.0/0 and ::/0 ports 22 and 3389".to_owned(),
    ] {
        assert!(applied.contains(&said), "{said:?} in {applied}");
    }
    let still = ec2.describe_vpcs().vpc_ids(&vpc).send().await.unwrap();
    assert_eq!(still.vpcs().len(), 1, "kept");

    let body = scored(stack, &id).await;
    for rule in ["cis-5.1", "cis-5.4"] {
        assert_eq!(
            result(&body, rule)["State"],
            "PASSED",
            "{rule}: {}",
            result(&body, rule)
        );
    }
    // No flow log is made for it (see the README's Limits): 3.7 fails, naming the region.
    let flow = result(&body, "cis-3.7");
    assert_eq!(flow["State"], "FAILED", "{flow}");
    assert!(
        flow["Reason"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{other}: ")),
        "{flow}"
    );

    let logs = maintain(stack, &id).await;
    assert!(
        logs.iter().any(|l| l.contains("nothing changed")),
        "{logs:?}"
    );
}
