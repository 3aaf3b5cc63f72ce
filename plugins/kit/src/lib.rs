//! Write a Switchyard policy plugin as one function.
//!
//! A policy is a type implementing [`Policy`]; [`export_policy!`] turns it into the
//! `switchyard:policy` component (`plugins/wit/policy.wit`) when the crate is built for
//! `wasm32-wasip2`. The bindings stay hidden: a policy sees plain Rust values ([`Context`],
//! [`Decision`]), so its logic also builds and runs natively, in ordinary `cargo test`.
//!
//! ```ignore
//! use switchyard_policy_kit::prelude::*;
//!
//! /// Restores must come from a recent snapshot.
//! struct Freshness;
//!
//! impl Policy for Freshness {
//!     const NAME: &'static str = "snapshot-freshness";
//!     const VERSION: &'static str = env!("CARGO_PKG_VERSION");
//!     const STEPS: &'static [Step] = &[Step::CreateDatabase];
//!     const SETTINGS_SCHEMA: &'static str = r#"{"type": "object", "properties": {"max_age_hours": {"type": "integer"}}}"#;
//!
//!     fn evaluate(ctx: &Context) -> Decision {
//!         #[derive(serde::Deserialize)]
//!         struct Settings { #[serde(default = "day")] max_age_hours: u64 }
//!         fn day() -> u64 { 24 }
//!         let settings: Settings = match ctx.settings() {
//!             Ok(settings) => settings,
//!             Err(reason) => return Decision::deny(reason),
//!         };
//!         let Some(snapshot) = &ctx.snapshot else { return Decision::deny("no snapshot") };
//!         let mut checks = Checks::new();
//!         checks.deny_if(snapshot.age_seconds > settings.max_age_hours * 3600, || {
//!             format!("snapshot {} is older than {} h", snapshot.id, settings.max_age_hours)
//!         });
//!         checks.finish()
//!     }
//! }
//!
//! export_policy!(Freshness);
//!
//! #[test]
//! fn fixtures() {
//!     switchyard_policy_kit::testing::check_fixtures::<Freshness>(include_str!("../fixtures.json"));
//! }
//! ```
//!
//! The crate is a `cdylib`; `cargo build --release --target wasm32-wasip2` makes
//! `target/wasm32-wasip2/release/<crate>.wasm`, a component. A plugin has no clock, files,
//! network or environment: `ctx.now` is the time, [`DateTime`] does the calendar.

mod names;
pub mod testing;
mod time;
mod types;

pub use names::Namespace;
pub use time::{DateTime, Weekday, parse_rfc3339, valid_date};
pub use types::{
    Checks, Context, DatabaseFacts, Decision, ServiceFacts, SnapshotFacts, Step, Verdict,
};

/// Everything a policy author needs, in one `use`.
pub mod prelude {
    pub use crate::export_policy;
    pub use crate::{
        Checks, Context, DatabaseFacts, DateTime, Decision, Namespace, Policy, ServiceFacts,
        SnapshotFacts, Step, Verdict, Weekday, parse_rfc3339,
    };
}

/// A policy: who it is, which steps it checks, and its decision for a context.
pub trait Policy {
    /// A short kebab-case name, unique in an installation (`snapshot-freshness`).
    const NAME: &'static str;
    /// The plugin's own version (semver): usually `env!("CARGO_PKG_VERSION")`.
    const VERSION: &'static str;
    /// The steps it checks; the host does not call it for others (and if it does, the kit
    /// answers allow without calling [`Policy::evaluate`]).
    const STEPS: &'static [Step];
    /// A JSON Schema (as text) of the settings it reads; `{}` if it has none.
    const SETTINGS_SCHEMA: &'static str = "{}";

    /// The decision for `ctx`. Must be a pure function of `ctx`: no state survives between
    /// calls. Return a deny (not a panic) for bad settings or missing facts; a panic is a trap,
    /// which the host reports as a broken plugin.
    fn evaluate(ctx: &Context) -> Decision;
}

/// What the component answers for `ctx`: allow for a step the policy does not check, else
/// [`Policy::evaluate`], with an empty deny given a reason (a deny always says why).
pub fn decide<P: Policy>(ctx: &Context) -> Decision {
    if !P::STEPS.contains(&ctx.step) {
        return Decision::allow();
    }
    let mut decision = P::evaluate(ctx);
    if let Verdict::Deny(reasons) = &mut decision.verdict
        && reasons.is_empty()
    {
        reasons.push(format!("denied by {} (no reason given)", P::NAME));
    }
    decision
}

/// Exports a [`Policy`] as the component's `describe` and `evaluate`. Use it once per crate.
/// It expands to nothing when the crate is not built for WebAssembly.
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct SwitchyardPolicyComponent;

            impl $crate::__private::Guest for SwitchyardPolicyComponent {
                fn describe() -> $crate::__private::WitDescriptor {
                    $crate::__private::describe::<$policy>()
                }

                fn evaluate(
                    context: $crate::__private::WitContext,
                ) -> $crate::__private::WitDecision {
                    $crate::__private::evaluate::<$policy>(context)
                }
            }

    $crate::__export_policy_impl!(SwitchyardPolicyComponent with_types_in $crate::bindings);
        };
    };
}

