//! Every step handler against the simulated world: what it does, that it is idempotent, and how
//! it refuses bad input. (These live here rather than beside each handler because they use
//! `switchyard-sim`, which itself depends on this crate.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use chrono::Utc;
use switchyard_core::ports::{Databases, Parameters, Services, Snapshots, Tags, tag};
use switchyard_core::records::{ActivePointer, ParameterLayout, Records, TrackedRole};
use switchyard_core::state::{CaughtError, DeployState, ExecutionInfo};
use switchyard_core::steps::{self, Env};
use switchyard_core::{Namespace, StepError};
use switchyard_sim::{SimAws, World};

const QA: &str = "xy-0146-qa";
const DEV: &str = "xy-0146-dev";

struct Fixture {
    world: World,
    aws: SimAws,
    layout: ParameterLayout,
}

impl Fixture {
    fn new() -> Self {
        let world = World::demo(Utc::now());
        Fixture {
            aws: world.aws(),
            world,
            layout: ParameterLayout::default(),
        }
    }

    fn env(&self) -> Env<'_> {
        Env::new(&self.aws, &self.layout)
    }

    fn records(&self) -> Records<'_> {
        Records {
            params: &self.aws,
            layout: &self.layout,
        }
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

    /// Runs the steps up to and including `last`, as the state machine would, polling with time.
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
        if last == "create-db" {
            return;
        }
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
}

fn ns(text: &str) -> Namespace {
    text.parse().unwrap()
}

fn assert_error(result: Result<impl std::fmt::Debug, StepError>, name: &str, fragment: &str) {
    let err = result.unwrap_err();
    assert_eq!(err.name(), name, "{err}");
    assert!(
        err.to_string().contains(fragment),
        "{err:?} lacks {fragment:?}"
    );
}

// --- lock -------------------------------------------------------------------------------------

#[tokio::test]
async fn acquire_is_idempotent_and_exclusive() {
    let f = Fixture::new();
    let lock = steps::acquire_lock(f.env(), &f.state(QA, "exec-1"))
        .await
        .unwrap();
    assert_eq!(lock.execution_id, "exec-1");
    assert_eq!(
        steps::acquire_lock(f.env(), &f.state(QA, "exec-1"))
            .await
            .unwrap(),
        lock
    );
    assert_error(
        steps::acquire_lock(f.env(), &f.state(QA, "exec-2")).await,
        "NamespaceLocked",
        "locked by execution exec-1",
    );
    steps::acquire_lock(f.env(), &f.state("xy-0146-prod", "exec-2"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_acquirers_get_exactly_one_lock() {
    let f = Fixture::new();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let world = f.world.clone();
        let state = f.state(QA, &format!("exec-{i}"));
        tasks.push(tokio::spawn(async move {
            let aws = world.aws();
            let layout = ParameterLayout::default();
            steps::acquire_lock(Env::new(&aws, &layout), &state).await
        }));
    }
    let mut winners = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => winners += 1,
            Err(err) => assert_eq!(err.name(), "NamespaceLocked"),
        }
    }
    assert_eq!(winners, 1);
}

#[tokio::test]
async fn an_unregistered_or_malformed_namespace_is_refused_before_locking() {
    let f = Fixture::new();
    assert_error(
        steps::acquire_lock(f.env(), &f.state("zz-9999-qa", "e")).await,
        "InvalidInput",
        "zz-9999-qa is not registered",
    );
    assert_error(
        steps::acquire_lock(f.env(), &f.state("not a namespace", "e")).await,
        "InvalidInput",
        "invalid namespace",
    );
    let mut no_execution = f.state(QA, "e");
    no_execution.execution = None;
    assert_error(
        steps::acquire_lock(f.env(), &no_execution).await,
        "InvalidInput",
        "`execution`",
    );
    assert_eq!(f.records().lock(&ns(QA)).await.unwrap(), None);
}

