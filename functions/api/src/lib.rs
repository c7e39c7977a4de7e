//! The read API (API Gateway HTTP API, payload format 2.0, IAM auth): accounts, Account Types
//! and tasks.
//!
//! API Gateway has already matched the route; [`route`] dispatches on the route key
//! (`GET /20190206/accounts/{account_id}`), checks the caller's role, and answers in the Stax
//! shapes. It is transport-free and generic over the store's read traits, so it is tested
//! against the in-memory store.

use std::collections::HashMap;

use domain::AccountFilter;
use domain::config::{self, ConfigError};
use edge::stax::{
    ListAccountsQuery, ListRoute, MAX_LIMIT, Pagination, ReadAccountTypes, ReadAccounts,
    parse_account_types_query, parse_uuid,
};
use edge::{AccessPolicy, ApiError, ApiRequest, Permission, authorize};
use serde_json::{Value, json};
use store::{AccountReads, AccountTypes, DynamoStore, Policies, StoreError, Tasks};

/// The store reads the API makes.
pub trait Records: AccountReads + AccountTypes + Policies + Tasks {}
impl<S: AccountReads + AccountTypes + Policies + Tasks> Records for S {}

pub mod policies;

pub use policies::PolicyReads;

pub struct ReadApi<S, O> {
    pub store: S,
    /// Organizations, for the policies in force on an account.
    pub organizations: O,
    pub access: AccessPolicy,
}

impl ReadApi<DynamoStore, aws_sdk_organizations::Client> {
    /// `TABLE_NAME`: the accounts table; `ACCESS_ROLES`: principal ARN → role (JSON object).
    pub fn from_env(sdk: &aws::SdkConfig) -> Result<Self, ConfigError> {
        Ok(ReadApi {
            store: DynamoStore::from_env(sdk)?,
            organizations: aws::organizations(sdk),
            access: AccessPolicy::from_json(&config::required("ACCESS_ROLES")?)?,
        })
    }
}

pub const LIST_ACCOUNTS: &str = "GET /20190206/accounts";
pub const GET_ACCOUNT: &str = "GET /20190206/accounts/{account_id}";
pub const LIST_ACCOUNT_TYPES: &str = "GET /20190206/accounts/types";
pub const GET_ACCOUNT_TYPE: &str = "GET /20190206/accounts/types/{account_type_id}";
pub const GET_TASK: &str = "GET /20190206/task/{task_id}";
pub const ACCOUNT_EVENTS: &str = "GET /20190206/accounts/{account_id}/events";
pub const ACCOUNT_POLICIES: &str = "GET /20190206/accounts/{account_id}/policies";
pub const LIST_POLICIES: &str = "GET /20190206/policies";
pub const GET_POLICY: &str = "GET /20190206/policies/{policy_id}";
pub const POLICY_ATTACHMENTS: &str = "GET /20190206/policies/{policy_id}/attachments";

/// The page `GET …/events` answers when the request names no `limit`.
pub const DEFAULT_EVENTS_LIMIT: usize = 100;

