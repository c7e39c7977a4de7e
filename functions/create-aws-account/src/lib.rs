//! The create workflow's AWS Organizations steps.
//!
//! - `Create`: takes one of the organization's CreateAccount slots (AWS allows only a few
//!   requests in flight; when all are taken the step fails with `CreateSlotsBusy` and the state
//!   machine waits its turn), then asks Organizations for the account, with a root email made from
//!   the configured template and the account's id. A retried invocation adopts the request an
//!   earlier one made instead of creating a second AWS account.
//! - `Describe`: the request's state; when it has ended, the slot is given back.
//! - `ReleaseSlot`: gives the slot back (the workflow's failure path).

use std::future::Future;
use std::time::Duration;

use aws::OrganizationsError;
use aws_sdk_organizations::types::{CreateAccountState, Tag};
use chrono::{DateTime, Utc};
use domain::config::{self, ConfigError};
use domain::{EmailTemplate, ErrorName, Named};
use serde::{Deserialize, Serialize};
use store::{AccountReads, DynamoStore, Slots, StoreError};
use uuid::Uuid;

/// The slots' name in the store.
pub const SLOTS: &str = "organizations-create-account";
/// How long the workflow waits for a CreateAccount request AWS still reports IN_PROGRESS. AWS
/// creates an account in minutes; a request pending for hours will not be waited on forever
/// (nor until the execution's 25,000-event history runs out).
pub const CREATE_TIMEOUT: Duration = Duration::from_secs(2 * 60 * 60);
/// The longest the workflow waits between two status calls (`CREATE_ACCOUNT_POLL_SECONDS`).
pub const MAX_POLL_SECONDS: u64 = 60 * 60;
/// A slot's lease: the longest a workflow can hold its slot — the wait for AWS, one more poll
/// interval before a status call sees the deadline passed, and half an hour for the steps'
/// retries — so only an abandoned workflow lets one lapse.
pub const SLOT_LEASE: Duration =
    Duration::from_secs(CREATE_TIMEOUT.as_secs() + MAX_POLL_SECONDS + 30 * 60);

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "Action")]
pub enum Request {
    Create {
        #[serde(rename = "AccountId")]
        account: Uuid,
        #[serde(rename = "TaskId")]
        task: Uuid,
    },
    Describe {
        #[serde(rename = "TaskId")]
        task: Uuid,
        #[serde(rename = "CreateAccountRequestId")]
        request_id: String,
        /// The record the request is for: an account the request created must carry its root
        /// email (an adopted in-progress request was matched by name alone).
        #[serde(rename = "AccountId", default)]
        account: Option<Uuid>,
    },
    ReleaseSlot {
        #[serde(rename = "TaskId")]
        task: Uuid,
    },
}

/// A CreateAccount request's state, as the state machine reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    #[serde(
        rename = "CreateAccountRequestId",
        skip_serializing_if = "Option::is_none"
    )]
    pub request_id: Option<String>,
    /// IN_PROGRESS, SUCCEEDED or FAILED.
    #[serde(rename = "State")]
    pub state: String,
    #[serde(rename = "AwsAccountId", skip_serializing_if = "Option::is_none")]
    pub aws_account_id: Option<String>,
    #[serde(rename = "Email", skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Why AWS refused (EMAIL_ALREADY_EXISTS, ACCOUNT_LIMIT_EXCEEDED, …).
    #[serde(rename = "FailureReason", skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// How long the workflow waits before asking again.
    #[serde(rename = "PollSeconds")]
    pub poll_seconds: u64,
}

/// A CreateAccount request Organizations knows about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRequest {
    pub id: String,
    pub account_name: String,
    pub state: String,
    pub aws_account_id: Option<String>,
    pub failure_reason: Option<String>,
    pub requested: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error(
        "{in_flight} CreateAccount requests are in flight, the most this organization runs at once; waiting for one to finish"
    )]
    CreateSlotsBusy { in_flight: usize },
    #[error(
        "CreateAccount request {request} created AWS account {aws_account_id} with the root email \
         {found}, not this account's {expected}: it was another request of the same name, and the \
         AWS account is not this record's"
    )]
    NotOurs {
        request: String,
        aws_account_id: String,
        found: String,
        expected: String,
    },
    #[error(transparent)]
    Organizations(#[from] OrganizationsError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Named for CreateError {
    fn name(&self) -> ErrorName {
        match self {
            CreateError::CreateSlotsBusy { .. } => ErrorName::CreateSlotsBusy,
            CreateError::NotOurs { .. } => ErrorName::CreatedAccountNotOurs,
            CreateError::Organizations(e) => e.name(),
            CreateError::Store(e) => e.name(),
        }
    }
}

