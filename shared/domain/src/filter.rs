//! Which accounts a listing selects: the Stax `GET /accounts` filters as one predicate.

use std::collections::BTreeSet;

use uuid::Uuid;

use crate::account::{Account, AccountStatus, name_key};

/// Every field is an "and"; the values inside a field are an "or". `None` = no constraint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountFilter {
    pub statuses: Option<BTreeSet<AccountStatus>>,
    pub ids: Option<BTreeSet<Uuid>>,
    /// Exact names, compared case-insensitively.
    pub names: Option<BTreeSet<String>>,
    /// Fuzzy name search: a case-insensitive substring of the name or the AWS account name.
    pub name_contains: Option<String>,
    pub aws_account_ids: Option<BTreeSet<String>>,
    pub account_types: Option<BTreeSet<Uuid>>,
}

fn admits<T: Ord>(set: &Option<BTreeSet<T>>, value: Option<&T>) -> bool {
    match set {
        None => true,
        Some(set) => value.is_some_and(|v| set.contains(v)),
    }
}

impl AccountFilter {
    pub fn matches(&self, a: &Account) -> bool {
        let fuzzy = |needle: &String| {
            let needle = name_key(needle);
            name_key(&a.name).contains(&needle)
                || a.aws_account_name
                    .as_deref()
                    .is_some_and(|n| name_key(n).contains(&needle))
        };
        admits(&self.statuses, Some(&a.status))
            && admits(&self.ids, Some(&a.id))
            && self
                .names
                .as_ref()
                .is_none_or(|names| names.iter().any(|n| name_key(n) == name_key(&a.name)))
            && self.name_contains.as_ref().is_none_or(fuzzy)
            && admits(&self.aws_account_ids, a.aws_account_id.as_ref())
            && admits(&self.account_types, a.account_type.as_ref())
    }

    /// Narrows the filter to one account id (the `/accounts/{account_id}` route).
    pub fn restrict_to(mut self, id: Uuid) -> Self {
        self.ids = Some(match self.ids {
            Some(ids) => ids.into_iter().filter(|i| *i == id).collect(),
            None => BTreeSet::from([id]),
        });
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(name: &str, status: AccountStatus, aws: Option<&str>) -> Account {
        crate::fixtures::account_in(status, name, aws)
    }

    #[test]
    fn fields_combine_with_and_values_with_or() {
        let bakery = account("Bakery", AccountStatus::Active, Some("111111111111"));
        let f = AccountFilter {
            statuses: Some([AccountStatus::Active, AccountStatus::Error].into()),
            name_contains: Some("AKE".into()),
            ..Default::default()
        };
        assert!(f.matches(&bakery));
        let f = AccountFilter {
            statuses: Some([AccountStatus::Closed].into()),
            ..f
        };
        assert!(!f.matches(&bakery));
    }

    #[test]
    fn names_match_exactly_but_case_insensitively() {
        let bakery = account("Bakery", AccountStatus::Active, None);
        let f = |n: &str| AccountFilter {
            names: Some([n.to_owned()].into()),
            ..Default::default()
        };
        assert!(f("bakery").matches(&bakery));
        assert!(!f("bake").matches(&bakery));
    }

    #[test]
    fn an_aws_id_filter_excludes_accounts_without_an_aws_account() {
        let pending = account("new", AccountStatus::Initializing, None);
        let f = AccountFilter {
            aws_account_ids: Some(["111111111111".into()].into()),
            ..Default::default()
        };
        assert!(!f.matches(&pending));
    }

    #[test]
    fn restricting_to_an_id_intersects_an_id_filter() {
        let a = account("a", AccountStatus::Active, None);
        let other = Uuid::new_v4();
        let f = AccountFilter {
            ids: Some([other].into()),
            ..Default::default()
        }
        .restrict_to(a.id);
        assert!(!f.matches(&a));
        assert!(AccountFilter::default().restrict_to(a.id).matches(&a));
    }

    #[test]
    fn an_empty_status_set_matches_nothing() {
        let f = AccountFilter {
            statuses: Some(BTreeSet::new()),
            ..Default::default()
        };
        assert!(!f.matches(&account("a", AccountStatus::Active, None)));
    }
}
