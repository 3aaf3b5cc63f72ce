//! Breaks the contract version: exports `switchyard:policy@0.2.0` (its own `wit/`, where the
//! context's `now` became `now-millis`), which a 0.1.x host must refuse at load time.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({
        path: "wit",
        world: "policy",
    });

    use switchyard::policy::types::{Step, Verdict};

    struct OtherContract;

    impl Guest for OtherContract {
        fn describe() -> Descriptor {
            Descriptor {
                name: "other-contract".to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                steps: vec![
                    Step::Snapshot,
                    Step::CreateDatabase,
                    Step::SwapPointer,
                    Step::DeployService,
                    Step::Cleanup,
                ],
                settings_schema: "{}".to_owned(),
            }
        }

        fn evaluate(context: Context) -> Decision {
            Decision {
                verdict: Verdict::Allow,
                warnings: vec![format!("now-millis: {}", context.now_millis)],
            }
        }
    }

    export!(OtherContract);
}