/// What the create workflow asks of AWS Organizations.
pub trait Organizations: Send + Sync {
    fn create_account(
        &self,
        name: &str,
        email: &str,
        role_name: &str,
        account: Uuid,
    ) -> impl Future<Output = Result<CreateRequest, CreateError>> + Send;
    /// Requests that are in progress or succeeded.
    fn open_requests(&self)
    -> impl Future<Output = Result<Vec<CreateRequest>, CreateError>> + Send;
    fn describe(
        &self,
        request_id: &str,
    ) -> impl Future<Output = Result<CreateRequest, CreateError>> + Send;
    fn account_email(
        &self,
        aws_account_id: &str,
    ) -> impl Future<Output = Result<String, CreateError>> + Send;
}

pub struct Creator<O, R> {
    pub organizations: O,
    pub records: R,
    pub email: EmailTemplate,
    /// The role Organizations creates in the new account, through which assurance works.
    pub role_name: String,
    pub concurrency: usize,
    pub poll_seconds: u64,
}

impl Creator<aws_sdk_organizations::Client, DynamoStore> {
    /// `TABLE_NAME`, `ROOT_EMAIL_TEMPLATE`, `PROVISIONING_ROLE_NAME`, `CREATE_ACCOUNT_CONCURRENCY`,
    /// `CREATE_ACCOUNT_POLL_SECONDS`.
    pub fn from_env(sdk: &aws::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Creator {
            organizations: aws::organizations(sdk),
            records: DynamoStore::from_env(sdk)?,
            email: config::parsed("ROOT_EMAIL_TEMPLATE", EmailTemplate::parse)?,
            role_name: config::required("PROVISIONING_ROLE_NAME")?,
            // AWS runs at most 5 CreateAccount requests of an organization at once.
            concurrency: config::count("CREATE_ACCOUNT_CONCURRENCY", 5)? as usize,
            poll_seconds: config::count("CREATE_ACCOUNT_POLL_SECONDS", MAX_POLL_SECONDS)?,
        })
    }
}

pub async fn handle<O: Organizations, R: AccountReads + Slots>(
    c: &Creator<O, R>,
    request: Request,
) -> Result<Progress, CreateError> {
    match request {
        Request::Create { account, task } => create(c, account, task).await,
        Request::Describe {
            task,
            request_id,
            account,
        } => {
            let r = given_up(c.organizations.describe(&request_id).await?, Utc::now());
            if r.state != CreateAccountState::InProgress.as_str() {
                c.records.release_slot(SLOTS, task).await?;
            }
            let email = match &r.aws_account_id {
                Some(id) => Some(c.organizations.account_email(id).await?),
                None => None,
            };
            if let (Some(account), Some(found), Some(aws_account_id)) =
                (account, &email, &r.aws_account_id)
            {
                let expected = c.email.email(account);
                if *found != expected {
                    return Err(CreateError::NotOurs {
                        request: r.id,
                        aws_account_id: aws_account_id.clone(),
                        found: found.clone(),
                        expected,
                    });
                }
            }
            Ok(progress(c, r, email))
        }
        Request::ReleaseSlot { task } => {
            c.records.release_slot(SLOTS, task).await?;
            Ok(Progress {
                state: "RELEASED".into(),
                poll_seconds: c.poll_seconds,
                ..Progress::default()
            })
        }
    }
}

/// `r` as the workflow treats it at `now`: FAILED, saying why, when AWS has had it IN_PROGRESS
/// for longer than [`CREATE_TIMEOUT`].
pub fn given_up(mut r: CreateRequest, now: DateTime<Utc>) -> CreateRequest {
    let pending = r.state == CreateAccountState::InProgress.as_str();
    let limit = chrono::TimeDelta::seconds(CREATE_TIMEOUT.as_secs() as i64);
    if pending && r.requested.is_some_and(|t| now - t > limit) {
        r.state = CreateAccountState::Failed.as_str().into();
        r.failure_reason = Some(format!(
            "the request was still IN_PROGRESS {} hours after AWS accepted it; the service stopped waiting",
            limit.num_hours()
        ));
    }
    r
}

fn progress<O, R>(c: &Creator<O, R>, r: CreateRequest, email: Option<String>) -> Progress {
    Progress {
        request_id: Some(r.id),
        state: r.state,
        aws_account_id: r.aws_account_id,
        email,
        failure_reason: r.failure_reason,
        poll_seconds: c.poll_seconds,
    }
}

