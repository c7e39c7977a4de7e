//! Compliance scores: accounts scored through the API and by a scoring run, what one changed
//! setting does to a score, the reads, refusals, and the store's guarantee that a score and a
//! record change never overwrite each other.

use domain::AccountStatus;
use domain::compliance::{ComplianceSummary, RuleResult, RuleState};
use domain::{AccountChange, Transition, Trigger};
use integration_tests::{ApiResponse, Stack};
use serde_json::{Value, json};
use store::StoreError;
use uuid::Uuid;

use crate::{aws_account_id, discovered, one_accepted, race};
#[allow(unused_imports)]
use store::prelude::*;

async fn created_active(stack: &Stack, name: &str) -> Value {
    let body = json!({"Name": name, "AccountType": "default"}).to_string();
    let r = stack
        .api("POST", "/20190206/accounts", Some(&body), None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let task = stack
        .finished_task(r.body["TaskId"].as_str().unwrap())
        .await;
    assert_eq!(task["Status"], "SUCCEEDED", "{task:?}");
    let id = task["Accounts"][0].as_str().unwrap();
    record(stack, id).await
}

async fn record(stack: &Stack, id: &str) -> Value {
    let r = stack
        .api("GET", &format!("/20190206/accounts/{id}"), None, None)
        .await;
    assert_eq!(r.status, 200);
    r.body["Accounts"][0].clone()
}

/// Discovers the seeded member `name` through the API and answers its record.
async fn discovered_member(stack: &Stack, name: &str) -> Value {
    let aws = stack
        .ready
        .organization
        .members
        .iter()
        .find(|m| m.name == name)
        .unwrap()
        .aws_account_id
        .clone();
    let r = stack
        .api(
            "POST",
            &format!("/20190206/accounts/discover/{aws}"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    stack
        .api(
            "GET",
            &format!("/20190206/accounts?aws_account_id_filter={aws}"),
            None,
            None,
        )
        .await
        .body["Accounts"][0]
        .clone()
}

async fn score(stack: &Stack, id: &str) -> ApiResponse {
    stack
        .api(
            "POST",
            &format!("/20190206/accounts/{id}/compliance"),
            None,
            None,
        )
        .await
}

/// (rule id -> (state, weight)) of a scoring's results.
fn states(results: &Value) -> std::collections::BTreeMap<String, (String, u64)> {
    results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["RuleId"].as_str().unwrap().to_owned(),
                (
                    r["State"].as_str().unwrap().to_owned(),
                    r["Weight"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

/// The score the published formula gives for these results.
fn formula(states: &std::collections::BTreeMap<String, (String, u64)>) -> u64 {
    let (mut passed, mut counted) = (0, 0);
    for (state, weight) in states.values() {
        match state.as_str() {
            "PASSED" => {
                passed += weight;
                counted += weight;
            }
            "FAILED" | "UNKNOWN" => counted += weight,
            _ => {}
        }
    }
    (200 * passed + counted) / (2 * counted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_setting_flips_exactly_its_rule_and_costs_its_weight() {
    let stack = Stack::workflows().bootstrapped().await;
    let account = created_active(stack, "scored-sandbox").await;
    let id = account["Id"].as_str().unwrap();
    let aws = account["AwsAccountId"].as_str().unwrap();

    let first = score(stack, id).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let before = states(&first.body["Results"]);
    assert_eq!(before["cis-1.8"].0, "PASSED");
    let score_before = first.body["Compliance"]["Score"].as_u64().unwrap();
    assert_eq!(score_before, formula(&before));
    // The score is on the record too. (A scoring run of another test may score the account
    // again meanwhile: same settings, same score.)
    assert_eq!(
        record(stack, id).await["Compliance"]["Score"].as_u64(),
        Some(score_before)
    );

    // A password policy that asks for 8 characters instead of 14 (the rest as the baseline set).
    let iam = aws_sdk_iam::Client::new(&stack.in_account(aws).await);
    iam.update_account_password_policy()
        .minimum_password_length(8)
        .password_reuse_prevention(24)
        .require_symbols(true)
        .require_numbers(true)
        .require_uppercase_characters(true)
        .require_lowercase_characters(true)
        .allow_users_to_change_password(true)
        .send()
        .await
        .unwrap();

    let second = score(stack, id).await;
    assert_eq!(second.status, 200, "{:?}", second.body);
    let after = states(&second.body["Results"]);
    let flipped: Vec<&String> = before
        .keys()
        .filter(|rule| before[*rule].0 != after[*rule].0)
        .collect();
    assert_eq!(
        flipped,
        ["cis-1.8"],
        "only the password length rule changes"
    );
    assert_eq!(after["cis-1.8"].0, "FAILED");
    let reason = second.body["Results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["RuleId"] == "cis-1.8")
        .unwrap()["Reason"]
        .clone();
    assert_eq!(
        reason,
        "passwords need only 8 characters (at least 14 wanted)"
    );
    // The score drops by the rule's weight in the formula, and only by that.
    let weight = before["cis-1.8"].1;
    let mut expected = before.clone();
    expected.insert("cis-1.8".into(), ("FAILED".into(), weight));
    let score_after = second.body["Compliance"]["Score"].as_u64().unwrap();
    assert_eq!(score_after, formula(&expected));
    assert!(score_after < score_before, "{score_after} < {score_before}");

    // The latest results and the history, newest first, readable by every role.
    let latest = stack
        .api(
            "GET",
            &format!("/20190206/accounts/{id}/compliance"),
            None,
            Some("local-readonly"),
        )
        .await;
    assert_eq!(latest.status, 200);
    assert_eq!(
        latest.body["Compliance"]["Score"].as_u64(),
        Some(score_after)
    );
    assert_eq!(states(&latest.body["Results"]), after);
    let history = stack
        .api(
            "GET",
            &format!("/20190206/accounts/{id}/compliance/history?limit=10"),
            None,
            Some("local-user"),
        )
        .await;
    assert_eq!(history.status, 200, "{:?}", history.body);
    let entries = history.body["History"].as_array().unwrap();
    let failed = |e: &Value| {
        e["FailedRules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "cis-1.8")
    };
    // Newest first; a scoring run of another test may have added entries of its own.
    assert_eq!(entries[0]["Score"].as_u64(), Some(score_after));
    assert!(failed(&entries[0]));
    assert!(
        entries
            .iter()
            .any(|e| e["Score"].as_u64() == Some(score_before) && !failed(e)),
        "{entries:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assured_account_scores_higher_than_an_external_one_and_says_why() {
    let stack = Stack::workflows().bootstrapped().await;
    let assured = created_active(stack, "scored-assured").await;
    let external = discovered_member(stack, "workload-beta").await;
    assert_eq!(external["Status"], "DISCOVERED");

    let a = score(stack, assured["Id"].as_str().unwrap()).await;
    let e = score(stack, external["Id"].as_str().unwrap()).await;
    assert_eq!((a.status, e.status), (200, 200));
    let (sa, se) = (
        a.body["Compliance"]["Score"].as_u64().unwrap(),
        e.body["Compliance"]["Score"].as_u64().unwrap(),
    );
    assert!(sa > se, "assured {sa} > external {se}");
    let (ra, re) = (states(&a.body["Results"]), states(&e.body["Results"]));
    // What the baseline makes, the external account lacks.
    for rule in [
        "cis-1.8",
        "cis-1.9",
        "cis-2.1.4",
        "cis-2.2.1",
        "cis-3.1",
        "cis-3.2",
        "cis-3.3",
        "accounts-guardduty",
        "accounts-session-logging",
        "accounts-baseline-trail",
    ] {
        assert_eq!(
            (ra[rule].0.as_str(), re[rule].0.as_str()),
            ("PASSED", "FAILED"),
            "{rule}"
        );
    }
    // Manual controls and Config rules that are not deployed are never scored.
    assert_eq!(ra["cis-1.3"].0, "NOT_APPLICABLE");
    assert_eq!(ra["cis-2.3.1"].0, "NOT_APPLICABLE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoring_run_scores_every_scorable_account_once_at_a_time() {
    let stack = Stack::workflows().bootstrapped().await;
    let account = created_active(stack, "scored-by-run").await;
    let id = account["Id"].as_str().unwrap().to_owned();
    assert!(account.get("Compliance").is_none());

    let before_run = domain::timestamp::format(&chrono::Utc::now());
    let answers = race(2, |_| async move {
        Stack::workflows()
            .api("POST", "/20190206/accounts/compliance", Some("{}"), None)
            .await
    })
    .await;
    let started = one_accepted(answers, "ScoringInProgress");
    assert_eq!(
        started.body["Detail"]["Operation"],
        "compliance:ScoreAccounts"
    );
    let task = stack
        .finished_task(started.body["TaskId"].as_str().unwrap())
        .await;
    assert_eq!(task["Status"], "SUCCEEDED", "{task:?}");
    let log = task["Logs"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap();
    assert!(log.contains("accounts scored"), "{log}");

    let scored = record(stack, &id).await;
    let summary: ComplianceSummary =
        serde_json::from_value(scored["Compliance"].clone()).expect("a score on the record");
    assert!(summary.score.is_some_and(|s| s > 0));
    // An assured account fails nothing that has data (the baseline closes it all).
    assert!(summary.passed > 0 && summary.not_applicable > 0);
    assert_eq!(summary.failed, 0, "{summary:?}");

    // Every account that was scorable, and unchanged, since before the run has a score.
    let all = stack.api("GET", "/20190206/accounts", None, None).await;
    for a in all.body["Accounts"].as_array().unwrap() {
        let scorable =
            ["DISCOVERED", "ACTIVE", "SUSPENDED"].contains(&a["Status"].as_str().unwrap());
        if scorable && a["ModifiedTS"].as_str().unwrap() < before_run.as_str() {
            assert!(a.get("Compliance").is_some(), "{a}");
        }
    }
    // The run is over: another may start, here from the template's schedule, fired by the
    // emulator's EventBridge Scheduler with the schedule's input.
    let task = stack
        .fire_schedule("ScoreComplianceFunctionSchedule", "ScoringStateMachine")
        .await;
    assert_eq!(task["Status"], "SUCCEEDED", "{task:?}");
}

/// (method, path, body, signed as, expected status)
type Refused<'a> = (&'a str, String, Option<&'a str>, Option<&'a str>, u16);

#[tokio::test]
async fn refused_compliance_requests_say_why_and_write_nothing() {
    let stack = Stack::shared().bootstrapped().await;
    let store = stack.store().await;
    let before = store.snapshot().await.unwrap();
    let management = stack
        .api(
            "GET",
            &format!(
                "/20190206/accounts?aws_account_id_filter={}",
                stack.ready.organization.management_account_id
            ),
            None,
            None,
        )
        .await
        .body["Accounts"][0]["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let unknown = Uuid::new_v4();
    let cases: Vec<Refused> = vec![
        (
            "POST",
            "/20190206/accounts/not-an-id/compliance".into(),
            None,
            None,
            400,
        ),
        (
            "POST",
            format!("/20190206/accounts/{unknown}/compliance"),
            None,
            None,
            404,
        ),
        (
            "POST",
            format!("/20190206/accounts/{management}/compliance"),
            Some(r#"{"Rules": ["cis-1.8"]}"#),
            None,
            400,
        ),
        (
            "POST",
            format!("/20190206/accounts/{management}/compliance?dry_run=1"),
            None,
            None,
            400,
        ),
        (
            "POST",
            format!("/20190206/accounts/{management}/compliance"),
            None,
            Some("local-readonly"),
            403,
        ),
        (
            "POST",
            "/20190206/accounts/compliance".into(),
            None,
            Some("local-user"),
            403,
        ),
        (
            "POST",
            "/20190206/accounts/compliance".into(),
            Some("[]"),
            None,
            400,
        ),
        (
            "GET",
            format!("/20190206/accounts/{unknown}/compliance"),
            None,
            None,
            404,
        ),
        (
            "GET",
            "/20190206/accounts/nope/compliance/history".into(),
            None,
            None,
            400,
        ),
        (
            "GET",
            format!("/20190206/accounts/{management}/compliance/history?limit=0"),
            None,
            None,
            400,
        ),
        (
            "GET",
            format!("/20190206/accounts/{management}/compliance/history?since=1"),
            None,
            None,
            400,
        ),
        (
            "GET",
            format!("/20190206/accounts/{management}/compliance"),
            None,
            Some("local-outsider"),
            403,
        ),
    ];
    for (method, path, body, user, status) in &cases {
        let r = stack.api(method, path, *body, *user).await;
        assert_eq!(r.status, *status, "{method} {path} -> {:?}", r.body);
        assert!(r.body["Cause"].is_string(), "{:?}", r.body);
    }
    // Before any scoring, the reads answer with no results.
    let r = stack
        .api(
            "GET",
            &format!("/20190206/accounts/{management}/compliance"),
            None,
            None,
        )
        .await;
    assert_eq!((r.status, &r.body["Results"]), (200, &json!([])));
    let rules = stack
        .api(
            "GET",
            "/20190206/compliance/rules",
            None,
            Some("local-readonly"),
        )
        .await;
    assert_eq!(rules.status, 200);
    assert!(rules.body["Rules"].as_array().unwrap().len() >= 60);
    assert_eq!(store.snapshot().await.unwrap(), before);
}

fn summary_at(score: u8, at: chrono::DateTime<chrono::Utc>) -> ComplianceSummary {
    ComplianceSummary {
        score: Some(score),
        l1_score: Some(score),
        l2_score: None,
        passed: 1,
        failed: 0,
        not_applicable: 0,
        unknown: 0,
        bundle_version: "test".into(),
        evaluated_ts: at,
    }
}

#[tokio::test]
async fn a_score_and_a_record_change_never_overwrite_each_other() {
    let store = Stack::shared().fresh_store().await;
    let read = store
        .create_account(
            &discovered("scored", &aws_account_id()),
            Trigger::RecordDiscovered,
            None,
            "test",
        )
        .await
        .unwrap();
    let results = [RuleResult {
        rule_id: "cis-1.8".into(),
        state: RuleState::Passed,
        reason: "ok".into(),
    }];
    let t1 = domain::timestamp::now();
    assert!(
        store
            .record_compliance(read.value.id, &summary_at(80, t1), &results)
            .await
            .unwrap()
    );
    // The score wrote no new version and no audit event.
    let scored = store.get_account(read.value.id).await.unwrap().unwrap();
    assert_eq!(scored.version, read.version);
    assert_eq!(scored.value.compliance, Some(summary_at(80, t1)));
    assert_eq!(store.audit_trail(read.value.id).await.unwrap().len(), 1);

    // A change from a read taken before the score is stale (it would erase the score)...
    let change = AccountChange::transition(Transition::to(
        Trigger::StartOnboarding,
        AccountStatus::Onboarding,
    ));
    assert!(matches!(
        store.apply(&read, &change, "test").await,
        Err(StoreError::Stale { .. })
    ));
    // ...one from a fresh read keeps it.
    let changed = store.update(read.value.id, &change, "test").await.unwrap();
    assert_eq!(changed.value.compliance, Some(summary_at(80, t1)));

    // An older result never replaces a newer one (a retried scoring), and writes nothing.
    let older = t1 - chrono::Duration::minutes(5);
    assert!(
        !store
            .record_compliance(read.value.id, &summary_at(10, older), &results)
            .await
            .unwrap()
    );
    let now = store.get_account(read.value.id).await.unwrap().unwrap();
    assert_eq!(now.value.compliance, Some(summary_at(80, t1)));
    assert_eq!(
        store
            .compliance_history(read.value.id, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    // Unknown accounts are refused.
    assert!(matches!(
        store
            .record_compliance(Uuid::new_v4(), &summary_at(1, t1), &results)
            .await,
        Err(StoreError::AccountNotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_reads_are_retried_and_failed_ones_are_unknown_never_passed() {
    // A stack of its own: its faults must meet this test's calls alone.
    let stack = Stack::start();
    let alpha = discovered_member(&stack, "workload-alpha").await;
    let id = alpha["Id"].as_str().unwrap().to_owned();
    const CONFIG_RULES: &str = "StarlingDoveService.DescribeConfigRules";
    const RECORDERS: &str = "StarlingDoveService.DescribeConfigurationRecorders";

    // Throttled twice: the SDK retries, and the results are as without throttling.
    stack
        .inject_fault(CONFIG_RULES, "ThrottlingException", 2)
        .await;
    let r = score(&stack, &id).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(stack.faults_served(CONFIG_RULES).await, 2);
    let calm = states(&r.body["Results"]);
    assert_eq!(calm["cis-2.3.1"].0, "NOT_APPLICABLE");
    assert_eq!(calm["cis-3.3"].0, "FAILED");

    // Refused, in every governed region (one call each): the rules that need that source are
    // UNKNOWN with AWS's reason; the others are as they were, and the score counts the
    // unknowns against the account. (Refused in one region only, the rule would stay FAILED:
    // a failure in any region outranks a region that could not be judged.)
    let regions = stack.ready.governed_regions.len() as u32;
    stack
        .inject_fault(RECORDERS, "AccessDeniedException", regions)
        .await;
    let r = score(&stack, &id).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let refused = states(&r.body["Results"]);
    let changed: Vec<&String> = calm
        .keys()
        .filter(|rule| calm[*rule].0 != refused[*rule].0)
        .collect();
    assert_eq!(changed, ["cis-3.3"]);
    assert_eq!(refused["cis-3.3"].0, "UNKNOWN");
    let reason = r.body["Results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["RuleId"] == "cis-3.3")
        .unwrap()["Reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        reason.contains("AWS Config: AccessDeniedException"),
        "{reason}"
    );
    let unknown = |s: &std::collections::BTreeMap<String, (String, u64)>| {
        s.values().filter(|(state, _)| state == "UNKNOWN").count() as u64
    };
    assert_eq!(
        r.body["Compliance"]["Unknown"].as_u64(),
        Some(unknown(&calm) + 1)
    );
}
