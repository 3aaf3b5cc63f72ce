use super::gate::{self, Gate};
use super::{Env, execution_tags, made_by};
use crate::error::{AwsError, ResourceKind, StepError};
use crate::names;
use crate::policy::{DatabaseFacts, PolicyStep};
use crate::ports::{DbConfig, DbInstance, RestoreDbRequest, tag};
use crate::records::{TrackedDb, TrackedRole};
use crate::state::{DbRef, DeployState, Poll};

/// Step 3: restore a new instance from the snapshot beside the active one, named
/// `<namespace>-<snapshot timestamp>` and shaped by the namespace's settings.
pub async fn create_db(env: Env<'_>, state: &DeployState) -> Result<DbRef, StepError> {
    let ns = state.namespace()?;
    let execution_id = state.execution_id()?;
    let snapshot = state.snapshot()?;
    let previous = state.previous()?;
    let db_instance_id = names::db_instance_id(&ns, snapshot.timestamp)?;

    if previous
        .active
        .as_ref()
        .is_some_and(|active| active.db_instance_id == db_instance_id)
    {
        return Err(StepError::invalid(format!(
            "snapshot {} is already active in {ns} as {db_instance_id}",
            snapshot.snapshot_id
        )));
    }

    // Someone else's database under this name is never adopted, and neither is its tracking
    // record overwritten (it may be a retired database awaiting its final snapshot).
    let restored_already = match env.aws.describe_db(&db_instance_id).await {
        Ok(existing) if !made_by(&existing.tags, state.execution()?) => {
            return Err(already_there(env, &ns, &db_instance_id, &snapshot.snapshot_id).await?);
        }
        Ok(_) => true,
        Err(AwsError::NotFound { .. }) => false,
        Err(err) => return Err(err.into()),
    };
    if let Some(other) = env
        .records()
        .tracked(&ns)
        .await?
        .into_iter()
        .find(|t| t.db_instance_id == db_instance_id && t.execution_id != execution_id)
    {
        return Err(StepError::invalid(format!(
            "db instance {db_instance_id} is still tracked by execution {}: let its clean-up finish first",
            other.execution_id
        )));
    }

    let settings = &previous.settings;
    // Asked before the first write (the tracking record), and only while the restore is still
    // to be asked for: a re-invocation that finds our instance was already allowed.
    if !restored_already {
        let gate = Gate::load(env, &ns).await?;
        if !gate.is_empty() {
            let mut facts = gate::deploy_facts(PolicyStep::CreateDatabase, state)?;
            let snapshot_facts = gate::snapshot_facts(snapshot);
            facts.target_db = Some(DatabaseFacts {
                id: db_instance_id.clone(),
                instance_class: settings.db_instance_class.clone(),
                // RDS restores with the snapshot's storage and engine.
                allocated_storage_gib: snapshot_facts.allocated_storage_gib,
                engine: snapshot_facts.engine.clone(),
                engine_version: snapshot_facts.engine_version.clone(),
                ..DatabaseFacts::default()
            });
            facts.snapshot = Some(snapshot_facts);
            gate.check(settings, facts).await?;
        }
    }

    // Tracked before it exists: if anything fails from here on, rollback or a later clean-up
    // finds it.
    env.records()
        .track(
            &ns,
            &TrackedDb {
                db_instance_id: db_instance_id.clone(),
                role: TrackedRole::Candidate,
                execution_id: execution_id.to_owned(),
                since: env.now(),
            },
        )
        .await?;

    // A restore carries none of the replaced database's setup over on its own: it asks for
    // what the active database has (and its owner's tags), the namespace's settings winning.
    let active = match &previous.active {
        Some(active) => match env.aws.describe_db(&active.db_instance_id).await {
            Ok(instance) => Some(instance),
            Err(AwsError::NotFound { .. }) => None,
            Err(err) => return Err(err.into()),
        },
        None => None,
    };
    let mut tags: crate::ports::Tags = active
        .as_ref()
        .map(|db| {
            db.tags
                .iter()
                .filter(|(key, _)| !key.starts_with(tag::PREFIX) && !key.starts_with("aws:"))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect()
        })
        .unwrap_or_default();
    tags.extend(execution_tags(ns.as_str(), state.execution()?));
    tags.insert(tag::SNAPSHOT.to_owned(), snapshot.snapshot_id.clone());
    tags.insert(tag::TIMESTAMP.to_owned(), snapshot.timestamp.to_string());
    let config = active
        .as_ref()
        .map(|db| carried_over(db, &snapshot.engine, &snapshot.engine_version))
        .unwrap_or_default()
        .overridden_by(&settings.database);
    let setup = config.after_restore();
    let request = RestoreDbRequest {
        db_instance_id: db_instance_id.clone(),
        snapshot_id: snapshot.snapshot_id.clone(),
        instance_class: settings.db_instance_class.clone(),
        subnet_group: settings.db_subnet_group.clone(),
        security_group_ids: settings.vpc_security_group_ids.clone(),
        tags,
        config: config.for_restore(),
    };
    let instance = match env.aws.restore_db_from_snapshot(&request).await {
        Ok(instance) => instance,
        Err(AwsError::AlreadyExists { .. }) => {
            let existing = env.aws.describe_db(&db_instance_id).await?;
            if !made_by(&existing.tags, state.execution()?) {
                return Err(already_there(env, &ns, &db_instance_id, &snapshot.snapshot_id).await?);
            }
            existing
        }
        Err(AwsError::NotFound {
            kind: ResourceKind::DbSnapshot,
            id,
        }) => return Err(StepError::invalid(format!("snapshot {id} not found"))),
        Err(AwsError::NotFound {
            kind: ResourceKind::DbSubnetGroup,
            id,
        }) => {
            return Err(StepError::invalid(format!(
                "db subnet group {id} not found: the settings of {ns} name it (db_subnet_group)"
            )));
        }
        Err(AwsError::NotFound {
            kind: ResourceKind::DbParameterGroup,
            id,
        }) => {
            return Err(StepError::invalid(format!(
                "db parameter group {id} not found: the database {ns} replaces uses it, or its settings name it (database.parameter_group)"
            )));
        }
        Err(err) => return Err(err.into()),
    };
    tracing::info!(namespace = %ns, db = %db_instance_id, snapshot = %snapshot.snapshot_id, "restore requested");
    Ok(db_ref(&instance, setup, Poll::default()))
}