/// Answers one request: `Ok` is a 200 body, `Err` an error response.
pub async fn route<S: Records, O: PolicyReads>(
    api: &ReadApi<S, O>,
    req: ApiRequest,
) -> Result<Value, ApiError> {
    let req = &req;
    match req.route_key.as_str() {
        LIST_ACCOUNTS | GET_ACCOUNT | LIST_ACCOUNT_TYPES | GET_ACCOUNT_TYPE | GET_TASK
        | ACCOUNT_EVENTS | ACCOUNT_POLICIES | LIST_POLICIES | GET_POLICY | POLICY_ATTACHMENTS => {}
        other => return Err(ApiError::not_found(format!("no route {other:?}"))),
    }
    authorize(&api.access, req.principal.as_deref(), Permission::Read)?;
    let internal = |e: StoreError| req.internal(&e);
    match req.route_key.as_str() {
        ACCOUNT_POLICIES => {
            let raw = req.path_param("account_id");
            let id =
                parse_uuid(raw).map_err(|e| ApiError::bad_request(format!("account_id: {e}")))?;
            req.only_query(&[])?;
            let account = api
                .store
                .get_account(id)
                .await
                .map_err(internal)?
                .ok_or_else(|| ApiError::not_found(format!("account {id} does not exist")))?
                .value;
            let mut attachments = policies::in_force(&api.organizations, &account)
                .await
                .map_err(|e| req.internal(&e))?;
            let records = policy_records(api).await.map_err(internal)?;
            policies::with_record_ids(&mut attachments, &records);
            Ok(json!({"PolicyAttachments": attachments}))
        }
        LIST_POLICIES | GET_POLICY | POLICY_ATTACHMENTS => {
            let statuses = if req.route_key == LIST_POLICIES {
                policies::parse_statuses(req)?
            } else {
                req.only_query(&[])?;
                None
            };
            let mut all = policy_records(api).await.map_err(internal)?;
            all.extend(
                api.organizations
                    .service_policies()
                    .await
                    .map_err(|e| req.internal(&e))?,
            );
            if req.route_key == LIST_POLICIES {
                all.retain(|p| statuses.as_ref().is_none_or(|s| s.contains(&p.status)));
                all.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
                let views: Vec<_> = all.iter().map(edge::policies::policy_view).collect();
                return Ok(json!({"Policies": views}));
            }
            // An unknown id answers an empty list, as for accounts and types (the Stax document
            // gives these routes no 404).
            let id = parse_uuid(req.path_param("policy_id"))
                .map_err(|e| ApiError::bad_request(format!("policy_id: {e}")))?;
            let found = all.iter().find(|p| p.id == id);
            if req.route_key == GET_POLICY {
                let views: Vec<_> = found.into_iter().map(edge::policies::policy_view).collect();
                return Ok(json!({"Policies": views}));
            }
            let views: Vec<_> = found
                .into_iter()
                .filter(|p| p.status != domain::policies::PolicyStatus::Deleted)
                .flat_map(|p| {
                    p.attachments
                        .iter()
                        .map(move |a| edge::policies::attachment_view(p, a))
                })
                .collect();
            Ok(json!({"PolicyAttachments": views}))
        }
        ACCOUNT_EVENTS => {
            let raw = req.path_param("account_id");
            let id =
                parse_uuid(raw).map_err(|e| ApiError::bad_request(format!("account_id: {e}")))?;
            let page = events_page(req)?;
            if api.store.get_account(id).await.map_err(internal)?.is_none() {
                return Err(ApiError::not_found(format!("account {id} does not exist")));
            }
            let mut events = api.store.audit_trail(id).await.map_err(internal)?;
            events.sort_by_key(|e| std::cmp::Reverse(e.version));
            let total = events.len();
            let end = page.offset.saturating_add(page.limit).min(total);
            let paging = Pagination {
                total,
                next_offset: (end < total).then_some(end),
                prev_offset: (page.offset > 0).then(|| page.offset.saturating_sub(page.limit)),
            };
            let events: Vec<_> = events
                .into_iter()
                .skip(page.offset)
                .take(page.limit)
                .collect();
            Ok(json!({"Events": events, "Paging": paging}))
        }
        GET_TASK => {
            let raw = req.path_param("task_id");
            let id = parse_uuid(raw).map_err(|e| ApiError::bad_request(format!("task_id: {e}")))?;
            req.only_query(&[])?;
            let task = api.store.get_task(id).await.map_err(internal)?;
            let task = task
                .ok_or_else(|| ApiError::not_found(format!("task {id} does not exist")))?
                .value;
            // tasks.ReadTask admits no other properties.
            Ok(json!({"Status": task.status, "Logs": task.logs, "Accounts": task.accounts}))
        }
        LIST_ACCOUNT_TYPES | GET_ACCOUNT_TYPE => {
            // One type by id answers the list with it alone (none for an unknown id), as
            // `GET …/accounts/{account_id}` does.
            let ids = if req.route_key == GET_ACCOUNT_TYPE {
                req.only_query(&[])?;
                let id = parse_uuid(req.path_param("account_type_id"))
                    .map_err(|e| ApiError::bad_request(format!("account_type_id: {e}")))?;
                Some([id].into())
            } else {
                parse_account_types_query(req.query_pairs())?
            };
            let every_account = AccountFilter::default();
            let (types, accounts, policies) = tokio::try_join!(
                api.store.list_account_types(),
                api.store.list_accounts(&every_account),
                policy_records(api)
            )
            .map_err(internal)?;
            Ok(serde_json::to_value(ReadAccountTypes::build(
                types,
                &accounts,
                &policies,
                ids.as_ref(),
            ))
            .expect("the response serialises"))
        }
        GET_ACCOUNT => {
            let raw = req.path_param("account_id");
            let id =
                parse_uuid(raw).map_err(|e| ApiError::bad_request(format!("account_id: {e}")))?;
            let mut q = ListAccountsQuery::parse(req.query_pairs(), ListRoute::Account)?;
            q.filter = q.filter.restrict_to(id);
            read_accounts(api, &q).await.map_err(internal)
        }
        _ => {
            let q = ListAccountsQuery::parse(req.query_pairs(), ListRoute::Accounts)?;
            read_accounts(api, &q).await.map_err(internal)
        }
    }
}

