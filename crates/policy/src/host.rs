use std::time::Duration;

use switchyard_core::policy::{
    Evaluation, PluginDescriptor, PluginFailure, PolicyContext, Verdict,
};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Linker};
use wasmtime::{Config, Engine, Precompiled, Store, Trap, UpdateDeadline};

use crate::bindings::{self, PolicyPre};
use crate::error::PolicyError;
use crate::sandbox::{self, Sandbox};
use crate::{lift, text};

/// The contract this host speaks, as plugins import it.
pub const CONTRACT: &str = "switchyard:policy@0.1.0";
const CONTRACT_PACKAGE: &str = "switchyard:policy/";
/// Imports of another version of the contract that are still compatible (semver: same 0.1 line).
const CONTRACT_LINE: &str = "@0.1.";

/// WASI interfaces a plugin may import. They are linked with nothing granted (see [`Sandbox`]);
/// a language's standard library imports them even when the policy never touches them.
/// Everything else, `wasi:sockets` and `wasi:http` among them, is refused at load.
const ALLOWED_WASI: &[&str] = &[
    "wasi:cli/",
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:filesystem/",
];
const WASI_LINE: &str = "@0.2.";

/// What one evaluation (and a plugin's `describe` at load) may use. Exceeding any of them
/// fails the step closed, naming the plugin and the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wasm instructions (roughly) per evaluation. The bundled policies use well under 1%.
    pub fuel: u64,
    /// Wall-clock time per evaluation, host calls included (fuel counts only guest
    /// instructions). Enforced by epoch interruption every [`TICK`].
    pub deadline: Duration,
    /// Linear memory per evaluation, summed over every memory its instances create, in bytes.
    pub memory_bytes: usize,
    /// Table elements per evaluation, summed over every table.
    pub table_elements: usize,
    /// Native stack the plugin's wasm frames may use, in bytes.
    pub max_wasm_stack: usize,
    /// The size of a decision: every reason and warning, each counted as its bytes plus
    /// [`ENTRY_OVERHEAD`] (so a flood of empty entries is not free), checked before any of it
    /// is copied out of the plugin.
    pub max_output_bytes: usize,
    /// The number of reasons and warnings in a decision, together.
    pub max_output_entries: usize,
    /// What a plugin may hand the host in one transfer (a decision, a descriptor, the
    /// arguments of one WASI call), in bytes as wasmtime counts them while lifting: every
    /// string byte, and the host size of every list element. Larger is refused before the
    /// host allocates for it.
    pub max_transfer_bytes: usize,
    /// One reason or warning, in bytes.
    pub max_entry_bytes: usize,
}

/// The epoch tick: how often a running plugin checks its deadline (and yields to the runtime).
pub const TICK: Duration = Duration::from_millis(10);

/// What each reason or warning costs against [`Limits::max_output_bytes`] besides its text.
pub const ENTRY_OVERHEAD: usize = 16;

/// What `describe` may return: a name and a version of at most 64 bytes each, at most this
/// many steps (there are five; duplicates are tolerated, not unbounded), and a settings schema
/// of at most [`MAX_SCHEMA_BYTES`].
pub const MAX_DESCRIBED_STEPS: usize = 16;
pub const MAX_SCHEMA_BYTES: usize = 64 << 10;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 50_000_000,
            deadline: Duration::from_millis(1_000),
            memory_bytes: 32 << 20,
            table_elements: 100_000,
            max_wasm_stack: 512 << 10,
            max_output_bytes: 64 << 10,
            max_output_entries: 256,
            max_transfer_bytes: 256 << 10,
            max_entry_bytes: 2 << 10,
        }
    }
}

/// A plugin ready to run: checked against the contract, linked, described.
pub struct LoadedPlugin {
    pub descriptor: PluginDescriptor,
    /// Where it came from (a file path), for messages.
    pub origin: String,
    /// The sha256 of the bytes it was loaded from, hex.
    pub digest: String,
    pre: InstancePre<Sandbox>,
    describe: ComponentExportIndex,
    evaluate: ComponentExportIndex,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("descriptor", &self.descriptor)
            .field("origin", &self.origin)
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

/// Raised from the epoch callback when an evaluation runs past its deadline.
#[derive(Debug)]
struct DeadlineExceeded;

impl std::fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deadline exceeded")
    }
}

impl std::error::Error for DeadlineExceeded {}

fn engine_config(limits: &Limits) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.consume_fuel(true);
    config.epoch_interruption(true);
    config.max_wasm_stack(limits.max_wasm_stack);
    // A trap's message is its cause; frames of a guest the operator did not write add lines
    // to an error that must stay one line, and cost time on every trap.
    config.wasm_backtrace_max_frames(None);
    config
}

