use std::collections::BTreeSet;

use super::gate::{self, Gate};
use super::service::{env_var, frozen_count, is_stable, previous_of, registered_by};
use super::{Env, made_by};
use crate::error::{AwsError, StepError};
use crate::names::{self, Namespace, Timestamp};
use crate::policy::{DatabaseFacts, PolicyContext, PolicyStep};
use crate::ports::{DbInstance, DeleteDbRequest, tag};
use crate::records::{NamespaceSettings, TrackedDb, TrackedRole};
use crate::state::{DeployState, ExecutionInfo, Poll, RollbackReport, SweepReport};

/// Statuses in which RDS refuses a delete for now: the sweep waits for them to settle.
const BUSY: &[&str] = &[
    "creating",
    "backing-up",
    "modifying",
    "rebooting",
    "upgrading",
    "configuring-enhanced-monitoring",
    "configuring-log-exports",
    "starting",
    "stopping",
];

/// The databases the namespace's service runs on, in any of its deployments: a database a task
/// may still be connected to is never deleted, whatever the records say.
pub(super) async fn in_use(
    env: Env<'_>,
    settings: &NamespaceSettings,
) -> Result<BTreeSet<String>, StepError> {
    let service = match env
        .aws
        .describe_service(&settings.cluster, &settings.service)
        .await
    {
        // A deleted service (INACTIVE) runs nothing.
        Ok(service) if service.status == "INACTIVE" => return Ok(BTreeSet::new()),
        Ok(service) => service,
        Err(AwsError::NotFound { .. }) => return Ok(BTreeSet::new()),
        Err(err) => return Err(err.into()),
    };
    let mut used = BTreeSet::new();
    let arns: BTreeSet<&str> = service
        .deployments
        .iter()
        .map(|d| d.task_definition_arn.as_str())
        .chain([service.task_definition_arn.as_str()])
        .filter(|arn| !arn.is_empty())
        .collect();
    for arn in arns {
        let definition = env.aws.describe_task_definition(arn).await?;
        used.extend(definition.tags.get(tag::DB_INSTANCE).cloned());
        used.extend(
            definition
                .containers
                .iter()
                .filter_map(|c| c.environment.get(env_var::DB_INSTANCE_ID).cloned()),
        );
    }
    Ok(used)
}

/// Which deletes of a sweep the policies (the `cleanup` step) are asked about, and what a
/// refusal does. Either way a refused database is not deleted, stays tracked (so it is never
/// orphaned: the next clean-up asks again), and is reported in `kept` with the reason.
#[derive(Debug, Clone)]
pub enum SweepPolicy {
    /// Clean-up: every delete is asked about. A deny keeps the database and the sweep goes on
    /// (a policy that protects a database is a normal answer, not a failed deploy); a plugin
    /// that cannot decide keeps it too, and fails the step once the sweep has been through
    /// the others, so the clean-up is reported deferred with the plugin's failure.
    Cleanup(PolicyContext),
    /// Rollback: deletes only the database this run created (`candidate`, tracked by this run
    /// since it started), and without asking: undoing must never be blocked. Whatever an
    /// earlier run left tracked is left for a clean-up or the sweep; a rollback neither
    /// deletes it nor waits on it.
    Rollback {
        facts: PolicyContext,
        execution: ExecutionInfo,
        candidate: Option<String>,
        /// The service ran on the candidate (the rollout began): writes may have reached it,
        /// so it goes with a final snapshot rather than without a trace.
        served: bool,
    },
}

impl SweepPolicy {
    fn facts(&self) -> &PolicyContext {
        match self {
            SweepPolicy::Cleanup(facts) | SweepPolicy::Rollback { facts, .. } => facts,
        }
    }

    /// Whether this sweep may delete `tracked` at all.
    fn covers(&self, tracked: &TrackedDb) -> bool {
        match self {
            SweepPolicy::Cleanup(_) => true,
            SweepPolicy::Rollback {
                execution,
                candidate,
                ..
            } => {
                tracked.role == TrackedRole::Candidate
                    && candidate.as_deref() == Some(tracked.db_instance_id.as_str())
                    && execution.could_have_written(&tracked.execution_id, tracked.since)
            }
        }
    }

