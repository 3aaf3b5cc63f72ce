//! One entry point for every step, shared by the Lambda binaries and the local runner, so that
//! both run exactly the same code on exactly the same event.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::StepError;
use crate::policy::PolicyEngine;
use crate::ports::Aws;
use crate::records::ParameterLayout;
use crate::state::DeployState;
use crate::steps::orphans::OrphanSweep;
use crate::steps::{self, Env};

/// A Lambda function of the deploy machine. Its name (`acquire-lock`, ...) is the function's
/// name suffix in AWS and the `--inject-fault`-free handle the local runner resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    AcquireLock,
    Preflight,
    /// An upgrade's freeze: the service scaled to zero before its own data is snapshotted.
    FreezeService,
    Snapshot,
    CheckSnapshot,
    ReadPointer,
    CreateDb,
    CheckDb,
    SetCredentials,
    /// Registers the task definitions the `Migrate` map runs (`ecs:runTask.sync`).
    PrepareMigrations,
    SwapPointer,
    DeployService,
    CheckService,
    Cleanup,
    Rollback,
    ReleaseLock,
    /// The deploy machine's last step: what the deploy did, as the machine's output.
    Report,
    FindOrphans,
    DeleteOrphans,
    /// The fleet machine's planner, for an execution started without a plan (a schedule).
    FleetPlan,
    /// The fleet machine's judge: the wave that ran, then the next one (`fleet.asl.json`).
    FleetWave,
    /// A Distributed wave's child: the namespaces of its chunk of the rollout's record.
    FleetChunk,
    /// A tenant whose upgrade failed, kept in the rollout's record with its deploy's error.
    FleetFailed,
}

/// The pipeline stages a user names (`--inject-fault create-db:error`); several functions may
/// serve one stage (a step and its poll).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    Preflight,
    /// An upgrade's freeze (`freeze-service`).
    Freeze,
    Snapshot,
    ReadPointer,
    CreateDb,
    /// The new database's own master password (`set-credentials`).
    Credentials,
    /// The migrations: their task definitions (`prepare-migrations`) and the ECS tasks that run
    /// them (`ecs:runTask.sync`).
    Migrate,
    SwapPointer,
    DeployService,
    WaitStable,
    Cleanup,
    Rollback,
    /// The orphan sweep's deletes (`delete-orphans`).
    Sweep,
}

impl Stage {
    pub const ALL: [Stage; 13] = [
        Stage::Preflight,
        Stage::Freeze,
        Stage::Snapshot,
        Stage::ReadPointer,
        Stage::CreateDb,
        Stage::Credentials,
        Stage::Migrate,
        Stage::SwapPointer,
        Stage::DeployService,
        Stage::WaitStable,
        Stage::Cleanup,
        Stage::Rollback,
        Stage::Sweep,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Stage::Preflight => "preflight",
            Stage::Freeze => "freeze",
            Stage::Snapshot => "snapshot",
            Stage::ReadPointer => "read-pointer",
            Stage::CreateDb => "create-db",
            Stage::Credentials => "credentials",
            Stage::Migrate => "migrate",
            Stage::SwapPointer => "swap-pointer",
            Stage::DeployService => "deploy-service",
            Stage::WaitStable => "wait-stable",
            Stage::Cleanup => "cleanup",
            Stage::Rollback => "rollback",
            Stage::Sweep => "sweep",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Stage {
    type Err = StepError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Stage::ALL
            .into_iter()
            .find(|stage| stage.as_str() == text)
            .ok_or_else(|| {
                let known: Vec<&str> = Stage::ALL.iter().map(Stage::as_str).collect();
                StepError::invalid(format!(
                    "unknown stage {text:?}: expected one of {}",
                    known.join(", ")
                ))
            })
    }
}

impl Step {
    pub const ALL: [Step; 23] = [
        Step::AcquireLock,
        Step::Preflight,
        Step::FreezeService,
        Step::Snapshot,
        Step::CheckSnapshot,
        Step::ReadPointer,
        Step::CreateDb,
        Step::CheckDb,
        Step::SetCredentials,
        Step::PrepareMigrations,
        Step::SwapPointer,
        Step::DeployService,
        Step::CheckService,
        Step::Cleanup,
        Step::Rollback,
        Step::ReleaseLock,
        Step::Report,
        Step::FindOrphans,
        Step::DeleteOrphans,
        Step::FleetPlan,
        Step::FleetWave,
        Step::FleetChunk,
        Step::FleetFailed,
    ];