#[tokio::test]
async fn release_only_our_own_lock() {
    let f = Fixture::new();
    steps::acquire_lock(f.env(), &f.state(QA, "exec-1"))
        .await
        .unwrap();
    let other = steps::release_lock(f.env(), &f.state(QA, "exec-2"))
        .await
        .unwrap();
    assert!(!other.released);
    assert_eq!(other.holder.as_deref(), Some("exec-1"));
    assert!(
        steps::release_lock(f.env(), &f.state(QA, "exec-1"))
            .await
            .unwrap()
            .released
    );
    assert!(
        !steps::release_lock(f.env(), &f.state(QA, "exec-1"))
            .await
            .unwrap()
            .released
    );
}

// --- snapshot ---------------------------------------------------------------------------------

#[tokio::test]
async fn snapshot_of_a_source_is_named_tagged_and_idempotent() {
    let f = Fixture::new();
    let state = f.state(QA, "exec-1");
    let first = steps::snapshot(f.env(), &state).await.unwrap();
    let expected_ts = switchyard_core::Timestamp::from_datetime(f.world.now());
    assert_eq!(first.snapshot_id, format!("{DEV}-{expected_ts}"));
    assert!(first.taken);
    assert_eq!(first.status, "creating");
    let again = steps::snapshot(f.env(), &state).await.unwrap();
    assert_eq!(again.snapshot_id, first.snapshot_id);
    let described = f.aws.describe_snapshot(&first.snapshot_id).await.unwrap();
    assert_eq!(described.tags[tag::EXECUTION], "exec-1");
    assert_eq!(described.tags[tag::NAMESPACE], DEV);

    // Same name, another execution: refused rather than adopted.
    assert_error(
        steps::snapshot(f.env(), &f.state(QA, "exec-2")).await,
        "InvalidInput",
        "was not taken by this execution",
    );
}

#[tokio::test]
async fn snapshot_input_is_validated() {
    let f = Fixture::new();
    let mut both = f.state(QA, "e");
    both.snapshot_id = Some("x".into());
    assert_error(
        steps::snapshot(f.env(), &both).await,
        "InvalidInput",
        "not several",
    );
    let mut promoted_and_given = f.state(QA, "e");
    promoted_and_given.source_namespace = None;
    promoted_and_given.snapshot_id = Some("x".into());
    promoted_and_given.promote_from = Some(DEV.into());
    assert_error(
        steps::snapshot(f.env(), &promoted_and_given).await,
        "InvalidInput",
        "not several",
    );
    let mut execution_alone = f.state(QA, "e");
    execution_alone.promoted_execution = Some("arn:aws:states:x".into());
    assert_error(
        steps::snapshot(f.env(), &execution_alone).await,
        "InvalidInput",
        "give promote_from with it",
    );
    let mut neither = f.state(QA, "e");
    neither.source_namespace = None;
    assert_error(
        steps::snapshot(f.env(), &neither).await,
        "InvalidInput",
        "nothing to deploy",
    );
    let mut same = f.state(QA, "e");
    same.source_namespace = Some(QA.into());
    assert_error(
        steps::snapshot(f.env(), &same).await,
        "InvalidInput",
        "is the target namespace",
    );
    let mut bad_id = f.state(QA, "e");
    bad_id.source_namespace = None;
    bad_id.snapshot_id = Some("has spaces".into());
    assert_error(
        steps::snapshot(f.env(), &bad_id).await,
        "InvalidInput",
        "invalid snapshot id",
    );
    bad_id.snapshot_id = Some("missing-1".into());
    assert_error(
        steps::snapshot(f.env(), &bad_id).await,
        "InvalidInput",
        "snapshot missing-1 not found",
    );
}