    fn asks_about(&self, _tracked: &TrackedDb) -> bool {
        matches!(self, SweepPolicy::Cleanup(_))
    }
}

/// Deletes every database tracked in the namespace that is neither active nor in use by the
/// service, and untracks each once RDS says it is gone. Safe to run any number of times; re-run
/// by the machine until `done`. A database whose tags say it belongs to another namespace is
/// never deleted. One database's permanent error is reported and does not stop the others.
/// Before each delete, the policies are asked as `policy` says.
pub async fn sweep(
    env: Env<'_>,
    ns: &Namespace,
    settings: &NamespaceSettings,
    poll: &Poll,
    policy: &SweepPolicy,
) -> Result<SweepReport, StepError> {
    let records = env.records();
    let used = in_use(env, settings).await?;
    let mut report = SweepReport::default();
    // Read once, and only if some delete is about to be asked about.
    let mut gate: Option<Gate<'_>> = None;
    let mut failed: Option<StepError> = None;
    for tracked in records.tracked(ns).await? {
        if !policy.covers(&tracked) {
            continue;
        }
        let id = tracked.db_instance_id.clone();
        // Read just before acting: the pointer is the one thing that must never be swept.
        let active = records.pointer(ns).await?.map(|(p, _)| p.db_instance_id);
        if active.as_deref() == Some(id.as_str()) {
            // Promoted after it was tracked: the record is stale, the database is not.
            records.untrack(ns, &id).await?;
            report.kept.push(format!("{id}: active"));
            continue;
        }
        if used.contains(&id) {
            // Kept, tracked, and not waited on: a database a task still names is not being
            // deleted, and may never be (a service left on it needs an operator). A rollback
            // waits for its service to settle on its own account.
            report.kept.push(format!("{id}: in use by the service"));
            continue;
        }
        let instance = match env.aws.describe_db(&id).await {
            Ok(instance) => instance,
            Err(AwsError::NotFound { .. }) => {
                records.untrack(ns, &id).await?;
                report.deleted.push(id);
                continue;
            }
            Err(err) => return Err(err.into()),
        };
        if instance.tags.get(tag::NAMESPACE).map(String::as_str) != Some(ns.as_str()) {
            report
                .kept
                .push(format!("{id}: not tagged for {ns}, refusing to delete it"));
            continue;
        }
        if instance.status == "deleting" || BUSY.contains(&instance.status.as_str()) {
            report.deleting.push(id);
            continue;
        }
        // Unique per deletion: a database name can come back (the same snapshot promoted again).
        let served = matches!(policy, SweepPolicy::Rollback { served: true, .. });
        let final_snapshot_id = match tracked.role {
            TrackedRole::Retired if settings.keeps_final_snapshot(ns) => Some(
                names::final_snapshot_id(&id, Timestamp::from_datetime(env.now()))?,
            ),
            TrackedRole::Candidate if served => Some(names::final_snapshot_id(
                &id,
                Timestamp::from_datetime(env.now()),
            )?),
            _ => None,
        };
        if policy.asks_about(&tracked) {
            let facts = || {
                let mut facts = policy.facts().clone();
                facts.step = PolicyStep::Cleanup;
                facts.current_pointer = active.clone();
                facts.target_db = Some(DatabaseFacts {
                    // Neither can be true here: the active and the in-use databases were
                    // skipped above, busy ones wait, and the namespace lock keeps every other
                    // execution out.
                    active: false,
                    in_flight: false,
                    final_snapshot: final_snapshot_id.is_some(),
                    ..gate::instance_facts(&instance)
                });
                facts
            };
            match ask(env, ns, settings, &mut gate, facts).await {
                Ok(()) => {}
                Err(err @ StepError::PolicyDenied { .. }) => {
                    report.kept.push(format!("{id}: {err}"));
                    continue;
                }
                // The rollback must finish: whatever keeps the policies from answering (a
                // broken catalog, a plugin) only keeps the leftover. A transient error is
                // still retried.
                Err(err)
                    if matches!(policy, SweepPolicy::Rollback { .. })
                        && !matches!(err, StepError::Transient(_)) =>
                {
                    report.kept.push(format!("{id}: {err}"));
                    continue;
                }
                Err(err @ StepError::PolicyFailed { .. }) => {
                    report.kept.push(format!("{id}: {err}"));
                    failed.get_or_insert(err);
                    continue;
                }
                Err(err) => return Err(err),
            }
        }
        // Protection lifted, then the delete asked for; either refusal is said as such.
        let request = DeleteDbRequest {
            db_instance_id: id.clone(),
            final_snapshot_id: final_snapshot_id.clone(),
        };
        let asked = async {
            lift_deletion_protection(env, &instance)
                .await
                .map_err(|err| ("deletion protection not lifted", err))?;
            match env.aws.delete_db(&request).await {
                Ok(_) | Err(AwsError::InvalidState { .. }) => Ok(()),
                Err(err) => Err(("delete refused", err)),
            }
        };
        match asked.await {
            Ok(()) => {}
            Err((_, AwsError::NotFound { .. })) => {
                records.untrack(ns, &id).await?;
                report.deleted.push(id);
                continue;
            }
            Err((_, err)) if err.is_transient() => return Err(err.into()),
            Err((what, err)) => {
                // Stays tracked: a later run tries again; the others go ahead now.
                tracing::warn!(namespace = %ns, db = %id, "{what}: {err}");
                report.kept.push(format!("{id}: {what}: {err}"));
                continue;
            }
        }
        tracing::info!(namespace = %ns, db = %id, final_snapshot = ?final_snapshot_id, "delete requested");
        report.final_snapshots.extend(final_snapshot_id);
        report.deleting.push(id);
    }
    if let Some(err) = failed {
        // The deletes asked for above stay tracked until RDS says they are gone: a later run
        // untracks them.
        return Err(err);
    }
    report.done = report.deleting.is_empty();
    report.poll = if report.done {
        poll.ready()
    } else {
        poll.next(&format!("deletion of {}", report.deleting.join(", ")))?
    };
    Ok(report)
}

