//! What an execution leaves behind: its status, output and event history.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How an execution ended, spelled as Step Functions spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    /// Reached a Succeed state or an End.
    Succeeded,
    /// Failed with an error (see `Execution::error`).
    Failed,
    /// Ran past the machine's `TimeoutSeconds`.
    TimedOut,
    /// Stopped from outside; this interpreter never aborts, but the status exists in AWS.
    Aborted,
}

impl ExecutionStatus {
    /// The name Step Functions gives the status: `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ExecutionStatus::Succeeded => "SUCCEEDED",
            ExecutionStatus::Failed => "FAILED",
            ExecutionStatus::TimedOut => "TIMED_OUT",
            ExecutionStatus::Aborted => "ABORTED",
        }
    }
}

/// One entry of an execution's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEvent {
    /// 1-based, in order of occurrence.
    pub id: u64,
    /// The execution clock's time when the event happened.
    pub timestamp: DateTime<Utc>,
    /// What happened.
    #[serde(flatten)]
    pub kind: HistoryEventKind,
}

/// History event types, mirroring the AWS Step Functions ones (`TaskStateEntered` is
/// `StateEntered { state_type: "Task", .. }`), plus `RetryScheduled` and `CatchMatched`, which
/// AWS leaves implicit. Serialized with a `type` tag.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum HistoryEventKind {
    /// The execution began with this input.
    ExecutionStarted {
        /// The execution input.
        input: Value,
    },
    /// The execution ended successfully.
    ExecutionSucceeded {
        /// The execution output.
        output: Value,
    },
    /// The execution failed. A Fail state may give neither an error nor a cause.
    ExecutionFailed {
        /// The error name.
        error: Option<String>,
        /// The cause.
        cause: Option<String>,
    },
    /// The execution ran past the machine's TimeoutSeconds (`States.Timeout`).
    ExecutionTimedOut {
        /// Always `States.Timeout`.
        error: Option<String>,
        /// Which limit was passed.
        cause: Option<String>,
    },
    /// A state was entered with this raw input.
    StateEntered {
        /// "Task", "Choice", "Wait", "Pass", "Succeed", "Fail", "Parallel" or "Map".
        state_type: String,
        /// The state's name.
        name: String,
        /// The state's raw input (before InputPath).
        input: Value,
    },
    /// A state finished (also after a Catch) with this output.
    StateExited {
        /// The state's name.
        name: String,
        /// The state's output.
        output: Value,
    },
    /// A Task is about to be invoked.
    TaskScheduled {
        /// The Task's Resource.
        resource: String,
        /// The effective input after InputPath and Parameters.
        parameters: Value,
    },
    /// The invoker returned a result.
    TaskSucceeded {
        /// The Task's Resource.
        resource: String,
        /// The raw result, before ResultSelector.
        output: Value,
    },
    /// The invoker returned a failure.
    TaskFailed {
        /// The Task's Resource.
        resource: String,
        /// The error name, verbatim.
        error: String,
        /// The cause.
        cause: String,
    },
    /// A retrier matched; the state runs again after `delay_seconds`.
    RetryScheduled {
        /// The state retried.
        state: String,
        /// The error that was matched.
        error: String,
        /// How many retries of this state this makes (1 for the first); the attempt about to
        /// run is number `attempt + 1`.
        attempt: u32,
        /// The back-off, after MaxDelaySeconds and jitter.
        delay_seconds: f64,
    },
    /// A catcher matched; the execution goes on at `next`.
    CatchMatched {
        /// The state whose error was caught.
        state: String,
        /// The error caught.
        error: String,
        /// The catcher's Next.
        next: String,
    },
    /// A Wait state begins waiting.
    WaitStarted {
        /// The Wait state's name.
        name: String,
        /// How long it waits.
        seconds: f64,
    },
    /// A Parallel branch starts.
    ParallelBranchStarted {
        /// 0-based branch index.
        index: usize,
    },
    /// A Parallel branch finished.
    ParallelBranchSucceeded {
        /// 0-based branch index.
        index: usize,
    },
    /// A Parallel branch failed; the Parallel state fails with its error.
    ParallelBranchFailed {
        /// 0-based branch index.
        index: usize,
    },
    /// A Map iteration starts.
    MapIterationStarted {
        /// 0-based item index.
        index: usize,
    },
    /// A Map iteration finished.
    MapIterationSucceeded {
        /// 0-based item index.
        index: usize,
    },
    /// A Map iteration failed; the Map state fails with its error.
    MapIterationFailed {
        /// 0-based item index.
        index: usize,
    },
    /// A Map in Distributed mode starts its child executions.
    MapRunStarted {
        /// How many items, one child execution each.
        items: usize,
    },
    /// Every child execution ended, the failed ones within the tolerated share.
    MapRunSucceeded {
        /// Child executions that failed (tolerated).
        failed: usize,
    },
    /// More child executions failed than tolerated.
    MapRunFailed {
        /// `States.ExceedToleratedFailureThreshold`.
        error: String,
        /// How many failed, and the first failure.
        cause: String,
    },
}

/// A finished execution.
#[derive(Debug, Clone, Serialize)]
pub struct Execution {
    /// `arn:aws:states:...:execution:<machine>:<name>`.
    pub execution_arn: String,
    /// The execution name given to `Runner::run`.
    pub name: String,
    /// How it ended.
    pub status: ExecutionStatus,
    /// The execution input.
    pub input: Value,
    /// The output, on success.
    pub output: Option<Value>,
    /// The error name, on failure or time-out.
    pub error: Option<String>,
    /// The cause, on failure or time-out.
    pub cause: Option<String>,
    /// When it started, on the runner's clock.
    pub start_date: DateTime<Utc>,
    /// When it stopped, on the runner's clock.
    pub stop_date: DateTime<Utc>,
    /// Every event, in order.
    pub history: Vec<HistoryEvent>,
    /// State transitions as AWS bills them: one per state entered, one per retry.
    pub state_transitions: u64,
}

impl Execution {
    /// The names of the states entered, in order, repeats and nested states included.
    pub fn states_entered(&self) -> Vec<String> {
        self.history
            .iter()
            .filter_map(|e| match &e.kind {
                HistoryEventKind::StateEntered { name, .. } => Some(name.clone()),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statuses_serialize_like_aws() {
        let names: Vec<Value> = [
            ExecutionStatus::Succeeded,
            ExecutionStatus::Failed,
            ExecutionStatus::TimedOut,
            ExecutionStatus::Aborted,
        ]
        .iter()
        .map(|s| serde_json::to_value(s).unwrap())
        .collect();
        assert_eq!(
            names,
            [
                json!("SUCCEEDED"),
                json!("FAILED"),
                json!("TIMED_OUT"),
                json!("ABORTED")
            ]
        );
    }

    #[test]
    fn events_serialize_flat_with_a_type_tag() {
        let event = HistoryEvent {
            id: 3,
            timestamp: DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            kind: HistoryEventKind::StateEntered {
                state_type: "Task".into(),
                name: "A".into(),
                input: json!({"x": 1}),
            },
        };
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            json!({"id": 3, "timestamp": "2024-01-01T00:00:00Z", "type": "StateEntered",
                   "state_type": "Task", "name": "A", "input": {"x": 1}})
        );
    }
}
