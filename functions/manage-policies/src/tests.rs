//! The routes and the drift run against the memory store and an organization in memory.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use domain::policies::ObservedScp;
use domain::{AccountStatus, AccountType, fixtures};
use store::{AccountTypes, MemoryStore};

use super::*;

const ADMIN: &str = "arn:aws:iam::123456789012:role/Admin";
const OPERATOR: &str = "arn:aws:iam::123456789012:role/Operator";
const ROOT: &str = "r-root";
const DENY_S3: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:*","Resource":"*"}]}"#;

/// One SCP in the organization.
#[derive(Debug, Clone)]
struct Scp {
    name: String,
    description: String,
    content: String,
    policy_id: Option<Uuid>,
    targets: BTreeSet<String>,
}

/// An organization in memory: SCPs, what is attached where (FullAWSAccess on every target, as
/// AWS puts it), the service's OUs by name; refusals on demand.
#[derive(Default)]
struct Org {
    scps: Mutex<BTreeMap<String, Scp>>,
    ous: Mutex<HashMap<String, String>>,
    /// The next call of this name fails with this code.
    refuse: Mutex<Option<(&'static str, &'static str)>>,
    calls: Mutex<Vec<String>>,
}

impl Org {
    fn with_foundation() -> Org {
        let org = Org::default();
        org.scps.lock().unwrap().insert(
            "p-foundation".into(),
            Scp {
                name: "foundation".into(),
                description: "the service's".into(),
                content: DENY_S3.into(),
                policy_id: None,
                targets: [ROOT.to_owned()].into(),
            },
        );
        org
    }

    fn refuse_next(&self, call: &'static str, code: &'static str) {
        *self.refuse.lock().unwrap() = Some((call, code));
    }

    fn call(&self, name: &str) -> Result<(), OrganizationsError> {
        self.calls.lock().unwrap().push(name.to_owned());
        let mut refuse = self.refuse.lock().unwrap();
        if let Some((call, code)) = *refuse
            && call == name
        {
            *refuse = None;
            return Err(OrganizationsError {
                code: Some(code.into()),
                message: format!("{code}: refused"),
            });
        }
        Ok(())
    }

    fn scp_of(&self, policy: Uuid) -> Option<(String, Scp)> {
        self.scps
            .lock()
            .unwrap()
            .iter()
            .find(|(_, s)| s.policy_id == Some(policy))
            .map(|(id, s)| (id.clone(), s.clone()))
    }

    /// SCPs on `target`, FullAWSAccess counted.
    fn on(&self, target: &str) -> usize {
        1 + self
            .scps
            .lock()
            .unwrap()
            .values()
            .filter(|s| s.targets.contains(target))
            .count()
    }
}

