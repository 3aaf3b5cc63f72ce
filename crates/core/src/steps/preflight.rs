//! Preflight: right after the lock, every bound policy is asked each question the request
//! already answers (the snapshot to take or restore, the database to create, the pointer to
//! move, the image to roll out and the version it brings), before anything is created. A "no"
//! here costs seconds, creates nothing and moves no pointer; a "no" at DeployService costs a
//! snapshot, a restore, a swap and a rollback. The per-step gates stay: facts change while a
//! deploy runs.
//!
//! [`plan_deploy`] is the read-only half, shared with `switchyard deploy --dry-run`: what the
//! deploy would do and every plugin's verdict, changing nothing.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::Env;
use super::gate::{self, Gate, Judgement, PolicyVerdict};
use super::service::{describe_service, with_image};
use super::snapshot::{
    DataSource, checked_source, data_source, given_snapshot, promoted_snapshot_id, source_facts,
};
use crate::error::{Denial, StepError};
use crate::names::{self, Namespace, Timestamp};
use crate::policy::{DatabaseFacts, PolicyContext, PolicyStep, ServiceFacts, SnapshotFacts};
use crate::ports::DbGroupKind;
use crate::records::{ActivePointer, NamespaceSettings};
use crate::state::DeployState;
use crate::upgrades::{self, recorded_schema};
use switchyard_releases::Hop;

/// How long a deploy is expected to take when the tenant's settings do not say
/// (`expected_deploy_minutes`): a snapshot and a restore of a small database, and a rollout.
pub const DEFAULT_EXPECTED_MINUTES: u32 = 45;

/// What a deploy is about to do, as its request and the records say before it starts, and what
/// every bound policy says about each step of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployPlan {
    pub namespace: String,
    /// The namespace whose active database is snapshotted; `None` for a given snapshot.
    pub source_namespace: Option<String>,
    /// The source's active database, snapshotted by step 1.
    pub source_db_instance_id: Option<String>,
    /// The snapshot step 1 takes or is given; `None` when the deploy keeps the database.
    pub snapshot_id: Option<String>,
    /// Whether step 1 takes the snapshot (else it restores the given one).
    pub snapshot_taken: bool,
    /// The deploy keeps the database: only a new revision with the settings (and image).
    pub settings_only: bool,
    /// The database the service runs on once the deploy is through: the one step 3 restores
    /// beside the active one, or the active one itself when the deploy keeps it.
    pub new_db_instance_id: String,
    pub instance_class: String,
    /// The database the pointer names now; deleted by step 6 once the new one serves.
    pub active_db_instance_id: Option<String>,
    pub cluster: String,
    pub service: String,
    pub current_image: Option<String>,
    pub new_image: Option<String>,
    pub current_version: Option<String>,
    pub target_version: Option<String>,
    /// When the steps that move traffic are expected to run (the change window's question).
    pub expected_swap_at: DateTime<Utc>,
    /// The data's schema version before and after, and the migrations in between.
    pub schema: SchemaPlan,
    pub service_desired_count: i32,
    pub verdicts: Vec<PolicyVerdict>,
}

impl DeployPlan {
    /// Whether every enforced policy lets the deploy start.
    pub fn allowed(&self) -> bool {
        !self.verdicts.iter().any(|v| v.answer.stops())
    }
}

/// The data's schema and what the deploy does to it: the versions as the records say, and the
/// migrations the release catalog plans between them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SchemaPlan {
    /// The schema version of the data the deploy restores (as its source's pointer records
    /// it); `None` when unknown (a given snapshot, or records from before versions were kept).
    pub from: Option<String>,
    /// The schema version once the deploy is through: the target when migrations run.
    pub to: Option<String>,
    /// The upgrade's image, from the release catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `1.3.2 → 1.3.3 → 1.4.0 → 2.0.0 → 2.0.1`, when a path was planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Every hop of the path, in order; those with a migration command run it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hops: Vec<Hop>,
    /// An upgrade's expected downtime: the service is at zero from the freeze to the rollout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_downtime_minutes: Option<u32>,
}

impl SchemaPlan {
    pub fn migrates(&self) -> bool {
        self.hops.iter().any(Hop::migrates)
    }
}