/// Lifts deletion protection from `instance` if it has it (carried over from the database a
/// deploy replaced). Called for the database about to be deleted, and for it alone, once the
/// policies allowed the delete.
pub(crate) async fn lift_deletion_protection(
    env: Env<'_>,
    instance: &DbInstance,
) -> Result<(), AwsError> {
    if instance.config.deletion_protection == Some(true) {
        env.aws.set_deletion_protection(&instance.id, false).await?;
        tracing::info!(db = %instance.id, "deletion protection lifted to delete it");
    }
    Ok(())
}

/// Asks the policies bound to `ns` about one delete; the catalog is read at the first question
/// of a sweep and kept for the others.
async fn ask<'a>(
    env: Env<'a>,
    ns: &Namespace,
    settings: &NamespaceSettings,
    gate: &mut Option<Gate<'a>>,
    facts: impl FnOnce() -> PolicyContext,
) -> Result<(), StepError> {
    let gate = match gate {
        Some(gate) => gate,
        None => gate.insert(Gate::load(env, ns).await?),
    };
    if gate.is_empty() {
        return Ok(());
    }
    gate.check(settings, facts()).await.map(|_| ())
}

fn merged(earlier: &[String], now: Vec<String>) -> Vec<String> {
    let mut all: Vec<String> = earlier
        .iter()
        .filter(|id| !now.contains(id))
        .cloned()
        .collect();
    all.extend(now);
    all
}

