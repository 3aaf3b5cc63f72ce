use serde::{Deserialize, Serialize};

use super::Env;
use super::gate;
use super::service::check_image;
use crate::error::StepError;
use crate::records::{LastDeploy, LockRecord};
use crate::state::{DeployState, STEP_KEYS};

/// Takes the namespace for this execution, so that two pipelines can never both swap its
/// pointer. It runs first, so a second deploy fails here having changed nothing.
pub async fn acquire_lock(env: Env<'_>, state: &DeployState) -> Result<LockRecord, StepError> {
    let ns = state.namespace()?;
    let execution_id = state.execution_id()?;
    refuse_internal_keys(state)?;
    if let Some(image) = &state.image {
        // Caught here rather than after the restore: nothing is spent on a bad request.
        check_image(image)?;
        if state.settings_only {
            return Err(StepError::invalid(format!(
                "a settings-only deploy keeps the database and the version it runs, which the pointer records at a swap: deploy image {image} with data (source_namespace or snapshot_id)"
            )));
        }
    }
    let records = env.records();
    // Refuse an unregistered namespace before taking anything.
    records.settings(&ns).await?;
    let record = LockRecord {
        execution_id: execution_id.to_owned(),
        acquired_at: env.now(),
        execution_started_at: Some(state.execution()?.started_at),
    };
    match records.try_lock(&ns, &record).await? {
        Ok(()) => {
            tracing::info!(namespace = %ns, execution_id, "lock acquired");
            Ok(record)
        }
        // A retry of our own acquire: the lock is already ours. A lock taken under our name
        // before we started is another run's (a reused name), perhaps kept for an operator.
        Err(holder) if state.holds(&holder)? => Ok(holder),
        Err(holder) => Err(StepError::NamespaceLocked {
            namespace: ns.to_string(),
            holder: holder.execution_id,
            since: holder.acquired_at.to_rfc3339(),
        }),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseReport {
    pub released: bool,
    /// Who holds the lock now, when it is not this execution.
    pub holder: Option<String>,
}

/// Releases the lock if, and only if, this execution holds it.
pub async fn release_lock(env: Env<'_>, state: &DeployState) -> Result<ReleaseReport, StepError> {
    let ns = state.namespace()?;
    let execution_id = state.execution_id()?;
    let records = env.records();
    match records.lock(&ns).await? {
        Some(holder) if state.holds(&holder)? => {
            // Recorded before the lock goes, so that a retry after a lost reply records again
            // (the same record) rather than never.
            let execution = state.execution()?;
            let last = LastDeploy {
                execution_id: execution.id.clone(),
                started_at: execution.started_at,
                finished_at: env.now(),
                outcome: if state.error.is_some() {
                    "failed".to_owned()
                } else {
                    "succeeded".to_owned()
                },
                error: state.error.as_ref().map(|caught| caught.error.clone()),
                app_version: gate::target_version(state),
            };
            // Best effort: a record that cannot be written must not keep the namespace locked.
            if let Err(err) = records.put_last_deploy(&ns, &last).await {
                tracing::warn!(namespace = %ns, error = err.name(), "last deploy not recorded: {err}");
            }
            records.unlock(&ns).await?;
            tracing::info!(namespace = %ns, execution_id, "lock released");
            Ok(ReleaseReport {
                released: true,
                holder: None,
            })
        }
        Some(holder) => {
            tracing::warn!(namespace = %ns, execution_id, holder = %holder.execution_id, "lock held by another execution; left alone");
            Ok(ReleaseReport {
                released: false,
                holder: Some(holder.execution_id),
            })
        }
        None => Ok(ReleaseReport {
            released: false,
            holder: None,
        }),
    }
}

/// The keys the steps write are theirs alone: an execution input that sets one (say a
/// `previous` with other settings) would steer the steps.
fn refuse_internal_keys(state: &DeployState) -> Result<(), StepError> {
    // As long as STEP_KEYS: a key added there and not here does not compile.
    let present: [bool; STEP_KEYS.len()] = [
        state.lock.is_some(),
        state.preflight.is_some(),
        state.freeze.is_some(),
        state.snapshot.is_some(),
        state.previous.is_some(),
        state.db.is_some(),
        state.credentials.is_some(),
        state.migrations.is_some(),
        state.swap.is_some(),
        state.service.is_some(),
        state.cleanup.is_some(),
        state.error.is_some(),
        state.rollback.is_some(),
    ];
    match STEP_KEYS.iter().zip(present).find(|(_, present)| *present) {
        Some((key, _)) => Err(StepError::invalid(format!(
            "the execution input may not set `{key}`: it is written by the deploy's own steps"
        ))),
        None => Ok(()),
    }
}
