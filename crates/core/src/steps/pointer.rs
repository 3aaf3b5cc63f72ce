use super::Env;
use super::gate::{self, Gate};
use crate::error::StepError;
use crate::policy::PolicyStep;
use crate::records::{ActivePointer, TrackedDb, TrackedRole};
use crate::state::{DeployState, PointerRead, SwapReport};

/// Step 2: read and keep the namespace's active pointer, its version and its settings.
pub async fn read_pointer(env: Env<'_>, state: &DeployState) -> Result<PointerRead, StepError> {
    let ns = state.namespace()?;
    let records = env.records();
    let settings = records.settings(&ns).await?;
    let (active, version) = match records.pointer(&ns).await? {
        Some((pointer, version)) => (Some(pointer), Some(version)),
        None => (None, None),
    };
    Ok(PointerRead {
        active,
        version,
        settings,
    })
}

/// Step 4: make the new database the active one. Parameter Store has no compare-and-swap, so
/// the swap is guarded three ways: the namespace lock must still be ours, the pointer must still
/// be at the version step 2 read, and the version the write returns must be the next one (a
/// concurrent writer would have taken it).
pub async fn swap_pointer(env: Env<'_>, state: &DeployState) -> Result<SwapReport, StepError> {
    let ns = state.namespace()?;
    let execution_id = state.execution_id()?;
    let previous = state.previous()?;
    let snapshot = state.snapshot()?;
    let db = state.db()?;
    let records = env.records();

    match records.lock(&ns).await? {
        Some(lock) if state.holds(&lock)? => {}
        Some(lock) => {
            return Err(StepError::NamespaceLocked {
                namespace: ns.to_string(),
                holder: lock.execution_id,
                since: lock.acquired_at.to_rfc3339(),
            });
        }
        None => {
            return Err(StepError::PointerConflict {
                namespace: ns.to_string(),
                detail: format!("execution {execution_id} no longer holds the namespace lock"),
            });
        }
    }

    let (Some(endpoint), Some(port)) = (&db.endpoint, db.port) else {
        return Err(StepError::invalid(format!(
            "db instance {} has no endpoint yet: the swap runs only once it is available",
            db.db_instance_id
        )));
    };
    let retired = previous.active.as_ref().map(|p| p.db_instance_id.clone());

    let current = records.pointer(&ns).await?;
    if let Some((pointer, version)) = &current {
        // A retry after our own write went through.
        if pointer.execution_id.as_deref() == Some(execution_id)
            && pointer.db_instance_id == db.db_instance_id
        {
            records.untrack(&ns, &db.db_instance_id).await?;
            return Ok(SwapReport {
                pointer: pointer.clone(),
                version: *version,
                previous_version: previous.version,
                retired,
            });
        }
    }
    let current_version = current.as_ref().map(|(_, version)| *version);
    if current_version != previous.version {
        return Err(StepError::PointerConflict {
            namespace: ns.to_string(),
            detail: format!(
                "expected version {}, found {}",
                show_version(previous.version),
                show_version(current_version)
            ),
        });
    }

    // Asked before the first write, and only when the pointer is still to be moved (the retry
    // that finds our own write returned above).
    let gate = Gate::load(env, &ns).await?;
    if !gate.is_empty() {
        let mut facts = gate::deploy_facts(PolicyStep::SwapPointer, state)?;
        facts.current_pointer = current.as_ref().map(|(p, _)| p.db_instance_id.clone());
        facts.new_pointer = Some(db.db_instance_id.clone());
        facts.target_db = Some(gate::database_facts(env, &db.db_instance_id).await?);
        gate.check(&previous.settings, facts).await?;
    }

    // Track the old database before the pointer leaves it, so it can never be forgotten.
    if let Some(old) = &retired {
        records
            .track(
                &ns,
                &TrackedDb {
                    db_instance_id: old.clone(),
                    role: TrackedRole::Retired,
                    execution_id: execution_id.to_owned(),
                    since: env.now(),
                },
            )
            .await?;
    }
    let pointer = ActivePointer {
        db_instance_id: db.db_instance_id.clone(),
        timestamp: snapshot.timestamp,
        endpoint: endpoint.clone(),
        port,
        snapshot_id: Some(snapshot.snapshot_id.clone()),
        execution_id: Some(execution_id.to_owned()),
        activated_at: env.now(),
        app_version: gate::target_version(state),
        master_user_secret_arn: state
            .credentials
            .as_ref()
            .and_then(|c| c.master_user_secret_arn.clone()),
        // Preflight planned it: the migrations' target, else the restored data's own.
        schema_version: state
            .preflight
            .as_ref()
            .and_then(|p| p.schema.as_ref())
            .and_then(|schema| schema.to.clone()),
    };
    let version = records.put_pointer(&ns, &pointer, previous.version).await?;
    let expected = previous.version.map_or(1, |v| v + 1);
    // The SDK may resend a write whose answer it lost, so versions between the expected one and
    // ours are fine when this execution wrote every one of them.
    let only_ours = version > expected
        && records
            .pointer_history(&ns)
            .await?
            .iter()
            .filter(|(_, v)| *v >= expected && *v <= version)
            .all(|(p, _)| p.execution_id.as_deref() == Some(execution_id));
    if version != expected && !only_ours {
        return Err(StepError::PointerConflict {
            namespace: ns.to_string(),
            detail: format!(
                "wrote version {version} but expected {expected}: another writer changed the pointer"
            ),
        });
    }
    // Active now: no longer a candidate for deletion.
    records.untrack(&ns, &db.db_instance_id).await?;
    tracing::info!(namespace = %ns, db = %db.db_instance_id, version, "pointer swapped");
    Ok(SwapReport {
        pointer,
        version,
        previous_version: previous.version,
        retired,
    })
}

fn show_version(version: Option<i64>) -> String {
    version.map_or_else(|| "none".to_owned(), |v| v.to_string())
}