/// Step 6: delete the database the swap replaced (and any left by earlier runs), never the
/// active one. Re-run by the machine until everything tracked is gone.
pub async fn cleanup(env: Env<'_>, state: &DeployState) -> Result<SweepReport, StepError> {
    let ns = state.namespace()?;
    let settings = &state.previous()?.settings;
    let poll = state
        .cleanup
        .as_ref()
        .map(|c| c.poll.clone())
        .unwrap_or_default();
    let policy = SweepPolicy::Cleanup(gate::deploy_facts(PolicyStep::Cleanup, state)?);
    let mut report = sweep(env, &ns, settings, &poll, &policy).await?;
    if let Some(earlier) = &state.cleanup {
        // Keep what earlier rounds achieved in the report.
        report.deleted = merged(&earlier.deleted, report.deleted);
        report.final_snapshots = merged(&earlier.final_snapshots, report.final_snapshots);
    }
    Ok(report)
}

/// Undoes what this execution changed, and only that. What it changed is proven by this run's
/// own records, never inferred from an execution id (an id can be reused): the pointer is ours
/// only at the version right after the one step 2 read, written under our id and naming our
/// new database; the service revision only if we registered it (id, start time and our
/// database, or the revision `deploy-service` reported); a database only if we created it. The
/// failure may have struck mid-step, so each is read from AWS, and the state says what to
/// compare with. The new database is tracked again first (so nothing that follows can orphan
/// it), the pointer goes back to what step 2 read, the service back to the revision it ran,
/// and the new database is deleted once no task uses it. The old database is never touched,
/// and neither is anything an earlier run left. Re-run by the machine until `done`.
///
/// No policy is asked before any of it: undoing a failed deploy must never be blocked (a policy
/// that could stop a rollback would leave a namespace half-deployed).
pub async fn rollback(env: Env<'_>, state: &DeployState) -> Result<RollbackReport, StepError> {
    let ns = state.namespace()?;
    let execution = state.execution()?;
    let execution_id = execution.id.as_str();
    let records = env.records();
    let settings = match &state.previous {
        Some(previous) => previous.settings.clone(),
        None => records.settings(&ns).await?,
    };
    let earlier = state.rollback.clone().unwrap_or_default();
    let mut report = RollbackReport {
        pointer_restored: earlier.pointer_restored,
        service_restored: earlier.service_restored,
        service_thawed: earlier.service_thawed,
        ..RollbackReport::default()
    };
    let candidate = candidate_of(state)?;

    // 0. The new database: the swap untracked it when it became active; whatever fails from
    // here on, it must stay accounted for.
    if let Some(candidate) = &candidate {
        match env.aws.describe_db(candidate).await {
            Ok(instance) if made_by(&instance.tags, execution) => {
                records
                    .track(
                        &ns,
                        &TrackedDb {
                            db_instance_id: candidate.clone(),
                            role: TrackedRole::Candidate,
                            execution_id: execution_id.to_owned(),
                            since: env.now(),
                        },
                    )
                    .await?;
            }
            Ok(_) | Err(AwsError::NotFound { .. }) => {}
            Err(err) => return Err(err.into()),
        }
    }

    // 1. The pointer, if this run moved it: back to what step 2 read. Without step 2's read,
    // this run cannot have swapped (the swap needs it), so the pointer is not ours to touch.
    if let Some(previous) = &state.previous {
        if let Some((pointer, version)) = records.pointer(&ns).await? {
            // The swap's write: after the version step 2 read (later still when the SDK resent
            // it, or another writer slipped in before the swap found the conflict), under this
            // run's id, naming this run's new database. Nothing else writes that record.
            let expected = previous.version.map_or(1, |read| read + 1);
            let swapped_by_us = version >= expected
                && pointer.execution_id.as_deref() == Some(execution_id)
                && candidate.as_deref() == Some(pointer.db_instance_id.as_str());
            if swapped_by_us {
                match &previous.active {
                    Some(old) => {
                        records.put_pointer(&ns, old, Some(version)).await?;
                    }
                    None => {
                        records.delete_pointer(&ns).await?;
                    }
                }
                tracing::warn!(namespace = %ns, execution_id, "pointer restored");
                report.pointer_restored = true;
            }
        }
        // The old database is serving again: the record this run made of it (the swap tracks
        // it before the pointer leaves it) must not get it swept.
        if let Some(old) = &previous.active {
            let active = records.pointer(&ns).await?.map(|(p, _)| p.db_instance_id);
            if active.as_deref() == Some(old.db_instance_id.as_str()) {
                for tracked in records.tracked(&ns).await? {
                    if tracked.role == TrackedRole::Retired
                        && tracked.db_instance_id == old.db_instance_id
                        && execution.could_have_written(&tracked.execution_id, tracked.since)
                    {
                        records.untrack(&ns, &tracked.db_instance_id).await?;
                    }
                }
            }
        }
    }

    // 2. The service, if it runs the revision this run registered: back to the one before.
    report.service_stable = match env
        .aws
        .describe_service(&settings.cluster, &settings.service)
        .await
    {
        Err(AwsError::NotFound { .. }) => true,
        Err(err) => return Err(err.into()),
        Ok(service) => {
            let mut stable = match registered_revision(env, state, &service.task_definition_arn)
                .await?
            {
                Some(previous) => {
                    env.aws
                        .update_service(&settings.cluster, &settings.service, &previous)
                        .await?;
                    tracing::warn!(namespace = %ns, task_definition = %previous, "service restored");
                    report.service_restored = true;
                    false
                }
                None => is_stable(&service),
            };
            // An upgrade's freeze: the service back at its count, on the old revision and the
            // old database, which no write has touched since the freeze.
            if let Some(before) = frozen_count(state) {
                if service.desired_count != before {
                    env.aws
                        .set_desired_count(&settings.cluster, &settings.service, before)
                        .await?;
                    tracing::warn!(namespace = %ns, desired_count = before, "service thawed");
                    stable = false;
                }
                report.service_thawed = true;
            }
            stable
        }
    };

    // 3. The new database, once no task uses it. Not gated: undoing must never be blocked.
    let policy = SweepPolicy::Rollback {
        facts: gate::deploy_facts(PolicyStep::Cleanup, state)?,
        execution: execution.clone(),
        candidate,
        served: state.service.is_some() || report.service_restored,
    };
    let mut sweep_report = sweep(env, &ns, &settings, &earlier.sweep.poll, &policy).await?;
    sweep_report.deleted = merged(&earlier.sweep.deleted, sweep_report.deleted);
    sweep_report.done = sweep_report.done && report.service_stable;
    if !sweep_report.done && sweep_report.poll.ready {
        sweep_report.poll = earlier
            .sweep
            .poll
            .next(&format!("service {} to settle", settings.service))?;
    }
    report.sweep = sweep_report;
    Ok(report)
}

