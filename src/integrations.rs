//! The Step Functions service integrations the local runner performs itself, the way Step
//! Functions does: today `arn:aws:states:::ecs:runTask.sync` (the upgrade's migrations).
//!
//! "Run a job" (`.sync`): start the task, wait until it stops, and succeed with its description
//! only if every container exited 0. The names a failure gets are Step Functions' own, so the
//! same `Retry` and `Catch` match locally and on AWS:
//!
//! - the task stopped with a non-zero exit (or never started): `States.TaskFailed`, the cause
//!   the task's description as JSON;
//! - RunTask answered with `failures`: `AmazonECS.Unknown`;
//! - ECS refused the call: `ECS.<its exception>` (`ECS.InvalidParameterException`,
//!   `ECS.ClusterNotFoundException`, ...), throttling and other unmodeled codes
//!   `ECS.AmazonECSException`, a lost connection `ECS.SdkClientException`;
//! - the Task state's `TimeoutSeconds` passed first: `States.Timeout`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_asl::{Clock, TaskFailure};
use switchyard_core::error::{AwsError, ResourceKind};
use switchyard_core::ports::{AwsVpcConfiguration, EcsTask, RunTaskRequest, Services};

/// The resource of an ECS task run to completion.
pub const ECS_RUN_TASK_SYNC: &str = "arn:aws:states:::ecs:runTask.sync";

/// How often the task is described while it runs (Step Functions is told by EventBridge; a
/// poll this often is as prompt for a task that runs for minutes).
pub const TASK_POLL: Duration = Duration::from_secs(6);