async fn create<O: Organizations, R: AccountReads + Slots>(
    c: &Creator<O, R>,
    id: Uuid,
    task: Uuid,
) -> Result<Progress, CreateError> {
    let account = c
        .records
        .get_account(id)
        .await?
        .ok_or(StoreError::AccountNotFound(id))?
        .value;
    let email = c.email.email(id);
    if let Some(aws_account_id) = account.aws_account_id {
        // Created and recorded already: a retried step after the workflow moved on.
        return Ok(Progress {
            state: CreateAccountState::Succeeded.as_str().into(),
            aws_account_id: Some(aws_account_id),
            email: Some(email),
            poll_seconds: c.poll_seconds,
            ..Progress::default()
        });
    }
    let aws_name = account
        .aws_account_name
        .clone()
        .unwrap_or_else(|| account.name.clone());
    if !c
        .records
        .acquire_slot(SLOTS, c.concurrency, task, SLOT_LEASE)
        .await?
    {
        return Err(CreateError::CreateSlotsBusy {
            in_flight: c.records.slots_in_use(SLOTS).await?,
        });
    }
    // An earlier invocation of this step may have asked already and died before answering.
    let since = account.created_ts - chrono::Duration::minutes(1);
    for earlier in c.organizations.open_requests().await? {
        if earlier.account_name != aws_name || earlier.requested.is_some_and(|t| t < since) {
            continue;
        }
        let ours = match &earlier.aws_account_id {
            Some(aws_id) => c.organizations.account_email(aws_id).await? == email,
            // Not created yet: names are unique among the service's accounts, so a request for
            // this name made after the account was recorded is this workflow's.
            None => true,
        };
        if ours {
            tracing::info!(
                request = earlier.id,
                "adopting the CreateAccount request of an earlier attempt"
            );
            return Ok(progress(c, earlier, Some(email)));
        }
    }
    let request = c
        .organizations
        .create_account(&aws_name, &email, &c.role_name, id)
        .await?;
    tracing::info!(request = request.id, account = %id, "CreateAccount requested");
    Ok(progress(c, request, Some(email)))
}

fn request_from(s: &aws_sdk_organizations::types::CreateAccountStatus) -> CreateRequest {
    CreateRequest {
        id: s.id().unwrap_or_default().to_owned(),
        account_name: s.account_name().unwrap_or_default().to_owned(),
        state: s.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        aws_account_id: s.account_id().map(str::to_owned),
        failure_reason: s.failure_reason().map(|r| r.as_str().to_owned()),
        requested: s
            .requested_timestamp()
            .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos())),
    }
}

impl Organizations for aws_sdk_organizations::Client {
    async fn create_account(
        &self,
        name: &str,
        email: &str,
        role_name: &str,
        account: Uuid,
    ) -> Result<CreateRequest, CreateError> {
        let tag = Tag::builder()
            .key("accounts:id")
            .value(account.to_string())
            .build()
            .map_err(|e| OrganizationsError::new(e.to_string()))?;
        let out = self
            .create_account()
            .account_name(name)
            .email(email)
            .role_name(role_name)
            .tags(tag)
            .send()
            .await
            .map_err(OrganizationsError::from)?;
        let status = out
            .create_account_status
            .ok_or_else(|| OrganizationsError::new("CreateAccount returned no status"))?;
        Ok(request_from(&status))
    }

    async fn open_requests(&self) -> Result<Vec<CreateRequest>, CreateError> {
        let pages = self
            .list_create_account_status()
            .states(CreateAccountState::InProgress)
            .states(CreateAccountState::Succeeded)
            .into_paginator()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(OrganizationsError::from)?;
        Ok(pages
            .iter()
            .flat_map(|p| p.create_account_statuses())
            .map(request_from)
            .collect())
    }

    async fn describe(&self, request_id: &str) -> Result<CreateRequest, CreateError> {
        let out = self
            .describe_create_account_status()
            .create_account_request_id(request_id)
            .send()
            .await
            .map_err(OrganizationsError::from)?;
        let status = out
            .create_account_status
            .ok_or_else(|| OrganizationsError::new("no status returned"))?;
        Ok(request_from(&status))
    }

