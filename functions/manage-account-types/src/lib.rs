//! The API of Account Types (`admin` only). Each type is one OU directly under the
//! organization's root, named as the type and carrying the service's tag; its policies are the
//! SCPs on that OU, so an account's type decides the policies in force on it.
//!
//! - `POST /20190206/accounts/types` (Stax `accounts.CreateAccountType`): the OU is made (or a
//!   tagged empty one of that name adopted) and the type recorded with it; the answer is the
//!   type, synchronously, as Stax answers.
//! - `PUT /20190206/accounts/types/{account_type_id}` (`accounts.UpdateAccountType`): a rename.
//!   The record is renamed first, conditional on the version read (two renames at once: one
//!   409), then the OU; an OU rename AWS refuses puts the record back. The type keeps its OU by
//!   id, so placing accounts never depends on the OU's name.
//! - `DELETE …/{account_type_id}` (`accounts.DeleteAccountType`): refused (409) while an
//!   account that is not CLOSED is of the type, or a policy is attached to it; the record becomes DELETED (its name free for a
//!   new type) and the OU is removed when empty — closed accounts stay in their OU until AWS
//!   removes them, and keep it then.
//!
//! Built-in types (`default`, the foundation types) are neither renamed nor deleted.

use std::collections::BTreeSet;
use std::future::Future;

use aws::OrganizationsError;
use aws::organizations::OuError;
use aws_sdk_organizations::error::ProvideErrorMetadata;
use domain::config::{self, ConfigError};
use domain::policies::{AttachmentTarget, PolicyStatus};
use domain::{AccountFilter, AccountStatus, AccountType, AccountTypeStatus, ErrorName, Named};
use edge::stax::{AccountTypeNameRequest, AccountTypeView, ReadAccountTypes, parse_uuid};
use edge::{AccessPolicy, ApiError, ApiRequest, Permission, authorize};
use serde_json::{Value, json};
use store::{AccountReads, AccountTypes, DynamoStore, Policies, StoreError, Versioned};
use uuid::Uuid;

pub const CREATE_ACCOUNT_TYPE: &str = "POST /20190206/accounts/types";
pub const UPDATE_ACCOUNT_TYPE: &str = "PUT /20190206/accounts/types/{account_type_id}";
pub const DELETE_ACCOUNT_TYPE: &str = "DELETE /20190206/accounts/types/{account_type_id}";

/// What managing types asks of AWS Organizations: the service's OUs under the root.
pub trait TypeOus: Send + Sync {
    /// The root's OU called `name`, created with the service's tag if there is none.
    fn ensure_ou(&self, name: &str) -> impl Future<Output = Result<String, OuError>> + Send;
    /// The root's OU called `name` that the service made, if there is one.
    fn find_ou(&self, name: &str) -> impl Future<Output = Result<Option<String>, OuError>> + Send;
    fn rename_ou(
        &self,
        ou: &str,
        name: &str,
    ) -> impl Future<Output = Result<(), OrganizationsError>> + Send;
    /// Deletes the OU unless accounts are in it (`false` then); one already gone is deleted.
    fn delete_ou_if_empty(
        &self,
        ou: &str,
    ) -> impl Future<Output = Result<bool, OrganizationsError>> + Send;
}

pub struct TypeManager<S, O> {
    pub store: S,
    pub organizations: O,
    pub access: AccessPolicy,
}

impl TypeManager<DynamoStore, aws_sdk_organizations::Client> {
    /// `TABLE_NAME`, `ACCESS_ROLES`.
    pub fn from_env(sdk: &aws::SdkConfig) -> Result<Self, ConfigError> {
        Ok(TypeManager {
            store: DynamoStore::from_env(sdk)?,
            organizations: aws::organizations(sdk),
            access: AccessPolicy::from_json(&config::required("ACCESS_ROLES")?)?,
        })
    }
}

