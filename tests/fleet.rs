//! Fleet rollouts through the CLI on a 50-tenant embedded world: waves, a failure inside a
//! wave's tolerance (reported, the others move), a wave over its tolerance (the rollout stops
//! before the next one), a pinned tenant and one in a freeze skipped, and a second run that
//! moves only who is left.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
mod common;

use std::path::Path;

use common::*;
use serde_json::Value;
use switchyard_core::ParameterLayout;
use switchyard_sim::{DemoTenant, SIM_EXIT_CODE, World};

/// Always frozen, whatever day the test runs.
const FROZEN: &str = r#"policies.change-window={"environments": ["prod", "qa"], "freezes": [{"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z", "reason": "audit"}]}"#;

/// The demo's five tenants and 45 more (`fl-1001-qa` ... `fl-1045-qa`), each a stack made as
/// infrastructure code makes it and onboarded with `tenant import`'s library call, on 1.3.2.
async fn fleet_of_fifty(dir: &Path) {
    let world = World::demo(chrono::Utc::now());
    world
        .seed_demo_policies(&ParameterLayout::default())
        .unwrap();
    for i in 1..=45 {
        let namespace: &'static str = Box::leak(format!("fl-{}-qa", 1000 + i).into_boxed_str());
        let tenant = DemoTenant {
            namespace,
            app_version: "1.3.2",
            storage_gib: 20,
            data_age_days: 3,
        };
        world.onboard(&tenant).unwrap();
    }
    world.save(&dir.join("world.json")).unwrap();
}

