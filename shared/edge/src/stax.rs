//! The Stax API's shapes: the `GET /accounts` query and response, Account Types as
//! `accounts.ReadAccountTypes` shows them, the create and onboard bodies, the task envelope.
//!
//! Transport-free: the HTTP edge hands in query pairs and bodies and serialises what comes back.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use uuid::Uuid;

use domain::string_enum;
use domain::{
    Account, AccountFilter, AccountTypeRef, StaxAccountStatus, is_aws_account_id, timestamp,
    validate_account_name, validate_alias, validate_tags,
};

use crate::ApiError;

string_enum! {
    /// Fields `GET /accounts` can sort on.
    pub enum SortField {
        Name => "Name",
        CreatedTs => "CreatedTS",
        ModifiedTs => "ModifiedTS",
        Status => "Status",
        AwsAccountId => "AwsAccountId",
        AwsAccountName => "AwsAccountName",
    }
}

string_enum! {
    pub enum SortOrder {
        Asc => "ASC",
        Desc => "DESC",
    }
}

/// The largest page `limit` accepts.
pub const MAX_LIMIT: usize = 1000;

/// Which route a listing query came in on: each accepts the parameters the Stax document lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListRoute {
    /// `GET /20190206/accounts`
    Accounts,
    /// `GET /20190206/accounts/{account_id}`
    Account,
}

const LIST_PARAMS: &[&str] = &[
    "account_names",
    "filter",
    "id_filter",
    "name_filter",
    "aws_account_id_filter",
    "account_type_filter",
    "offset",
    "limit",
    "sort",
    "sort_order",
    "include_tags",
];

impl ListRoute {
    fn accepts(self, param: &str) -> bool {
        LIST_PARAMS.contains(&param) && !(self == ListRoute::Account && param == "name_filter")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub offset: usize,
    /// `None`: everything from `offset` on.
    pub limit: Option<usize>,
}

/// A validated `GET /accounts` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListAccountsQuery {
    pub filter: AccountFilter,
    /// Present when the caller sent `offset` or `limit`; then the response carries `Paging`.
    pub page: Option<PageRequest>,
    pub sort: SortField,
    pub order: SortOrder,
    pub include_tags: bool,
}

impl ListAccountsQuery {
    /// Validates query parameters (repeated keys are joined with commas, as API Gateway does).
    /// Unknown parameters and malformed values are refused with the parameter named.
    pub fn parse<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
        route: ListRoute,
    ) -> Result<Self, ApiError> {
        let mut values: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (k, v) in params {
            if !route.accepts(k) {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {k:?}; this route accepts {}",
                    LIST_PARAMS
                        .iter()
                        .filter(|p| route.accepts(p))
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            values.entry(k).or_default().push(v);
        }
        let list = |name: &str| -> Option<Vec<&str>> {
            let items: Vec<&str> = values
                .get(name)?
                .iter()
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            (!items.is_empty()).then_some(items)
        };
        let single = |name: &str| -> Result<Option<&str>, ApiError> {
            match values.get(name).map(Vec::as_slice) {
                None => Ok(None),
                Some([v]) => Ok(Some(v.trim())),
                Some(_) => Err(ApiError::bad_request(format!("{name} may be given once"))),
            }
        };
        let each =
            |name: &str, parse: &dyn Fn(&str) -> Result<(), String>| -> Result<(), ApiError> {
                for v in list(name).unwrap_or_default() {
                    parse(v).map_err(|why| ApiError::bad_request(format!("{name}: {why}")))?;
                }
                Ok(())
            };

        each("filter", &|v| {
            v.parse::<StaxAccountStatus>()
                .map(drop)
                .map_err(|e| e.to_string())
        })?;
        each("id_filter", &|v| parse_uuid(v).map(drop))?;
        each("account_type_filter", &|v| parse_uuid(v).map(drop))?;
        each("aws_account_id_filter", &|v| {
            if is_aws_account_id(v) {
                Ok(())
            } else {
                Err(format!("{v:?} is not a 12-digit AWS account id"))
            }
        })?;
        each("account_names", &validate_account_name)?;

        let name_contains = match single("name_filter")? {
            Some(v) if v.chars().count() > 50 => {
                return Err(ApiError::bad_request("name_filter: at most 50 characters"));
            }
            Some("") | None => None,
            Some(v) => Some(v.to_owned()),
        };

        let filter = AccountFilter {
            statuses: list("filter").map(|v| {
                v.iter()
                    .filter_map(|s| s.parse::<StaxAccountStatus>().ok()?.as_account_status())
                    .collect()
            }),
            ids: list("id_filter").map(|v| v.iter().filter_map(|s| parse_uuid(s).ok()).collect()),
            names: list("account_names").map(|v| v.iter().map(|s| (*s).to_owned()).collect()),
            name_contains,
            aws_account_ids: list("aws_account_id_filter")
                .map(|v| v.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>()),
            account_types: list("account_type_filter")
                .map(|v| v.iter().filter_map(|s| parse_uuid(s).ok()).collect()),
        };

        let number = |name: &str| -> Result<Option<usize>, ApiError> {
            single(name)?
                .map(|v| {
                    v.parse::<usize>().map_err(|_| {
                        ApiError::bad_request(format!("{name} must be a whole number, got {v:?}"))
                    })
                })
                .transpose()
        };
        let offset = number("offset")?;
        let limit = number("limit")?;
        if let Some(l) = limit
            && !(1..=MAX_LIMIT).contains(&l)
        {
            return Err(ApiError::bad_request(format!(
                "limit must be between 1 and {MAX_LIMIT}, got {l}"
            )));
        }
        let page = (offset.is_some() || limit.is_some()).then(|| PageRequest {
            offset: offset.unwrap_or(0),
            limit,
        });

        let sort = single("sort")?
            .map(|v| {
                v.parse()
                    .map_err(|e| ApiError::bad_request(format!("sort: {e}")))
            })
            .transpose()?
            .unwrap_or(SortField::CreatedTs);
        let order = single("sort_order")?
            .map(|v| {
                v.parse()
                    .map_err(|e| ApiError::bad_request(format!("sort_order: {e}")))
            })
            .transpose()?
            .unwrap_or(SortOrder::Desc);
        let include_tags = match single("include_tags")? {
            None | Some("true") => true,
            Some("false") => false,
            Some(v) => {
                return Err(ApiError::bad_request(format!(
                    "include_tags must be true or false, got {v:?}"
                )));
            }
        };
        Ok(ListAccountsQuery {
            filter,
            page,
            sort,
            order,
            include_tags,
        })
    }
}

