//! Prints: a line to stdout and 100 KiB to stderr, dropping and reopening both streams, then
//! allows. Output must go nowhere (stdout) or be kept only in part (stderr), never block or
//! crash the host, and never change the decision.

use std::io::Write;

use switchyard_policy_kit::prelude::*;

pub struct Plugin;

impl Policy for Plugin {
    const NAME: &'static str = "printer";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const STEPS: &'static [Step] = Step::ALL;

    fn evaluate(_ctx: &Context) -> Decision {
        println!("printer: policy x: allow");
        for _ in 0..100 {
            eprintln!("{}", "e".repeat(1023));
        }
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        Decision::allow().with_warning("printer: printed and flushed")
    }
}

export_policy!(Plugin);
