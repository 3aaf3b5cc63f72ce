//! The `switchyard` command as a user runs it: the README's first command on a fresh directory,
//! JSON output for scripts, status, fault injection, and named errors for bad arguments.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{cli_in, output_text};

use serde_json::Value;

fn switchyard(dir: &Path, args: &[&str]) -> Output {
    cli_in(dir, args)
}

fn stdout(output: &Output) -> String {
    output_text(output)
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

#[test]
fn a_deploy_shows_what_each_policy_said_under_its_step() {
    let dir = tempfile::tempdir().unwrap();
    let out = switchyard(
        dir.path(),
        &["deploy", "xy-0146-qa", "--from", "xy-0146-dev"],
    );
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    // The demo binds the bundled policies; each decision shows under the step that asked.
    let create = lines
        .iter()
        .position(|l| l.contains(" CreateDb "))
        .unwrap_or_else(|| panic!("{text}"));
    let decisions: Vec<&str> = lines[create + 1..]
        .iter()
        .take_while(|l| l.trim_start().starts_with("policy "))
        .map(|l| l.trim())
        .collect();
    for plugin in ["naming", "snapshot-freshness", "data-residency", "capacity"] {
        assert!(
            decisions.iter().any(
                |d| d.starts_with(&format!("policy {plugin} 0.1.0 [create-database]: allow ("))
            ),
            "{plugin} under CreateDb:\n{text}"
        );
    }
}

/// The states a deploy's progress shows, in order (each line's third column).
fn states_shown(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| line.starts_with("  +"))
        .filter_map(|line| line.split_whitespace().nth(2).map(str::to_owned))
        .collect()
}

fn db_instances(dir: &Path) -> Vec<String> {
    let world = switchyard_sim::World::load(&dir.join("world.json")).unwrap();
    let mut ids: Vec<String> = world.db_instances().into_iter().map(|(id, _)| id).collect();
    ids.sort();
    ids
}

#[test]
fn a_downgrade_is_denied_in_preflight_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    assert!(switchyard(dir.path(), &["init", "--demo"]).status.success());
    let before = qa_status(dir.path());
    let databases = db_instances(dir.path());
    // xy-0146-qa runs 1.3.2: 1.3.1 would take it back, which upgrade-path refuses.
    let out = switchyard(
        dir.path(),
        &[
            "deploy",
            "xy-0146-qa",
            "--from",
            "xy-0146-dev",
            "--image",
            "1.3.1",
        ],
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("policy upgrade-path 0.1.0 [deploy-service]: deny:")
            && text.contains("downgraded from 1.3.2 to 1.3.1"),
        "{text}"
    );
    assert!(text.contains("error          PolicyDenied"), "{text}");
    // The input alone answered: the machine never reached Snapshot or CreateDb.
    assert_eq!(
        states_shown(&text),
        ["AcquireLock", "Preflight", "ReleaseLockOnFailure"],
        "{text}"
    );
    assert_eq!(db_instances(dir.path()), databases);
    let after = qa_status(dir.path());
    assert_eq!(after["active_db"], before["active_db"], "{after}");
    assert_eq!(
        after["pointer_version"], before["pointer_version"],
        "{after}"
    );
    assert_eq!(after["service_revision"], 1, "{after}");
    assert!(after["locked_by"].is_null(), "{after}");
    for list in ["orphans", "candidates", "due_for_deletion", "drift"] {
        assert_eq!(after[list], serde_json::json!([]), "{list}: {after}");
    }
    // The failure is on record, with its name.
    assert_eq!(after["last_deploy"]["outcome"], "failed", "{after}");
    assert_eq!(after["last_deploy"]["error"], "PolicyDenied", "{after}");
    assert_eq!(after["last_deploy"]["app_version"], "1.3.1", "{after}");
    let shown = stdout(&switchyard(dir.path(), &["status"]));
    assert!(shown.contains("FAILED (PolicyDenied)"), "{shown}");
}

