//! Running a state machine file locally, and reading a deploy's outcome from its execution.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use serde_json::{Value, json};
use switchyard_asl::{Execution, HistoryEventKind, Observer, Runner, StateMachine, substitute};
use switchyard_core::policy::PolicyEngine;
use switchyard_core::records::ParameterLayout;
use switchyard_core::state::DeployState;

use crate::backend::{Backend, StepInvoker};

/// The deploy machine, relative to the repository root.
pub const DEPLOY_MACHINE: &str = "statemachines/deploy.asl.json";
/// The orphan sweep, relative to the repository root.
pub const SWEEP_MACHINE: &str = "statemachines/sweep-orphans.asl.json";
/// The fleet rollout, relative to the repository root.
pub const FLEET_MACHINE: &str = "statemachines/fleet.asl.json";

/// The project's machines by the name their deployed ARN ends with locally
/// (`...:stateMachine:switchyard-deploy`), and the `${...}` placeholder other machines name
/// them by.
pub const MACHINES: [(&str, &str, &str); 3] = [
    ("switchyard-deploy", "DeployStateMachineArn", DEPLOY_MACHINE),
    (
        "switchyard-sweep-orphans",
        "SweepStateMachineArn",
        SWEEP_MACHINE,
    ),
    ("switchyard-fleet", "FleetStateMachineArn", FLEET_MACHINE),
];

/// A machine file of the project: relative to the working directory (a checkout), else to the
/// checkout this binary was built from.
pub fn machine_path(relative: &str) -> std::path::PathBuf {
    let here = std::path::PathBuf::from(relative);
    if here.is_file() {
        here
    } else {
        crate::policy::checkout().join(relative)
    }
}

/// Where a deploy's data comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Snapshot this namespace's active database now.
    Namespace(String),
    /// Restore this existing snapshot.
    Snapshot(String),
    /// Restore the snapshot this namespace's active database came from, if the execution (when
    /// given) is still the one that put it there.
    Promotion {
        from: String,
        execution: Option<String>,
    },
    /// Keep the database: a new revision with the catalog's settings (and image, if given).
    SettingsOnly,
}

#[derive(Debug, Clone)]
pub struct DeployRequest {
    pub namespace: String,
    pub source: Source,
    pub image: Option<String>,
}

impl DeployRequest {
    /// The execution input, as CodePipeline or a schedule would send it.
    pub fn input(&self) -> Value {
        let mut input = json!({ "namespace": self.namespace });
        match &self.source {
            Source::Namespace(ns) => input["source_namespace"] = json!(ns),
            Source::Snapshot(id) => input["snapshot_id"] = json!(id),
            Source::Promotion { from, execution } => {
                input["promote_from"] = json!(from);
                if let Some(execution) = execution {
                    input["promoted_execution"] = json!(execution);
                }
            }
            Source::SettingsOnly => input["settings_only"] = json!(true),
        }
        if let Some(image) = &self.image {
            input["image"] = json!(image);
        }
        input
    }
}

/// Loads an ASL file, fills its `${...}` function ARNs for this backend, and parses it.
pub fn load_machine(path: &Path, backend: &Backend) -> anyhow::Result<StateMachine> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading state machine {}", path.display()))?;
    let text = substitute(&text, &backend.substitutions())
        .with_context(|| format!("filling placeholders of {}", path.display()))?;
    StateMachine::from_json(&text).with_context(|| format!("parsing {}", path.display()))
}

/// How much virtual time one execution may take on the embedded world. Step Functions allows a
/// year; a runaway machine here (a Wait loop to the history limit) would otherwise carry the
/// world's clock, and everything created after, months ahead. A deploy with every poll budget
/// spent takes under a day.
pub const LOCAL_MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Runs one execution of `machine` with the steps in-process against `backend`, with `policies`
/// judging each mutating step.
pub async fn run_machine(
    backend: Arc<Backend>,
    layout: &ParameterLayout,
    policies: Arc<dyn PolicyEngine>,
    machine: StateMachine,
    execution_name: &str,
    input: Value,
    observer: Option<Arc<dyn Observer>>,
) -> Execution {
    run_machine_nesting(
        backend,
        layout,
        policies,
        machine,
        execution_name,
        input,
        observer,
        None,
    )
    .await
}

