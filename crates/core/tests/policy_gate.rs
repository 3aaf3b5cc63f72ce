//! The policy gate in every mutating step, against the simulated world: a deny or a plugin
//! failure stops the step before it changes anything; a re-invocation that finds its own work
//! does not ask again; the catalog's patterns pick the plugins and the namespace's settings
//! overlay theirs; each step hands the plugins its facts; rollback is never stopped.
//!
//! The engine here is a scripted test double of the `PolicyEngine` port (the real one runs
//! WebAssembly plugins, in `switchyard-policy`): it answers by plugin and context and keeps
//! every context it was asked about.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use switchyard_core::policy::{
    Decision, Evaluation, PluginFailure, PolicyContext, PolicyEngine, PolicyStep, Verdict,
};
use switchyard_core::ports::{Databases, Services, Snapshots};
use switchyard_core::records::{
    ParameterLayout, PolicyBinding, PolicyCatalog, PolicyMode, Records, TrackedRole,
};
use switchyard_core::state::{CaughtError, DeployState, ExecutionInfo};
use switchyard_core::steps::{self, Env};
use switchyard_core::{Namespace, StepError, Timestamp};
use switchyard_sim::{SimAws, World, WorldState};

const QA: &str = "xy-0146-qa";
const DEV: &str = "xy-0146-dev";
const PROD: &str = "xy-0146-prod";
/// The artifact digest every scripted evaluation reports.
const SCRIPTED_DIGEST: &str = "abababababababababababababababababababababababababababababababab";

type Script = dyn Fn(&str, &PolicyContext) -> Answer + Send + Sync;

/// What the scripted engine answers.
#[derive(Debug, Clone)]
enum Answer {
    Allow,
    Warn(&'static str),
    Deny(Vec<String>),
    Fail,
    /// The plugin's descriptor does not list the step.
    Skip,
}

struct ScriptedEngine {
    script: Box<Script>,
    seen: Mutex<Vec<(String, PolicyContext)>>,
}

impl ScriptedEngine {
    fn new(script: impl Fn(&str, &PolicyContext) -> Answer + Send + Sync + 'static) -> Self {
        ScriptedEngine {
            script: Box::new(script),
            seen: Mutex::new(Vec::new()),
        }
    }

    /// Says no to `step`, yes to everything else.
    fn deny_at(step: PolicyStep) -> Self {
        Self::new(move |_, ctx| {
            if ctx.step == step {
                Answer::Deny(vec![format!("no {step} today")])
            } else {
                Answer::Allow
            }
        })
    }

    fn fail_at(step: PolicyStep) -> Self {
        Self::new(move |_, ctx| {
            if ctx.step == step {
                Answer::Fail
            } else {
                Answer::Allow
            }
        })
    }

    fn seen(&self) -> Vec<(String, PolicyContext)> {
        self.seen.lock().unwrap().clone()
    }

    fn seen_steps(&self) -> Vec<PolicyStep> {
        self.seen().iter().map(|(_, c)| c.step).collect()
    }

    /// The one context the engine saw for `step`.
    fn context_of(&self, step: PolicyStep) -> PolicyContext {
        let found: Vec<PolicyContext> = self
            .seen()
            .into_iter()
            .filter(|(_, c)| c.step == step)
            .map(|(_, c)| c)
            .collect();
        assert_eq!(found.len(), 1, "{step}: {found:?}");
        found[0].clone()
    }
}

#[async_trait::async_trait]
impl PolicyEngine for ScriptedEngine {
    async fn evaluate(
        &self,
        plugin: &str,
        context: &PolicyContext,
    ) -> Result<Option<Evaluation>, PluginFailure> {
        self.seen
            .lock()
            .unwrap()
            .push((plugin.to_owned(), context.clone()));
        let decision = |verdict, warnings: Vec<String>| {
            Ok(Some(Evaluation {
                plugin: plugin.to_owned(),
                version: "0.1.0".into(),
                digest: SCRIPTED_DIGEST.to_owned(),
                decision: Decision { verdict, warnings },
                elapsed: Duration::from_micros(7),
            }))
        };
        match (self.script)(plugin, context) {
            Answer::Allow => decision(Verdict::Allow, vec![]),
            Answer::Warn(warning) => decision(Verdict::Allow, vec![warning.to_owned()]),
            Answer::Deny(reasons) => decision(Verdict::Deny(reasons), vec![]),
            Answer::Fail => Err(PluginFailure::Trapped {
                plugin: plugin.to_owned(),
                detail: "unreachable executed".into(),
            }),
            Answer::Skip => Ok(None),
        }
    }
}

struct Fixture {
    world: World,
    aws: SimAws,
    layout: ParameterLayout,
    engine: ScriptedEngine,
}

impl Fixture {
    fn new(engine: ScriptedEngine) -> Self {
        let world = World::demo(Utc::now());
        Fixture {
            aws: world.aws(),
            world,
            layout: ParameterLayout::default(),
            engine,
        }
    }

    fn env(&self) -> Env<'_> {
        Env::new(&self.aws, &self.layout).with_policies(&self.engine)
    }

