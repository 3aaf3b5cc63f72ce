//! Readable progress: one line per state as it finishes (name, kind, duration, outcome), and the
//! deploy's summary at the end.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::Value;
use switchyard_asl::{Execution, HistoryEvent, HistoryEventKind, Observer};

use crate::decisions::PolicyNotes;
use crate::deploy::DeployReport;

/// Policy lines sit under the state's name in the line above them.
const NOTE_INDENT: usize = 17;

/// `95s` -> `1m 35s`.
pub fn human_duration(seconds: i64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m {:02}s", s / 60, s % 60),
        s => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[derive(Default)]
struct Open {
    started: Option<DateTime<Utc>>,
    entered: HashMap<String, String>,
}

/// Prints each state's outcome as the execution goes. Waits are folded into the poll that
/// follows them; Choice, Pass and Succeed states are plumbing and not shown. The policy
/// decisions a Task asked for are printed under its line.
pub struct Progress {
    open: Mutex<Open>,
    out: Mutex<Box<dyn std::io::Write + Send>>,
    notes: Option<Arc<PolicyNotes>>,
    /// Before every line: a nested execution's (a fleet's tenant) name.
    prefix: String,
}

impl Progress {
    pub fn stdout() -> Self {
        Self::to_writer(Box::new(std::io::stdout()))
    }

    pub fn to_writer(out: Box<dyn std::io::Write + Send>) -> Self {
        Progress {
            open: Mutex::new(Open::default()),
            out: Mutex::new(out),
            notes: None,
            prefix: String::new(),
        }
    }

    /// Shows the decisions an [`ObservedEngine`](crate::decisions::ObservedEngine) keeps in `notes`.
    pub fn with_policy_notes(mut self, notes: Arc<PolicyNotes>) -> Self {
        self.notes = Some(notes);
        self
    }

    /// Every line of a nested execution starts with `prefix` (e.g. `    xy-0146-qa |`).
    pub fn with_prefix(mut self, prefix: String) -> Self {
        self.prefix = prefix;
        self
    }

    fn line(&self, text: &str) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(out, "{}{text}", self.prefix);
        let _ = out.flush();
    }

    /// Prints the policy decisions not shown yet (those of a Task that ended the execution).
    pub fn flush_notes(&self) {
        for note in self.notes.iter().flat_map(|notes| notes.take()) {
            self.line(&format!("{:NOTE_INDENT$}{note}", ""));
        }
    }
}

impl Observer for Progress {
    fn on_event(&self, event: &HistoryEvent) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let started = *open.started.get_or_insert(event.timestamp);
        let at = format!(
            "+{}",
            human_duration((event.timestamp - started).num_seconds())
        );
        let line = match &event.kind {
            HistoryEventKind::StateEntered {
                state_type, name, ..
            } => {
                open.entered.insert(name.clone(), state_type.clone());
                None
            }
            HistoryEventKind::StateExited { name, output } => {
                let state_type = open.entered.remove(name).unwrap_or_default();
                if state_type != "Task" {
                    None
                } else {
                    let (mark, detail) = detail(name, output);
                    Some(format!("  {at:<9} {mark:<4} {name:<22} {detail}"))
                }
            }
            HistoryEventKind::RetryScheduled {
                state,
                error,
                attempt,
                delay_seconds,
            } => Some(format!(
                "  {at:<9} {:<4} {state:<22} {error}, retry {attempt} in {}",
                "..",
                human_duration(delay_seconds.round() as i64)
            )),
            HistoryEventKind::CatchMatched { state, error, next } => {
                open.entered.remove(state);
                Some(format!(
                    "  {at:<9} {:<4} {state:<22} {error} -> {next}",
                    "FAIL"
                ))
            }
            _ => None,
        };
        drop(open);
        if let Some(line) = line {
            self.line(&line);
            // A Task's end (done, retried or caught): what the policies told it goes under it.
            self.flush_notes();
        }
    }
}

