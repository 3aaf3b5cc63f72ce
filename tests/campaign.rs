//! The random fault campaign as CI runs it (README "Reliability"): 500 operations from a fixed
//! seed, every invariant checked after each, nothing orphaned at the end. The checker itself is
//! held to each rule by breaking a world on purpose, and `switchyard doctor` names what it finds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
mod common;

use common::*;
use switchyard::campaign::{self, Campaign};
use switchyard_core::invariants::{self, rule};
use switchyard_core::records::{LockRecord, ParameterLayout, Records};

/// The seed and size the README quotes.
const SEED: u64 = 20261130;
const OPERATIONS: usize = 500;

#[tokio::test]
async fn five_hundred_random_operations_with_faults_break_no_invariant() {
    let checkout = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let report = campaign::run(
        Campaign {
            seed: SEED,
            operations: OPERATIONS,
        },
        checkout,
        &mut |_| {},
    )
    .await
    .unwrap();
    let table = campaign::render(&report);
    println!("{table}");
    assert!(report.passed(), "{table}");
    assert_eq!(report.orphans, 0);
    // It was a campaign, not a stroll: faults, failures, incomplete rollbacks and refusals all
    // happened.
    let count = |needle: &str| -> usize {
        report
            .outcomes
            .iter()
            .filter(|(outcome, _)| outcome.contains(needle))
            .map(|(_, n)| n)
            .sum()
    };
    assert!(report.faults_injected >= OPERATIONS / 2, "{table}");
    for needle in [
        "SUCCEEDED",
        "RollbackIncomplete",
        "InvalidInput",
        "PolicyDenied",
        "odd-name refused",
        "reused-name",
        "sweep",
        "unlock",
    ] {
        assert!(count(needle) > 0, "no {needle}:\n{table}");
    }
}

#[tokio::test]
async fn the_same_seed_runs_the_same_campaign() {
    let checkout = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = || async {
        campaign::run(
            Campaign {
                seed: 7,
                operations: 60,
            },
            checkout,
            &mut |_| {},
        )
        .await
        .unwrap()
        .outcomes
    };
    assert_eq!(run().await, run().await);
}

#[tokio::test]
async fn the_checker_names_each_broken_rule() {
    let world = demo();
    let aws = world.aws();
    let layout = ParameterLayout::default();
    assert_eq!(
        invariants::check(&aws, &layout, None).await.unwrap(),
        vec![]
    );

    let records = Records {
        params: &aws,
        layout: &layout,
    };
    // The pointer lost: no pointer, and the database it named is accounted for by nothing.
    records.delete_pointer(&ns("xy-0146-qa")).await.unwrap();
    records
        .try_lock(
            &ns("xy-0146-dev"),
            &LockRecord {
                execution_id: "stuck".into(),
                acquired_at: world.now(),
                execution_started_at: None,
            },
        )
        .await
        .unwrap()
        .unwrap();
    let found = invariants::check(&aws, &layout, None).await.unwrap();
    let rules: Vec<(&str, &str)> = found
        .iter()
        .map(|v| (v.namespace.as_str(), v.rule))
        .collect();
    assert!(
        rules.contains(&("xy-0146-qa", rule::NO_POINTER)),
        "{found:?}"
    );
    assert!(rules.contains(&("xy-0146-qa", rule::ORPHAN)), "{found:?}");
    assert!(
        rules.contains(&("xy-0146-dev", rule::LOCK_HELD)),
        "{found:?}"
    );
    assert_eq!(found.len(), 3, "{found:?}");

    // Only the namespaces asked about.
    let one = invariants::check(&aws, &layout, Some(&[ns("xy-0146-dev")]))
        .await
        .unwrap();
    assert_eq!(one.len(), 1, "{one:?}");
}

#[test]
fn doctor_names_each_violation_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let world_file = dir.path().join("world.json");
    let switchyard = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .arg("--world")
            .arg(&world_file)
            .args(args)
            .env_remove("SWITCHYARD_ENDPOINT_URL")
            .output()
            .unwrap()
    };
    assert!(switchyard(&["init", "--demo"]).status.success());
    let healthy = switchyard(&["doctor"]);
    assert!(healthy.status.success());
    assert!(String::from_utf8_lossy(&healthy.stdout).contains("every invariant holds"));

    let world = switchyard_sim::World::load(&world_file).unwrap();
    let aws = world.aws();
    let layout = ParameterLayout::default();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(
        Records {
            params: &aws,
            layout: &layout,
        }
        .delete_pointer(&ns("xy-0146-qa")),
    )
    .unwrap();
    world.save(&world_file).unwrap();

    let sick = switchyard(&["doctor", "--output", "json"]);
    assert_eq!(sick.status.code(), Some(1));
    let found: serde_json::Value = serde_json::from_slice(&sick.stdout).unwrap();
    let rules: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["rule"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"no-pointer"), "{found}");
    assert!(rules.contains(&"orphan-database"), "{found}");
    // One namespace at a time, as an operator narrows it down.
    let other = switchyard(&["doctor", "xy-0146-dev"]);
    assert!(
        other.status.success(),
        "{}",
        String::from_utf8_lossy(&other.stdout)
    );
}
