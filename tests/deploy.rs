//! The deploy pipeline end to end: `statemachines/deploy.asl.json` through the local runner and
//! the real handlers, on the embedded world, with faults injected at every stage.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
mod common;

use std::sync::Arc;

use async_trait::async_trait;
use common::*;
use switchyard::backend::StepInvoker;
use switchyard::deploy::{DeployReport, FromExecution, Source};
use switchyard_asl::{Clock, Runner};
use switchyard_core::ports::{Databases, Services};
use switchyard_core::records::{ParameterLayout, Records, TrackedRole};
use switchyard_core::steps::service::env_var;

const QA: &str = "xy-0146-qa";
const DEV: &str = "xy-0146-dev";

struct Before {
    db: String,
    task_definition: String,
}

async fn before(world: &switchyard_sim::World, namespace: &str) -> Before {
    let status = status_of(world, namespace).await;
    Before {
        db: status.active_db.unwrap(),
        task_definition: status.task_definition_arn.unwrap(),
    }
}

/// A production tenant's database is Multi-AZ, on its own parameter group, protected from
/// deletion, kept a week, with its owner's tags: a restore carries none of that over unless
/// asked, and a deploy asks for all of it. The protected old database is deleted once the
/// deploy lifts the protection on it (and on it alone); the namespace's settings override.
#[tokio::test]
async fn a_production_database_is_replaced_by_one_set_up_as_it_was() {
    const PROD: &str = "xy-0146-prod";
    let world = demo();
    let aws = world.aws();
    let old = before(&world, PROD).await.db;
    let old_config = aws.describe_db(&old).await.unwrap().config;
    assert_eq!(old_config.multi_az, Some(true));
    assert_eq!(old_config.deletion_protection, Some(true));

    let execution = deploy_from(&world, PROD, QA, &[]).await;
    assert_succeeded(&execution);
    let new_db = DeployReport::from_execution(&execution).new_db.unwrap();
    let new = aws.describe_db(&new_db).await.unwrap();
    assert_eq!(new.config.multi_az, Some(true));
    assert_eq!(
        new.config.parameter_group.as_deref(),
        Some("xy-0146-prod-postgres16")
    );
    assert_eq!(new.config.deletion_protection, Some(true));
    assert_eq!(new.config.backup_retention_days, Some(7));
    assert_eq!(new.tags.get("cost-center").map(String::as_str), Some("xy"));
    // What a restore cannot take, set before the new database takes traffic.
    assert_eq!(
        new.config.maintenance_window.as_deref(),
        Some("tue:02:00-tue:02:30")
    );
    assert_eq!(new.config.monitoring_interval_seconds, Some(60));
    assert_eq!(
        new.config.monitoring_role_arn,
        old_config.monitoring_role_arn
    );
    assert_eq!(new.config.performance_insights, Some(true));
    assert_eq!(new.config.performance_insights_retention_days, Some(7));
    // The old one is going (with its final snapshot), the new one stays protected.
    let remaining = dbs_of(&world, PROD);
    assert!(
        remaining
            .iter()
            .all(|(id, status)| id == &new_db || status == "deleting"),
        "{remaining:?}"
    );
    world.advance(std::time::Duration::from_secs(3600));
    assert_eq!(
        dbs_of(&world, PROD),
        vec![(new_db.clone(), "available".to_owned())]
    );

    // A setting wins over what the database had.
    let layout = ParameterLayout::default();
    let records = Records {
        params: &aws,
        layout: &layout,
    };
    let mut settings = records.settings(&ns(PROD)).await.unwrap();
    settings.database.multi_az = Some(false);
    settings.database.backup_retention_days = Some(14);
    settings.database.maintenance_window = Some("sat:23:00-sat:23:30".into());
    settings.database.performance_insights = Some(false);
    records.put_settings(&ns(PROD), &settings).await.unwrap();
    world.advance(std::time::Duration::from_secs(24 * 3600));
    let execution = deploy_from(&world, PROD, QA, &[]).await;
    assert_succeeded(&execution);
    let newer = DeployReport::from_execution(&execution).new_db.unwrap();
    let config = aws.describe_db(&newer).await.unwrap().config;
    assert_eq!(config.multi_az, Some(false));
    assert_eq!(config.backup_retention_days, Some(14));
    assert_eq!(
        config.maintenance_window.as_deref(),
        Some("sat:23:00-sat:23:30")
    );
    assert_eq!(config.performance_insights, Some(false));
    assert_eq!(config.monitoring_interval_seconds, Some(60));
    assert_eq!(config.deletion_protection, Some(true));
    assert_eq!(
        config.parameter_group.as_deref(),
        Some("xy-0146-prod-postgres16")
    );
}