    fn records(&self) -> Records<'_> {
        Records {
            params: &self.aws,
            layout: &self.layout,
        }
    }

    /// Binds each plugin to every namespace.
    fn bind(&self, plugins: &[&str]) {
        self.catalog(PolicyCatalog {
            bindings: plugins.iter().map(|p| PolicyBinding::new(p)).collect(),
        });
    }

    fn catalog(&self, catalog: PolicyCatalog) {
        self.world
            .seed_policy_catalog(&self.layout, &catalog)
            .unwrap();
    }

    fn state(&self, namespace: &str, execution: &str) -> DeployState {
        DeployState {
            namespace: namespace.into(),
            source_namespace: Some(DEV.into()),
            execution: Some(ExecutionInfo {
                id: execution.into(),
                started_at: self.world.now(),
            }),
            ..DeployState::default()
        }
    }

    fn wait(&self, secs: u64) {
        self.world.advance(Duration::from_secs(secs));
    }

    /// The whole world, to prove a step changed nothing.
    fn world_state(&self) -> WorldState {
        self.world.snapshot_state()
    }

    /// Runs the steps up to and including `last`, as the state machine would.
    async fn run_until(&self, state: &mut DeployState, last: &str) {
        let env = self.env();
        state.lock = Some(steps::acquire_lock(env, state).await.unwrap());
        if last == "lock" {
            return;
        }
        state.snapshot = Some(steps::snapshot(env, state).await.unwrap());
        while !state.snapshot.as_ref().unwrap().poll.ready {
            self.wait(60);
            state.snapshot = Some(steps::check_snapshot(env, state).await.unwrap());
        }
        state.previous = Some(steps::read_pointer(env, state).await.unwrap());
        if last == "read-pointer" {
            return;
        }
        state.db = Some(steps::create_db(env, state).await.unwrap());
        while !state.db.as_ref().unwrap().poll.ready {
            self.wait(60);
            state.db = Some(steps::check_db(env, state).await.unwrap());
        }
        if last == "db-ready" {
            return;
        }
        state.swap = Some(steps::swap_pointer(env, state).await.unwrap());
        if last == "swap" {
            return;
        }
        state.service = Some(steps::deploy_service(env, state).await.unwrap());
        if last == "deploy-service" {
            return;
        }
        while !state.service.as_ref().unwrap().poll.ready {
            self.wait(60);
            state.service = Some(steps::check_service(env, state).await.unwrap());
        }
    }

    async fn cleanup_to_done(&self, state: &mut DeployState) {
        for _ in 0..50 {
            let report = steps::cleanup(self.env(), state).await.unwrap();
            let done = report.done;
            state.cleanup = Some(report);
            if done {
                return;
            }
            self.wait(60);
        }
        panic!("clean-up never finished");
    }

    async fn roll_back_to_done(&self, state: &mut DeployState) {
        state.error = Some(CaughtError {
            error: "PolicyDenied".into(),
            cause: "test".into(),
        });
        for _ in 0..50 {
            let report = steps::rollback(self.env(), state).await.unwrap();
            let done = report.sweep.done;
            state.rollback = Some(report);
            if done {
                return;
            }
            self.wait(60);
        }
        panic!("rollback never finished");
    }

    async fn tracked(&self, namespace: &str) -> Vec<(String, TrackedRole)> {
        self.records()
            .tracked(&ns(namespace))
            .await
            .unwrap()
            .into_iter()
            .map(|t| (t.db_instance_id, t.role))
            .collect()
    }
}

fn ns(text: &str) -> Namespace {
    text.parse().unwrap()
}

fn assert_denied<T: std::fmt::Debug>(result: Result<T, StepError>, fragment: &str) {
    let err = result.unwrap_err();
    assert_eq!(err.name(), "PolicyDenied", "{err}");
    assert!(matches!(err, StepError::PolicyDenied { .. }));
    assert!(
        err.to_string().contains(fragment),
        "{err} lacks {fragment:?}"
    );
}