/// Compiles a component ahead of time for this host's engine, or for `target` (a target triple
/// such as `aarch64-unknown-linux-gnu`, for Lambda on Graviton). The result loads without
/// Cranelift.
#[cfg(feature = "compile")]
pub fn precompile(
    wasm: &[u8],
    limits: &Limits,
    target: Option<&str>,
) -> Result<Vec<u8>, PolicyError> {
    let mut config = engine_config(limits);
    if let Some(target) = target {
        config
            .target(target)
            .map_err(|err| PolicyError::Engine(format!("target {target:?}: {err}")))?;
    }
    let engine = Engine::new(&config).map_err(|err| PolicyError::Engine(err.to_string()))?;
    engine
        .precompile_component(wasm)
        .map_err(|err| PolicyError::NotAComponent {
            origin: "the component".to_owned(),
            detail: format!("{err:#}"),
        })
}

/// The wasmtime engine and linker every plugin of an installation shares.
pub struct PluginHost {
    engine: Engine,
    linker: Linker<Sandbox>,
    limits: Limits,
}

/// Advances the engine's epoch every [`TICK`] while the engine lives; a running plugin checks
/// its deadline at each tick.
fn start_ticker(engine: &Engine) -> Result<(), PolicyError> {
    let engine = engine.weak();
    std::thread::Builder::new()
        .name("switchyard-policy-epoch".to_owned())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })
        .map(drop)
        .map_err(|err| PolicyError::Engine(format!("starting the epoch ticker: {err}")))
}