#[tokio::test]
async fn a_given_snapshot_keeps_the_timestamp_in_its_name() {
    let f = Fixture::new();
    let dev_db = f.world.active_db(&ns(DEV)).unwrap();
    f.aws
        .create_snapshot(&dev_db, "xy-0146-dev-20261101-030000", &Tags::new())
        .await
        .unwrap();
    f.aws
        .create_snapshot(&dev_db, "manual-copy", &Tags::new())
        .await
        .unwrap();
    let mut state = f.state(QA, "e");
    state.source_namespace = None;
    state.snapshot_id = Some("xy-0146-dev-20261101-030000".into());
    let given = steps::snapshot(f.env(), &state).await.unwrap();
    assert!(!given.taken);
    assert_eq!(given.timestamp.to_string(), "20261101-030000");
    state.snapshot_id = Some("manual-copy".into());
    let manual = steps::snapshot(f.env(), &state).await.unwrap();
    assert_eq!(
        manual.timestamp,
        switchyard_core::Timestamp::from_datetime(f.world.now())
    );
}

#[tokio::test]
async fn check_snapshot_polls_with_backoff_until_available() {
    let f = Fixture::new();
    let mut state = f.state(QA, "e");
    state.snapshot = Some(steps::snapshot(f.env(), &state).await.unwrap());
    let first = steps::check_snapshot(f.env(), &state).await.unwrap();
    assert!(!first.poll.ready);
    assert_eq!((first.poll.polls, first.poll.wait_seconds), (1, 15));
    state.snapshot = Some(first);
    let second = steps::check_snapshot(f.env(), &state).await.unwrap();
    assert_eq!((second.poll.polls, second.poll.wait_seconds), (2, 30));
    f.wait(3600);
    state.snapshot = Some(second);
    let ready = steps::check_snapshot(f.env(), &state).await.unwrap();
    assert!(ready.poll.ready);
    assert_eq!(ready.status, "available");

    let mut gone = state.clone();
    gone.snapshot.as_mut().unwrap().snapshot_id = "vanished".into();
    assert_error(
        steps::check_snapshot(f.env(), &gone).await,
        "ResourceFailed",
        "vanished",
    );
}

// --- pointer, database ------------------------------------------------------------------------

#[tokio::test]
async fn read_pointer_keeps_the_active_record_and_its_version() {
    let f = Fixture::new();
    let read = steps::read_pointer(f.env(), &f.state(QA, "e"))
        .await
        .unwrap();
    assert_eq!(read.version, Some(1));
    assert_eq!(
        read.active.unwrap().db_instance_id,
        f.world.active_db(&ns(QA)).unwrap()
    );
    assert_eq!(read.settings.service, "xy-0146-qa-app");
}

#[tokio::test]
async fn create_db_tracks_before_restoring_and_is_idempotent() {
    let f = Fixture::new();
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "create-db").await;
    let db = state.db.clone().unwrap();
    let ts = state.snapshot.as_ref().unwrap().timestamp;
    assert_eq!(db.db_instance_id, format!("{QA}-{ts}"));
    assert_eq!(db.status, "creating");
    assert_eq!(
        f.records().tracked(&ns(QA)).await.unwrap()[0].role,
        TrackedRole::Candidate
    );
    let again = steps::create_db(f.env(), &state).await.unwrap();
    assert_eq!(again.db_instance_id, db.db_instance_id);
    let instance = f.aws.describe_db(&db.db_instance_id).await.unwrap();
    assert_eq!(instance.tags[tag::EXECUTION], "exec-1");
    assert_eq!(
        instance.tags[tag::SNAPSHOT],
        state.snapshot.as_ref().unwrap().snapshot_id
    );
    assert_eq!(instance.instance_class, "db.t4g.medium");

    // Someone else's instance under our name is never adopted.
    let mut other = state.clone();
    other.execution.as_mut().unwrap().id = "exec-2".into();
    assert_error(
        steps::create_db(f.env(), &other).await,
        "InvalidInput",
        "was not created by this execution",
    );
}

#[tokio::test]
async fn create_db_refuses_to_reuse_the_active_name() {
    let f = Fixture::new();
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "read-pointer").await;
    let active = state.previous.as_ref().unwrap().active.clone().unwrap();
    state.snapshot.as_mut().unwrap().timestamp = active.timestamp;
    assert_error(
        steps::create_db(f.env(), &state).await,
        "InvalidInput",
        "is already active",
    );
}

