//! Upgrades along the release line, as a user runs them: `switchyard plan` and `switchyard
//! upgrade` through the CLI on the demo world, migrations as ECS tasks run to completion, and
//! every failure (a migration that exits 1, faults in the freeze and the migrations, a policy's
//! no) ending on the untouched old database with the service back at its count.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
mod common;

use std::path::Path;

use common::*;
use serde_json::Value;
use switchyard_core::ports::Services;
use switchyard_sim::World;

const QA: &str = "xy-0146-qa";

/// What the demo catalog's path from 1.3.2 to 2.0.1 runs, in order.
const MIGRATIONS_TO_2_0_1: [&str; 4] = [
    "/app/migrate 1.3.3",
    "/app/migrate 1.4.0",
    "/app/migrate 2.0.0",
    "/app/migrate 2.0.1",
];

fn demo_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = cli_in(dir.path(), &["init", "--demo"]);
    assert!(out.status.success(), "{}", output_text(&out));
    dir
}

fn status(dir: &Path, namespace: &str) -> Value {
    let out = cli_in(dir, &["status", "--output", "json"]);
    assert!(out.status.success());
    let all: Value = serde_json::from_slice(&out.stdout).unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .find(|s| s["namespace"] == namespace)
        .unwrap()
        .clone()
}

fn world(dir: &Path) -> World {
    World::load(&dir.join("world.json")).unwrap()
}

/// The service's desired and running counts and its container image, from the world file.
async fn service(dir: &Path, namespace: &str) -> (i32, i32, String) {
    let world = world(dir);
    let aws = world.aws();
    let service = aws
        .describe_service("switchyard-nonprod", &format!("{namespace}-app"))
        .await
        .unwrap();
    let definition = aws
        .describe_task_definition(&service.task_definition_arn)
        .await
        .unwrap();
    (
        service.desired_count,
        service.running_count,
        definition.containers[0].image.clone(),
    )
}

#[tokio::test]
async fn plan_prints_the_articles_path_for_the_demo_prod_tenant() {
    let dir = demo_dir();
    let out = cli_in(dir.path(), &["plan", "xy-0146-prod", "--to", "2.0.1"]);
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("path  1.3.2 → 1.3.3 → 1.4.0 → 2.0.0 → 2.0.1"),
        "{text}"
    );
    assert!(text.contains("already made by 1.3.3"), "{text}");
    assert!(text.contains("expected downtime ~"), "{text}");
    let out = cli_in(
        dir.path(),
        &["plan", "xy-0146-prod", "--to", "2.0.1", "--output", "json"],
    );
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let hops: Vec<&str> = plan["plan"]["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["version"].as_str().unwrap())
        .collect();
    assert_eq!(hops, ["1.3.3", "1.4.0", "2.0.0", "2.0.1"]);
    assert_eq!(plan["from"], "1.3.2");
    // Nothing plans backwards, or to a release the catalog lacks.
    for (to, said) in [
        ("1.3.1", "older than 1.3.2"),
        ("9.9.9", "not in the release catalog"),
    ] {
        let out = cli_in(dir.path(), &["plan", "xy-0146-prod", "--to", to]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success());
        assert!(err.contains("NoUpgradePath") && err.contains(said), "{err}");
    }
}