impl PolicyOrgs for Org {
    async fn create_scp(&self, policy: &Policy) -> Result<CreatedScp, OrganizationsError> {
        self.call("CreatePolicy")?;
        let mut scps = self.scps.lock().unwrap();
        if let Some((id, s)) = scps.iter().find(|(_, s)| s.name == policy.name) {
            if s.policy_id == Some(policy.id) {
                return Ok(CreatedScp {
                    aws_id: id.clone(),
                    arn: format!(
                        "arn:aws:organizations::123456789012:policy/o-test/service_control_policy/{id}"
                    ),
                });
            }
            return Err(OrganizationsError {
                code: Some("DuplicatePolicyException".into()),
                message: "A policy with the same name already exists".into(),
            });
        }
        let id = format!("p-{:08}", scps.len());
        scps.insert(
            id.clone(),
            Scp {
                name: policy.name.clone(),
                description: policy.description.clone(),
                content: policy.content.clone(),
                policy_id: Some(policy.id),
                targets: BTreeSet::new(),
            },
        );
        Ok(CreatedScp {
            arn: format!(
                "arn:aws:organizations::123456789012:policy/o-test/service_control_policy/{id}"
            ),
            aws_id: id,
        })
    }
    async fn update_scp(&self, aws_id: &str, policy: &Policy) -> Result<(), OrganizationsError> {
        self.call("UpdatePolicy")?;
        let mut scps = self.scps.lock().unwrap();
        let s = scps.get_mut(aws_id).unwrap();
        s.name = policy.name.clone();
        s.description = policy.description.clone();
        s.content = policy.content.clone();
        Ok(())
    }
    async fn delete_scp(&self, aws_id: &str) -> Result<(), OrganizationsError> {
        self.call("DeletePolicy")?;
        let mut scps = self.scps.lock().unwrap();
        if scps.get(aws_id).is_some_and(|s| !s.targets.is_empty()) {
            return Err(OrganizationsError {
                code: Some("PolicyInUseException".into()),
                message: "The policy is attached".into(),
            });
        }
        scps.remove(aws_id);
        Ok(())
    }
    async fn attach(&self, aws_id: &str, target: &str) -> Result<(), OrganizationsError> {
        self.call("AttachPolicy")?;
        if self.on(target) >= MAX_POLICIES_PER_TARGET {
            return Err(OrganizationsError {
                code: Some("ConstraintViolationException".into()),
                message: "ConstraintViolationException: POLICY_NUMBER_LIMIT_EXCEEDED".into(),
            });
        }
        let mut scps = self.scps.lock().unwrap();
        scps.get_mut(aws_id).unwrap().targets.insert(target.into());
        Ok(())
    }
    async fn detach(&self, aws_id: &str, target: &str) -> Result<(), OrganizationsError> {
        self.call("DetachPolicy")?;
        if let Some(s) = self.scps.lock().unwrap().get_mut(aws_id) {
            s.targets.remove(target);
        }
        Ok(())
    }
    async fn policies_on(&self, target: &str) -> Result<Vec<String>, OrganizationsError> {
        self.call("ListPoliciesForTarget")?;
        Ok(vec!["p-FullAWSAccess".to_owned(); self.on(target)])
    }
    async fn type_ou(&self, name: &str) -> Result<String, OuError> {
        self.call("CreateOrganizationalUnit")?;
        let mut ous = self.ous.lock().unwrap();
        let n = ous.len();
        Ok(ous
            .entry(name.to_owned())
            .or_insert_with(|| format!("ou-root-{n:08}"))
            .clone())
    }
    async fn observe(&self) -> Result<HashMap<Uuid, ObservedScp>, OrganizationsError> {
        self.call("ListPolicies")?;
        Ok(self
            .scps
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(id, s)| {
                Some((
                    s.policy_id?,
                    ObservedScp {
                        aws_id: id.clone(),
                        arn: format!("arn:aws:organizations::123456789012:policy/o-test/service_control_policy/{id}"),
                        name: s.name.clone(),
                        description: s.description.clone(),
                        content: s.content.clone(),
                        targets: s.targets.clone(),
                    },
                ))
            })
            .collect())
    }
    async fn observe_one(&self, aws_id: &str) -> Result<ObservedScp, OrganizationsError> {
        let s = self.scps.lock().unwrap()[aws_id].clone();
        Ok(ObservedScp {
            aws_id: aws_id.to_owned(),
            arn: format!(
                "arn:aws:organizations::123456789012:policy/o-test/service_control_policy/{aws_id}"
            ),
            name: s.name,
            description: s.description,
            content: s.content,
            targets: s.targets,
        })
    }
    async fn service_policies(&self) -> Result<Vec<Policy>, OrganizationsError> {
        let scps = self.scps.lock().unwrap();
        let foundation = &scps["p-foundation"];
        let now = domain::timestamp::now();
        Ok(vec![Policy {
            id: domain::policy::policy_uuid("p-foundation"),
            name: foundation.name.clone(),
            description: foundation.description.clone(),
            content: foundation.content.clone(),
            status: PolicyStatus::Active,
            owner: PolicyOwner::Stax,
            aws_id: Some("p-foundation".into()),
            organisation_id: None,
            tags: Default::default(),
            attachments: vec![PolicyAttachment {
                id: domain::policy::attachment_uuid("p-foundation", ROOT),
                target: AttachmentTarget::Root,
                aws_target_id: ROOT.into(),
                created_ts: now,
                task: None,
            }],
            created_ts: now,
            modified_ts: now,
            task: None,
        }])
    }
}

#[derive(Default)]
struct Events(Mutex<Vec<(String, Value)>>);

impl DriftEvents for Events {
    async fn publish(&self, detail_type: &str, detail: Value) -> Result<(), String> {
        self.0.lock().unwrap().push((detail_type.into(), detail));
        Ok(())
    }
}