#[tokio::test]
async fn check_db_waits_for_an_endpoint() {
    let f = Fixture::new();
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "create-db").await;
    let polled = steps::check_db(f.env(), &state).await.unwrap();
    assert!(!polled.poll.ready);
    assert_eq!(polled.endpoint, None);
    f.wait(3600);
    state.db = Some(polled);
    let ready = steps::check_db(f.env(), &state).await.unwrap();
    assert!(ready.poll.ready);
    assert!(ready.endpoint.unwrap().starts_with(&ready.db_instance_id));
}

// --- swap ---------------------------------------------------------------------------------------

#[tokio::test]
async fn swap_moves_the_pointer_and_tracks_the_old_database() {
    let f = Fixture::new();
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "db-ready").await;
    let old = state
        .previous
        .as_ref()
        .unwrap()
        .active
        .clone()
        .unwrap()
        .db_instance_id;
    let new = state.db.as_ref().unwrap().db_instance_id.clone();
    let swap = steps::swap_pointer(f.env(), &state).await.unwrap();
    assert_eq!(swap.version, 2);
    assert_eq!(swap.retired.as_deref(), Some(old.as_str()));
    assert_eq!(f.world.active_db(&ns(QA)), Some(new.clone()));
    let tracked = f.records().tracked(&ns(QA)).await.unwrap();
    assert_eq!(tracked.len(), 1);
    assert_eq!(
        (tracked[0].db_instance_id.as_str(), tracked[0].role),
        (old.as_str(), TrackedRole::Retired)
    );
    // A retry finds its own write and changes nothing.
    let again = steps::swap_pointer(f.env(), &state).await.unwrap();
    assert_eq!(again.version, 2);
    assert_eq!(f.records().pointer(&ns(QA)).await.unwrap().unwrap().1, 2);
}

#[tokio::test]
async fn swap_refuses_a_pointer_that_moved_since_it_was_read() {
    let f = Fixture::new();
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "db-ready").await;
    let (pointer, _) = f.records().pointer(&ns(QA)).await.unwrap().unwrap();
    f.records()
        .put_pointer(&ns(QA), &pointer, Some(1))
        .await
        .unwrap();
    assert_error(
        steps::swap_pointer(f.env(), &state).await,
        "PointerConflict",
        "expected version 1, found 2",
    );
    assert_eq!(f.world.active_db(&ns(QA)), Some(pointer.db_instance_id));
}

#[tokio::test]
async fn swap_refuses_without_the_lock() {
    let f = Fixture::new();
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "db-ready").await;
    f.records().unlock(&ns(QA)).await.unwrap();
    assert_error(
        steps::swap_pointer(f.env(), &state).await,
        "PointerConflict",
        "no longer holds",
    );
    steps::acquire_lock(f.env(), &f.state(QA, "exec-2"))
        .await
        .unwrap();
    assert_error(
        steps::swap_pointer(f.env(), &state).await,
        "NamespaceLocked",
        "exec-2",
    );
}

// --- service ------------------------------------------------------------------------------------

#[tokio::test]
async fn deploy_service_registers_one_revision_that_carries_the_database() {
    let f = Fixture::new();
    let mut state = f.state(QA, "exec-1");
    state.image = Some("1.5.0".into());
    f.run_until(&mut state, "swap").await;
    let rollout = steps::deploy_service(f.env(), &state).await.unwrap();
    assert_eq!(rollout.revision, 2);
    assert!(rollout.previous_task_definition_arn.ends_with(":1"));
    let again = steps::deploy_service(f.env(), &state).await.unwrap();
    assert_eq!(
        again.task_definition_arn, rollout.task_definition_arn,
        "a retry registers nothing new"
    );
    let definition = f
        .aws
        .describe_task_definition(&rollout.task_definition_arn)
        .await
        .unwrap();
    let app = &definition.containers[0];
    let new = &state.db.as_ref().unwrap().db_instance_id;
    assert_eq!(&app.environment["DB_INSTANCE_ID"], new);
    assert!(app.image.ends_with("/xy-app:1.5.0"), "{}", app.image);
    assert_eq!(
        definition.tags[tag::PREVIOUS_TASK_DEFINITION],
        rollout.previous_task_definition_arn
    );
    assert_eq!(definition.tags[tag::NAMESPACE], QA, "other tags are kept");
}