fn assert_failed_closed<T: std::fmt::Debug>(result: Result<T, StepError>, plugin: &str) {
    let err = result.unwrap_err();
    assert_eq!(err.name(), "PolicyFailed", "{err}");
    match &err {
        StepError::PolicyFailed {
            plugin: failed,
            reason,
            ..
        } => {
            assert_eq!(failed, plugin);
            assert!(reason.contains("trapped"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

// --- no bindings ----------------------------------------------------------------------------

#[tokio::test]
async fn without_bindings_no_plugin_is_asked_and_every_step_runs() {
    // An engine that would say no to everything, and a catalog that binds nothing here.
    let f = Fixture::new(ScriptedEngine::new(|_, _| Answer::Deny(vec!["no".into()])));
    f.catalog(PolicyCatalog {
        bindings: vec![PolicyBinding {
            namespaces: vec!["ab-*".into()],
            ..PolicyBinding::new("guard")
        }],
    });
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "stable").await;
    f.cleanup_to_done(&mut state).await;
    assert!(f.engine.seen().is_empty(), "{:?}", f.engine.seen_steps());
    assert_eq!(
        f.world.active_db(&ns(QA)),
        Some(state.db.unwrap().db_instance_id)
    );
}

#[tokio::test]
async fn the_engine_without_plugins_fails_closed_only_where_a_plugin_is_bound() {
    let world = World::demo(Utc::now());
    let aws = world.aws();
    let layout = ParameterLayout::default();
    let env = Env::new(&aws, &layout);
    let state = DeployState {
        namespace: QA.into(),
        source_namespace: Some(DEV.into()),
        execution: Some(ExecutionInfo {
            id: "exec-1".into(),
            started_at: world.now(),
        }),
        ..DeployState::default()
    };
    // No catalog: Env::new's NoPlugins is never asked.
    steps::snapshot(env, &state).await.unwrap();
    world
        .seed_policy_catalog(
            &layout,
            &PolicyCatalog {
                bindings: vec![PolicyBinding::new("naming")],
            },
        )
        .unwrap();
    let mut later = state.clone();
    later.execution.as_mut().unwrap().id = "exec-2".into();
    later.execution.as_mut().unwrap().started_at = world.now() + chrono::Duration::hours(1);
    let err = steps::snapshot(env, &later).await.unwrap_err();
    assert_eq!(err.name(), "PolicyFailed");
    assert!(
        err.to_string().contains("plugin naming is not installed"),
        "{err}"
    );
}

// --- snapshot -------------------------------------------------------------------------------

#[tokio::test]
async fn a_denied_snapshot_is_not_taken() {
    let f = Fixture::new(ScriptedEngine::deny_at(PolicyStep::Snapshot));
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "lock").await;
    f.bind(&["guard"]);
    let before = f.world_state();
    assert_denied(
        steps::snapshot(f.env(), &state).await,
        "policy denied snapshot for xy-0146-qa: guard: no snapshot today",
    );
    assert_eq!(f.world_state(), before, "nothing changed");
    let id = format!("{DEV}-{}", Timestamp::from_datetime(f.world.now()));
    assert!(f.aws.describe_snapshot(&id).await.is_err());
}

#[tokio::test]
async fn a_failing_plugin_stops_the_snapshot() {
    let f = Fixture::new(ScriptedEngine::fail_at(PolicyStep::Snapshot));
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "lock").await;
    f.bind(&["guard"]);
    let before = f.world_state();
    assert_failed_closed(steps::snapshot(f.env(), &state).await, "guard");
    assert_eq!(f.world_state(), before);
}

#[tokio::test]
async fn the_snapshot_context_carries_the_source_database() {
    let f = Fixture::new(ScriptedEngine::new(|_, _| Answer::Allow));
    let mut state = f.state(QA, "exec-1");
    state.image = Some("registry.example/xy-app:1.5.0".into());
    f.run_until(&mut state, "lock").await;
    f.bind(&["guard"]);
    let taken = steps::snapshot(f.env(), &state).await.unwrap();
    let ctx = f.engine.context_of(PolicyStep::Snapshot);
    let dev_db = f.world.active_db(&ns(DEV)).unwrap();
    assert_eq!(ctx.namespace, QA);
    assert_eq!(
        (
            ctx.customer.as_str(),
            ctx.project.as_str(),
            ctx.environment.as_str()
        ),
        ("xy", "0146", "qa")
    );
    assert_eq!(ctx.region, "eu-west-1");
    assert_eq!(ctx.now, f.world.now().timestamp());
    assert_eq!(ctx.execution_id, "exec-1");
    assert_eq!(ctx.source_namespace.as_deref(), Some(DEV));
    assert_eq!(ctx.target_version.as_deref(), Some("1.5.0"));
    let source = ctx.source_db.clone().unwrap();
    assert_eq!(source.id, dev_db);
    assert!(source.active);
    assert_eq!(source.instance_class, "db.t4g.medium");
    assert_eq!(source.allocated_storage_gib, 20);
    assert_eq!(
        (source.engine.as_str(), source.engine_version.as_str()),
        ("postgres", "16.4")
    );
    assert_eq!(source.region, "eu-west-1");
    let snapshot = ctx.snapshot.clone().unwrap();
    assert_eq!(snapshot.id, taken.snapshot_id);
    assert_eq!(snapshot.source_db, dev_db);
    assert!(snapshot.taken_by_this_execution);
    assert_eq!(snapshot.age_seconds, 0);
    assert_eq!(ctx.target_db, None);
    assert_eq!(ctx.settings, json!({}));
}

#[tokio::test]
async fn a_snapshot_retry_that_finds_its_snapshot_does_not_ask_again() {
    let f = Fixture::new(ScriptedEngine::new(|_, _| Answer::Allow));
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "lock").await;
    f.bind(&["guard"]);
    let first = steps::snapshot(f.env(), &state).await.unwrap();
    let again = steps::snapshot(f.env(), &state).await.unwrap();
    assert_eq!(again.snapshot_id, first.snapshot_id);
    assert_eq!(f.engine.seen_steps(), [PolicyStep::Snapshot]);
}

#[tokio::test]
async fn a_given_snapshot_is_not_a_change_and_asks_nothing() {
    let f = Fixture::new(ScriptedEngine::new(|_, _| Answer::Deny(vec!["no".into()])));
    let dev_db = f.world.active_db(&ns(DEV)).unwrap();
    f.aws
        .create_snapshot(&dev_db, "xy-0146-dev-20261101-030000", &Default::default())
        .await
        .unwrap();
    f.bind(&["guard"]);
    let mut state = f.state(QA, "exec-1");
    state.source_namespace = None;
    state.snapshot_id = Some("xy-0146-dev-20261101-030000".into());
    steps::snapshot(f.env(), &state).await.unwrap();
    assert!(f.engine.seen().is_empty());
}

// --- create-database ------------------------------------------------------------------------

#[tokio::test]
async fn a_denied_restore_creates_and_tracks_nothing() {
    let f = Fixture::new(ScriptedEngine::deny_at(PolicyStep::CreateDatabase));
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "read-pointer").await;
    f.bind(&["guard"]);
    let before = f.world_state();
    assert_denied(
        steps::create_db(f.env(), &state).await,
        "policy denied create-database for xy-0146-qa: guard: no create-database today",
    );
    assert_eq!(f.world_state(), before, "no database, no tracking record");
    assert!(f.tracked(QA).await.is_empty());
    assert_eq!(f.world.db_instances().len(), 5);
}

#[tokio::test]
async fn a_failing_plugin_stops_the_restore() {
    let f = Fixture::new(ScriptedEngine::fail_at(PolicyStep::CreateDatabase));
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "read-pointer").await;
    f.bind(&["guard"]);
    let before = f.world_state();
    assert_failed_closed(steps::create_db(f.env(), &state).await, "guard");
    assert_eq!(f.world_state(), before);
}

#[tokio::test]
async fn the_restore_context_carries_the_snapshot_and_the_new_database() {
    let f = Fixture::new(ScriptedEngine::new(|_, _| Answer::Allow));
    let mut state = f.state(QA, "exec-1");
    state.image = Some("1.5.0".into());
    f.run_until(&mut state, "read-pointer").await;
    f.wait(3 * 3600);
    f.bind(&["guard"]);
    let created = steps::create_db(f.env(), &state).await.unwrap();
    let ctx = f.engine.context_of(PolicyStep::CreateDatabase);
    let snapshot_ref = state.snapshot.as_ref().unwrap();
    let snapshot = ctx.snapshot.clone().unwrap();
    assert_eq!(snapshot.id, snapshot_ref.snapshot_id);
    assert_eq!(
        snapshot.created_at,
        snapshot_ref.timestamp.datetime().timestamp()
    );
    assert_eq!(
        snapshot.age_seconds,
        u64::try_from(ctx.now - snapshot.created_at).unwrap()
    );
    assert!(snapshot.age_seconds >= 3 * 3600, "{}", snapshot.age_seconds);
    assert!(snapshot.taken_by_this_execution);
    assert_eq!(snapshot.allocated_storage_gib, 20);
    let target = ctx.target_db.clone().unwrap();
    assert_eq!(target.id, created.db_instance_id);
    assert_eq!(target.instance_class, "db.t4g.medium");
    assert_eq!(target.allocated_storage_gib, 20);
    assert_eq!(target.engine, "postgres");
    assert_eq!(target.engine_version, "16.4");
    assert_eq!(target.region, "eu-west-1");
    assert!(!target.active && !target.in_flight && !target.final_snapshot);
    assert_eq!(ctx.target_version.as_deref(), Some("1.5.0"));
    assert_eq!(ctx.source_db, None);
    assert_eq!(ctx.current_pointer, None);
}

#[tokio::test]
async fn a_restore_retry_that_finds_its_database_does_not_ask_again() {
    let f = Fixture::new(ScriptedEngine::new(|_, _| Answer::Allow));
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "read-pointer").await;
    f.bind(&["guard"]);
    let first = steps::create_db(f.env(), &state).await.unwrap();
    let again = steps::create_db(f.env(), &state).await.unwrap();
    assert_eq!(again.db_instance_id, first.db_instance_id);
    assert_eq!(f.engine.seen_steps(), [PolicyStep::CreateDatabase]);
}

