//! What a deploy did, for people and for scripts: the deploy machine's output on success (the
//! `report` step) and what `switchyard deploy --output json` prints, one document.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::state::DeployState;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackSummary {
    pub pointer_restored: bool,
    pub service_restored: bool,
    pub deleted: Vec<String>,
    pub still_deleting: Vec<String>,
}

/// What a deploy did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Known to whoever reads the execution's history, not to a step inside it: the machine's
    /// own report leaves it out, `switchyard deploy` fills it in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_transitions: Option<u64>,
}

/// The execution a report is about, as its reader knows it.
#[derive(Debug, Clone)]
pub struct ExecutionOutcome {
    pub status: String,
    pub execution_arn: String,
    pub execution_name: String,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub started_at: DateTime<Utc>,
    pub stopped_at: DateTime<Utc>,
    pub state_transitions: Option<u64>,
}

fn revision_of(arn: &str) -> Option<i32> {
    arn.rsplit(':').next()?.parse().ok()
}

impl DeployReport {
    /// The report of a deploy whose last document (the state its last step saw) is `document`.
    pub fn from_document(document: &Value, outcome: ExecutionOutcome) -> DeployReport {
        let state: DeployState = serde_json::from_value(document.clone()).unwrap_or_default();
        let previous = state.previous.as_ref();
        let cleanup = state.cleanup.clone().unwrap_or_default();
        let cleanup_deferred = document
            .get("cleanup_error")
            .and_then(|e| e.get("Cause"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        DeployReport {
            status: outcome.status,
            execution_arn: outcome.execution_arn,
            execution_name: outcome.execution_name,
            namespace: state.namespace.clone(),
            error: outcome.error,
            cause: outcome.cause,
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
            duration_seconds: (outcome.stopped_at - outcome.started_at).num_seconds(),
            state_transitions: outcome.state_transitions,
        }
    }

    /// A report read back from a succeeded execution's output: the machine's own, when the
    /// output is one.
    pub fn from_output(output: &Value) -> Option<DeployReport> {
        let looks_like_one =
            output.get("execution_arn").is_some() && output.get("status").is_some();
        looks_like_one
            .then(|| serde_json::from_value(output.clone()).ok())
            .flatten()
    }
}

/// The `report` step, the deploy machine's last: the report of the deploy that just succeeded,
/// as its output. `document` is the deploy's state as the step receives it.
pub fn of_succeeded_deploy(
    document: &Value,
    now: DateTime<Utc>,
) -> Result<DeployReport, crate::error::StepError> {
    let state: DeployState = serde_json::from_value(document.clone()).map_err(|err| {
        crate::error::StepError::invalid(format!("malformed event for report: {err}"))
    })?;
    let execution = state.execution()?;
    let name = execution
        .id
        .rsplit(':')
        .next()
        .unwrap_or(&execution.id)
        .to_owned();
    Ok(DeployReport::from_document(
        document,
        ExecutionOutcome {
            status: "SUCCEEDED".into(),
            execution_arn: execution.id.clone(),
            execution_name: name,
            error: None,
            cause: None,
            started_at: execution.started_at,
            stopped_at: now,
            state_transitions: None,
        },
    ))
}