#[tokio::test]
async fn deploy_service_names_a_missing_service_or_container() {
    let f = Fixture::new();
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "swap").await;
    let mut wrong_container = state.clone();
    wrong_container
        .previous
        .as_mut()
        .unwrap()
        .settings
        .container = "web".into();
    assert_error(
        steps::deploy_service(f.env(), &wrong_container).await,
        "InvalidInput",
        "no container \"web\"",
    );
    let mut wrong_service = state.clone();
    wrong_service.previous.as_mut().unwrap().settings.service = "ghost".into();
    assert_error(
        steps::deploy_service(f.env(), &wrong_service).await,
        "InvalidInput",
        "service ghost not found",
    );
}

#[tokio::test]
async fn check_service_is_stable_only_when_the_rollout_completed_on_our_revision() {
    let f = Fixture::new();
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "deploy-service").await;
    let polled = steps::check_service(f.env(), &state).await.unwrap();
    assert!(!polled.poll.ready);
    assert_eq!(polled.rollout_state, "IN_PROGRESS");
    f.wait(3600);
    state.service = Some(polled);
    let stable = steps::check_service(f.env(), &state).await.unwrap();
    assert!(stable.poll.ready);
    assert_eq!(stable.running_count, stable.desired_count);

    // Someone deploys another revision over ours: that is not our success.
    let settings = &state.previous.as_ref().unwrap().settings;
    f.aws
        .update_service(
            &settings.cluster,
            &settings.service,
            &stable.previous_task_definition_arn,
        )
        .await
        .unwrap();
    assert_error(
        steps::check_service(f.env(), &state).await,
        "RolloutFailed",
        "rolled back or replaced",
    );
}

#[tokio::test]
async fn check_service_fails_when_the_circuit_breaker_trips() {
    let f = Fixture::new();
    f.world
        .inject("wait-stable:rollout-failed".parse().unwrap());
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "swap").await;
    let aws = f
        .world
        .aws_for(Some(switchyard_core::dispatch::Stage::DeployService));
    let env = Env::new(&aws, &f.layout);
    state.service = Some(steps::deploy_service(env, &state).await.unwrap());
    f.wait(250);
    assert_error(
        steps::check_service(f.env(), &state).await,
        "RolloutFailed",
        "circuit breaker",
    );
    // Once ECS has finished rolling back, the failed deployment is gone from the list; the
    // revision mismatch still tells.
    f.wait(600);
    assert_error(
        steps::check_service(f.env(), &state).await,
        "RolloutFailed",
        "rolled back or replaced",
    );
}

// --- cleanup, rollback --------------------------------------------------------------------------

#[tokio::test]
async fn cleanup_deletes_the_old_database_only_and_loops_until_gone() {
    let f = Fixture::new();
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "stable").await;
    let old = state.swap.as_ref().unwrap().retired.clone().unwrap();
    let new = state.db.as_ref().unwrap().db_instance_id.clone();
    let first = steps::cleanup(f.env(), &state).await.unwrap();
    assert_eq!(first.deleting, vec![old.clone()]);
    assert!(!first.done);
    assert!(
        first.final_snapshots.is_empty(),
        "qa keeps no final snapshot"
    );
    state.cleanup = Some(first);
    f.wait(600);
    let done = steps::cleanup(f.env(), &state).await.unwrap();
    assert!(done.done);
    assert_eq!(done.deleted, vec![old.clone()]);
    assert!(f.aws.describe_db(&old).await.is_err());
    assert_eq!(f.aws.describe_db(&new).await.unwrap().status, "available");
    assert!(f.records().tracked(&ns(QA)).await.unwrap().is_empty());
}