fn text(value: &Value, path: &[&str]) -> String {
    let mut v = value;
    for key in path {
        v = match (v, key.parse::<usize>()) {
            (Value::Array(items), Ok(index)) => items.get(index).unwrap_or(&Value::Null),
            _ => &v[*key],
        };
    }
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

/// `..` while a poll loop goes on, `ok` once its resource is ready.
fn mark(value: &Value) -> &'static str {
    if value["ready"] == Value::Bool(false) && value["polls"].as_u64().unwrap_or(0) > 0 {
        ".."
    } else {
        "ok"
    }
}

/// The execution's name, from its ARN.
fn short(execution_arn: &str) -> &str {
    execution_arn.rsplit(':').next().unwrap_or(execution_arn)
}

/// A mark and a few words on what a deploy state did, from the document it produced.
pub fn detail(state: &str, output: &Value) -> (&'static str, String) {
    match state {
        "AcquireLock" => (
            "ok",
            format!(
                "lock held by {}",
                short(&text(output, &["lock", "execution_id"]))
            ),
        ),
        "Preflight" => {
            let p = &output["preflight"];
            let warnings = p["warnings"].as_array().map_or(0, Vec::len);
            let mut said = format!(
                "{} policy answers, no denial; will create {}",
                text(p, &["checked"]),
                text(p, &["new_db_instance_id"])
            );
            if warnings > 0 {
                said.push_str(&format!(" ({warnings} warnings)"));
            }
            if p["migrate"] == Value::Bool(true) {
                said.push_str(&format!("; migrates {}", text(p, &["schema", "path"])));
            }
            if let Some(minutes) = p["schema"]["expected_downtime_minutes"].as_u64() {
                said.push_str(&format!("; expected downtime {minutes} min"));
            }
            ("ok", said)
        }
        "FreezeService" => {
            let f = &output["freeze"];
            (
                mark(f),
                format!(
                    "{} scaled to 0 (was {}), {} tasks running",
                    text(f, &["service"]),
                    text(f, &["desired_count_before"]),
                    text(f, &["running_count"])
                ),
            )
        }
        "PrepareMigrations" => {
            let m = &output["migrations"];
            let versions: Vec<String> = m["hops"]
                .as_array()
                .map(|hops| hops.iter().map(|h| text(h, &["version"])).collect())
                .unwrap_or_default();
            (
                "ok",
                format!(
                    "{} migrations for {}: {}",
                    versions.len(),
                    text(m, &["db_instance_id"]),
                    versions.join(", ")
                ),
            )
        }
        "RunMigration" => {
            let definition = text(output, &["TaskDefinitionArn"]);
            let definition = definition.rsplit('/').next().unwrap_or(&definition);
            (
                "ok",
                format!(
                    "task {definition} {}, exit {}",
                    text(output, &["LastStatus"]),
                    text(output, &["Containers", "0", "ExitCode"])
                ),
            )
        }
        "Snapshot" | "CheckSnapshot" => {
            let s = &output["snapshot"];
            (
                mark(s),
                format!(
                    "snapshot {} {}",
                    text(s, &["snapshot_id"]),
                    text(s, &["status"])
                ),
            )
        }
        "ReadPointer" => {
            let p = &output["previous"];
            (
                "ok",
                format!(
                    "active {} (pointer v{})",
                    text(p, &["active", "db_instance_id"]),
                    text(p, &["version"])
                ),
            )
        }
        "CreateDb" | "CheckDb" => {
            let d = &output["db"];
            (
                mark(d),
                format!(
                    "db {} {}",
                    text(d, &["db_instance_id"]),
                    text(d, &["status"])
                ),
            )
        }
        "SetCredentials" => {
            let c = &output["credentials"];
            let said = match c["master_user_secret_arn"].as_str() {
                Some(arn) => {
                    // The secret's name, never a value: there is none here.
                    let name = arn.rsplit(':').next().unwrap_or(arn);
                    format!(
                        "db {} {}: its own master password in secret {name}",
                        text(c, &["db_instance_id"]),
                        text(c, &["status"])
                    )
                }
                None if c["status"] == "kept" => {
                    "the snapshot's master password kept (the tenant's settings say so)".to_owned()
                }
                None => format!(
                    "db {} {}: handing its master password to Secrets Manager",
                    text(c, &["db_instance_id"]),
                    text(c, &["status"])
                ),
            };
            (mark(c), said)
        }
        "SwapPointer" => {
            let s = &output["swap"];
            (
                "ok",
                format!(
                    "pointer v{} -> {}",
                    text(s, &["version"]),
                    text(s, &["pointer", "db_instance_id"])
                ),
            )
        }
        "DeployService" | "CheckService" => {
            let s = &output["service"];
            (
                mark(s),
                format!(
                    "{} revision {} {} {}/{} running",
                    text(s, &["service"]),
                    text(s, &["revision"]),
                    text(s, &["rollout_state"]),
                    text(s, &["running_count"]),
                    text(s, &["desired_count"]),
                ),
            )
        }
        "Cleanup" => (mark(&output["cleanup"]), sweep_note(&output["cleanup"])),
        "Rollback" => {
            let r = &output["rollback"];
            (
                mark(r),
                format!(
                    "pointer restored: {}, service restored: {}{}; {}",
                    text(r, &["pointer_restored"]),
                    text(r, &["service_restored"]),
                    if r["service_thawed"] == Value::Bool(true) {
                        ", service thawed"
                    } else {
                        ""
                    },
                    sweep_note(r)
                ),
            )
        }
        "ReleaseLock" | "ReleaseLockOnFailure" => {
            if output["release"]["released"] == Value::Bool(true) {
                ("ok", "lock released".to_owned())
            } else {
                ("ok", "lock not held".to_owned())
            }
        }
        "NextWave" => {
            let wave = &output["current"];
            let said = match (wave, &output["stopped"]) {
                (Value::Object(_), _) => {
                    let outline = &output["waves"][wave["index"].as_u64().unwrap_or(0) as usize];
                    format!(
                        "wave {}: {} tenants, {} at a time, {}",
                        text(wave, &["name"]),
                        text(outline, &["tenants"]),
                        text(wave, &["max_concurrency"]),
                        match text(wave, &["mode"]).as_str() {
                            "distributed" => format!(
                                "Distributed: {} child executions",
                                wave["chunks"].as_array().map_or(0, Vec::len)
                            ),
                            _ => "inline".to_owned(),
                        }
                    )
                }
                (_, Value::String(stopped)) => format!("stopped: {stopped}"),
                _ => "every wave through".to_owned(),
            };
            ("ok", said)
        }
        "UpgradeTenant" | "UpgradeChunkTenant" => {
            ("ok", format!("{} upgraded", text(output, &["namespace"])))
        }
        "RecordFailure" | "RecordChunkFailure" => (
            "!!",
            format!(
                "{} failed: {}",
                text(output, &["namespace"]),
                text(output, &["error"])
            ),
        ),
        "LoadChunk" => (
            "ok",
            format!(
                "{} tenants, one after another",
                output["loaded"]["tenants"].as_array().map_or(0, Vec::len)
            ),
        ),
        "FindOrphans" => {
            let found = &output["found"];
            let count = |key: &str| found[key].as_array().map_or(0, Vec::len);
            (
                "ok",
                format!(
                    "{} orphans among {} databases and {} snapshots; {} kept",
                    count("orphans"),
                    text(found, &["databases_seen"]),
                    text(found, &["snapshots_seen"]),
                    count("kept")
                ),
            )
        }
        "DeleteOrphans" => {
            let deleted = &output["deleted"];
            let count = |key: &str| deleted[key].as_array().map_or(0, Vec::len);
            (
                "ok",
                format!("deleted {}, kept {}", count("deleted"), count("kept")),
            )
        }
        _ => ("ok", String::new()),
    }
}

