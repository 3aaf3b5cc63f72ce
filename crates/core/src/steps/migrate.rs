//! An upgrade's own steps: the freeze before its data is snapshotted, and the migrations that
//! take the restored copy along the release catalog's path before it takes traffic.
//!
//! The migrations themselves run as ECS tasks started by the state machine
//! (`arn:aws:states:::ecs:runTask.sync`, one per hop, in order): Step Functions waits for each
//! task to stop and fails the hop on a non-zero exit. What a function does here is register the
//! task definition each hop runs: a copy of the service's (roles, logging, network mode), with
//! the release's image and migration command, pointed at the new database.

use serde_json::json;

use super::gate::{self, Gate};
use super::service::{describe_service, revision_change, service_facts};
use super::{Env, made_by};
use crate::error::StepError;
use crate::policy::PolicyStep;
use crate::ports::tag;
use crate::records::ActivePointer;
use crate::state::{DeployState, FreezeReport, MigrationHop, MigrationRun};

/// The tag naming the release a migration task definition migrates to.
pub const MIGRATION_TAG: &str = "switchyard:migration";

/// How many polls the freeze waits for the tasks to stop (about half an hour with the backoff)
/// before it gives up and the rollback thaws the service: the tenant is down meanwhile.
pub const FREEZE_POLLS: u32 = 33;

/// The suffix of the task definition family a namespace's migrations run in.
pub const MIGRATION_FAMILY_SUFFIX: &str = "-migrate";

/// The upgrade's freeze, polled: the service scaled to zero, ready once no task runs, so that
/// the snapshot taken next holds every write. Judged as a change of the service
/// (`deploy-service`): the change window must be open when it starts.
pub async fn freeze_service(env: Env<'_>, state: &DeployState) -> Result<FreezeReport, StepError> {
    let ns = state.namespace()?;
    if state.upgrade_to.is_none() {
        return Err(StepError::invalid(
            "only an upgrade (upgrade_to) freezes the service",
        ));
    }
    let settings = env.records().settings(&ns).await?;
    let planned = state
        .preflight
        .as_ref()
        .and_then(|p| p.service_desired_count)
        .ok_or_else(|| {
            StepError::invalid(
                "deploy state has no `preflight.service_desired_count`: the preflight step must run first",
            )
        })?;
    let earlier = state
        .freeze
        .as_ref()
        .map(|f| f.poll.clone())
        .unwrap_or_default();
    let mut service = describe_service(env, &settings.cluster, &settings.service).await?;
    // The count to give back: what the service had when the freeze first found it running (it
    // may have been scaled since Preflight read it), else what an earlier poll recorded.
    let before = match (&state.freeze, service.desired_count) {
        (_, count) if count != 0 => count,
        (Some(earlier), _) => earlier.desired_count_before,
        (None, _) => planned,
    };
    if service.desired_count != 0 {
        let gate = Gate::load(env, &ns).await?;
        if !gate.is_empty() {
            let current = env
                .aws
                .describe_task_definition(&service.task_definition_arn)
                .await?;
            let mut facts = gate::deploy_facts(PolicyStep::DeployService, state)?;
            // As Preflight judged it: the version the tenant's data holds now.
            facts.current_version = state
                .preflight
                .as_ref()
                .and_then(|p| p.schema.as_ref())
                .and_then(|schema| schema.from.clone());
            // The freeze changes the count, not the image.
            facts.service = Some(service_facts(&settings, &current, None));
            gate.check(&settings, facts).await?;
        }
        service = env
            .aws
            .set_desired_count(&settings.cluster, &settings.service, 0)
            .await?;
        tracing::warn!(namespace = %ns, desired_count_before = before, "service frozen for the upgrade");
    }
    // Frozen once no task of the service is left, stopping ones included: a task told to stop
    // still serves the connections it drains until it is STOPPED, and may write.
    let live = if service.running_count == 0 {
        env.aws
            .live_service_tasks(&settings.cluster, &settings.service)
            .await?
            .len()
    } else {
        0
    };
    let left = service
        .running_count
        .max(i32::try_from(live).unwrap_or(i32::MAX));
    let poll = if left == 0 {
        earlier.ready()
    } else {
        earlier.next_within(
            &format!("service {} to stop its {left} tasks", settings.service),
            FREEZE_POLLS,
        )?
    };
    Ok(FreezeReport {
        cluster: settings.cluster,
        service: settings.service,
        desired_count_before: before,
        running_count: left,
        poll,
    })
}

