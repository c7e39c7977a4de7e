//! Closes a member account through Organizations `CloseAccount`, from the management account.
//!
//! AWS limits closures: a rolling 30-day quota of 10 % of the organization's members (at least
//! 10, at most 1,000), refused as `ConstraintViolationException` with reason
//! `CLOSE_ACCOUNT_QUOTA_EXCEEDED`, and a small number of closures at once
//! (`CLOSE_ACCOUNT_REQUESTS_LIMIT_EXCEEDED`). Neither fails a closure: the answer is `QUEUED`
//! with AWS's reason, and the close workflow waits `CLOSE_QUEUE_RETRY_SECONDS` and asks again,
//! until AWS admits it. Once admitted the account is `PENDING_CLOSURE` and then `SUSPENDED`;
//! either means AWS has it (`CLOSED`), and the workflow records the account CLOSED.
//!
//! Idempotent: an account AWS already closes or closed is not closed again (a retried step, or
//! a closure that reached AWS before its Lambda died).

use std::future::Future;

use aws::OrganizationsError;
use domain::config::{self, ConfigError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "Action")]
pub enum Request {
    /// Close the account, or say why AWS makes it wait.
    Close {
        #[serde(rename = "AwsAccountId")]
        aws_account_id: String,
    },
    /// Has AWS closed it yet?
    Describe {
        #[serde(rename = "AwsAccountId")]
        aws_account_id: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum State {
    /// AWS reports the account PENDING_CLOSURE or SUSPENDED.
    #[serde(rename = "CLOSED")]
    Closed,
    /// AWS took the request; the account is not closing yet.
    #[serde(rename = "CLOSING")]
    Closing,
    /// AWS's quota or concurrency limit holds the closure back: wait and try again.
    #[serde(rename = "QUEUED")]
    Queued,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Answer {
    #[serde(rename = "State")]
    pub state: State,
    /// The account's status in AWS, as it was read.
    #[serde(rename = "AwsStatus")]
    pub aws_status: String,
    /// What AWS said, for the task's Logs (a queued closure: why it waits, and for how long).
    #[serde(rename = "Log")]
    pub log: String,
    /// How long the workflow waits before its next call.
    #[serde(rename = "WaitSeconds")]
    pub wait_seconds: u64,
}

/// Does AWS hold the account as closing or closed? (`State` says PENDING_CLOSURE, SUSPENDED or,
/// after the 90 days, CLOSED; the older `Status` SUSPENDED or PENDING_CLOSURE.)
pub fn is_closed(aws_status: &str) -> bool {
    matches!(aws_status, "PENDING_CLOSURE" | "SUSPENDED" | "CLOSED")
}

/// Why AWS makes a closure wait, when its refusal is one of the limits a queue outlasts; `None`
/// for every other failure (which fails the closure or is retried as a failure).
pub fn queued_because(e: &OrganizationsError) -> Option<String> {
    let limit = [
        "CLOSE_ACCOUNT_QUOTA_EXCEEDED",
        "CLOSE_ACCOUNT_REQUESTS_LIMIT_EXCEEDED",
    ]
    .into_iter()
    .find(|reason| e.message.contains(reason))?;
    let why = if limit == "CLOSE_ACCOUNT_QUOTA_EXCEEDED" {
        "AWS's closure quota (10 % of the organization's members in a rolling 30 days, at least 10) is used up"
    } else {
        "AWS is closing as many of the organization's accounts at once as it allows"
    };
    (e.code.as_deref() == Some("ConstraintViolationException")).then(|| format!("{why} ({limit})"))
}

/// What closing asks of AWS Organizations.
pub trait Closures: Send + Sync {
    /// The account's status (`ACTIVE`, `PENDING_CLOSURE`, `SUSPENDED`).
    fn status(
        &self,
        aws_account_id: &str,
    ) -> impl Future<Output = Result<String, OrganizationsError>> + Send;
    fn close(
        &self,
        aws_account_id: &str,
    ) -> impl Future<Output = Result<(), OrganizationsError>> + Send;
}

pub struct Closer<O> {
    pub organizations: O,
    /// The wait between two tries of a queued closure.
    pub queue_retry_seconds: u64,
    /// The wait between two status calls of a closure AWS took.
    pub poll_seconds: u64,
}

/// The longest either wait may be: an hour.
pub const MAX_WAIT_SECONDS: u64 = 60 * 60;

impl Closer<aws_sdk_organizations::Client> {
    /// `CLOSE_QUEUE_RETRY_SECONDS`, `CLOSE_POLL_SECONDS`.
    pub fn from_env(sdk: &aws::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Closer {
            organizations: aws::organizations(sdk),
            queue_retry_seconds: config::count("CLOSE_QUEUE_RETRY_SECONDS", MAX_WAIT_SECONDS)?,
            poll_seconds: config::count("CLOSE_POLL_SECONDS", MAX_WAIT_SECONDS)?,
        })
    }
}

pub async fn handle<O: Closures>(
    c: &Closer<O>,
    request: Request,
) -> Result<Answer, OrganizationsError> {
    let answer = |state, aws_status: String, why: Option<String>| {
        let wait_seconds = if state == State::Queued {
            c.queue_retry_seconds
        } else {
            c.poll_seconds
        };
        let log = match state {
            State::Queued => format!(
                "Queued: {}; the closure is tried again every {wait_seconds} s until AWS admits it",
                why.unwrap_or_default()
            ),
            State::Closed => format!("AWS reports the account {aws_status}"),
            State::Closing => {
                format!("AWS took the closure; the account is {aws_status} until it closes")
            }
        };
        Answer {
            state,
            aws_status,
            log,
            wait_seconds,
        }
    };
    let (Request::Close { aws_account_id } | Request::Describe { aws_account_id }) = &request;
    let status = c.organizations.status(aws_account_id).await?;
    if is_closed(&status) {
        return Ok(answer(State::Closed, status, None));
    }
    if matches!(request, Request::Describe { .. }) {
        return Ok(answer(State::Closing, status, None));
    }
    match c.organizations.close(aws_account_id).await {
        Ok(()) => {}
        Err(e) => match queued_because(&e) {
            Some(why) => return Ok(answer(State::Queued, status, Some(why))),
            None => return Err(e),
        },
    }
    let status = c.organizations.status(aws_account_id).await?;
    let state = if is_closed(&status) {
        State::Closed
    } else {
        State::Closing
    };
    Ok(answer(state, status, None))
}

impl Closures for aws_sdk_organizations::Client {
    async fn status(&self, aws_account_id: &str) -> Result<String, OrganizationsError> {
        let out = self
            .describe_account()
            .account_id(aws_account_id)
            .send()
            .await?;
        let account = out
            .account()
            .ok_or_else(|| OrganizationsError::new("DescribeAccount answered no account"))?;
        // `State` is the newer field (it has PENDING_CLOSURE); `Status` the older one.
        Ok(account
            .state()
            .map(|s| s.as_str().to_owned())
            .or_else(|| account.status().map(|s| s.as_str().to_owned()))
            .unwrap_or_default())
    }

    async fn close(&self, aws_account_id: &str) -> Result<(), OrganizationsError> {
        match self.close_account().account_id(aws_account_id).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = OrganizationsError::from(e);
                // Closed meanwhile (by a retried step, or by hand): what the workflow wanted.
                if e.code.as_deref() == Some("AccountAlreadyClosedException") {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// One account's status and the closures AWS admits.
    struct Org {
        status: Mutex<String>,
        /// The refusal of the next closures, while set.
        refusal: Mutex<Option<OrganizationsError>>,
        closes: Mutex<u32>,
    }

    impl Closures for Org {
        async fn status(&self, _: &str) -> Result<String, OrganizationsError> {
            Ok(self.status.lock().unwrap().clone())
        }
        async fn close(&self, _: &str) -> Result<(), OrganizationsError> {
            if let Some(e) = self.refusal.lock().unwrap().clone() {
                return Err(e);
            }
            *self.closes.lock().unwrap() += 1;
            *self.status.lock().unwrap() = "PENDING_CLOSURE".into();
            Ok(())
        }
    }

    fn quota_exceeded() -> OrganizationsError {
        OrganizationsError {
            code: Some("ConstraintViolationException".into()),
            message: "ConstraintViolationException: You have exceeded close account quota for the past 30 days. (CLOSE_ACCOUNT_QUOTA_EXCEEDED)".into(),
        }
    }

    fn closer() -> Closer<Org> {
        Closer {
            organizations: Org {
                status: Mutex::new("ACTIVE".into()),
                refusal: Mutex::new(Some(quota_exceeded())),
                closes: Mutex::new(0),
            },
            queue_retry_seconds: 3600,
            poll_seconds: 60,
        }
    }

    #[tokio::test]
    async fn a_closure_over_the_quota_waits_in_the_queue_and_then_closes_once() {
        let c = closer();
        let close = Request::Close {
            aws_account_id: "444455556666".into(),
        };
        let queued = handle(&c, close.clone()).await.unwrap();
        assert_eq!((queued.state, queued.wait_seconds), (State::Queued, 3600));
        assert!(
            queued.log.starts_with("Queued: AWS's closure quota")
                && queued.log.contains("CLOSE_ACCOUNT_QUOTA_EXCEEDED")
                && queued.log.contains("every 3600 s"),
            "the Logs say why, and for how long: {}",
            queued.log
        );
        *c.organizations.refusal.lock().unwrap() = None;
        let closed = handle(&c, close.clone()).await.unwrap();
        assert_eq!(
            (closed.state, closed.aws_status.as_str()),
            (State::Closed, "PENDING_CLOSURE")
        );
        handle(&c, close).await.unwrap();
        assert_eq!(*c.organizations.closes.lock().unwrap(), 1, "closed once");
    }

    #[tokio::test]
    async fn other_refusals_fail_and_describing_never_closes() {
        let c = closer();
        *c.organizations.refusal.lock().unwrap() = Some(OrganizationsError {
            code: Some("ConstraintViolationException".into()),
            message: "ConstraintViolationException: CLOSE_ACCOUNT_QUOTA_EXCEEDED".into(),
        });
        let describe = Request::Describe {
            aws_account_id: "444455556666".into(),
        };
        let seen = handle(&c, describe).await.unwrap();
        assert_eq!((seen.state, seen.wait_seconds), (State::Closing, 60));
        *c.organizations.refusal.lock().unwrap() = Some(OrganizationsError {
            code: Some("AccessDeniedException".into()),
            message: "AccessDeniedException: not the management account".into(),
        });
        let e = handle(
            &c,
            Request::Close {
                aws_account_id: "444455556666".into(),
            },
        )
        .await
        .unwrap_err();
        assert!(e.is_refusal());
        assert_eq!(*c.organizations.closes.lock().unwrap(), 0);
    }

    #[test]
    fn every_state_aws_closes_through_counts_as_closed() {
        for closed in ["PENDING_CLOSURE", "SUSPENDED", "CLOSED"] {
            assert!(is_closed(closed), "{closed}");
        }
        assert!(!is_closed("ACTIVE"));
    }

    #[test]
    fn only_the_closure_limits_queue() {
        assert!(queued_because(&quota_exceeded()).is_some());
        let concurrent = OrganizationsError {
            code: Some("ConstraintViolationException".into()),
            message: "ConstraintViolationException: CLOSE_ACCOUNT_REQUESTS_LIMIT_EXCEEDED".into(),
        };
        assert!(queued_because(&concurrent).unwrap().contains("at once"));
        let other = OrganizationsError {
            code: Some("ConstraintViolationException".into()),
            message: "ConstraintViolationException: MASTER_ACCOUNT_MISSING_CONTACT_INFO".into(),
        };
        assert_eq!(queued_because(&other), None);
    }
}