/// What the Preflight state adds to the deploy document: kept small (the plan's verdicts are in
/// the logs, one line per plugin and step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreflightReport {
    pub new_db_instance_id: String,
    pub target_version: Option<String>,
    /// Whether the `Migrate` stage runs (`schema.hops` is not empty): the machine's Choice.
    #[serde(default)]
    pub migrate: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<SchemaPlan>,
    /// The service's desired count when the deploy started: what an upgrade's thaw restores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_desired_count: Option<i32>,
    /// How many plugin answers were asked for.
    pub checked: usize,
    /// Each warning, and each "no" of a binding in warn or audit mode, as `plugin: text`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The Preflight state: [`plan_deploy`], then any enforced "no" fails the deploy before step 1.
pub async fn preflight(env: Env<'_>, state: &DeployState) -> Result<PreflightReport, StepError> {
    let ns = state.namespace()?;
    let (plan, judgements) = plan_and_judge(env, state).await?;
    let mut failed = None;
    let mut denials: Vec<Denial> = Vec::new();
    let mut first_denied = None;
    for judgement in judgements {
        if let Some(failure) = judgement.failed {
            failed.get_or_insert((judgement.step, failure));
        }
        if !judgement.denials.is_empty() {
            first_denied.get_or_insert(judgement.step);
        }
        for denial in judgement.denials {
            let reasons = denial
                .reasons
                .iter()
                .map(|reason| format!("at {}: {reason}", judgement.step));
            match denials.iter_mut().find(|d| d.plugin == denial.plugin) {
                Some(known) => known.reasons.extend(reasons),
                None => denials.push(Denial {
                    plugin: denial.plugin,
                    reasons: reasons.collect(),
                }),
            }
        }
    }
    if let Some((step, failure)) = failed {
        return Err(StepError::policy_failed(step, ns.as_str(), &failure));
    }
    if let Some(step) = first_denied {
        return Err(StepError::PolicyDenied {
            step,
            namespace: ns.to_string(),
            denials,
        });
    }
    let warnings = plan
        .verdicts
        .iter()
        .flat_map(|v| {
            let plugin = v.plugin.clone();
            let would = (v.answer == gate::Answer::WouldDeny).then(|| {
                format!(
                    "would deny at {} ({} mode): {}",
                    v.step,
                    v.mode.as_str(),
                    v.reasons.join("; ")
                )
            });
            v.warnings
                .iter()
                .cloned()
                .chain(would)
                .map(move |text| format!("{plugin}: {text}"))
        })
        .collect();
    tracing::info!(namespace = %ns, checked = plan.verdicts.len(), "preflight passed");
    Ok(PreflightReport {
        migrate: plan.schema.migrates(),
        service_desired_count: Some(plan.service_desired_count),
        schema: Some(plan.schema),
        checked: plan.verdicts.len(),
        new_db_instance_id: plan.new_db_instance_id,
        target_version: plan.target_version,
        warnings,
    })
}

/// What the deploy of `state` would do and every bound policy's verdict on each step, from
/// reads alone. A request the steps would refuse (an unknown namespace, a source that is not
/// the tenant's, a missing snapshot, service or database) is refused here with the same error.
pub async fn plan_deploy(env: Env<'_>, state: &DeployState) -> Result<DeployPlan, StepError> {
    Ok(plan_and_judge(env, state).await?.0)
}

/// The source of a deploy's data, as far as the request and the records say.
struct PlannedSnapshot {
    facts: SnapshotFacts,
    timestamp: Timestamp,
    source_db: Option<DatabaseFacts>,
    /// The source namespace's pointer: what it records of the data's schema.
    source_pointer: Option<ActivePointer>,
}

