//! What every Switchyard Lambda function does: build its AWS clients once, then for each event
//! run its step through [`switchyard_core::run_step`] and return the result, or an error whose
//! type is the stable name the state machines match.
//!
//! Lambda bills the init phase, and a deploy cold-starts many functions: init does no more than
//! a bare runtime's. The AWS clients (whose configuration reads the OS trust store) are built at
//! the first event, and the policy plugins at the first evaluation, each once; a step that
//! evaluates no policy never loads them.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use switchyard_aws::SdkAws;
use switchyard_core::policy::{Evaluation, PluginFailure, PolicyContext, PolicyEngine};
use switchyard_core::records::{DEFAULT_ROOT, ParameterLayout};
use switchyard_core::{Step, StepError, run_step};
use switchyard_policy::{Limits, PluginHost, PluginSet};
use tokio::sync::OnceCell;

/// Names the step a function serves (`create-db`, ...): one bootstrap serves every step.
pub const STEP_VAR: &str = "SWITCHYARD_STEP";
/// Names the Parameter Store root of this installation (default `/switchyard`).
pub const PARAMETER_ROOT_VAR: &str = "SWITCHYARD_PARAMETER_ROOT";
/// Names the directory of precompiled policy plugins (default: the policy layer's).
pub const PLUGIN_DIR_VAR: &str = "SWITCHYARD_PLUGIN_DIR";
/// Where a Lambda layer's `switchyard/plugins/` directory appears in the function.
pub const DEFAULT_PLUGIN_DIR: &str = "/opt/switchyard/plugins";

/// Loads the installation's policy plugins. A missing directory means no plugins: a namespace
/// the catalog binds a policy to then fails closed, naming the plugin.
async fn load_policies() -> Result<PluginSet, Error> {
    let host = PluginHost::new(Limits::default())?;
    let dir = std::env::var(PLUGIN_DIR_VAR).unwrap_or_else(|_| DEFAULT_PLUGIN_DIR.to_owned());
    let dir = std::path::Path::new(&dir);
    if !dir.is_dir() {
        tracing::info!(target: "switchyard::policy", dir = %dir.display(), "no policy plugins installed");
        return Ok(PluginSet::empty(host));
    }
    let set = PluginSet::load_dir(host, dir).await?;
    for descriptor in set.descriptors() {
        tracing::info!(target: "switchyard::policy", plugin = %descriptor.name, version = %descriptor.version, "policy plugin loaded");
    }
    for (plugin, why) in set.broken() {
        tracing::error!(target: "switchyard::policy", %plugin, "policy plugin not loaded: {why}");
    }
    Ok(set)
}

/// The policy plugins, loaded at the first question asked of them and kept. A directory that
/// cannot be loaded makes every plugin fail closed, named, as a missing one does.
#[derive(Default)]
pub struct LazyPolicies {
    set: OnceCell<Result<PluginSet, String>>,
}

impl LazyPolicies {
    async fn set(&self) -> &Result<PluginSet, String> {
        self.set
            .get_or_init(|| async { load_policies().await.map_err(|err| err.to_string()) })
            .await
    }

    /// Whether the plugins were loaded (by a step that evaluated one).
    pub fn loaded(&self) -> bool {
        self.set.initialized()
    }
}

#[async_trait::async_trait]
impl PolicyEngine for LazyPolicies {
    async fn evaluate(
        &self,
        plugin: &str,
        context: &PolicyContext,
    ) -> Result<Option<Evaluation>, PluginFailure> {
        match self.set().await {
            Ok(set) => set.evaluate(plugin, context).await,
            Err(why) => Err(PluginFailure::Unloadable {
                plugin: plugin.to_owned(),
                detail: format!("the policy plugins could not be loaded: {why}"),
            }),
        }
    }

    async fn declares_setting(&self, plugin: &str, property: &str) -> bool {
        match self.set().await {
            Ok(set) => set.declares_setting(plugin, property).await,
            Err(_) => false,
        }
    }
}

/// The step `SWITCHYARD_STEP` names, or why there is none.
pub fn step_from(value: Option<&str>) -> Result<Step, String> {
    match value {
        None | Some("") => Err(format!(
            "{STEP_VAR} is not set: it names the step this function serves (one of {})",
            step_names()
        )),
        Some(name) => Step::from_function_name(name)
            .ok_or_else(|| format!("{STEP_VAR} {name:?} names no step: one of {}", step_names())),
    }
}

fn step_names() -> String {
    Step::ALL
        .iter()
        .map(Step::function_name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Serves the step `SWITCHYARD_STEP` names until the runtime stops.
pub async fn serve_from_env() -> Result<(), Error> {
    let step = step_from(std::env::var(STEP_VAR).ok().as_deref())?;
    serve(step).await
}

/// Serves `step` until the runtime stops.
pub async fn serve(step: Step) -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(false)
        .without_time()
        .init();
    let root = std::env::var(PARAMETER_ROOT_VAR).unwrap_or_else(|_| DEFAULT_ROOT.to_owned());
    let layout = ParameterLayout::new(&root)?;
    let aws: OnceCell<SdkAws> = OnceCell::new();
    let policies = LazyPolicies::default();
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        handle(step, &aws, &layout, &policies, event.payload)
    }))
    .await
}

async fn handle(
    step: Step,
    aws: &OnceCell<SdkAws>,
    layout: &ParameterLayout,
    policies: &LazyPolicies,
    event: Value,
) -> Result<Value, StepError> {
    let aws = aws.get_or_init(|| SdkAws::from_env(None, None)).await;
    run_step(step, aws, layout, policies, event).await
}

#[cfg(test)]
mod tests {
    use switchyard_core::Step;
    use switchyard_core::policy::{PolicyContext, PolicyEngine};

    use super::{LazyPolicies, step_from};

    #[tokio::test]
    async fn plugins_are_loaded_at_the_first_question_and_fail_closed_by_name() {
        let policies = LazyPolicies::default();
        assert!(!policies.loaded(), "nothing is loaded before a step asks");
        // No plugin directory here (the layer's is absent): a bound plugin fails closed, named.
        assert!(!std::path::Path::new(super::DEFAULT_PLUGIN_DIR).exists());
        let answer = policies.evaluate("naming", &PolicyContext::default()).await;
        assert!(policies.loaded());
        assert_eq!(answer.unwrap_err().plugin(), "naming");
    }

    #[test]
    fn the_step_comes_from_the_environment_and_a_wrong_one_is_named() {
        for step in Step::ALL {
            assert_eq!(step_from(Some(step.function_name())), Ok(step));
        }
        let unset = step_from(None).unwrap_err();
        assert!(unset.contains("SWITCHYARD_STEP is not set"), "{unset}");
        assert!(unset.contains("create-db"), "{unset}");
        let wrong = step_from(Some("create-database")).unwrap_err();
        assert!(
            wrong.contains("\"create-database\" names no step"),
            "{wrong}"
        );
    }
}
