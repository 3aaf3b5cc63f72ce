//! Running a state machine file locally, and reading a deploy's outcome from its execution.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};
use switchyard_asl::{Execution, HistoryEventKind, Observer, Runner, StateMachine, substitute};
use switchyard_core::policy::PolicyEngine;
use switchyard_core::records::ParameterLayout;

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

use switchyard_core::report::ExecutionOutcome;
pub use switchyard_core::report::{DeployReport, RollbackSummary};

/// A deploy's report from its execution, wherever it ran.
pub trait FromExecution {
    fn from_execution(execution: &Execution) -> Self;
}

impl FromExecution for DeployReport {
    /// The machine's own report when it succeeded (its output), with the state transitions
    /// only the history knows; otherwise one made the same way from the last state its steps
    /// saw.
    fn from_execution(execution: &Execution) -> DeployReport {
        if matches!(execution.status, switchyard_asl::ExecutionStatus::Succeeded)
            && let Some(mut report) = execution
                .output
                .as_ref()
                .and_then(DeployReport::from_output)
        {
            report.state_transitions = Some(execution.state_transitions);
            return report;
        }
        DeployReport::from_document(
            &deploy_document(execution),
            ExecutionOutcome {
                status: execution.status.as_str().to_owned(),
                execution_arn: execution.execution_arn.clone(),
                execution_name: execution.name.clone(),
                error: execution.error.clone(),
                cause: execution.cause.clone(),
                started_at: execution.start_date,
                stopped_at: execution.stop_date,
                state_transitions: Some(execution.state_transitions),
            },
        )
    }
}

/// The deploy's own document as its last step saw it: the input of its `Report` state when it
/// got that far (the machine's output is then the report), else [`final_document`].
pub fn deploy_document(execution: &Execution) -> Value {
    execution
        .history
        .iter()
        .rev()
        .find_map(|event| match &event.kind {
            HistoryEventKind::StateEntered { name, input, .. } if name == "Report" => {
                Some(input.clone())
            }
            _ => None,
        })
        .unwrap_or_else(|| final_document(execution))
}