/// The wit-bindgen bindings of the `policy` world. Not part of the kit's API.
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "policy",
        pub_export_macro: true,
        default_bindings_module: "switchyard_policy_kit::bindings",
    });
}

/// The glue [`export_policy!`] expands to. Not part of the kit's API.
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod __private {
    use crate::bindings::switchyard::policy::types as wit;
    use crate::{Context, DatabaseFacts, Policy, ServiceFacts, SnapshotFacts, Step, Verdict};

    pub use crate::bindings::Guest;
    pub use wit::{Context as WitContext, Decision as WitDecision, Descriptor as WitDescriptor};

    fn step_to_wit(step: Step) -> wit::Step {
        match step {
            Step::Snapshot => wit::Step::Snapshot,
            Step::CreateDatabase => wit::Step::CreateDatabase,
            Step::SwapPointer => wit::Step::SwapPointer,
            Step::DeployService => wit::Step::DeployService,
            Step::Cleanup => wit::Step::Cleanup,
        }
    }

    fn step_from_wit(step: wit::Step) -> Step {
        match step {
            wit::Step::Snapshot => Step::Snapshot,
            wit::Step::CreateDatabase => Step::CreateDatabase,
            wit::Step::SwapPointer => Step::SwapPointer,
            wit::Step::DeployService => Step::DeployService,
            wit::Step::Cleanup => Step::Cleanup,
        }
    }

    fn database(db: wit::DatabaseFacts) -> DatabaseFacts {
        DatabaseFacts {
            id: db.id,
            instance_class: db.instance_class,
            allocated_storage_gib: db.allocated_storage_gib,
            engine: db.engine,
            engine_version: db.engine_version,
            region: db.region,
            active: db.active,
            in_flight: db.in_flight,
            final_snapshot: db.final_snapshot,
        }
    }

    fn context(ctx: wit::Context) -> Context {
        Context {
            step: step_from_wit(ctx.step),
            namespace: ctx.namespace,
            customer: ctx.customer,
            project: ctx.project,
            environment: ctx.environment,
            region: ctx.region,
            now: ctx.now,
            execution_id: ctx.execution_id,
            source_namespace: ctx.source_namespace,
            snapshot: ctx.snapshot.map(|s| SnapshotFacts {
                id: s.id,
                source_db: s.source_db,
                created_at: s.created_at,
                age_seconds: s.age_seconds,
                allocated_storage_gib: s.allocated_storage_gib,
                engine: s.engine,
                engine_version: s.engine_version,
                taken_by_this_execution: s.taken_by_this_execution,
            }),
            source_db: ctx.source_db.map(database),
            target_db: ctx.target_db.map(database),
            current_pointer: ctx.current_pointer,
            new_pointer: ctx.new_pointer,
            service: ctx.service.map(|s| ServiceFacts {
                cluster: s.cluster,
                service: s.service,
                container: s.container,
                current_image: s.current_image,
                new_image: s.new_image,
            }),
            current_version: ctx.current_version,
            target_version: ctx.target_version,
            plan: ctx.plan,
            settings: ctx.settings,
        }
    }

    pub fn describe<P: Policy>() -> wit::Descriptor {
        wit::Descriptor {
            name: P::NAME.to_owned(),
            version: P::VERSION.to_owned(),
            steps: P::STEPS.iter().copied().map(step_to_wit).collect(),
            settings_schema: P::SETTINGS_SCHEMA.to_owned(),
        }
    }

    pub fn evaluate<P: Policy>(ctx: wit::Context) -> wit::Decision {
        let decision = crate::decide::<P>(&context(ctx));
        wit::Decision {
            verdict: match decision.verdict {
                Verdict::Allow => wit::Verdict::Allow,
                Verdict::Deny(reasons) => wit::Verdict::Deny(reasons),
            },
            warnings: decision.warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Picky;

    impl Policy for Picky {
        const NAME: &'static str = "picky";
        const VERSION: &'static str = "0.0.1";
        const STEPS: &'static [Step] = &[Step::Cleanup];

        fn evaluate(_ctx: &Context) -> Decision {
            Decision {
                verdict: Verdict::Deny(Vec::new()),
                warnings: Vec::new(),
            }
        }
    }

    #[test]
    fn decide_skips_other_steps_and_explains_denies() {
        let mut ctx = Context::default();
        assert!(decide::<Picky>(&ctx).is_allow());
        ctx.step = Step::Cleanup;
        assert_eq!(
            decide::<Picky>(&ctx).reasons(),
            ["denied by picky (no reason given)"]
        );
    }
}