    pub fn function_name(&self) -> &'static str {
        match self {
            Step::AcquireLock => "acquire-lock",
            Step::Preflight => "preflight",
            Step::FreezeService => "freeze-service",
            Step::Snapshot => "snapshot",
            Step::CheckSnapshot => "check-snapshot",
            Step::ReadPointer => "read-pointer",
            Step::CreateDb => "create-db",
            Step::CheckDb => "check-db",
            Step::SetCredentials => "set-credentials",
            Step::PrepareMigrations => "prepare-migrations",
            Step::SwapPointer => "swap-pointer",
            Step::DeployService => "deploy-service",
            Step::CheckService => "check-service",
            Step::Cleanup => "cleanup",
            Step::Rollback => "rollback",
            Step::ReleaseLock => "release-lock",
            Step::Report => "report",
            Step::FindOrphans => "find-orphans",
            Step::DeleteOrphans => "delete-orphans",
            Step::FleetPlan => "fleet-plan",
            Step::FleetWave => "fleet-wave",
            Step::FleetChunk => "fleet-chunk",
            Step::FleetFailed => "fleet-failed",
        }
    }

    pub fn from_function_name(name: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.function_name() == name)
    }

    /// The `${...}` placeholder the state machines use for this function's ARN, e.g.
    /// `CreateDbFunctionArn`.
    pub fn arn_placeholder(&self) -> String {
        let mut name: String = self
            .function_name()
            .split('-')
            .map(|part| {
                let mut chars = part.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            })
            .collect();
        name.push_str("FunctionArn");
        name
    }

    /// The stage this function serves; lock handling and finding orphans (which changes
    /// nothing) belong to none.
    pub fn stage(&self) -> Option<Stage> {
        match self {
            Step::Snapshot | Step::CheckSnapshot => Some(Stage::Snapshot),
            Step::ReadPointer => Some(Stage::ReadPointer),
            Step::CreateDb | Step::CheckDb => Some(Stage::CreateDb),
            Step::SetCredentials => Some(Stage::Credentials),
            Step::FreezeService => Some(Stage::Freeze),
            Step::PrepareMigrations => Some(Stage::Migrate),
            Step::SwapPointer => Some(Stage::SwapPointer),
            Step::DeployService => Some(Stage::DeployService),
            Step::CheckService => Some(Stage::WaitStable),
            Step::Cleanup => Some(Stage::Cleanup),
            Step::Rollback => Some(Stage::Rollback),
            Step::DeleteOrphans => Some(Stage::Sweep),
            Step::Preflight => Some(Stage::Preflight),
            Step::AcquireLock
            | Step::ReleaseLock
            | Step::Report
            | Step::FindOrphans
            | Step::FleetPlan
            | Step::FleetWave
            | Step::FleetChunk
            | Step::FleetFailed => None,
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.function_name())
    }
}

fn to_value<T: Serialize>(value: T) -> Result<Value, StepError> {
    serde_json::to_value(value).map_err(|err| StepError::Internal(format!("serialize: {err}")))
}

/// Parses the event, runs the step, and returns its result as the Task's output. `policies` runs
/// the policy plugins the catalog binds to the namespace before each mutating step.
pub async fn run_step(
    step: Step,
    aws: &dyn Aws,
    layout: &ParameterLayout,
    policies: &dyn PolicyEngine,
    event: Value,
) -> Result<Value, StepError> {
    let env = Env::new(aws, layout).with_policies(policies);
    let result = match step {
        Step::FindOrphans | Step::DeleteOrphans => run_sweep_step(step, env, event).await,
        Step::Report => to_value(crate::report::of_succeeded_deploy(&event, aws.now())?),
        Step::FleetPlan => {
            let event: crate::fleet::PlanRolloutEvent = parse_event(step, event)?;
            to_value(crate::fleet::plan_rollout(aws, layout, policies, &event).await?)
        }
        Step::FleetWave => {
            let state: crate::fleet::FleetState = parse_event(step, event)?;
            to_value(crate::fleet::advance(aws, layout, state).await?)
        }
        Step::FleetChunk => {
            let chunk: crate::fleet::ChunkRef = parse_event(step, event)?;
            crate::fleet::load_chunk(aws, layout, &chunk).await
        }
        Step::FleetFailed => {
            let failure: crate::fleet::RecordFailure = parse_event(step, event)?;
            to_value(crate::fleet::record_failure(aws, layout, &failure).await?)
        }
        _ => run_deploy_step(step, env, event).await,
    };
    if let Err(err) = &result {
        tracing::warn!(%step, error = err.name(), "{err}");
    }
    result
}

