//! Asks the host to make zeroes: `evaluate` calls `write-zeroes(len)` on its stderr stream
//! (settings `{"len": N}`), a host call whose length the guest alone chooses, then allows. The
//! host must neither allocate `len` bytes nor stall on them.

use serde::Deserialize;
use switchyard_policy_kit::prelude::*;

pub struct Plugin;

#[derive(Deserialize)]
struct Settings {
    len: u64,
}

impl Policy for Plugin {
    const NAME: &'static str = "zeroes";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const STEPS: &'static [Step] = Step::ALL;

    fn evaluate(ctx: &Context) -> Decision {
        let settings: Settings = match ctx.settings() {
            Ok(settings) => settings,
            Err(err) => return Decision::deny(format!("zeroes: bad settings: {err}")),
        };
        Decision::allow().with_warning(format!("zeroes: {}", write_zeroes(settings.len)))
    }
}

#[cfg(target_arch = "wasm32")]
fn write_zeroes(len: u64) -> String {
    let stderr = wasi::cli::stderr::get_stderr();
    match stderr.write_zeroes(len) {
        Ok(()) => "written".to_owned(),
        Err(err) => format!("refused: {err:?}"),
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn write_zeroes(len: u64) -> String {
    format!("{len} zeroes, natively")
}

export_policy!(Plugin);
