//! Sleeps: `evaluate` sleeps an hour (a `wasi:clocks` subscription and a blocking poll), then
//! allows. Time does not pass inside a plugin: the sleep must neither hold the host nor block
//! its runtime.

use std::time::Duration;

use switchyard_policy_kit::prelude::*;

pub struct Plugin;

impl Policy for Plugin {
    const NAME: &'static str = "sleeper";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const STEPS: &'static [Step] = Step::ALL;

    fn evaluate(_ctx: &Context) -> Decision {
        std::thread::sleep(Duration::from_secs(3600));
        Decision::allow().with_warning("sleeper: woke up")
    }
}

export_policy!(Plugin);