/// Parses a path or query id, which Stax writes as a UUID.
pub fn parse_uuid(s: &str) -> Result<Uuid, String> {
    // `Uuid::parse_str` also takes braced and URN forms; Stax ids are the hyphenated form only.
    if s.len() != 36 {
        return Err(format!("{s:?} is not a UUID"));
    }
    Uuid::parse_str(s).map_err(|_| format!("{s:?} is not a UUID"))
}

/// `Paging` of a paged response (present when the request sent `offset` or `limit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pagination {
    #[serde(rename = "Total")]
    pub total: usize,
    #[serde(rename = "NextOffset")]
    pub next_offset: Option<usize>,
    #[serde(rename = "PrevOffset")]
    pub prev_offset: Option<usize>,
}

/// An account as the API returns it: the Stax fields plus the name of its Account Type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountView {
    #[serde(flatten)]
    pub account: Account,
    /// Not in the Stax document: the name of `AccountType`, for people reading the response.
    #[serde(rename = "AccountTypeName", skip_serializing_if = "Option::is_none")]
    pub account_type_name: Option<String>,
}

/// `GET /20190206/accounts/types`'s one parameter: `id_filter`, Account Type ids, comma
/// delimited (or repeated). `None`: every type.
pub fn parse_account_types_query<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Option<BTreeSet<Uuid>>, ApiError> {
    let mut ids: Option<BTreeSet<Uuid>> = None;
    for (k, v) in params {
        if k != "id_filter" {
            return Err(ApiError::bad_request(format!(
                "unknown query parameter {k:?}; this route accepts id_filter"
            )));
        }
        let wanted = ids.get_or_insert_with(BTreeSet::new);
        for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            wanted.insert(
                parse_uuid(item).map_err(|e| ApiError::bad_request(format!("id_filter: {e}")))?,
            );
        }
    }
    Ok(ids)
}

/// One Account Type as `accounts.ReadAccountTypes` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountTypeView {
    #[serde(rename = "Id")]
    pub id: Uuid,
    /// Every account carries the installation's organisation id; with no account recorded yet
    /// there is none to show.
    #[serde(rename = "OrganisationId", skip_serializing_if = "Option::is_none")]
    pub organisation_id: Option<Uuid>,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Status")]
    pub status: domain::AccountTypeStatus,
    /// The ids of the accounts of this type (closed ones included: they keep their type).
    #[serde(rename = "Accounts")]
    pub accounts: Vec<Uuid>,
    /// The policies attached to the type (to its OU) through the service.
    #[serde(rename = "Policies")]
    pub policies: Vec<Uuid>,
    /// Console access roles per group. Console access is not built yet: always empty.
    #[serde(rename = "Roles")]
    pub roles: Vec<serde_json::Value>,
    /// The built-in types (`default` and the foundation types).
    #[serde(rename = "StaxCreated")]
    pub stax_created: bool,
    #[serde(rename = "CreatedTS", with = "timestamp")]
    pub created_ts: chrono::DateTime<chrono::Utc>,
    #[serde(rename = "ModifiedTS", with = "timestamp")]
    pub modified_ts: chrono::DateTime<chrono::Utc>,
}

/// The `accounts.ReadAccountTypes` response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReadAccountTypes {
    #[serde(rename = "AccountTypes")]
    pub account_types: Vec<AccountTypeView>,
}

impl ReadAccountTypes {
    /// The types `ids` asks for (all when `None`), by name, each with its accounts and the
    /// live policies attached to it.
    pub fn build(
        mut types: Vec<domain::AccountType>,
        accounts: &[Account],
        policies: &[domain::policies::Policy],
        ids: Option<&BTreeSet<Uuid>>,
    ) -> Self {
        types.retain(|t| ids.is_none_or(|ids| ids.contains(&t.id)));
        types.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        let organisation_id = accounts.first().map(|a| a.organisation_id);
        let account_types = types
            .into_iter()
            .map(|t| AccountTypeView {
                id: t.id,
                organisation_id,
                stax_created: t.name.parse::<domain::BuiltInAccountType>().is_ok(),
                name: t.name,
                status: t.status,
                accounts: accounts
                    .iter()
                    .filter(|a| a.account_type == Some(t.id))
                    .map(|a| a.id)
                    .collect(),
                policies: policies
                    .iter()
                    .filter(|p| p.status != domain::policies::PolicyStatus::Deleted)
                    .filter(|p| {
                        p.attachment_to(&domain::policies::AttachmentTarget::AccountType {
                            account_type_id: t.id,
                        })
                        .is_some()
                    })
                    .map(|p| p.id)
                    .collect(),
                roles: Vec::new(),
                created_ts: t.created_ts,
                modified_ts: t.modified_ts,
            })
            .collect();
        ReadAccountTypes { account_types }
    }
}

/// The `accounts.ReadAccounts` response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReadAccounts {
    #[serde(rename = "Accounts")]
    pub accounts: Vec<AccountView>,
    #[serde(rename = "Paging", skip_serializing_if = "Option::is_none")]
    pub paging: Option<Pagination>,
}

