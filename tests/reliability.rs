//! Nothing lost, whatever the operator types: regressions for what a random campaign found on
//! the embedded world (a reused execution name, another tenant's data, a rollback that waited
//! on what it did not make, a downgrade), each through the state machine as it runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
mod common;

use common::*;
use serde_json::json;
use switchyard::deploy::Source;
use switchyard_core::policy::PolicyStep;
use switchyard_core::records::{ParameterLayout, Records};

const QA: &str = "xy-0146-qa";
const DEV: &str = "xy-0146-dev";

/// The live database of `namespace` is where it was, available, the service runs on it, and
/// nothing is orphaned or left locked.
async fn assert_intact(world: &switchyard_sim::World, namespace: &str, live: &str) {
    let status = status_of(world, namespace).await;
    assert_eq!(status.active_db.as_deref(), Some(live), "{status:?}");
    assert_eq!(status.active_db_status.as_deref(), Some("available"));
    assert!(status.orphans.is_empty(), "{:?}", status.orphans);
    assert!(status.drift.is_empty(), "{:?}", status.drift);
    assert!(status.locked_by.is_none(), "{:?}", status.locked_by);
}

#[tokio::test]
async fn a_reused_name_that_fails_leaves_the_first_runs_database_and_pointer_alone() {
    for second_fails_by in ["bad source", "policy denial"] {
        let world = demo();
        let first = run(
            &world,
            &deploy_machine(),
            "foo",
            request(QA, Source::Namespace(DEV.into())).input(),
            &[],
        )
        .await;
        assert_succeeded(&first);
        let live = status_of(&world, QA).await.active_db.unwrap();
        world.advance(std::time::Duration::from_secs(600));

        let second = match second_fails_by {
            "bad source" => {
                let input = json!({"namespace": QA, "source_namespace": "xy-0146-uat"});
                run(&world, &deploy_machine(), "foo", input, &[]).await
            }
            _ => {
                let input = request(QA, Source::Namespace(DEV.into())).input();
                let policies = OneNo::deny_after_preflight(PolicyStep::CreateDatabase);
                bind_everywhere(&world, "one-no");
                run_with_policies(&world, &deploy_machine(), "foo", input, &[], policies).await
            }
        };
        assert!(
            second.error.as_deref() == Some("InvalidInput")
                || second.error.as_deref() == Some("PolicyDenied"),
            "{second_fails_by}: {:?} {:?}",
            second.error,
            second.cause
        );
        assert_intact(&world, QA, &live).await;
    }
}

#[tokio::test]
async fn a_reused_name_deploys_for_real_rather_than_taking_the_first_runs_work_as_its_own() {
    let world = demo();
    let input = request(QA, Source::Namespace(DEV.into())).input();
    assert_succeeded(&run(&world, &deploy_machine(), "foo", input.clone(), &[]).await);
    world.advance(std::time::Duration::from_secs(600));
    let second = run(&world, &deploy_machine(), "foo", input, &[]).await;
    assert_succeeded(&second);
    let status = status_of(&world, QA).await;
    let report =
        <switchyard::deploy::DeployReport as switchyard::deploy::FromExecution>::from_execution(
            &second,
        );
    // The service really runs on the second run's database, not the first's.
    assert_eq!(status.active_db, report.new_db);
    assert!(status.drift.is_empty(), "{:?}", status.drift);
    assert_intact(&world, QA, status.active_db.as_deref().unwrap()).await;
}

#[tokio::test]
async fn a_reused_name_does_not_walk_through_a_lock_kept_for_an_operator() {
    let world = demo();
    let input = request(QA, Source::Namespace(DEV.into())).input();
    let kept = run(
        &world,
        &deploy_machine(),
        "foo",
        input.clone(),
        &["wait-stable:rollout-failed", "rollback:error"],
    )
    .await;
    assert_failed_with(&kept, "RollbackIncomplete");
    let holder = status_of(&world, QA).await.locked_by.unwrap();
    world.advance(std::time::Duration::from_secs(600));
    let again = run(&world, &deploy_machine(), "foo", input, &[]).await;
    assert_failed_with(&again, "NamespaceLocked");
    // Still held for the operator, by the first run.
    assert_eq!(status_of(&world, QA).await.locked_by, Some(holder));
}

