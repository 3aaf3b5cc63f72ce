//! The proof on a real PostgreSQL (the server `tests/run` starts with `tests/postgres`): the
//! example application's migrations (`examples/tenant-app`), every path the planner gives applied
//! with each hop twice, reach the main line's schema; a migration that is not idempotent is
//! caught. Run through the CLI, as a user runs `switchyard release verify`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Output;

use serde_json::Value;

const RUNNER: &str = "examples/tenant-app/migrate {version} {database_url}";

fn database_url() -> String {
    std::env::var("SWITCHYARD_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "SWITCHYARD_TEST_DATABASE_URL is not set: this test needs the PostgreSQL server that \
             tests/run starts (tests/postgres start DIR PORT); run it through tests/run"
        )
    })
}

fn verify(catalog: &Path, run: &str, json: bool) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["release", "verify", "--catalog"])
        .arg(catalog)
        .args(["--database-url", &database_url(), "--run", run]);
    if json {
        command.args(["--output", "json"]);
    }
    command.output().unwrap()
}

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn every_planned_path_of_the_example_applies_twice_and_reaches_the_main_lines_schema() {
    let out = verify(&repo("examples/tenant-app/releases.json"), RUNNER, true);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let paths = report["paths"].as_array().unwrap();
    // Nine releases: every earlier release to every later one.
    assert_eq!(paths.len(), 36, "{report}");
    for path in paths {
        assert_eq!(path["applied_twice"], true, "{path}");
        assert_eq!(path["schema_equal"], true, "{path}");
    }
    let seed = paths
        .iter()
        .find(|p| p["from"] == "1.3.2" && p["to"] == "2.0.1")
        .unwrap();
    assert_eq!(seed["path"], "1.3.2 → 1.3.3 → 1.4.0 → 2.0.0 → 2.0.1");
    // The table a person reads.
    let out = verify(&repo("examples/tenant-app/releases.json"), RUNNER, false);
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    // tests/run prints it; the README shows it.
    std::fs::write(repo("target/release-verify.txt"), &table).unwrap();
    assert!(
        table.contains("every path applies twice and reaches the main line's schema"),
        "{table}"
    );
}

/// The example application with one migration replaced by `sql`.
fn broken_copy(version: &str, sql: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path();
    for dir in ["migrations", "changes"] {
        std::fs::create_dir(app.join(dir)).unwrap();
        for entry in std::fs::read_dir(repo(&format!("examples/tenant-app/{dir}"))).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), app.join(dir).join(entry.file_name())).unwrap();
        }
    }
    std::fs::copy(repo("examples/tenant-app/migrate"), app.join("migrate")).unwrap();
    std::fs::copy(
        repo("examples/tenant-app/releases.json"),
        app.join("releases.json"),
    )
    .unwrap();
    std::fs::write(app.join("migrations").join(format!("{version}.sql")), sql).unwrap();
    dir
}

#[test]
fn a_migration_that_is_not_idempotent_is_caught() {
    // 1.4.2 adds its column without asking whether it is there: the second run fails.
    let app = broken_copy("1.4.2", "ALTER TABLE invoices ADD COLUMN due_date date;\n");
    let run = format!(
        "{}/migrate {{version}} {{database_url}}",
        app.path().display()
    );
    let out = verify(&app.path().join("releases.json"), &run, true);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed: Vec<&Value> = report["paths"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["applied_twice"] == false)
        .collect();
    assert!(!failed.is_empty(), "{report}");
    for path in &failed {
        let error = path["error"].as_str().unwrap();
        assert!(error.starts_with("1.4.2 (second run)"), "{error}");
        assert!(error.contains("already exists"), "{error}");
    }
    // A migration that changes the schema differently each time it runs (an index without a
    // name) passes its runs but not the comparison.
    let app = broken_copy(
        "1.4.2",
        "ALTER TABLE invoices ADD COLUMN IF NOT EXISTS due_date date;\nCREATE INDEX ON invoices (due_date);\n",
    );
    let run = format!(
        "{}/migrate {{version}} {{database_url}}",
        app.path().display()
    );
    let out = verify(&app.path().join("releases.json"), &run, true);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["paths"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["applied_twice"] == true && p["schema_equal"] == false),
        "{report}"
    );
}