type Manager = PolicyManager<MemoryStore, Org, Events>;

struct Fixture {
    m: Manager,
    sandbox: AccountType,
    account: domain::Account,
}

async fn fixture() -> Fixture {
    let store = MemoryStore::new();
    store.ensure_account_type("default").await.unwrap();
    let now = domain::timestamp::now();
    let sandbox = AccountType {
        id: Uuid::new_v4(),
        name: "Sandbox".into(),
        status: AccountTypeStatus::Active,
        created_ts: now,
        modified_ts: now,
        ou: Some("ou-root-sandbox".into()),
    };
    store.create_account_type(&sandbox).await.unwrap();
    let mut account = fixtures::account_in(AccountStatus::Active, "bakery", Some("444455556666"));
    account.account_type = Some(sandbox.id);
    store.insert(account.clone());
    Fixture {
        m: PolicyManager {
            store,
            organizations: Org::with_foundation(),
            events: Events::default(),
            access: AccessPolicy::from_json(&format!(
                r#"{{"{ADMIN}": "admin", "{OPERATOR}": "operations"}}"#
            ))
            .unwrap(),
        },
        sandbox,
        account,
    }
}

fn request(route_key: &str, path: &[(&str, String)], body: Option<&str>) -> ApiRequest {
    ApiRequest {
        route_key: route_key.into(),
        principal: Some(ADMIN.into()),
        path: path
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        body: body.map(str::to_owned),
        request_id: "req-1".into(),
        ..ApiRequest::default()
    }
}

fn create_body(name: &str) -> String {
    json!({"Name": name, "Description": "no S3 here", "Policy": DENY_S3}).to_string()
}

async fn create(m: &Manager, name: &str) -> Uuid {
    let answer = route(m, request(CREATE_POLICY, &[], Some(&create_body(name))))
        .await
        .unwrap();
    parse_uuid(answer["Detail"]["Policy"]["PolicyId"].as_str().unwrap()).unwrap()
}

async fn attach_to(m: &Manager, policy: Uuid, body: Value) -> Result<Value, ApiError> {
    route(
        m,
        request(
            ATTACH_POLICY,
            &[("policy_id", policy.to_string())],
            Some(&body.to_string()),
        ),
    )
    .await
}

fn refused(r: Result<Value, ApiError>, status: u16, error: ErrorName) -> String {
    let e = r.expect_err("refused");
    assert_eq!(
        (e.status, e.error.as_str()),
        (status, error.as_str()),
        "{}",
        e.cause
    );
    e.cause
}

#[tokio::test]
async fn a_policy_is_recorded_then_made_as_an_scp_tagged_with_its_id() {
    let f = fixture().await;
    let answer = route(
        &f.m,
        request(CREATE_POLICY, &[], Some(&create_body("no-s3"))),
    )
    .await
    .unwrap();
    assert_eq!(answer["DetailType"], "Policy Created");
    assert_eq!(answer["Detail"]["Operation"], "policies:CreatePolicy");
    assert_eq!(answer["Detail"]["OperationStatus"], "SUCCEEDED");
    let id = parse_uuid(answer["Detail"]["Policy"]["PolicyId"].as_str().unwrap()).unwrap();
    let (aws_id, scp) =
        f.m.organizations
            .scp_of(id)
            .expect("an SCP tagged with the id");
    assert_eq!(
        (scp.name.as_str(), scp.content.as_str()),
        ("no-s3", DENY_S3)
    );
    let record = f.m.store.get_policy(id).await.unwrap().unwrap().value;
    assert_eq!(record.status, PolicyStatus::Active);
    assert_eq!(record.aws_id, Some(aws_id));
    assert_eq!(
        record.organisation_id,
        Some(domain::organisation_id("o-test"))
    );
    let task_id = parse_uuid(answer["Detail"]["TaskId"].as_str().unwrap()).unwrap();
    let task = f.m.store.get_task(task_id).await.unwrap().unwrap().value;
    assert_eq!(task.status, TaskStatus::Succeeded);
    assert_eq!(record.task, Some(task.id));
}