/// The orphan sweep's summary: each orphan, what became of it, and what was kept and why.
pub fn render_sweep(execution: &Execution) -> String {
    use switchyard_core::steps::orphans::OrphanSweep;
    let document = crate::deploy::final_document(execution);
    let sweep: OrphanSweep = serde_json::from_value(document).unwrap_or_default();
    let found = sweep.found.unwrap_or_default();
    let deleted = sweep.deleted.unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{} {} in {}",
        execution.status.as_str(),
        execution.name,
        human_duration((execution.stop_date - execution.start_date).num_seconds())
    );
    if let Some(error) = &execution.error {
        let _ = writeln!(
            out,
            "  error  {error}: {}",
            execution.cause.as_deref().unwrap_or("")
        );
    }
    let _ = writeln!(
        out,
        "  seen   {} databases, {} snapshots",
        found.databases_seen, found.snapshots_seen
    );
    if found.orphans.is_empty() {
        let _ = writeln!(out, "  no orphans");
    }
    for orphan in &found.orphans {
        let fate = if deleted.deleted.contains(&orphan.id) {
            "deleted"
        } else if let Some(kept) = deleted.kept.iter().find(|k| k.id == orphan.id) {
            kept.reason.as_str()
        } else if sweep.apply {
            "not deleted"
        } else {
            "reported (run with --apply to delete)"
        };
        let _ = writeln!(
            out,
            "  orphan {:<8} {:<34} {:<14} {fate}",
            resource_name(orphan.resource),
            orphan.id,
            orphan.namespace
        );
    }
    for kept in &found.kept {
        let _ = writeln!(
            out,
            "  kept   {:<8} {:<34} {}",
            resource_name(kept.resource),
            kept.id,
            kept.reason
        );
    }
    for snapshot in &deleted.final_snapshots {
        let _ = writeln!(out, "  final snapshot {snapshot}");
    }
    out
}