/// Everything the deploy promised: one database (the new one), the pointer on it, the service
/// stable on a new revision that carries it, nothing locked, tracked or orphaned.
#[tokio::test]
async fn a_deploy_swaps_to_a_new_database_and_deletes_only_the_old_one() {
    let world = demo();
    let old = before(&world, QA).await;
    let dev_db = before(&world, DEV).await.db;

    let execution = deploy_from(&world, QA, DEV, &[]).await;
    assert_succeeded(&execution);
    let report = DeployReport::from_execution(&execution);
    assert_eq!(report.status, "SUCCEEDED");
    assert_eq!(report.old_db.as_deref(), Some(old.db.as_str()));
    let new_db = report.new_db.clone().unwrap();
    assert_ne!(new_db, old.db);
    let snapshot = report.snapshot_id.clone().unwrap();
    assert!(snapshot.starts_with("xy-0146-dev-"), "{snapshot}");
    // Named with the snapshot's timestamp.
    assert_eq!(
        new_db,
        format!("{QA}-{}", &snapshot["xy-0146-dev-".len()..])
    );

    assert_eq!(
        dbs_of(&world, QA),
        vec![(new_db.clone(), "available".to_owned())]
    );
    assert_eq!(world.active_db(&ns(QA)).as_deref(), Some(new_db.as_str()));
    assert_eq!(report.deleted, vec![old.db.clone()]);

    let status = status_of(&world, QA).await;
    assert_eq!(status.service_revision, Some(2));
    assert_eq!(status.rollout_state.as_deref(), Some("COMPLETED"));
    assert_eq!(status.locked_by, None);
    assert!(
        status.orphans.is_empty()
            && status.due_for_deletion.is_empty()
            && status.candidates.is_empty()
    );
    assert!(status.drift.is_empty(), "{:?}", status.drift);
    assert_ne!(
        status.task_definition_arn.as_deref(),
        Some(old.task_definition.as_str())
    );

    let aws = world.aws();
    let definition = aws
        .describe_task_definition(status.task_definition_arn.as_deref().unwrap())
        .await
        .unwrap();
    let app = &definition.containers[0];
    assert_eq!(app.environment[env_var::DB_INSTANCE_ID], new_db);
    assert!(app.environment[env_var::DB_HOST].starts_with(&new_db));

    // The source is untouched and the snapshot, the promoted artifact, is kept.
    assert_eq!(world.active_db(&ns(DEV)), Some(dev_db));
    assert_eq!(status_of(&world, DEV).await.service_revision, Some(1));
    assert_eq!(report.pointer_version_before, Some(1));
    assert_eq!(report.pointer_version_after, Some(2));
}

async fn assert_rolled_back(
    world: &switchyard_sim::World,
    old: &Before,
    execution: &switchyard_asl::Execution,
) {
    let report = DeployReport::from_execution(execution);
    assert_eq!(report.status, "FAILED");
    // The old database is active, available and the service runs on it, stable.
    assert_eq!(world.active_db(&ns(QA)).as_deref(), Some(old.db.as_str()));
    assert_eq!(
        dbs_of(world, QA),
        vec![(old.db.clone(), "available".to_owned())]
    );
    let status = status_of(world, QA).await;
    assert_eq!(
        status.task_definition_arn.as_deref(),
        Some(old.task_definition.as_str())
    );
    assert_eq!(status.rollout_state.as_deref(), Some("COMPLETED"));
    assert_eq!(
        status.locked_by, None,
        "the lock is released after a rollback"
    );
    assert!(status.orphans.is_empty(), "orphans: {:?}", status.orphans);
    assert!(status.due_for_deletion.is_empty() && status.candidates.is_empty());
    assert!(status.drift.is_empty(), "{:?}", status.drift);
    assert!(tracked(world, QA).await.is_empty());
    let aws = world.aws();
    let service = aws
        .describe_service("switchyard-nonprod", "xy-0146-qa-app")
        .await
        .unwrap();
    assert_eq!(service.deployments.len(), 1);
    assert_eq!(service.running_count, service.desired_count);
}

#[tokio::test]
async fn a_permanent_fault_at_any_stage_before_stable_rolls_back_cleanly() {
    for stage in [
        "snapshot",
        "read-pointer",
        "create-db",
        "swap-pointer",
        "deploy-service",
        "wait-stable",
    ] {
        let world = demo();
        let old = before(&world, QA).await;
        let fault = format!("{stage}:error");
        let execution = deploy_from(&world, QA, DEV, &[fault.as_str()]).await;
        assert_failed_with(&execution, "AwsRejected");
        assert!(
            execution
                .cause
                .as_deref()
                .unwrap_or("")
                .contains(&format!("stage {stage}")),
            "{stage}: {:?}",
            execution.cause
        );
        assert!(
            tasks_run(&execution).contains(&"Rollback".to_owned()),
            "{stage}"
        );
        assert_rolled_back(&world, &old, &execution).await;
    }
}

#[tokio::test]
async fn a_failed_rollout_rolls_back_to_the_old_database_and_revision() {
    let world = demo();
    let old = before(&world, QA).await;
    let execution = deploy_from(&world, QA, DEV, &["wait-stable:rollout-failed"]).await;
    assert_failed_with(&execution, "RolloutFailed");
    let report = DeployReport::from_execution(&execution);
    let rollback = report.rollback.clone().unwrap();
    assert!(rollback.pointer_restored);
    assert_eq!(rollback.deleted, vec![report.new_db.clone().unwrap()]);
    assert_rolled_back(&world, &old, &execution).await;
}

#[tokio::test]
async fn a_failed_cleanup_keeps_the_deploy_and_a_later_run_deletes_the_leftover() {
    let world = demo();
    let old = before(&world, QA).await;
    let first = deploy_from(&world, QA, DEV, &["cleanup:error"]).await;
    assert_succeeded(&first);
    let report = DeployReport::from_execution(&first);
    let new_db = report.new_db.clone().unwrap();
    assert!(report.cleanup_deferred.is_some());
    assert_eq!(world.active_db(&ns(QA)).as_deref(), Some(new_db.as_str()));
    let mut dbs = dbs_of(&world, QA);
    dbs.sort();
    let mut expected = vec![
        (old.db.clone(), "available".to_owned()),
        (new_db.clone(), "available".to_owned()),
    ];
    expected.sort();
    assert_eq!(dbs, expected);
    assert_eq!(
        tracked(&world, QA).await,
        vec![(old.db.clone(), TrackedRole::Retired)]
    );
    let status = status_of(&world, QA).await;
    assert_eq!(status.due_for_deletion, vec![old.db.clone()]);
    assert!(status.orphans.is_empty());
    assert_eq!(status.locked_by, None);

    world.advance(std::time::Duration::from_secs(3600));
    let second = deploy_from(&world, QA, DEV, &[]).await;
    assert_succeeded(&second);
    let second_report = DeployReport::from_execution(&second);
    let newest = second_report.new_db.clone().unwrap();
    let mut deleted = second_report.deleted.clone();
    deleted.sort();
    let mut both = vec![old.db.clone(), new_db.clone()];
    both.sort();
    assert_eq!(
        deleted, both,
        "the leftover is deleted with the replaced database"
    );
    assert_eq!(dbs_of(&world, QA), vec![(newest, "available".to_owned())]);
    assert!(tracked(&world, QA).await.is_empty());
}