/// When the service runs the revision this run registered (`current`), the revision to go back
/// to. Known from `deploy-service`'s report; if its answer was lost, from the revision itself:
/// made by this run and naming the database this run swapped to.
async fn registered_revision(
    env: Env<'_>,
    state: &DeployState,
    current: &str,
) -> Result<Option<String>, StepError> {
    if let Some(rollout) = &state.service {
        return Ok((rollout.task_definition_arn == current)
            .then(|| rollout.previous_task_definition_arn.clone()));
    }
    let Ok(pointer) = state.rollout_pointer() else {
        // deploy-service needs the swap (or, keeping the database, the active one): without
        // it this run never touched the service.
        return Ok(None);
    };
    let definition = env.aws.describe_task_definition(current).await?;
    if registered_by(&definition, state.execution()?, pointer) {
        Ok(Some(previous_of(&definition)?))
    } else {
        Ok(None)
    }
}

/// The database this execution restores (or restored): named from the snapshot's timestamp, so
/// it is known even when the failure struck before `create-db` reported back.
fn candidate_of(state: &DeployState) -> Result<Option<String>, StepError> {
    if let Some(db) = &state.db {
        return Ok(Some(db.db_instance_id.clone()));
    }
    match &state.snapshot {
        Some(snapshot) => Ok(Some(names::db_instance_id(
            &state.namespace()?,
            snapshot.timestamp,
        )?)),
        None => Ok(None),
    }
}