fn resource_name(resource: switchyard_core::steps::orphans::ResourceType) -> &'static str {
    match resource {
        switchyard_core::steps::orphans::ResourceType::Database => "db",
        switchyard_core::steps::orphans::ResourceType::Snapshot => "snapshot",
    }
}

fn sweep_note(sweep: &Value) -> String {
    let names = |key: &str| {
        sweep[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let mut parts = Vec::new();
    if !names("deleting").is_empty() {
        parts.push(format!("deleting {}", names("deleting")));
    }
    if !names("deleted").is_empty() {
        parts.push(format!("deleted {}", names("deleted")));
    }
    // Kept entries read `<db>: <why>`; the why (a policy's, say) is in the lines below and the
    // summary.
    let kept: Vec<&str> = sweep["kept"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|k| k.split_once(": ").map_or(k, |(id, _)| id))
                .collect()
        })
        .unwrap_or_default();
    if !kept.is_empty() {
        parts.push(format!("kept {}", kept.join(", ")));
    }
    if parts.is_empty() {
        parts.push("nothing to delete".to_owned());
    }
    parts.join("; ")
}

fn or_dash<T: ToString>(value: &Option<T>) -> String {
    value
        .as_ref()
        .map_or_else(|| "-".to_owned(), ToString::to_string)
}

/// The deploy's summary.
pub fn render_report(report: &DeployReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{} {} in {} ({} state transitions)",
        report.status,
        report.execution_name,
        human_duration(report.duration_seconds),
        report.state_transitions.unwrap_or_default()
    );
    if let Some(error) = &report.error {
        let _ = writeln!(out, "  error          {error}: {}", or_dash(&report.cause));
    }
    let rows: [(&str, String); 7] = [
        ("namespace", report.namespace.clone()),
        (
            "snapshot",
            format!(
                "{}{}",
                or_dash(&report.snapshot_id),
                if report.snapshot_taken {
                    " (taken now)"
                } else {
                    ""
                }
            ),
        ),
        ("old database", or_dash(&report.old_db)),
        ("new database", or_dash(&report.new_db)),
        (
            "pointer",
            format!(
                "v{} -> {}",
                or_dash(&report.pointer_version_before),
                report
                    .pointer_version_after
                    .map_or_else(|| "unchanged".to_owned(), |v| format!("v{v}"))
            ),
        ),
        (
            "service",
            format!(
                "{} revision {} -> {}",
                or_dash(&report.service),
                or_dash(&report.service_revision_before),
                or_dash(&report.service_revision_after)
            ),
        ),
        (
            "deleted",
            if report.deleted.is_empty() {
                "-".to_owned()
            } else {
                report.deleted.join(", ")
            },
        ),
    ];
    let mut rows = rows;
    if report.rollback.is_some() {
        // What the rollback undid, so the rows read as where things stand now.
        for (label, value) in &mut rows {
            if (*label == "pointer" && report.pointer_version_after.is_some())
                || (*label == "service" && report.service_revision_after.is_some())
            {
                value.push_str(" (undone)");
            }
        }
    }
    for (label, value) in rows {
        let _ = writeln!(out, "  {label:<14} {value}");
    }
    if !report.final_snapshots.is_empty() {
        let _ = writeln!(
            out,
            "  final snapshot {}",
            report.final_snapshots.join(", ")
        );
    }
    for kept in &report.kept {
        let _ = writeln!(out, "  kept           {kept}");
    }
    if let Some(cause) = &report.cleanup_deferred {
        let _ = writeln!(
            out,
            "  clean-up       deferred ({cause}); the old database stays tracked and a later run deletes it"
        );
    }
    if let Some(rollback) = &report.rollback {
        let _ = writeln!(
            out,
            "  rolled back    pointer restored: {}, service restored: {}, deleted: {}{}",
            rollback.pointer_restored,
            rollback.service_restored,
            if rollback.deleted.is_empty() {
                "-".to_owned()
            } else {
                rollback.deleted.join(", ")
            },
            if rollback.still_deleting.is_empty() {
                String::new()
            } else {
                format!(" (still deleting: {})", rollback.still_deleting.join(", "))
            }
        );
    }
    out
}