#[tokio::test]
async fn bad_policies_and_taken_names_change_nothing() {
    let f = fixture().await;
    create(&f.m, "no-s3").await;
    let before = f.m.store.snapshot();
    let scps = f.m.organizations.scps.lock().unwrap().len();
    let principal = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}]}"#;
    let too_long = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Action":["{}"],"Resource":"*"}}]}}"#,
        vec!["s3:GetObject"; 500].join("\",\"")
    );
    for (body, cause) in [
        (
            json!({"Name": "x1y", "Description": "bad", "Policy": "{not json"}),
            "Policy: ",
        ),
        (
            json!({"Name": "x1y", "Description": "bad", "Policy": principal}),
            "Principal",
        ),
        (
            json!({"Name": "x1y", "Description": "bad", "Policy": too_long}),
            "5120",
        ),
        (
            json!({"Name": "foundation", "Description": "bad", "Policy": DENY_S3}),
            "Name: ",
        ),
    ] {
        let c = refused(
            route(&f.m, request(CREATE_POLICY, &[], Some(&body.to_string()))).await,
            400,
            ErrorName::ValidationError,
        );
        assert!(c.contains(cause), "{c}");
    }
    refused(
        route(
            &f.m,
            request(CREATE_POLICY, &[], Some(&create_body("NO-S3"))),
        )
        .await,
        409,
        ErrorName::PolicyNameTaken,
    );
    assert_eq!(f.m.store.snapshot(), before, "nothing recorded");
    assert_eq!(
        f.m.organizations.scps.lock().unwrap().len(),
        scps,
        "nothing made"
    );
    // An SCP of the name the records do not know (another team's): AWS refuses, the record goes.
    f.m.organizations.scps.lock().unwrap().insert(
        "p-theirs".into(),
        Scp {
            name: "theirs".into(),
            description: "not ours".into(),
            content: DENY_S3.into(),
            policy_id: None,
            targets: BTreeSet::new(),
        },
    );
    refused(
        route(
            &f.m,
            request(CREATE_POLICY, &[], Some(&create_body("theirs"))),
        )
        .await,
        409,
        ErrorName::PolicyNameTaken,
    );
    assert_eq!(
        f.m.store.list_policies().await.unwrap().len(),
        1,
        "the refused creation's record is gone"
    );
}

#[tokio::test]
async fn a_type_s_policy_is_on_its_ou_and_a_sixth_scp_is_refused_with_nothing_written() {
    let f = fixture().await;
    let sandbox = f.sandbox.id;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(create(&f.m, &format!("guardrail-{i}")).await);
    }
    // FullAWSAccess and four of ours fill the OU.
    for (i, id) in ids.iter().take(4).enumerate() {
        let body = if i % 2 == 0 {
            json!({"OrganisationalUnitId": sandbox})
        } else {
            json!({"AccountTypeId": sandbox})
        };
        let answer = attach_to(&f.m, *id, body).await.unwrap();
        assert_eq!(answer["DetailType"], "Policy Attached");
        assert!(answer["Detail"]["PolicyAttachment"]["PolicyAttachmentId"].is_string());
        let (_, scp) = f.m.organizations.scp_of(*id).unwrap();
        assert!(scp.targets.contains("ou-root-sandbox"));
    }
    // Attaching again answers the attachment there is.
    let again = attach_to(&f.m, ids[0], json!({"AccountTypeId": sandbox}))
        .await
        .unwrap();
    let first = f.m.store.get_policy(ids[0]).await.unwrap().unwrap().value;
    assert_eq!(first.attachments.len(), 1);
    assert_eq!(
        again["Detail"]["PolicyAttachment"]["PolicyAttachmentId"],
        first.attachments[0].id.to_string()
    );
    let before = f.m.store.snapshot();
    let cause = refused(
        attach_to(&f.m, ids[4], json!({"AccountTypeId": sandbox})).await,
        409,
        ErrorName::PolicyLimitReached,
    );
    assert!(
        cause.contains("5 SCPs") && cause.contains("Sandbox"),
        "{cause}"
    );
    assert_eq!(f.m.store.snapshot(), before);
    // The count raced by another attachment: AWS refuses, and the record is put back.
    f.m.organizations
        .refuse_next("AttachPolicy", "ConstraintViolationException");
    let account = f.account.id;
    let scp_before = f.m.organizations.scp_of(ids[4]).unwrap().1.targets;
    refused(
        attach_to(&f.m, ids[4], json!({"AccountId": account})).await,
        409,
        ErrorName::OrganizationsRequestRefused,
    );
    let p = f.m.store.get_policy(ids[4]).await.unwrap().unwrap().value;
    assert!(p.attachments.is_empty(), "put back");
    assert_eq!(
        f.m.organizations.scp_of(ids[4]).unwrap().1.targets,
        scp_before
    );
    // An account keeps a place for the suspension SCP: FullAWSAccess and three of ours fill it.
    for id in &ids[..3] {
        attach_to(&f.m, *id, json!({"AccountId": account}))
            .await
            .unwrap();
    }
    let cause = refused(
        attach_to(&f.m, ids[3], json!({"AccountId": account})).await,
        409,
        ErrorName::PolicyLimitReached,
    );
    assert!(cause.contains("suspension"), "{cause}");
    // The type's view lists its policies.
    let types = f.m.store.list_account_types().await.unwrap();
    let policies: Vec<_> =
        f.m.store
            .list_policies()
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.value)
            .collect();
    let view = edge::stax::ReadAccountTypes::build(types, &[], &policies, Some(&[sandbox].into()));
    assert_eq!(view.account_types[0].policies.len(), 4);
}

