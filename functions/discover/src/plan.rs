//! What discovery does, decided without I/O: the organization's members against the records.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use domain::{
    Account, AccountChange, AccountFacts, AccountRole, AccountStatus, AssuranceState,
    EmailTemplate, NewAccount, Origin, Transition, Trigger, name_key,
};
use uuid::Uuid;

/// An organization member as AWS Organizations lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub name: String,
    pub email: String,
    pub state: MemberState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    Active,
    Suspended,
    PendingClosure,
    /// PENDING_ACTIVATION and states AWS may add.
    Other,
}

impl MemberState {
    pub fn from_aws(state: &str) -> Self {
        match state {
            "ACTIVE" => MemberState::Active,
            "SUSPENDED" => MemberState::Suspended,
            "PENDING_CLOSURE" => MemberState::PendingClosure,
            _ => MemberState::Other,
        }
    }

    fn closing(self) -> Option<&'static str> {
        match self {
            MemberState::Suspended => Some("SUSPENDED"),
            MemberState::PendingClosure => Some("PENDING_CLOSURE"),
            _ => None,
        }
    }
}

/// Everything a discovery run has to do.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Members the service does not know: check the provisioning role, then record.
    pub new: Vec<Member>,
    /// Records in ERROR for their role (never assured): check the role again.
    pub recheck: Vec<(Account, Member)>,
    /// Closed records whose AWS account is an active member again: check the role, then reopen.
    pub rejoined: Vec<(Account, Member)>,
    /// Records AWS reports SUSPENDED or PENDING_CLOSURE: CLOSED, with the AWS state.
    pub closed: Vec<(Account, &'static str)>,
    /// Records whose AWS account is no longer a member: CLOSED, kept.
    pub left: Vec<Account>,
    /// Records whose AWS account name changed in AWS.
    pub renamed: Vec<(Account, String)>,
    /// Members the create workflow is making right now (it records them itself).
    pub in_flight: usize,
    /// Members AWS created for a record whose workflow no longer waits for them (it gave up,
    /// or ended without recording the account): linked to that record, which their root email
    /// names.
    pub linked: Vec<(Account, Member)>,
    /// Records an organization run leaves alone: held by a running operation, or created or
    /// changed after the listing began (the listing may predate what they record).
    pub busy: usize,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.new.is_empty()
            && self.recheck.is_empty()
            && self.rejoined.is_empty()
            && self.closed.is_empty()
            && self.left.is_empty()
            && self.renamed.is_empty()
            && self.linked.is_empty()
    }
}