#[tokio::test]
async fn cleanup_never_deletes_the_active_or_a_foreign_database() {
    let f = Fixture::new();
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "stable").await;
    let records = f.records();
    let new = state.db.as_ref().unwrap().db_instance_id.clone();
    let foreign = f.world.active_db(&ns("ab-0201-dev")).unwrap();
    for id in [&new, &foreign] {
        records
            .track(
                &ns(QA),
                &switchyard_core::TrackedDb {
                    db_instance_id: id.clone(),
                    role: TrackedRole::Retired,
                    execution_id: "someone".into(),
                    since: f.world.now(),
                },
            )
            .await
            .unwrap();
    }
    let report = steps::cleanup(f.env(), &state).await.unwrap();
    assert!(
        report
            .kept
            .iter()
            .any(|k| k.starts_with(&format!("{new}: active"))),
        "{:?}",
        report.kept
    );
    assert!(
        report
            .kept
            .iter()
            .any(|k| k.contains("not tagged for xy-0146-qa")),
        "{:?}",
        report.kept
    );
    assert_eq!(f.aws.describe_db(&new).await.unwrap().status, "available");
    assert_eq!(
        f.aws.describe_db(&foreign).await.unwrap().status,
        "available"
    );
}

#[tokio::test]
async fn production_cleanup_keeps_a_final_snapshot() {
    let f = Fixture::new();
    let mut state = f.state("xy-0146-prod", "exec-1");
    f.run_until(&mut state, "stable").await;
    let old = state.swap.as_ref().unwrap().retired.clone().unwrap();
    let report = steps::cleanup(f.env(), &state).await.unwrap();
    let stamp = switchyard_core::Timestamp::from_datetime(f.world.now());
    assert_eq!(report.final_snapshots, vec![format!("{old}-final-{stamp}")]);
    f.wait(900);
    assert_eq!(
        f.aws
            .describe_snapshot(&report.final_snapshots[0])
            .await
            .unwrap()
            .status,
        "available"
    );
}

async fn roll_back_to_done(f: &Fixture, state: &mut DeployState) {
    state.error = Some(CaughtError {
        error: "AwsRejected".into(),
        cause: "test".into(),
    });
    for _ in 0..50 {
        let report = steps::rollback(f.env(), state).await.unwrap();
        let done = report.sweep.done;
        state.rollback = Some(report);
        if done {
            return;
        }
        f.wait(60);
    }
    panic!("rollback never finished");
}

#[tokio::test]
async fn rollback_after_the_service_moved_restores_everything_and_spares_the_old_database() {
    let f = Fixture::new();
    let mut state = f.state(QA, "exec-1");
    let before = f.records().pointer(&ns(QA)).await.unwrap().unwrap().0;
    let service_before = f
        .aws
        .describe_service("switchyard-nonprod", "xy-0146-qa-app")
        .await
        .unwrap();
    f.run_until(&mut state, "deploy-service").await;
    let new = state.db.as_ref().unwrap().db_instance_id.clone();
    roll_back_to_done(&f, &mut state).await;
    let report = state.rollback.clone().unwrap();
    assert!(report.pointer_restored && report.service_restored);
    assert_eq!(report.sweep.deleted, vec![new.clone()]);
    assert_eq!(
        f.records().pointer(&ns(QA)).await.unwrap().unwrap().0,
        before
    );
    assert_eq!(
        f.aws
            .describe_db(&before.db_instance_id)
            .await
            .unwrap()
            .status,
        "available"
    );
    assert!(f.aws.describe_db(&new).await.is_err());
    let service = f
        .aws
        .describe_service("switchyard-nonprod", "xy-0146-qa-app")
        .await
        .unwrap();
    assert_eq!(
        service.task_definition_arn,
        service_before.task_definition_arn
    );
    assert!(f.records().tracked(&ns(QA)).await.unwrap().is_empty());
    // Idempotent: once more changes nothing.
    let state_before = f.world.snapshot_state();
    let again = steps::rollback(f.env(), &state).await.unwrap();
    assert!(again.sweep.done);
    assert_eq!(f.world.snapshot_state(), state_before);
}