fn parse_event<T: for<'de> Deserialize<'de>>(step: Step, event: Value) -> Result<T, StepError> {
    serde_json::from_value(event)
        .map_err(|err| StepError::invalid(format!("malformed event for {step}: {err}")))
}

/// What a deploy's execution input may hold, besides the `execution` its first state adds.
pub const REQUEST_KEYS: [&str; 8] = [
    "namespace",
    "source_namespace",
    "snapshot_id",
    "promote_from",
    "promoted_execution",
    "image",
    "settings_only",
    "upgrade_to",
];

/// A key the request does not know is refused, not ignored: a typo (`snapshotid`) must not
/// deploy something else than was meant. The keys the steps write are refused by the first
/// step with their own message.
fn refuse_unknown_keys(event: &Value) -> Result<(), StepError> {
    let Some(object) = event.as_object() else {
        return Ok(());
    };
    let known = |key: &str| {
        REQUEST_KEYS.contains(&key) || key == "execution" || crate::state::STEP_KEYS.contains(&key)
    };
    match object.keys().find(|key| !known(key.as_str())) {
        Some(key) => Err(StepError::invalid(format!(
            "unknown key `{key}` in the deploy request: it takes {}",
            REQUEST_KEYS.join(", ")
        ))),
        None => Ok(()),
    }
}

async fn run_deploy_step(step: Step, env: Env<'_>, event: Value) -> Result<Value, StepError> {
    if step == Step::AcquireLock {
        refuse_unknown_keys(&event)?;
    }
    let state: DeployState = serde_json::from_value(event)
        .map_err(|err| StepError::invalid(format!("malformed event for {step}: {err}")))?;
    match step {
        Step::AcquireLock => to_value(steps::acquire_lock(env, &state).await?),
        Step::Preflight => to_value(steps::preflight(env, &state).await?),
        Step::Snapshot => to_value(steps::snapshot(env, &state).await?),
        Step::CheckSnapshot => to_value(steps::check_snapshot(env, &state).await?),
        Step::ReadPointer => to_value(steps::read_pointer(env, &state).await?),
        Step::CreateDb => to_value(steps::create_db(env, &state).await?),
        Step::CheckDb => to_value(steps::check_db(env, &state).await?),
        Step::SetCredentials => to_value(steps::set_credentials(env, &state).await?),
        Step::FreezeService => to_value(steps::freeze_service(env, &state).await?),
        Step::PrepareMigrations => to_value(steps::prepare_migrations(env, &state).await?),
        Step::SwapPointer => to_value(steps::swap_pointer(env, &state).await?),
        Step::DeployService => to_value(steps::deploy_service(env, &state).await?),
        Step::CheckService => to_value(steps::check_service(env, &state).await?),
        Step::Cleanup => to_value(steps::cleanup(env, &state).await?),
        Step::Rollback => to_value(steps::rollback(env, &state).await?),
        Step::ReleaseLock => to_value(steps::release_lock(env, &state).await?),
        Step::Report
        | Step::FindOrphans
        | Step::DeleteOrphans
        | Step::FleetPlan
        | Step::FleetWave
        | Step::FleetChunk
        | Step::FleetFailed => Err(StepError::Internal(format!("{step} is not a deploy step"))),
    }
}

async fn run_sweep_step(step: Step, env: Env<'_>, event: Value) -> Result<Value, StepError> {
    let request: OrphanSweep = serde_json::from_value(event)
        .map_err(|err| StepError::invalid(format!("malformed event for {step}: {err}")))?;
    match step {
        Step::FindOrphans => to_value(steps::find_orphans(env, &request).await?),
        Step::DeleteOrphans => to_value(steps::delete_orphans(env, &request).await?),
        _ => Err(StepError::Internal(format!("{step} is not a sweep step"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_round_trip() {
        for step in Step::ALL {
            assert_eq!(Step::from_function_name(step.function_name()), Some(step));
        }
        assert_eq!(Step::from_function_name("nope"), None);
        assert_eq!(Step::CreateDb.arn_placeholder(), "CreateDbFunctionArn");
        assert_eq!(
            Step::AcquireLock.arn_placeholder(),
            "AcquireLockFunctionArn"
        );
    }

    #[test]
    fn stages_parse() {
        for stage in Stage::ALL {
            assert_eq!(stage.as_str().parse::<Stage>().unwrap(), stage);
        }
        let err = "deploy".parse::<Stage>().unwrap_err();
        assert!(err.to_string().contains("\"deploy\""));
    }
}
