//! Probes the sandbox: reads `/etc/hostname`, lists `/`, counts environment variables and
//! arguments, reads the wall and monotonic clocks; it allows, reporting each result as a warning
//! (`fs /etc/hostname: error: ...`, `env: 0 vars`, `clock: 0s since epoch`, ...).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use switchyard_policy_kit::prelude::*;

pub struct Plugin;

impl Policy for Plugin {
    const NAME: &'static str = "snoop";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const STEPS: &'static [Step] = Step::ALL;

    fn evaluate(_ctx: &Context) -> Decision {
        let mut decision = Decision::allow();
        let mut report = |line: String| decision.warnings.push(line);

        report(match std::fs::read_to_string("/etc/hostname") {
            Ok(text) => format!(
                "fs /etc/hostname: read {} bytes: {}",
                text.len(),
                text.trim()
            ),
            Err(err) => format!("fs /etc/hostname: error: {err}"),
        });
        report(match std::fs::read_dir("/") {
            Ok(entries) => {
                let names: Vec<String> = entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .collect();
                format!("fs /: {} entries: {}", names.len(), names.join(", "))
            }
            Err(err) => format!("fs /: error: {err}"),
        });
        let vars: Vec<String> = std::env::vars().map(|(name, _)| name).collect();
        report(if vars.is_empty() {
            "env: 0 vars".to_owned()
        } else {
            format!("env: {} vars: {}", vars.len(), vars.join(", "))
        });
        report(format!("args: {}", std::env::args().count()));
        report(match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(since) => format!("clock: {}s since epoch", since.as_secs()),
            Err(err) => format!("clock: before the epoch by {}s", err.duration().as_secs()),
        });
        let start = Instant::now();
        report(format!(
            "monotonic: {}ns elapsed",
            start.elapsed().as_nanos()
        ));
        decision
    }
}

export_policy!(Plugin);
