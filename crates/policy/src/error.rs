use std::path::PathBuf;

/// What goes wrong loading or building plugins. A step that needs a plugin that did not load
/// fails closed with `PluginFailure::Unloadable`, carrying this message.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin} is not a policy component: {detail}")]
    NotAComponent { origin: String, detail: String },
    #[error(
        "{origin} targets policy contract {found}, this host speaks {expected}: rebuild it against {expected}"
    )]
    WrongContract {
        origin: String,
        found: String,
        expected: String,
    },
    #[error(
        "{origin} imports {import}, which policy plugins are not given (only the contract and sandboxed wasi cli, clocks, io, random and filesystem)"
    )]
    ForbiddenImport { origin: String, import: String },
    #[error(
        "{origin} was precompiled for another engine or machine: {detail}; rebuild it with `switchyard policy build`"
    )]
    Incompatible { origin: String, detail: String },
    #[error(
        "{origin} is a plain component and this build cannot compile components (no `compile` feature): ship its precompiled .cwasm"
    )]
    CannotCompile { origin: String },
    #[error("{origin} failed while describing itself: {detail}")]
    Describe { origin: String, detail: String },
    #[error("{origin} describes an invalid plugin: {detail}")]
    InvalidDescriptor { origin: String, detail: String },
    #[error(
        "{origin} describes itself as {described}, but its file names it {file_name}: a plugin is loaded only under its own name"
    )]
    Impostor {
        origin: String,
        file_name: String,
        described: String,
    },
    #[error("plugin name {name} is used by both {first} and {second}")]
    Duplicate {
        name: String,
        first: String,
        second: String,
    },
    #[error("wasmtime: {0}")]
    Engine(String),
}