/// `offset` and `limit` of the events route (newest first).
struct EventsPage {
    offset: usize,
    limit: usize,
}

fn events_page(req: &ApiRequest) -> Result<EventsPage, ApiError> {
    req.only_query(&["offset", "limit"])?;
    let number = |name: &str| -> Result<Option<usize>, ApiError> {
        let values: Vec<&str> = req
            .query_pairs()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v)
            .collect();
        match values.as_slice() {
            [] => Ok(None),
            [v] => v.trim().parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("{name} must be a whole number, got {v:?}"))
            }),
            _ => Err(ApiError::bad_request(format!("{name} may be given once"))),
        }
    };
    let limit = number("limit")?.unwrap_or(DEFAULT_EVENTS_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_LIMIT}, got {limit}"
        )));
    }
    Ok(EventsPage {
        offset: number("offset")?.unwrap_or(0),
        limit,
    })
}

/// Every policy recorded (the service's own foundation policy is read from Organizations).
async fn policy_records<S: Records, O>(
    api: &ReadApi<S, O>,
) -> Result<Vec<domain::policies::Policy>, StoreError> {
    Ok(api
        .store
        .list_policies()
        .await?
        .into_iter()
        .map(|p| p.value)
        .collect())
}

async fn read_accounts<S: Records, O>(
    api: &ReadApi<S, O>,
    q: &ListAccountsQuery,
) -> Result<Value, StoreError> {
    let (accounts, types) = tokio::try_join!(
        api.store.list_accounts(&q.filter),
        api.store.list_account_types()
    )?;
    let type_names: HashMap<_, _> = types.into_iter().map(|t| (t.id, t.name)).collect();
    Ok(
        serde_json::to_value(ReadAccounts::build(accounts, &type_names, q))
            .expect("the response serialises"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use domain::{Account, AccountRole, AccountStatus, AccountType, Operation, Task, TaskStatus};
    use domain::{ErrorName, fixtures};
    use store::MemoryStore;
    use uuid::Uuid;

    const ADMIN: &str = "arn:aws:iam::123456789012:role/Admin";
    const READER: &str = "arn:aws:sts::123456789012:assumed-role/Reader/alice";

    /// The API over a store with the Security account (of its foundation type), a workload
    /// account and a task.
    /// An organization whose root carries the foundation SCP, every account directly under it.
    struct Root;

    impl PolicyReads for Root {
        async fn ancestors(
            &self,
            _: &str,
        ) -> Result<Vec<policies::Level>, aws::OrganizationsError> {
            Ok(vec![policies::Level::Root("r-root".into())])
        }
        async fn attached(
            &self,
            target: &str,
        ) -> Result<Vec<policies::Attached>, aws::OrganizationsError> {
            Ok(if target == "r-root" {
                vec![policies::Attached {
                    aws_policy_id: "p-foundation".into(),
                    name: "foundation".into(),
                    managed: true,
                }]
            } else {
                Vec::new()
            })
        }
        async fn service_policies(
            &self,
        ) -> Result<Vec<domain::policies::Policy>, aws::OrganizationsError> {
            Ok(Vec::new())
        }
    }

    struct Fixture {
        api: ReadApi<MemoryStore, Root>,
        security: AccountType,
        accounts: Vec<Account>,
        task: Task,
    }

    async fn api() -> Fixture {
        let store = MemoryStore::new();
        let security = store
            .ensure_account_type("foundation-security")
            .await
            .unwrap();
        let account = |name: &str, aws: &str, role, account_type: Option<Uuid>| Account {
            account_role: role,
            account_type,
            ..fixtures::account_in(AccountStatus::Active, name, Some(aws))
        };
        let accounts = vec![
            account(
                "security",
                "111111111111",
                AccountRole::Security,
                Some(security.id),
            ),
            account("workload", "222222222222", AccountRole::Member, None),
        ];
        for a in &accounts {
            store.insert(a.clone());
        }
        let task = task();
        store.insert_task(task.clone());
        Fixture {
            api: ReadApi {
                store,
                organizations: Root,
                access: AccessPolicy::from_json(&format!(
                    r#"{{"{ADMIN}": "admin", "arn:aws:iam::123456789012:role/Reader": "readonly"}}"#
                ))
                .unwrap(),
            },
            security,
            accounts,
            task,
        }
    }

    fn request(
        route_key: &str,
        principal: &str,
        path: &[(&str, &str)],
        query: &[(&str, &str)],
    ) -> ApiRequest {
        ApiRequest {
            route_key: route_key.into(),
            principal: Some(principal.into()),
            path: path
                .iter()
                .map(|&(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            query: query
                .iter()
                .map(|&(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            body: None,
            request_id: "req-1".into(),
        }
    }

    #[tokio::test]
    async fn policies_are_read_in_the_stax_shape_with_their_attachments() {
        use domain::policies::{
            AttachmentTarget, Policy, PolicyAttachment, PolicyOwner, PolicyStatus,
        };
        let f = api().await;
        let now = domain::timestamp::now();
        let workload = f.accounts[1].id;
        let policy = |name: &str, status| {
            Policy {
            id: Uuid::new_v4(),
            name: name.into(),
            description: "no S3".into(),
            content: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:*","Resource":"*"}]}"#.into(),
            status,
            owner: PolicyOwner::Organisation,
            aws_id: Some(format!("p-{name}")),
            organisation_id: Some(f.accounts[0].organisation_id),
            tags: Default::default(),
            attachments: vec![PolicyAttachment {
                id: Uuid::new_v4(),
                target: AttachmentTarget::Account { account_id: workload },
                aws_target_id: "222222222222".into(),
                created_ts: now,
                task: None,
            }],
            created_ts: now,
            modified_ts: now,
            task: None,
        }
        };
        let live = policy("live", PolicyStatus::Active);
        let gone = policy("gone", PolicyStatus::Deleted);
        f.api.store.create_policy(&live).await.unwrap();
        f.api.store.create_policy(&gone).await.unwrap();
        let mut creating = policy("creating", PolicyStatus::CreateInProgress);
        creating.attachments.clear();
        f.api.store.create_policy(&creating).await.unwrap();
        // By default ACTIVE and DELETED, as the Stax document's filter defaults.
        let all = route(&f.api, request(LIST_POLICIES, READER, &[], &[]))
            .await
            .unwrap();
        let names: Vec<_> = all["Policies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["Name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["gone", "live"]);
        let active = route(
            &f.api,
            request(LIST_POLICIES, READER, &[], &[("status", "ACTIVE")]),
        )
        .await
        .unwrap();
        let p = &active["Policies"][0];
        assert_eq!(active["Policies"].as_array().unwrap().len(), 1);
        assert_eq!(
            (p["PolicyType"].as_str(), p["PolicyOwner"].as_str()),
            (Some("SCP"), Some("ORGANISATION"))
        );
        assert_eq!(p["Content"]["Statement"][0]["Effect"], "Deny");
        let e = route(
            &f.api,
            request(LIST_POLICIES, READER, &[], &[("status", "GONE")]),
        )
        .await
        .unwrap_err();
        assert_eq!((e.status, e.error), (400, ErrorName::ValidationError));
        let id = live.id.to_string();
        let one = route(
            &f.api,
            request(GET_POLICY, READER, &[("policy_id", &id)], &[]),
        )
        .await
        .unwrap();
        assert_eq!(one["Policies"][0]["Id"], id);
        let attachments = route(
            &f.api,
            request(POLICY_ATTACHMENTS, READER, &[("policy_id", &id)], &[]),
        )
        .await
        .unwrap();
        let a = &attachments["PolicyAttachments"][0];
        assert_eq!(
            (a["PolicyAttachmentType"].as_str(), a["AccountId"].as_str()),
            (Some("ACCOUNT"), Some(workload.to_string().as_str()))
        );
        let gone_id = gone.id.to_string();
        let none = route(
            &f.api,
            request(POLICY_ATTACHMENTS, READER, &[("policy_id", &gone_id)], &[]),
        )
        .await
        .unwrap();
        assert_eq!(
            none["PolicyAttachments"],
            json!([]),
            "a deleted policy is attached nowhere"
        );
        let unknown = Uuid::new_v4().to_string();
        let none = route(
            &f.api,
            request(GET_POLICY, READER, &[("policy_id", &unknown)], &[]),
        )
        .await
        .unwrap();
        assert_eq!(none["Policies"], json!([]), "an unknown id: an empty list");
        // In force on the account, the record's ids are shown.
        let mut in_force = vec![
            json!({"AwsPolicyId": "p-live", "AwsTargetId": "222222222222", "PolicyId": "x", "Id": "y"}),
        ];
        policies::with_record_ids(&mut in_force, std::slice::from_ref(&live));
        assert_eq!(in_force[0]["PolicyId"], id);
        assert_eq!(in_force[0]["Id"], live.attachments[0].id.to_string());
    }

    #[tokio::test]
    async fn lists_accounts_with_their_type_names() {
        let body = route(
            &api().await.api,
            request(
                LIST_ACCOUNTS,
                READER,
                &[],
                &[("sort", "Name"), ("sort_order", "ASC")],
            ),
        )
        .await
        .unwrap();
        let accounts = body["Accounts"].as_array().unwrap();
        assert_eq!(accounts.len(), 2);
        assert_eq!(accounts[0]["Name"], "security");
        assert_eq!(accounts[0]["AccountRole"], "SECURITY");
        assert_eq!(accounts[0]["AccountTypeName"], "foundation-security");
    }

    #[tokio::test]
    async fn account_types_list_their_accounts_and_filter_by_id() {
        let f = api().await;
        let api = &f.api;
        let security = &f.security;
        let body = route(api, request(LIST_ACCOUNT_TYPES, READER, &[], &[]))
            .await
            .unwrap();
        let types = body["AccountTypes"].as_array().unwrap();
        assert_eq!(types.len(), 1);
        assert_eq!(types[0]["Name"], "foundation-security");
        assert_eq!(types[0]["Status"], "ACTIVE");
        assert_eq!(types[0]["StaxCreated"], true);
        assert_eq!(types[0]["Accounts"], json!([f.accounts[0].id.to_string()]));
        assert_eq!(
            types[0]["OrganisationId"],
            f.accounts[0].organisation_id.to_string()
        );
        assert_eq!(
            (types[0]["Policies"].clone(), types[0]["Roles"].clone()),
            (json!([]), json!([]))
        );

        let id = security.id.to_string();
        let other = Uuid::new_v4().to_string();
        let both = format!("{id},{other}");
        let body = route(
            api,
            request(LIST_ACCOUNT_TYPES, READER, &[], &[("id_filter", &both)]),
        )
        .await
        .unwrap();
        assert_eq!(body["AccountTypes"].as_array().unwrap().len(), 1);
        let body = route(
            api,
            request(LIST_ACCOUNT_TYPES, READER, &[], &[("id_filter", &other)]),
        )
        .await
        .unwrap();
        assert_eq!(body, json!({"AccountTypes": []}));

        for query in [("id_filter", "not-a-uuid"), ("name_filter", "x")] {
            let e = route(api, request(LIST_ACCOUNT_TYPES, READER, &[], &[query]))
                .await
                .unwrap_err();
            assert_eq!(
                (e.status, e.error),
                (400, ErrorName::ValidationError),
                "{query:?}"
            );
        }

        // One type by its id, as the list with it alone.
        let body = route(
            api,
            request(GET_ACCOUNT_TYPE, READER, &[("account_type_id", &id)], &[]),
        )
        .await
        .unwrap();
        assert_eq!(body["AccountTypes"].as_array().unwrap().len(), 1);
        assert_eq!(body["AccountTypes"][0]["Id"], id);
        let body = route(
            api,
            request(
                GET_ACCOUNT_TYPE,
                READER,
                &[("account_type_id", &other)],
                &[],
            ),
        )
        .await
        .unwrap();
        assert_eq!(body, json!({"AccountTypes": []}));
        let e = route(
            api,
            request(GET_ACCOUNT_TYPE, READER, &[("account_type_id", "x")], &[]),
        )
        .await
        .unwrap_err();
        assert_eq!(e.status, 400);
    }

    #[tokio::test]
    async fn one_account_by_id_and_an_empty_list_for_an_unknown_id() {
        let f = api().await;
        let api = &f.api;
        let id = f.accounts[1].id.to_string();
        let body = route(
            api,
            request(GET_ACCOUNT, ADMIN, &[("account_id", &id)], &[]),
        )
        .await
        .unwrap();
        assert_eq!(body["Accounts"][0]["Id"], id.as_str());
        assert_eq!(body["Accounts"].as_array().unwrap().len(), 1);
        let unknown = Uuid::new_v4().to_string();
        let body = route(
            api,
            request(GET_ACCOUNT, ADMIN, &[("account_id", &unknown)], &[]),
        )
        .await
        .unwrap();
        assert_eq!(body, serde_json::json!({"Accounts": []}));
    }

    fn task() -> Task {
        let mut t = Task::new(Operation::CreateAccount, vec![Uuid::nil()], Utc::now());
        t.status = TaskStatus::Running;
        t.logs.push("Creating the AWS account".into());
        t
    }

    #[tokio::test]
    async fn a_task_reports_status_logs_and_accounts_only() {
        let f = api().await;
        let api = &f.api;
        let id = f.task.id.to_string();
        let body = route(api, request(GET_TASK, READER, &[("task_id", &id)], &[]))
            .await
            .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"Status": "RUNNING", "Logs": ["Creating the AWS account"], "Accounts": [Uuid::nil()]})
        );
        let unknown = Uuid::new_v4().to_string();
        let e = route(
            api,
            request(GET_TASK, READER, &[("task_id", &unknown)], &[]),
        )
        .await
        .unwrap_err();
        assert_eq!((e.status, e.error), (404, ErrorName::NotFound));
        let e = route(api, request(GET_TASK, READER, &[("task_id", "42")], &[]))
            .await
            .unwrap_err();
        assert_eq!(e.status, 400);
    }

    #[tokio::test]
    async fn an_account_s_events_are_every_version_newest_first_in_pages() {
        let f = api().await;
        let api = &f.api;
        let account = &f.accounts[1];
        let task = Uuid::new_v4();
        for (version, tags) in [("a", "1"), ("b", "2")] {
            let change = domain::AccountChange::facts(domain::AccountFacts {
                tags: Some([(version.to_owned(), tags.to_owned())].into()),
                ..Default::default()
            })
            .with_lock(domain::LockChange::Acquire(task));
            store::AccountWrites::update(&api.store, account.id, &change, "alice")
                .await
                .unwrap();
        }
        let id = account.id.to_string();
        let events =
            |query: &[(&str, &str)]| request(ACCOUNT_EVENTS, READER, &[("account_id", &id)], query);
        let all = route(api, events(&[])).await.unwrap();
        let versions: Vec<u64> = all["Events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["Version"].as_u64().unwrap())
            .collect();
        assert!(versions.windows(2).all(|w| w[0] > w[1]), "{versions:?}");
        let newest = &all["Events"][0];
        assert_eq!(
            (newest["Actor"].as_str(), newest["TaskId"].as_str()),
            (Some("alice"), Some(task.to_string().as_str()))
        );
        assert_eq!(newest["Changed"], json!(["Tags"]));
        let page = route(api, events(&[("limit", "1"), ("offset", "1")]))
            .await
            .unwrap();
        assert_eq!(page["Events"].as_array().unwrap().len(), 1);
        assert_eq!(page["Events"][0]["Version"], versions[1]);
        assert_eq!(page["Paging"]["PrevOffset"], 0);

        for (query, status) in [(("limit", "0"), 400), (("colour", "red"), 400)] {
            let e = route(api, events(&[query])).await.unwrap_err();
            assert_eq!(e.status, status, "{query:?}");
        }
        let unknown = Uuid::new_v4().to_string();
        let e = route(
            api,
            request(ACCOUNT_EVENTS, READER, &[("account_id", &unknown)], &[]),
        )
        .await
        .unwrap_err();
        assert_eq!(e.status, 404);
    }

    #[tokio::test]
    async fn the_policies_in_force_are_read_from_organizations() {
        let f = api().await;
        let id = f.accounts[1].id.to_string();
        let body = route(
            &f.api,
            request(ACCOUNT_POLICIES, READER, &[("account_id", &id)], &[]),
        )
        .await
        .unwrap();
        let attachments = body["PolicyAttachments"].as_array().unwrap();
        assert_eq!(attachments.len(), 1);
        assert_eq!(attachments[0]["PolicyAttachmentType"], "STAX_MANDATORY");
        assert_eq!(attachments[0]["PolicyName"], "foundation");
        let unknown = Uuid::new_v4().to_string();
        let e = route(
            &f.api,
            request(ACCOUNT_POLICIES, READER, &[("account_id", &unknown)], &[]),
        )
        .await
        .unwrap_err();
        assert_eq!(e.status, 404);
    }

    /// The events route is an extension: openapi.json documents it and every field of its events.
    #[test]
    fn the_events_route_is_in_the_openapi_file() {
        let doc: Value = serde_json::from_str(include_str!("../../../openapi.json")).unwrap();
        let (method, path) = ACCOUNT_EVENTS.split_once(' ').unwrap();
        assert!(doc["paths"][path][method.to_lowercase()].is_object());
        let documented = &doc["components"]["schemas"]["AuditEvent"]["properties"];
        let account = fixtures::account_in(AccountStatus::Active, "bakery", Some("111122223333"));
        let mut after = account.clone();
        after.status = AccountStatus::Error;
        after.status_reason = Some("why".into());
        after.user_task_id = Some(Uuid::new_v4());
        let event = domain::AuditEvent::of_change(
            Some(&account),
            &after,
            2,
            "alice",
            Some(domain::Trigger::FailWorkflow),
        );
        for field in serde_json::to_value(event)
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
        {
            assert!(
                documented[field].is_object(),
                "{field} is not in openapi.json"
            );
        }
    }

    #[tokio::test]
    async fn a_malformed_id_is_a_bad_request() {
        let e = route(
            &api().await.api,
            request(GET_ACCOUNT, ADMIN, &[("account_id", "123")], &[]),
        )
        .await
        .unwrap_err();
        assert_eq!(
            (e.status, e.cause.as_str()),
            (400, "account_id: \"123\" is not a UUID")
        );
    }

    #[tokio::test]
    async fn bad_query_values_are_bad_requests() {
        for q in [
            ("limit", "0"),
            ("filter", "RUNNING"),
            ("offset", "-3"),
            ("colour", "blue"),
        ] {
            let e = route(&api().await.api, request(LIST_ACCOUNTS, ADMIN, &[], &[q]))
                .await
                .unwrap_err();
            assert_eq!(e.status, 400, "{q:?}");
        }
    }

    #[tokio::test]
    async fn callers_without_a_role_are_forbidden() {
        let e = route(
            &api().await.api,
            request(
                LIST_ACCOUNTS,
                "arn:aws:iam::123456789012:user/mallory",
                &[],
                &[],
            ),
        )
        .await
        .unwrap_err();
        assert_eq!((e.status, e.error), (403, ErrorName::Forbidden));
        let mut anonymous = request(LIST_ACCOUNTS, ADMIN, &[], &[]);
        anonymous.principal = None;
        assert_eq!(
            route(&api().await.api, anonymous).await.unwrap_err().status,
            403
        );
    }

    #[tokio::test]
    async fn store_failures_do_not_leak_internals() {
        let f = api().await;
        let api = &f.api;
        api.store.fail_with("connection reset by peer at 10.0.0.1");
        let e = route(api, request(LIST_ACCOUNTS, ADMIN, &[], &[]))
            .await
            .unwrap_err();
        assert_eq!(e.status, 500);
        assert!(!e.cause.contains("10.0.0.1"), "{}", e.cause);
        assert!(e.cause.contains("req-1"));
    }
}
