//! Breaks nothing: a valid policy that does 100 000 iterations of work and allows (for calibrating fuel).

use switchyard_policy_kit::prelude::*;

pub struct Plugin;

impl Policy for Plugin {
    const NAME: &'static str = "slow-ok";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const STEPS: &'static [Step] = Step::ALL;

    fn evaluate(_ctx: &Context) -> Decision {
        let mut state = std::hint::black_box(0x9e37_79b9_7f4a_7c15_u64);
        for _ in 0..100_000 {
            // xorshift64: cheap, and the optimizer cannot fold the loop away.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state = std::hint::black_box(state);
        }
        Decision::allow()
    }
}

export_policy!(Plugin);