// --- swap-pointer ---------------------------------------------------------------------------

#[tokio::test]
async fn a_denied_swap_leaves_the_pointer_and_the_records_alone() {
    let f = Fixture::new(ScriptedEngine::deny_at(PolicyStep::SwapPointer));
    let mut state = f.state(QA, "exec-1");
    let old = f.world.active_db(&ns(QA)).unwrap();
    f.run_until(&mut state, "db-ready").await;
    f.bind(&["guard"]);
    let before = f.world_state();
    assert_denied(
        steps::swap_pointer(f.env(), &state).await,
        "guard: no swap-pointer today",
    );
    assert_eq!(f.world_state(), before);
    assert_eq!(f.records().pointer(&ns(QA)).await.unwrap().unwrap().1, 1);
    assert_eq!(f.world.active_db(&ns(QA)), Some(old));
    // Only the candidate, as create-db left it: the old database was not retired.
    let new = state.db.as_ref().unwrap().db_instance_id.clone();
    assert_eq!(f.tracked(QA).await, vec![(new, TrackedRole::Candidate)]);
}

#[tokio::test]
async fn a_failing_plugin_stops_the_swap() {
    let f = Fixture::new(ScriptedEngine::fail_at(PolicyStep::SwapPointer));
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "db-ready").await;
    f.bind(&["guard"]);
    let before = f.world_state();
    assert_failed_closed(steps::swap_pointer(f.env(), &state).await, "guard");
    assert_eq!(f.world_state(), before);
}

#[tokio::test]
async fn the_swap_context_names_both_pointers_and_a_retry_does_not_ask_again() {
    let f = Fixture::new(ScriptedEngine::new(|_, _| Answer::Allow));
    let mut state = f.state(QA, "exec-1");
    let old = f.world.active_db(&ns(QA)).unwrap();
    f.run_until(&mut state, "db-ready").await;
    f.bind(&["guard"]);
    steps::swap_pointer(f.env(), &state).await.unwrap();
    let new = state.db.as_ref().unwrap().db_instance_id.clone();
    let ctx = f.engine.context_of(PolicyStep::SwapPointer);
    assert_eq!(ctx.current_pointer.as_deref(), Some(old.as_str()));
    assert_eq!(ctx.new_pointer.as_deref(), Some(new.as_str()));
    let target = ctx.target_db.unwrap();
    assert_eq!(target.id, new);
    assert_eq!(target.instance_class, "db.t4g.medium");
    assert_eq!(target.region, "eu-west-1");
    // The retry finds its own write: no second question.
    steps::swap_pointer(f.env(), &state).await.unwrap();
    assert_eq!(f.engine.seen_steps(), [PolicyStep::SwapPointer]);
}

// --- deploy-service -------------------------------------------------------------------------

#[tokio::test]
async fn a_denied_service_deploy_registers_no_revision() {
    let f = Fixture::new(ScriptedEngine::deny_at(PolicyStep::DeployService));
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "swap").await;
    f.bind(&["guard"]);
    let before = f.world_state();
    assert_denied(
        steps::deploy_service(f.env(), &state).await,
        "guard: no deploy-service today",
    );
    assert_eq!(f.world_state(), before);
    let latest = f
        .aws
        .latest_task_definition("xy-0146-qa-app")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.revision, 1, "no new task definition revision");
    let service = f
        .aws
        .describe_service("switchyard-nonprod", "xy-0146-qa-app")
        .await
        .unwrap();
    assert!(service.task_definition_arn.ends_with(":1"));
}

#[tokio::test]
async fn a_failing_plugin_stops_the_service_deploy() {
    let f = Fixture::new(ScriptedEngine::fail_at(PolicyStep::DeployService));
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "swap").await;
    f.bind(&["guard"]);
    let before = f.world_state();
    assert_failed_closed(steps::deploy_service(f.env(), &state).await, "guard");
    assert_eq!(f.world_state(), before);
}

#[tokio::test]
async fn the_service_context_names_the_image_change_and_the_database() {
    let f = Fixture::new(ScriptedEngine::new(|_, _| {
        Answer::Warn("rolling on a friday")
    }));
    let mut state = f.state(QA, "exec-1");
    state.image = Some("1.5.0".into());
    f.run_until(&mut state, "swap").await;
    f.bind(&["guard"]);
    let rollout = steps::deploy_service(f.env(), &state).await.unwrap();
    assert_eq!(rollout.revision, 2, "a warning does not stop the step");
    let ctx = f.engine.context_of(PolicyStep::DeployService);
    let service = ctx.service.clone().unwrap();
    assert_eq!(service.cluster, "switchyard-nonprod");
    assert_eq!(service.service, "xy-0146-qa-app");
    assert_eq!(service.container, "app");
    assert!(
        service.current_image.ends_with("/xy-app:1.3.2"),
        "{}",
        service.current_image
    );
    assert!(
        service.new_image.ends_with("/xy-app:1.5.0"),
        "{}",
        service.new_image
    );
    assert_eq!(ctx.target_version.as_deref(), Some("1.5.0"));
    let target = ctx.target_db.unwrap();
    assert_eq!(target.id, state.db.as_ref().unwrap().db_instance_id);
    assert_eq!(target.engine, "postgres");
}

#[tokio::test]
async fn a_service_deploy_that_finds_its_registered_revision_does_not_ask_again() {
    let f = Fixture::new(ScriptedEngine::new(|_, _| Answer::Deny(vec!["no".into()])));
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "swap").await;
    // As if an earlier invocation, allowed, registered our revision and lost the answer.
    let service = f
        .aws
        .describe_service("switchyard-nonprod", "xy-0146-qa-app")
        .await
        .unwrap();
    let current = f
        .aws
        .describe_task_definition(&service.task_definition_arn)
        .await
        .unwrap();
    let change = steps::service::revision_change(
        &current,
        &service.task_definition_arn,
        &state.previous.as_ref().unwrap().settings,
        &state.swap.as_ref().unwrap().pointer,
        None,
        QA,
        state.execution.as_ref().unwrap(),
    )
    .unwrap();
    f.aws
        .register_revision(&service.task_definition_arn, &change)
        .await
        .unwrap();
    f.bind(&["guard"]);
    let rollout = steps::deploy_service(f.env(), &state).await.unwrap();
    assert_eq!(rollout.revision, 2);
    assert!(f.engine.seen().is_empty());
    // And once the service runs it, a retry returns it without asking either.
    steps::deploy_service(f.env(), &state).await.unwrap();
    assert!(f.engine.seen().is_empty());
}

