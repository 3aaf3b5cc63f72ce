//! Shared helpers of the end-to-end tests: run the real `statemachines/deploy.asl.json` through
//! the local runner, with the real step handlers, on an embedded world.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use switchyard::backend::Backend;
use switchyard::deploy::{self, DeployRequest, Source};
use switchyard_asl::{Execution, ExecutionStatus, HistoryEventKind};
use switchyard_core::Namespace;
use switchyard_core::policy::{
    Decision, Evaluation, NoPlugins, PluginFailure, PolicyContext, PolicyEngine, PolicyStep,
    Verdict,
};
use switchyard_core::records::{ParameterLayout, Records, TrackedRole};
use switchyard_core::records::{PolicyBinding, PolicyCatalog};
use switchyard_core::status::{NamespaceStatus, namespace_status};
use switchyard_sim::{Fault, World};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn deploy_machine() -> PathBuf {
    repo_root().join(deploy::DEPLOY_MACHINE)
}

pub fn demo() -> World {
    World::demo(chrono::Utc::now())
}

pub fn backend(world: &World) -> Arc<Backend> {
    Arc::new(Backend::Embedded {
        world: world.clone(),
        path: PathBuf::from("/nonexistent/unused.json"),
    })
}

pub fn request(namespace: &str, source: Source) -> DeployRequest {
    DeployRequest {
        namespace: namespace.to_owned(),
        source,
        image: None,
    }
}

pub async fn run(
    world: &World,
    machine: &Path,
    name: &str,
    input: Value,
    faults: &[&str],
) -> Execution {
    run_with_policies(world, machine, name, input, faults, Arc::new(NoPlugins)).await
}

/// As [`run`], with `policies` judging every mutating step.
pub async fn run_with_policies(
    world: &World,
    machine: &Path,
    name: &str,
    input: Value,
    faults: &[&str],
    policies: Arc<dyn PolicyEngine>,
) -> Execution {
    for fault in faults {
        world.inject(fault.parse::<Fault>().unwrap());
    }
    let backend = backend(world);
    let machine = deploy::load_machine(machine, &backend).unwrap();
    let execution = deploy::run_machine(
        backend,
        &ParameterLayout::default(),
        policies,
        machine,
        name,
        input,
        None,
    )
    .await;
    world.clear_faults();
    execution
}

pub async fn deploy_from(world: &World, target: &str, source: &str, faults: &[&str]) -> Execution {
    let input = request(target, Source::Namespace(source.to_owned())).input();
    let name = format!("{target}-{}", world.now().format("%Y%m%d-%H%M%S"));
    run(world, &deploy_machine(), &name, input, faults).await
}

pub fn ns(text: &str) -> Namespace {
    text.parse().unwrap()
}

pub async fn status_of(world: &World, namespace: &str) -> NamespaceStatus {
    let aws = world.aws();
    namespace_status(&aws, &ParameterLayout::default())
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.namespace == namespace)
        .unwrap()
}

/// The databases a namespace has in the world, with their status.
pub fn dbs_of(world: &World, namespace: &str) -> Vec<(String, String)> {
    let prefix = format!("{namespace}-");
    world
        .db_instances()
        .into_iter()
        .filter(|(id, _)| id.starts_with(&prefix))
        .collect()
}

pub async fn tracked(world: &World, namespace: &str) -> Vec<(String, TrackedRole)> {
    let aws = world.aws();
    let layout = ParameterLayout::default();
    let records = Records {
        params: &aws,
        layout: &layout,
    };
    records
        .tracked(&ns(namespace))
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.db_instance_id, t.role))
        .collect()
}

pub fn assert_succeeded(execution: &Execution) {
    assert!(
        matches!(execution.status, ExecutionStatus::Succeeded),
        "expected SUCCEEDED, got {:?}: {:?} {:?}",
        execution.status,
        execution.error,
        execution.cause
    );
}

pub fn assert_failed_with(execution: &Execution, error: &str) {
    assert!(
        matches!(execution.status, ExecutionStatus::Failed),
        "expected FAILED, got {:?} (output {:?})",
        execution.status,
        execution.output
    );
    assert_eq!(
        execution.error.as_deref(),
        Some(error),
        "cause: {:?}",
        execution.cause
    );
}

