//! Where the steps' AWS calls go: the embedded simulated world (the default), or any
//! AWS-compatible endpoint through the AWS SDK (moto in tests, AWS itself for users).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use switchyard_asl::{Clock, Observer, SystemClock, TaskContext, TaskFailure, TaskInvoker};
use switchyard_aws::SdkAws;
use switchyard_core::dispatch::Stage;
use switchyard_core::policy::PolicyEngine;
use switchyard_core::ports::Aws;
use switchyard_core::records::ParameterLayout;
use switchyard_core::{Step, run_step};
use switchyard_sim::World;

use crate::integrations::{ECS_RUN_TASK_SYNC, run_task_sync};

/// The default world file, relative to the working directory.
pub const DEFAULT_WORLD: &str = ".switchyard/world.json";

/// The account the embedded world pretends to be; function ARNs name it.
const LOCAL_ACCOUNT: &str = "000000000000";

/// The demo tenants, with the bundled policies bound to them as a platform team would.
pub fn demo_world() -> anyhow::Result<World> {
    let world = World::demo(Utc::now());
    world
        .seed_demo_policies(&ParameterLayout::default())
        .context("binding the demo policies")?;
    Ok(world)
}

pub enum Backend {
    Embedded { world: World, path: PathBuf },
    Endpoint { aws: SdkAws, region: String },
}

/// What a command does to the embedded world's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads it (`status`): no lock, no write; a concurrent writer replaces the file whole,
    /// so a reader sees the world before or after, never half of it.
    Read,
    /// Changes it (`deploy`, `run`, `unlock`, `init`): the command holds the world's lock from
    /// before it loads until it has saved, as AWS serializes concurrent callers; another such
    /// command waits for it.
    Write,
}

/// Held while a command may change the world: an exclusive lock on `<world>.lock`, released
/// when dropped (or when the process ends, however it ends).
#[derive(Debug)]
pub struct WorldLock {
    _file: std::fs::File,
}

impl WorldLock {
    /// Takes the lock of the world at `path`, waiting (and saying so) while another command
    /// holds it. A world file that may not be written is refused rather than replaced.
    pub fn take(path: &Path, notice: &mut dyn FnMut(String)) -> anyhow::Result<WorldLock> {
        if let Ok(metadata) = std::fs::metadata(path)
            && metadata.permissions().readonly()
        {
            anyhow::bail!(
                "the world file {} is read-only: refusing to replace it (make it writable, or give another --world)",
                path.display()
            );
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let lock_path = lock_path(path);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("opening {}", lock_path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                notice(format!(
                    "waiting for another switchyard command to finish with {}",
                    path.display()
                ));
                file.lock()
                    .with_context(|| format!("locking {}", lock_path.display()))?;
            }
            Err(std::fs::TryLockError::Error(err)) => {
                return Err(err).with_context(|| format!("locking {}", lock_path.display()));
            }
        }
        Ok(WorldLock { _file: file })
    }
}

fn lock_path(world: &Path) -> PathBuf {
    let mut name = world.file_name().unwrap_or_default().to_owned();
    name.push(".lock");
    world.with_file_name(name)
}

impl Backend {
    /// Loads the world file; with none there yet, creates the demo world and says so. A
    /// command that changes the world takes its [`WorldLock`] first.
    pub fn embedded(path: &Path, notice: &mut dyn FnMut(String)) -> anyhow::Result<Backend> {
        let world = if path.exists() {
            let world = World::load(path)?;
            world.catch_up(Utc::now());
            world
        } else {
            let world = demo_world()?;
            world.save(path)?;
            notice(format!(
                "no world file at {} yet: created the demo world ({} tenants)",
                path.display(),
                switchyard_sim::demo_tenants().len()
            ));
            world
        };
        Ok(Backend::Embedded {
            world,
            path: path.to_owned(),
        })
    }

    pub async fn endpoint(endpoint_url: Option<&str>, region: Option<&str>) -> Backend {
        let aws = SdkAws::from_env(endpoint_url, region).await;
        Backend::Endpoint {
            aws,
            region: region.unwrap_or("us-east-1").to_owned(),
        }
    }

    pub fn region(&self) -> String {
        match self {
            Backend::Embedded { world, .. } => world.snapshot_state().region,
            Backend::Endpoint { region, .. } => region.clone(),
        }
    }

    /// The ports as the functions serving `stage` see them.
    pub fn aws_for(&self, stage: Option<Stage>) -> Box<dyn Aws> {
        match self {
            Backend::Embedded { world, .. } => Box::new(world.aws_for(stage)),
            Backend::Endpoint { aws, .. } => Box::new(aws.clone()),
        }
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        match self {
            Backend::Embedded { world, .. } => Arc::new(WorldClock(world.clone())),
            Backend::Endpoint { .. } => Arc::new(SystemClock),
        }
    }