#[tokio::test]
async fn targets_that_take_no_policies_are_refused() {
    let f = fixture().await;
    let id = create(&f.m, "no-s3").await;
    let security_type =
        f.m.store
            .ensure_account_type("foundation-security")
            .await
            .unwrap();
    let mut security =
        fixtures::account_in(AccountStatus::Active, "security", Some("111100001111"));
    security.account_role = domain::AccountRole::Security;
    f.m.store.insert(security.clone());
    let mut closed = fixtures::account_in(AccountStatus::Closed, "gone", Some("999900009999"));
    closed.account_type = Some(f.sandbox.id);
    f.m.store.insert(closed.clone());
    let before = f.m.store.snapshot();
    for (body, cause) in [
        (
            json!({"AccountTypeId": security_type.id}),
            "foundation account",
        ),
        (json!({"AccountId": security.id}), "member accounts only"),
        (json!({"AccountId": closed.id}), "CLOSED"),
    ] {
        let c = refused(
            attach_to(&f.m, id, body).await,
            409,
            ErrorName::NotAttachable,
        );
        assert!(c.contains(cause), "{c}");
    }
    refused(
        attach_to(&f.m, id, json!({"AccountId": Uuid::new_v4()})).await,
        404,
        ErrorName::NotFound,
    );
    refused(
        attach_to(&f.m, id, json!({"AccountId": "not-a-uuid"})).await,
        400,
        ErrorName::ValidationError,
    );
    refused(
        attach_to(&f.m, Uuid::new_v4(), json!({"AccountId": f.account.id})).await,
        404,
        ErrorName::NotFound,
    );
    assert_eq!(f.m.store.snapshot(), before);
    // `default` has no OU until it needs one: attaching makes it.
    let default =
        f.m.store
            .get_account_type_by_name("default")
            .await
            .unwrap()
            .unwrap();
    attach_to(&f.m, id, json!({"AccountTypeId": default.id}))
        .await
        .unwrap();
    let ou = f.m.organizations.ous.lock().unwrap()["default"].clone();
    assert!(
        f.m.organizations
            .scp_of(id)
            .unwrap()
            .1
            .targets
            .contains(&ou)
    );
}