/// The Task states this execution ran, in order, repeats included.
pub fn tasks_run(execution: &Execution) -> Vec<String> {
    execution
        .history
        .iter()
        .filter_map(|e| match &e.kind {
            HistoryEventKind::StateEntered {
                state_type, name, ..
            } if state_type == "Task" => Some(name.clone()),
            _ => None,
        })
        .collect()
}

pub fn retries(execution: &Execution) -> usize {
    execution
        .history
        .iter()
        .filter(|e| matches!(e.kind, HistoryEventKind::RetryScheduled { .. }))
        .count()
}

/// A test double of the policy port: one plugin that says no to one step (or fails on it) and
/// yes to the others, and remembers every step it was asked about.
pub struct OneNo {
    pub step: Option<PolicyStep>,
    pub fail: bool,
    /// How many times the step is allowed before it is refused: 1 lets Preflight through and
    /// refuses the step's own gate, as when a fact changed while the deploy ran.
    pub allowed_first: usize,
    pub asked: std::sync::Mutex<Vec<PolicyStep>>,
}

impl OneNo {
    pub fn deny(step: PolicyStep) -> Arc<OneNo> {
        Arc::new(OneNo {
            step: Some(step),
            fail: false,
            allowed_first: 0,
            asked: Default::default(),
        })
    }

    /// Allows `step` in Preflight and refuses it at the step itself.
    pub fn deny_after_preflight(step: PolicyStep) -> Arc<OneNo> {
        Arc::new(OneNo {
            step: Some(step),
            fail: false,
            allowed_first: 1,
            asked: Default::default(),
        })
    }

    /// Says yes to everything.
    pub fn allow_all() -> Arc<OneNo> {
        Arc::new(OneNo {
            step: None,
            fail: false,
            allowed_first: 0,
            asked: Default::default(),
        })
    }