impl ReadAccounts {
    /// Sorts, pages and shapes the accounts a query selected.
    pub fn build(
        mut accounts: Vec<Account>,
        type_names: &HashMap<Uuid, String>,
        query: &ListAccountsQuery,
    ) -> Self {
        let key = |a: &Account| -> String {
            match query.sort {
                SortField::Name => a.name.to_lowercase(),
                SortField::CreatedTs => timestamp::format(&a.created_ts),
                SortField::ModifiedTs => timestamp::format(&a.modified_ts),
                SortField::Status => a.status.as_str().to_owned(),
                SortField::AwsAccountId => a.aws_account_id.clone().unwrap_or_default(),
                SortField::AwsAccountName => a
                    .aws_account_name
                    .as_deref()
                    .unwrap_or_default()
                    .to_lowercase(),
            }
        };
        // The id breaks ties, so pages never overlap or skip.
        accounts.sort_by_cached_key(|a| (key(a), a.id));
        if query.order == SortOrder::Desc {
            accounts.reverse();
        }
        let total = accounts.len();
        let paging = query.page.map(|p| {
            let end = p.limit.map_or(total, |l| p.offset.saturating_add(l));
            Pagination {
                total,
                next_offset: (end < total).then_some(end),
                prev_offset: (p.offset > 0)
                    .then(|| p.offset.saturating_sub(p.limit.unwrap_or(p.offset))),
            }
        });
        let page: Vec<Account> = match query.page {
            Some(p) => accounts
                .into_iter()
                .skip(p.offset)
                .take(p.limit.unwrap_or(usize::MAX))
                .collect(),
            None => accounts,
        };
        let accounts = page
            .into_iter()
            .map(|mut account| {
                if !query.include_tags {
                    account.tags = None;
                }
                let account_type_name = account
                    .account_type
                    .and_then(|t| type_names.get(&t).cloned());
                AccountView {
                    account,
                    account_type_name,
                }
            })
            .collect();
        ReadAccounts { accounts, paging }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, Utc};
    use domain::{AccountStatus, Tags};

    fn parse(q: &[(&str, &str)]) -> Result<ListAccountsQuery, ApiError> {
        ListAccountsQuery::parse(q.iter().copied(), ListRoute::Accounts)
    }

    fn cause(q: &[(&str, &str)]) -> String {
        let e = parse(q).unwrap_err();
        assert_eq!(
            (e.status, e.error),
            (400, domain::ErrorName::ValidationError)
        );
        e.cause
    }

    #[test]
    fn no_parameters_list_everything_newest_first() {
        let q = parse(&[]).unwrap();
        assert_eq!(q.filter, AccountFilter::default());
        assert_eq!(
            (q.sort, q.order, q.page, q.include_tags),
            (SortField::CreatedTs, SortOrder::Desc, None, true)
        );
    }

    #[test]
    fn filters_are_parsed_into_sets() {
        let id = Uuid::new_v4();
        let q = parse(&[
            ("filter", "ACTIVE,DISCOVERED"),
            ("filter", "OFFBOARDED"),
            ("id_filter", &id.to_string()),
            ("aws_account_id_filter", "111111111111, 222222222222"),
            ("account_names", "security,logging"),
            ("name_filter", "bak"),
        ])
        .unwrap();
        assert_eq!(
            q.filter.statuses,
            Some([AccountStatus::Active, AccountStatus::Discovered].into())
        );
        assert_eq!(q.filter.ids, Some([id].into()));
        assert_eq!(q.filter.aws_account_ids.unwrap().len(), 2);
        assert_eq!(q.filter.names.unwrap().len(), 2);
        assert_eq!(q.filter.name_contains.as_deref(), Some("bak"));
    }

    #[test]
    fn a_stax_status_this_service_never_assigns_matches_nothing() {
        let q = parse(&[("filter", "AWSERROR")]).unwrap();
        assert_eq!(q.filter.statuses, Some(BTreeSet::new()));
    }

    #[test]
    fn bad_values_are_refused_with_the_parameter_named() {
        assert!(
            cause(&[("filter", "ACTIVE,RUNNING")]).starts_with("filter: \"RUNNING\" is not one of")
        );
        assert!(cause(&[("filter", "active")]).starts_with("filter:"));
        assert!(cause(&[("id_filter", "not-a-uuid")]).starts_with("id_filter:"));
        assert!(
            cause(&[(
                "account_type_filter",
                "{e893d7e0-9306-11e9-bc42-526af7764f64}"
            )])
            .starts_with("account_type_filter:")
        );
        assert!(cause(&[("aws_account_id_filter", "12345")]).starts_with("aws_account_id_filter:"));
        assert!(cause(&[("account_names", "a<b")]).starts_with("account_names:"));
        assert!(cause(&[("name_filter", &"x".repeat(51))]).starts_with("name_filter:"));
        assert!(cause(&[("sort", "Colour")]).starts_with("sort:"));
        assert!(cause(&[("sort_order", "UP")]).starts_with("sort_order:"));
        assert!(cause(&[("include_tags", "yes")]).starts_with("include_tags"));
        assert!(
            cause(&[("statuses", "ACTIVE")]).starts_with("unknown query parameter \"statuses\"")
        );
    }

    #[test]
    fn limit_and_offset_are_bounded_whole_numbers() {
        assert_eq!(
            cause(&[("limit", "0")]),
            "limit must be between 1 and 1000, got 0"
        );
        assert_eq!(
            cause(&[("limit", "1001")]),
            "limit must be between 1 and 1000, got 1001"
        );
        assert!(cause(&[("limit", "-1")]).starts_with("limit must be a whole number"));
        assert!(cause(&[("offset", "x")]).starts_with("offset must be a whole number"));
        assert!(cause(&[("limit", "5"), ("limit", "6")]).starts_with("limit may be given once"));
        let q = parse(&[("limit", "1000"), ("offset", "0")]).unwrap();
        assert_eq!(
            q.page,
            Some(PageRequest {
                offset: 0,
                limit: Some(1000)
            })
        );
    }

    #[test]
    fn the_single_account_route_has_no_name_filter() {
        let e = ListAccountsQuery::parse([("name_filter", "x")], ListRoute::Account).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(ListAccountsQuery::parse([("filter", "ACTIVE")], ListRoute::Account).is_ok());
    }