#[tokio::test]
async fn an_attached_policy_is_not_deleted_and_a_detached_one_is() {
    let f = fixture().await;
    let id = create(&f.m, "no-s3").await;
    let answer = attach_to(&f.m, id, json!({"AccountId": f.account.id}))
        .await
        .unwrap();
    let attachment = answer["Detail"]["PolicyAttachment"]["PolicyAttachmentId"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = [("policy_id", id.to_string())];
    let cause = refused(
        route(&f.m, request(DELETE_POLICY, &path, None)).await,
        409,
        ErrorName::PolicyInUse,
    );
    assert!(cause.contains("444455556666"), "{cause}");
    let detached = route(
        &f.m,
        request(
            DETACH_POLICY,
            &[("policy_attachment_id", attachment.clone())],
            None,
        ),
    )
    .await
    .unwrap();
    assert_eq!(detached["DetailType"], "Policy Detached");
    assert!(f.m.organizations.scp_of(id).unwrap().1.targets.is_empty());
    refused(
        route(
            &f.m,
            request(DETACH_POLICY, &[("policy_attachment_id", attachment)], None),
        )
        .await,
        404,
        ErrorName::NotFound,
    );
    // AWS refusing the deletion (attached outside the service) puts the record back.
    f.m.organizations
        .refuse_next("DeletePolicy", "PolicyInUseException");
    refused(
        route(&f.m, request(DELETE_POLICY, &path, None)).await,
        409,
        ErrorName::PolicyInUse,
    );
    assert_eq!(
        f.m.store
            .get_policy(id)
            .await
            .unwrap()
            .unwrap()
            .value
            .status,
        PolicyStatus::Active
    );
    let deleted = route(&f.m, request(DELETE_POLICY, &path, None))
        .await
        .unwrap();
    assert_eq!(deleted["Detail"]["OperationStatus"], "SUCCEEDED");
    assert!(f.m.organizations.scp_of(id).is_none(), "the SCP is gone");
    let record = f.m.store.get_policy(id).await.unwrap().unwrap().value;
    assert_eq!(record.status, PolicyStatus::Deleted);
    // Its name is free again.
    create(&f.m, "no-s3").await;
}

#[tokio::test]
async fn an_update_reaches_the_scp_and_one_aws_refuses_is_put_back() {
    let f = fixture().await;
    let id = create(&f.m, "no-s3").await;
    let path = [("policy_id", id.to_string())];
    let deny_ec2 = DENY_S3.replace("s3:*", "ec2:*");
    let body = json!({"Policy": deny_ec2, "Description": "no EC2 here"}).to_string();
    let answer = route(&f.m, request(UPDATE_POLICY, &path, Some(&body)))
        .await
        .unwrap();
    assert_eq!(answer["Detail"]["Operation"], "policies:UpdatePolicy");
    let (_, scp) = f.m.organizations.scp_of(id).unwrap();
    assert_eq!(
        (scp.content.as_str(), scp.description.as_str()),
        (deny_ec2.as_str(), "no EC2 here")
    );
    let before = f.m.store.get_policy(id).await.unwrap().unwrap().value;
    f.m.organizations
        .refuse_next("UpdatePolicy", "ConstraintViolationException");
    let rename = json!({"Name": "no-s3-either"}).to_string();
    refused(
        route(&f.m, request(UPDATE_POLICY, &path, Some(&rename))).await,
        409,
        ErrorName::OrganizationsRequestRefused,
    );
    assert_eq!(
        f.m.store.get_policy(id).await.unwrap().unwrap().value,
        before
    );
    let bad = json!({"Policy": "[]"}).to_string();
    refused(
        route(&f.m, request(UPDATE_POLICY, &path, Some(&bad))).await,
        400,
        ErrorName::ValidationError,
    );
}

#[tokio::test]
async fn the_foundation_policy_is_neither_changed_detached_nor_deleted() {
    let f = fixture().await;
    let foundation = domain::policy::policy_uuid("p-foundation");
    let path = [("policy_id", foundation.to_string())];
    let body = json!({"Description": "mine now"}).to_string();
    for r in [
        route(&f.m, request(UPDATE_POLICY, &path, Some(&body))).await,
        route(&f.m, request(DELETE_POLICY, &path, None)).await,
        attach_to(&f.m, foundation, json!({"AccountId": f.account.id})).await,
        route(
            &f.m,
            request(
                DETACH_POLICY,
                &[(
                    "policy_attachment_id",
                    domain::policy::attachment_uuid("p-foundation", ROOT).to_string(),
                )],
                None,
            ),
        )
        .await,
    ] {
        refused(r, 409, ErrorName::PolicyNotChangeable);
    }
    assert_eq!(
        f.m.organizations.scps.lock().unwrap()["p-foundation"]
            .targets
            .len(),
        1
    );
}

#[tokio::test]
async fn policies_are_admin_only() {
    let f = fixture().await;
    let mut req = request(CREATE_POLICY, &[], Some(&create_body("no-s3")));
    req.principal = Some(OPERATOR.into());
    refused(route(&f.m, req).await, 403, ErrorName::Forbidden);
}

#[tokio::test]
async fn type_policy_changes_are_checked_first_and_one_refusal_stops_none() {
    let f = fixture().await;
    let a = create(&f.m, "guardrail-a").await;
    let b = create(&f.m, "guardrail-b").await;
    let before = f.m.store.snapshot();
    let unknown = json!({"AddPolicies": [{"AccountTypeName": "Sandbox", "PolicyId": a},
                                         {"AccountTypeName": "Nowhere", "PolicyId": b}]});
    let cause = refused(
        route(
            &f.m,
            request(
                UPDATE_ACCOUNT_TYPE_POLICIES,
                &[],
                Some(&unknown.to_string()),
            ),
        )
        .await,
        404,
        ErrorName::NotFound,
    );
    assert!(cause.contains("Nowhere"), "{cause}");
    assert_eq!(f.m.store.snapshot(), before);
    assert!(f.m.organizations.scp_of(a).unwrap().1.targets.is_empty());

    let security =
        f.m.store
            .ensure_account_type("foundation-security")
            .await
            .unwrap();
    let body = json!({"AddPolicies": [{"AccountTypeName": "Sandbox", "PolicyId": a},
                                      {"AccountTypeId": security.id, "PolicyId": b}]});
    let answer = route(
        &f.m,
        request(UPDATE_ACCOUNT_TYPE_POLICIES, &[], Some(&body.to_string())),
    )
    .await
    .unwrap();
    assert_eq!(
        answer["Detail"]["Operation"],
        "accounts:UpdateAccountTypePolicies"
    );
    assert_eq!(answer["Detail"]["OperationStatus"], "FAILED");
    let task_id = parse_uuid(answer["Detail"]["TaskId"].as_str().unwrap()).unwrap();
    let logs =
        f.m.store
            .get_task(task_id)
            .await
            .unwrap()
            .unwrap()
            .value
            .logs;
    assert!(
        logs[0].starts_with("Attached policy guardrail-a to Account Type Sandbox"),
        "{logs:?}"
    );
    assert!(
        logs[1].contains("foundation account") && logs[1].contains("NotAttachable"),
        "{logs:?}"
    );
    assert!(
        f.m.organizations
            .scp_of(a)
            .unwrap()
            .1
            .targets
            .contains("ou-root-sandbox")
    );

    let remove = json!({"RemovePolicies": [{"AccountTypeId": f.sandbox.id, "PolicyId": a}]});
    let answer = route(
        &f.m,
        request(UPDATE_ACCOUNT_TYPE_POLICIES, &[], Some(&remove.to_string())),
    )
    .await
    .unwrap();
    assert_eq!(answer["Detail"]["OperationStatus"], "SUCCEEDED");
    assert!(f.m.organizations.scp_of(a).unwrap().1.targets.is_empty());
    // Removed again (a re-applied plan): nothing to do, nothing refused.
    let again = route(
        &f.m,
        request(UPDATE_ACCOUNT_TYPE_POLICIES, &[], Some(&remove.to_string())),
    )
    .await
    .unwrap();
    assert_eq!(again["Detail"]["OperationStatus"], "SUCCEEDED");
}

#[tokio::test]
async fn the_drift_run_reports_and_repairs_what_changed_outside_the_service() {
    let f = fixture().await;
    let kept = create(&f.m, "kept").await;
    let edited = create(&f.m, "edited").await;
    attach_to(&f.m, kept, json!({"AccountTypeId": f.sandbox.id}))
        .await
        .unwrap();
    // Nothing to find yet: no event.
    let quiet = drift::run(&f.m, "Requested by test").await.unwrap();
    assert_eq!(quiet.status, TaskStatus::Succeeded);
    assert!(f.m.events.0.lock().unwrap().is_empty());
    {
        let (kept_scp, _) = f.m.organizations.scp_of(kept).unwrap();
        let (edited_scp, _) = f.m.organizations.scp_of(edited).unwrap();
        let mut scps = f.m.organizations.scps.lock().unwrap();
        let k = scps.get_mut(&kept_scp).unwrap();
        k.targets.clear();
        k.targets.insert("444455556666".into());
        scps.get_mut(&edited_scp).unwrap().content = DENY_S3.replace("Deny", "Allow");
        // A creation whose record was undone left its SCP behind.
        scps.insert(
            "p-orphan".into(),
            Scp {
                name: "orphan".into(),
                description: "left".into(),
                content: DENY_S3.into(),
                policy_id: Some(Uuid::new_v4()),
                targets: BTreeSet::new(),
            },
        );
    }
    // A record whose SCP was never made (its creation cut short).
    let now = domain::timestamp::now();
    let pending = Policy {
        id: Uuid::new_v4(),
        name: "pending".into(),
        description: "cut short".into(),
        content: DENY_S3.into(),
        status: PolicyStatus::CreateInProgress,
        owner: PolicyOwner::Organisation,
        aws_id: None,
        organisation_id: None,
        tags: Default::default(),
        attachments: Vec::new(),
        created_ts: now,
        modified_ts: now,
        task: None,
    };
    f.m.store.create_policy(&pending).await.unwrap();

    let answer = handle(&f.m, Event::Schedule).await.unwrap();
    assert_eq!(answer["Status"], "SUCCEEDED");
    let logs: Vec<String> = serde_json::from_value(answer["Logs"].clone()).unwrap();
    let has = |needle: &str| logs.iter().any(|l| l.contains(needle));
    assert!(has("Requested by schedule"), "{logs:?}");
    assert!(
        has("policy kept: SCP")
            && has("detached from ou-root-sandbox outside the service, attached it again"),
        "{logs:?}"
    );
    assert!(
        has("attached to 444455556666 outside the service, detached it"),
        "{logs:?}"
    );
    assert!(
        has("policy edited: SCP") && has("content changed outside the service, restored"),
        "{logs:?}"
    );
    assert!(has("orphan") && has("deleted it"), "{logs:?}");
    assert!(has("policy pending"), "{logs:?}");
    let org = &f.m.organizations;
    assert_eq!(
        org.scp_of(kept).unwrap().1.targets,
        BTreeSet::from(["ou-root-sandbox".to_owned()])
    );
    assert_eq!(org.scp_of(edited).unwrap().1.content, DENY_S3);
    assert!(org.scps.lock().unwrap().get("p-orphan").is_none());
    let made =
        f.m.store
            .get_policy(pending.id)
            .await
            .unwrap()
            .unwrap()
            .value;
    assert_eq!(made.status, PolicyStatus::Active);
    assert_eq!(made.aws_id, org.scp_of(pending.id).map(|(id, _)| id));
    let events = f.m.events.0.lock().unwrap().clone();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, drift::DRIFT_DETECTED);
    assert_eq!(events[0].1["TaskId"], answer["TaskId"]);
    assert_eq!(events[0].1["Repaired"].as_array().unwrap().len(), 5);
    // Repaired: the next run finds nothing.
    let again = drift::run(&f.m, "Requested by test").await.unwrap();
    assert!(
        again.logs.iter().any(|l| l.contains("0 repaired")),
        "{:?}",
        again.logs
    );
}

