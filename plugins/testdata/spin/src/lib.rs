//! Breaks the CPU limit: `evaluate` loops forever (the host must stop it by fuel or epoch).

use switchyard_policy_kit::prelude::*;

pub struct Spin;

impl Policy for Spin {
    const NAME: &'static str = "spin";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const STEPS: &'static [Step] = Step::ALL;

    fn evaluate(_ctx: &Context) -> Decision {
        let mut n = 0u64;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

export_policy!(Spin);