#[tokio::test]
async fn after_an_incomplete_rollback_a_later_failure_rolls_back_without_waiting_on_the_old_database()
 {
    let world = demo();
    let stuck = deploy_from(&world, QA, DEV, &["deploy-service:error", "rollback:error"]).await;
    assert_failed_with(&stuck, "RollbackIncomplete");
    let aws = world.aws();
    let layout = ParameterLayout::default();
    let records = Records {
        params: &aws,
        layout: &layout,
    };
    records.unlock(&ns(QA)).await.unwrap();
    // The database the service runs on is not "due for deletion", whatever the records say.
    let status = status_of(&world, QA).await;
    let serving = serving_db(&world, status.task_definition_arn.as_deref().unwrap()).await;
    assert!(
        !status.due_for_deletion.contains(&serving),
        "{serving} serves: {status:?}"
    );
    world.advance(std::time::Duration::from_secs(3600));
    let later = deploy_from(&world, QA, DEV, &["deploy-service:error"]).await;
    assert_failed_with(&later, "AwsRejected");
    let status = status_of(&world, QA).await;
    assert!(status.locked_by.is_none(), "{status:?}");
    assert!(status.orphans.is_empty(), "{:?}", status.orphans);
}

/// The database the task definition `arn` names.
async fn serving_db(world: &switchyard_sim::World, arn: &str) -> String {
    use switchyard_core::ports::Services;
    use switchyard_core::steps::service::env_var;
    let definition = world.aws().describe_task_definition(arn).await.unwrap();
    definition.containers[0].environment[env_var::DB_INSTANCE_ID].clone()
}

#[tokio::test]
async fn another_customers_data_is_refused_before_anything_is_created() {
    let world = demo();
    const AB: &str = "ab-0201-dev";
    let promoted = deploy_from(&world, QA, DEV, &[]).await;
    assert_succeeded(&promoted);
    let snapshot =
        <switchyard::deploy::DeployReport as switchyard::deploy::FromExecution>::from_execution(
            &promoted,
        )
        .snapshot_id
        .unwrap();
    let before = status_of(&world, AB).await;
    let dbs_before = dbs_of(&world, AB);
    for source in [
        Source::Snapshot(snapshot.clone()),
        Source::Namespace(DEV.to_owned()),
    ] {
        let execution = run(
            &world,
            &deploy_machine(),
            &format!("cross-{}", world.now().timestamp()),
            request(AB, source.clone()).input(),
            &[],
        )
        .await;
        assert_failed_with(&execution, "InvalidInput");
        let cause = execution.cause.clone().unwrap_or_default();
        assert!(cause.contains("not data of ab-0201"), "{cause}");
        assert!(
            !tasks_run(&execution).contains(&"CreateDb".to_owned()),
            "{:?}",
            tasks_run(&execution)
        );
        assert_eq!(dbs_of(&world, AB), dbs_before);
        assert_eq!(status_of(&world, AB).await.active_db, before.active_db);
        world.advance(std::time::Duration::from_secs(60));
    }

    // A source the tenant's settings name is let through.
    let aws = world.aws();
    let layout = ParameterLayout::default();
    let records = Records {
        params: &aws,
        layout: &layout,
    };
    let mut settings = records.settings(&ns(AB)).await.unwrap();
    settings.allowed_sources = vec!["xy-0146-*".into()];
    records.put_settings(&ns(AB), &settings).await.unwrap();
    let allowed = run(
        &world,
        &deploy_machine(),
        "template-data",
        request(AB, Source::Snapshot(snapshot)).input(),
        &[],
    )
    .await;
    assert_succeeded(&allowed);
}

/// The command as a user types it, on the world file in `dir`, with the bundled policies.
fn switchyard(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    cli_in(dir, args)
}

fn report(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
        panic!(
            "{err}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn each_deploy_records_its_version_so_the_path_moves_on_and_a_downgrade_is_denied() {
    let dir = tempfile::tempdir().unwrap();
    assert!(switchyard(dir.path(), &["init", "--demo"]).status.success());
    let version = |dir: &std::path::Path| {
        let status = report(&switchyard(dir, &["status", "--output", "json"]));
        status
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["namespace"] == QA)
            .unwrap()["app_version"]
            .clone()
    };
    assert_eq!(version(dir.path()), "1.3.2");
    for target in ["1.3.3", "1.4.1", "2.0.1"] {
        let out = switchyard(
            dir.path(),
            &[
                "deploy", QA, "--from", DEV, "--image", target, "--output", "json",
            ],
        );
        let done = report(&out);
        assert_eq!(done["status"], "SUCCEEDED", "{target}: {done}");
        assert_eq!(version(dir.path()), target);
    }
    // Back down the line: refused, and the tenant stays where it is.
    let out = switchyard(
        dir.path(),
        &[
            "deploy", QA, "--from", DEV, "--image", "1.4.1", "--output", "json",
        ],
    );
    let refused = report(&out);
    assert_eq!(refused["status"], "FAILED", "{refused}");
    assert_eq!(refused["error"], "PolicyDenied", "{refused}");
    assert!(
        refused["cause"].as_str().unwrap().contains("downgrade"),
        "{refused}"
    );
    assert_eq!(version(dir.path()), "2.0.1");
}

