//! Breaks the stack: `evaluate` recurses without bound (each frame keeps a 256-byte array live
//! across the call, so the optimizer cannot turn it into a loop).

use std::hint::black_box;

use switchyard_policy_kit::prelude::*;

pub struct Plugin;

impl Policy for Plugin {
    const NAME: &'static str = "deep";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const STEPS: &'static [Step] = Step::ALL;

    fn evaluate(_ctx: &Context) -> Decision {
        let total = dive(0);
        Decision::allow().with_warning(format!("returned from the bottom: {total}"))
    }
}

#[inline(never)]
fn dive(depth: u64) -> u64 {
    // Never true, but the compiler cannot know.
    if black_box(depth) == u64::MAX {
        return 0;
    }
    let pad = black_box([depth as u8; 256]);
    let below = dive(black_box(depth + 1));
    below.wrapping_add(u64::from(black_box(pad)[(depth % 256) as usize]))
}

export_policy!(Plugin);