    fn account(name: &str, age_minutes: i64) -> Account {
        let mut a = domain::fixtures::account_in(AccountStatus::Active, name, None);
        a.tags = Some(Tags::from([("k".into(), "v".into())]));
        a.created_ts = Utc::now() - Duration::minutes(age_minutes);
        a
    }

    fn names(r: &ReadAccounts) -> Vec<&str> {
        r.accounts.iter().map(|a| a.account.name.as_str()).collect()
    }

    #[test]
    fn pages_walk_the_sorted_list_without_overlap() {
        let accounts: Vec<Account> = (0..5).map(|i| account(&format!("a{i}"), i)).collect();
        let page = |offset: &str| {
            let q = parse(&[
                ("sort", "Name"),
                ("sort_order", "ASC"),
                ("limit", "2"),
                ("offset", offset),
            ])
            .unwrap();
            ReadAccounts::build(accounts.clone(), &HashMap::new(), &q)
        };
        let first = page("0");
        assert_eq!(names(&first), ["a0", "a1"]);
        assert_eq!(
            first.paging,
            Some(Pagination {
                total: 5,
                next_offset: Some(2),
                prev_offset: None
            })
        );
        let last = page("4");
        assert_eq!(names(&last), ["a4"]);
        assert_eq!(
            last.paging,
            Some(Pagination {
                total: 5,
                next_offset: None,
                prev_offset: Some(2)
            })
        );
        assert!(page("9").accounts.is_empty());
    }

    #[test]
    fn default_order_is_newest_first_and_tags_can_be_left_out() {
        let accounts = vec![account("old", 60), account("new", 1)];
        let q = parse(&[("include_tags", "false")]).unwrap();
        let r = ReadAccounts::build(accounts, &HashMap::new(), &q);
        assert_eq!(names(&r), ["new", "old"]);
        assert!(r.accounts.iter().all(|a| a.account.tags.is_none()));
        assert!(r.paging.is_none());
    }

    #[test]
    fn views_carry_the_account_type_name() {
        let mut a = account("sec", 1);
        let t = Uuid::new_v4();
        a.account_type = Some(t);
        let r = ReadAccounts::build(
            vec![a],
            &HashMap::from([(t, "foundation-security".into())]),
            &parse(&[]).unwrap(),
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["Accounts"][0]["AccountType"], t.to_string());
        assert_eq!(
            json["Accounts"][0]["AccountTypeName"],
            "foundation-security"
        );
        assert!(json.get("Paging").is_none());
    }

    #[test]
    fn error_bodies_have_the_stax_shape() {
        let e = ApiError::bad_request("limit must be between 1 and 1000, got 0");
        assert_eq!(
            serde_json::to_value(e.body()).unwrap(),
            serde_json::json!({"Error": "ValidationError", "Cause": "limit must be between 1 and 1000, got 0"})
        );
    }
}

/// A validated `accounts.CreateAccount` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateAccountRequest {
    pub name: String,
    pub account_type: AccountTypeRef,
    pub aws_account_alias: Option<String>,
    pub tags: Option<domain::Tags>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateAccountBody {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "AccountType")]
    account_type: String,
    #[serde(rename = "AwsAccountAlias", default)]
    aws_account_alias: Option<String>,
    #[serde(rename = "OrganisationalUnitId", default)]
    organisational_unit_id: Option<String>,
    #[serde(rename = "Tags", default)]
    tags: Option<domain::Tags>,
}

impl CreateAccountRequest {
    /// Parses and validates the body against the Stax `accounts.CreateAccount` schema.
    pub fn parse(body: Option<&str>) -> Result<Self, ApiError> {
        let body = body.filter(|b| !b.trim().is_empty()).ok_or_else(|| {
            ApiError::bad_request("the request needs a JSON body (accounts.CreateAccount)")
        })?;
        let raw: CreateAccountBody = serde_json::from_str(body).map_err(|e| {
            ApiError::bad_request(format!("the body is not an accounts.CreateAccount: {e}"))
        })?;
        validate_account_name(&raw.name)
            .map_err(|e| ApiError::bad_request(format!("Name: {e}")))?;
        if raw.organisational_unit_id.is_some() {
            return Err(ApiError::bad_request(
                "OrganisationalUnitId: not supported; an account is placed in its Account Type's OU",
            ));
        }
        if let Some(alias) = &raw.aws_account_alias {
            validate_alias(alias)
                .map_err(|e| ApiError::bad_request(format!("AwsAccountAlias: {e}")))?;
        }
        if let Some(tags) = &raw.tags {
            validate_tags(tags).map_err(|e| ApiError::bad_request(format!("Tags: {e}")))?;
        }
        Ok(CreateAccountRequest {
            name: raw.name,
            account_type: account_type_ref(&raw.account_type)?,
            aws_account_alias: raw.aws_account_alias,
            tags: raw.tags,
        })
    }
}

/// A validated `accounts.UpdateAccount` body: every field optional, at least one given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateAccountRequest {
    pub name: Option<String>,
    pub aws_account_alias: Option<String>,
    pub aws_account_name: Option<String>,
    pub account_type: Option<AccountTypeRef>,
    /// The Stax id of an OU. Each Account Type is one OU, and the Stax id of that OU is the
    /// type's id: the only one an account may be in is its type's.
    pub organisational_unit_id: Option<Uuid>,
    pub tags: Option<domain::Tags>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateAccountBody {
    #[serde(rename = "Name", default)]
    name: Option<String>,
    #[serde(rename = "AwsAccountAlias", default)]
    aws_account_alias: Option<String>,
    #[serde(rename = "AwsAccountName", default)]
    aws_account_name: Option<String>,
    #[serde(rename = "AccountType", default)]
    account_type: Option<String>,
    #[serde(rename = "OrganisationalUnitId", default)]
    organisational_unit_id: Option<String>,
    #[serde(rename = "Tags", default)]
    tags: Option<domain::Tags>,
}