#[tokio::test]
async fn a_throttled_stage_is_retried_to_success() {
    for stage in [
        "snapshot",
        "read-pointer",
        "create-db",
        "swap-pointer",
        "deploy-service",
        "wait-stable",
        "cleanup",
    ] {
        let world = demo();
        let fault = format!("{stage}:throttle");
        let execution = deploy_from(&world, QA, DEV, &[fault.as_str()]).await;
        assert_succeeded(&execution);
        assert!(
            retries(&execution) >= 2,
            "{stage}: {} retries",
            retries(&execution)
        );
        assert!(
            !tasks_run(&execution).contains(&"Rollback".to_owned()),
            "{stage}"
        );
        let report = DeployReport::from_execution(&execution);
        assert_eq!(
            dbs_of(&world, QA),
            vec![(report.new_db.unwrap(), "available".to_owned())],
            "{stage}"
        );
    }
}

/// A clock that yields to other tasks whenever the execution waits, so two executions on one
/// world interleave the way two Step Functions executions would.
struct InterleavingClock(Arc<dyn Clock>);

#[async_trait]
impl Clock for InterleavingClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.now()
    }
    async fn sleep(&self, duration: std::time::Duration) {
        self.0.sleep(duration).await;
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_second_deploy_while_the_first_holds_the_lock_fails_fast_and_changes_nothing() {
    let world = demo();
    let backend = backend(&world);
    let layout = ParameterLayout::default();
    let runner = || {
        let machine = switchyard::deploy::load_machine(&deploy_machine(), &backend).unwrap();
        Runner::new(
            machine,
            Arc::new(StepInvoker::new(
                backend.clone(),
                layout.clone(),
                Arc::new(switchyard_core::policy::NoPlugins),
            )),
            Arc::new(InterleavingClock(backend.clock())),
        )
    };
    let (first_runner, second_runner) = (runner(), runner());
    let first_input = request(QA, Source::Namespace(DEV.into())).input();
    let second_input = request(QA, Source::Namespace("xy-0146-prod".into())).input();
    let first = first_runner.run("first", first_input);
    let second = async {
        // Let the first take the lock and start waiting on its snapshot.
        tokio::task::yield_now().await;
        let state_before = world.snapshot_state();
        let execution = second_runner.run("second", second_input).await;
        (execution, state_before, world.snapshot_state())
    };
    let (first, (second, state_before, state_after)) = tokio::join!(first, second);

    assert_failed_with(&second, "NamespaceLocked");
    assert!(
        second.cause.as_deref().unwrap().contains("first"),
        "{:?}",
        second.cause
    );
    assert_eq!(tasks_run(&second), ["AcquireLock", "ReleaseLockOnFailure"]);
    assert_eq!(
        state_before, state_after,
        "the second deploy changed nothing"
    );

    assert_succeeded(&first);
    let report = DeployReport::from_execution(&first);
    assert_eq!(
        dbs_of(&world, QA),
        vec![(report.new_db.unwrap(), "available".to_owned())]
    );
    assert!(status_of(&world, QA).await.orphans.is_empty());
}

#[tokio::test]
async fn a_given_snapshot_is_promoted_to_prod_with_a_final_snapshot_of_the_old_database() {
    let world = demo();
    let qa = deploy_from(&world, QA, DEV, &[]).await;
    assert_succeeded(&qa);
    let snapshot = DeployReport::from_execution(&qa).snapshot_id.unwrap();
    let old_prod = before(&world, "xy-0146-prod").await.db;

    world.advance(std::time::Duration::from_secs(3600));
    let input = request("xy-0146-prod", Source::Snapshot(snapshot.clone())).input();
    let prod = run(&world, &deploy_machine(), "promote", input, &[]).await;
    assert_succeeded(&prod);
    let report = DeployReport::from_execution(&prod);
    assert!(!report.snapshot_taken);
    let timestamp = &snapshot["xy-0146-dev-".len()..];
    assert_eq!(
        report.new_db.as_deref(),
        Some(format!("xy-0146-prod-{timestamp}").as_str())
    );
    assert_eq!(report.final_snapshots.len(), 1);
    assert!(
        report.final_snapshots[0].starts_with(&format!("{old_prod}-final-")),
        "{:?}",
        report.final_snapshots
    );
    assert_eq!(report.deleted, vec![old_prod]);
}

/// On success the deploy machine's output is its report: what `switchyard deploy --output json`
/// prints, but for the state transitions, which only the history knows.
#[tokio::test]
async fn the_machines_output_is_the_report_the_command_prints() {
    let world = demo();
    let execution = deploy_from(&world, QA, DEV, &[]).await;
    assert_succeeded(&execution);
    let output = execution.output.clone().unwrap();
    assert!(output.get("state_transitions").is_none(), "{output}");
    let mut printed = serde_json::to_value(DeployReport::from_execution(&execution)).unwrap();
    assert_eq!(printed["state_transitions"], execution.state_transitions);
    printed.as_object_mut().unwrap().remove("state_transitions");
    assert_eq!(output, printed);
    assert_eq!(output["status"], "SUCCEEDED");
    assert_eq!(output["execution_arn"], execution.execution_arn.as_str());
    assert!(
        output["snapshot_id"]
            .as_str()
            .unwrap()
            .starts_with("xy-0146-dev-"),
        "{output}"
    );
    assert_eq!(output["deleted"], serde_json::json!([output["old_db"]]));
}

#[tokio::test]
async fn a_promotion_takes_the_snapshot_qa_was_deployed_from_and_refuses_data_nobody_approved() {
    let world = demo();
    let qa = deploy_from(&world, QA, DEV, &[]).await;
    assert_succeeded(&qa);
    let approved = DeployReport::from_execution(&qa).snapshot_id.unwrap();
    world.advance(std::time::Duration::from_secs(3600));

    // Another qa deploy after the approval: the data in qa is no longer what was approved.
    let newer = deploy_from(&world, QA, DEV, &[]).await;
    assert_succeeded(&newer);
    let old_prod = before(&world, "xy-0146-prod").await.db;
    let stale = request(
        "xy-0146-prod",
        Source::Promotion {
            from: QA.to_owned(),
            execution: Some(qa.execution_arn.clone()),
        },
    )
    .input();
    let refused = run(&world, &deploy_machine(), "promote-stale", stale, &[]).await;
    assert_failed_with(&refused, "InvalidInput");
    let cause = refused.cause.clone().unwrap_or_default();
    assert!(
        cause.contains(&newer.execution_arn) && cause.contains(&qa.execution_arn),
        "{cause}"
    );
    assert_eq!(before(&world, "xy-0146-prod").await.db, old_prod);

    // Promoting the newer deploy takes the snapshot it restored, never typed.
    let current = DeployReport::from_execution(&newer).snapshot_id.unwrap();
    assert_ne!(current, approved);
    world.advance(std::time::Duration::from_secs(3600));
    let input = request(
        "xy-0146-prod",
        Source::Promotion {
            from: QA.to_owned(),
            execution: Some(newer.execution_arn.clone()),
        },
    )
    .input();
    assert_eq!(input["promote_from"], QA);
    assert!(input.get("snapshot_id").is_none());
    let prod = run(&world, &deploy_machine(), "promote", input, &[]).await;
    assert_succeeded(&prod);
    let report = DeployReport::from_execution(&prod);
    assert!(!report.snapshot_taken);
    assert_eq!(report.snapshot_id.as_deref(), Some(current.as_str()));
    assert_eq!(report.deleted, vec![old_prod]);

    // Naming no execution promotes whatever qa runs now; a namespace is no source of itself.
    let own = request(
        QA,
        Source::Promotion {
            from: QA.to_owned(),
            execution: None,
        },
    )
    .input();
    let refused = run(&world, &deploy_machine(), "promote-self", own, &[]).await;
    assert_failed_with(&refused, "InvalidInput");
}

/// A group the settings name that does not exist is found by Preflight, before the snapshot
/// and the restore, not by `create-db` after them.
#[tokio::test]
async fn a_missing_subnet_or_parameter_group_is_refused_before_anything_is_created() {
    let world = demo();
    let aws = world.aws();
    let layout = ParameterLayout::default();
    let records = Records {
        params: &aws,
        layout: &layout,
    };
    let good = records.settings(&ns(QA)).await.unwrap();
    use switchyard_core::ports::Snapshots;
    type Spoil = fn(&mut switchyard_core::records::NamespaceSettings);
    let cases: [(&str, Spoil); 2] = [
        ("db subnet group nobody-made-it does not exist", |s| {
            s.db_subnet_group = Some("nobody-made-it".into())
        }),
        (
            "db parameter group nobody-made-it-either does not exist",
            |s| s.database.parameter_group = Some("nobody-made-it-either".into()),
        ),
    ];
    for (message, spoil) in cases {
        let mut settings = good.clone();
        spoil(&mut settings);
        records.put_settings(&ns(QA), &settings).await.unwrap();
        let snapshots_before = aws.list_snapshots().await.unwrap().len();
        let dbs_before = dbs_of(&world, QA);
        let execution = deploy_from(&world, QA, DEV, &[]).await;
        assert_failed_with(&execution, "InvalidInput");
        let cause = execution.cause.clone().unwrap_or_default();
        assert!(cause.contains(message), "{cause}");
        assert!(
            cause.contains("switchyard tenant set xy-0146-qa"),
            "{cause}"
        );
        assert_eq!(aws.list_snapshots().await.unwrap().len(), snapshots_before);
        assert_eq!(dbs_of(&world, QA), dbs_before);
    }
    records.put_settings(&ns(QA), &good).await.unwrap();
    assert_succeeded(&deploy_from(&world, QA, DEV, &[]).await);
}

#[tokio::test]
async fn bad_input_fails_with_a_named_error_and_changes_nothing() {
    let cases = [
        (
            serde_json::json!({"namespace": "XY-1", "source_namespace": DEV}),
            "invalid namespace \"XY-1\"",
        ),
        (
            serde_json::json!({"namespace": "zz-9999-qa", "source_namespace": DEV}),
            "zz-9999-qa is not registered",
        ),
        (serde_json::json!({"namespace": QA}), "nothing to deploy"),
        (
            serde_json::json!({"namespace": QA, "source_namespace": QA}),
            "is the target namespace",
        ),
        (
            serde_json::json!({"namespace": QA, "snapshot_id": "no-such-snapshot"}),
            "snapshot no-such-snapshot not found",
        ),
        (
            serde_json::json!({"namespace": QA, "source_namespace": "xy-0146-uat"}),
            "xy-0146-uat has no active database",
        ),
        (
            serde_json::json!({"namespace": QA, "source_namespace": "zz-9999-dev"}),
            "namespace zz-9999-dev is not data of xy-0146",
        ),
        (serde_json::json!({"namespace": 42}), "malformed event"),
        (
            serde_json::json!({"namespace": QA, "source_namespace": DEV, "error": {"Error": "x"}}),
            "may not set `error`",
        ),
        (
            serde_json::json!({"namespace": QA, "source_namespace": DEV, "image": "a b"}),
            "invalid image",
        ),
    ];
    for (input, message) in cases {
        let world = demo();
        let state_before = world.snapshot_state();
        let execution = run(&world, &deploy_machine(), "bad", input.clone(), &[]).await;
        assert_failed_with(&execution, "InvalidInput");
        let cause = execution.cause.clone().unwrap_or_default();
        assert!(cause.contains(message), "{input}: {cause}");
        // The one write: a refusal after the lock was taken is on record as the last deploy.
        if let Some(namespace) = input["namespace"].as_str().and_then(|n| n.parse().ok()) {
            let layout = ParameterLayout::default();
            let aws = world.aws();
            let records = Records {
                params: &aws,
                layout: &layout,
            };
            if let Some(last) = records.last_deploy(&namespace).await.unwrap() {
                assert_eq!(last.outcome, "failed", "{input}");
                assert_eq!(last.error.as_deref(), Some("InvalidInput"), "{input}");
                use switchyard_core::ports::Parameters;
                aws.delete_parameter(&layout.last_deploy(&namespace))
                    .await
                    .unwrap();
            }
        }
        let mut state_after = world.snapshot_state();
        state_after.now = state_before.now;
        assert_eq!(state_before, state_after, "{input} changed the world");
    }
}

#[tokio::test]
async fn a_lost_reply_at_any_stage_is_retried_without_doing_the_work_twice() {
    for stage in [
        "snapshot",
        "create-db",
        "swap-pointer",
        "deploy-service",
        "cleanup",
    ] {
        let world = demo();
        let fault = format!("{stage}:lost-reply");
        let execution = deploy_from(&world, QA, DEV, &[fault.as_str()]).await;
        assert_succeeded(&execution);
        assert!(retries(&execution) >= 1, "{stage}");
        let report = DeployReport::from_execution(&execution);
        assert_eq!(
            dbs_of(&world, QA),
            vec![(report.new_db.clone().unwrap(), "available".to_owned())],
            "{stage}"
        );
        let status = status_of(&world, QA).await;
        assert_eq!(
            status.service_revision,
            Some(2),
            "{stage}: one new revision in service"
        );
        assert!(
            status.orphans.is_empty()
                && status.due_for_deletion.is_empty()
                && status.candidates.is_empty(),
            "{stage}"
        );
        assert_eq!(status.locked_by, None);
    }
}

#[tokio::test]
async fn a_rollback_that_cannot_finish_keeps_the_lock_and_forgets_nothing() {
    let world = demo();
    let old = before(&world, QA).await;
    let execution = deploy_from(
        &world,
        QA,
        DEV,
        &["wait-stable:rollout-failed", "rollback:error"],
    )
    .await;
    assert_failed_with(&execution, "RollbackIncomplete");
    let status = status_of(&world, QA).await;
    assert!(
        status.locked_by.is_some(),
        "an operator must look before the next deploy"
    );
    assert!(status.orphans.is_empty(), "{:?}", status.orphans);
    // The old database still serves (the circuit breaker rolled the service back onto it).
    assert_eq!(
        status.task_definition_arn.as_deref(),
        Some(old.task_definition.as_str())
    );
    assert!(dbs_of(&world, QA).contains(&(old.db.clone(), "available".to_owned())));

    // The operator releases the lock; the next deploy converges to one database.
    let aws = world.aws();
    let layout = ParameterLayout::default();
    let records = switchyard_core::records::Records {
        params: &aws,
        layout: &layout,
    };
    records.unlock(&ns(QA)).await.unwrap();
    world.advance(std::time::Duration::from_secs(3600));
    let next = deploy_from(&world, QA, DEV, &[]).await;
    assert_succeeded(&next);
    let report = DeployReport::from_execution(&next);
    assert_eq!(
        dbs_of(&world, QA),
        vec![(report.new_db.unwrap(), "available".to_owned())]
    );
    let status = status_of(&world, QA).await;
    assert!(
        status.orphans.is_empty() && status.due_for_deletion.is_empty() && status.drift.is_empty()
    );
}

// --- policies ---------------------------------------------------------------------------------

use switchyard_core::policy::PolicyStep;

/// A deploy stopped before the restore: no database made, nothing tracked, the lock released,
/// the pointer and service where they were.
async fn assert_nothing_restored(
    world: &switchyard_sim::World,
    old: &Before,
    execution: &switchyard_asl::Execution,
) {
    let report = DeployReport::from_execution(execution);
    assert_eq!(report.new_db, None);
    assert_eq!(report.pointer_version_after, None);
    assert_eq!(
        dbs_of(world, QA),
        vec![(old.db.clone(), "available".to_owned())],
        "no database was created"
    );
    assert!(tracked(world, QA).await.is_empty());
    let status = status_of(world, QA).await;
    assert_eq!(status.locked_by, None, "the lock is released");
    assert_eq!(status.active_db.as_deref(), Some(old.db.as_str()));
    assert_eq!(status.pointer_version, Some(1), "the pointer never moved");
    assert_eq!(
        status.task_definition_arn.as_deref(),
        Some(old.task_definition.as_str())
    );
    assert!(status.orphans.is_empty() && status.candidates.is_empty());
    assert!(status.drift.is_empty(), "{:?}", status.drift);
}

#[tokio::test]
async fn a_policy_that_denies_the_restore_stops_the_deploy_in_preflight() {
    let world = demo();
    let old = before(&world, QA).await;
    bind_everywhere(&world, "guard");
    let engine = OneNo::deny(PolicyStep::CreateDatabase);
    let input = request(QA, Source::Namespace(DEV.into())).input();
    let execution = run_with_policies(
        &world,
        &deploy_machine(),
        "denied-restore",
        input,
        &[],
        engine.clone(),
    )
    .await;
    assert_failed_with(&execution, "PolicyDenied");
    assert_eq!(
        execution.cause.as_deref(),
        Some(
            "policy denied create-database for xy-0146-qa: guard: at create-database: xy-0146-qa may not create-database"
        )
    );
    assert_eq!(
        engine.asked(),
        [
            PolicyStep::Snapshot,
            PolicyStep::CreateDatabase,
            PolicyStep::SwapPointer,
            PolicyStep::DeployService
        ],
        "preflight asks about every step the request describes, and nothing runs after a no"
    );
    assert_eq!(
        tasks_run(&execution),
        ["AcquireLock", "Preflight", "ReleaseLockOnFailure"]
    );
    assert_nothing_restored(&world, &old, &execution).await;
}

#[tokio::test]
async fn a_policy_that_denies_the_restore_at_its_step_fails_the_deploy_before_any_database_exists()
{
    let world = demo();
    let old = before(&world, QA).await;
    bind_everywhere(&world, "guard");
    let engine = OneNo::deny_after_preflight(PolicyStep::CreateDatabase);
    let input = request(QA, Source::Namespace(DEV.into())).input();
    let execution = run_with_policies(
        &world,
        &deploy_machine(),
        "denied-restore",
        input,
        &[],
        engine.clone(),
    )
    .await;
    assert_failed_with(&execution, "PolicyDenied");
    assert_eq!(
        execution.cause.as_deref(),
        Some(
            "policy denied create-database for xy-0146-qa: guard: xy-0146-qa may not create-database"
        )
    );
    assert_eq!(
        engine.asked()[4..],
        [PolicyStep::Snapshot, PolicyStep::CreateDatabase],
        "asked before each change (after preflight), never by the rollback"
    );
    assert_nothing_restored(&world, &old, &execution).await;
}

#[tokio::test]
async fn a_policy_that_denies_the_service_deploy_rolls_back_cleanly() {
    let world = demo();
    let old = before(&world, QA).await;
    bind_everywhere(&world, "guard");
    let engine = OneNo::deny_after_preflight(PolicyStep::DeployService);
    let input = request(QA, Source::Namespace(DEV.into())).input();
    let execution = run_with_policies(
        &world,
        &deploy_machine(),
        "denied-service",
        input,
        &[],
        engine.clone(),
    )
    .await;
    assert_failed_with(&execution, "PolicyDenied");
    assert!(
        execution
            .cause
            .as_deref()
            .unwrap()
            .contains("guard: xy-0146-qa may not deploy-service"),
        "{:?}",
        execution.cause
    );
    let report = DeployReport::from_execution(&execution);
    let rollback = report.rollback.clone().unwrap();
    assert!(rollback.pointer_restored);
    assert!(!rollback.service_restored, "no revision was registered");
    assert_eq!(rollback.deleted, vec![report.new_db.clone().unwrap()]);
    let every_step = [
        PolicyStep::Snapshot,
        PolicyStep::CreateDatabase,
        PolicyStep::SwapPointer,
        PolicyStep::DeployService,
    ];
    // Preflight, then each step's own gate.
    assert_eq!(engine.asked(), [every_step, every_step].concat());
    assert_eq!(status_of(&world, QA).await.service_revision, Some(1));
    assert_rolled_back(&world, &old, &execution).await;
}

#[tokio::test]
async fn a_policy_that_protects_the_old_database_keeps_it_tracked_and_the_deploy_stands() {
    let world = demo();
    let old = before(&world, QA).await;
    bind_everywhere(&world, "guard");
    let input = request(QA, Source::Namespace(DEV.into())).input();
    let execution = run_with_policies(
        &world,
        &deploy_machine(),
        "kept",
        input,
        &[],
        OneNo::deny(PolicyStep::Cleanup),
    )
    .await;
    assert_succeeded(&execution);
    let report = DeployReport::from_execution(&execution);
    assert!(report.deleted.is_empty());
    assert_eq!(report.cleanup_deferred, None);
    assert_eq!(report.kept.len(), 1, "{:?}", report.kept);
    assert!(
        report.kept[0].starts_with(&format!("{}: policy denied cleanup", old.db)),
        "{:?}",
        report.kept
    );
    assert_eq!(
        tracked(&world, QA).await,
        vec![(old.db.clone(), TrackedRole::Retired)]
    );
    let status = status_of(&world, QA).await;
    assert_eq!(status.due_for_deletion, vec![old.db.clone()]);
    assert!(status.orphans.is_empty());
    assert_eq!(status.locked_by, None);
}

#[tokio::test]
async fn a_bound_plugin_without_an_engine_fails_closed_before_the_snapshot() {
    let world = demo();
    let old = before(&world, QA).await;
    bind_everywhere(&world, "guard");
    // `run` uses the engine with no plugins: every bound plugin is missing.
    let execution = deploy_from(&world, QA, DEV, &[]).await;
    assert_failed_with(&execution, "PolicyFailed");
    assert!(
        execution
            .cause
            .as_deref()
            .unwrap()
            .contains("plugin guard is not installed"),
        "{:?}",
        execution.cause
    );
    let snapshot = format!(
        "{DEV}-{}",
        switchyard_core::Timestamp::from_datetime(execution.start_date)
    );
    use switchyard_core::ports::Snapshots;
    assert!(world.aws().describe_snapshot(&snapshot).await.is_err());
    assert_eq!(dbs_of(&world, QA), vec![(old.db, "available".to_owned())]);
    assert_eq!(status_of(&world, QA).await.locked_by, None);
}

#[tokio::test]
async fn a_retry_that_finds_its_own_work_done_does_not_ask_the_policies_again() {
    for (stage, step) in [
        ("snapshot", PolicyStep::Snapshot),
        ("deploy-service", PolicyStep::DeployService),
        ("cleanup", PolicyStep::Cleanup),
    ] {
        let world = demo();
        bind_everywhere(&world, "guard");
        let engine = OneNo::allow_all();
        let input = request(QA, Source::Namespace(DEV.into())).input();
        let fault = format!("{stage}:lost-reply");
        let execution = run_with_policies(
            &world,
            &deploy_machine(),
            "lost-reply",
            input,
            &[fault.as_str()],
            engine.clone(),
        )
        .await;
        assert_succeeded(&execution);
        assert!(retries(&execution) >= 1, "{stage}");
        let asked = engine.asked().iter().filter(|s| **s == step).count();
        // Once by preflight (which never judges the clean-up), once by the step.
        let expected = if step == PolicyStep::Cleanup { 1 } else { 2 };
        assert_eq!(asked, expected, "{stage}: {:?}", engine.asked());
        let report = DeployReport::from_execution(&execution);
        assert_eq!(
            dbs_of(&world, QA),
            vec![(report.new_db.unwrap(), "available".to_owned())],
            "{stage}"
        );
    }
}

// --- settings reach the application ----------------------------------------------------------

async fn set(world: &switchyard_sim::World, namespace: &str, assignments: &[&str]) {
    let assignments: Vec<String> = assignments.iter().map(|a| (*a).to_owned()).collect();
    switchyard_core::tenants::set(
        &world.aws(),
        &ParameterLayout::default(),
        &ns(namespace),
        &assignments,
    )
    .await
    .unwrap();
}

/// The `app` container of the revision the service runs now: its environment and secrets.
async fn running_app(
    world: &switchyard_sim::World,
    namespace: &str,
) -> (
    std::collections::BTreeMap<String, String>,
    std::collections::BTreeMap<String, String>,
) {
    let status = status_of(world, namespace).await;
    let definition = world
        .aws()
        .describe_task_definition(&status.task_definition_arn.unwrap())
        .await
        .unwrap();
    let app = definition
        .containers
        .into_iter()
        .find(|c| c.name == "app")
        .unwrap();
    (app.environment, app.secrets)
}

#[tokio::test]
async fn the_tenants_settings_reach_each_revision_and_a_settings_only_deploy_keeps_the_database() {
    let world = demo();
    set(
        &world,
        QA,
        &[
            "app_environment.MAX_USERS=100",
            "app_environment.FEATURE_EXPORT=on",
            "app_secrets.API_KEY=/xy-0146-qa/api-key",
        ],
    )
    .await;
    assert_succeeded(&deploy_from(&world, QA, DEV, &[]).await);
    let (environment, secrets) = running_app(&world, QA).await;
    assert_eq!(environment["MAX_USERS"], "100");
    assert_eq!(environment["FEATURE_EXPORT"], "on");
    assert_eq!(secrets["API_KEY"], "/xy-0146-qa/api-key", "by reference");
    let deployed = before(&world, QA).await;
    let pointer_version = status_of(&world, QA).await.pointer_version;

    // A change in the catalog reaches the service through a deploy that keeps the database.
    set(
        &world,
        QA,
        &[
            "app_environment.MAX_USERS=250",
            "app_environment.FEATURE_EXPORT=",
        ],
    )
    .await;
    let input = serde_json::json!({"namespace": QA, "settings_only": true});
    let execution = run(&world, &deploy_machine(), "settings", input, &[]).await;
    assert_succeeded(&execution);
    assert!(
        !tasks_run(&execution)
            .iter()
            .any(|t| ["Snapshot", "CreateDb", "SwapPointer"].contains(&t.as_str())),
        "{:?}",
        tasks_run(&execution)
    );
    let (environment, secrets) = running_app(&world, QA).await;
    assert_eq!(environment["MAX_USERS"], "250");
    assert!(
        !environment.contains_key("FEATURE_EXPORT"),
        "dropped: {environment:?}"
    );
    assert_eq!(secrets["API_KEY"], "/xy-0146-qa/api-key");
    assert_eq!(
        environment["DB_INSTANCE_ID"], deployed.db,
        "the same database"
    );
    let status = status_of(&world, QA).await;
    assert_eq!(status.active_db.as_deref(), Some(deployed.db.as_str()));
    assert_eq!(
        status.pointer_version, pointer_version,
        "the pointer never moved"
    );
    let running = status.task_definition_arn.clone().unwrap();
    assert_ne!(running, deployed.task_definition);
    assert_eq!(dbs_of(&world, QA).len(), 1);
    assert!(status.drift.is_empty() && status.orphans.is_empty());
    // The names it carries, in a tag ECS accepts (no commas in a tag value).
    let definition = world
        .aws()
        .describe_task_definition(&running)
        .await
        .unwrap();
    assert_eq!(
        definition.tags["switchyard:app-settings"],
        "MAX_USERS API_KEY"
    );

    // A setting moved from a plain value to a secret is one or the other, never both.
    set(
        &world,
        QA,
        &[
            "app_environment.MAX_USERS=",
            "app_secrets.MAX_USERS=/xy-0146-qa/max-users",
        ],
    )
    .await;
    let input = serde_json::json!({"namespace": QA, "settings_only": true});
    assert_succeeded(&run(&world, &deploy_machine(), "moved", input, &[]).await);
    let (environment, secrets) = running_app(&world, QA).await;
    assert!(!environment.contains_key("MAX_USERS"), "{environment:?}");
    assert_eq!(secrets["MAX_USERS"], "/xy-0146-qa/max-users");
}

#[tokio::test]
async fn a_settings_only_deploy_that_fails_to_roll_out_goes_back_to_the_old_revision() {
    let world = demo();
    let old = before(&world, QA).await;
    set(&world, QA, &["app_environment.MAX_USERS=100"]).await;
    let input = serde_json::json!({"namespace": QA, "settings_only": true});
    let execution = run(
        &world,
        &deploy_machine(),
        "settings",
        input,
        &["wait-stable:rollout-failed"],
    )
    .await;
    assert_failed_with(&execution, "RolloutFailed");
    let report = DeployReport::from_execution(&execution);
    // ECS's circuit breaker (or the rollback) took the service back; no database was touched.
    let rollback = report.rollback.unwrap();
    assert!(!rollback.pointer_restored, "the pointer never moved");
    assert!(rollback.deleted.is_empty(), "{:?}", rollback.deleted);
    let status = status_of(&world, QA).await;
    assert_eq!(status.active_db.as_deref(), Some(old.db.as_str()));
    assert_eq!(
        status.task_definition_arn.as_deref(),
        Some(old.task_definition.as_str())
    );
    assert_eq!(dbs_of(&world, QA), vec![(old.db, "available".to_owned())]);
    assert_eq!(status.locked_by, None);
}

#[tokio::test]
async fn a_settings_only_deploy_refuses_a_source_and_a_tenant_without_a_database() {
    let world = demo();
    let input =
        serde_json::json!({"namespace": QA, "settings_only": true, "source_namespace": DEV});
    let execution = run(&world, &deploy_machine(), "both", input, &[]).await;
    assert_failed_with(&execution, "InvalidInput");
    assert!(
        execution
            .cause
            .as_deref()
            .unwrap()
            .contains("keeps the database"),
        "{:?}",
        execution.cause
    );
    assert_eq!(
        tasks_run(&execution),
        ["AcquireLock", "Preflight", "ReleaseLockOnFailure"]
    );
    // A new image changes the version, which only a swap records: refused before the lock.
    let input = serde_json::json!({"namespace": QA, "settings_only": true, "image": "1.3.3"});
    let execution = run(&world, &deploy_machine(), "image", input, &[]).await;
    assert_failed_with(&execution, "InvalidInput");
    assert!(
        execution
            .cause
            .as_deref()
            .unwrap()
            .contains("deploy image 1.3.3 with data"),
        "{:?}",
        execution.cause
    );
}

// --- each tenant its own credentials ---------------------------------------------------------

#[tokio::test]
async fn a_restored_database_gets_its_own_master_password_before_it_takes_traffic() {
    let world = demo();
    let execution = deploy_from(&world, QA, DEV, &[]).await;
    assert_succeeded(&execution);
    let tasks = tasks_run(&execution);
    let credentials = tasks.iter().position(|t| t == "SetCredentials").unwrap();
    let swap = tasks.iter().position(|t| t == "SwapPointer").unwrap();
    assert!(credentials < swap, "{tasks:?}");
    let new_db = DeployReport::from_execution(&execution).new_db.unwrap();
    let described = world.aws().describe_db(&new_db).await.unwrap();
    let secret = described.master_user_secret.unwrap();
    assert_eq!(secret.status, "active");
    let pointer = world_pointer(&world, QA).await;
    assert_eq!(
        pointer.master_user_secret_arn.as_ref(),
        Some(&secret.secret_arn)
    );
    let (_, secrets) = running_app(&world, QA).await;
    assert_eq!(
        secrets["DB_PASSWORD"],
        format!("{}:password::", secret.secret_arn)
    );
}

async fn world_pointer(
    world: &switchyard_sim::World,
    namespace: &str,
) -> switchyard_core::ActivePointer {
    let aws = world.aws();
    let layout = ParameterLayout::default();
    Records {
        params: &aws,
        layout: &layout,
    }
    .pointer(&ns(namespace))
    .await
    .unwrap()
    .unwrap()
    .0
}

#[tokio::test]
async fn a_failure_at_the_credentials_rolls_back_and_a_lost_reply_is_retried() {
    let world = demo();
    let old = before(&world, QA).await;
    let failed = deploy_from(&world, QA, DEV, &["credentials:error"]).await;
    assert_failed_with(&failed, "AwsRejected");
    assert_rolled_back(&world, &old, &failed).await;

    let world = demo();
    let execution = deploy_from(&world, QA, DEV, &["credentials:lost-reply"]).await;
    assert_succeeded(&execution);
    assert!(retries(&execution) >= 1);
    let pointer = world_pointer(&world, QA).await;
    assert!(pointer.master_user_secret_arn.is_some());
}

#[tokio::test]
async fn a_tenant_may_keep_the_snapshots_password() {
    let world = demo();
    set(&world, QA, &["manage_master_password=false"]).await;
    let (_, secrets_before) = running_app(&world, QA).await;
    let execution = deploy_from(&world, QA, DEV, &[]).await;
    assert_succeeded(&execution);
    let new_db = DeployReport::from_execution(&execution).new_db.unwrap();
    let described = world.aws().describe_db(&new_db).await.unwrap();
    assert_eq!(described.master_user_secret, None);
    assert_eq!(world_pointer(&world, QA).await.master_user_secret_arn, None);
    let (_, secrets) = running_app(&world, QA).await;
    assert_eq!(secrets, secrets_before);
}

/// A tenant that keeps the snapshot's password still gets the setup a restore cannot take, and
/// no secret.
#[tokio::test]
async fn keeping_the_password_still_carries_the_maintenance_window_and_monitoring_over() {
    const PROD: &str = "xy-0146-prod";
    let world = demo();
    set(&world, PROD, &["manage_master_password=false"]).await;
    let execution = deploy_from(&world, PROD, QA, &[]).await;
    assert_succeeded(&execution);
    let new_db = DeployReport::from_execution(&execution).new_db.unwrap();
    let described = world.aws().describe_db(&new_db).await.unwrap();
    assert_eq!(described.master_user_secret, None);
    assert_eq!(
        described.config.maintenance_window.as_deref(),
        Some("tue:02:00-tue:02:30")
    );
    assert_eq!(described.config.monitoring_interval_seconds, Some(60));
    assert_eq!(described.config.performance_insights, Some(true));
    let credentials = execution
        .history
        .iter()
        .rev()
        .find_map(|event| match &event.kind {
            switchyard_asl::HistoryEventKind::StateEntered { name, input, .. }
                if name == "CredentialsReady" =>
            {
                Some(input["credentials"].clone())
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(credentials["status"], "kept", "{credentials}");
}

#[tokio::test]
async fn turning_the_hand_over_off_drops_the_reference_to_the_old_databases_secret() {
    let world = demo();
    assert_succeeded(&deploy_from(&world, QA, DEV, &[]).await);
    let (_, secrets) = running_app(&world, QA).await;
    assert!(secrets["DB_PASSWORD"].contains(":secret:rds!"));
    set(&world, QA, &["manage_master_password=false"]).await;
    world.advance(std::time::Duration::from_secs(3600));
    assert_succeeded(&deploy_from(&world, QA, DEV, &[]).await);
    // That secret went with the database the clean-up deleted: no revision may name it.
    let (_, secrets) = running_app(&world, QA).await;
    assert!(!secrets.contains_key("DB_PASSWORD"), "{secrets:?}");
}
