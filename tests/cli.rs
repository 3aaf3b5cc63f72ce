//! The `switchyard` command as a user runs it: the README's first command on a fresh directory,
//! JSON output for scripts, status, fault injection, and named errors for bad arguments.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn switchyard(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("--world")
        .arg(dir.join("world.json"))
        .args(args)
        .env_remove("SWITCHYARD_ENDPOINT_URL")
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_first_deploy_creates_the_demo_world_and_shows_progress() {
    let dir = tempfile::tempdir().unwrap();
    let out = switchyard(
        dir.path(),
        &["deploy", "xy-0146-qa", "--from", "xy-0146-dev"],
    );
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("created the demo world"), "{text}");
    for state in [
        "AcquireLock",
        "Snapshot",
        "CheckDb",
        "SwapPointer",
        "CheckService",
        "Cleanup",
    ] {
        assert!(text.contains(state), "progress lacks {state}:\n{text}");
    }
    assert!(text.contains("SUCCEEDED"), "{text}");
    assert!(text.contains("revision 1 -> 2"), "{text}");
    assert!(dir.path().join("world.json").exists());
}

#[test]
fn json_output_and_status_for_scripts() {
    let dir = tempfile::tempdir().unwrap();
    assert!(switchyard(dir.path(), &["init", "--demo"]).status.success());
    let out = switchyard(
        dir.path(),
        &[
            "deploy",
            "xy-0146-qa",
            "--from",
            "xy-0146-dev",
            "--output",
            "json",
        ],
    );
    assert!(out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["status"], "SUCCEEDED");
    let new_db = report["new_db"].as_str().unwrap().to_owned();
    assert_eq!(report["deleted"][0], report["old_db"]);

    let out = switchyard(dir.path(), &["status", "--output", "json"]);
    assert!(out.status.success());
    let statuses: Value = serde_json::from_slice(&out.stdout).unwrap();
    let qa = statuses
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["namespace"] == "xy-0146-qa")
        .unwrap();
    assert_eq!(qa["active_db"], new_db.as_str());
    assert_eq!(qa["service_revision"], 2);
    assert_eq!(qa["orphans"], serde_json::json!([]));
    assert_eq!(statuses.as_array().unwrap().len(), 5);
}

#[test]
fn a_failed_deploy_exits_1_with_the_error_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = switchyard(
        dir.path(),
        &[
            "deploy",
            "xy-0146-qa",
            "--from",
            "xy-0146-dev",
            "--output",
            "json",
            "--inject-fault",
            "wait-stable:rollout-failed",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["status"], "FAILED");
    assert_eq!(report["error"], "RolloutFailed");
    assert_eq!(report["rollback"]["pointer_restored"], true);
}

#[test]
fn bad_arguments_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let fault = switchyard(
        dir.path(),
        &[
            "deploy",
            "xy-0146-qa",
            "--from",
            "xy-0146-dev",
            "--inject-fault",
            "melt:down",
        ],
    );
    assert_eq!(fault.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&fault.stderr).contains("\"melt\""));
    let neither = switchyard(dir.path(), &["deploy", "xy-0146-qa"]);
    assert_eq!(neither.status.code(), Some(2));
    let namespace = switchyard(dir.path(), &["unlock", "Nope", "--execution", "x"]);
    assert_eq!(namespace.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&namespace.stderr).contains("invalid namespace \"Nope\""));
}

#[test]
fn run_executes_any_machine_file() {
    let dir = tempfile::tempdir().unwrap();
    let machine = dir.path().join("hello.asl.json");
    std::fs::write(
        &machine,
        r#"{"StartAt":"Hello","States":{"Hello":{"Type":"Pass","Parameters":{"greeting.$":"States.Format('hello {}', $.who)"},"End":true}}}"#,
    )
    .unwrap();
    let input = dir.path().join("input.json");
    std::fs::write(&input, r#"{"who":"switchyard"}"#).unwrap();
    let out = switchyard(
        dir.path(),
        &[
            "run",
            machine.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--output",
            "json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["status"], "SUCCEEDED");
    assert_eq!(result["output"]["greeting"], "hello switchyard");
}