#[tokio::test]
async fn rollback_before_anything_was_created_is_a_no_op() {
    let f = Fixture::new();
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "lock").await;
    let world_before = f.world.snapshot_state();
    roll_back_to_done(&f, &mut state).await;
    let report = state.rollback.unwrap();
    assert!(!report.pointer_restored && !report.service_restored);
    assert!(report.sweep.deleted.is_empty());
    let mut after = f.world.snapshot_state();
    after.now = world_before.now;
    assert_eq!(after, world_before);
}

#[tokio::test]
async fn rollback_of_a_first_deploy_removes_the_pointer_it_created() {
    let f = Fixture::new();
    let mut state = f.state(QA, "exec-1");
    // A namespace with no active database yet.
    f.records().delete_pointer(&ns(QA)).await.unwrap();
    f.run_until(&mut state, "swap").await;
    assert!(state.swap.as_ref().unwrap().retired.is_none());
    assert!(f.records().pointer(&ns(QA)).await.unwrap().is_some());
    roll_back_to_done(&f, &mut state).await;
    assert_eq!(f.records().pointer(&ns(QA)).await.unwrap(), None);
    assert!(f.records().tracked(&ns(QA)).await.unwrap().is_empty());
}

#[tokio::test]
async fn malformed_events_get_named_errors() {
    let f = Fixture::new();
    for step in switchyard_core::Step::ALL {
        for event in [
            serde_json::json!(null),
            serde_json::json!({"namespace": []}),
            serde_json::json!([1]),
        ] {
            let err = switchyard_core::run_step(
                step,
                &f.aws,
                &f.layout,
                &switchyard_core::policy::NoPlugins,
                event,
            )
            .await
            .unwrap_err();
            assert_eq!(err.name(), "InvalidInput", "{step}");
            assert!(
                err.to_string()
                    .starts_with(&format!("malformed event for {step}")),
                "{err}"
            );
        }
    }
    let _ = f.aws.get_parameter("/x").await;
}

#[tokio::test]
async fn create_db_never_takes_over_another_executions_tracking_record() {
    let f = Fixture::new();
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "read-pointer").await;
    let ts = state.snapshot.as_ref().unwrap().timestamp;
    let id = format!("{QA}-{ts}");
    let theirs = switchyard_core::TrackedDb {
        db_instance_id: id.clone(),
        role: TrackedRole::Retired,
        execution_id: "exec-0".into(),
        since: f.world.now(),
    };
    f.records().track(&ns(QA), &theirs).await.unwrap();
    assert_error(
        steps::create_db(f.env(), &state).await,
        "InvalidInput",
        "still tracked by execution exec-0",
    );
    assert_eq!(f.records().tracked(&ns(QA)).await.unwrap(), vec![theirs]);
}

#[tokio::test]
async fn a_swap_whose_write_was_resent_is_not_a_conflict() {
    let f = Fixture::new();
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "db-ready").await;
    let swap = steps::swap_pointer(f.env(), &state).await.unwrap();
    // As if the SDK had resent the write after losing its answer: version 3, ours too.
    f.records()
        .put_pointer(&ns(QA), &swap.pointer, Some(2))
        .await
        .unwrap();
    let again = steps::swap_pointer(f.env(), &state).await.unwrap();
    assert_eq!(again.pointer.db_instance_id, swap.pointer.db_instance_id);
}

#[tokio::test]
async fn the_input_may_not_steer_the_steps() {
    let f = Fixture::new();
    let mut state = f.state(QA, "exec-1");
    state.error = Some(CaughtError {
        error: "x".into(),
        cause: "y".into(),
    });
    assert_error(
        steps::acquire_lock(f.env(), &state).await,
        "InvalidInput",
        "may not set `error`",
    );
    let mut image = f.state(QA, "exec-1");
    image.image = Some("two words".into());
    assert_error(
        steps::acquire_lock(f.env(), &image).await,
        "InvalidInput",
        "invalid image",
    );
    assert_eq!(f.records().lock(&ns(QA)).await.unwrap(), None);
}