/// `members` are what AWS listed from `listing_began` on — the whole organization, or for a
/// single re-check the one account looked up (none when it is no member) — and `known` the
/// records read after, concerning them: a record whose AWS account is not among the members has
/// left.
///
/// A plan changes no record that an operation holds (its workflow records what it does itself)
/// and none created or changed after the listing began: the organization was listed page by
/// page before the records were read, so an AWS id recorded meanwhile may belong to an account
/// created after its page was fetched — absent from the listing, yet a member. The next run
/// sees such records as they are then.
pub fn plan(
    members: &[Member],
    known: &[Account],
    listing_began: DateTime<Utc>,
    email: Option<&EmailTemplate>,
) -> Plan {
    let hands_off = |a: &Account| a.user_task_id.is_some() || a.modified_ts >= listing_began;
    let by_aws_id: HashMap<&str, &Account> = known
        .iter()
        .filter_map(|a| a.aws_account_id.as_deref().map(|id| (id, a)))
        .collect();
    let by_id: HashMap<_, _> = known.iter().map(|a| (a.id, a)).collect();
    let mut p = Plan::default();
    for m in members {
        let Some(account) = by_aws_id.get(m.id.as_str()).copied() else {
            let ours = email
                .and_then(|t| t.account_of(&m.email))
                .and_then(|id| by_id.get(&id).copied());
            match ours {
                // The create workflow holds it: it records the account itself.
                Some(record) if hands_off(record) => p.in_flight += 1,
                // Its workflow is gone: nobody else will record the account.
                Some(record)
                    if record.aws_account_id.is_none()
                        && matches!(
                            record.status,
                            AccountStatus::Error | AccountStatus::Initializing
                        ) =>
                {
                    p.linked.push((record.clone(), m.clone()))
                }
                Some(_) => p.busy += 1,
                None if m.state == MemberState::Active => p.new.push(m.clone()),
                None => {}
            }
            continue;
        };
        if hands_off(account) {
            p.busy += 1;
            continue;
        }
        if let Some(aws_state) = m.state.closing() {
            if account.status != AccountStatus::Closed {
                p.closed.push((account.clone(), aws_state));
            }
            continue;
        }
        if m.state == MemberState::Active {
            match account.status {
                AccountStatus::Closed => p.rejoined.push((account.clone(), m.clone())),
                AccountStatus::Error
                    if account.origin == Origin::External
                        && account.assurance_state == AssuranceState::None =>
                {
                    p.recheck.push((account.clone(), m.clone()))
                }
                _ => {}
            }
        }
        if account.aws_account_name.as_deref() != Some(m.name.as_str()) {
            p.renamed.push((account.clone(), m.name.clone()));
        }
    }
    let present: HashSet<&str> = members.iter().map(|m| m.id.as_str()).collect();
    let absent = known.iter().filter(|a| {
        a.status != AccountStatus::Closed
            && a.aws_account_id
                .as_deref()
                .is_some_and(|id| !present.contains(id))
    });
    for a in absent {
        if hands_off(a) {
            p.busy += 1;
        } else {
            p.left.push(a.clone());
        }
    }
    p
}

/// A record name for a new member: its AWS name, or — when another account has that name — the
/// AWS name with the account id, which is unique. `taken` grows with each name handed out.
pub fn record_name(member: &Member, taken: &mut HashSet<String>) -> String {
    let mut name: String = member
        .name
        .chars()
        .filter(|c| (' '..='~').contains(c) && *c != '<' && *c != '>')
        .collect();
    if name.trim().is_empty() {
        name = member.id.clone();
    }
    name.truncate(50);
    if !taken.insert(name_key(&name)) {
        let suffix = format!("-{}", member.id);
        let mut base = name;
        base.truncate(50 - suffix.len());
        name = base + &suffix;
        taken.insert(name_key(&name));
    }
    name
}

/// Whether each AWS account's provisioning role could be assumed, and why not.
pub type RoleChecks = HashMap<String, Result<(), String>>;

/// What a change counts as in the run's summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    RoleFixed,
    Rejoined,
    Closed,
    Left,
    Renamed,
    Linked,
}

/// The AWS accounts whose provisioning role the plan needs checked: new members, and records
/// that may leave ERROR or CLOSED once their role works.
pub fn role_checks_needed(p: &Plan) -> Vec<String> {
    p.new
        .iter()
        .map(|m| m.id.clone())
        .chain(
            p.recheck
                .iter()
                .chain(&p.rejoined)
                .map(|(_, m)| m.id.clone()),
        )
        .collect()
}

/// The records of the plan's new members: DISCOVERED when their role could be assumed, ERROR
/// saying why not; each named by [`record_name`] against the names `taken` (which grows).
pub fn new_records(
    p: &Plan,
    roles: &RoleChecks,
    taken: &mut HashSet<String>,
    organisation: Uuid,
    now: DateTime<Utc>,
) -> Vec<Account> {
    p.new
        .iter()
        .filter_map(|m| {
            let first = match roles.get(&m.id) {
                Some(Ok(())) => {
                    Transition::to(Trigger::RecordDiscovered, AccountStatus::Discovered)
                }
                Some(Err(reason)) => Transition::error(Trigger::RecordDiscovered, reason.clone()),
                None => Transition::error(
                    Trigger::RecordDiscovered,
                    "the provisioning role was not checked",
                ),
            };
            let new = NewAccount {
                organisation_id: organisation,
                name: record_name(m, taken),
                aws_account_id: Some(m.id.clone()),
                aws_account_name: Some(m.name.clone()),
                aws_account_alias: None,
                email: Some(m.email.clone()),
                account_type: None,
                account_role: AccountRole::Member,
                origin: Origin::External,
                tags: None,
                orgs_ou_id: None,
                task: None,
            };
            Account::create(Uuid::new_v4(), new, &first, now).ok()
        })
        .collect()
}

