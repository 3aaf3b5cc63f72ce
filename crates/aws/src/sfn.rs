use async_trait::async_trait;
use aws_sdk_sfn::operation::describe_execution::DescribeExecutionError;
use aws_sdk_sfn::operation::get_execution_history::GetExecutionHistoryError;
use aws_sdk_sfn::operation::start_execution::StartExecutionError;
use aws_sdk_sfn::types::HistoryEvent;
use switchyard_core::error::{AwsError, ResourceKind};
use switchyard_core::ports::{ExecutionEvent, Executions, StateMachineRef};

use crate::SdkAws;
use crate::convert::timestamp;
use crate::error::{already_exists, map_sdk_error, not_found};

#[async_trait]
impl Executions for SdkAws {
    async fn list_state_machines(&self) -> Result<Vec<StateMachineRef>, AwsError> {
        let mut items = self
            .sfn
            .list_state_machines()
            .into_paginator()
            .items()
            .send();
        let mut machines = Vec::new();
        while let Some(machine) = items
            .try_next()
            .await
            .map_err(|err| map_sdk_error(err, |_| None))?
        {
            machines.push(StateMachineRef {
                name: machine.name,
                arn: machine.state_machine_arn,
            });
        }
        Ok(machines)
    }

    async fn start_execution(
        &self,
        state_machine_arn: &str,
        name: &str,
        input: &str,
    ) -> Result<String, AwsError> {
        let output = self
            .sfn
            .start_execution()
            .state_machine_arn(state_machine_arn)
            .name(name)
            .input(input)
            .send()
            .await
            .map_err(|err| {
                map_sdk_error(err, |err| match err {
                    StartExecutionError::StateMachineDoesNotExist(_) => {
                        not_found(ResourceKind::StateMachine, state_machine_arn)
                    }
                    StartExecutionError::ExecutionAlreadyExists(_) => {
                        already_exists(ResourceKind::Execution, name)
                    }
                    _ => None,
                })
            })?;
        Ok(output.execution_arn)
    }

    async fn execution_status(&self, execution_arn: &str) -> Result<String, AwsError> {
        let output = self
            .sfn
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await
            .map_err(|err| {
                map_sdk_error(err, |err| match err {
                    DescribeExecutionError::ExecutionDoesNotExist(_) => {
                        not_found(ResourceKind::Execution, execution_arn)
                    }
                    _ => None,
                })
            })?;
        Ok(output.status.as_str().to_owned())
    }

    async fn execution_history(
        &self,
        execution_arn: &str,
    ) -> Result<Vec<ExecutionEvent>, AwsError> {
        let mut items = self
            .sfn
            .get_execution_history()
            .execution_arn(execution_arn)
            .into_paginator()
            .items()
            .send();
        let mut events = Vec::new();
        while let Some(event) = items.try_next().await.map_err(|err| {
            map_sdk_error(err, |err| match err {
                GetExecutionHistoryError::ExecutionDoesNotExist(_) => {
                    not_found(ResourceKind::Execution, execution_arn)
                }
                _ => None,
            })
        })? {
            events.push(to_event(&event));
        }
        Ok(events)
    }
}

/// The few details progress reads, whichever of Step Functions' per-type detail fields holds
/// them.
fn to_event(event: &HistoryEvent) -> ExecutionEvent {
    let entered = event.state_entered_event_details();
    let exited = event.state_exited_event_details();
    let started = event.execution_started_event_details();
    let succeeded = event.execution_succeeded_event_details();
    let failed = event.execution_failed_event_details();
    let timed_out = event.execution_timed_out_event_details();
    let aborted = event.execution_aborted_event_details();
    let lambda_failed = event.lambda_function_failed_event_details();
    let task_failed = event.task_failed_event_details();
    let pair = |error: Option<&str>, cause: Option<&str>| {
        (error.map(str::to_owned), cause.map(str::to_owned))
    };
    let (error, cause) = if let Some(d) = failed {
        pair(d.error(), d.cause())
    } else if let Some(d) = timed_out {
        pair(d.error(), d.cause())
    } else if let Some(d) = aborted {
        pair(d.error(), d.cause())
    } else if let Some(d) = lambda_failed {
        pair(d.error(), d.cause())
    } else if let Some(d) = task_failed {
        pair(d.error(), d.cause())
    } else {
        (None, None)
    };
    ExecutionEvent {
        id: event.id,
        timestamp: timestamp(&event.timestamp).unwrap_or_default(),
        event_type: event.r#type.as_str().to_owned(),
        state_name: entered
            .map(|d| d.name.clone())
            .or_else(|| exited.map(|d| d.name.clone())),
        input: entered
            .and_then(|d| d.input.clone())
            .or_else(|| started.and_then(|d| d.input.clone())),
        output: exited
            .and_then(|d| d.output.clone())
            .or_else(|| succeeded.and_then(|d| d.output.clone())),
        error,
        cause,
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_sfn::types::{
        ExecutionFailedEventDetails, HistoryEventType, StateEnteredEventDetails,
        StateExitedEventDetails,
    };
    use aws_smithy_types::DateTime;

    use super::*;

    fn event(id: i64, kind: HistoryEventType) -> aws_sdk_sfn::types::builders::HistoryEventBuilder {
        HistoryEvent::builder()
            .id(id)
            .r#type(kind)
            .timestamp(DateTime::from_secs(1_764_000_000 + id))
    }

    #[test]
    fn state_and_execution_details_are_read_from_their_own_fields() {
        let entered = event(2, HistoryEventType::TaskStateEntered)
            .state_entered_event_details(
                StateEnteredEventDetails::builder()
                    .name("CreateDb")
                    .input("{\"namespace\":\"xy-0146-qa\"}")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let mapped = to_event(&entered);
        assert_eq!(mapped.event_type, "TaskStateEntered");
        assert_eq!(mapped.state_name.as_deref(), Some("CreateDb"));
        assert_eq!(
            mapped.input.as_deref(),
            Some("{\"namespace\":\"xy-0146-qa\"}")
        );
        assert_eq!(mapped.timestamp.timestamp(), 1_764_000_002);

        let exited = event(3, HistoryEventType::TaskStateExited)
            .state_exited_event_details(
                StateExitedEventDetails::builder()
                    .name("CreateDb")
                    .output("{}")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        assert_eq!(to_event(&exited).output.as_deref(), Some("{}"));

        let failed = event(9, HistoryEventType::ExecutionFailed)
            .execution_failed_event_details(
                ExecutionFailedEventDetails::builder()
                    .error("PolicyDenied")
                    .cause("upgrade-path: 1.3.3 comes first")
                    .build(),
            )
            .build()
            .unwrap();
        let mapped = to_event(&failed);
        assert_eq!(mapped.error.as_deref(), Some("PolicyDenied"));
        assert_eq!(
            mapped.cause.as_deref(),
            Some("upgrade-path: 1.3.3 comes first")
        );
        assert_eq!(mapped.state_name, None);
    }
}