    pub fn asked(&self) -> Vec<PolicyStep> {
        self.asked.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl PolicyEngine for OneNo {
    async fn evaluate(
        &self,
        plugin: &str,
        context: &PolicyContext,
    ) -> Result<Option<Evaluation>, PluginFailure> {
        let earlier = {
            let mut asked = self.asked.lock().unwrap();
            asked.push(context.step);
            asked.iter().filter(|s| **s == context.step).count() - 1
        };
        let refused = self.step == Some(context.step) && earlier >= self.allowed_first;
        if refused && self.fail {
            return Err(PluginFailure::Trapped {
                plugin: plugin.to_owned(),
                detail: "unreachable executed".into(),
            });
        }
        let verdict = if refused {
            Verdict::Deny(vec![format!(
                "{} may not {}",
                context.namespace, context.step
            )])
        } else {
            Verdict::Allow
        };
        Ok(Some(Evaluation {
            plugin: plugin.to_owned(),
            version: "0.1.0".into(),
            digest: String::new(),
            decision: Decision {
                verdict,
                warnings: vec![],
            },
            elapsed: std::time::Duration::from_micros(5),
        }))
    }
}

/// Binds `plugin` to every namespace of the world.
pub fn bind_everywhere(world: &World, plugin: &str) {
    world
        .seed_policy_catalog(
            &ParameterLayout::default(),
            &PolicyCatalog {
                bindings: vec![PolicyBinding::new(plugin)],
            },
        )
        .unwrap();
}

/// The moto server `tests/run` starts (`SWITCHYARD_TEST_MOTO_URL`). Without it the tests against
/// moto fail, and say why, rather than pass without checking anything.
pub fn moto_url() -> String {
    match std::env::var("SWITCHYARD_TEST_MOTO_URL") {
        Ok(url) if !url.trim().is_empty() => url.trim().to_owned(),
        _ => panic!(
            "SWITCHYARD_TEST_MOTO_URL is not set: the tests against moto's server need the moto \
             server that tests/run starts (it exports SWITCHYARD_TEST_MOTO_URL); run them through \
             tests/run"
        ),
    }
}

/// The SDK configuration for moto's server: us-east-1 and dummy static credentials, set here
/// rather than in the process environment so that tests running in parallel share nothing.
pub async fn moto_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(moto_url())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_ssm::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .load()
        .await
}

/// `n` random lowercase letters: tests sharing one moto server name everything with them, so
/// none ever meets another's resources.
pub fn random_letters(n: usize) -> String {
    let mut letters = String::new();
    while letters.len() < n {
        letters.extend(
            uuid::Uuid::new_v4()
                .as_bytes()
                .iter()
                .map(|b| char::from(b'a' + b % 26))
                .take(n - letters.len()),
        );
    }
    letters
}

// ---------------------------------------------------------------------------------------------
// Seeding moto through the SDK

/// A postgres instance as an operator would have made it, straight through the SDK.
pub async fn create_postgres_db(
    rds: &aws_sdk_rds::Client,
    id: &str,
    tags: Vec<aws_sdk_rds::types::Tag>,
) -> aws_sdk_rds::types::DbInstance {
    rds.create_db_instance()
        .db_instance_identifier(id)
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("switchyard")
        .master_user_password("not-a-real-secret")
        .set_tags(Some(tags))
        .send()
        .await
        .unwrap()
        .db_instance
        .unwrap()
}

/// A container's environment, as the SDK spells it.
pub fn key_value_pairs<V: AsRef<str>>(
    pairs: &[(&str, V)],
) -> Vec<aws_sdk_ecs::types::KeyValuePair> {
    pairs
        .iter()
        .map(|(name, value)| {
            aws_sdk_ecs::types::KeyValuePair::builder()
                .name(*name)
                .value(value.as_ref())
                .build()
        })
        .collect()
}

pub async fn create_cluster(ecs: &aws_sdk_ecs::Client, cluster: &str) {
    ecs.create_cluster()
        .cluster_name(cluster)
        .send()
        .await
        .unwrap();
}

/// Sends a RegisterTaskDefinition built with the SDK; the ARN of the revision it registered.
pub async fn register_task_definition(
    request: aws_sdk_ecs::operation::register_task_definition::builders::RegisterTaskDefinitionFluentBuilder,
) -> String {
    let registered = request.send().await.unwrap();
    registered
        .task_definition()
        .and_then(|d| d.task_definition_arn())
        .unwrap()
        .to_owned()
}

/// Registers a task definition and creates `service` in `cluster` running `desired_count` of it;
/// the task definition's ARN.
pub async fn create_service_running(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
    desired_count: i32,
    task_definition: aws_sdk_ecs::operation::register_task_definition::builders::RegisterTaskDefinitionFluentBuilder,
) -> String {
    let task_definition = register_task_definition(task_definition).await;
    ecs.create_service()
        .cluster(cluster)
        .service_name(service)
        .task_definition(&task_definition)
        .desired_count(desired_count)
        .send()
        .await
        .unwrap();
    task_definition
}

/// POSTs `body` to moto's own API (`/moto-api/...`), e.g. its configuration; panics unless moto
/// answers 2xx.
pub fn moto_post(base: &str, path: &str, body: &str) {
    let hostport = base
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("SWITCHYARD_TEST_MOTO_URL must be http://host:port, got {base}"))
        .trim_end_matches('/');
    let mut stream = TcpStream::connect(hostport)
        .unwrap_or_else(|e| panic!("cannot connect to moto at {base}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split_whitespace().nth(1).unwrap_or_default();
    assert!(
        status.starts_with('2'),
        "POST {base}{path} answered: {}",
        response.lines().next().unwrap_or_default()
    );
}

/// The `switchyard` command run in the checkout on the embedded world `dir/world.json`, as a
/// user runs it.
pub fn cli_in(dir: &Path, args: &[&str]) -> std::process::Output {
    // Build the bundled policies once, before the deploys that evaluate them: concurrent first
    // runs would each build them (correctly, but several times over).
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["policy", "build"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("--world")
        .arg(dir.join("world.json"))
        .args(args)
        .env_remove("SWITCHYARD_ENDPOINT_URL")
        .env_remove("SWITCHYARD_PLUGIN_DIR")
        .output()
        .unwrap()
}

pub fn output_text(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}
