//! What every Switchyard Lambda function does: build its AWS clients once, then for each event
//! run its step through [`switchyard_core::run_step`] and return the result, or an error whose
//! type is the stable name the state machines match.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use switchyard_aws::SdkAws;
use switchyard_core::records::{DEFAULT_ROOT, ParameterLayout};
use switchyard_core::{Step, StepError, run_step};
use switchyard_policy::{Limits, PluginHost, PluginSet};

/// Names the Parameter Store root of this installation (default `/switchyard`).
pub const PARAMETER_ROOT_VAR: &str = "SWITCHYARD_PARAMETER_ROOT";
/// Names the directory of precompiled policy plugins (default: the policy layer's).
pub const PLUGIN_DIR_VAR: &str = "SWITCHYARD_PLUGIN_DIR";
/// Where a Lambda layer's `switchyard/plugins/` directory appears in the function.
pub const DEFAULT_PLUGIN_DIR: &str = "/opt/switchyard/plugins";

/// Loads the installation's policy plugins once, at cold start. A missing directory means no
/// plugins: a namespace the catalog binds a policy to then fails closed, naming the plugin.
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

/// Serves the step named `function_name` (the binary's name) until the runtime stops.
pub async fn serve(function_name: &str) -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(false)
        .without_time()
        .init();
    let step = Step::from_function_name(function_name)
        .ok_or_else(|| format!("no step is named {function_name:?}"))?;
    let root = std::env::var(PARAMETER_ROOT_VAR).unwrap_or_else(|_| DEFAULT_ROOT.to_owned());
    let layout = ParameterLayout::new(&root)?;
    let aws = SdkAws::from_env(None, None).await;
    let policies = load_policies().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        handle(step, &aws, &layout, &policies, event.payload)
    }))
    .await
}

async fn handle(
    step: Step,
    aws: &SdkAws,
    layout: &ParameterLayout,
    policies: &PluginSet,
    event: Value,
) -> Result<Value, StepError> {
    run_step(step, aws, layout, policies, event).await
}

#[cfg(test)]
mod tests {
    use switchyard_core::Step;

    #[test]
    fn every_step_has_a_binary() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bin");
        let mut found: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                e.unwrap()
                    .path()
                    .file_stem()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        found.sort();
        let mut expected: Vec<String> = Step::ALL
            .iter()
            .map(|s| s.function_name().to_owned())
            .collect();
        expected.sort();
        assert_eq!(found, expected);
    }
}