/// What a restore of a snapshot of `engine` `engine_version` asks for of `active`'s setup. Its
/// parameter and option groups only when they are its own (RDS picks the right default one
/// itself) and the snapshot's engine and major version are the active database's: a group
/// belongs to one engine family, and a snapshot promoted from a tier on another major version
/// would be refused.
fn carried_over(active: &DbInstance, engine: &str, engine_version: &str) -> crate::ports::DbConfig {
    let major = |version: &str| version.split('.').next().unwrap_or(version).to_owned();
    let same_family =
        active.engine == engine && major(&active.engine_version) == major(engine_version);
    let mut config = active.config.to_carry_over(active.allocated_storage_gib);
    let own = |group: &Option<String>| {
        group
            .as_ref()
            .is_some_and(|g| !g.starts_with("default.") && !g.starts_with("default:"))
    };
    if !(same_family && own(&config.parameter_group)) {
        config.parameter_group = None;
    }
    if !(same_family && own(&config.option_group)) {
        config.option_group = None;
    }
    if !same_family {
        tracing::warn!(
            active = %active.id,
            active_version = %active.engine_version,
            snapshot_version = %engine_version,
            "the snapshot's engine version differs from the active database's: its parameter and option groups are not carried over (set database.parameter_group for the new one)"
        );
    }
    config
}

