use super::gate::{self, Gate};
use super::{Env, execution_tags, made_by};
use crate::error::{AwsError, ResourceKind, StepError};
use crate::names::{self, Namespace, Timestamp};
use crate::policy::{DatabaseFacts, PolicyStep, SnapshotFacts};
use crate::ports::{Snapshot, tag};
use crate::records::{ActivePointer, NamespaceSettings};
use crate::state::{DeployState, ExecutionInfo, Poll, SnapshotRef};

/// Step 1: take a snapshot of the source namespace's active database, named with the
/// execution's start time, or take the snapshot the caller names (the promoted artifact).
pub async fn snapshot(env: Env<'_>, state: &DeployState) -> Result<SnapshotRef, StepError> {
    let target = state.namespace()?;
    match data_source(state)? {
        DataSource::Namespace(source) => take_snapshot(env, state, &target, source).await,
        DataSource::Snapshot(snapshot_id) => given_snapshot(env, &target, snapshot_id).await,
        DataSource::Promotion { from, execution } => {
            let snapshot_id = promoted_snapshot_id(env, &target, from, execution).await?;
            given_snapshot(env, &target, &snapshot_id).await
        }
    }
}

/// Where a deploy's data comes from, as its request says.
pub(super) enum DataSource<'a> {
    /// Snapshot this namespace's active database.
    Namespace(&'a str),
    /// Restore this snapshot.
    Snapshot(&'a str),
    /// Restore the snapshot this namespace's active database came from, if `execution` (when
    /// given) is still the one that put it there.
    Promotion {
        from: &'a str,
        execution: Option<&'a str>,
    },
}

pub(super) fn data_source(state: &DeployState) -> Result<DataSource<'_>, StepError> {
    if state.upgrade_to.is_some() {
        // An upgrade keeps the tenant's own data: its own active database is the source.
        if state.source_namespace.is_some()
            || state.snapshot_id.is_some()
            || state.promote_from.is_some()
            || state.image.is_some()
            || state.settings_only
        {
            return Err(StepError::invalid(
                "an upgrade (upgrade_to) moves the tenant's own data to the catalog's release: give no source_namespace, snapshot_id, promote_from, image or settings_only",
            ));
        }
        return Ok(DataSource::Namespace(&state.namespace));
    }
    if state.promoted_execution.is_some() && state.promote_from.is_none() {
        return Err(StepError::invalid(
            "promoted_execution names the deploy a promotion takes its data from: give promote_from with it",
        ));
    }
    match (
        &state.source_namespace,
        &state.snapshot_id,
        &state.promote_from,
    ) {
        (Some(source), None, None) => Ok(DataSource::Namespace(source)),
        (None, Some(snapshot_id), None) => Ok(DataSource::Snapshot(snapshot_id)),
        (None, None, Some(from)) => Ok(DataSource::Promotion {
            from,
            execution: state.promoted_execution.as_deref(),
        }),
        (None, None, None) => Err(StepError::invalid(
            "nothing to deploy: give source_namespace (snapshot its active database), snapshot_id or promote_from",
        )),
        _ => Err(StepError::invalid(
            "give one of source_namespace, snapshot_id and promote_from, not several",
        )),
    }
}

/// The snapshot a promotion restores: the one `from`'s active database was restored from, as
/// its pointer records it, provided `execution` (when given) wrote that pointer. A deploy there
/// since then means the data in `from` is no longer what was approved.
pub(super) async fn promoted_snapshot_id(
    env: Env<'_>,
    target: &Namespace,
    from: &str,
    execution: Option<&str>,
) -> Result<String, StepError> {
    let from: Namespace = from.parse()?;
    if &from == target {
        return Err(StepError::invalid(format!(
            "promote_from {from} is the target namespace: promote from the stage before it"
        )));
    }
    let Some((pointer, _)) = env.records().pointer(&from).await? else {
        return Err(StepError::invalid(format!(
            "promote_from {from} has no active database to promote"
        )));
    };
    if let Some(execution) = execution {
        let current = pointer.execution_id.as_deref().unwrap_or("(none recorded)");
        if current != execution {
            return Err(StepError::invalid(format!(
                "{from} was deployed by {current} after {execution}, the execution this promotion names: its data is no longer the data approved; promote again from the newer deploy"
            )));
        }
    }
    pointer.snapshot_id.ok_or_else(|| {
        StepError::invalid(format!(
            "{from}'s active database {} records no snapshot it was restored from (an adopted database): give snapshot_id",
            pointer.db_instance_id
        ))
    })
}