#[tokio::test]
async fn an_upgrade_migrates_a_copy_along_the_path_and_records_the_versions() {
    let dir = demo_dir();
    let before = status(dir.path(), QA);
    assert_eq!(before["app_version"], "1.3.2");
    let old_db = before["active_db"].as_str().unwrap().to_owned();
    let out = cli_in(dir.path(), &["upgrade", QA, "--to", "2.0.1"]);
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    // Said before anything runs: the path and the downtime.
    let said = text.find("expected downtime ~").unwrap();
    assert!(said < text.find("AcquireLock").unwrap(), "{text}");
    for state in [
        "FreezeService",
        "PrepareMigrations",
        "RunMigration",
        "SwapPointer",
    ] {
        assert!(
            states_in(&text).contains(&state.to_owned()),
            "{state}: {text}"
        );
    }
    let after = status(dir.path(), QA);
    assert_eq!(after["app_version"], "2.0.1", "{after}");
    assert_eq!(after["schema_version"], "2.0.1", "{after}");
    let new_db = after["active_db"].as_str().unwrap();
    assert_ne!(new_db, old_db);
    assert_eq!(world(dir.path()).migrations_of(new_db), MIGRATIONS_TO_2_0_1);
    // The old database is gone, the service runs 2.0.1 on the new one, thawed.
    assert!(
        dbs_of(&world(dir.path()), QA)
            .iter()
            .all(|(id, _)| id != &old_db)
    );
    let (desired, running, image) = service(dir.path(), QA).await;
    assert_eq!((desired, running), (2, 2));
    assert!(image.ends_with(":2.0.1"), "{image}");
    let shown = output_text(&cli_in(dir.path(), &["status"]));
    assert!(shown.contains("version 2.0.1, schema 2.0.1"), "{shown}");
    let doctor = cli_in(dir.path(), &["doctor"]);
    assert!(doctor.status.success(), "{}", output_text(&doctor));
}

/// The states a run's progress shows, in order: the column after the time and the mark
/// (`  +1m 30s   ok   RunMigration ...`).
fn states_in(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| line.starts_with("  +"))
        .filter_map(|line| line.get(17..)?.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// The tenant as it was: the same database (no migration ran on it), version and revision, the
/// service back at two tasks, no other database left, no lock.
async fn assert_untouched(dir: &Path, before: &Value) {
    let after = status(dir, QA);
    for key in [
        "active_db",
        "app_version",
        "schema_version",
        "pointer_version",
        "service_revision",
    ] {
        assert_eq!(after[key], before[key], "{key}: {after}");
    }
    assert!(after["locked_by"].is_null(), "{after}");
    let old_db = before["active_db"].as_str().unwrap();
    let world = world(dir);
    assert!(world.migrations_of(old_db).is_empty());
    assert_eq!(dbs_of(&world, QA).len(), 1, "{:?}", dbs_of(&world, QA));
    let (desired, running, image) = service(dir, QA).await;
    assert_eq!((desired, running), (2, 2), "the service is not back");
    assert!(image.ends_with(":1.3.2"), "{image}");
    assert!(cli_in(dir, &["doctor"]).status.success());
}

#[tokio::test]
async fn a_migration_that_fails_at_the_second_hop_rolls_back_onto_the_untouched_database() {
    let dir = demo_dir();
    let before = status(dir.path(), QA);
    let out = cli_in(
        dir.path(),
        &[
            "upgrade",
            QA,
            "--to",
            "2.0.1",
            "--inject-fault",
            "migrate:task-failed@2",
        ],
    );
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAIL Migrate                States.TaskFailed -> Rollback"),
        "{text}"
    );
    // The first hop ran and succeeded; the second exited 1.
    assert_eq!(text.matches("RunMigration").count(), 1, "{text}");
    assert!(text.contains("\"ExitCode\":1"), "{text}");
    assert!(text.contains("service thawed"), "{text}");
    assert_untouched(dir.path(), &before).await;
    let after = status(dir.path(), QA);
    assert_eq!(
        after["last_deploy"]["error"], "States.TaskFailed",
        "{after}"
    );
}