/// What a Task state may pass to `ecs:runTask.sync` (the RunTask request, PascalCase). Fields
/// RunTask has and this runner does not are refused by name rather than dropped.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct RunTaskParameters {
    cluster: String,
    task_definition: String,
    #[serde(default)]
    launch_type: Option<String>,
    #[serde(default)]
    network_configuration: Option<NetworkParameters>,
    #[serde(default)]
    started_by: Option<String>,
    #[serde(default)]
    client_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct NetworkParameters {
    awsvpc_configuration: AwsvpcParameters,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct AwsvpcParameters {
    subnets: Vec<String>,
    #[serde(default)]
    security_groups: Vec<String>,
    #[serde(default)]
    assign_public_ip: Option<String>,
}

/// Runs `ecs:runTask.sync` with `parameters` against `ecs`, waiting on `clock`.
pub async fn run_task_sync(
    ecs: &dyn Services,
    clock: &dyn Clock,
    parameters: Value,
    timeout_seconds: Option<u64>,
) -> Result<Value, TaskFailure> {
    let parameters: RunTaskParameters = serde_json::from_value(parameters).map_err(|err| {
        TaskFailure::new(
            "States.Runtime",
            format!("invalid parameters for {ECS_RUN_TASK_SYNC}: {err}"),
        )
    })?;
    let request = RunTaskRequest {
        cluster: parameters.cluster.clone(),
        task_definition: parameters.task_definition,
        launch_type: parameters.launch_type,
        network: parameters
            .network_configuration
            .map(|n| AwsVpcConfiguration {
                subnets: n.awsvpc_configuration.subnets,
                security_groups: n.awsvpc_configuration.security_groups,
                assign_public_ip: n.awsvpc_configuration.assign_public_ip,
            }),
        started_by: parameters.started_by,
        client_token: parameters.client_token,
    };
    let started = clock.now();
    // Step Functions' own bound on a Task's TimeoutSeconds.
    let deadline = timeout_seconds.map(|s| {
        started + chrono::Duration::seconds(i64::try_from(s.min(99_999_999)).unwrap_or(0))
    });
    let mut task = ecs.run_task(&request).await.map_err(ecs_failure)?;
    tracing::info!(task = %task.task_arn, task_definition = %request.task_definition, "task started");
    // Once the task runs, a describe that fails is asked again until the deadline: failing the
    // state here would have a Retry start the migration a second time beside the first.
    while task.last_status != "STOPPED" {
        if deadline.is_some_and(|deadline| clock.now() >= deadline) {
            return Err(TaskFailure::new(
                "States.Timeout",
                format!(
                    "task {} still {} after the state's TimeoutSeconds",
                    task.task_arn, task.last_status
                ),
            ));
        }
        clock.sleep(TASK_POLL).await;
        match ecs.describe_task(&parameters.cluster, &task.task_arn).await {
            Ok(described) => task = described,
            Err(err) if err.is_transient() => {
                tracing::warn!(task = %task.task_arn, "describing the task failed, asking again: {err}");
            }
            Err(err) => return Err(ecs_failure(err)),
        }
    }
    let output = sfn_task(&task);
    if task.succeeded() {
        Ok(output)
    } else {
        Err(TaskFailure::new("States.TaskFailed", output.to_string()))
    }
}

/// ECS's exceptions Step Functions names as `ECS.<name>`; any other code is
/// `ECS.AmazonECSException`, the SDK's base class.
const MODELED: &[&str] = &[
    "AccessDeniedException",
    "BlockedException",
    "ClientException",
    "ClusterNotFoundException",
    "ConflictException",
    "InvalidParameterException",
    "PlatformTaskDefinitionIncompatibilityException",
    "PlatformUnknownException",
    "ServerException",
    "UnsupportedFeatureException",
];

/// The errors `startExecution.sync:2` can fail with besides `States.TaskFailed` (the child did
/// not succeed): Step Functions' own exceptions when it starts the child. The local runner
/// raises the last two (a machine that is not the project's, a name Step Functions refuses).
pub const START_EXECUTION_ERRORS: [&str; 5] = [
    "StepFunctions.ExecutionLimitExceededException",
    "StepFunctions.SdkClientException",
    "StepFunctions.AWSStepFunctionsException",
    "StepFunctions.StateMachineDoesNotExistException",
    "StepFunctions.InvalidNameException",
];

/// Whether a service integration the machines use (`ecs:runTask.sync`,
/// `states:startExecution.sync:2`) can fail with the error `name`: what a `Retry` or `Catch`
/// may match.
pub fn raises(name: &str) -> bool {
    if START_EXECUTION_ERRORS.contains(&name) {
        return true;
    }
    matches!(
        name,
        "AmazonECS.Unknown"
            | "ECS.AmazonECSException"
            | "ECS.SdkClientException"
            | "States.TaskFailed"
            | "States.Timeout"
            | "States.Runtime"
    ) || name
        .strip_prefix("ECS.")
        .is_some_and(|exception| MODELED.contains(&exception))
}

fn ecs_failure(err: AwsError) -> TaskFailure {
    let cause = err.to_string();
    let name = match &err {
        AwsError::Rejected { code, .. } if code == "RunTaskFailure" => {
            "AmazonECS.Unknown".to_owned()
        }
        AwsError::Rejected { code, .. } if MODELED.contains(&code.as_str()) => {
            format!("ECS.{code}")
        }
        AwsError::NotFound {
            kind: ResourceKind::Cluster,
            ..
        } => "ECS.ClusterNotFoundException".to_owned(),
        AwsError::NotFound { .. } | AwsError::InvalidState { .. } => {
            "ECS.InvalidParameterException".to_owned()
        }
        AwsError::Unavailable { .. } => "ECS.SdkClientException".to_owned(),
        AwsError::Throttled { .. } | AwsError::Rejected { .. } | AwsError::AlreadyExists { .. } => {
            "ECS.AmazonECSException".to_owned()
        }
    };
    TaskFailure::new(name, cause)
}

/// The task as Step Functions returns it: DescribeTasks' task, PascalCase, times in epoch
/// milliseconds.
fn sfn_task(task: &EcsTask) -> Value {
    let millis = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.timestamp_millis());
    json!({
        "TaskArn": task.task_arn,
        "ClusterArn": task.cluster_arn,
        "TaskDefinitionArn": task.task_definition_arn,
        "LastStatus": task.last_status,
        "DesiredStatus": task.desired_status,
        "StopCode": task.stop_code,
        "StoppedReason": task.stopped_reason,
        "StartedBy": task.started_by,
        "CreatedAt": millis(task.created_at),
        "StoppedAt": millis(task.stopped_at),
        "Containers": task.containers.iter().map(|c| json!({
            "Name": c.name,
            "LastStatus": c.last_status,
            "ExitCode": c.exit_code,
            "Reason": c.reason,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use switchyard_core::ports::{RevisionChange, Services};
    use switchyard_sim::World;

    use super::*;
    use crate::backend::Backend;

    /// The demo's qa service: its task definition and the world's clock.
    async fn demo() -> (World, Arc<dyn Clock>, String) {
        let world = World::demo(chrono::Utc::now());
        let backend = Backend::Embedded {
            world: world.clone(),
            path: "/nonexistent/unused.json".into(),
        };
        let service = world
            .aws()
            .describe_service("switchyard-nonprod", "xy-0146-qa-app")
            .await
            .unwrap();
        (world, backend.clock(), service.task_definition_arn)
    }

    fn parameters(task_definition: &str) -> Value {
        json!({
            "Cluster": "switchyard-nonprod",
            "TaskDefinition": task_definition,
            "LaunchType": "FARGATE",
            "NetworkConfiguration": {"AwsvpcConfiguration": {"Subnets": ["subnet-1"], "SecurityGroups": ["sg-1"]}},
            "StartedBy": "switchyard/test"
        })
    }

    #[tokio::test]
    async fn a_task_that_exits_0_is_the_states_output_in_step_functions_shape() {
        let (world, clock, definition) = demo().await;
        let started = world.now();
        let output = run_task_sync(&world.aws(), clock.as_ref(), parameters(&definition), None)
            .await
            .unwrap();
        assert_eq!(output["LastStatus"], "STOPPED");
        assert_eq!(output["StopCode"], "EssentialContainerExited");
        assert_eq!(output["Containers"][0]["ExitCode"], 0);
        assert_eq!(output["StartedBy"], "switchyard/test");
        // It waited on the world's clock for the task to run.
        assert!(world.now() - started >= chrono::Duration::seconds(90));
    }

    #[tokio::test]
    async fn a_task_that_cannot_reach_its_database_fails_the_state_with_its_description() {
        let (world, clock, definition) = demo().await;
        let change = RevisionChange {
            container: "app".into(),
            environment: [("DB_INSTANCE_ID".to_owned(), "gone".to_owned())].into(),
            secrets: Default::default(),
            unset: Vec::new(),
            image: None,
            tags: Default::default(),
            family: Some("probe".into()),
            command: Some(vec!["/app/migrate".into(), "1.3.3".into()]),
            sole_container: true,
        };
        let probe = world
            .aws()
            .register_revision(&definition, &change)
            .await
            .unwrap();
        let failure = run_task_sync(
            &world.aws(),
            clock.as_ref(),
            parameters(probe.arn.as_deref().unwrap()),
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(failure.error, "States.TaskFailed");
        let task: Value = serde_json::from_str(&failure.cause).unwrap();
        assert_eq!(task["Containers"][0]["ExitCode"], 1);
        assert!(
            task["Containers"][0]["Reason"]
                .as_str()
                .unwrap()
                .contains("could not connect to database gone")
        );
    }

    #[tokio::test]
    async fn timeouts_bad_parameters_and_refusals_get_step_functions_names() {
        let (world, clock, definition) = demo().await;
        let aws = world.aws();
        let timeout = run_task_sync(&aws, clock.as_ref(), parameters(&definition), Some(20))
            .await
            .unwrap_err();
        assert_eq!(timeout.error, "States.Timeout");
        let mut unknown = parameters(&definition);
        unknown["Overrides"] = json!({});
        let err = run_task_sync(&aws, clock.as_ref(), unknown, None)
            .await
            .unwrap_err();
        assert_eq!(err.error, "States.Runtime");
        assert!(err.cause.contains("Overrides"), "{}", err.cause);
        let mut nowhere = parameters(&definition);
        nowhere["Cluster"] = json!("nowhere");
        let err = run_task_sync(&aws, clock.as_ref(), nowhere, None)
            .await
            .unwrap_err();
        assert_eq!(err.error, "ECS.ClusterNotFoundException");
        let mut no_network = parameters(&definition);
        no_network
            .as_object_mut()
            .unwrap()
            .remove("NetworkConfiguration");
        let err = run_task_sync(&aws, clock.as_ref(), no_network, None)
            .await
            .unwrap_err();
        assert_eq!(err.error, "ECS.InvalidParameterException");
        for name in [
            "States.TaskFailed",
            "AmazonECS.Unknown",
            "ECS.AmazonECSException",
            "ECS.ClusterNotFoundException",
        ] {
            assert!(raises(name), "{name}");
        }
        assert!(!raises("ECS.Whatever"));
    }
}