/// The source namespace of a deploy that snapshots it, checked: not the target, one whose data
/// the target's `settings` admit, and with an active database. Returns it and its pointer.
pub(super) async fn checked_source(
    env: Env<'_>,
    target: &Namespace,
    settings: &NamespaceSettings,
    source: &str,
    own_data: bool,
) -> Result<(Namespace, ActivePointer), StepError> {
    let source: Namespace = source.parse()?;
    if &source == target && !own_data {
        return Err(StepError::invalid(format!(
            "source namespace {source} is the target namespace: deploy from another namespace or a snapshot"
        )));
    }
    if &source != target && !settings.admits_data_from(target, Some(&source)) {
        return Err(other_tenant(target, &format!("namespace {source}")));
    }
    let Some((pointer, _)) = env.records().pointer(&source).await? else {
        return Err(StepError::invalid(format!(
            "source namespace {source} has no active database to snapshot"
        )));
    };
    Ok((source, pointer))
}

/// The source's active database as a policy sees it, and the snapshot of it this execution is
/// about to take (`snapshot_id`, stamped `timestamp`).
pub(super) async fn source_facts(
    env: Env<'_>,
    source: &Namespace,
    pointer: &ActivePointer,
    snapshot_id: &str,
    timestamp: Timestamp,
) -> Result<(DatabaseFacts, SnapshotFacts), StepError> {
    let source_db = match env.aws.describe_db(&pointer.db_instance_id).await {
        Ok(instance) => DatabaseFacts {
            // The source namespace's pointer names it: that is what `snapshot` copies.
            active: true,
            ..gate::instance_facts(&instance)
        },
        Err(AwsError::NotFound { .. }) => return Err(source_gone(pointer, source)),
        Err(err) => return Err(err.into()),
    };
    let snapshot = SnapshotFacts {
        id: snapshot_id.to_owned(),
        source_db: source_db.id.clone(),
        created_at: timestamp.datetime().timestamp(),
        age_seconds: 0,
        allocated_storage_gib: source_db.allocated_storage_gib,
        engine: source_db.engine.clone(),
        engine_version: source_db.engine_version.clone(),
        taken_by_this_execution: true,
    };
    Ok((source_db, snapshot))
}

async fn take_snapshot(
    env: Env<'_>,
    state: &DeployState,
    target: &Namespace,
    source: &str,
) -> Result<SnapshotRef, StepError> {
    let settings = env.records().settings(target).await?;
    let (source, pointer) =
        checked_source(env, target, &settings, source, state.upgrade_to.is_some()).await?;
    let execution = state.execution()?;
    let timestamp = Timestamp::from_datetime(execution.started_at);
    let snapshot_id = names::snapshot_id(&source, timestamp)?;

    let gate = Gate::load(env, target).await?;
    if !gate.is_empty() {
        // Asked only while the snapshot is still to be taken: a re-invocation after our create
        // went through (its answer lost) finds it and does not ask again.
        match env.aws.describe_snapshot(&snapshot_id).await {
            Ok(existing) => {
                let existing = ours(existing, execution)?;
                return Ok(snapshot_ref(&existing, timestamp, true, Poll::default()));
            }
            Err(AwsError::NotFound { .. }) => {}
            Err(err) => return Err(err.into()),
        }
        let (source_db, snapshot) =
            source_facts(env, &source, &pointer, &snapshot_id, timestamp).await?;
        let mut facts = gate::deploy_facts(PolicyStep::Snapshot, state)?;
        facts.snapshot = Some(snapshot);
        facts.source_db = Some(source_db);
        gate.check(&settings, facts).await?;
    }

    let mut tags = execution_tags(source.as_str(), execution);
    tags.insert(tag::TIMESTAMP.to_owned(), timestamp.to_string());
    let snapshot = match env
        .aws
        .create_snapshot(&pointer.db_instance_id, &snapshot_id, &tags)
        .await
    {
        Ok(snapshot) => snapshot,
        Err(AwsError::AlreadyExists { .. }) => {
            ours(env.aws.describe_snapshot(&snapshot_id).await?, execution)?
        }
        Err(AwsError::NotFound { .. }) => return Err(source_gone(&pointer, &source)),
        Err(err) => return Err(err.into()),
    };
    tracing::info!(snapshot_id, source = %source, status = %snapshot.status, "snapshot requested");
    Ok(snapshot_ref(&snapshot, timestamp, true, Poll::default()))
}

/// A snapshot under our name is adopted only if this execution took it.
fn ours(existing: Snapshot, execution: &ExecutionInfo) -> Result<Snapshot, StepError> {
    if made_by(&existing.tags, execution) {
        Ok(existing)
    } else {
        Err(StepError::invalid(format!(
            "snapshot {} already exists and was not taken by this execution",
            existing.id
        )))
    }
}

