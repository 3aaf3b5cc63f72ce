//! The orphan sweep end to end: `statemachines/sweep-orphans.asl.json` through the local runner
//! with the real step handlers, on an embedded world: report only by default, deletes with
//! `apply`, and never touches what a deploy made.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use switchyard::deploy;
use switchyard_core::ports::{Databases, RestoreDbRequest, Snapshots, Tags, tag};
use switchyard_sim::World;

fn sweep_machine() -> std::path::PathBuf {
    repo_root().join(deploy::SWEEP_MACHINE)
}

fn dead_tags(ns: &str) -> Tags {
    Tags::from([
        (tag::MANAGED_BY.to_owned(), tag::MANAGED_BY_VALUE.to_owned()),
        (tag::NAMESPACE.to_owned(), ns.to_owned()),
        (tag::EXECUTION.to_owned(), "arn:aws:states:dead".to_owned()),
    ])
}

/// What a deploy that died and was unlocked by hand leaves in QA: a snapshot and a database
/// nothing accounts for, both weeks old.
async fn leftovers(world: &World) {
    let aws = world.aws();
    let source = world.active_db(&ns("xy-0146-qa")).unwrap();
    aws.create_snapshot(
        &source,
        "xy-0146-qa-20260101-000000",
        &dead_tags("xy-0146-qa"),
    )
    .await
    .unwrap();
    world.advance(Duration::from_secs(3600));
    aws.restore_db_from_snapshot(&RestoreDbRequest {
        db_instance_id: "xy-0146-qa-20260101-000000".into(),
        snapshot_id: "xy-0146-qa-20260101-000000".into(),
        instance_class: "db.t4g.medium".into(),
        subnet_group: None,
        security_group_ids: vec![],
        tags: dead_tags("xy-0146-qa"),
        // Carried over from the database it was to replace: the sweep lifts it to delete.
        config: switchyard_core::ports::DbConfig {
            deletion_protection: Some(true),
            ..Default::default()
        },
    })
    .await
    .unwrap();
    world.advance(Duration::from_secs(30 * 24 * 3600));
}