pub async fn route<S: AccountReads + AccountTypes + Policies, O: TypeOus>(
    m: &TypeManager<S, O>,
    req: ApiRequest,
) -> Result<Value, ApiError> {
    let req = &req;
    if ![
        CREATE_ACCOUNT_TYPE,
        UPDATE_ACCOUNT_TYPE,
        DELETE_ACCOUNT_TYPE,
    ]
    .contains(&req.route_key.as_str())
    {
        return Err(ApiError::not_found(format!("no route {:?}", req.route_key)));
    }
    // Types decide which policies apply to whole groups of accounts: admin only.
    authorize(&m.access, req.principal.as_deref(), Permission::Admin)?;
    req.only_query(&[])?;
    match req.route_key.as_str() {
        CREATE_ACCOUNT_TYPE => create(m, req).await,
        UPDATE_ACCOUNT_TYPE => rename(m, req).await,
        _ => delete(m, req).await,
    }
}

async fn create<S: AccountReads + AccountTypes + Policies, O: TypeOus>(
    m: &TypeManager<S, O>,
    req: &ApiRequest,
) -> Result<Value, ApiError> {
    let body = AccountTypeNameRequest::parse(req.body.as_deref(), "accounts.CreateAccountType")?;
    // Refused before the OU is made: a taken name leaves Organizations as it was.
    if let Some(taken) = m
        .store
        .get_account_type_by_name(&body.name)
        .await
        .map_err(|e| store_error(req, e))?
    {
        return Err(name_taken(&taken.name));
    }
    let ou = m
        .organizations
        .ensure_ou(&body.name)
        .await
        .map_err(|e| ou_error(req, e))?;
    // The OU of that name may still be another live type's (one being renamed away from the
    // name, whose OU has not taken its new name yet): never two types on one OU, whose
    // accounts would get each other's policies.
    let types = m
        .store
        .list_account_types()
        .await
        .map_err(|e| store_error(req, e))?;
    if let Some(owner) = types
        .iter()
        .find(|t| t.status == AccountTypeStatus::Active && t.ou.as_deref() == Some(ou.as_str()))
    {
        return Err(ApiError::conflict(
            ErrorName::AccountTypeNameTaken,
            format!(
                "the OU named {:?} ({ou}) is Account Type {}'s, which is being renamed: try again",
                body.name, owner.name
            ),
        ));
    }
    let now = domain::timestamp::now();
    let account_type = AccountType {
        id: Uuid::new_v4(),
        name: body.name,
        status: AccountTypeStatus::Active,
        created_ts: now,
        modified_ts: now,
        ou: Some(ou),
    };
    // A create of the same name at once made or found the same OU; one record wins.
    m.store
        .create_account_type(&account_type)
        .await
        .map_err(|e| store_error(req, e))?;
    tracing::info!(account_type = %account_type.id, name = account_type.name, principal = req.principal, "Account Type created");
    let message = format!("Account Type {} created", account_type.name);
    Ok(json!({
        "DetailType": "Account Type Created",
        "Detail": {
            "AccountType": view(&m.store, account_type).await.map_err(|e| store_error(req, e))?,
            "Message": message,
            "Operation": "accounts:CreateAccountType",
            "OperationStatus": "SUCCEEDED",
            "Severity": "INFO",
        },
    }))
}