fn source_gone(pointer: &ActivePointer, source: &Namespace) -> StepError {
    StepError::invalid(format!(
        "active database {} of {source} does not exist",
        pointer.db_instance_id
    ))
}

pub(super) async fn given_snapshot(
    env: Env<'_>,
    target: &Namespace,
    snapshot_id: &str,
) -> Result<SnapshotRef, StepError> {
    names::check_given_snapshot_id(snapshot_id)?;
    let snapshot = match env.aws.describe_snapshot(snapshot_id).await {
        Ok(snapshot) => snapshot,
        Err(AwsError::NotFound { .. }) => {
            return Err(StepError::invalid(format!(
                "snapshot {snapshot_id} not found"
            )));
        }
        Err(err) => return Err(err.into()),
    };
    let settings = env.records().settings(target).await?;
    let origin = origin_of(&snapshot);
    if !settings.admits_data_from(target, origin.as_ref()) {
        let what = match &origin {
            Some(origin) => format!("snapshot {snapshot_id} of {origin}"),
            None => format!(
                "snapshot {snapshot_id}, of unknown origin (no {} tag, no namespace in its name),",
                tag::NAMESPACE
            ),
        };
        return Err(other_tenant(target, &what));
    }
    // The name carries the data's timestamp when Switchyard took it; otherwise trust RDS.
    let timestamp = Timestamp::from_name_suffix(snapshot_id)
        .or_else(|| snapshot.created_at.map(Timestamp::from_datetime))
        .ok_or_else(|| {
            StepError::invalid(format!(
                "snapshot {snapshot_id} has no creation time yet and no timestamp in its name"
            ))
        })?;
    fail_if_broken(&snapshot)?;
    Ok(snapshot_ref(&snapshot, timestamp, false, Poll::default()))
}

/// Which namespace's data a snapshot holds: the namespace in the name of the database it was
/// taken of (RDS records it, and nobody can change it), which its `switchyard:namespace` tag,
/// if it has one, must not contradict (a tag anyone may set). Otherwise unknown: a snapshot's
/// own name, and a tag alone, prove nothing.
fn origin_of(snapshot: &Snapshot) -> Option<Namespace> {
    let name = &snapshot.db_instance_id;
    let stem = name.get(..name.len().checked_sub(16)?)?;
    Timestamp::from_name_suffix(name)?;
    let origin: Namespace = stem.parse().ok()?;
    match snapshot.tags.get(tag::NAMESPACE) {
        Some(tagged) if tagged != origin.as_str() => None,
        _ => Some(origin),
    }
}

pub(super) fn other_tenant(target: &Namespace, what: &str) -> StepError {
    StepError::invalid(format!(
        "{what} is not data of {}-{}: data moves only between the tiers of one customer's project, unless {target}'s settings name the source in allowed_sources",
        target.customer(),
        target.project()
    ))
}

/// Polled by the machine until the snapshot is available.
pub async fn check_snapshot(env: Env<'_>, state: &DeployState) -> Result<SnapshotRef, StepError> {
    let current = state.snapshot()?;
    let snapshot = match env.aws.describe_snapshot(&current.snapshot_id).await {
        Ok(snapshot) => snapshot,
        Err(AwsError::NotFound { .. }) => {
            return Err(StepError::ResourceFailed {
                kind: ResourceKind::DbSnapshot,
                id: current.snapshot_id.clone(),
                status: "gone".into(),
            });
        }
        Err(err) => return Err(err.into()),
    };
    fail_if_broken(&snapshot)?;
    let poll = if snapshot.status == "available" {
        current.poll.ready()
    } else {
        current.poll.next(&format!("db snapshot {}", snapshot.id))?
    };
    Ok(snapshot_ref(
        &snapshot,
        current.timestamp,
        current.taken,
        poll,
    ))
}

fn fail_if_broken(snapshot: &Snapshot) -> Result<(), StepError> {
    if matches!(snapshot.status.as_str(), "failed" | "deleting" | "deleted") {
        return Err(StepError::ResourceFailed {
            kind: ResourceKind::DbSnapshot,
            id: snapshot.id.clone(),
            status: snapshot.status.clone(),
        });
    }
    Ok(())
}

fn snapshot_ref(snapshot: &Snapshot, timestamp: Timestamp, taken: bool, poll: Poll) -> SnapshotRef {
    SnapshotRef {
        snapshot_id: snapshot.id.clone(),
        source_db_instance_id: snapshot.db_instance_id.clone(),
        timestamp,
        status: snapshot.status.clone(),
        taken,
        engine: snapshot.engine.clone(),
        engine_version: snapshot.engine_version.clone(),
        allocated_storage_gib: snapshot.allocated_storage_gib,
        poll,
    }
}
