//! Hoards host resources: `evaluate` creates `handles` pollables (settings `{"handles": N}`)
//! and keeps every one alive, then allows. Each lives in the host's resource table, memory the
//! guest's own limits do not count: the host must stop the hoard, not grow with it.

use serde::Deserialize;
use switchyard_policy_kit::prelude::*;

pub struct Plugin;

#[derive(Deserialize)]
struct Settings {
    handles: u32,
}

impl Policy for Plugin {
    const NAME: &'static str = "hoarder";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const STEPS: &'static [Step] = Step::ALL;

    fn evaluate(ctx: &Context) -> Decision {
        let settings: Settings = match ctx.settings() {
            Ok(settings) => settings,
            Err(err) => return Decision::deny(format!("hoarder: bad settings: {err}")),
        };
        Decision::allow().with_warning(format!("hoarder: kept {}", hoard(settings.handles)))
    }
}

#[cfg(target_arch = "wasm32")]
fn hoard(handles: u32) -> usize {
    let mut kept = Vec::new();
    for _ in 0..handles {
        kept.push(wasi::clocks::monotonic_clock::subscribe_duration(0));
    }
    kept.len()
}

#[cfg(not(target_arch = "wasm32"))]
fn hoard(handles: u32) -> usize {
    handles as usize
}

export_policy!(Plugin);