#[tokio::test]
async fn a_drift_run_that_cannot_read_the_organization_fails_its_task() {
    let f = fixture().await;
    f.m.organizations
        .refuse_next("ListPolicies", "TooManyRequestsException");
    let task = drift::run(&f.m, "Requested by test").await.unwrap();
    assert_eq!(task.status, TaskStatus::Failed);
    assert!(task.logs.iter().any(|l| l.contains("could not be read")));
}

#[tokio::test]
async fn a_change_overtaken_by_a_later_one_leaves_aws_as_the_later_record() {
    let f = fixture().await;
    let id = create(&f.m, "contested").await;
    let written = f.m.store.get_policy(id).await.unwrap().unwrap();
    // A later change recorded new content and was overtaken: AWS still has the earlier one.
    let later = Policy {
        content: DENY_S3.replace("s3:*", "ec2:*"),
        ..written.value.clone()
    };
    f.m.store.replace_policy(&written, &later).await.unwrap();
    let logs = drift::settle(&f.m, id, written.version).await;
    assert!(
        logs.iter()
            .any(|l| l.contains("content changed outside the service, restored")),
        "{logs:?}"
    );
    assert_eq!(
        f.m.organizations.scp_of(id).unwrap().1.content,
        later.content
    );
    // Not overtaken: nothing to do.
    let now = f.m.store.get_policy(id).await.unwrap().unwrap();
    assert!(drift::settle(&f.m, id, now.version).await.is_empty());
}
