//! `--remote`: the same command starts a real Step Functions execution of the deployed machine
//! and shows its progress from the execution history, with the same lines and summary as a
//! local run.

use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use serde_json::Value;
use switchyard_asl::{Execution, ExecutionStatus, HistoryEvent, HistoryEventKind, Observer};
use switchyard_core::ports::{ExecutionEvent, Executions};

/// The machine to start: an ARN as given; a name, looked up; nothing, the one machine whose
/// name SAM derived from `logical_id` (`DeployStateMachine-AbC123`).
pub async fn resolve_state_machine(
    executions: &dyn Executions,
    given: Option<&str>,
    logical_id: &str,
) -> anyhow::Result<String> {
    if let Some(arn) = given.filter(|g| g.starts_with("arn:")) {
        return Ok(arn.to_owned());
    }
    let machines = executions
        .list_state_machines()
        .await
        .context("listing state machines")?;
    let matching: Vec<_> = match given {
        Some(name) => machines.iter().filter(|m| m.name == name).collect(),
        None => machines
            .iter()
            .filter(|m| {
                m.name == logical_id
                    || m.name
                        .strip_prefix(logical_id)
                        .is_some_and(|rest| rest.starts_with('-'))
            })
            .collect(),
    };
    match matching.as_slice() {
        [one] => Ok(one.arn.clone()),
        [] => bail!(
            "no state machine {} in this account and region: give --state-machine ARN (the stack's {logical_id}Arn output)",
            given.map_or_else(|| format!("named {logical_id}-*"), |n| format!("{n:?}"))
        ),
        several => bail!(
            "{} state machines match {}: {}; give --state-machine ARN",
            several.len(),
            given.unwrap_or(logical_id),
            several
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn json_or_text(text: Option<&str>) -> Value {
    match text {
        None => Value::Null,
        Some(text) => serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.into())),
    }
}

/// The local runner's event for one of Step Functions', where progress has a use for it.
pub fn to_history_event(event: &ExecutionEvent) -> Option<HistoryEvent> {
    let kind = match event.event_type.as_str() {
        "ExecutionStarted" => HistoryEventKind::ExecutionStarted {
            input: json_or_text(event.input.as_deref()),
        },
        "ExecutionSucceeded" => HistoryEventKind::ExecutionSucceeded {
            output: json_or_text(event.output.as_deref()),
        },
        "ExecutionFailed" | "ExecutionAborted" => HistoryEventKind::ExecutionFailed {
            error: event.error.clone(),
            cause: event.cause.clone(),
        },
        "ExecutionTimedOut" => HistoryEventKind::ExecutionTimedOut {
            error: event.error.clone(),
            cause: event.cause.clone(),
        },
        "LambdaFunctionFailed" | "TaskFailed" => HistoryEventKind::TaskFailed {
            resource: String::new(),
            error: event.error.clone().unwrap_or_default(),
            cause: event.cause.clone().unwrap_or_default(),
        },
        other => {
            let name = event.state_name.clone()?;
            if let Some(state_type) = other.strip_suffix("StateEntered") {
                HistoryEventKind::StateEntered {
                    state_type: state_type.to_owned(),
                    name,
                    input: json_or_text(event.input.as_deref()),
                }
            } else if other.ends_with("StateExited") {
                HistoryEventKind::StateExited {
                    name,
                    output: json_or_text(event.output.as_deref()),
                }
            } else {
                return None;
            }
        }
    };
    Some(HistoryEvent {
        id: u64::try_from(event.id).unwrap_or(0),
        timestamp: event.timestamp,
        kind,
    })
}

fn status_of(kind: &HistoryEventKind, event_type: &str) -> Option<ExecutionStatus> {
    match kind {
        HistoryEventKind::ExecutionSucceeded { .. } => Some(ExecutionStatus::Succeeded),
        HistoryEventKind::ExecutionTimedOut { .. } => Some(ExecutionStatus::TimedOut),
        HistoryEventKind::ExecutionFailed { .. } if event_type == "ExecutionAborted" => {
            Some(ExecutionStatus::Aborted)
        }
        HistoryEventKind::ExecutionFailed { .. } => Some(ExecutionStatus::Failed),
        _ => None,
    }
}

/// Transient failures in a row after which watching gives up (the execution goes on).
const MAX_FAILED_READS: u32 = 8;

/// Follows the execution's history until it ends, handing each new event to `observer`, and
/// returns it as the local runner would have: status, output or error, every event.
pub async fn watch(
    executions: &dyn Executions,
    execution_arn: &str,
    name: &str,
    input: Value,
    observer: Option<&dyn Observer>,
    poll: Duration,
) -> anyhow::Result<Execution> {
    let mut seen: i64 = 0;
    let mut history: Vec<HistoryEvent> = Vec::new();
    let mut start_date: Option<DateTime<Utc>> = None;
    let mut failed_reads = 0;
    loop {
        let events = match executions.execution_history(execution_arn).await {
            Ok(events) => {
                failed_reads = 0;
                events
            }
            // A throttled or dropped read says nothing about the execution: read again, later.
            Err(err) if err.is_transient() && failed_reads < MAX_FAILED_READS => {
                failed_reads += 1;
                tracing::warn!(
                    execution_arn,
                    "reading the history failed, reading again: {err}"
                );
                tokio::time::sleep(poll * failed_reads).await;
                continue;
            }
            Err(err) => {
                return Err(err).with_context(|| {
                    format!(
                        "reading the history of {execution_arn}; the execution goes on without this command (aws stepfunctions describe-execution --execution-arn {execution_arn})"
                    )
                });
            }
        };
        let already = seen;
        for event in events.iter().filter(|e| e.id > already) {
            seen = event.id;
            start_date.get_or_insert(event.timestamp);
            let Some(mapped) = to_history_event(event) else {
                continue;
            };
            if let Some(observer) = observer {
                observer.on_event(&mapped);
            }
            let status = status_of(&mapped.kind, &event.event_type);
            history.push(mapped);
            if let Some(status) = status {
                confirm(executions, execution_arn, status, poll).await?;
                return Ok(finished(
                    execution_arn,
                    name,
                    input,
                    status,
                    history,
                    start_date.unwrap_or(event.timestamp),
                ));
            }
        }
        tokio::time::sleep(poll).await;
    }
}

/// Reads the outcome from `DescribeExecution` before reporting what the history says: a history
/// that ends while Step Functions says the execution still runs, or ends otherwise, is not an
/// outcome (moto's default Step Functions, for one, returns a canned successful history for an
/// execution it never runs).
async fn confirm(
    executions: &dyn Executions,
    execution_arn: &str,
    status: ExecutionStatus,
    poll: Duration,
) -> anyhow::Result<()> {
    let mut described = String::new();
    for read in 0..3_u32 {
        described = match executions.execution_status(execution_arn).await {
            Ok(described) => described,
            Err(err) if err.is_transient() => {
                tokio::time::sleep(poll * (read + 1)).await;
                continue;
            }
            Err(err) => {
                return Err(err).with_context(|| format!("describing {execution_arn}"));
            }
        };
        if described == status.as_str() {
            return Ok(());
        }
        if described != "RUNNING" {
            break;
        }
        tokio::time::sleep(poll).await;
    }
    anyhow::bail!(
        "the history of {execution_arn} ends {}, but Step Functions says the execution is {}: the history does not match the execution, so no outcome is reported",
        status.as_str(),
        if described.is_empty() {
            "unknown"
        } else {
            described.as_str()
        }
    )
}

fn finished(
    execution_arn: &str,
    name: &str,
    input: Value,
    status: ExecutionStatus,
    history: Vec<HistoryEvent>,
    start_date: DateTime<Utc>,
) -> Execution {
    let last = history.last().map(|e| (e.timestamp, e.kind.clone()));
    let (stop_date, output, error, cause) = match last {
        Some((at, HistoryEventKind::ExecutionSucceeded { output })) => {
            (at, Some(output), None, None)
        }
        Some((at, HistoryEventKind::ExecutionFailed { error, cause }))
        | Some((at, HistoryEventKind::ExecutionTimedOut { error, cause })) => {
            (at, None, error, cause)
        }
        Some((at, _)) => (at, None, None, None),
        None => (start_date, None, None, None),
    };
    let state_transitions = history
        .iter()
        .filter(|e| matches!(e.kind, HistoryEventKind::StateEntered { .. }))
        .count() as u64;
    Execution {
        execution_arn: execution_arn.to_owned(),
        name: name.to_owned(),
        status,
        input,
        output,
        error,
        cause,
        start_date,
        stop_date,
        history,
        state_transitions,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use switchyard_core::AwsError;
    use switchyard_core::ports::StateMachineRef;

    use super::*;

    /// Step Functions as a script: each history read reveals a few more events.
    struct Scripted {
        machines: Vec<StateMachineRef>,
        events: Vec<ExecutionEvent>,
        reads: Mutex<usize>,
        /// The first this many reads are throttled.
        throttled: usize,
        /// What DescribeExecution says once the whole history is out (`RUNNING` before).
        described: &'static str,
    }

    #[async_trait]
    impl Executions for Scripted {
        async fn list_state_machines(&self) -> Result<Vec<StateMachineRef>, AwsError> {
            Ok(self.machines.clone())
        }
        async fn start_execution(&self, _: &str, _: &str, _: &str) -> Result<String, AwsError> {
            Ok("arn:aws:states:eu-west-1:1:execution:m:e".into())
        }
        async fn execution_status(&self, _: &str) -> Result<String, AwsError> {
            let reads = *self.reads.lock().unwrap();
            let revealed = reads.saturating_sub(self.throttled) * 2;
            Ok(if revealed >= self.events.len() {
                self.described.into()
            } else {
                "RUNNING".into()
            })
        }
        async fn execution_history(&self, _: &str) -> Result<Vec<ExecutionEvent>, AwsError> {
            let mut reads = self.reads.lock().unwrap();
            *reads += 1;
            if *reads <= self.throttled {
                return Err(AwsError::Throttled {
                    code: "ThrottlingException".into(),
                    message: "rate exceeded".into(),
                });
            }
            let revealed = (*reads - self.throttled) * 2;
            Ok(self.events.iter().take(revealed).cloned().collect())
        }
    }

    fn event(
        id: i64,
        event_type: &str,
        state: Option<&str>,
        output: Option<&str>,
    ) -> ExecutionEvent {
        ExecutionEvent {
            id,
            timestamp: DateTime::from_timestamp(1_764_000_000 + id * 30, 0).unwrap(),
            event_type: event_type.into(),
            state_name: state.map(str::to_owned),
            input: Some("{}".into()),
            output: output.map(str::to_owned),
            error: None,
            cause: None,
        }
    }

    fn machine(name: &str) -> StateMachineRef {
        StateMachineRef {
            name: name.into(),
            arn: format!("arn:aws:states:eu-west-1:1:stateMachine:{name}"),
        }
    }

    #[derive(Default)]
    struct Seen(Mutex<Vec<String>>);

    impl Observer for Seen {
        fn on_event(&self, event: &HistoryEvent) {
            let line = match &event.kind {
                HistoryEventKind::StateEntered {
                    name, state_type, ..
                } => {
                    format!("enter {state_type} {name}")
                }
                HistoryEventKind::StateExited { name, .. } => format!("exit {name}"),
                other => format!("{other:?}")
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_owned(),
            };
            self.0.lock().unwrap().push(line);
        }
    }

    #[tokio::test]
    async fn follows_the_history_to_its_end_once_per_event() {
        let script = Scripted {
            machines: vec![],
            events: vec![
                event(1, "ExecutionStarted", None, None),
                event(2, "TaskStateEntered", Some("AcquireLock"), None),
                event(3, "LambdaFunctionScheduled", None, None),
                event(
                    4,
                    "TaskStateExited",
                    Some("AcquireLock"),
                    Some("{\"lock\":{}}"),
                ),
                event(
                    5,
                    "ExecutionSucceeded",
                    None,
                    Some("{\"namespace\":\"xy-0146-qa\"}"),
                ),
            ],
            reads: Mutex::new(0),
            throttled: 0,
            described: "SUCCEEDED",
        };
        let seen = Seen::default();
        let execution = watch(
            &script,
            "arn:e",
            "e",
            serde_json::json!({"namespace": "xy-0146-qa"}),
            Some(&seen),
            Duration::from_millis(1),
        )
        .await
        .unwrap();
        assert_eq!(execution.status, ExecutionStatus::Succeeded);
        assert_eq!(execution.output.unwrap()["namespace"], "xy-0146-qa");
        assert_eq!(
            (execution.stop_date - execution.start_date).num_seconds(),
            120
        );
        assert_eq!(
            *seen.0.lock().unwrap(),
            vec![
                "ExecutionStarted",
                "enter Task AcquireLock",
                "exit AcquireLock",
                "ExecutionSucceeded"
            ]
        );
        assert_eq!(*script.reads.lock().unwrap(), 3);
    }

    #[tokio::test]
    async fn throttled_reads_are_read_again_and_a_lasting_failure_names_the_execution() {
        let events = vec![
            event(1, "ExecutionStarted", None, None),
            event(2, "ExecutionSucceeded", None, Some("{}")),
        ];
        let script = Scripted {
            machines: vec![],
            events: events.clone(),
            reads: Mutex::new(0),
            throttled: 3,
            described: "SUCCEEDED",
        };
        let execution = watch(
            &script,
            "arn:e",
            "e",
            Value::Null,
            None,
            Duration::from_millis(1),
        )
        .await
        .unwrap();
        assert_eq!(execution.status, ExecutionStatus::Succeeded);
        assert_eq!(*script.reads.lock().unwrap(), 4);

        let down = Scripted {
            machines: vec![],
            events,
            reads: Mutex::new(0),
            throttled: 100,
            described: "SUCCEEDED",
        };
        let err = watch(
            &down,
            "arn:e",
            "e",
            Value::Null,
            None,
            Duration::from_millis(1),
        )
        .await
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("describe-execution --execution-arn arn:e"),
            "{err:#}"
        );
        assert_eq!(*down.reads.lock().unwrap(), 9);
    }

    #[tokio::test]
    async fn a_failure_keeps_its_error_and_cause() {
        let mut failed = event(3, "ExecutionFailed", None, None);
        failed.error = Some("PolicyDenied".into());
        failed.cause = Some("upgrade-path said no".into());
        let script = Scripted {
            machines: vec![],
            events: vec![event(1, "ExecutionStarted", None, None), failed],
            reads: Mutex::new(0),
            throttled: 0,
            described: "FAILED",
        };
        let execution = watch(
            &script,
            "arn:e",
            "e",
            Value::Null,
            None,
            Duration::from_millis(1),
        )
        .await
        .unwrap();
        assert_eq!(execution.status, ExecutionStatus::Failed);
        assert_eq!(execution.error.as_deref(), Some("PolicyDenied"));
        assert_eq!(execution.cause.as_deref(), Some("upgrade-path said no"));
    }

    #[tokio::test]
    async fn a_history_that_ends_while_the_execution_runs_is_no_outcome() {
        // moto's default Step Functions: a canned successful history, the execution RUNNING.
        let script = Scripted {
            machines: vec![],
            events: vec![
                event(1, "ExecutionStarted", None, None),
                event(2, "ExecutionSucceeded", None, Some("{}")),
            ],
            reads: Mutex::new(0),
            throttled: 0,
            described: "RUNNING",
        };
        let err = watch(
            &script,
            "arn:e",
            "e",
            Value::Null,
            None,
            Duration::from_millis(1),
        )
        .await
        .unwrap_err();
        let said = format!("{err:#}");
        assert!(
            said.contains("ends SUCCEEDED") && said.contains("is RUNNING"),
            "{said}"
        );
        // Another end than the history's is refused too.
        let script = Scripted {
            described: "FAILED",
            reads: Mutex::new(0),
            ..script
        };
        let err = watch(
            &script,
            "arn:e",
            "e",
            Value::Null,
            None,
            Duration::from_millis(1),
        )
        .await
        .unwrap_err();
        assert!(format!("{err:#}").contains("is FAILED"), "{err:#}");
    }

    #[tokio::test]
    async fn finds_the_stack_machine_by_its_logical_id() {
        let script = Scripted {
            machines: vec![
                machine("DeployStateMachine-AbC123"),
                machine("SweepStateMachine-XyZ"),
                machine("DeployStateMachineOld"),
            ],
            events: vec![],
            reads: Mutex::new(0),
            throttled: 0,
            described: "SUCCEEDED",
        };
        let arn = resolve_state_machine(&script, None, "DeployStateMachine")
            .await
            .unwrap();
        assert!(arn.ends_with(":DeployStateMachine-AbC123"), "{arn}");
        let by_name = resolve_state_machine(&script, Some("SweepStateMachine-XyZ"), "x")
            .await
            .unwrap();
        assert!(by_name.ends_with(":SweepStateMachine-XyZ"));
        let given = resolve_state_machine(&script, Some("arn:aws:states:x"), "x")
            .await
            .unwrap();
        assert_eq!(given, "arn:aws:states:x");
        let err = resolve_state_machine(&script, Some("nope"), "x")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("\"nope\""), "{err}");
    }
}