#[test]
fn a_tenant_moves_along_its_release_line_one_recorded_deploy_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    assert!(switchyard(dir.path(), &["init", "--demo"]).status.success());
    assert_eq!(qa_status(dir.path())["app_version"], "1.3.2");
    for version in ["1.3.3", "1.4.1", "2.0.1"] {
        let out = switchyard(
            dir.path(),
            &[
                "deploy",
                "xy-0146-qa",
                "--from",
                "xy-0146-dev",
                "--image",
                version,
            ],
        );
        let text = stdout(&out);
        assert!(out.status.success(), "{version}: {text}");
        let status = qa_status(dir.path());
        assert_eq!(status["app_version"], version, "{status}");
        assert_eq!(status["last_deploy"]["outcome"], "succeeded", "{status}");
        assert_eq!(status["last_deploy"]["app_version"], version, "{status}");
        let execution = status["last_execution"].as_str().unwrap();
        let name = execution.rsplit(':').next().unwrap();
        assert!(
            text.contains(&format!("SUCCEEDED {name}")),
            "{name}: {text}"
        );
        let shown = stdout(&switchyard(dir.path(), &["status"]));
        assert!(shown.contains(&format!("version {version}")), "{shown}");
    }
    // The database's password reaches the service by reference to its own secret, and no
    // password is kept anywhere in the world.
    let world = std::fs::read_to_string(dir.path().join("world.json")).unwrap();
    assert!(world.contains(":secret:rds!db-"), "no managed secret");
    assert!(world.contains(":password::"), "no DB_PASSWORD reference");
    for key in ["\"password\":", "\\\"password\\\":", "MasterUserPassword"] {
        assert!(!world.contains(key), "{key} in the world file");
    }
}

#[test]
fn a_dry_run_shows_the_plan_and_every_verdict_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    assert!(switchyard(dir.path(), &["init", "--demo"]).status.success());
    let world = std::fs::read(dir.path().join("world.json")).unwrap();
    let args = |image: &'static str| {
        [
            "deploy",
            "xy-0146-qa",
            "--from",
            "xy-0146-dev",
            "--image",
            image,
            "--dry-run",
        ]
    };
    let allowed = switchyard(dir.path(), &args("1.3.3"));
    let text = stdout(&allowed);
    assert_eq!(allowed.status.code(), Some(0), "{text}");
    assert!(text.contains("version 1.3.2 -> 1.3.3"), "{text}");
    assert!(text.contains("the deploy would start"), "{text}");
    let denied = switchyard(dir.path(), &args("1.3.1"));
    let text = stdout(&denied);
    assert_eq!(denied.status.code(), Some(1), "{text}");
    assert!(
        text.lines().any(|l| l.contains("deploy-service")
            && l.contains("upgrade-path")
            && l.contains("deny")),
        "{text}"
    );
    let json = switchyard(
        dir.path(),
        &[&args("1.3.1")[..], &["--output", "json"]].concat(),
    );
    let plan: Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(plan["target_version"], "1.3.1");
    assert!(
        plan["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["plugin"] == "upgrade-path" && v["answer"] == "deny"),
        "{plan}"
    );
    // Not a byte of the world changed: no lock, no snapshot, no clock moved.
    assert_eq!(std::fs::read(dir.path().join("world.json")).unwrap(), world);
}

fn qa_status(dir: &Path) -> Value {
    let status = switchyard(dir, &["status", "--output", "json"]);
    let statuses: Value = serde_json::from_str(&stdout(&status)).unwrap();
    statuses
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["namespace"] == "xy-0146-qa")
        .unwrap()
        .clone()
}