async fn rename<S: AccountReads + AccountTypes + Policies, O: TypeOus>(
    m: &TypeManager<S, O>,
    req: &ApiRequest,
) -> Result<Value, ApiError> {
    let current = changeable(m, req).await?;
    let body = AccountTypeNameRequest::parse(req.body.as_deref(), "accounts.UpdateAccountType")?;
    if body.name == current.value.name {
        return answer(m, req, current.value).await;
    }
    if let Some(taken) = m
        .store
        .get_account_type_by_name(&body.name)
        .await
        .map_err(|e| store_error(req, e))?
        && taken.id != current.value.id
    {
        return Err(name_taken(&taken.name));
    }
    let ou = type_ou(m, req, &current.value).await?;
    let next = AccountType {
        name: body.name.clone(),
        ou: ou.clone(),
        modified_ts: domain::timestamp::now(),
        ..current.value.clone()
    };
    let renamed = m
        .store
        .replace_account_type(&current, &next)
        .await
        .map_err(|e| store_error(req, e))?;
    if let Some(ou) = &ou
        && let Err(e) = m.organizations.rename_ou(ou, &body.name).await
    {
        // The record follows AWS: put it back, unless someone changed it since.
        if let Err(undo) = m.store.replace_account_type(&renamed, &current.value).await {
            tracing::error!(error = %undo, account_type = %next.id, "a rename AWS refused could not be undone in the store");
        }
        return Err(organizations_error(req, e));
    }
    // A rename that came after this one may have reached the OU first: the OU takes the name
    // the record has now, so that the last rename recorded is the OU's.
    if let Some(ou) = &ou
        && let Ok(Some(now)) = m.store.get_account_type(next.id).await
        && now.name != next.name
        && now.status == AccountTypeStatus::Active
        && let Err(e) = m.organizations.rename_ou(ou, &now.name).await
    {
        tracing::warn!(ou, error = %e, "the OU could not take the type's latest name");
    }
    tracing::info!(account_type = %next.id, from = current.value.name, to = next.name, principal = req.principal, "Account Type renamed");
    answer(m, req, renamed.value).await
}

async fn delete<S: AccountReads + AccountTypes + Policies, O: TypeOus>(
    m: &TypeManager<S, O>,
    req: &ApiRequest,
) -> Result<Value, ApiError> {
    let id = type_id(req)?;
    let current = versioned(m, req, id).await?;
    // A repeated delete answers what the first one did.
    if current.value.status == AccountTypeStatus::Deleted && current.value.built_in().is_none() {
        return answer(m, req, current.value).await;
    }
    current
        .value
        .changeable()
        .map_err(|e| ApiError::conflict(ErrorName::AccountTypeNotChangeable, e))?;
    let members = m
        .store
        .list_accounts(&of_type(id))
        .await
        .map_err(|e| store_error(req, e))?;
    let open: Vec<_> = members
        .iter()
        .filter(|a| a.status != AccountStatus::Closed)
        .collect();
    if let Some(first) = open.first() {
        return Err(ApiError::conflict(
            ErrorName::AccountTypeInUse,
            format!(
                "Account Type {} has {} account(s) that are not closed, {} among them: move them to \
                 another type first (PUT /20190206/account-types/members)",
                current.value.name,
                open.len(),
                first.name
            ),
        ));
    }
    // A policy attached to the type would be recorded on an OU that is gone.
    let attached: Vec<_> = m
        .store
        .list_policies()
        .await
        .map_err(|e| store_error(req, e))?
        .into_iter()
        .filter(|p| {
            p.value.status != PolicyStatus::Deleted
                && p.value
                    .attachment_to(&AttachmentTarget::AccountType {
                        account_type_id: id,
                    })
                    .is_some()
        })
        .collect();
    if let Some(first) = attached.first() {
        return Err(ApiError::conflict(
            ErrorName::AccountTypeInUse,
            format!(
                "Account Type {} has {} policy(ies) attached, {} among them: detach them first \
                 (PUT /20190206/account-types/policies)",
                current.value.name,
                attached.len(),
                first.value.name
            ),
        ));
    }
    let ou = type_ou(m, req, &current.value).await?;
    let deleted = AccountType {
        status: AccountTypeStatus::Deleted,
        modified_ts: domain::timestamp::now(),
        ..current.value.clone()
    };
    let deleted = m
        .store
        .replace_account_type(&current, &deleted)
        .await
        .map_err(|e| store_error(req, e))?;
    if let Some(ou) = &ou {
        // The type is gone either way: an OU left behind is empty and tagged, adopted by a new
        // type of the same name.
        match m.organizations.delete_ou_if_empty(ou).await {
            Ok(true) => tracing::info!(ou, "the deleted type's OU was removed"),
            Ok(false) => tracing::info!(ou, "the deleted type's OU keeps its closed accounts"),
            Err(e) => tracing::warn!(ou, error = %e, "the deleted type's OU could not be removed"),
        }
    }
    tracing::info!(account_type = %id, name = current.value.name, principal = req.principal, "Account Type deleted");
    answer(m, req, deleted.value).await
}