fn set(dir: &Path, namespace: &str, assignment: &str) {
    let out = cli_in(dir, &["tenant", "set", namespace, assignment]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn version_of(dir: &Path, namespace: &str) -> String {
    let out = cli_in(dir, &["status", "--output", "json"]);
    let all: Value = serde_json::from_slice(&out.stdout).unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .find(|s| s["namespace"] == namespace)
        .unwrap()["app_version"]
        .as_str()
        .unwrap()
        .to_owned()
}

const WAVES: [&str; 8] = [
    "--wave",
    "canary:*-dev:2:0",
    "--wave",
    "early:fl-100*+fl-101*:5:10",
    "--wave",
    "late:fl-102*:5:0",
    "--wave",
    "rest:rest:10:10",
];

#[tokio::test]
async fn a_rollout_moves_the_fleet_in_waves_and_stops_at_a_wave_over_its_tolerance() {
    let dir = tempfile::tempdir().unwrap();
    fleet_of_fifty(dir.path()).await;
    // Pinned by its settings; in a freeze; production tenants in a freeze too (the demo's
    // weekend window would let them through on a Saturday).
    set(dir.path(), "fl-1003-qa", "pinned_version=1.3.2");
    for namespace in ["fl-1004-qa", "xy-0146-prod", "ab-0201-prod"] {
        set(dir.path(), namespace, FROZEN);
    }
    // Their migrations exit 3: one in "early" (17 tenants, 10% of which, one, may fail), one
    // in "late" where none may.
    let exits = format!("app_environment.{SIM_EXIT_CODE}=3");
    set(dir.path(), "fl-1012-qa", &exits);
    set(dir.path(), "fl-1025-qa", &exits);

    let out = cli_in(
        dir.path(),
        &[
            &["fleet", "plan", "--to", "2.0.1", "--output", "json"][..],
            &WAVES,
        ]
        .concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let waves: Vec<(&str, usize)> = plan["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["name"].as_str().unwrap(),
                w["tenants"].as_array().unwrap().len(),
            )
        })
        .collect();
    // canary: xy-0146-dev (ab-0201-dev is on 2.0.1 already); early: fl-1001..fl-1019 less the
    // pinned and the frozen; late: fl-1020..fl-1029; rest: fl-1030..fl-1045 and xy-0146-qa.
    assert_eq!(
        waves,
        [("canary", 1), ("early", 17), ("late", 10), ("rest", 17)],
        "{plan}"
    );
    let skipped: Vec<(&str, &str)> = plan["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["namespace"].as_str().unwrap(),
                s["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        skipped,
        [
            ("ab-0201-dev", "already-there"),
            ("ab-0201-prod", "outside-window"),
            ("fl-1003-qa", "pinned"),
            ("fl-1004-qa", "outside-window"),
            ("xy-0146-prod", "outside-window"),
        ]
    );
    let text = output_text(&cli_in(
        dir.path(),
        &[&["fleet", "plan", "--to", "2.0.1"][..], &WAVES].concat(),
    ));
    assert!(
        text.contains("1.3.2 → 1.3.3 → 1.4.0 → 2.0.0 → 2.0.1"),
        "{text}"
    );

    // Waves of more than 12 tenants ("early" and "rest") run in Distributed mode, one child
    // execution per chunk; "canary" and "late" inline.
    let first = [
        "fleet",
        "upgrade",
        "--to",
        "2.0.1",
        "--name",
        "rollout-1",
        "--distributed-above",
        "12",
    ];
    let out = cli_in(dir.path(), &[&first[..], &WAVES].concat());
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAILED fleet rollout rollout-1 to 2.0.1"),
        "{text}"
    );
    assert!(
        text.contains("wave early      distributed moved   16  failed   1"),
        "{text}"
    );
    assert!(
        text.contains("wave late       inline      moved    9  failed   1"),
        "{text}"
    );
    assert!(
        text.contains("stopped: wave late failed for 1 of 10 tenants"),
        "{text}"
    );
    // Every tenant's own progress, under its name.
    assert!(text.contains("    fl-1001-qa     |  +"), "{text}");
    let out = cli_in(dir.path(), &["status", "--output", "json"]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let on = |version: &str| -> Vec<String> {
        status
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["app_version"] == version)
            .map(|s| s["namespace"].as_str().unwrap().to_owned())
            .collect()
    };
    // canary 1 + early 16 + late 9 moved; the two failures and "rest" did not.
    let moved = on("2.0.1");
    assert_eq!(moved.len(), 1 + 16 + 9 + 1, "{moved:?}"); // + ab-0201-dev, there already
    for namespace in [
        "fl-1012-qa",
        "fl-1025-qa",
        "fl-1030-qa",
        "xy-0146-qa",
        "fl-1003-qa",
    ] {
        assert_eq!(version_of(dir.path(), namespace), "1.3.2", "{namespace}");
    }
    // The failed tenants are back on their old databases, nothing held.
    let doctor = cli_in(dir.path(), &["doctor"]);
    assert!(doctor.status.success(), "{}", output_text(&doctor));

    // The record tells the same, after the run: each wave, and who failed with what.
    let out = cli_in(
        dir.path(),
        &["fleet", "show", "rollout-1", "--output", "json"],
    );
    let record: Value = serde_json::from_slice(&out.stdout).unwrap();
    let waves: Vec<(&str, &str, &str, usize, usize)> = record["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["name"].as_str().unwrap(),
                w["mode"].as_str().unwrap(),
                w["status"].as_str().unwrap(),
                w["moved"].as_array().unwrap().len(),
                w["waiting"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(
        waves,
        [
            ("canary", "inline", "done", 1, 0),
            ("early", "distributed", "done", 16, 0),
            ("late", "inline", "over-tolerance", 9, 0),
            ("rest", "distributed", "not-judged", 0, 17),
        ],
        "{record}"
    );
    let failed = &record["waves"][1]["failed"][0];
    assert_eq!(failed["namespace"], "fl-1012-qa");
    assert_eq!(failed["error"], "States.TaskFailed", "{failed}");
    assert_eq!(record["skipped"].as_array().unwrap().len(), 5);
    // A rollout's name is its own: reusing it is refused while its record is kept.
    let again = cli_in(dir.path(), &[&first[..], &WAVES].concat());
    let said = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(2), "{said}");
    assert!(
        said.contains("a rollout named \"rollout-1\" is recorded already"),
        "{said}"
    );
    let forget = cli_in(dir.path(), &["fleet", "forget", "rollout-1"]);
    assert!(forget.status.success(), "{}", output_text(&forget));
    let gone = cli_in(dir.path(), &["fleet", "show", "rollout-1"]);
    let said = String::from_utf8_lossy(&gone.stderr);
    assert_eq!(gone.status.code(), Some(2), "{said}");
    assert!(
        said.contains("InvalidInput: no rollout named \"rollout-1\""),
        "{said}"
    );

    // The causes fixed, the same rollout again: only who is left moves.
    set(
        dir.path(),
        "fl-1012-qa",
        &format!("app_environment.{SIM_EXIT_CODE}="),
    );
    set(
        dir.path(),
        "fl-1025-qa",
        &format!("app_environment.{SIM_EXIT_CODE}="),
    );
    let out = cli_in(
        dir.path(),
        &[
            &[
                "fleet",
                "upgrade",
                "--to",
                "2.0.1",
                "--output",
                "json",
                "--distributed-above",
                "5",
            ][..],
            &WAVES,
        ]
        .concat(),
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(out.status.success(), "{summary}");
    let moved: Vec<&str> = summary["moved"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(moved.len(), 2 + 17, "{summary}");
    assert!(moved.contains(&"fl-1012-qa") && moved.contains(&"fl-1025-qa"));
    assert!(!moved.contains(&"fl-1001-qa"), "moved twice: {summary}");
    let skipped = summary["skipped"].as_array().unwrap();
    assert_eq!(
        skipped
            .iter()
            .filter(|s| s[1].as_str().unwrap().starts_with("already-there"))
            .count(),
        1 + 1 + 16 + 9,
        "{summary}"
    );
}

/// Planning judges many tenants at once and still lists them in the namespaces' order; one
/// tenant whose settings do not parse is skipped as `cannot-plan`, the rest plan; AWS throttling,
/// whichever tenant it hits, fails the whole plan as transient (Step Functions' Retry runs it
/// again) rather than skipping that tenant.
#[tokio::test]
async fn the_plan_judges_tenants_together_in_order_and_aws_failing_fails_it() {
    use switchyard_core::error::StepError;
    use switchyard_core::fleet::{WaveSpec, plan_fleet};
    use switchyard_core::policy::NoPlugins;
    use switchyard_core::ports::Parameters;
    use switchyard_sim::{Fault, demo_release_catalog};

    let layout = ParameterLayout::default();
    let world = World::new(chrono::Utc::now());
    world
        .seed_release_catalog(&layout, &demo_release_catalog().unwrap())
        .unwrap();
    let mut namespaces = Vec::new();
    for i in 1..=40 {
        let namespace: &'static str = Box::leak(format!("fl-{}-qa", 1000 + i).into_boxed_str());
        world
            .onboard(&DemoTenant {
                namespace,
                app_version: "1.3.2",
                storage_gib: 20,
                data_age_days: 3,
            })
            .unwrap();
        namespaces.push(namespace.to_owned());
    }
    let broken = "fl-1020-qa";
    world
        .aws()
        .put_parameter(
            &layout.settings(&broken.parse().unwrap()),
            "{not json",
            true,
        )
        .await
        .unwrap();

    let plan = plan_fleet(
        &world.aws(),
        &layout,
        &NoPlugins,
        "2.0.1",
        &WaveSpec::defaults(),
    )
    .await
    .unwrap();
    let moving: Vec<&str> = plan
        .waves
        .iter()
        .flat_map(|wave| wave.tenants.iter().map(|t| t.namespace.as_str()))
        .collect();
    let expected: Vec<&str> = namespaces
        .iter()
        .map(String::as_str)
        .filter(|ns| *ns != broken)
        .collect();
    assert_eq!(moving, expected, "{plan:#?}");
    assert_eq!(plan.skipped.len(), 1, "{:#?}", plan.skipped);
    assert_eq!(plan.skipped[0].namespace, broken);
    assert_eq!(plan.skipped[0].reason, "cannot-plan");
    assert!(
        plan.skipped[0].detail.contains("is not a valid record"),
        "{}",
        plan.skipped[0].detail
    );

    world.inject("preflight:throttle".parse::<Fault>().unwrap());
    let throttled = plan_fleet(
        &world.aws_for(Some(switchyard_core::dispatch::Stage::Preflight)),
        &layout,
        &NoPlugins,
        "2.0.1",
        &WaveSpec::defaults(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(throttled, StepError::Transient(_)),
        "{throttled:?}"
    );
}