impl PluginHost {
    pub fn new(limits: Limits) -> Result<Self, PolicyError> {
        let engine =
            Engine::new(&engine_config(&limits)).map_err(|e| PolicyError::Engine(e.to_string()))?;
        let mut linker = Linker::new(&engine);
        sandbox::link(&mut linker).map_err(|e| PolicyError::Engine(e.to_string()))?;
        start_ticker(&engine)?;
        Ok(PluginHost {
            engine,
            linker,
            limits,
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Loads a plugin from the bytes of a component (`.wasm`, compiled here when the `compile`
    /// feature is on) or of a precompiled component (`.cwasm`, which must come from
    /// [`precompile`] with the same wasmtime and limits, for this machine), and asks it to
    /// describe itself, under the same limits as an evaluation.
    pub async fn load(&self, origin: &str, bytes: &[u8]) -> Result<LoadedPlugin, PolicyError> {
        let component = match Engine::detect_precompiled(bytes) {
            Some(Precompiled::Component) => self.deserialize(origin, bytes)?,
            Some(Precompiled::Module) => {
                return Err(PolicyError::NotAComponent {
                    origin: origin.to_owned(),
                    detail: "it is a precompiled core module".to_owned(),
                });
            }
            None => self.compile(origin, bytes)?,
        };
        self.check_imports(origin, &component)?;
        let not_a_policy = |detail: String| PolicyError::NotAComponent {
            origin: origin.to_owned(),
            detail,
        };
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|err| not_a_policy(one_line(&err)))?;
        // Checks both exports against the contract's types, once.
        let pre = PolicyPre::new(pre).map_err(|err| {
            not_a_policy(format!(
                "it does not export the {CONTRACT} world: {}",
                one_line(&err)
            ))
        })?;
        let export = |name: &str| {
            component
                .get_export_index(None, name)
                .ok_or_else(|| not_a_policy(format!("it exports no {name}")))
        };
        let mut plugin = LoadedPlugin {
            descriptor: PluginDescriptor {
                name: String::new(),
                version: String::new(),
                steps: Vec::new(),
                settings_schema: String::new(),
            },
            origin: origin.to_owned(),
            digest: sha256_hex(bytes),
            describe: export("describe")?,
            evaluate: export("evaluate")?,
            pre: pre.instance_pre().clone(),
        };
        plugin.descriptor = self.describe(&plugin).await?;
        Ok(plugin)
    }

    #[cfg(feature = "compile")]
    fn compile(&self, origin: &str, bytes: &[u8]) -> Result<Component, PolicyError> {
        Component::new(&self.engine, bytes).map_err(|err| PolicyError::NotAComponent {
            origin: origin.to_owned(),
            detail: one_line(&err),
        })
    }

    #[cfg(not(feature = "compile"))]
    fn compile(&self, origin: &str, _bytes: &[u8]) -> Result<Component, PolicyError> {
        Err(PolicyError::CannotCompile {
            origin: origin.to_owned(),
        })
    }

    /// Precompiled code is machine code wasmtime will run as is; `Component::deserialize` is
    /// `unsafe` because it cannot prove the bytes came from `precompile`. Plugins are part of
    /// the deployment (the package, a layer, or a directory the operator controls), the same
    /// trust as the function's own binary; wasmtime still checks the header, its version and
    /// the engine settings the code was compiled for, and refuses a mismatch.
    #[allow(unsafe_code)]
    fn deserialize(&self, origin: &str, bytes: &[u8]) -> Result<Component, PolicyError> {
        // SAFETY: see above; the bytes are a trusted artifact of `precompile`, and wasmtime
        // validates their header and compatibility before using them.
        unsafe { Component::deserialize(&self.engine, bytes) }.map_err(|err| {
            PolicyError::Incompatible {
                origin: origin.to_owned(),
                detail: one_line(&err),
            }
        })
    }

    /// Refuses, by name and before anything runs, a plugin that needs more than the contract
    /// gives it: another contract version, or a capability outside the sandbox.
    fn check_imports(&self, origin: &str, component: &Component) -> Result<(), PolicyError> {
        let ty = component.component_type();
        for (name, item) in ty.imports(&self.engine) {
            if let Some(rest) = name.strip_prefix(CONTRACT_PACKAGE) {
                if !rest.contains(CONTRACT_LINE) {
                    return Err(PolicyError::WrongContract {
                        origin: origin.to_owned(),
                        found: name.to_owned(),
                        expected: CONTRACT.to_owned(),
                    });
                }
                continue;
            }
            let wasi = ALLOWED_WASI.iter().any(|prefix| name.starts_with(prefix))
                && name.contains(WASI_LINE)
                && matches!(item.ty, ComponentItem::ComponentInstance(_));
            if !wasi {
                return Err(PolicyError::ForbiddenImport {
                    origin: origin.to_owned(),
                    import: name.to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Every store a plugin runs in, for `describe` as for `evaluate`, is limited, metered by
    /// fuel (a store without fuel cannot run at all), and bound to the wall-clock deadline:
    /// at each epoch tick the guest yields to the runtime, and past the deadline it traps.
    fn store(&self) -> wasmtime::Result<Store<Sandbox>> {
        let mut store = Store::new(&self.engine, Sandbox::new(&self.limits));
        store.limiter(|sandbox| &mut sandbox.meter);
        store.set_hostcall_fuel(self.limits.max_transfer_bytes);
        store.set_max_component_handles(sandbox::MAX_HANDLES);
        store.set_fuel(self.limits.fuel)?;
        store.set_epoch_deadline(1);
        let deadline = self.limits.deadline;
        store.epoch_deadline_callback(move |store| {
            if store.data().started.elapsed() >= deadline {
                return Err(wasmtime::Error::new(DeadlineExceeded));
            }
            Ok(UpdateDeadline::Yield(1))
        });
        Ok(store)
    }

    async fn describe(&self, plugin: &LoadedPlugin) -> Result<PluginDescriptor, PolicyError> {
        let origin = &plugin.origin;
        let failed = |detail: String| PolicyError::Describe {
            origin: origin.clone(),
            detail,
        };
        let mut store = self
            .store()
            .map_err(|err| PolicyError::Engine(one_line(&err)))?;
        let called = async {
            let instance = plugin.pre.instantiate_async(&mut store).await?;
            let describe = instance
                .get_typed_func::<(), (bindings::wit::Descriptor,)>(&mut store, &plugin.describe)?;
            describe.call_async(&mut store, ()).await
        }
        .await;
        let (raw,) = match called {
            Ok(raw) => raw,
            Err(err) => {
                return Err(match self.failure(origin, &err, &store) {
                    PluginFailure::ResourceLimit { detail, .. } => PolicyError::InvalidDescriptor {
                        origin: origin.clone(),
                        detail,
                    },
                    failure => failed(failure.detail()),
                });
            }
        };
        let invalid = |detail: String| PolicyError::InvalidDescriptor {
            origin: origin.clone(),
            detail,
        };
        let descriptor = lift::descriptor(raw).map_err(invalid)?;
        let kebab = !descriptor.name.is_empty()
            && descriptor
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !kebab {
            return Err(invalid(format!(
                "name {:?} is not a kebab-case name of at most 64 characters",
                descriptor.name
            )));
        }
        if descriptor.version.is_empty() {
            return Err(invalid("its version is empty".to_owned()));
        }
        if descriptor.steps.is_empty() {
            return Err(invalid(
                "it checks no steps, so it would never be asked".to_owned(),
            ));
        }
        if let Err(err) = serde_json::from_str::<serde_json::Value>(&descriptor.settings_schema) {
            return Err(invalid(format!("settings schema is not json: {err}")));
        }
        Ok(descriptor)
    }

    /// One evaluation in a fresh store: nothing a plugin did in an earlier call survives, and
    /// a plugin that broke the last one runs clean in the next. Awaited on the caller's tokio
    /// runtime (WASI's host calls are async); it never blocks a runtime thread on I/O, and it
    /// yields at every epoch tick.
    pub async fn evaluate(
        &self,
        plugin: &LoadedPlugin,
        context: &PolicyContext,
    ) -> Result<Evaluation, PluginFailure> {
        let name = &plugin.descriptor.name;
        let mut store = self.store().map_err(|err| PluginFailure::Unloadable {
            plugin: name.clone(),
            detail: one_line(&err),
        })?;
        let input = bindings::context(context);
        let called = async {
            let instance = plugin.pre.instantiate_async(&mut store).await?;
            let evaluate = instance
                .get_typed_func::<(&bindings::wit::Context,), (bindings::wit::Decision,)>(
                    &mut store,
                    &plugin.evaluate,
                )?;
            evaluate.call_async(&mut store, (&input,)).await
        }
        .await;
        let (raw,) = match called {
            Ok(raw) => raw,
            Err(err) => return Err(self.failure(name, &err, &store)),
        };
        let decision = lift::decision(raw, &self.limits).map_err(|bad| match bad {
            lift::Bad::TooLarge(detail) => PluginFailure::ResourceLimit {
                plugin: name.clone(),
                detail,
            },
            lift::Bad::Invalid(detail) => PluginFailure::InvalidOutput {
                plugin: name.clone(),
                detail,
            },
        })?;
        let elapsed = store.data().started.elapsed();
        if matches!(&decision.verdict, Verdict::Deny(reasons) if reasons.is_empty()) {
            return Err(PluginFailure::InvalidOutput {
                plugin: name.clone(),
                detail: "a deny without a reason".to_owned(),
            });
        }
        Ok(Evaluation {
            plugin: name.clone(),
            version: plugin.descriptor.version.clone(),
            digest: plugin.digest.clone(),
            decision,
            elapsed,
        })
    }

    /// Names what stopped a plugin, in one line: the limit it hit, or the trap or error and
    /// what the plugin wrote to stderr before it (a Rust guest's panic message).
    fn failure(
        &self,
        plugin: &str,
        err: &wasmtime::Error,
        store: &Store<Sandbox>,
    ) -> PluginFailure {
        let plugin = plugin.to_owned();
        if let Some(refusal) = store.data().meter.refused {
            return PluginFailure::ResourceLimit {
                plugin,
                detail: refusal.to_string(),
            };
        }
        if lift::is_transfer_limit(err) {
            return PluginFailure::ResourceLimit {
                plugin,
                detail: format!(
                    "it handed the host more than {} bytes at once",
                    self.limits.max_transfer_bytes
                ),
            };
        }
        if err.downcast_ref::<DeadlineExceeded>().is_some() {
            return PluginFailure::TimedOut {
                plugin,
                limit_ms: u64::try_from(self.limits.deadline.as_millis()).unwrap_or(u64::MAX),
            };
        }
        let said = text::one_line(&store.data().stderr.text(), 300);
        let with_stderr = |detail: String| {
            if said.is_empty() {
                detail
            } else {
                format!("{detail} (stderr: {said})")
            }
        };
        if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
            return PluginFailure::Trapped {
                plugin,
                detail: with_stderr(format!("it exited with status {}", exit.0)),
            };
        }
        match err.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => PluginFailure::OutOfFuel {
                plugin,
                fuel: self.limits.fuel,
            },
            Some(Trap::StackOverflow) => PluginFailure::ResourceLimit {
                plugin,
                detail: format!(
                    "wasm stack exhausted (limit {} bytes)",
                    self.limits.max_wasm_stack
                ),
            },
            Some(trap) => PluginFailure::Trapped {
                plugin,
                detail: with_stderr(trap.to_string()),
            },
            // Not a trap: the result could not be read as the contract says (a string that is
            // not UTF-8, a discriminant out of range), or a host call refused what the guest
            // asked (a random request over the limit, a handle it does not own).
            None if unreadable(err) => PluginFailure::InvalidOutput {
                plugin,
                detail: one_line(err),
            },
            None => PluginFailure::Trapped {
                plugin,
                detail: with_stderr(one_line(err)),
            },
        }
    }
}

/// Whether wasmtime could not read a value the plugin returned.
fn unreadable(err: &wasmtime::Error) -> bool {
    err.chain()
        .any(|cause| cause.is::<std::str::Utf8Error>() || cause.to_string().starts_with("invalid"))
}

/// An error and its causes on one line, without wasmtime's backtrace header.
fn one_line(err: &wasmtime::Error) -> String {
    let parts: Vec<String> = err
        .chain()
        .map(|cause| text::one_line(&cause.to_string(), 500))
        .filter(|part| {
            !part.is_empty() && !part.starts_with("error while executing at wasm backtrace")
        })
        .collect();
    if parts.is_empty() {
        "unknown error".to_owned()
    } else {
        parts.join(": ")
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