// --- cleanup --------------------------------------------------------------------------------

#[tokio::test]
async fn a_denied_delete_keeps_the_database_tracked_and_the_cleanup_finishes() {
    let f = Fixture::new(ScriptedEngine::deny_at(PolicyStep::Cleanup));
    let mut state = f.state(QA, "exec-1");
    let old = f.world.active_db(&ns(QA)).unwrap();
    f.run_until(&mut state, "stable").await;
    f.bind(&["guard"]);
    let report = steps::cleanup(f.env(), &state).await.unwrap();
    assert!(report.done, "a refusal is an answer, not a failed clean-up");
    assert!(report.deleting.is_empty() && report.deleted.is_empty());
    assert_eq!(report.kept.len(), 1, "{:?}", report.kept);
    assert!(
        report.kept[0].starts_with(&format!(
            "{old}: policy denied cleanup for xy-0146-qa: guard: no cleanup today"
        )),
        "{:?}",
        report.kept
    );
    assert_eq!(f.aws.describe_db(&old).await.unwrap().status, "available");
    assert_eq!(f.tracked(QA).await, vec![(old, TrackedRole::Retired)]);
}

#[tokio::test]
async fn a_failing_plugin_keeps_the_database_and_fails_the_cleanup() {
    let f = Fixture::new(ScriptedEngine::fail_at(PolicyStep::Cleanup));
    let mut state = f.state(QA, "exec-1");
    let old = f.world.active_db(&ns(QA)).unwrap();
    f.run_until(&mut state, "stable").await;
    f.bind(&["guard"]);
    let before = f.world_state();
    assert_failed_closed(steps::cleanup(f.env(), &state).await, "guard");
    assert_eq!(f.world_state(), before);
    assert_eq!(f.aws.describe_db(&old).await.unwrap().status, "available");
    assert_eq!(f.tracked(QA).await, vec![(old, TrackedRole::Retired)]);
}

#[tokio::test]
async fn each_delete_is_asked_about_on_its_own() {
    // First deploy: its clean-up is refused, so its old database stays tracked.
    let f = Fixture::new(ScriptedEngine::deny_at(PolicyStep::Cleanup));
    let first_old = f.world.active_db(&ns(QA)).unwrap();
    let mut first = f.state(QA, "exec-1");
    f.run_until(&mut first, "stable").await;
    f.bind(&["guard"]);
    f.cleanup_to_done(&mut first).await;
    steps::release_lock(f.env(), &first).await.unwrap();

    // Second deploy, with a policy that protects only the first deploy's old database.
    let protected = first_old.clone();
    let f = Fixture {
        engine: ScriptedEngine::new(move |_, ctx| match &ctx.target_db {
            Some(db) if ctx.step == PolicyStep::Cleanup && db.id == protected => {
                Answer::Deny(vec![format!("{} holds the audit trail", db.id)])
            }
            _ => Answer::Allow,
        }),
        ..f
    };
    f.wait(3600);
    let mut second = f.state(QA, "exec-2");
    f.run_until(&mut second, "stable").await;
    let second_old = second.swap.as_ref().unwrap().retired.clone().unwrap();
    f.cleanup_to_done(&mut second).await;
    let report = second.cleanup.clone().unwrap();
    assert_eq!(report.deleted, vec![second_old.clone()]);
    assert!(
        report
            .kept
            .iter()
            .any(|k| k.contains(&format!("{first_old} holds the audit trail"))),
        "{:?}",
        report.kept
    );
    assert!(f.aws.describe_db(&second_old).await.is_err());
    assert_eq!(
        f.aws.describe_db(&first_old).await.unwrap().status,
        "available"
    );
    assert_eq!(f.tracked(QA).await, vec![(first_old, TrackedRole::Retired)]);
}

#[tokio::test]
async fn the_cleanup_context_describes_the_database_to_delete() {
    let f = Fixture::new(ScriptedEngine::new(|_, _| Answer::Allow));
    let mut state = f.state(PROD, "exec-1");
    let old = f.world.active_db(&ns(PROD)).unwrap();
    f.run_until(&mut state, "stable").await;
    f.bind(&["guard"]);
    let report = steps::cleanup(f.env(), &state).await.unwrap();
    assert_eq!(report.deleting, vec![old.clone()]);
    let ctx = f.engine.context_of(PolicyStep::Cleanup);
    let new = state.db.as_ref().unwrap().db_instance_id.clone();
    assert_eq!(ctx.current_pointer.as_deref(), Some(new.as_str()));
    assert_eq!(ctx.environment, "prod");
    let target = ctx.target_db.unwrap();
    assert_eq!(target.id, old);
    assert!(!target.active && !target.in_flight);
    assert!(target.final_snapshot, "prod deletes keep a final snapshot");
    assert_eq!(target.allocated_storage_gib, 100);
    assert_eq!(target.region, "eu-west-1");
    // The next round finds it deleting: no second question.
    state.cleanup = Some(report);
    steps::cleanup(f.env(), &state).await.unwrap();
    assert_eq!(f.engine.seen_steps(), [PolicyStep::Cleanup]);
}

// --- rollback -------------------------------------------------------------------------------

#[tokio::test]
async fn rollback_is_never_stopped_by_a_policy() {
    let f = Fixture::new(ScriptedEngine::new(|_, _| Answer::Fail));
    let before = f.records().pointer(&ns(QA)).await.unwrap().unwrap().0;
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "deploy-service").await;
    let new = state.db.as_ref().unwrap().db_instance_id.clone();
    // Every plugin now fails on every step: the undo goes ahead regardless.
    f.bind(&["guard", "other"]);
    f.roll_back_to_done(&mut state).await;
    let report = state.rollback.clone().unwrap();
    assert!(report.pointer_restored && report.service_restored);
    assert_eq!(report.sweep.deleted, vec![new.clone()]);
    assert!(f.aws.describe_db(&new).await.is_err());
    assert_eq!(
        f.records().pointer(&ns(QA)).await.unwrap().unwrap().0,
        before
    );
    assert!(f.tracked(QA).await.is_empty());
    assert!(f.engine.seen().is_empty(), "{:?}", f.engine.seen_steps());
}