#[test]
fn a_policy_the_catalog_names_but_nobody_installed_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    assert!(switchyard(dir.path(), &["init", "--demo"]).status.success());
    let path = dir.path().join("world.json");
    let world = switchyard_sim::World::load(&path).unwrap();
    world
        .seed_policy_catalog(
            &switchyard_core::records::ParameterLayout::default(),
            &serde_json::from_value(
                serde_json::json!({"bindings": [{"plugin": "no-such-policy"}]}),
            )
            .unwrap(),
        )
        .unwrap();
    world.save(&path).unwrap();
    let out = switchyard(
        dir.path(),
        &["deploy", "xy-0146-qa", "--from", "xy-0146-dev"],
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let failed = lines
        .iter()
        .position(|l| l.contains("Preflight") && l.contains("PolicyFailed"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        lines[failed + 1]
            .trim()
            .starts_with("policy no-such-policy [snapshot]: failed: plugin no-such-policy is not installed: no plugin of that name in "),
        "{text}"
    );
    assert!(text.contains("error          PolicyFailed"), "{text}");
    assert_eq!(
        states_shown(&text),
        ["AcquireLock", "Preflight", "ReleaseLockOnFailure"],
        "{text}"
    );
}

#[test]
fn the_orphan_sweep_reports_and_needs_aws_to_run_remotely() {
    let dir = tempfile::tempdir().unwrap();
    // A deploy leaves nothing behind that the sweep could take for an orphan.
    let deploy = switchyard(
        dir.path(),
        &["deploy", "xy-0146-qa", "--from", "xy-0146-dev"],
    );
    assert!(deploy.status.success(), "{}", stdout(&deploy));
    let out = switchyard(dir.path(), &["sweep-orphans", "--min-age-hours", "0"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("sweep orphans, report only"), "{text}");
    assert!(text.contains("FindOrphans"), "{text}");
    assert!(
        text.contains("0 orphans among 5 databases and 1 snapshots"),
        "{text}"
    );
    assert!(text.contains("no orphans"), "{text}");
    assert!(!text.contains("DeleteOrphans"), "{text}");

    let remote = switchyard(dir.path(), &["sweep-orphans", "--remote"]);
    assert_eq!(remote.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&remote.stderr).contains("add --aws"),
        "{}",
        String::from_utf8_lossy(&remote.stderr)
    );
}

/// No credentials, or no region: a named configuration error that says what to set, at once
/// (not retried as if it might pass). The endpoint is a closed loopback port: nothing is sent.
#[test]
fn missing_credentials_or_region_say_what_to_set() {
    let home = tempfile::tempdir().unwrap();
    let run = |extra: &[(&str, &str)], args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", home.path())
            // No instance metadata: the credential chain must not look past this machine.
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .args(["--endpoint-url", "http://127.0.0.1:9"])
            .args(args);
        for (key, value) in extra {
            command.env(key, value);
        }
        command.output().unwrap()
    };
    let no_credentials = run(&[], &["--region", "us-east-1", "status"]);
    assert_eq!(no_credentials.status.code(), Some(2));
    let said = String::from_utf8_lossy(&no_credentials.stderr);
    assert!(
        said.contains("MissingCredentials") && said.contains("AWS_PROFILE"),
        "{said}"
    );
    assert!(!said.contains("transient"), "{said}");

    let no_region = run(
        &[
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ],
        &["status"],
    );
    assert_eq!(no_region.status.code(), Some(2));
    let said = String::from_utf8_lossy(&no_region.stderr);
    assert!(
        said.contains("MissingRegion") && said.contains("AWS_REGION"),
        "{said}"
    );
}

#[test]
fn a_settings_only_deploys_name_is_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    assert!(switchyard(dir.path(), &["init", "--demo"]).status.success());
    let args = ["deploy", "xy-0146-qa", "--settings-only", "--name", "n1"];
    let first = switchyard(dir.path(), &args);
    assert!(first.status.success(), "{}", stdout(&first));
    // It moved no pointer, but its record names it: a second run under that name is refused.
    let second = switchyard(dir.path(), &args);
    assert_eq!(second.status.code(), Some(2));
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(said.contains("the deploy record of xy-0146-qa"), "{said}");
}

#[test]
fn a_refresh_deploys_every_pair_and_fails_at_the_end_naming_the_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let before = qa_status(dir.path());
    let input = dir.path().join("refresh.json");
    // Two customers' pairs, one of them into a namespace that does not exist.
    std::fs::write(
        &input,
        r#"{"pairs": "ab-0201-nope<ab-0201-dev,xy-0146-qa<xy-0146-dev"}"#,
    )
    .unwrap();
    let out = switchyard(
        dir.path(),
        &[
            "run",
            "statemachines/refresh.asl.json",
            "--input",
            input.to_str().unwrap(),
            "--output",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["status"], "FAILED");
    assert_eq!(result["error"], "RefreshFailed");
    let cause = result["cause"].as_str().unwrap();
    assert!(
        cause.contains(r#"outcomes ["FAILED","SUCCEEDED"]"#),
        "{cause}"
    );
    // The pair after the failed one was still refreshed, from a fresh snapshot of dev.
    let after = qa_status(dir.path());
    assert_ne!(after["active_db"], before["active_db"]);
    assert!(
        after["snapshot_id"]
            .as_str()
            .unwrap()
            .starts_with("xy-0146-dev-"),
        "{after}"
    );
}