    pub fn world(&self) -> Option<&World> {
        match self {
            Backend::Embedded { world, .. } => Some(world),
            Backend::Endpoint { .. } => None,
        }
    }

    /// Writes the embedded world back to its file; nothing to do for an endpoint.
    pub fn persist(&self) -> anyhow::Result<()> {
        if let Backend::Embedded { world, path } = self {
            world
                .save(path)
                .with_context(|| format!("saving the world to {}", path.display()))?;
        }
        Ok(())
    }

    /// `${CreateDbFunctionArn}` and its siblings, and `${DeployStateMachineArn}` and its, as
    /// SAM's DefinitionSubstitutions would set them.
    pub fn substitutions(&self) -> std::collections::BTreeMap<String, String> {
        let region = self.region();
        Step::ALL
            .iter()
            .map(|step| {
                (
                    step.arn_placeholder(),
                    function_arn(&region, step.function_name()),
                )
            })
            .chain(
                crate::deploy::MACHINES
                    .iter()
                    .map(|(name, placeholder, _)| {
                        ((*placeholder).to_owned(), state_machine_arn(&region, name))
                    }),
            )
            .collect()
    }
}

pub fn state_machine_arn(region: &str, name: &str) -> String {
    format!("arn:aws:states:{region}:{LOCAL_ACCOUNT}:stateMachine:{name}")
}

pub fn function_arn(region: &str, function_name: &str) -> String {
    format!("arn:aws:lambda:{region}:{LOCAL_ACCOUNT}:function:switchyard-{function_name}")
}

/// The step a Lambda function ARN (or bare function name) resolves to.
pub fn step_of_resource(resource: &str) -> Option<Step> {
    let name = resource.rsplit(':').next()?;
    Step::from_function_name(name.strip_prefix("switchyard-").unwrap_or(name))
}

/// The ports the functions serving a stage see.
pub type PortsFor = dyn Fn(Option<Stage>) -> Box<dyn Aws> + Send + Sync;

/// What watches a nested execution, given its label (a deploy's namespace, else its name).
pub type ObserverFactory = dyn Fn(&str) -> Option<Arc<dyn Observer>> + Send + Sync;

/// The resource of a nested execution of another state machine, run to completion, its output
/// as JSON.
pub const START_EXECUTION_SYNC2: &str = "arn:aws:states:::states:startExecution.sync:2";

/// Runs Task states in-process: the same `run_step` a Lambda function runs, on the same event,
/// with the same policy engine for every step.
pub struct StepInvoker {
    ports: Box<PortsFor>,
    layout: ParameterLayout,
    policies: Arc<dyn PolicyEngine>,
    /// What a `.sync` integration waits on: the world's virtual clock, or the wall clock.
    clock: Arc<dyn Clock>,
    /// Where nested executions of the project's machines run (`startExecution.sync:2`); `None`
    /// when the invoker was built on bare ports.
    backend: Option<Arc<Backend>>,
    nested_observers: Option<Arc<ObserverFactory>>,
}

impl StepInvoker {
    pub fn new(
        backend: Arc<Backend>,
        layout: ParameterLayout,
        policies: Arc<dyn PolicyEngine>,
    ) -> Self {
        let clock = backend.clock();
        let nesting = backend.clone();
        let mut invoker = Self::with_ports(move |stage| backend.aws_for(stage), layout, policies)
            .with_clock(clock);
        invoker.backend = Some(nesting);
        invoker
    }