/// A rollback undoes its own run and nothing else: what an earlier run left tracked (here kept on
/// purpose by a clean-up's policy) is neither deleted, nor asked about, nor waited on.
#[tokio::test]
async fn rollback_deletes_only_its_own_database_and_leaves_what_an_earlier_run_left() {
    let f = Fixture::new(ScriptedEngine::deny_at(PolicyStep::Cleanup));
    let first_old = f.world.active_db(&ns(QA)).unwrap();
    let mut first = f.state(QA, "exec-1");
    f.run_until(&mut first, "stable").await;
    f.bind(&["guard"]);
    f.cleanup_to_done(&mut first).await;
    steps::release_lock(f.env(), &first).await.unwrap();

    f.wait(3600);
    let mut second = f.state(QA, "exec-2");
    f.run_until(&mut second, "deploy-service").await;
    let seen_before = f.engine.seen().len();
    let new = second.db.as_ref().unwrap().db_instance_id.clone();
    f.roll_back_to_done(&mut second).await;
    let report = second.rollback.clone().unwrap();
    assert_eq!(
        report.sweep.deleted,
        vec![new.clone()],
        "its own: not asked"
    );
    assert!(
        f.engine.seen().len() == seen_before,
        "asked: {:?}",
        &f.engine.seen()[seen_before..]
    );
    assert_eq!(
        f.aws.describe_db(&first_old).await.unwrap().status,
        "available"
    );
    assert!(f.aws.describe_db(&new).await.is_err());
    assert_eq!(f.tracked(QA).await, vec![(first_old, TrackedRole::Retired)]);
}

// --- the catalog ----------------------------------------------------------------------------

#[tokio::test]
async fn namespace_patterns_pick_the_bindings() {
    let f = Fixture::new(ScriptedEngine::new(|_, _| Answer::Allow));
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "read-pointer").await;
    let bound = |plugin: &str, patterns: &[&str]| PolicyBinding {
        namespaces: patterns.iter().map(|p| (*p).to_owned()).collect(),
        ..PolicyBinding::new(plugin)
    };
    f.catalog(PolicyCatalog {
        bindings: vec![
            bound("prod-only", &["*-prod"]),
            bound("customer-xy", &["xy-*"]),
            bound("customer-ab", &["ab-*"]),
            bound("everywhere", &[]),
            bound("exact", &["xy-0146-qa"]),
            bound("either", &["ab-*", "*-qa"]),
        ],
    });
    steps::create_db(f.env(), &state).await.unwrap();
    let asked: Vec<String> = f.engine.seen().into_iter().map(|(p, _)| p).collect();
    assert_eq!(asked, ["customer-xy", "everywhere", "exact", "either"]);
}

#[tokio::test]
async fn the_namespace_settings_overlay_the_bindings_and_fill_the_common_fields() {
    let f = Fixture::new(ScriptedEngine::new(|_, _| Answer::Allow));
    let mut settings = f.records().settings(&ns(QA)).await.unwrap();
    settings.region = Some("eu-central-1".into());
    settings.plan = Some("gold".into());
    settings.version = Some("1.3.2".into());
    settings.policies = BTreeMap::from([
        (
            "freshness".to_owned(),
            json!({"max_age_hours": 72, "windows": ["sat"]}),
        ),
        ("unbound".to_owned(), json!({"x": 1})),
    ]);
    f.records().put_settings(&ns(QA), &settings).await.unwrap();
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "read-pointer").await;
    f.catalog(PolicyCatalog {
        bindings: vec![
            PolicyBinding {
                settings: json!({"max_age_hours": 24, "windows": ["sun"], "warn_at": 0.8}),
                ..PolicyBinding::new("freshness")
            },
            PolicyBinding::new("naming"),
        ],
    });
    steps::create_db(f.env(), &state).await.unwrap();
    let seen = f.engine.seen();
    let by_plugin: BTreeMap<&str, &PolicyContext> =
        seen.iter().map(|(p, c)| (p.as_str(), c)).collect();
    assert_eq!(
        by_plugin.keys().copied().collect::<Vec<_>>(),
        ["freshness", "naming"],
        "a namespace's settings do not bind a plugin"
    );
    assert_eq!(
        by_plugin["freshness"].settings,
        json!({"max_age_hours": 72, "windows": ["sat"], "warn_at": 0.8})
    );
    assert_eq!(by_plugin["naming"].settings, json!({}));
    let ctx = by_plugin["naming"];
    assert_eq!(ctx.region, "eu-central-1");
    assert_eq!(
        ctx.target_db.as_ref().unwrap().region,
        "eu-central-1",
        "the namespace's region is where its database lives"
    );
    assert_eq!(ctx.plan.as_deref(), Some("gold"));
    assert_eq!(ctx.current_version.as_deref(), Some("1.3.2"));
}

#[tokio::test]
async fn a_plugin_that_does_not_check_the_step_is_skipped() {
    let f = Fixture::new(ScriptedEngine::new(|plugin, _| {
        if plugin == "snapshot-only" {
            Answer::Skip
        } else {
            Answer::Allow
        }
    }));
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "read-pointer").await;
    f.bind(&["snapshot-only", "guard"]);
    let db = steps::create_db(f.env(), &state).await.unwrap();
    assert!(f.aws.describe_db(&db.db_instance_id).await.is_ok());
    let asked: Vec<String> = f.engine.seen().into_iter().map(|(p, _)| p).collect();
    assert_eq!(asked, ["snapshot-only", "guard"]);
}