/// Why the database this snapshot restores to cannot be made: it exists already, and not by
/// this run. Said in the operator's terms: which of the namespace's databases it is.
async fn already_there(
    env: Env<'_>,
    ns: &crate::names::Namespace,
    db_instance_id: &str,
    snapshot_id: &str,
) -> Result<StepError, StepError> {
    let tracked = env
        .records()
        .tracked(ns)
        .await?
        .into_iter()
        .find(|t| t.db_instance_id == db_instance_id);
    let what = match tracked {
        Some(t) if t.role == crate::records::TrackedRole::Retired => format!(
            "it was restored from this snapshot before and still awaits clean-up in {ns}; once it is deleted (a later deploy's clean-up, or the orphan sweep) the snapshot can be restored again"
        ),
        Some(t) => format!(
            "execution {} is restoring it, or left it when it failed (it stays tracked in {ns} until a clean-up deletes it)",
            t.execution_id
        ),
        None => format!(
            "restored from this snapshot before, or made by hand; delete or rename it before restoring {snapshot_id} into {ns} again"
        ),
    };
    Ok(StepError::invalid(format!(
        "db instance {db_instance_id} for snapshot {snapshot_id} already exists and was not created by this execution: {what}"
    )))
}

/// Polled by the machine until the new instance is available.
pub async fn check_db(env: Env<'_>, state: &DeployState) -> Result<DbRef, StepError> {
    let current = state.db()?;
    let instance = match env.aws.describe_db(&current.db_instance_id).await {
        Ok(instance) => instance,
        Err(AwsError::NotFound { .. }) => {
            return Err(StepError::ResourceFailed {
                kind: ResourceKind::DbInstance,
                id: current.db_instance_id.clone(),
                status: "gone".into(),
            });
        }
        Err(err) => return Err(err.into()),
    };
    let poll = match instance.status.as_str() {
        "available" if instance.endpoint.is_some() => current.poll.ready(),
        "creating"
        | "backing-up"
        | "modifying"
        | "configuring-enhanced-monitoring"
        | "configuring-log-exports"
        | "upgrading"
        | "rebooting"
        | "available" => current.poll.next(&format!("db instance {}", instance.id))?,
        _ => {
            return Err(StepError::ResourceFailed {
                kind: ResourceKind::DbInstance,
                id: instance.id.clone(),
                status: instance.status.clone(),
            });
        }
    };
    Ok(db_ref(&instance, current.setup.clone(), poll))
}

fn db_ref(instance: &DbInstance, setup: DbConfig, poll: Poll) -> DbRef {
    DbRef {
        db_instance_id: instance.id.clone(),
        status: instance.status.clone(),
        endpoint: instance.endpoint.clone(),
        port: instance.port,
        setup,
        poll,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::DbConfig;

    fn active(version: &str, parameter_group: &str, option_group: &str) -> DbInstance {
        DbInstance {
            id: "xy-0146-prod-20261101-000000".into(),
            status: "available".into(),
            endpoint: None,
            port: None,
            instance_class: "db.r6g.large".into(),
            engine: "postgres".into(),
            engine_version: version.into(),
            allocated_storage_gib: 100,
            created_at: None,
            tags: Default::default(),
            master_user_secret: None,
            config: DbConfig {
                parameter_group: Some(parameter_group.into()),
                option_group: Some(option_group.into()),
                multi_az: Some(true),
                deletion_protection: Some(true),
                storage_type: Some("gp3".into()),
                iops: Some(3000),
                ..DbConfig::default()
            },
        }
    }

    #[test]
    fn own_groups_are_carried_only_to_the_same_engine_major_version() {
        let db = active("16.4", "xy-pg16", "xy-og16");
        let same = carried_over(&db, "postgres", "16.6");
        assert_eq!(same.parameter_group.as_deref(), Some("xy-pg16"));
        assert_eq!(same.option_group.as_deref(), Some("xy-og16"));
        assert_eq!(
            (same.multi_az, same.deletion_protection),
            (Some(true), Some(true))
        );
        // gp3 under 400 GiB: its baseline IOPS are reported, never asked for.
        assert_eq!(same.iops, None);
        let older = carried_over(&db, "postgres", "15.8");
        assert_eq!((older.parameter_group, older.option_group), (None, None));
        assert_eq!(older.multi_az, Some(true));
        // RDS's own defaults are left to RDS, which picks the snapshot's.
        let defaults = carried_over(
            &active("16.4", "default.postgres16", "default:postgres-16"),
            "postgres",
            "16.4",
        );
        assert_eq!(
            (defaults.parameter_group, defaults.option_group),
            (None, None)
        );
    }
}
