//! Runs Switchyard's policy plugins: WebAssembly components that export the
//! `switchyard:policy@0.1.0` world (`plugins/wit/policy.wit`).
//!
//! This crate is the only one that knows wasmtime. It owns:
//! - the engine configuration and the limits every evaluation runs under ([`Limits`]);
//! - the sandbox: WASI is linked with nothing granted (no preopened directories, no
//!   environment, no arguments, a clock frozen at the Unix epoch, seeded randomness, stdout
//!   discarded, stderr kept only to name a failure's cause) and without `wasi:sockets` or
//!   `wasi:http`, so a plugin that imports them is refused at load;
//! - evaluation on the caller's tokio runtime: WASI is linked for async calls and every call
//!   is awaited (`call_async`), so no host call blocks a runtime thread (the sync bindings
//!   `block_on` inside the runtime and abort the process), and the guest yields at every
//!   epoch tick until its wall-clock deadline;
//! - loading: components compiled ahead of time (`.cwasm`, see [`precompile`]) are loaded
//!   without Cranelift; plain `.wasm` components are compiled when the `compile` feature is on;
//! - [`PluginSet`], the [`PolicyEngine`](switchyard_core::policy::PolicyEngine) the steps call.

mod bindings;
mod error;
mod host;
mod lift;
mod sandbox;
mod set;
mod text;

pub use error::PolicyError;
pub use host::{
    CONTRACT, ENTRY_OVERHEAD, Limits, LoadedPlugin, MAX_DESCRIBED_STEPS, MAX_SCHEMA_BYTES,
    PluginHost, TICK,
};
pub use sandbox::{
    INSTANCES, MAX_HANDLES, MAX_RANDOM_BYTES, MEMORIES, RANDOM_SEED, STDERR_KEPT, TABLES,
};
pub use set::{PluginSet, PluginSource};

#[cfg(feature = "compile")]
pub use host::precompile;