#[test]
fn two_commands_on_one_world_file_both_count() {
    let dir = tempfile::tempdir().unwrap();
    assert!(switchyard(dir.path(), &["init", "--demo"]).status.success());
    let world = dir.path().join("world.json");
    let spawn = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .arg("--world")
            .arg(&world)
            .args(args)
            .env_remove("SWITCHYARD_ENDPOINT_URL")
            .env_remove("SWITCHYARD_PLUGIN_DIR")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Two deploys at once, and status readers beside them.
    let deploys = [
        spawn(&["deploy", QA, "--from", DEV, "--output", "json"]),
        spawn(&[
            "deploy",
            "ab-0201-dev",
            "--from",
            "ab-0201-prod",
            "--output",
            "json",
        ]),
    ];
    let readers: Vec<_> = (0..4)
        .map(|_| spawn(&["status", "--output", "json"]))
        .collect();
    let mut new_dbs = Vec::new();
    for child in deploys {
        let out = child.wait_with_output().unwrap();
        let done = report(&out);
        assert_eq!(done["status"], "SUCCEEDED", "{done}");
        new_dbs.push((done["namespace"].clone(), done["new_db"].clone()));
    }
    for child in readers {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Neither deploy vanished: each namespace's pointer names the database its deploy made.
    let status = report(&switchyard(dir.path(), &["status", "--output", "json"]));
    for (namespace, db) in new_dbs {
        let entry = status
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["namespace"] == namespace)
            .unwrap();
        assert_eq!(entry["active_db"], db, "{entry}");
        assert_eq!(entry["orphans"], json!([]), "{entry}");
    }
    // No temporary file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn status_never_writes_and_a_read_only_world_is_refused_not_replaced() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    assert!(switchyard(dir.path(), &["init", "--demo"]).status.success());
    let world = dir.path().join("world.json");
    let before = std::fs::read(&world).unwrap();
    let modified = std::fs::metadata(&world).unwrap().modified().unwrap();
    assert!(switchyard(dir.path(), &["status"]).status.success());
    assert_eq!(std::fs::read(&world).unwrap(), before);
    assert_eq!(
        std::fs::metadata(&world).unwrap().modified().unwrap(),
        modified
    );

    std::fs::set_permissions(&world, std::fs::Permissions::from_mode(0o444)).unwrap();
    let out = switchyard(dir.path(), &["deploy", QA, "--from", DEV]);
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("read-only"), "{said}");
    assert_eq!(std::fs::read(&world).unwrap(), before);
    // Reading it is still fine.
    assert!(switchyard(dir.path(), &["status"]).status.success());
}

#[tokio::test]
async fn a_typo_in_the_request_or_a_bad_image_is_refused_by_the_first_step() {
    let world = demo();
    let live = status_of(&world, QA).await.active_db.unwrap();
    for (input, expected) in [
        (
            json!({"namespace": QA, "snapshotid": "xy-0146-dev-20261120-000000", "source_namespace": DEV}),
            "unknown key `snapshotid`",
        ),
        (
            json!({"namespace": QA, "source_namespace": DEV, "image": "\"1.3.3\""}),
            "invalid image",
        ),
        (
            json!({"namespace": QA, "source_namespace": DEV, "image": "1.3.3ü"}),
            "invalid image",
        ),
    ] {
        let execution = run(
            &world,
            &deploy_machine(),
            &format!("typo-{}", world.now().timestamp_micros()),
            input,
            &[],
        )
        .await;
        assert_failed_with(&execution, "InvalidInput");
        assert!(
            execution
                .cause
                .as_deref()
                .unwrap_or_default()
                .contains(expected),
            "{:?}",
            execution.cause
        );
        assert_eq!(
            tasks_run(&execution).first().map(String::as_str),
            Some("AcquireLock")
        );
        assert!(!tasks_run(&execution).contains(&"Snapshot".to_owned()));
        assert_intact(&world, QA, &live).await;
        world.advance(std::time::Duration::from_secs(1));
    }
}