impl UpdateAccountRequest {
    /// Parses and validates the body against the Stax `accounts.UpdateAccount` schema.
    pub fn parse(body: Option<&str>) -> Result<Self, ApiError> {
        let body = body.filter(|b| !b.trim().is_empty()).ok_or_else(|| {
            ApiError::bad_request("the request needs a JSON body (accounts.UpdateAccount)")
        })?;
        let raw: UpdateAccountBody = serde_json::from_str(body).map_err(|e| {
            ApiError::bad_request(format!("the body is not an accounts.UpdateAccount: {e}"))
        })?;
        let field = |name: &str, r: Result<(), String>| {
            r.map_err(|e| ApiError::bad_request(format!("{name}: {e}")))
        };
        if let Some(name) = &raw.name {
            field("Name", validate_account_name(name))?;
        }
        if let Some(name) = &raw.aws_account_name {
            field("AwsAccountName", validate_account_name(name))?;
        }
        if let Some(alias) = &raw.aws_account_alias {
            field("AwsAccountAlias", validate_alias(alias))?;
        }
        if let Some(tags) = &raw.tags {
            field("Tags", validate_tags(tags))?;
        }
        let organisational_unit_id = raw
            .organisational_unit_id
            .as_deref()
            .map(|ou| {
                parse_uuid(ou)
                    .map_err(|e| ApiError::bad_request(format!("OrganisationalUnitId: {e}")))
            })
            .transpose()?;
        let request = UpdateAccountRequest {
            name: raw.name,
            aws_account_alias: raw.aws_account_alias,
            aws_account_name: raw.aws_account_name,
            account_type: raw
                .account_type
                .as_deref()
                .map(account_type_ref)
                .transpose()?,
            organisational_unit_id,
            tags: raw.tags,
        };
        if request == UpdateAccountRequest::default() {
            return Err(ApiError::bad_request(
                "the body names nothing to change: give at least one of Name, AwsAccountAlias, \
                 AwsAccountName, AccountType, OrganisationalUnitId, Tags",
            ));
        }
        Ok(request)
    }
}

#[cfg(test)]
mod update_tests {
    use super::*;

    fn cause(body: &str) -> String {
        let e = UpdateAccountRequest::parse(Some(body)).unwrap_err();
        assert_eq!(e.status, 400);
        e.cause
    }