#[tokio::test]
async fn every_denial_is_named_and_a_failure_wins_over_them() {
    let f = Fixture::new(ScriptedEngine::new(|plugin, _| match plugin {
        "capacity" => Answer::Deny(vec![
            "db.t4g.medium is over the plan".into(),
            "20 gib is over the plan".into(),
        ]),
        "freshness" => Answer::Deny(vec!["the snapshot is too old".into()]),
        "broken" => Answer::Fail,
        _ => Answer::Allow,
    }));
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "read-pointer").await;
    f.bind(&["capacity", "naming", "freshness"]);
    let err = steps::create_db(f.env(), &state).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "policy denied create-database for xy-0146-qa: capacity: db.t4g.medium is over the plan; \
         20 gib is over the plan; freshness: the snapshot is too old"
    );
    match err {
        StepError::PolicyDenied { step, denials, .. } => {
            assert_eq!(step, PolicyStep::CreateDatabase);
            let plugins: Vec<&str> = denials.iter().map(|d| d.plugin.as_str()).collect();
            assert_eq!(plugins, ["capacity", "freshness"]);
        }
        other => panic!("{other:?}"),
    }

    f.bind(&["capacity", "broken", "freshness"]);
    let before = f.engine.seen().len();
    assert_failed_closed(steps::create_db(f.env(), &state).await, "broken");
    assert_eq!(
        f.engine.seen().len() - before,
        3,
        "every plugin is still asked"
    );
}

#[tokio::test]
async fn a_broken_catalog_stops_the_step_before_it_changes_anything() {
    let f = Fixture::new(ScriptedEngine::new(|_, _| Answer::Allow));
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "read-pointer").await;
    use switchyard_core::ports::Parameters;
    f.aws
        .put_parameter(
            &f.layout.policies(),
            r#"{"bindings": [{"plugin": "a", "settings": 1}]}"#,
            true,
        )
        .await
        .unwrap();
    let before = f.world_state();
    let err = steps::create_db(f.env(), &state).await.unwrap_err();
    assert_eq!(err.name(), "InvalidInput");
    assert!(
        err.to_string()
            .contains("/switchyard/policies (version 1) is not a valid policy catalog"),
        "{err}"
    );
    assert_eq!(f.world_state(), before);
    assert!(f.engine.seen().is_empty());
}

#[tokio::test]
async fn bad_per_namespace_settings_stop_the_step_and_name_the_plugin() {
    let f = Fixture::new(ScriptedEngine::new(|_, _| Answer::Allow));
    let mut settings = f.records().settings(&ns(QA)).await.unwrap();
    settings.policies = BTreeMap::from([("naming".to_owned(), json!("strict"))]);
    f.records().put_settings(&ns(QA), &settings).await.unwrap();
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "read-pointer").await;
    f.bind(&["naming"]);
    let before = f.world_state();
    let err = steps::create_db(f.env(), &state).await.unwrap_err();
    assert_eq!(err.name(), "InvalidInput");
    assert!(err.to_string().contains("policies.naming"), "{err}");
    assert_eq!(f.world_state(), before);
}

#[tokio::test]
async fn a_broken_catalog_never_stops_a_rollback() {
    let f = Fixture::new(ScriptedEngine::deny_at(PolicyStep::Cleanup));
    let first_old = f.world.active_db(&ns(QA)).unwrap();
    let mut first = f.state(QA, "exec-1");
    f.run_until(&mut first, "stable").await;
    f.bind(&["guard"]);
    f.cleanup_to_done(&mut first).await;
    steps::release_lock(f.env(), &first).await.unwrap();
    f.wait(3600);
    let mut second = f.state(QA, "exec-2");
    f.run_until(&mut second, "deploy-service").await;
    let new = second.db.as_ref().unwrap().db_instance_id.clone();
    // The catalog breaks while the deploy runs; the rollback must still undo it.
    use switchyard_core::ports::Parameters;
    f.aws
        .put_parameter(&f.layout.policies(), "{not json", true)
        .await
        .unwrap();
    f.roll_back_to_done(&mut second).await;
    let report = second.rollback.clone().unwrap();
    assert!(report.pointer_restored && report.service_restored);
    assert_eq!(report.sweep.deleted, vec![new]);
    assert_eq!(f.tracked(QA).await, vec![(first_old, TrackedRole::Retired)]);
}

// --- the log --------------------------------------------------------------------------------

/// One event: its target, level and fields.
type Line = (String, tracing::Level, BTreeMap<String, String>);

/// Keeps every event.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<Mutex<Vec<Line>>>);

struct Fields(BTreeMap<String, String>);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl Captured {
    fn push(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields(BTreeMap::new());
        event.record(&mut fields);
        self.0.lock().unwrap().push((
            event.metadata().target().to_owned(),
            *event.metadata().level(),
            fields.0,
        ));
    }
}

thread_local! {
    /// The capture of the test running on this thread, while it captures.
    static CAPTURING: std::cell::RefCell<Option<Captured>> = const { std::cell::RefCell::new(None) };
}

/// The one global subscriber of this test binary: interested in every event, it hands each to
/// the capture of the thread it happened on (a `#[tokio::test]` runs on its own thread). A scoped
/// subscriber (`set_default`) raced the other tests' threads over callsite interest: a callsite
/// registered while it was being added kept an interest computed without it, and a decision went
/// missing from the log now and then.
struct ToThreadCapture;

impl tracing::Subscriber for ToThreadCapture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        CAPTURING.with(|capturing| {
            if let Some(captured) = capturing.borrow().as_ref() {
                captured.push(event);
            }
        });
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Captures this thread's events until dropped.
struct Capturing(Captured);

impl Drop for Capturing {
    fn drop(&mut self) {
        CAPTURING.with(|capturing| capturing.borrow_mut().take());
    }
}

fn capture() -> Capturing {
    static GLOBAL: std::sync::Once = std::sync::Once::new();
    GLOBAL.call_once(|| {
        tracing::subscriber::set_global_default(ToThreadCapture)
            .expect("no other global subscriber in this test binary");
    });
    let captured = Captured::default();
    CAPTURING.with(|capturing| *capturing.borrow_mut() = Some(captured.clone()));
    Capturing(captured)
}

impl Captured {
    fn policy_lines(&self) -> Vec<(tracing::Level, BTreeMap<String, String>)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(target, _, _)| target == "switchyard::policy")
            .map(|(_, level, fields)| (*level, fields.clone()))
            .collect()
    }
}