/// The summary of any other machine's execution.
pub fn render_execution(execution: &Execution) -> String {
    let status = execution.status.as_str();
    let mut out = format!(
        "\n{status} {} ({} state transitions)\n",
        execution.name, execution.state_transitions
    );
    if let Some(error) = &execution.error {
        let _ = writeln!(out, "  error  {error}: {}", or_dash(&execution.cause));
    }
    if let Some(output) = &execution.output {
        let _ = writeln!(
            out,
            "  output {}",
            serde_json::to_string_pretty(output).unwrap_or_default()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(95), "1m 35s");
        assert_eq!(human_duration(3700), "1h 01m");
    }

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn policy_decisions_print_under_the_task_that_asked() {
        use switchyard_core::policy::{PolicyContext, PolicyEngine};

        let out = Shared::default();
        let notes = Arc::new(PolicyNotes::default());
        let progress = Progress::to_writer(Box::new(out.clone())).with_policy_notes(notes.clone());
        let engine = crate::decisions::ObservedEngine::new(
            Arc::new(switchyard_core::policy::NoPlugins),
            notes,
        );
        let at = Utc::now();
        progress.on_event(&HistoryEvent {
            id: 1,
            timestamp: at,
            kind: HistoryEventKind::StateEntered {
                state_type: "Task".into(),
                name: "CreateDb".into(),
                input: serde_json::json!({}),
            },
        });
        let _ = engine.evaluate("capacity", &PolicyContext::default()).await;
        progress.on_event(&HistoryEvent {
            id: 2,
            timestamp: at,
            kind: HistoryEventKind::CatchMatched {
                state: "CreateDb".into(),
                error: "PolicyFailed".into(),
                next: "Rollback".into(),
            },
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].contains("CreateDb") && lines[0].contains("PolicyFailed"),
            "{text}"
        );
        assert!(
            lines[1].starts_with(&format!(
                "{:NOTE_INDENT$}policy capacity [create-database]: failed: plugin capacity is not installed",
                ""
            )),
            "{text}"
        );
    }

    #[test]
    fn details_come_from_the_document() {
        let doc = serde_json::json!({
            "db": {"db_instance_id": "xy-0146-qa-20261125-000000", "status": "creating", "ready": false, "wait_seconds": 30}
        });
        assert_eq!(
            detail("CheckDb", &doc),
            ("ok", "db xy-0146-qa-20261125-000000 creating".to_owned())
        );
        let polling = serde_json::json!({
            "db": {"db_instance_id": "d", "status": "backing-up", "ready": false, "polls": 3}
        });
        assert_eq!(detail("CheckDb", &polling).0, "..");
        assert_eq!(detail("Unknown", &doc), ("ok", String::new()));
    }
}