/// The name a new record gets when its first name was taken meanwhile: the AWS name with the
/// AWS account id, which is unique.
pub fn renamed_record(account: &Account) -> Account {
    let member = Member {
        id: account.aws_account_id.clone().unwrap_or_default(),
        name: account.name.clone(),
        email: String::new(),
        state: MemberState::Active,
    };
    let mut renamed = account.clone();
    renamed.name = record_name(&member, &mut HashSet::from([name_key(&account.name)]));
    renamed
}

/// The change each known record takes, and what it counts as: a role that works again
/// (ERROR → DISCOVERED), a rejoined account (CLOSED → DISCOVERED), AWS's closure or the
/// account's departure (→ CLOSED with the reason), a rename in AWS.
pub fn changes<'p>(p: &'p Plan, roles: &RoleChecks) -> Vec<(&'p Account, AccountChange, Counted)> {
    let works = |m: &Member| roles.get(&m.id).is_some_and(Result::is_ok);
    let mut changes = Vec::new();
    for (account, _) in p.recheck.iter().filter(|(_, m)| works(m)) {
        let t = Transition::to(Trigger::RecheckRole, AccountStatus::Discovered);
        changes.push((account, AccountChange::transition(t), Counted::RoleFixed));
    }
    for (account, _) in p.rejoined.iter().filter(|(_, m)| works(m)) {
        let t = Transition::to(Trigger::Rejoined, AccountStatus::Discovered);
        changes.push((account, AccountChange::transition(t), Counted::Rejoined));
    }
    for (account, state) in &p.closed {
        let t = Transition::because(
            Trigger::ClosedInAws,
            AccountStatus::Closed,
            format!("AWS reports the account {state}"),
        );
        changes.push((account, AccountChange::transition(t), Counted::Closed));
    }
    for account in &p.left {
        let reason = format!(
            "AWS account {} is no longer a member of the organization",
            account.aws_account_id.as_deref().unwrap_or_default()
        );
        let t = Transition::because(Trigger::LeftOrganization, AccountStatus::Closed, reason);
        changes.push((account, AccountChange::transition(t), Counted::Left));
    }
    for (account, m) in &p.linked {
        let reason = format!(
            "AWS created account {} ({}) for this record after its create workflow stopped waiting \
             for it; onboard it to finish its placement and baseline",
            m.id, m.name
        );
        let t = Transition::because(Trigger::LinkCreatedAccount, AccountStatus::Error, reason);
        let facts = AccountFacts {
            aws_account_id: Some(m.id.clone()),
            aws_account_name: Some(m.name.clone()),
            email: Some(m.email.clone()),
            ..Default::default()
        };
        changes.push((
            account,
            AccountChange::transition(t).with_facts(facts),
            Counted::Linked,
        ));
    }
    for (account, name) in &p.renamed {
        let facts = AccountFacts {
            aws_account_name: Some(name.clone()),
            ..Default::default()
        };
        changes.push((account, AccountChange::facts(facts), Counted::Renamed));
    }
    changes
}

