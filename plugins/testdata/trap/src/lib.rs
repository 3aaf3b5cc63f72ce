//! Breaks by trapping: `evaluate` panics (panics abort on wasm32, which is a trap).

use switchyard_policy_kit::prelude::*;

pub struct Plugin;

impl Policy for Plugin {
    const NAME: &'static str = "trap";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const STEPS: &'static [Step] = Step::ALL;

    fn evaluate(_ctx: &Context) -> Decision {
        panic!("trap: a deliberate panic in evaluate")
    }
}

export_policy!(Plugin);