    pub fn with_nested_observers(mut self, factory: Arc<ObserverFactory>) -> Self {
        self.nested_observers = Some(factory);
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// On any implementation of the ports (a test may wrap an adapter, say).
    pub fn with_ports(
        ports: impl Fn(Option<Stage>) -> Box<dyn Aws> + Send + Sync + 'static,
        layout: ParameterLayout,
        policies: Arc<dyn PolicyEngine>,
    ) -> Self {
        StepInvoker {
            ports: Box::new(ports),
            layout,
            policies,
            clock: Arc::new(SystemClock),
            backend: None,
            nested_observers: None,
        }
    }
}

#[async_trait]
impl TaskInvoker for StepInvoker {
    async fn invoke(
        &self,
        resource: &str,
        input: Value,
        ctx: &TaskContext,
    ) -> Result<Value, TaskFailure> {
        if resource == START_EXECUTION_SYNC2 {
            return self.start_execution_sync(input).await;
        }
        if resource == ECS_RUN_TASK_SYNC {
            // The only task the machines run on ECS directly: an upgrade's migration.
            let aws = (self.ports)(Some(Stage::Migrate));
            return run_task_sync(
                aws.as_ref(),
                self.clock.as_ref(),
                input,
                ctx.timeout_seconds,
            )
            .await;
        }
        let step = step_of_resource(resource).ok_or_else(|| TaskFailure {
            error: "Lambda.ResourceNotFoundException".into(),
            cause: format!("function not found: {resource}"),
        })?;
        let aws = (self.ports)(step.stage());
        run_step(
            step,
            aws.as_ref(),
            &self.layout,
            self.policies.as_ref(),
            input,
        )
        .await
        .map_err(|err| TaskFailure {
            error: err.name().to_owned(),
            cause: err.to_string(),
        })
    }
}

impl StepInvoker {
    /// `startExecution.sync:2` of one of the project's machines, run here as a nested execution
    /// with the same backend and policies: its output is DescribeExecution's, `Output` as JSON;
    /// a child that does not succeed fails the state with `States.TaskFailed`, the child's
    /// description (its `Error` and `Cause`) as the cause, as Step Functions does.
    async fn start_execution_sync(&self, input: Value) -> Result<Value, TaskFailure> {
        let runtime = |cause: String| TaskFailure::new("States.Runtime", cause);
        let backend = self
            .backend
            .clone()
            .ok_or_else(|| runtime("nested executions need a backend".into()))?;
        let arn = input["StateMachineArn"]
            .as_str()
            .ok_or_else(|| runtime(format!("{START_EXECUTION_SYNC2} needs a StateMachineArn")))?
            .to_owned();
        let machine_name = arn.rsplit(':').next().unwrap_or(&arn);
        let Some((_, _, relative)) = crate::deploy::MACHINES
            .iter()
            .find(|(name, _, _)| *name == machine_name)
        else {
            return Err(TaskFailure::new(
                "StepFunctions.StateMachineDoesNotExistException",
                format!(
                    "state machine {arn} does not exist here: only the project's own machines run nested"
                ),
            ));
        };
        let child_input = match &input["Input"] {
            Value::String(text) => serde_json::from_str(text)
                .map_err(|err| runtime(format!("Input is not JSON: {err}")))?,
            Value::Null => serde_json::json!({}),
            other => other.clone(),
        };
        let name = input["Name"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        // As Step Functions refuses it: at most 80 characters, no whitespace or wildcards.
        if let Err(err) = switchyard_core::identity::check_execution_name(&name) {
            return Err(TaskFailure::new(
                "StepFunctions.InvalidNameException",
                err.to_string(),
            ));
        }
        let machine = crate::deploy::load_machine(&crate::deploy::machine_path(relative), &backend)
            .map_err(|err| runtime(format!("{err:#}")))?;
        // Shown under the tenant's name when the child is a deploy, else its own.
        let label = child_input["namespace"]
            .as_str()
            .unwrap_or(&name)
            .to_owned();
        let observer = self
            .nested_observers
            .as_ref()
            .and_then(|factory| factory(&label));
        let execution = Box::pin(crate::deploy::run_machine_nesting(
            backend,
            &self.layout,
            self.policies.clone(),
            machine,
            &name,
            child_input,
            observer,
            self.nested_observers.clone(),
        ))
        .await;
        let millis = |t: DateTime<Utc>| t.timestamp_millis();
        let mut described = serde_json::json!({
            "ExecutionArn": execution.execution_arn,
            "StateMachineArn": arn,
            "Name": execution.name,
            "Status": execution.status.as_str(),
            "StartDate": millis(execution.start_date),
            "StopDate": millis(execution.stop_date),
            "Input": execution.input,
            "InputDetails": {"Included": true},
        });
        match execution.status {
            switchyard_asl::ExecutionStatus::Succeeded => {
                described["Output"] = execution.output.unwrap_or(Value::Null);
                described["OutputDetails"] = serde_json::json!({"Included": true});
                Ok(described)
            }
            _ => {
                described["Error"] = serde_json::json!(execution.error);
                described["Cause"] = serde_json::json!(execution.cause);
                Err(TaskFailure::new("States.TaskFailed", described.to_string()))
            }
        }
    }
}

/// The embedded world's virtual clock: a Wait state advances it instead of sleeping.
struct WorldClock(World);

#[async_trait]
impl Clock for WorldClock {
    fn now(&self) -> DateTime<Utc> {
        self.0.now()
    }

    async fn sleep(&self, duration: Duration) {
        self.0.advance(duration);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_resolve_to_steps() {
        let arn = function_arn("eu-west-1", "create-db");
        assert_eq!(step_of_resource(&arn), Some(Step::CreateDb));
        assert_eq!(
            step_of_resource("switchyard-rollback"),
            Some(Step::Rollback)
        );
        assert_eq!(step_of_resource("arn:aws:lambda:x:1:function:other"), None);
    }
}
