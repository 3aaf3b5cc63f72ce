//! The status table.

use std::collections::BTreeMap;
use std::fmt::Write;

use switchyard_core::status::NamespaceStatus;

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(", ")
    }
}

/// What reading `namespaces` cost: the requests sent, per namespace and by operation.
pub fn calls_summary(namespaces: usize, counts: &BTreeMap<String, u64>) -> String {
    let total: u64 = counts.values().sum();
    let per = if namespaces == 0 {
        String::new()
    } else {
        format!(" ({:.2} per namespace)", total as f64 / namespaces as f64)
    };
    let each: Vec<String> = counts
        .iter()
        .map(|(operation, n)| format!("{operation} {n}"))
        .collect();
    format!(
        "{namespaces} namespaces read with {total} AWS calls{per}: {}",
        each.join(", ")
    )
}

/// One block per namespace: what is active and running first, then anything needing attention.
pub fn render(statuses: &[NamespaceStatus]) -> String {
    let mut out = String::new();
    if statuses.is_empty() {
        out.push_str("no namespaces registered\n");
        return out;
    }
    let _ = writeln!(
        out,
        "{:<14} {:<30} {:<10} {:<22} {:>4}  ROLLOUT",
        "NAMESPACE", "ACTIVE DB", "DB STATUS", "SERVICE", "REV"
    );
    for s in statuses {
        let _ = writeln!(
            out,
            "{:<14} {:<30} {:<10} {:<22} {:>4}  {}",
            s.namespace,
            s.active_db.as_deref().unwrap_or("-"),
            s.active_db_status.as_deref().unwrap_or("-"),
            s.service,
            s.service_revision
                .map_or_else(|| "-".to_owned(), |r| r.to_string()),
            s.rollout_state.as_deref().unwrap_or("-"),
        );
        let mut notes = Vec::new();
        if let Some(error) = &s.error {
            notes.push(format!("BROKEN: {error}"));
        }
        match (&s.app_version, &s.schema_version) {
            (Some(version), Some(schema)) => {
                notes.push(format!("version {version}, schema {schema}"));
            }
            (Some(version), None) => notes.push(format!("version {version}")),
            (None, Some(schema)) => notes.push(format!("schema {schema}")),
            (None, None) => {}
        }
        match (&s.last_deploy, &s.last_execution) {
            (Some(last), _) => {
                let name = last
                    .execution_id
                    .rsplit(':')
                    .next()
                    .unwrap_or(&last.execution_id);
                let outcome = match &last.error {
                    Some(error) => format!("FAILED ({error}), the old database kept serving"),
                    None => last.outcome.clone(),
                };
                notes.push(format!(
                    "last deploy {} {outcome}: {name}",
                    last.finished_at.format("%Y-%m-%d %H:%M UTC")
                ));
            }
            // Made active before deploys recorded how they ended.
            (None, Some(execution)) => {
                let name = execution.rsplit(':').next().unwrap_or(execution);
                notes.push(format!("last deploy {name}"));
            }
            (None, None) => {}
        }
        if let Some(holder) = &s.locked_by {
            notes.push(format!("LOCKED by {holder}"));
        }
        if !s.due_for_deletion.is_empty() {
            notes.push(format!("due for deletion: {}", list(&s.due_for_deletion)));
        }
        if !s.candidates.is_empty() {
            notes.push(format!("in flight: {}", list(&s.candidates)));
        }
        if !s.orphans.is_empty() {
            notes.push(format!("ORPHANS: {}", list(&s.orphans)));
        }
        if !s.drift.is_empty() {
            notes.push(format!("DRIFT: {}", s.drift.join("; ")));
        }
        for note in notes {
            let _ = writeln!(out, "{:<14} └ {note}", "");
        }
    }
    out
}