async fn planned_snapshot(
    env: Env<'_>,
    state: &DeployState,
    target: &Namespace,
    settings: &NamespaceSettings,
) -> Result<PlannedSnapshot, StepError> {
    match data_source(state)? {
        DataSource::Namespace(source) => {
            let (source, pointer) =
                checked_source(env, target, settings, source, state.upgrade_to.is_some()).await?;
            // Step 1 names the snapshot with the execution's start time.
            let timestamp = Timestamp::from_datetime(state.execution()?.started_at);
            let snapshot_id = names::snapshot_id(&source, timestamp)?;
            let (source_db, facts) =
                source_facts(env, &source, &pointer, &snapshot_id, timestamp).await?;
            Ok(PlannedSnapshot {
                facts,
                timestamp,
                source_db: Some(source_db),
                source_pointer: Some(pointer),
            })
        }
        DataSource::Promotion { from, execution } => {
            let snapshot_id = promoted_snapshot_id(env, target, from, execution).await?;
            let snapshot = given_snapshot(env, target, &snapshot_id).await?;
            Ok(PlannedSnapshot {
                facts: gate::snapshot_facts(&snapshot),
                timestamp: snapshot.timestamp,
                source_db: None,
                source_pointer: None,
            })
        }
        DataSource::Snapshot(snapshot_id) => {
            let snapshot = given_snapshot(env, target, snapshot_id).await?;
            Ok(PlannedSnapshot {
                facts: gate::snapshot_facts(&snapshot),
                timestamp: snapshot.timestamp,
                source_db: None,
                source_pointer: None,
            })
        }
    }
}

/// The groups a restore will name must exist: found here, before the snapshot and the restore,
/// not by `create-db` after them. The active database's own parameter group needs no check (a
/// live database uses it); one the settings name does.
async fn check_groups_exist(
    env: Env<'_>,
    ns: &Namespace,
    settings: &NamespaceSettings,
) -> Result<(), StepError> {
    let asked = [
        (
            DbGroupKind::Subnet,
            settings.db_subnet_group.as_deref(),
            "db_subnet_group",
        ),
        (
            DbGroupKind::Parameter,
            settings.database.parameter_group.as_deref(),
            "database.parameter_group",
        ),
    ];
    for (kind, name, setting) in asked {
        if let Some(name) = name
            && !env.aws.db_group_exists(kind, name).await?
        {
            let kind = kind.resource_kind();
            return Err(StepError::invalid(format!(
                "{kind} {name} does not exist: the settings of {ns} name it ({setting}); create it, or change it with `switchyard tenant set {ns} {setting}=...`"
            )));
        }
    }
    Ok(())
}