    async fn account_email(&self, aws_account_id: &str) -> Result<String, CreateError> {
        let out = self
            .describe_account()
            .account_id(aws_account_id)
            .send()
            .await
            .map_err(OrganizationsError::from)?;
        Ok(out.account.and_then(|a| a.email).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_request_pending_for_hours_is_given_up() {
        let now = Utc::now();
        let request = |age_minutes: i64, state: &str| CreateRequest {
            id: "car-1".into(),
            account_name: "bakery".into(),
            state: state.into(),
            aws_account_id: None,
            failure_reason: None,
            requested: Some(now - chrono::TimeDelta::minutes(age_minutes)),
        };
        assert_eq!(
            given_up(request(5, "IN_PROGRESS"), now),
            request(5, "IN_PROGRESS")
        );
        let late = given_up(request(121, "IN_PROGRESS"), now);
        assert_eq!(late.state, "FAILED");
        assert!(
            late.failure_reason
                .unwrap()
                .contains("still IN_PROGRESS 2 hours after")
        );
        assert_eq!(given_up(request(500, "SUCCEEDED"), now).state, "SUCCEEDED");
    }

    use super::*;
    use domain::{Account, AccountStatus};
    use std::sync::Mutex;
    use store::MemoryStore;

    #[derive(Default)]
    struct Org {
        requests: Mutex<Vec<(CreateRequest, String)>>,
        created: Mutex<usize>,
    }

    impl Organizations for Org {
        async fn create_account(
            &self,
            name: &str,
            email: &str,
            _: &str,
            _: Uuid,
        ) -> Result<CreateRequest, CreateError> {
            *self.created.lock().unwrap() += 1;
            let r = CreateRequest {
                id: format!("car-{}", self.requests.lock().unwrap().len()),
                account_name: name.into(),
                state: "IN_PROGRESS".into(),
                aws_account_id: None,
                failure_reason: None,
                requested: Some(Utc::now()),
            };
            self.requests
                .lock()
                .unwrap()
                .push((r.clone(), email.into()));
            Ok(r)
        }
        async fn open_requests(&self) -> Result<Vec<CreateRequest>, CreateError> {
            Ok(self
                .requests
                .lock()
                .unwrap()
                .iter()
                .map(|(r, _)| r.clone())
                .filter(|r| r.state != "FAILED")
                .collect())
        }
        async fn describe(&self, id: &str) -> Result<CreateRequest, CreateError> {
            let requests = self.requests.lock().unwrap();
            Ok(requests.iter().find(|(r, _)| r.id == id).unwrap().0.clone())
        }
        async fn account_email(&self, aws_id: &str) -> Result<String, CreateError> {
            let requests = self.requests.lock().unwrap();
            Ok(requests
                .iter()
                .find(|(r, _)| r.aws_account_id.as_deref() == Some(aws_id))
                .unwrap()
                .1
                .clone())
        }
    }

    fn creator(accounts: Vec<Account>) -> Creator<Org, MemoryStore> {
        let records = MemoryStore::new();
        for account in accounts {
            records.insert(account);
        }
        Creator {
            organizations: Org::default(),
            records,
            email: EmailTemplate::parse("aws+{AccountId}@example.com").unwrap(),
            role_name: "stax-provisioning".into(),
            concurrency: 2,
            poll_seconds: 15,
        }
    }

    fn initializing(name: &str) -> Account {
        let mut a = domain::fixtures::account_in(AccountStatus::Initializing, name, None);
        a.created_ts = Utc::now() - chrono::Duration::seconds(5);
        a
    }

    #[tokio::test]
    async fn asks_for_the_account_with_the_templated_email_and_the_provisioning_role() {
        let a = initializing("bakery");
        let c = creator(vec![a.clone()]);
        let p = handle(
            &c,
            Request::Create {
                account: a.id,
                task: Uuid::new_v4(),
            },
        )
        .await
        .unwrap();
        assert_eq!((p.state.as_str(), p.poll_seconds), ("IN_PROGRESS", 15));
        let requests = c.organizations.requests.lock().unwrap();
        assert_eq!(requests[0].0.account_name, "bakery");
        assert_eq!(requests[0].1, format!("aws+{}@example.com", a.id));
    }

    #[tokio::test]
    async fn a_retried_create_adopts_the_earlier_request() {
        let a = initializing("bakery");
        let c = creator(vec![a.clone()]);
        let task = Uuid::new_v4();
        let first = handle(
            &c,
            Request::Create {
                account: a.id,
                task,
            },
        )
        .await
        .unwrap();
        let again = handle(
            &c,
            Request::Create {
                account: a.id,
                task,
            },
        )
        .await
        .unwrap();
        assert_eq!(first.request_id, again.request_id);
        assert_eq!(
            *c.organizations.created.lock().unwrap(),
            1,
            "one AWS account"
        );
    }

    #[tokio::test]
    async fn an_older_account_of_the_same_name_is_not_adopted() {
        let a = initializing("bakery");
        let c = creator(vec![a.clone()]);
        c.organizations.requests.lock().unwrap().push((
            CreateRequest {
                id: "car-old".into(),
                account_name: "bakery".into(),
                state: "SUCCEEDED".into(),
                aws_account_id: Some("999999999999".into()),
                failure_reason: None,
                requested: Some(Utc::now()),
            },
            "someone.else@example.com".into(),
        ));
        let p = handle(
            &c,
            Request::Create {
                account: a.id,
                task: Uuid::new_v4(),
            },
        )
        .await
        .unwrap();
        assert_ne!(p.request_id.as_deref(), Some("car-old"));
        assert_eq!(*c.organizations.created.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn excess_requests_wait_for_a_slot_and_describe_gives_it_back() {
        let accounts: Vec<Account> = (0..3).map(|i| initializing(&format!("a{i}"))).collect();
        let c = creator(accounts.clone());
        let tasks: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        handle(
            &c,
            Request::Create {
                account: accounts[0].id,
                task: tasks[0],
            },
        )
        .await
        .unwrap();
        let second = handle(
            &c,
            Request::Create {
                account: accounts[1].id,
                task: tasks[1],
            },
        )
        .await
        .unwrap();
        let e = handle(
            &c,
            Request::Create {
                account: accounts[2].id,
                task: tasks[2],
            },
        )
        .await
        .unwrap_err();
        assert_eq!(e.name(), ErrorName::CreateSlotsBusy);
        assert_eq!(*c.organizations.created.lock().unwrap(), 2);

        c.organizations.requests.lock().unwrap()[1].0.state = "FAILED".into();
        c.organizations.requests.lock().unwrap()[1].0.failure_reason =
            Some("EMAIL_ALREADY_EXISTS".into());
        let d = handle(
            &c,
            Request::Describe {
                task: tasks[1],
                request_id: second.request_id.unwrap(),
                account: Some(accounts[1].id),
            },
        )
        .await
        .unwrap();
        assert_eq!(d.failure_reason.as_deref(), Some("EMAIL_ALREADY_EXISTS"));
        handle(
            &c,
            Request::Create {
                account: accounts[2].id,
                task: tasks[2],
            },
        )
        .await
        .unwrap();
        assert_eq!(
            *c.organizations.created.lock().unwrap(),
            3,
            "the freed slot was taken"
        );
    }

    #[tokio::test]
    async fn an_adopted_request_that_made_someone_else_s_account_is_refused() {
        // A request of the same name, in progress when this workflow's step was retried: adopted
        // by its name; once AWS finishes it, its root email says whose it is.
        let a = initializing("bakery");
        let c = creator(vec![a.clone()]);
        let theirs = c
            .organizations
            .create_account("bakery", "someone@example.com", "r", Uuid::new_v4())
            .await
            .unwrap();
        let task = Uuid::new_v4();
        let adopted = handle(
            &c,
            Request::Create {
                account: a.id,
                task,
            },
        )
        .await
        .unwrap();
        assert_eq!(adopted.request_id.as_deref(), Some(theirs.id.as_str()));
        {
            let mut requests = c.organizations.requests.lock().unwrap();
            requests[0].0.state = "SUCCEEDED".into();
            requests[0].0.aws_account_id = Some("777788889999".into());
        }
        let describe = |account| Request::Describe {
            task,
            request_id: theirs.id.clone(),
            account,
        };
        let e = handle(&c, describe(Some(a.id))).await.unwrap_err();
        assert_eq!(e.name(), ErrorName::CreatedAccountNotOurs);
        let message = e.to_string();
        assert!(
            message.contains("777788889999") && message.contains("someone@example.com"),
            "{message}"
        );
        // This workflow's own request passes.
        c.organizations.requests.lock().unwrap()[0].1 = c.email.email(a.id);
        assert_eq!(
            handle(&c, describe(Some(a.id))).await.unwrap().state,
            "SUCCEEDED"
        );
    }

    #[tokio::test]
    async fn an_account_already_created_is_not_created_again() {
        let mut a = initializing("bakery");
        a.aws_account_id = Some("444455556666".into());
        let c = creator(vec![a.clone()]);
        let p = handle(
            &c,
            Request::Create {
                account: a.id,
                task: Uuid::new_v4(),
            },
        )
        .await
        .unwrap();
        assert_eq!(
            (p.state.as_str(), p.aws_account_id.as_deref()),
            ("SUCCEEDED", Some("444455556666"))
        );
        assert_eq!(*c.organizations.created.lock().unwrap(), 0);
    }
}