/// The change that records the OU an account was moved to outside the service, if it needs
/// one: not while an operation holds the account (the service's own workflows move only
/// accounts they hold locked, and record the OU themselves), not when already recorded.
pub fn moved(account: &Account, parent: &str) -> Option<AccountChange> {
    if account.user_task_id.is_some() || account.orgs_ou_id.as_deref() == Some(parent) {
        return None;
    }
    Some(AccountChange::facts(AccountFacts {
        orgs_ou_id: Some(parent.to_owned()),
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::fixtures;

    fn member(id: &str, name: &str, state: MemberState) -> Member {
        Member {
            id: id.into(),
            name: name.into(),
            email: format!("{name}@example.com"),
            state,
        }
    }

    fn known(name: &str, aws: &str, status: AccountStatus) -> Account {
        fixtures::account_in(status, name, Some(aws))
    }

    /// When a listing began that started after every record was written.
    fn listed_after_the_records() -> DateTime<Utc> {
        domain::timestamp::now() + chrono::Duration::seconds(1)
    }

    #[test]
    fn an_organization_run_leaves_busy_and_newer_records_alone() {
        let listing_began = listed_after_the_records();
        let mut creating = known("creating", "111111111111", AccountStatus::Initializing);
        creating.user_task_id = Some(Uuid::new_v4());
        let mut recorded_meanwhile = known("meanwhile", "222222222222", AccountStatus::Active);
        recorded_meanwhile.modified_ts = listing_began + chrono::Duration::milliseconds(5);
        let mut renamed_while_held = known("held", "333333333333", AccountStatus::Active);
        renamed_while_held.user_task_id = Some(Uuid::new_v4());
        let members = vec![member(
            "333333333333",
            "held-renamed",
            MemberState::Suspended,
        )];
        let records = [creating, recorded_meanwhile, renamed_while_held];
        let p = plan(&members, &records, listing_began, None);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(p.busy, 3);
        let later = plan(
            &members,
            &records[1..2],
            listing_began + chrono::Duration::seconds(1),
            None,
        );
        assert_eq!(
            later.left.len(),
            1,
            "the next run, listed after the change, sees it"
        );
    }

    #[test]
    fn an_unchanged_organization_needs_nothing() {
        let members = vec![member("111111111111", "alpha", MemberState::Active)];
        let records = vec![known("alpha", "111111111111", AccountStatus::Discovered)];
        assert!(plan(&members, &records, listed_after_the_records(), None).is_empty());
    }

    #[test]
    fn new_members_are_found_and_inactive_ones_ignored() {
        let members = vec![
            member("111111111111", "alpha", MemberState::Active),
            member("222222222222", "gone", MemberState::Suspended),
        ];
        let p = plan(&members, &[], listed_after_the_records(), None);
        assert_eq!(
            p.new.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
            ["111111111111"]
        );
    }

    #[test]
    fn closed_suspended_and_departed_accounts_are_reflected() {
        let members = vec![
            member("111111111111", "alpha", MemberState::PendingClosure),
            member("333333333333", "gamma", MemberState::Active),
        ];
        let records = vec![
            known("alpha", "111111111111", AccountStatus::Active),
            known("beta", "222222222222", AccountStatus::Discovered),
            known("gamma", "333333333333", AccountStatus::Closed),
            known("delta", "444444444444", AccountStatus::Closed),
        ];
        let p = plan(&members, &records, listed_after_the_records(), None);
        assert_eq!(
            p.closed
                .iter()
                .map(|(a, s)| (a.name.as_str(), *s))
                .collect::<Vec<_>>(),
            [("alpha", "PENDING_CLOSURE")]
        );
        assert_eq!(
            p.left.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
            ["beta"],
            "delta is closed already"
        );
        assert_eq!(p.rejoined.len(), 1);
    }

    #[test]
    fn role_errors_are_rechecked_but_failed_onboardings_are_not() {
        let members = vec![
            member("111111111111", "alpha", MemberState::Active),
            member("222222222222", "beta", MemberState::Active),
        ];
        let mut onboarded = known("beta", "222222222222", AccountStatus::Error);
        onboarded.assurance_state = AssuranceState::Error;
        let records = vec![
            known("alpha", "111111111111", AccountStatus::Error),
            onboarded,
        ];
        let p = plan(&members, &records, listed_after_the_records(), None);
        assert_eq!(
            p.recheck
                .iter()
                .map(|(a, _)| a.name.as_str())
                .collect::<Vec<_>>(),
            ["alpha"]
        );
    }

    #[test]
    fn names_changed_in_aws_are_followed() {
        let members = vec![member("111111111111", "alpha-renamed", MemberState::Active)];
        let records = vec![known("alpha", "111111111111", AccountStatus::Active)];
        let p = plan(&members, &records, listed_after_the_records(), None);
        assert_eq!(p.renamed[0].1, "alpha-renamed");
    }

    #[test]
    fn accounts_the_create_workflow_is_making_are_left_to_it() {
        let template = EmailTemplate::parse("aws+{AccountId}@example.com").unwrap();
        let mut creating = known("new", "999999999999", AccountStatus::Initializing);
        creating.aws_account_id = None;
        creating.user_task_id = Some(Uuid::new_v4());
        let mut m = member("555555555555", "new", MemberState::Active);
        m.email = template.email(creating.id);
        let p = plan(
            &[m.clone()],
            &[creating],
            listed_after_the_records(),
            Some(&template),
        );
        assert_eq!((p.new.len(), p.in_flight), (0, 1));
        assert!(p.linked.is_empty());
        m.email = template.email(Uuid::new_v4());
        assert_eq!(
            plan(&[m], &[], listed_after_the_records(), Some(&template))
                .new
                .len(),
            1,
            "someone else's account"
        );
    }

    #[test]
    fn an_account_aws_finished_after_its_workflow_stopped_waiting_is_linked_to_its_record() {
        let template = EmailTemplate::parse("aws+{AccountId}@example.com").unwrap();
        let mut gave_up = known("late", "999999999999", AccountStatus::Error);
        gave_up.aws_account_id = None;
        gave_up.status_reason = Some("the request was still IN_PROGRESS 2 hours after".into());
        let mut m = member("555555555555", "late", MemberState::Active);
        m.email = template.email(gave_up.id);
        let p = plan(
            &[m.clone()],
            &[gave_up.clone()],
            listed_after_the_records(),
            Some(&template),
        );
        assert_eq!((p.new.len(), p.in_flight, p.linked.len()), (0, 0, 1));
        let changes = changes(&p, &RoleChecks::default());
        let (account, change, counted) = &changes[0];
        assert_eq!((account.id, *counted), (gave_up.id, Counted::Linked));
        let linked = gave_up.apply(change, Utc::now()).unwrap().unwrap();
        assert_eq!(
            (
                linked.aws_account_id.as_deref(),
                linked.email.as_deref(),
                linked.status
            ),
            (
                Some("555555555555"),
                Some(m.email.as_str()),
                AccountStatus::Error
            )
        );
        assert!(linked.status_reason.unwrap().contains("onboard it"));
        // A record that learned its AWS account already is not linked again.
        let mut recorded = gave_up.clone();
        recorded.aws_account_id = Some("444444444444".into());
        let p = plan(
            &[m],
            &[recorded],
            listed_after_the_records(),
            Some(&template),
        );
        assert!(p.linked.is_empty());
    }

    #[test]
    fn duplicate_aws_names_get_the_account_id() {
        let mut taken = HashSet::from(["dev".to_owned()]);
        assert_eq!(
            record_name(
                &member("111111111111", "Dev", MemberState::Active),
                &mut taken
            ),
            "Dev-111111111111"
        );
        assert_eq!(
            record_name(
                &member("222222222222", "prod", MemberState::Active),
                &mut taken
            ),
            "prod"
        );
        assert_eq!(
            record_name(
                &member("333333333333", "PROD", MemberState::Active),
                &mut taken
            ),
            "PROD-333333333333"
        );
        let long = "x".repeat(60);
        let named = record_name(
            &member("444444444444", &long, MemberState::Active),
            &mut taken,
        );
        assert!(named.len() <= 50 && domain::validate_account_name(&named).is_ok());
    }

    fn roles(ok: &[&str], refused: &[(&str, &str)]) -> RoleChecks {
        ok.iter()
            .map(|id| ((*id).to_owned(), Ok(())))
            .chain(
                refused
                    .iter()
                    .map(|(id, why)| ((*id).to_owned(), Err((*why).to_owned()))),
            )
            .collect()
    }

    #[test]
    fn new_members_are_recorded_discovered_or_in_error_saying_why() {
        let members = vec![
            member("111111111111", "alpha", MemberState::Active),
            member("222222222222", "beta", MemberState::Active),
        ];
        let p = plan(&members, &[], listed_after_the_records(), None);
        assert_eq!(role_checks_needed(&p), ["111111111111", "222222222222"]);
        let checks = roles(&["111111111111"], &[("222222222222", "AccessDenied: no")]);
        let organisation = Uuid::new_v4();
        let records = new_records(&p, &checks, &mut HashSet::new(), organisation, Utc::now());
        let summary: Vec<_> = records
            .iter()
            .map(|a| {
                (
                    a.name.as_str(),
                    a.status,
                    a.status_reason.as_deref(),
                    a.origin,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("alpha", AccountStatus::Discovered, None, Origin::External),
                (
                    "beta",
                    AccountStatus::Error,
                    Some("AccessDenied: no"),
                    Origin::External
                ),
            ]
        );
        assert!(records.iter().all(|a| a.organisation_id == organisation));
        assert_eq!(renamed_record(&records[0]).name, "alpha-111111111111");
    }

    #[test]
    fn known_records_change_as_aws_reports_and_as_their_roles_allow() {
        let members = vec![
            member("111111111111", "alpha", MemberState::Active),
            member("222222222222", "beta", MemberState::Active),
            member("333333333333", "gamma", MemberState::Suspended),
            member("555555555555", "epsilon-renamed", MemberState::Active),
            member("666666666666", "zeta", MemberState::Active),
        ];
        let records = vec![
            known("alpha", "111111111111", AccountStatus::Error),
            known("beta", "222222222222", AccountStatus::Closed),
            known("gamma", "333333333333", AccountStatus::Active),
            known("delta", "444444444444", AccountStatus::Discovered),
            known("epsilon", "555555555555", AccountStatus::Discovered),
            known("zeta", "666666666666", AccountStatus::Error),
        ];
        let p = plan(&members, &records, listed_after_the_records(), None);
        let checks = roles(
            &["111111111111", "222222222222"],
            &[("666666666666", "AccessDenied")],
        );
        let got: Vec<_> = changes(&p, &checks)
            .into_iter()
            .map(|(a, c, counted)| {
                (
                    a.name.as_str(),
                    c.transition.map(|t| (t.to, t.reason)),
                    counted,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "alpha",
                    Some((AccountStatus::Discovered, None)),
                    Counted::RoleFixed
                ),
                (
                    "beta",
                    Some((AccountStatus::Discovered, None)),
                    Counted::Rejoined
                ),
                (
                    "gamma",
                    Some((
                        AccountStatus::Closed,
                        Some("AWS reports the account SUSPENDED".into())
                    )),
                    Counted::Closed
                ),
                (
                    "delta",
                    Some((
                        AccountStatus::Closed,
                        Some(
                            "AWS account 444444444444 is no longer a member of the organization"
                                .into()
                        )
                    )),
                    Counted::Left
                ),
                ("epsilon", None, Counted::Renamed),
            ],
            "zeta's role still fails: it stays in ERROR"
        );
    }

    #[test]
    fn a_move_outside_the_service_is_recorded_unless_the_account_is_busy() {
        let mut a = known("alpha", "111111111111", AccountStatus::Active);
        let change = moved(&a, "ou-new").expect("a change");
        assert_eq!(change.facts.orgs_ou_id.as_deref(), Some("ou-new"));
        a.orgs_ou_id = Some("ou-new".into());
        assert_eq!(moved(&a, "ou-new"), None, "recorded already");
        a.user_task_id = Some(Uuid::new_v4());
        assert_eq!(moved(&a, "ou-other"), None, "its workflow records the OU");
    }
}