/// As [`run_machine`]; the executions it starts of the project's own machines
/// (`startExecution.sync:2`, the fleet's tenants) are watched by what `nested` makes for each.
#[allow(clippy::too_many_arguments)]
pub async fn run_machine_nesting(
    backend: Arc<Backend>,
    layout: &ParameterLayout,
    policies: Arc<dyn PolicyEngine>,
    machine: StateMachine,
    execution_name: &str,
    input: Value,
    observer: Option<Arc<dyn Observer>>,
    nested: Option<Arc<crate::backend::ObserverFactory>>,
) -> Execution {
    let mut invoker = StepInvoker::new(backend.clone(), layout.clone(), policies);
    if let Some(nested) = nested {
        invoker = invoker.with_nested_observers(nested);
    }
    let invoker = Arc::new(invoker);
    let mut runner = Runner::new(machine, invoker, backend.clock());
    if backend.world().is_some() {
        runner = runner.with_max_duration(LOCAL_MAX_DURATION);
    }
    if let Some(observer) = observer {
        runner = runner.with_observer(observer);
    }
    runner.run(execution_name, input).await
}

/// The deploy document as it last stood: the output on success, else the input of the last
/// state entered (a failed execution has no output, but its Fail state saw everything).
pub fn final_document(execution: &Execution) -> Value {
    if let Some(output) = &execution.output {
        return output.clone();
    }
    execution
        .history
        .iter()
        .rev()
        .find_map(|event| match &event.kind {
            HistoryEventKind::StateEntered { input, .. } => Some(input.clone()),
            _ => None,
        })
        .unwrap_or_else(|| execution.input.clone())
}

#[derive(Debug, Clone, Serialize)]
pub struct RollbackSummary {
    pub pointer_restored: bool,
    pub service_restored: bool,
    pub deleted: Vec<String>,
    pub still_deleting: Vec<String>,
}

/// What a deploy did, for people and for scripts (`--output json`).
#[derive(Debug, Clone, Serialize)]
pub struct DeployReport {
    /// As Step Functions names it: SUCCEEDED, FAILED, TIMED_OUT, ABORTED.
    pub status: String,
    pub execution_arn: String,
    pub execution_name: String,
    pub namespace: String,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub snapshot_id: Option<String>,
    pub snapshot_taken: bool,
    pub old_db: Option<String>,
    pub new_db: Option<String>,
    pub pointer_version_before: Option<i64>,
    pub pointer_version_after: Option<i64>,
    pub service: Option<String>,
    pub service_revision_before: Option<i32>,
    pub service_revision_after: Option<i32>,
    pub deleted: Vec<String>,
    pub final_snapshots: Vec<String>,
    /// Databases the clean-up left tracked, each with why (`<db>: <reason>`), e.g. a policy
    /// refused the delete.
    pub kept: Vec<String>,
    /// Set when clean-up failed: the deploy stands, these wait for a later run.
    pub cleanup_deferred: Option<String>,
    pub rollback: Option<RollbackSummary>,
    pub duration_seconds: i64,
    pub state_transitions: u64,
}

fn revision_of(arn: &str) -> Option<i32> {
    arn.rsplit(':').next()?.parse().ok()
}

impl DeployReport {
    pub fn from_execution(execution: &Execution) -> DeployReport {
        let document = final_document(execution);
        let state: DeployState = serde_json::from_value(document.clone()).unwrap_or_default();
        let status = execution.status.as_str().to_owned();
        let previous = state.previous.as_ref();
        let cleanup = state.cleanup.clone().unwrap_or_default();
        let cleanup_deferred = document
            .get("cleanup_error")
            .and_then(|e| e.get("Cause"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        DeployReport {
            status,
            execution_arn: execution.execution_arn.clone(),
            execution_name: execution.name.clone(),
            namespace: state.namespace.clone(),
            error: execution.error.clone(),
            cause: execution.cause.clone(),
            snapshot_id: state.snapshot.as_ref().map(|s| s.snapshot_id.clone()),
            snapshot_taken: state.snapshot.as_ref().is_some_and(|s| s.taken),
            old_db: previous
                .and_then(|p| p.active.as_ref())
                .map(|a| a.db_instance_id.clone()),
            new_db: state.db.as_ref().map(|d| d.db_instance_id.clone()),
            pointer_version_before: previous.and_then(|p| p.version),
            pointer_version_after: state.swap.as_ref().map(|s| s.version),
            service: state.service.as_ref().map(|s| s.service.clone()),
            service_revision_before: state
                .service
                .as_ref()
                .and_then(|s| revision_of(&s.previous_task_definition_arn)),
            service_revision_after: state.service.as_ref().map(|s| s.revision),
            deleted: cleanup.deleted,
            final_snapshots: cleanup.final_snapshots,
            kept: cleanup.kept,
            cleanup_deferred,
            rollback: state.rollback.as_ref().map(|r| RollbackSummary {
                pointer_restored: r.pointer_restored,
                service_restored: r.service_restored,
                deleted: r.sweep.deleted.clone(),
                still_deleting: r.sweep.deleting.clone(),
            }),
            duration_seconds: (execution.stop_date - execution.start_date).num_seconds(),
            state_transitions: execution.state_transitions,
        }
    }
}
