//! Breaks the output caps: `evaluate` denies with `reasons` reasons of `bytes` bytes each
//! (settings; by default 4 000 of 100 bytes: 400 KB, well inside the memory and fuel limits,
//! over what a plugin may hand the host at once). Other sizes reach the host's count and
//! byte limits on a decision instead.

use serde::Deserialize;
use switchyard_policy_kit::prelude::*;

pub struct Plugin;

#[derive(Deserialize)]
#[serde(default)]
struct Settings {
    reasons: usize,
    bytes: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            reasons: 4_000,
            bytes: 100,
        }
    }
}

impl Policy for Plugin {
    const NAME: &'static str = "flood";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const STEPS: &'static [Step] = Step::ALL;

    fn evaluate(ctx: &Context) -> Decision {
        let settings: Settings = ctx.settings().unwrap_or_default();
        let reasons = (0..settings.reasons)
            .map(|i| format!("{i:05} {}", "x".repeat(settings.bytes.saturating_sub(6))))
            .collect();
        Decision {
            verdict: Verdict::Deny(reasons),
            warnings: Vec::new(),
        }
    }
}

export_policy!(Plugin);
