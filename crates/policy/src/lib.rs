//! Runs Switchyard's policy plugins: WebAssembly components that export the
//! `switchyard:policy@0.1.0` world (`plugins/wit/policy.wit`).
//!
//! This crate is the only one that knows wasmtime. It owns:
//! - the engine configuration and the limits every evaluation runs under ([`Limits`]);
//! - the sandbox: WASI is linked with nothing granted (no preopened directories, no
//!   environment, no arguments, a clock frozen at the Unix epoch, stdio to nowhere) and
//!   without `wasi:sockets` or `wasi:http`, so a plugin that imports them is refused at load;
//! - loading: components compiled ahead of time (`.cwasm`, see [`precompile`]) are loaded
//!   without Cranelift; plain `.wasm` components are compiled when the `compile` feature is on;
//! - [`PluginSet`], the [`PolicyEngine`](switchyard_core::policy::PolicyEngine) the steps call.

mod bindings;
mod error;
mod host;
mod set;

pub use error::PolicyError;
pub use host::{CONTRACT, Limits, LoadedPlugin, PluginHost};
pub use set::{PluginSet, PluginSource};

#[cfg(feature = "compile")]
pub use host::precompile;
