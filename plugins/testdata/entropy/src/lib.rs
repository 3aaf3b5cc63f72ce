//! Asks for randomness: `evaluate` calls `wasi:random/random.get-random-bytes(bytes)` `calls`
//! times (settings `{"bytes": N, "calls": M}`; `calls` 0 means forever), then allows with the
//! first 8 bytes it got, in hex, as a warning. Host calls burn wall time but almost no fuel:
//! only the host's deadline stops the endless form, and only its size limit the huge one.

use serde::Deserialize;
use switchyard_policy_kit::prelude::*;

pub struct Plugin;

#[derive(Deserialize)]
struct Settings {
    bytes: u64,
    calls: u64,
}

impl Policy for Plugin {
    const NAME: &'static str = "entropy";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const STEPS: &'static [Step] = Step::ALL;

    fn evaluate(ctx: &Context) -> Decision {
        let settings: Settings = match ctx.settings() {
            Ok(settings) => settings,
            Err(err) => return Decision::deny(format!("entropy: bad settings: {err}")),
        };
        let mut first = Vec::new();
        let mut call = 0;
        while settings.calls == 0 || call < settings.calls {
            let bytes = random(settings.bytes);
            if first.is_empty() {
                first = bytes.into_iter().take(8).collect();
            }
            call += 1;
        }
        let hex: String = first.iter().map(|b| format!("{b:02x}")).collect();
        Decision::allow().with_warning(format!("entropy: {hex}"))
    }
}

#[cfg(target_arch = "wasm32")]
fn random(bytes: u64) -> Vec<u8> {
    wasi::random::random::get_random_bytes(bytes)
}

#[cfg(not(target_arch = "wasm32"))]
fn random(bytes: u64) -> Vec<u8> {
    vec![0; bytes as usize]
}

export_policy!(Plugin);