#[tokio::test]
async fn each_decision_is_one_structured_log_line() {
    let f = Fixture::new(ScriptedEngine::new(|plugin, _| match plugin {
        "capacity" => Answer::Deny(vec!["too big".into()]),
        "naming" => Answer::Warn("odd name"),
        "broken" => Answer::Fail,
        _ => Answer::Skip,
    }));
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "read-pointer").await;
    f.bind(&["naming", "capacity", "snapshot-only"]);
    let capturing = capture();
    steps::create_db(f.env(), &state).await.unwrap_err();
    let lines = capturing.0.policy_lines();
    drop(capturing);
    let decisions: Vec<&BTreeMap<String, String>> = lines
        .iter()
        .filter(|(_, fields)| fields["message"] == "policy decision")
        .map(|(_, fields)| fields)
        .collect();
    assert_eq!(
        decisions.len(),
        2,
        "one per decision, none for a skip: {lines:?}"
    );
    let naming = decisions[0];
    assert_eq!(naming["plugin"], "naming");
    assert_eq!(naming["version"], "0.1.0");
    assert_eq!(naming["step"], "create-database");
    assert_eq!(naming["namespace"], QA);
    assert_eq!(naming["verdict"], "allow");
    assert_eq!(naming["warnings"], r#"["odd name"]"#);
    assert_eq!(naming["elapsed_us"], "7");
    let capacity = decisions[1];
    assert_eq!(capacity["verdict"], "deny");
    assert_eq!(capacity["reasons"], r#"["too big"]"#);

    f.bind(&["broken"]);
    let capturing = capture();
    steps::create_db(f.env(), &state).await.unwrap_err();
    let lines = capturing.0.policy_lines();
    drop(capturing);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let (level, failure) = &lines[0];
    assert_eq!(*level, tracing::Level::ERROR);
    assert_eq!(failure["plugin"], "broken");
    assert_eq!(failure["verdict"], "failed");
    assert!(
        failure["failure"].contains("plugin broken trapped"),
        "{failure:?}"
    );
    assert!(failure.contains_key("elapsed_us"));
}

#[tokio::test]
async fn a_deploy_without_a_new_image_keeps_the_version_and_an_untagged_one_leaves_it_unknown() {
    let f = Fixture::new(ScriptedEngine::new(|_, _| Answer::Allow));
    f.bind(&["guard"]);
    let mut state = f.state(QA, "exec-1");
    state.image = None;
    f.run_until(&mut state, "lock").await;
    steps::snapshot(f.env(), &state).await.unwrap();
    let ctx = f.engine.context_of(PolicyStep::Snapshot);
    // The demo tenant runs 1.3.2; no new image means it stays there.
    assert_eq!(ctx.current_version.as_deref(), Some("1.3.2"));
    assert_eq!(ctx.target_version, ctx.current_version);

    let g = Fixture::new(ScriptedEngine::new(|_, _| Answer::Allow));
    g.bind(&["guard"]);
    let mut state = g.state(QA, "exec-2");
    state.image = Some(
        "registry.example/xy-app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
    );
    g.run_until(&mut state, "lock").await;
    steps::snapshot(g.env(), &state).await.unwrap();
    let ctx = g.engine.context_of(PolicyStep::Snapshot);
    assert_eq!(ctx.current_version.as_deref(), Some("1.3.2"));
    assert_eq!(ctx.target_version, None);
}

// --- rollout modes and pinned artifacts -------------------------------------------------------

fn moded(plugin: &str, mode: PolicyMode) -> PolicyBinding {
    PolicyBinding {
        mode,
        ..PolicyBinding::new(plugin)
    }
}

#[tokio::test]
async fn a_warn_binding_reports_its_no_and_the_step_goes_on() {
    let f = Fixture::new(ScriptedEngine::deny_at(PolicyStep::CreateDatabase));
    f.catalog(PolicyCatalog {
        bindings: vec![moded("guard", PolicyMode::Warn)],
    });
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "read-pointer").await;
    let db = steps::create_db(f.env(), &state).await.unwrap();
    assert!(f.aws.describe_db(&db.db_instance_id).await.is_ok());
    assert_eq!(
        f.engine.seen_steps().last(),
        Some(&PolicyStep::CreateDatabase)
    );
}

#[tokio::test]
async fn an_audit_binding_neither_stops_a_step_for_a_no_nor_for_a_failure() {
    for answer in ["deny", "fail"] {
        let engine = ScriptedEngine::new(move |_, ctx| match (answer, ctx.step) {
            ("deny", PolicyStep::CreateDatabase) => Answer::Deny(vec!["no".into()]),
            ("fail", PolicyStep::CreateDatabase) => Answer::Fail,
            _ => Answer::Allow,
        });
        let f = Fixture::new(engine);
        f.catalog(PolicyCatalog {
            bindings: vec![moded("guard", PolicyMode::Audit)],
        });
        let mut state = f.state(QA, "exec-1");
        f.run_until(&mut state, "read-pointer").await;
        assert!(steps::create_db(f.env(), &state).await.is_ok(), "{answer}");
    }
}

#[tokio::test]
async fn an_enforced_binding_still_stops_the_step_and_a_warn_binding_still_fails_closed_on_a_pin() {
    let f = Fixture::new(ScriptedEngine::deny_at(PolicyStep::CreateDatabase));
    f.catalog(PolicyCatalog {
        bindings: vec![moded("guard", PolicyMode::Enforce)],
    });
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "read-pointer").await;
    let err = steps::create_db(f.env(), &state).await.unwrap_err();
    assert_eq!(err.name(), "PolicyDenied");

    let other = "cd".repeat(32);
    f.catalog(PolicyCatalog {
        bindings: vec![PolicyBinding {
            sha256: Some(other.clone()),
            ..moded("guard", PolicyMode::Warn)
        }],
    });
    let err = steps::create_db(f.env(), &state).await.unwrap_err();
    assert_eq!(err.name(), "PolicyFailed", "{err}");
    let said = err.to_string();
    assert!(
        said.contains(SCRIPTED_DIGEST) && said.contains(&other),
        "{said}"
    );
}

#[tokio::test]
async fn a_binding_pinned_to_the_artifact_that_runs_decides_as_usual() {
    let f = Fixture::new(ScriptedEngine::new(|_, _| Answer::Allow));
    f.catalog(PolicyCatalog {
        bindings: vec![PolicyBinding {
            sha256: Some(SCRIPTED_DIGEST.into()),
            ..PolicyBinding::new("guard")
        }],
    });
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "read-pointer").await;
    assert!(steps::create_db(f.env(), &state).await.is_ok());
    // A pin that is no digest at all is refused with the catalog.
    let bad = PolicyCatalog {
        bindings: vec![PolicyBinding {
            sha256: Some("not-a-digest".into()),
            ..PolicyBinding::new("guard")
        }],
    };
    assert!(bad.validate().unwrap_err().contains("sha256"));
}