/// The type's OU: the one it records, or — for a built-in type, which finds its OU by name —
/// the service's OU of its name, if one was made.
async fn type_ou<S, O: TypeOus>(
    m: &TypeManager<S, O>,
    req: &ApiRequest,
    t: &AccountType,
) -> Result<Option<String>, ApiError> {
    match &t.ou {
        Some(ou) => Ok(Some(ou.clone())),
        None => m
            .organizations
            .find_ou(&t.name)
            .await
            .map_err(|e| ou_error(req, e)),
    }
}

fn type_id(req: &ApiRequest) -> Result<Uuid, ApiError> {
    parse_uuid(req.path_param("account_type_id"))
        .map_err(|e| ApiError::bad_request(format!("account_type_id: {e}")))
}

async fn versioned<S: AccountTypes, O>(
    m: &TypeManager<S, O>,
    req: &ApiRequest,
    id: Uuid,
) -> Result<Versioned<AccountType>, ApiError> {
    m.store
        .get_versioned_account_type(id)
        .await
        .map_err(|e| store_error(req, e))?
        .ok_or_else(|| ApiError::not_found(format!("no Account Type has id {id}")))
}

/// The type the path names, if it may be renamed.
async fn changeable<S: AccountTypes, O>(
    m: &TypeManager<S, O>,
    req: &ApiRequest,
) -> Result<Versioned<AccountType>, ApiError> {
    let current = versioned(m, req, type_id(req)?).await?;
    current
        .value
        .changeable()
        .map_err(|e| ApiError::conflict(ErrorName::AccountTypeNotChangeable, e))?;
    Ok(current)
}

fn of_type(id: Uuid) -> AccountFilter {
    AccountFilter {
        account_types: Some(BTreeSet::from([id])),
        ..AccountFilter::default()
    }
}

/// The type as `accounts.ReadAccountTypes` shows it, with its accounts.
async fn view<S: AccountReads + Policies>(
    store: &S,
    t: AccountType,
) -> Result<AccountTypeView, StoreError> {
    let accounts = store.list_accounts(&of_type(t.id)).await?;
    let policies: Vec<_> = store
        .list_policies()
        .await?
        .into_iter()
        .map(|p| p.value)
        .collect();
    let mut built = ReadAccountTypes::build(vec![t], &accounts, &policies, None);
    Ok(built.account_types.remove(0))
}

/// The `UpdateAccountTypeResponse` / `DeleteAccountTypeResponse` body.
async fn answer<S: AccountReads + AccountTypes + Policies, O>(
    m: &TypeManager<S, O>,
    req: &ApiRequest,
    t: AccountType,
) -> Result<Value, ApiError> {
    let view = view(&m.store, t).await.map_err(|e| store_error(req, e))?;
    Ok(json!({ "AccountTypes": view }))
}

fn name_taken(name: &str) -> ApiError {
    ApiError::conflict(
        ErrorName::AccountTypeNameTaken,
        format!("an Account Type named {name:?} already exists (names are compared ignoring case)"),
    )
}

fn store_error(req: &ApiRequest, e: StoreError) -> ApiError {
    match e {
        StoreError::AccountTypeNameTaken(name) => name_taken(&name),
        e @ StoreError::StaleAccountType(_) => ApiError::conflict(e.name(), e.to_string()),
        e => req.internal(&e),
    }
}

fn ou_error(req: &ApiRequest, e: OuError) -> ApiError {
    match e {
        e @ OuError::NotManaged { .. } => ApiError::conflict(e.name(), e.to_string()),
        OuError::Organizations(e) => organizations_error(req, e),
    }
}

/// AWS's refusals (a duplicate OU name, a limit) are the caller's to see; failures are ours.
fn organizations_error(req: &ApiRequest, e: OrganizationsError) -> ApiError {
    if e.is_refusal() || e.code.as_deref() == Some("DuplicateOrganizationalUnitException") {
        ApiError::conflict(ErrorName::OrganizationsRequestRefused, e.to_string())
    } else {
        req.internal(&e)
    }
}

