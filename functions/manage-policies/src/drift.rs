//! The drift run: Organizations made to match the policy records. Scheduled with discovery and
//! run on demand (`POST /20190206/policies/drift`), it reads every SCP tagged with a policy id,
//! compares each record with its SCP ([`domain::policies::drift`]) and repairs what differs — a
//! policy edited, detached or attached elsewhere outside the service, a creation or deletion
//! cut short — then records a task whose Logs say what it found and did, and, when it found
//! anything, puts a `Policy Drift Detected` event on the service's bus.
//!
//! The SCPs are read before the records: every SCP the service makes for a policy is made after
//! its record, so an SCP whose policy id no record has is one whose creation was undone (AWS's
//! answer lost, the record removed), and is deleted. A record changed while the run worked on
//! it is left to the API's own change, and to the next run.

use std::collections::HashSet;
use std::future::Future;

use domain::policies::{ObservedScp, Policy, PolicyStatus, Repair, drift};
use domain::{Operation, Task, TaskStatus};
use serde_json::{Value, json};
use store::{Policies, StoreError};

use crate::{PolicyManager, PolicyOrgs, Records};

pub const DRIFT_DETECTED: &str = "Policy Drift Detected";

/// Where the drift run reports what it found.
pub trait DriftEvents: Send + Sync {
    fn publish(
        &self,
        detail_type: &str,
        detail: Value,
    ) -> impl Future<Output = Result<(), String>> + Send;
}

/// The service's EventBridge bus.
pub struct Bus {
    pub client: aws_sdk_eventbridge::Client,
    pub bus: String,
}

impl DriftEvents for Bus {
    async fn publish(&self, detail_type: &str, detail: Value) -> Result<(), String> {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source("accounts")
            .detail_type(detail_type)
            .detail(detail.to_string())
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| aws::error_message(&e))?;
        if out.failed_entry_count() > 0 {
            return Err(format!(
                "the bus refused the event: {:?}",
                out.entries().first().and_then(|e| e.error_message())
            ));
        }
        Ok(())
    }
}

/// What one run found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriftReport {
    /// Live policies compared with their SCPs.
    pub checked: usize,
    pub repaired: Vec<String>,
    pub failed: Vec<String>,
    /// Policies changed during the run: left to their change, and to the next run.
    pub deferred: Vec<String>,
}

/// One drift run, recorded as a finished task (`FAILED` when a repair failed or Organizations
/// could not be read).
pub async fn run<S: Records, O: PolicyOrgs, E: DriftEvents>(
    m: &PolicyManager<S, O, E>,
    requested_by: &str,
) -> Result<Task, StoreError> {
    let mut task = Task::new(Operation::CheckPolicyDrift, Vec::new(), chrono::Utc::now());
    task.logs.push(requested_by.to_owned());
    let report = match m.organizations.observe().await {
        Ok(observed) => {
            let records = m.store.list_policies().await?;
            let mut report = DriftReport::default();
            for record in &records {
                let scp = observed.get(&record.value.id);
                let repairs = drift(&record.value, scp);
                if !repairs.is_empty() {
                    repair(m, &record.value, repairs, scp, &mut report).await?;
                }
            }
            let recorded: HashSet<_> = records.iter().map(|r| r.value.id).collect();
            for (id, scp) in observed.iter().filter(|(id, _)| !recorded.contains(id)) {
                // The listing is an index that lags a just-written record by a moment: read
                // the record itself before taking its SCP for a leftover.
                if m.store.get_policy(*id).await?.is_some() {
                    report.deferred.push(format!(
                        "SCP {} ({}): its policy was recorded during the run, left to the next",
                        scp.aws_id, scp.name
                    ));
                    continue;
                }
                let mut removed = Ok(());
                for target in &scp.targets {
                    removed = removed.and(m.organizations.detach(&scp.aws_id, target).await);
                }
                let removed = removed.and(m.organizations.delete_scp(&scp.aws_id).await);
                let what = format!(
                    "SCP {} ({}) is tagged as policy {id}, which no record has (a creation \
                     that was undone)",
                    scp.aws_id, scp.name
                );
                match removed {
                    Ok(()) => report.repaired.push(format!("{what}: deleted it")),
                    Err(e) => report.failed.push(format!("{what}: not deleted: {e}")),
                }
            }
            report.checked = records
                .iter()
                .filter(|r| r.value.status != PolicyStatus::Deleted)
                .count();
            report
        }
        Err(e) => DriftReport {
            failed: vec![format!("the organization's SCPs could not be read: {e}")],
            ..DriftReport::default()
        },
    };
    task.logs.extend(report.repaired.iter().cloned());
    task.logs.extend(report.failed.iter().cloned());
    task.logs.extend(report.deferred.iter().cloned());
    // Last, as the run's summary (the on-demand route's Message).
    task.logs.push(format!(
        "{} policies checked: {} repaired, {} not repaired",
        report.checked,
        report.repaired.len(),
        report.failed.len()
    ));
    if !(report.repaired.is_empty() && report.failed.is_empty()) {
        let detail = json!({
            "TaskId": task.id,
            "Repaired": report.repaired,
            "NotRepaired": report.failed,
        });
        if let Err(e) = m.events.publish(DRIFT_DETECTED, detail).await {
            task.logs
                .push(format!("The drift event was not published: {e}"));
        }
    }
    task.status = if report.failed.is_empty() {
        TaskStatus::Succeeded
    } else {
        TaskStatus::Failed
    };
    task.modified_ts = domain::timestamp::now();
    m.store.create_task(&task).await?;
    tracing::info!(task = %task.id, repaired = report.repaired.len(), failed = report.failed.len(), "policy drift run");
    Ok(task)
}