#[tokio::test]
async fn faults_in_the_freeze_and_the_migrations_are_retried_or_rolled_back() {
    for fault in [
        "migrate:throttle",
        "migrate:lost-reply",
        "freeze:throttle",
        "freeze:lost-reply",
    ] {
        let dir = demo_dir();
        let out = cli_in(
            dir.path(),
            &["upgrade", QA, "--to", "2.0.1", "--inject-fault", fault],
        );
        let text = output_text(&out);
        assert!(out.status.success(), "{fault}: {text}");
        let after = status(dir.path(), QA);
        assert_eq!(after["schema_version"], "2.0.1", "{fault}: {after}");
        let mut ran = world(dir.path()).migrations_of(after["active_db"].as_str().unwrap());
        // A RunTask whose answer was lost ran its task; the retry ran another. Idempotent
        // migrations make the second a no-op; both are on record.
        ran.dedup();
        assert_eq!(ran, MIGRATIONS_TO_2_0_1, "{fault}");
        let (desired, running, _) = service(dir.path(), QA).await;
        assert_eq!((desired, running), (2, 2), "{fault}");
    }
    for fault in ["migrate:error", "freeze:error"] {
        let dir = demo_dir();
        let before = status(dir.path(), QA);
        let out = cli_in(
            dir.path(),
            &["upgrade", QA, "--to", "2.0.1", "--inject-fault", fault],
        );
        let text = output_text(&out);
        assert_eq!(out.status.code(), Some(1), "{fault}: {text}");
        assert_untouched(dir.path(), &before).await;
    }
}

#[tokio::test]
async fn a_production_upgrade_in_a_freeze_is_refused_before_the_service_is_touched() {
    let dir = demo_dir();
    // Whatever day the test runs: a freeze over all of it.
    let out = cli_in(
        dir.path(),
        &[
            "tenant",
            "set",
            "xy-0146-prod",
            r#"policies.change-window={"freezes": [{"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z", "reason": "audit"}]}"#,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = status(dir.path(), "xy-0146-prod");
    let out = cli_in(dir.path(), &["upgrade", "xy-0146-prod", "--to", "2.0.1"]);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("PolicyDenied") && text.contains("audit"),
        "{text}"
    );
    assert_eq!(
        states_in(&text),
        ["AcquireLock", "Preflight", "ReleaseLockOnFailure"],
        "{text}"
    );
    let after = status(dir.path(), "xy-0146-prod");
    assert_eq!(after["active_db"], before["active_db"]);
    let world = world(dir.path());
    let service = world
        .aws()
        .describe_service("switchyard-prod", "xy-0146-prod-app")
        .await
        .unwrap();
    assert_eq!(service.desired_count, 2);
}

#[tokio::test]
async fn release_commands_keep_the_catalog_valid() {
    let dir = demo_dir();
    let out = cli_in(
        dir.path(),
        &[
            "release",
            "add",
            "2.1.0",
            "--image",
            "2.1.0",
            "--",
            "/app/migrate",
            "2.1.0",
        ],
    );
    assert!(out.status.success(), "{}", output_text(&out));
    let list = output_text(&cli_in(dir.path(), &["release", "list"]));
    assert!(
        list.contains("2.1.0") && list.contains("/app/migrate 2.1.0"),
        "{list}"
    );
    let shown = cli_in(
        dir.path(),
        &["release", "show", "1.4.1", "--output", "json"],
    );
    let release: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(release["backport_of"], "2.0.1");
    for (args, named) in [
        (
            vec!["release", "add", "2.2.1", "--image", "x"],
            "UnorderedReleaseLines",
        ),
        (
            vec![
                "release",
                "add",
                "2.1.1",
                "--image",
                "x",
                "--backport-of",
                "1.4.0",
            ],
            "BackportPointsForward",
        ),
    ] {
        let out = cli_in(dir.path(), &args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success());
        assert!(
            err.contains("InvalidReleaseCatalog") && err.contains(named),
            "{err}"
        );
    }
    // Refused changes wrote nothing.
    let list = output_text(&cli_in(
        dir.path(),
        &["release", "list", "--output", "json"],
    ));
    let catalog: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(catalog["releases"].as_array().unwrap().len(), 10);
    // An upgrade the catalog cannot plan is refused by name, and nothing moves.
    let before = status(dir.path(), QA);
    let out = cli_in(dir.path(), &["upgrade", QA, "--to", "1.3.1"]);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("NoUpgradePath"), "{text}");
    assert_untouched(dir.path(), &before).await;
}
