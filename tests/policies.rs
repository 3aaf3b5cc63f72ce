//! Policy plugins as their authors and operators use them: the bundled policies' fixture
//! tables, a new policy from the template through test, build and eval, and a policy written
//! in Python.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

fn switchyard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        // A new project builds in the plugins workspace's target directory, so the kit and
        // its dependencies, already built there, are not built again.
        .env(
            "CARGO_TARGET_DIR",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/target"),
        )
        .args(args)
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn every_bundled_policy_passes_its_fixture_table() {
    let out = switchyard(&["policy", "test"]);
    let text = text(&out);
    assert!(out.status.success(), "{text}");
    for policy in [
        "naming",
        "snapshot-freshness",
        "data-residency",
        "change-window",
        "capacity",
        "protect-active",
        "upgrade-path",
    ] {
        assert!(
            text.contains(&format!("\n{policy} 0.1.0\n"))
                || text.starts_with(&format!("{policy} 0.1.0\n")),
            "{policy}:\n{text}"
        );
    }
    let summary = text
        .lines()
        .find(|l| l.starts_with("fixtures: "))
        .unwrap_or_else(|| panic!("{text}"));
    let passed: usize = summary
        .trim_start_matches("fixtures: ")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(passed >= 7 * 6, "{summary}");
    assert!(summary.ends_with(" 0 failed"), "{summary}");
}

#[test]
fn a_fixture_that_expects_the_wrong_verdict_fails_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = dir.path().join("fixtures.json");
    std::fs::write(
        &fixtures,
        r#"{"plugin": "naming", "cases": [
            {"name": "a bad namespace said to be fine", "expect": "allow",
             "context": {"step": "create-database", "namespace": "Not_A_Namespace"}}]}"#,
    )
    .unwrap();
    let build = switchyard(&["policy", "build", "plugins/policies/naming"]);
    assert!(build.status.success(), "{}", text(&build));
    let out = switchyard(&[
        "policy",
        "test",
        "plugins/dist/naming.cwasm",
        "--fixtures",
        fixtures.to_str().unwrap(),
    ]);
    let text = text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAIL  a bad namespace said to be fine"),
        "{text}"
    );
    assert!(text.contains("expected Allow, got Deny"), "{text}");
}

#[test]
fn a_new_policy_goes_from_template_to_a_precompiled_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let out = switchyard(&[
        "policy",
        "new",
        "max-storage",
        "--dir",
        root.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let project = root.join("max-storage");
    assert!(project.join("src/lib.rs").is_file());

    let out = switchyard(&["policy", "test", project.to_str().unwrap()]);
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    assert!(report.contains("fixtures: 4 passed, 0 failed"), "{report}");

    let dist = root.join("dist");
    let out = switchyard(&[
        "policy",
        "build",
        project.to_str().unwrap(),
        "--out",
        dist.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let cwasm = dist.join("max-storage.cwasm");
    assert!(dist.join("max-storage.wasm").is_file() && cwasm.is_file());

    let context = root.join("context.json");
    std::fs::write(
        &context,
        r#"{"step": "create-database", "namespace": "xy-0146-prod", "environment": "prod",
            "target_db": {"id": "xy-0146-prod-20261126-010000", "allocated_storage_gib": 4000}}"#,
    )
    .unwrap();
    let out = switchyard(&[
        "policy",
        "eval",
        cwasm.to_str().unwrap(),
        "--context",
        context.to_str().unwrap(),
    ]);
    // A deny exits 1 and prints the evaluation.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let evaluation: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(evaluation["plugin"], "max-storage");
    assert_eq!(evaluation["decision"]["verdict"], "deny");
    let reason = evaluation["decision"]["reasons"][0].as_str().unwrap();
    assert!(reason.contains("4000 GiB"), "{reason}");
}

/// `tests/run` builds `plugins/examples/python-naming` with componentize-py and names the
/// component here. Run alone, without it, the test fails and says so, as the moto tests do.
#[test]
fn a_policy_written_in_python_passes_its_fixture_table() {
    let component = std::env::var("SWITCHYARD_TEST_PYTHON_PLUGIN").expect(
        "SWITCHYARD_TEST_PYTHON_PLUGIN names the Python example's component: \
         run plugins/examples/python-naming/build.sh, or tests/run",
    );
    assert!(Path::new(&component).is_file(), "{component}");
    let out = switchyard(&[
        "policy",
        "test",
        &component,
        "--fixtures",
        "plugins/examples/python-naming/fixtures.json",
    ]);
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    assert!(report.starts_with("py-naming "), "{report}");
    assert!(report.contains(" 0 failed"), "{report}");
}