/// After a change's Organizations call: if the record moved past the version the change wrote
/// (another change's call may have reached AWS first), AWS is made to match the record as it
/// is now, so the last change recorded is the one in force. Returns what was done, for the
/// change's Logs.
pub async fn settle<S: Policies, O: PolicyOrgs, E>(
    m: &PolicyManager<S, O, E>,
    id: uuid::Uuid,
    written: u64,
) -> Vec<String> {
    let Ok(Some(now)) = m.store.get_policy(id).await else {
        return Vec::new();
    };
    if now.version <= written || now.value.owner == domain::policies::PolicyOwner::Stax {
        return Vec::new();
    }
    let Some(aws_id) = now.value.aws_id.clone() else {
        return Vec::new();
    };
    let mut report = DriftReport::default();
    match m.organizations.observe_one(&aws_id).await {
        Ok(scp) => {
            let repairs = drift(&now.value, Some(&scp));
            if !repairs.is_empty()
                && let Err(e) = repair(m, &now.value, repairs, Some(&scp), &mut report).await
            {
                report
                    .failed
                    .push(format!("the record could not be read again: {e}"));
            }
        }
        Err(e) => report.failed.push(format!(
            "a later change of policy {} could not be checked in AWS: {e}",
            now.value.name
        )),
    }
    report
        .repaired
        .into_iter()
        .chain(report.failed)
        .chain(report.deferred)
        .collect()
}

/// Applies `repairs` to `policy`'s SCP (`observed`, when there is one), unless the record
/// changed since it was listed.
async fn repair<S: Policies, O: PolicyOrgs, E>(
    m: &PolicyManager<S, O, E>,
    listed: &Policy,
    repairs: Vec<Repair>,
    observed: Option<&ObservedScp>,
    report: &mut DriftReport,
) -> Result<(), StoreError> {
    let Some(current) = m.store.get_policy(listed.id).await? else {
        return Ok(());
    };
    if current.value != *listed {
        report.deferred.push(format!(
            "policy {}: changed during the run, left to its change",
            listed.name
        ));
        return Ok(());
    }
    let policy = &current.value;
    let mut learned: Option<(String, Option<uuid::Uuid>)> = None;
    for r in repairs {
        let done = match &r {
            Repair::Create => match m.organizations.create_scp(policy).await {
                Ok(created) => {
                    let mut attached = Ok(());
                    for target in policy.desired_targets() {
                        attached =
                            attached.and(m.organizations.attach(&created.aws_id, &target).await);
                    }
                    learned = Some((
                        created.aws_id.clone(),
                        domain::policies::organization_of_policy_arn(&created.arn)
                            .map(domain::organisation_id),
                    ));
                    attached
                }
                Err(e) => Err(e),
            },
            Repair::Adopt { aws_id } => {
                learned = Some((
                    aws_id.clone(),
                    observed
                        .and_then(|scp| domain::policies::organization_of_policy_arn(&scp.arn))
                        .map(domain::organisation_id),
                ));
                Ok(())
            }
            Repair::Restore { aws_id, .. } => m.organizations.update_scp(aws_id, policy).await,
            Repair::Attach { aws_id, target } => m.organizations.attach(aws_id, target).await,
            Repair::Detach { aws_id, target } => m.organizations.detach(aws_id, target).await,
            Repair::Delete { aws_id } => m.organizations.delete_scp(aws_id).await,
        };
        match done {
            Ok(()) => report.repaired.push(r.describe(policy)),
            Err(e) => report
                .failed
                .push(format!("{}: not repaired: {e}", r.describe(policy))),
        }
    }
    if let Some((aws_id, organisation_id)) = learned {
        let next = Policy {
            status: PolicyStatus::Active,
            aws_id: Some(aws_id),
            organisation_id: organisation_id.or(policy.organisation_id),
            modified_ts: domain::timestamp::now(),
            ..policy.clone()
        };
        match m.store.replace_policy(&current, &next).await {
            Ok(_) => {}
            Err(StoreError::StalePolicy(_)) => report.deferred.push(format!(
                "policy {}: changed during the run, its SCP id is learned next run",
                policy.name
            )),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