#[tokio::test]
async fn a_runaway_machine_times_out_locally_instead_of_carrying_the_clock_months_ahead() {
    let world = demo();
    let started = world.now();
    let dir = tempfile::tempdir().unwrap();
    let machine = dir.path().join("runaway.asl.json");
    std::fs::write(
        &machine,
        r#"{"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 1200, "Next": "Wait"}}}"#,
    )
    .unwrap();
    let execution = run(&world, &machine, "runaway", json!({}), &[]).await;
    assert_eq!(execution.error.as_deref(), Some("States.Timeout"));
    let ran = world.now() - started;
    assert!(
        ran <= chrono::Duration::days(7) + chrono::Duration::minutes(30),
        "{ran}"
    );
}

#[tokio::test]
async fn one_unreadable_record_marks_its_namespace_broken_and_status_shows_the_rest() {
    use switchyard_core::ports::Parameters;
    let world = demo();
    let aws = world.aws();
    let layout = ParameterLayout::default();
    aws.put_parameter(&layout.active_db(&ns(QA)), "{not json", true)
        .await
        .unwrap();
    let statuses = switchyard_core::status::namespace_status(&aws, &layout)
        .await
        .unwrap();
    assert_eq!(statuses.len(), 5);
    for status in &statuses {
        if status.namespace == QA {
            let error = status.error.as_deref().unwrap_or_default();
            assert!(error.contains("not a valid record"), "{status:?}");
        } else {
            assert!(status.error.is_none(), "{status:?}");
            assert!(status.active_db.is_some(), "{status:?}");
        }
    }
    let violations = switchyard_core::invariants::check(&aws, &layout, None)
        .await
        .unwrap();
    assert!(
        violations
            .iter()
            .any(|v| v.namespace == QA && v.rule == "unreadable-records"),
        "{violations:?}"
    );
}

#[tokio::test]
async fn promoting_a_snapshot_whose_database_awaits_clean_up_says_so() {
    let world = demo();
    let first = deploy_from(&world, QA, DEV, &[]).await;
    assert_succeeded(&first);
    let snapshot =
        <switchyard::deploy::DeployReport as switchyard::deploy::FromExecution>::from_execution(
            &first,
        )
        .snapshot_id
        .unwrap();
    world.advance(std::time::Duration::from_secs(600));
    // Promote it to prod, replace it there with another, and, while the first prod database
    // still awaits its clean-up, promote the same snapshot again.
    const PROD: &str = "xy-0146-prod";
    let machine = deploy_machine();
    let input = request(PROD, Source::Snapshot(snapshot.clone())).input();
    assert_succeeded(&run(&world, &machine, "promote-1", input.clone(), &[]).await);
    world.advance(std::time::Duration::from_secs(600));
    let replaced = deploy_from(&world, PROD, QA, &["cleanup:error"]).await;
    assert_succeeded(&replaced);
    world.advance(std::time::Duration::from_secs(600));
    let again = run(&world, &machine, "promote-2", input, &[]).await;
    assert_failed_with(&again, "InvalidInput");
    let cause = again.cause.unwrap_or_default();
    assert!(cause.contains("awaits clean-up"), "{cause}");
}

#[tokio::test]
async fn a_tag_or_a_name_does_not_relabel_another_customers_snapshot() {
    use switchyard_core::ports::{Snapshots, Tags, tag};
    let world = demo();
    let aws = world.aws();
    let theirs = status_of(&world, "ab-0201-dev").await.active_db.unwrap();
    // A snapshot of ab-0201's database, named and tagged as if it were xy-0146-dev's.
    let disguised = "xy-0146-dev-20261101-000000";
    aws.create_snapshot(
        &theirs,
        disguised,
        &Tags::from([(tag::NAMESPACE.to_owned(), DEV.to_owned())]),
    )
    .await
    .unwrap();
    world.advance(std::time::Duration::from_secs(3600));
    let live = status_of(&world, QA).await.active_db.unwrap();
    let execution = run(
        &world,
        &deploy_machine(),
        "disguised",
        request(QA, Source::Snapshot(disguised.into())).input(),
        &[],
    )
    .await;
    assert_failed_with(&execution, "InvalidInput");
    assert!(
        execution
            .cause
            .as_deref()
            .unwrap_or_default()
            .contains("unknown origin"),
        "{:?}",
        execution.cause
    );
    assert_intact(&world, QA, &live).await;
}
