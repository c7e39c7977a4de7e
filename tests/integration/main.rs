//! Integration tests: the real store, handlers and state machines on the local stack.
//! One test binary (one link of the SDK); each module is a feature.

mod api;
mod baseline;
mod compliance;
mod create;
mod discovery;
mod foundation;
mod manage;
mod policies;
mod store;
mod types;

use domain::Account;
use domain::fixtures;
use integration_tests::ApiResponse;
use uuid::Uuid;

/// A random, valid AWS account id (unique per test run with overwhelming probability).
pub fn aws_account_id() -> String {
    format!("{:012}", Uuid::new_v4().as_u128() % 1_000_000_000_000)
}

/// An external account as discovery would record it.
pub fn discovered(name: &str, aws_account_id: &str) -> Account {
    fixtures::discovered(name, Some(aws_account_id))
}

/// Of two identical requests made at once: exactly one was accepted and the other refused with
/// 409 `refused_as`. Answers the accepted one.
pub fn one_accepted(answers: Vec<ApiResponse>, refused_as: &str) -> ApiResponse {
    let mut statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{answers:?}");
    let (accepted, refused): (Vec<_>, Vec<_>) = answers.into_iter().partition(|r| r.status == 200);
    assert_eq!(refused[0].body["Error"], refused_as, "{refused:?}");
    accepted.into_iter().next().expect("one accepted")
}

/// Runs `n` copies of `f(i)` at once, on the test's worker threads, and returns their results
/// in the order they finished.
pub async fn race<T, Fut>(n: usize, f: impl Fn(usize) -> Fut) -> Vec<T>
where
    T: Send + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        set.spawn(f(i));
    }
    set.join_all().await
}