    #[test]
    fn every_field_is_optional_but_one_is_needed() {
        let r = UpdateAccountRequest::parse(Some(
            r#"{"Name": "bakery-2", "AwsAccountAlias": "bakery-two", "AwsAccountName": "Bakery 2",
                "AccountType": "default", "Tags": {"Team": "bread"}}"#,
        ))
        .unwrap();
        assert_eq!(r.name.as_deref(), Some("bakery-2"));
        assert_eq!(r.account_type, Some(AccountTypeRef::Name("default".into())));
        let id = Uuid::new_v4();
        let r =
            UpdateAccountRequest::parse(Some(&format!(r#"{{"OrganisationalUnitId": "{id}"}}"#)))
                .unwrap();
        assert_eq!(r.organisational_unit_id, Some(id));
        assert!(cause("{}").starts_with("the body names nothing to change"));
        assert!(cause(r#"{"Name": null}"#).starts_with("the body names nothing to change"));
        assert!(
            UpdateAccountRequest::parse(None)
                .unwrap_err()
                .cause
                .contains("needs a JSON body")
        );
    }

    #[test]
    fn every_violation_names_its_field() {
        assert!(cause(r#"{"Name": ""}"#).starts_with("Name:"));
        assert!(cause(r#"{"AwsAccountName": "a>b"}"#).starts_with("AwsAccountName:"));
        assert!(cause(r#"{"AwsAccountAlias": "Upper"}"#).starts_with("AwsAccountAlias:"));
        assert!(cause(r#"{"AccountType": "x"}"#).starts_with("AccountType:"));
        assert!(
            cause(r#"{"OrganisationalUnitId": "ou-ab12-cd34ef56"}"#)
                .starts_with("OrganisationalUnitId:")
        );
        assert!(cause(r#"{"Tags": {"aws:x": "y"}}"#).starts_with("Tags:"));
        assert!(cause(r#"{"Tags": {"accounts:managed-by": "me"}}"#).starts_with("Tags:"));
        assert!(cause(r#"{"Colour": "red"}"#).contains("unknown field `Colour`"));
        assert!(cause("[1]").starts_with("the body is not an accounts.UpdateAccount"));
    }

    #[test]
    fn a_close_names_one_account_by_id() {
        let id = Uuid::new_v4();
        let r = CloseAccountRequest::parse(Some(&format!(r#"{{"Id": "{id}"}}"#))).unwrap();
        assert_eq!(r.id, id);
        for (body, starts) in [
            ("{}", "the body is not"),
            (r#"{"Id": "123"}"#, "Id:"),
            (r#"{"Id": "x", "Force": true}"#, "the body is not"),
        ] {
            let e = CloseAccountRequest::parse(Some(body)).unwrap_err();
            assert!(e.cause.starts_with(starts), "{body}: {}", e.cause);
        }
        assert_eq!(CloseAccountRequest::parse(None).unwrap_err().status, 400);
    }
}

/// A validated `accounts.CloseAccount` body: the account's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseAccountRequest {
    pub id: Uuid,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseAccountBody {
    #[serde(rename = "Id")]
    id: String,
}

impl CloseAccountRequest {
    pub fn parse(body: Option<&str>) -> Result<Self, ApiError> {
        let body = body.filter(|b| !b.trim().is_empty()).ok_or_else(|| {
            ApiError::bad_request("the request needs a JSON body (accounts.CloseAccount)")
        })?;
        let raw: CloseAccountBody = serde_json::from_str(body).map_err(|e| {
            ApiError::bad_request(format!("the body is not an accounts.CloseAccount: {e}"))
        })?;
        let id = parse_uuid(&raw.id).map_err(|e| ApiError::bad_request(format!("Id: {e}")))?;
        Ok(CloseAccountRequest { id })
    }
}

/// `AccountType` as a request gives it: a UUID is an id, anything else a name.
fn account_type_ref(raw: &str) -> Result<AccountTypeRef, ApiError> {
    if let Ok(id) = parse_uuid(raw) {
        return Ok(AccountTypeRef::Id(id));
    }
    if domain::validate_account_type_name(raw).is_err() {
        return Err(ApiError::bad_request(format!(
            "AccountType: {raw:?} is neither an Account Type id nor a valid Account Type name"
        )));
    }
    Ok(AccountTypeRef::Name(raw.to_owned()))
}

/// A validated `accounts.CreateAccountType` or `accounts.UpdateAccountType` body: the type's
/// new name (a built-in type's refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountTypeNameRequest {
    pub name: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountTypeNameBody {
    #[serde(rename = "Name")]
    name: String,
}

impl AccountTypeNameRequest {
    /// `schema` names the Stax body in errors (`accounts.CreateAccountType`).
    pub fn parse(body: Option<&str>, schema: &str) -> Result<Self, ApiError> {
        let body = body.filter(|b| !b.trim().is_empty()).ok_or_else(|| {
            ApiError::bad_request(format!("the request needs a JSON body ({schema})"))
        })?;
        let raw: AccountTypeNameBody = serde_json::from_str(body)
            .map_err(|e| ApiError::bad_request(format!("the body is not an {schema}: {e}")))?;
        domain::validate_new_account_type_name(&raw.name)
            .map_err(|e| ApiError::bad_request(format!("Name: {e}")))?;
        Ok(AccountTypeNameRequest { name: raw.name })
    }
}

/// A validated `accounts.UpdateAccountTypeMembers` body: each account once, with the type it
/// moves to (by id or by name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateAccountTypeMembersRequest {
    pub members: Vec<(Uuid, AccountTypeRef)>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MembersBody {
    #[serde(rename = "Members")]
    members: Vec<MemberBody>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberBody {
    #[serde(rename = "AccountId")]
    account_id: String,
    #[serde(rename = "AccountTypeId", default)]
    account_type_id: Option<String>,
    #[serde(rename = "AccountTypeName", default)]
    account_type_name: Option<String>,
}

impl UpdateAccountTypeMembersRequest {
    /// At most this many accounts move in one request (each starts its own update workflow
    /// within the request's time).
    pub const MAX_MEMBERS: usize = 50;

    pub fn parse(body: Option<&str>) -> Result<Self, ApiError> {
        let schema = "accounts.UpdateAccountTypeMembers";
        let body = body.filter(|b| !b.trim().is_empty()).ok_or_else(|| {
            ApiError::bad_request(format!("the request needs a JSON body ({schema})"))
        })?;
        let raw: MembersBody = serde_json::from_str(body)
            .map_err(|e| ApiError::bad_request(format!("the body is not an {schema}: {e}")))?;
        if raw.members.is_empty() || raw.members.len() > Self::MAX_MEMBERS {
            return Err(ApiError::bad_request(format!(
                "Members: 1 to {} accounts, not {}",
                Self::MAX_MEMBERS,
                raw.members.len()
            )));
        }
        let mut members: Vec<(Uuid, AccountTypeRef)> = Vec::with_capacity(raw.members.len());
        for (i, m) in raw.members.into_iter().enumerate() {
            let field = |name: &str| format!("Members[{i}].{name}");
            let account = parse_uuid(&m.account_id)
                .map_err(|e| ApiError::bad_request(format!("{}: {e}", field("AccountId"))))?;
            let account_type = match (m.account_type_id, m.account_type_name) {
                (Some(id), None) => AccountTypeRef::Id(parse_uuid(&id).map_err(|e| {
                    ApiError::bad_request(format!("{}: {e}", field("AccountTypeId")))
                })?),
                (None, Some(name)) => {
                    domain::validate_account_type_name(&name).map_err(|e| {
                        ApiError::bad_request(format!("{}: {e}", field("AccountTypeName")))
                    })?;
                    AccountTypeRef::Name(name)
                }
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "Members[{i}]: give one of AccountTypeId and AccountTypeName"
                    )));
                }
            };
            if members.iter().any(|(a, _)| *a == account) {
                return Err(ApiError::bad_request(format!(
                    "{}: account {account} is named twice",
                    field("AccountId")
                )));
            }
            members.push((account, account_type));
        }
        Ok(UpdateAccountTypeMembersRequest { members })
    }
}

#[cfg(test)]
mod members_tests {
    use super::*;

    #[test]
    fn each_member_names_an_account_once_and_one_type() {
        let (a, t) = (Uuid::new_v4(), Uuid::new_v4());
        let body = format!(
            r#"{{"Members": [{{"AccountId": "{a}", "AccountTypeId": "{t}"}},
                            {{"AccountId": "{t}", "AccountTypeName": "Sandbox"}}]}}"#
        );
        let r = UpdateAccountTypeMembersRequest::parse(Some(&body)).unwrap();
        assert_eq!(
            r.members,
            [
                (a, AccountTypeRef::Id(t)),
                (t, AccountTypeRef::Name("Sandbox".into()))
            ]
        );
        let many: Vec<String> = (0..51)
            .map(|_| {
                format!(
                    r#"{{"AccountId": "{}", "AccountTypeId": "{t}"}}"#,
                    Uuid::new_v4()
                )
            })
            .collect();
        for (body, cause) in [
            ("{}".to_owned(), "missing field `Members`"),
            (
                r#"{"Members": []}"#.to_owned(),
                "Members: 1 to 50 accounts, not 0",
            ),
            (
                format!(r#"{{"Members": [{}]}}"#, many.join(",")),
                "Members: 1 to 50 accounts, not 51",
            ),
            (
                format!(r#"{{"Members": [{{"AccountId": "x", "AccountTypeId": "{t}"}}]}}"#),
                "Members[0].AccountId:",
            ),
            (
                format!(r#"{{"Members": [{{"AccountId": "{a}"}}]}}"#),
                "Members[0]: give one of",
            ),
            (
                format!(
                    r#"{{"Members": [{{"AccountId": "{a}", "AccountTypeId": "{t}", "AccountTypeName": "x1"}}]}}"#
                ),
                "Members[0]: give one of",
            ),
            (
                format!(r##"{{"Members": [{{"AccountId": "{a}", "AccountTypeName": "#"}}]}}"##),
                "Members[0].AccountTypeName:",
            ),
            (
                format!(
                    r#"{{"Members": [{{"AccountId": "{a}", "AccountTypeId": "{t}"}}, {{"AccountId": "{a}", "AccountTypeId": "{t}"}}]}}"#
                ),
                "Members[1].AccountId: account",
            ),
            (
                format!(
                    r#"{{"Members": [{{"AccountId": "{a}", "AccountTypeId": "{t}", "Other": 1}}]}}"#
                ),
                "unknown field `Other`",
            ),
        ] {
            let e = UpdateAccountTypeMembersRequest::parse(Some(&body)).unwrap_err();
            assert_eq!(e.status, 400);
            assert!(e.cause.contains(cause), "{body}: {} / {cause}", e.cause);
        }
    }
}

#[cfg(test)]
mod account_type_tests {
    use super::*;

    #[test]
    fn a_type_name_body_is_one_valid_name() {
        let ok = AccountTypeNameRequest::parse(Some(r#"{"Name": "QA"}"#), "x").unwrap();
        assert_eq!(ok.name, "QA");
        for (body, cause) in [
            (
                None,
                "the request needs a JSON body (accounts.CreateAccountType)",
            ),
            (
                Some(r#"{"Name": "QA", "Id": "x"}"#),
                "the body is not an accounts.CreateAccountType: unknown field `Id`",
            ),
            (
                Some(r#"{}"#),
                "the body is not an accounts.CreateAccountType: missing field `Name`",
            ),
            (
                Some(r#"{"Name": "a"}"#),
                "Name: an Account Type name has 2 to 64 characters",
            ),
            (
                Some(r#"{"Name": "a#b"}"#),
                "Name: an Account Type name has letters",
            ),
            (
                Some(r#"{"Name": "DEFAULT"}"#),
                "Name: default is the name of a built-in Account Type",
            ),
        ] {
            let e = AccountTypeNameRequest::parse(body, "accounts.CreateAccountType").unwrap_err();
            assert_eq!(e.status, 400);
            assert!(
                e.body().cause.starts_with(cause),
                "{} / {cause}",
                e.body().cause
            );
        }
    }
}

#[cfg(test)]
mod create_tests {
    use super::*;

    fn parse(body: &str) -> Result<CreateAccountRequest, ApiError> {
        CreateAccountRequest::parse(Some(body))
    }

    fn cause(body: &str) -> String {
        let e = parse(body).unwrap_err();
        assert_eq!(e.status, 400);
        e.cause
    }

    #[test]
    fn a_valid_body_names_its_type_by_name_or_id() {
        let r = parse(r#"{"Name": "bakery", "AccountType": "default", "AwsAccountAlias": "bakery-prod", "Tags": {"CostCode": "12345"}}"#).unwrap();
        assert_eq!(r.account_type, AccountTypeRef::Name("default".into()));
        assert_eq!(r.aws_account_alias.as_deref(), Some("bakery-prod"));
        let id = Uuid::new_v4();
        let r = parse(&format!(
            r#"{{"Name": "bakery", "AccountType": "{id}", "OrganisationalUnitId": null}}"#
        ))
        .unwrap();
        assert_eq!(r.account_type, AccountTypeRef::Id(id));
    }

    #[test]
    fn every_violation_is_named() {
        assert!(
            CreateAccountRequest::parse(None)
                .unwrap_err()
                .cause
                .contains("needs a JSON body")
        );
        assert!(cause("{").starts_with("the body is not an accounts.CreateAccount"));
        assert!(cause(r#"{"AccountType": "default"}"#).contains("missing field `Name`"));
        assert!(cause(r#"{"Name": "bakery"}"#).contains("missing field `AccountType`"));
        assert!(
            cause(r#"{"Name": "bakery", "AccountType": "default", "Colour": "red"}"#)
                .contains("unknown field `Colour`")
        );
        assert!(cause(r#"{"Name": "", "AccountType": "default"}"#).starts_with("Name:"));
        assert!(cause(r#"{"Name": "a<b", "AccountType": "default"}"#).starts_with("Name:"));
        assert!(cause(r#"{"Name": "bakery", "AccountType": "n"}"#).starts_with("AccountType:"));
        assert!(
            cause(r#"{"Name": "bakery", "AccountType": "default", "AwsAccountAlias": "Bakery"}"#)
                .starts_with("AwsAccountAlias:")
        );
        assert!(
            cause(r#"{"Name": "bakery", "AccountType": "default", "AwsAccountAlias": "a--b"}"#)
                .starts_with("AwsAccountAlias:")
        );
        assert!(
            cause(r#"{"Name": "bakery", "AccountType": "default", "Tags": {"aws:x": "y"}}"#)
                .starts_with("Tags:")
        );
        assert!(
            cause(r#"{"Name": "bakery", "AccountType": "default", "Tags": {"k": "v!"}}"#)
                .starts_with("Tags:")
        );
        let e = parse(r#"{"Name": "bakery", "AccountType": "default", "OrganisationalUnitId": "e893d7e0-9306-11e9-bc42-526af7764f64"}"#).unwrap_err();
        assert!(e.cause.starts_with("OrganisationalUnitId: not supported"));
    }
}

/// The Stax task envelope a mutating request answers with (`accounts.CreateAccountResponse`
/// and its siblings): the task to follow, and what was asked.
pub fn task_envelope(
    task: &domain::Task,
    organisation_id: Uuid,
    request_id: &str,
    detail_type: &str,
    message: String,
    account: Option<serde_json::Value>,
) -> serde_json::Value {
    let mut detail = serde_json::json!({
        "Message": message,
        "Operation": task.operation,
        "OperationStatus": task.status,
        "Severity": "INFO",
        "TraceId": request_id,
    });
    if let Some(account) = account {
        detail["Account"] = account;
    }
    serde_json::json!({
        "TaskId": task.id,
        "CustomerId": organisation_id,
        "TraceId": request_id,
        "DetailType": detail_type,
        "Detail": detail,
    })
}

/// A validated `accounts.OnboardAccount` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnboardAccountRequest {
    pub aws_account_id: String,
    pub account_type: AccountTypeRef,
    /// A new name for the record (unique case-insensitively).
    pub name: Option<String>,
    pub tags: Option<domain::Tags>,
    /// (Extension) The AWS OU, not the service's, the account may be moved out of.
    pub leave_organisational_unit: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct OnboardAccountBody {
    #[serde(rename = "AwsAccountId")]
    aws_account_id: String,
    #[serde(rename = "AccountType")]
    account_type: String,
    #[serde(rename = "Name", default)]
    name: Option<String>,
    #[serde(rename = "AwsAccountName", default)]
    aws_account_name: Option<String>,
    #[serde(rename = "OrganisationalUnitId", default)]
    organisational_unit_id: Option<String>,
    #[serde(rename = "Tags", default)]
    tags: Option<domain::Tags>,
    #[serde(rename = "LeaveOrganisationalUnit", default)]
    leave_organisational_unit: Option<String>,
}

/// An AWS Organizations OU id: `ou-` then 4–32 lowercase letters or digits (the root's id), `-`,
/// then 8–32 more.
fn is_aws_ou_id(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("ou-") else {
        return false;
    };
    let Some((root, own)) = rest.split_once('-') else {
        return false;
    };
    let part = |p: &str, min: usize| {
        (min..=32).contains(&p.len())
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    part(root, 4) && part(own, 8)
}

impl OnboardAccountRequest {
    /// Parses and validates the body against the Stax `accounts.OnboardAccount` schema.
    pub fn parse(body: Option<&str>) -> Result<Self, ApiError> {
        let body = body.filter(|b| !b.trim().is_empty()).ok_or_else(|| {
            ApiError::bad_request("the request needs a JSON body (accounts.OnboardAccount)")
        })?;
        let raw: OnboardAccountBody = serde_json::from_str(body).map_err(|e| {
            ApiError::bad_request(format!("the body is not an accounts.OnboardAccount: {e}"))
        })?;
        if !is_aws_account_id(&raw.aws_account_id) {
            return Err(ApiError::bad_request(format!(
                "AwsAccountId: {:?} is not a 12-digit AWS account id",
                raw.aws_account_id
            )));
        }
        if let Some(name) = &raw.name {
            validate_account_name(name).map_err(|e| ApiError::bad_request(format!("Name: {e}")))?;
        }
        if raw.aws_account_name.is_some() {
            return Err(ApiError::bad_request(
                "AwsAccountName: not supported; the service follows the name AWS reports",
            ));
        }
        if raw.organisational_unit_id.is_some() {
            return Err(ApiError::bad_request(
                "OrganisationalUnitId: not supported; an account is placed in its Account Type's OU",
            ));
        }
        if let Some(tags) = &raw.tags {
            validate_tags(tags).map_err(|e| ApiError::bad_request(format!("Tags: {e}")))?;
        }
        if let Some(ou) = &raw.leave_organisational_unit
            && !is_aws_ou_id(ou)
        {
            return Err(ApiError::bad_request(format!(
                "LeaveOrganisationalUnit: {ou:?} is not an AWS Organizations OU id (ou-…-…)"
            )));
        }
        Ok(OnboardAccountRequest {
            aws_account_id: raw.aws_account_id,
            account_type: account_type_ref(&raw.account_type)?,
            name: raw.name,
            tags: raw.tags,
            leave_organisational_unit: raw.leave_organisational_unit,
        })
    }
}

#[cfg(test)]
mod onboard_tests {
    use super::*;

    fn cause(body: &str) -> String {
        let e = OnboardAccountRequest::parse(Some(body)).unwrap_err();
        assert_eq!(e.status, 400);
        e.cause
    }

    #[test]
    fn the_aws_account_and_its_type_are_required() {
        let r = OnboardAccountRequest::parse(Some(
            r#"{"AwsAccountId": "111122223333", "AccountType": "default", "Name": "legacy"}"#,
        ))
        .unwrap();
        assert_eq!(
            (r.aws_account_id.as_str(), r.name.as_deref()),
            ("111122223333", Some("legacy"))
        );
        assert!(cause(r#"{"AccountType": "default"}"#).contains("missing field `AwsAccountId`"));
        assert!(
            cause(r#"{"AwsAccountId": "111122223333"}"#).contains("missing field `AccountType`")
        );
        assert!(
            cause(r#"{"AwsAccountId": "1111", "AccountType": "default"}"#)
                .starts_with("AwsAccountId:")
        );
        assert!(
            cause(r#"{"AwsAccountId": "111122223333", "AccountType": "default", "Name": ""}"#)
                .starts_with("Name:")
        );
        assert!(cause(r#"{"AwsAccountId": "111122223333", "AccountType": "default", "AwsAccountName": "x"}"#).starts_with("AwsAccountName:"));
        assert!(
            cause(r#"{"AwsAccountId": "111122223333", "AccountType": "default", "Extra": 1}"#)
                .contains("unknown field")
        );
    }

    #[test]
    fn the_ou_to_leave_must_be_an_aws_ou_id() {
        let body = |ou: &str| {
            format!(
                r#"{{"AwsAccountId": "111122223333", "AccountType": "default", "LeaveOrganisationalUnit": "{ou}"}}"#
            )
        };
        let r = OnboardAccountRequest::parse(Some(&body("ou-ab12-cd34ef56"))).unwrap();
        assert_eq!(
            r.leave_organisational_unit.as_deref(),
            Some("ou-ab12-cd34ef56")
        );
        for bad in [
            "r-ab12",
            "ou-ab12",
            "ou-AB12-cd34ef56",
            "ou-ab1-cd34ef56",
            "ou-ab12-cd34",
        ] {
            assert!(
                cause(&body(bad)).starts_with("LeaveOrganisationalUnit:"),
                "{bad}"
            );
        }
    }
}