fn orphans(output: &Value) -> Vec<String> {
    output["found"]["orphans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            format!(
                "{} {}",
                o["resource"].as_str().unwrap(),
                o["id"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn by_default_the_sweep_only_reports() {
    let world = demo();
    leftovers(&world).await;
    let before = world.snapshot_state();
    let execution = run(&world, &sweep_machine(), "sweep-report", json!({}), &[]).await;
    assert_succeeded(&execution);
    assert_eq!(tasks_run(&execution), vec!["FindOrphans"]);
    let output = execution.output.clone().unwrap();
    assert_eq!(
        orphans(&output),
        vec![
            "database xy-0146-qa-20260101-000000",
            "snapshot xy-0146-qa-20260101-000000"
        ]
    );
    assert_eq!(output["found"]["apply"], false);
    assert_eq!(world.snapshot_state(), before);
}

#[tokio::test]
async fn with_apply_the_sweep_deletes_what_it_reported() {
    let world = demo();
    leftovers(&world).await;
    let execution = run(
        &world,
        &sweep_machine(),
        "sweep-apply",
        json!({"apply": true}),
        &[],
    )
    .await;
    assert_succeeded(&execution);
    assert_eq!(tasks_run(&execution), vec!["FindOrphans", "DeleteOrphans"]);
    let output = execution.output.clone().unwrap();
    assert_eq!(
        output["deleted"]["deleted"],
        json!(["xy-0146-qa-20260101-000000", "xy-0146-qa-20260101-000000"])
    );
    let aws = world.aws();
    assert_eq!(
        aws.describe_db("xy-0146-qa-20260101-000000")
            .await
            .unwrap()
            .status,
        "deleting"
    );
    assert!(aws.list_snapshots().await.unwrap().is_empty());
    // The sweep took QA's lock under its own execution and gave it back.
    assert_eq!(status_of(&world, "xy-0146-qa").await.locked_by, None);
}

#[tokio::test]
async fn what_a_deploy_made_is_never_an_orphan() {
    let world = demo();
    assert_succeeded(&deploy_from(&world, "xy-0146-qa", "xy-0146-dev", &[]).await);
    // Long after, so that no age limit protects anything.
    world.advance(Duration::from_secs(60 * 24 * 3600));
    let before = dbs_of(&world, "xy-0146-qa");
    let execution = run(
        &world,
        &sweep_machine(),
        "sweep-after-deploy",
        json!({"apply": true, "min_age_hours": 1, "snapshot_retention_days": 1}),
        &[],
    )
    .await;
    assert_succeeded(&execution);
    let output = execution.output.clone().unwrap();
    assert!(orphans(&output).is_empty(), "{output}");
    assert_eq!(tasks_run(&execution), vec!["FindOrphans"]);
    assert_eq!(dbs_of(&world, "xy-0146-qa"), before);
}

#[tokio::test]
async fn a_bad_input_is_a_named_error() {
    let world = demo();
    let execution = run(
        &world,
        &sweep_machine(),
        "sweep-bad",
        json!({"apply": "yes"}),
        &[],
    )
    .await;
    assert_failed_with(&execution, "InvalidInput");
}

#[tokio::test]
async fn a_lost_reply_is_retried_and_finds_its_own_lock() {
    let world = demo();
    leftovers(&world).await;
    let execution = run(
        &world,
        &sweep_machine(),
        "sweep-lost-reply",
        json!({"apply": true}),
        &["sweep:lost-reply"],
    )
    .await;
    assert_succeeded(&execution);
    assert!(retries(&execution) >= 1);
    let output = execution.output.clone().unwrap();
    assert_eq!(
        output["deleted"]["deleted"].as_array().unwrap().len(),
        2,
        "{output}"
    );
    assert_eq!(status_of(&world, "xy-0146-qa").await.locked_by, None);
}

#[tokio::test]
async fn a_sweep_that_fails_releases_every_lock_and_deletes_nothing() {
    let world = demo();
    leftovers(&world).await;
    // As if an earlier attempt of this execution had taken QA's lock and died (a Lambda timeout):
    // every call of the sweep's deletes fails now, so only the Catch can give the lock back.
    let qa = ns("xy-0146-qa");
    let records = switchyard_core::records::Records {
        params: &world.aws(),
        layout: &switchyard_core::records::ParameterLayout::default(),
    };
    let sweep = switchyard_core::LockRecord {
        execution_id: "arn:aws:states:local:000000000000:execution:local:sweep-error".into(),
        acquired_at: world.now(),
        execution_started_at: None,
    };
    records.try_lock(&qa, &sweep).await.unwrap().unwrap();
    // Another namespace's lock, held by a deploy, is not the sweep's to release.
    let deploy = switchyard_core::LockRecord {
        execution_id: "arn:aws:states:local:000000000000:execution:local:deploy".into(),
        acquired_at: world.now(),
        execution_started_at: None,
    };
    records
        .try_lock(&ns("ab-0201-dev"), &deploy)
        .await
        .unwrap()
        .unwrap();
    let execution = run(
        &world,
        &sweep_machine(),
        "sweep-error",
        json!({"apply": true}),
        &["sweep:error"],
    )
    .await;
    assert_failed_with(&execution, "AwsRejected");
    // The Catch went through release-lock once for the namespace the sweep was in.
    assert_eq!(
        tasks_run(&execution),
        vec!["FindOrphans", "DeleteOrphans", "ReleaseLock"]
    );
    assert_eq!(status_of(&world, "xy-0146-qa").await.locked_by, None);
    assert_eq!(
        status_of(&world, "ab-0201-dev").await.locked_by,
        Some(deploy.execution_id)
    );
    let aws = world.aws();
    assert_eq!(
        aws.describe_db("xy-0146-qa-20260101-000000")
            .await
            .unwrap()
            .status,
        "available"
    );
    assert_eq!(aws.list_snapshots().await.unwrap().len(), 1);
}