#[tokio::test]
async fn the_sweep_spares_a_database_the_service_still_runs_on() {
    let f = Fixture::new();
    let active = f.world.active_db(&ns(QA)).unwrap();
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "swap").await;
    // The service has not moved yet: the old database is retired but still in use. It is kept,
    // and tracked, but not waited on: nothing deletes a database a task still names.
    let report = steps::cleanup(f.env(), &state).await.unwrap();
    assert!(report.done);
    assert!(report.deleting.is_empty(), "{:?}", report.deleting);
    assert!(
        f.records()
            .tracked(&ns(QA))
            .await
            .unwrap()
            .iter()
            .any(|t| t.db_instance_id == active),
        "no longer tracked"
    );
    assert!(
        report
            .kept
            .iter()
            .any(|k| k == &format!("{active}: in use by the service")),
        "{:?}",
        report.kept
    );
    assert_eq!(
        f.aws.describe_db(&active).await.unwrap().status,
        "available"
    );
}

/// Another writer slips in between the swap's version check and its write (Parameter Store has
/// no compare-and-swap): the swap's record lands a version later than the next one, and the
/// swap fails with `PointerConflict`. The pointer names this run's database under this run's
/// id: rollback must put it back.
#[tokio::test]
async fn rollback_restores_a_pointer_the_swap_wrote_after_a_foreign_write() {
    let f = Fixture::new();
    let mut state = f.state(QA, "exec-1");
    f.run_until(&mut state, "db-ready").await;
    let (before, version) = f.records().pointer(&ns(QA)).await.unwrap().unwrap();
    // The operator's write, then the swap's, as the race would have them.
    let foreign = f
        .records()
        .put_pointer(&ns(QA), &before, Some(version))
        .await
        .unwrap();
    let db = state.db.clone().unwrap();
    let ours = ActivePointer {
        db_instance_id: db.db_instance_id.clone(),
        endpoint: db.endpoint.clone().unwrap_or_default(),
        port: db.port.unwrap_or(5432),
        execution_id: Some("exec-1".into()),
        snapshot_id: Some(state.snapshot.as_ref().unwrap().snapshot_id.clone()),
        timestamp: state.snapshot.as_ref().unwrap().timestamp,
        activated_at: f.world.now(),
        app_version: None,
        master_user_secret_arn: None,
        schema_version: None,
    };
    f.records()
        .put_pointer(&ns(QA), &ours, Some(foreign))
        .await
        .unwrap();
    roll_back_to_done(&f, &mut state).await;
    let (restored, _) = f.records().pointer(&ns(QA)).await.unwrap().unwrap();
    assert_eq!(restored.db_instance_id, before.db_instance_id);
    assert!(state.rollback.as_ref().unwrap().pointer_restored);
    assert!(f.aws.describe_db(&db.db_instance_id).await.is_err());
}

/// A lock kept for an operator by a run is not taken over by a later run under the same name,
/// however soon after it starts.
#[tokio::test]
async fn a_lock_names_the_run_that_took_it_not_just_its_name() {
    let f = Fixture::new();
    let first = f.state(QA, "exec-1");
    steps::acquire_lock(f.env(), &first).await.unwrap();
    f.wait(1);
    let second = f.state(QA, "exec-1");
    assert_error(
        steps::acquire_lock(f.env(), &second).await,
        "NamespaceLocked",
        "exec-1",
    );
    let released = steps::release_lock(f.env(), &second).await.unwrap();
    assert!(!released.released);
    assert!(f.records().lock(&ns(QA)).await.unwrap().is_some());
    // The run that took it still holds it, and may release it.
    assert!(steps::release_lock(f.env(), &first).await.unwrap().released);
}
