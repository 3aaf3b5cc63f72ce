//! Exits: `evaluate` writes why to stderr and calls `exit(3)` (WASI `wasi:cli/exit`, which carries
//! only failure: status 1), which must
//! end the plugin's call, not the host's process.

use switchyard_policy_kit::prelude::*;

pub struct Plugin;

impl Policy for Plugin {
    const NAME: &'static str = "quit";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const STEPS: &'static [Step] = Step::ALL;

    fn evaluate(_ctx: &Context) -> Decision {
        eprintln!("quit: giving up");
        std::process::exit(3)
    }
}

export_policy!(Plugin);
