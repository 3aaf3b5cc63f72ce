//! Breaks the output contract: `evaluate` denies with a reason that is not valid UTF-8.

use switchyard_policy_kit::prelude::*;

pub struct Plugin;

impl Policy for Plugin {
    const NAME: &'static str = "garbage";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const STEPS: &'static [Step] = Step::ALL;

    fn evaluate(_ctx: &Context) -> Decision {
        // Deliberately invalid: the host must refuse to lift this string, not trust it.
        #[allow(unsafe_code)]
        let garbage =
            unsafe { String::from_utf8_unchecked(vec![0xff, 0xfe, 0xc3, 0x28, b'o', b'k']) };
        Decision::deny(garbage)
    }
}

export_policy!(Plugin);
