//! Breaks the memory cap: `evaluate` keeps allocating 1 MiB blocks until the allocator fails (a trap).

use switchyard_policy_kit::prelude::*;

pub struct Plugin;

impl Policy for Plugin {
    const NAME: &'static str = "hog";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const STEPS: &'static [Step] = Step::ALL;

    fn evaluate(_ctx: &Context) -> Decision {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            let mut block = vec![0u8; 1 << 20];
            block[std::hint::black_box(4096)] = 1;
            hoard.push(std::hint::black_box(block));
        }
    }
}

export_policy!(Plugin);