/// Registers one task definition per migrating hop of Preflight's plan, each a copy of the
/// service's with the hop's image and command and the new database's coordinates and
/// credentials, and says where the tasks run (the service's cluster, launch type and network).
pub async fn prepare_migrations(
    env: Env<'_>,
    state: &DeployState,
) -> Result<MigrationRun, StepError> {
    let ns = state.namespace()?;
    let execution = state.execution()?;
    let settings = &state.previous()?.settings;
    let schema = state
        .preflight
        .as_ref()
        .and_then(|p| p.schema.as_ref())
        .ok_or_else(|| {
            StepError::invalid(
                "deploy state has no `preflight.schema`: the preflight step plans the migrations",
            )
        })?;
    let db = state.db()?;
    let snapshot = state.snapshot()?;
    let (Some(endpoint), Some(port)) = (db.endpoint.clone(), db.port) else {
        return Err(StepError::invalid(format!(
            "database {} has no endpoint yet: migrations run once it is available",
            db.db_instance_id
        )));
    };
    // The coordinates the new database will have once the swap names it.
    let target = ActivePointer {
        db_instance_id: db.db_instance_id.clone(),
        timestamp: snapshot.timestamp,
        endpoint,
        port,
        snapshot_id: Some(snapshot.snapshot_id.clone()),
        execution_id: Some(execution.id.clone()),
        activated_at: env.now(),
        app_version: None,
        master_user_secret_arn: state
            .credentials
            .as_ref()
            .and_then(|c| c.master_user_secret_arn.clone()),
        schema_version: None,
    };

    let service = describe_service(env, &settings.cluster, &settings.service).await?;
    let network = service.network.clone().ok_or_else(|| {
        StepError::invalid(format!(
            "service {} has no awsvpc network configuration: migrations run as tasks in the service's network",
            settings.service
        ))
    })?;
    let launch_type = service.launch_type.clone().ok_or_else(|| {
        StepError::invalid(format!(
            "service {} names no launch type (a capacity provider strategy): migrations need FARGATE or EC2",
            settings.service
        ))
    })?;
    let base_arn = service.task_definition_arn.clone();
    let base = env.aws.describe_task_definition(&base_arn).await?;
    let family = format!("{}{MIGRATION_FAMILY_SUFFIX}", base.family);
    // A register whose answer was lost left its revision behind; ours are found by their tags.
    let latest = env.aws.latest_task_definition(&family).await?;

    let mut hops = Vec::new();
    for hop in schema.hops.iter().filter(|hop| hop.migrates()) {
        let version = hop.version.to_string();
        let reusable = latest.as_ref().filter(|definition| {
            made_by(&definition.tags, execution)
                && definition.tags.get(tag::DB_INSTANCE) == Some(&target.db_instance_id)
                && definition.tags.get(MIGRATION_TAG) == Some(&version)
        });
        let registered = match reusable {
            Some(definition) => definition.clone(),
            None => {
                let mut change = revision_change(
                    &base,
                    &base_arn,
                    settings,
                    &target,
                    Some(&hop.image),
                    ns.as_str(),
                    execution,
                )?;
                change.family = Some(family.clone());
                change.command = Some(hop.migration.clone());
                change.sole_container = true;
                change
                    .tags
                    .insert(MIGRATION_TAG.to_owned(), version.clone());
                change.tags.remove(tag::PREVIOUS_TASK_DEFINITION);
                env.aws.register_revision(&base_arn, &change).await?
            }
        };
        let task_definition_arn = registered.arn.clone().ok_or_else(|| {
            StepError::Internal(format!(
                "ecs registered a revision of {family} without an arn"
            ))
        })?;
        hops.push(MigrationHop {
            client_token: client_token(execution, &version),
            version,
            task_definition_arn,
            command: hop.migration.clone(),
        });
    }
    let mut awsvpc = json!({
        "Subnets": network.subnets,
        "SecurityGroups": network.security_groups,
    });
    if let Some(assign) = &network.assign_public_ip {
        awsvpc["AssignPublicIp"] = json!(assign);
    }
    // ECS's startedBy: up to 128 letters, digits, `-`, `/` and `_`; the execution's name.
    let name = execution.id.rsplit(':').next().unwrap_or(&execution.id);
    let started_by: String = format!("switchyard/{name}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-/_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(128)
        .collect();
    tracing::info!(namespace = %ns, hops = hops.len(), "migrations prepared");
    Ok(MigrationRun {
        db_instance_id: target.db_instance_id,
        hops,
        run: json!({
            "Cluster": settings.cluster,
            "LaunchType": launch_type,
            "NetworkConfiguration": {"AwsvpcConfiguration": awsvpc},
            "StartedBy": started_by,
        }),
    })
}

/// A RunTask `clientToken` (at most 64 characters) for one hop of one execution: the same on
/// every retry, another for another run under a reused name (its start differs).
fn client_token(execution: &crate::state::ExecutionInfo, version: &str) -> String {
    // FNV-1a: stable across processes and releases, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in execution
        .id
        .bytes()
        .chain(execution.start_tag().bytes())
        .chain(version.bytes())
    {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    let token = format!("switchyard-{hash:016x}-{version}");
    token.chars().take(64).collect()
}