async fn plan_and_judge(
    env: Env<'_>,
    state: &DeployState,
) -> Result<(DeployPlan, Vec<Judgement>), StepError> {
    let ns = state.namespace()?;
    let records = env.records();
    let settings = records.settings(&ns).await?;
    let active = records.pointer(&ns).await?.map(|(pointer, _)| pointer);
    let snapshot = if state.settings_only {
        if state.source_namespace.is_some()
            || state.snapshot_id.is_some()
            || state.promote_from.is_some()
        {
            return Err(StepError::invalid(
                "a settings-only deploy keeps the database: give no source_namespace, snapshot_id or promote_from",
            ));
        }
        None
    } else {
        let snapshot = planned_snapshot(env, state, &ns, &settings).await?;
        check_groups_exist(env, &ns, &settings).await?;
        Some(snapshot)
    };
    let new_db_instance_id = match (&snapshot, &active) {
        (Some(snapshot), _) => names::db_instance_id(&ns, snapshot.timestamp)?,
        (None, Some(active)) => active.db_instance_id.clone(),
        (None, None) => {
            return Err(StepError::invalid(format!(
                "namespace {ns} has no active database: a settings-only deploy keeps the database, so there must be one"
            )));
        }
    };
    if let Some(snapshot) = &snapshot
        && active
            .as_ref()
            .is_some_and(|active| active.db_instance_id == new_db_instance_id)
    {
        return Err(StepError::invalid(format!(
            "snapshot {} is already active in {ns} as {new_db_instance_id}",
            snapshot.facts.id
        )));
    }
    let service = describe_service(env, &settings.cluster, &settings.service).await?;
    let definition = env
        .aws
        .describe_task_definition(&service.task_definition_arn)
        .await?;
    let current_image = definition
        .containers
        .iter()
        .find(|c| c.name == settings.container)
        .map(|c| c.image.clone());
    let Some(current_image) = current_image else {
        return Err(StepError::invalid(format!(
            "task definition {} has no container {:?} (the namespace's settings name it)",
            service.task_definition_arn, settings.container
        )));
    };
    let current_version = active.as_ref().and_then(|a| a.app_version.clone());
    let schema = schema_plan(
        env,
        state,
        &ns,
        &settings,
        active.as_ref(),
        snapshot.as_ref(),
    )
    .await?;
    let new_image = state
        .image
        .as_deref()
        .or(schema.image.as_deref())
        .map(|image| with_image(&current_image, image))
        .transpose()?;

    let target_db = match &snapshot {
        Some(snapshot) => DatabaseFacts {
            id: new_db_instance_id.clone(),
            instance_class: settings.db_instance_class.clone(),
            allocated_storage_gib: snapshot.facts.allocated_storage_gib,
            engine: snapshot.facts.engine.clone(),
            engine_version: snapshot.facts.engine_version.clone(),
            ..DatabaseFacts::default()
        },
        None => gate::database_facts(env, &new_db_instance_id).await?,
    };
    let now = env.now();
    let minutes = settings
        .expected_deploy_minutes
        .unwrap_or(DEFAULT_EXPECTED_MINUTES);
    let minutes = minutes.saturating_add(migration_minutes(&schema));
    // A deploy that keeps the database rolls the service out at once.
    let expected_swap_at = match snapshot {
        Some(_) => now + Duration::minutes(i64::from(minutes)),
        None => now,
    };
    let upgrade_target = state.upgrade_to.clone();
    let facts = |step: PolicyStep| -> Result<PolicyContext, StepError> {
        let mut facts = gate::deploy_facts(step, state)?;
        facts.current_version = current_version.clone();
        if upgrade_target.is_some() {
            facts.target_version = upgrade_target.clone();
        }
        Ok(facts)
    };
    // Each step as it will be asked, at the time it is expected to run: the snapshot and the
    // restore now, the swap and the rollout once the restore is through.
    let mut questions = Vec::new();
    if let Some(snapshot) = &snapshot {
        if let Some(source_db) = &snapshot.source_db {
            let mut snapshot_step = facts(PolicyStep::Snapshot)?;
            snapshot_step.snapshot = Some(snapshot.facts.clone());
            snapshot_step.source_db = Some(source_db.clone());
            questions.push((snapshot_step, now));
        }
        let mut create = facts(PolicyStep::CreateDatabase)?;
        create.snapshot = Some(snapshot.facts.clone());
        create.target_db = Some(target_db.clone());
        questions.push((create, now));
        let mut swap = facts(PolicyStep::SwapPointer)?;
        swap.current_pointer = active.as_ref().map(|a| a.db_instance_id.clone());
        swap.new_pointer = Some(new_db_instance_id.clone());
        swap.target_db = Some(target_db.clone());
        questions.push((swap, expected_swap_at));
    }
    let mut rollout = facts(PolicyStep::DeployService)?;
    rollout.service = Some(ServiceFacts {
        cluster: settings.cluster.clone(),
        service: settings.service.clone(),
        container: settings.container.clone(),
        new_image: new_image.clone().unwrap_or_else(|| current_image.clone()),
        current_image: current_image.clone(),
    });
    rollout.target_db = Some(target_db);
    if state.upgrade_to.is_some() {
        // The freeze changes the service now: the window must be open at both ends of the
        // downtime.
        questions.push((rollout.clone(), now));
    }
    questions.push((rollout, expected_swap_at));

    let gate = Gate::load(env, &ns).await?;
    let mut judgements = Vec::new();
    for (question, at) in questions {
        judgements.push(gate.judge(&settings, question, at).await?);
    }
    let target_version = match &state.upgrade_to {
        Some(version) => Some(version.clone()),
        None => gate::target_version_of(
            state.image.as_deref(),
            current_version.clone().or_else(|| settings.version.clone()),
        ),
    };
    let plan = DeployPlan {
        namespace: ns.to_string(),
        source_namespace: state.source_namespace.clone(),
        source_db_instance_id: snapshot
            .as_ref()
            .and_then(|s| s.source_db.as_ref())
            .map(|db| db.id.clone()),
        snapshot_id: snapshot.as_ref().map(|s| s.facts.id.clone()),
        snapshot_taken: snapshot
            .as_ref()
            .is_some_and(|s| s.facts.taken_by_this_execution),
        settings_only: state.settings_only,
        new_db_instance_id,
        instance_class: settings.db_instance_class.clone(),
        active_db_instance_id: active.as_ref().map(|a| a.db_instance_id.clone()),
        cluster: settings.cluster.clone(),
        service: settings.service.clone(),
        current_image: Some(current_image),
        new_image,
        current_version: current_version.or_else(|| settings.version.clone()),
        target_version,
        expected_swap_at,
        schema,
        service_desired_count: service.desired_count,
        verdicts: judgements
            .iter()
            .flat_map(|j| j.verdicts.iter().cloned())
            .collect(),
    };
    Ok((plan, judgements))
}

