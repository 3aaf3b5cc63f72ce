//! Breaks the output cap: `evaluate` denies with 4 000 reasons of 100 bytes (400 KB: well inside
//! the memory and fuel limits, six times the 64 KiB a decision may take).

use switchyard_policy_kit::prelude::*;

pub struct Plugin;

impl Policy for Plugin {
    const NAME: &'static str = "flood";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const STEPS: &'static [Step] = Step::ALL;

    fn evaluate(_ctx: &Context) -> Decision {
        let reasons = (0..4_000)
            .map(|i| format!("{i:05} {}", "x".repeat(94)))
            .collect();
        Decision {
            verdict: Verdict::Deny(reasons),
            warnings: Vec::new(),
        }
    }
}

export_policy!(Plugin);