impl TypeOus for aws_sdk_organizations::Client {
    async fn ensure_ou(&self, name: &str) -> Result<String, OuError> {
        let root = aws::organizations::root_id(self).await?;
        aws::organizations::ensure_managed_ou(self, &root, name).await
    }

    async fn find_ou(&self, name: &str) -> Result<Option<String>, OuError> {
        let root = aws::organizations::root_id(self).await?;
        aws::organizations::find_managed_ou(self, &root, name).await
    }

    async fn rename_ou(&self, ou: &str, name: &str) -> Result<(), OrganizationsError> {
        match self
            .update_organizational_unit()
            .organizational_unit_id(ou)
            .name(name)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Refused as a duplicate when the OU already has the name (a concurrent rename's
            // correction got there first): that is the rename done.
            Err(e) if e.code() == Some("DuplicateOrganizationalUnitException") => {
                let current = self
                    .describe_organizational_unit()
                    .organizational_unit_id(ou)
                    .send()
                    .await?;
                match current.organizational_unit().and_then(|o| o.name()) {
                    Some(n) if n == name => Ok(()),
                    _ => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn delete_ou_if_empty(&self, ou: &str) -> Result<bool, OrganizationsError> {
        match self
            .delete_organizational_unit()
            .organizational_unit_id(ou)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => match e.code() {
                Some("OrganizationalUnitNotEmptyException") => Ok(false),
                Some("OrganizationalUnitNotFoundException") => Ok(true),
                _ => Err(e.into()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use store::MemoryStore;

    const ADMIN: &str = "arn:aws:iam::123456789012:role/Admin";
    const OPERATOR: &str = "arn:aws:iam::123456789012:role/Ops";

    /// The root's OUs: id → (name, tagged, accounts in it); a rename or delete can be refused.
    #[derive(Default)]
    struct Root {
        ous: Mutex<BTreeMap<String, (String, bool, usize)>>,
        refuse_renames: bool,
    }

    impl Root {
        fn names(&self) -> Vec<String> {
            self.ous
                .lock()
                .unwrap()
                .values()
                .map(|(n, ..)| n.clone())
                .collect()
        }
    }

    impl TypeOus for Root {
        async fn ensure_ou(&self, name: &str) -> Result<String, OuError> {
            if let Some(id) = self.find_ou(name).await? {
                return Ok(id);
            }
            let mut ous = self.ous.lock().unwrap();
            let id = format!("ou-root-{:08}", ous.len());
            ous.insert(id.clone(), (name.to_owned(), true, 0));
            Ok(id)
        }
        async fn find_ou(&self, name: &str) -> Result<Option<String>, OuError> {
            let ous = self.ous.lock().unwrap();
            match ous.iter().find(|(_, (n, ..))| n == name) {
                Some((id, (_, false, _))) => Err(OuError::NotManaged {
                    name: name.into(),
                    ou: id.clone(),
                }),
                Some((id, _)) => Ok(Some(id.clone())),
                None => Ok(None),
            }
        }
        async fn rename_ou(&self, ou: &str, name: &str) -> Result<(), OrganizationsError> {
            if self.refuse_renames {
                return Err(OrganizationsError {
                    code: Some("DuplicateOrganizationalUnitException".into()),
                    message: "An OU with the same name already exists".into(),
                });
            }
            self.ous.lock().unwrap().get_mut(ou).unwrap().0 = name.to_owned();
            Ok(())
        }
        async fn delete_ou_if_empty(&self, ou: &str) -> Result<bool, OrganizationsError> {
            let mut ous = self.ous.lock().unwrap();
            if ous.get(ou).is_some_and(|(.., n)| *n > 0) {
                return Ok(false);
            }
            ous.remove(ou);
            Ok(true)
        }
    }

    type Api = TypeManager<MemoryStore, Root>;

    async fn manager(root: Root) -> Api {
        let store = MemoryStore::new();
        store.ensure_account_type("default").await.unwrap();
        TypeManager {
            store,
            organizations: root,
            access: AccessPolicy::from_json(&format!(
                r#"{{"{ADMIN}": "admin", "{OPERATOR}": "operations"}}"#
            ))
            .unwrap(),
        }
    }

    fn request(
        route_key: &str,
        principal: &str,
        id: Option<Uuid>,
        body: Option<&str>,
    ) -> ApiRequest {
        ApiRequest {
            route_key: route_key.into(),
            principal: Some(principal.into()),
            path: id
                .map(|id| ("account_type_id".to_owned(), id.to_string()))
                .into_iter()
                .collect(),
            body: body.map(str::to_owned),
            request_id: "req-1".into(),
            ..ApiRequest::default()
        }
    }

    async fn create(m: &Api, name: &str) -> Result<Value, ApiError> {
        let body = json!({"Name": name}).to_string();
        route(m, request(CREATE_ACCOUNT_TYPE, ADMIN, None, Some(&body))).await
    }

    async fn rename(m: &Api, id: Uuid, name: &str) -> Result<Value, ApiError> {
        let body = json!({"Name": name}).to_string();
        route(
            m,
            request(UPDATE_ACCOUNT_TYPE, ADMIN, Some(id), Some(&body)),
        )
        .await
    }

    async fn delete(m: &Api, id: Uuid) -> Result<Value, ApiError> {
        route(m, request(DELETE_ACCOUNT_TYPE, ADMIN, Some(id), None)).await
    }

    fn created_id(body: &Value) -> Uuid {
        body["Detail"]["AccountType"]["Id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    #[tokio::test]
    async fn a_type_is_created_with_its_own_tagged_ou() {
        let m = manager(Root::default()).await;
        let body = create(&m, "Sandbox").await.unwrap();
        assert_eq!(body["Detail"]["Operation"], "accounts:CreateAccountType");
        assert_eq!(body["Detail"]["OperationStatus"], "SUCCEEDED");
        let t = &body["Detail"]["AccountType"];
        assert_eq!(
            (t["Name"].as_str(), t["Status"].as_str()),
            (Some("Sandbox"), Some("ACTIVE"))
        );
        assert_eq!(t["StaxCreated"], false);
        assert!(
            t.get("OrgsOuId").is_none(),
            "the OU id is the service's, not in the Stax view"
        );
        let stored = m
            .store
            .get_account_type(created_id(&body))
            .await
            .unwrap()
            .unwrap();
        let ou = stored.ou.clone().unwrap();
        assert_eq!(
            m.organizations.ous.lock().unwrap()[&ou],
            ("Sandbox".to_owned(), true, 0)
        );
    }

    #[tokio::test]
    async fn refusals_write_nothing_and_make_no_ou() {
        let m = manager(Root::default()).await;
        create(&m, "Sandbox").await.unwrap();
        let before = (m.store.snapshot(), m.organizations.names());
        for (principal, name, status, error) in [
            (ADMIN, "sandbox", 409, "AccountTypeNameTaken"),
            (ADMIN, "Default", 400, "ValidationError"),
            (ADMIN, "x", 400, "ValidationError"),
            (ADMIN, "bad#name", 400, "ValidationError"),
            (OPERATOR, "Other", 403, "Forbidden"),
        ] {
            let body = json!({"Name": name}).to_string();
            let e = route(
                &m,
                request(CREATE_ACCOUNT_TYPE, principal, None, Some(&body)),
            )
            .await
            .unwrap_err();
            assert_eq!(
                (e.status, e.error.as_str()),
                (status, error),
                "{name}: {}",
                e.cause
            );
        }
        let e = route(&m, request(CREATE_ACCOUNT_TYPE, ADMIN, None, None))
            .await
            .unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!((m.store.snapshot(), m.organizations.names()), before);
    }

    #[tokio::test]
    async fn another_team_s_ou_of_the_name_is_not_adopted() {
        let root = Root::default();
        root.ous
            .lock()
            .unwrap()
            .insert("ou-theirs".into(), ("Payments".into(), false, 3));
        let m = manager(root).await;
        let before = m.store.snapshot();
        let e = create(&m, "Payments").await.unwrap_err();
        assert_eq!(
            (e.status, e.error.as_str()),
            (409, "NotManagedByTheService")
        );
        assert!(e.cause.contains("ou-theirs"), "{}", e.cause);
        assert_eq!(m.store.snapshot(), before);
    }

    #[tokio::test]
    async fn a_rename_moves_the_name_and_the_ou_follows() {
        let m = manager(Root::default()).await;
        let id = created_id(&create(&m, "Sandbox").await.unwrap());
        let body = rename(&m, id, "Playground").await.unwrap();
        assert_eq!(body["AccountTypes"]["Name"], "Playground");
        assert_eq!(m.organizations.names(), ["Playground"]);
        assert!(
            m.store
                .get_account_type_by_name("Sandbox")
                .await
                .unwrap()
                .is_none()
        );
        // The old name is free for a new type, with a new OU.
        create(&m, "Sandbox").await.unwrap();
        assert_eq!(m.organizations.names(), ["Playground", "Sandbox"]);
        let e = rename(&m, id, "SANDBOX").await.unwrap_err();
        assert_eq!((e.status, e.error.as_str()), (409, "AccountTypeNameTaken"));
        // The same name again changes nothing.
        let before = m.store.snapshot();
        rename(&m, id, "Playground").await.unwrap();
        assert_eq!(m.store.snapshot(), before);
    }

    #[tokio::test]
    async fn a_type_never_takes_an_ou_another_live_type_records() {
        let m = manager(Root::default()).await;
        let id = created_id(&create(&m, "Sandbox").await.unwrap());
        // Mid-rename: the record has its new name, the OU still the old one.
        let read = m
            .store
            .get_versioned_account_type(id)
            .await
            .unwrap()
            .unwrap();
        let renamed = AccountType {
            name: "Playground".into(),
            ..read.value.clone()
        };
        m.store.replace_account_type(&read, &renamed).await.unwrap();
        let before = m.store.snapshot();
        let e = create(&m, "Sandbox").await.unwrap_err();
        assert_eq!((e.status, e.error.as_str()), (409, "AccountTypeNameTaken"));
        assert!(
            e.cause.contains("is Account Type Playground's"),
            "{}",
            e.cause
        );
        assert_eq!(m.store.snapshot(), before);
    }

    #[tokio::test]
    async fn a_rename_aws_refuses_leaves_the_record_as_it_was() {
        let m = manager(Root {
            refuse_renames: true,
            ..Root::default()
        })
        .await;
        let id = created_id(&create(&m, "Sandbox").await.unwrap());
        let e = rename(&m, id, "Playground").await.unwrap_err();
        assert_eq!(
            (e.status, e.error.as_str()),
            (409, "OrganizationsRequestRefused")
        );
        assert!(e.cause.contains("already exists"), "{}", e.cause);
        let t = m.store.get_account_type(id).await.unwrap().unwrap();
        assert_eq!(t.name, "Sandbox");
        assert_eq!(
            m.store
                .get_account_type_by_name("Sandbox")
                .await
                .unwrap()
                .map(|t| t.id),
            Some(id)
        );
        assert!(
            m.store
                .get_account_type_by_name("Playground")
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn built_in_types_are_neither_renamed_nor_deleted() {
        let m = manager(Root::default()).await;
        let default = m
            .store
            .get_account_type_by_name("default")
            .await
            .unwrap()
            .unwrap();
        let before = m.store.snapshot();
        let e = rename(&m, default.id, "Standard").await.unwrap_err();
        assert_eq!(
            (e.status, e.error.as_str()),
            (409, "AccountTypeNotChangeable")
        );
        let e = delete(&m, default.id).await.unwrap_err();
        assert_eq!(
            (e.status, e.error.as_str()),
            (409, "AccountTypeNotChangeable")
        );
        let e = rename(&m, Uuid::new_v4(), "Standard").await.unwrap_err();
        assert_eq!(e.status, 404);
        let e = route(&m, request(DELETE_ACCOUNT_TYPE, ADMIN, None, None))
            .await
            .unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(m.store.snapshot(), before);
    }

    #[tokio::test]
    async fn a_type_with_open_accounts_is_not_deleted_and_an_empty_one_is_with_its_ou() {
        let m = manager(Root::default()).await;
        let id = created_id(&create(&m, "Sandbox").await.unwrap());
        let mut account =
            domain::fixtures::account_in(AccountStatus::Active, "bakery", Some("444455556666"));
        account.account_type = Some(id);
        let recorded = m.store.insert(account.clone());
        let before = (m.store.snapshot(), m.organizations.names());
        let e = delete(&m, id).await.unwrap_err();
        assert_eq!((e.status, e.error.as_str()), (409, "AccountTypeInUse"));
        assert!(
            e.cause.contains("1 account(s)") && e.cause.contains("bakery"),
            "{}",
            e.cause
        );
        assert_eq!((m.store.snapshot(), m.organizations.names()), before);

        // Closed, the account keeps its type, and its OU while AWS still lists it there.
        let ou = m
            .store
            .get_account_type(id)
            .await
            .unwrap()
            .unwrap()
            .ou
            .unwrap();
        m.organizations.ous.lock().unwrap().get_mut(&ou).unwrap().2 = 1;
        let mut closed = recorded.value.clone();
        closed.status = AccountStatus::Closed;
        m.store.insert(closed);
        let body = delete(&m, id).await.unwrap();
        assert_eq!(body["AccountTypes"]["Status"], "DELETED");
        assert_eq!(
            m.organizations.names(),
            ["Sandbox"],
            "the OU keeps its closed account"
        );
        // Repeated, the delete answers the same; the name is free again.
        assert_eq!(
            delete(&m, id).await.unwrap()["AccountTypes"]["Status"],
            "DELETED"
        );
        let e = rename(&m, id, "Again").await.unwrap_err();
        assert_eq!(e.error, ErrorName::AccountTypeNotChangeable);
        let again = created_id(&create(&m, "Sandbox").await.unwrap());
        assert_ne!(again, id);

        // A policy attached to the type keeps it.
        let empty = created_id(&create(&m, "Empty").await.unwrap());
        let now = domain::timestamp::now();
        let policy = domain::policies::Policy {
            id: Uuid::new_v4(),
            name: "guardrails".into(),
            description: "kept".into(),
            content: "{}".into(),
            status: PolicyStatus::Active,
            owner: domain::policies::PolicyOwner::Organisation,
            aws_id: Some("p-1".into()),
            organisation_id: None,
            tags: Default::default(),
            attachments: vec![domain::policies::PolicyAttachment {
                id: Uuid::new_v4(),
                target: AttachmentTarget::AccountType {
                    account_type_id: empty,
                },
                aws_target_id: "ou-empty".into(),
                created_ts: now,
                task: None,
            }],
            created_ts: now,
            modified_ts: now,
            task: None,
        };
        m.store.create_policy(&policy).await.unwrap();
        let e = delete(&m, empty).await.unwrap_err();
        assert_eq!((e.status, e.error.as_str()), (409, "AccountTypeInUse"));
        assert!(e.cause.contains("guardrails"), "{}", e.cause);
        let v = m.store.get_policy(policy.id).await.unwrap().unwrap();
        m.store
            .replace_policy(
                &v,
                &domain::policies::Policy {
                    attachments: Vec::new(),
                    ..policy
                },
            )
            .await
            .unwrap();
        delete(&m, empty).await.unwrap();
        assert!(
            !m.organizations.names().contains(&"Empty".to_owned()),
            "an empty OU is removed"
        );
    }

    #[test]
    fn a_type_changed_since_it_was_read_is_a_409_and_internals_stay_inside() {
        // (That two writes over one read get one StaleAccountType is the store contract's.)
        let req = request(UPDATE_ACCOUNT_TYPE, ADMIN, None, None);
        let e = store_error(&req, StoreError::StaleAccountType(Uuid::new_v4()));
        assert_eq!((e.status, e.error.as_str()), (409, "StaleRecord"));
        assert!(e.cause.contains("read it again"), "{}", e.cause);
        let e = store_error(&req, StoreError::Unavailable("table gone".into()));
        assert_eq!(e.status, 500);
        assert!(!e.cause.contains("table gone"), "{}", e.cause);
    }
}