fn migration_minutes(schema: &SchemaPlan) -> u32 {
    schema
        .hops
        .iter()
        .filter(|hop| hop.migrates())
        .map(|hop| hop.migration_minutes)
        .sum()
}

/// The data's schema before and after the deploy, and the release catalog's path between.
///
/// An upgrade (`upgrade_to`) must have one: the catalog, both versions in it, a later target.
/// Any other deploy that restores data migrates it when the catalog knows both the data's
/// schema and the version the service will run, and the latter is later: an application is
/// never rolled onto a schema older than its own.
async fn schema_plan(
    env: Env<'_>,
    state: &DeployState,
    ns: &Namespace,
    settings: &NamespaceSettings,
    active: Option<&ActivePointer>,
    snapshot: Option<&PlannedSnapshot>,
) -> Result<SchemaPlan, StepError> {
    let catalog = env.records().release_catalog().await?.map(|(c, _)| c);
    let Some(snapshot) = snapshot else {
        // Keeping the database keeps its schema: a new image that needs migrations on it is
        // an upgrade's job, not a settings deploy's.
        let from = active.and_then(recorded_schema);
        let needs = match (
            &catalog,
            &from,
            state.image.as_deref().and_then(gate::image_tag),
        ) {
            (Some(catalog), Some(from), Some(to)) => catalog
                .plan(from, &to)
                .ok()
                .filter(|plan| plan.migrations().next().is_some()),
            _ => None,
        };
        if let Some(plan) = needs {
            return Err(StepError::NoUpgradePath {
                namespace: ns.to_string(),
                reason: format!(
                    "rolling {} onto its database, whose schema is {}, needs the migrations of {}: `switchyard upgrade {ns} --to {}` runs them",
                    plan.to,
                    plan.from,
                    plan.describe(),
                    plan.to
                ),
            });
        }
        return Ok(SchemaPlan {
            to: from.clone(),
            from,
            ..SchemaPlan::default()
        });
    };
    if let Some(target) = &state.upgrade_to {
        // The data is the tenant's own: its pointer says what it holds.
        let upgrade = upgrades::plan_for(ns, settings, active, catalog.as_ref(), target)?;
        if upgrade.plan.hops.is_empty() {
            return Err(StepError::NoUpgradePath {
                namespace: ns.to_string(),
                reason: format!("{ns} runs {target} already"),
            });
        }
        let image = catalog
            .as_ref()
            .and_then(|c| c.find(target).ok())
            .map(|r| r.image.clone());
        return Ok(SchemaPlan {
            path: Some(upgrade.plan.describe()),
            from: Some(upgrade.from),
            to: Some(upgrade.to),
            image,
            hops: upgrade.plan.hops,
            expected_downtime_minutes: Some(upgrade.expected_downtime_minutes),
        });
    }
    let from = snapshot.source_pointer.as_ref().and_then(recorded_schema);
    // The version the service runs once through: the new image's tag, or the one it runs.
    let target = match state.image.as_deref() {
        Some(image) => gate::image_tag(image),
        None => active
            .and_then(|a| a.app_version.clone())
            .or_else(|| settings.version.clone()),
    };
    let plan = match (&catalog, &from, &target) {
        (Some(catalog), Some(from), Some(target)) => catalog
            .plan(from, target)
            .ok()
            .filter(|plan| !plan.hops.is_empty()),
        _ => None,
    };
    Ok(match plan {
        Some(plan) => SchemaPlan {
            from,
            to: Some(plan.to.to_string()),
            image: None,
            path: Some(plan.describe()),
            hops: plan.hops,
            expected_downtime_minutes: None,
        },
        None => SchemaPlan {
            to: from.clone(),
            from,
            ..SchemaPlan::default()
        },
    })
}
