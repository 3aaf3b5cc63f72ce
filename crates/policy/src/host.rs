use std::time::{Duration, Instant};

use switchyard_core::policy::{
    Decision, Evaluation, PluginDescriptor, PluginFailure, PolicyContext, Verdict,
};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Precompiled, ResourceLimiter, Store, Trap};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use crate::bindings::{self, PolicyPre};
use crate::error::PolicyError;

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

/// What one evaluation may use. Exceeding any of them fails the step closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wasm instructions (roughly) per evaluation. The bundled policies use well under 1%.
    pub fuel: u64,
    /// Linear memory per instance, in bytes.
    pub memory_bytes: usize,
    /// Native stack the plugin's wasm frames may use, in bytes.
    pub max_wasm_stack: usize,
    /// The size of a decision (reasons and warnings, in bytes of text).
    pub max_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 50_000_000,
            memory_bytes: 32 << 20,
            max_wasm_stack: 512 << 10,
            max_output_bytes: 64 << 10,
        }
    }
}

/// A plugin ready to run: checked against the contract, linked, described.
pub struct LoadedPlugin {
    pub descriptor: PluginDescriptor,
    /// Where it came from (a file path), for messages.
    pub origin: String,
    pre: PolicyPre<Sandbox>,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("descriptor", &self.descriptor)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// The store's data for one evaluation: WASI with nothing granted, and the memory limiter.
pub struct Sandbox {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Refuses memory growth past the cap and remembers that it did, so that the trap that follows
/// (an allocator aborting) is reported as what it is.
struct MemoryLimiter {
    memory_bytes: usize,
    refused: Option<usize>,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.refused = Some(desired);
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }

    fn instances(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        8
    }

    fn tables(&self) -> usize {
        64
    }
}

/// A clock stopped at the Unix epoch: plugins get time only from `context.now`, so a decision
/// is a function of its context and fixtures replay exactly.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }

    fn now(&self) -> u64 {
        0
    }
}

fn sandbox(limits: &Limits) -> Sandbox {
    // The builder's defaults already grant nothing: stdin closed, stdout and stderr discarded,
    // no environment, no arguments, no preopened directory. Clocks and networking are closed
    // here explicitly (sockets are not even importable; see ALLOWED_WASI).
    let wasi = WasiCtx::builder()
        .wall_clock(FrozenClock)
        .monotonic_clock(FrozenClock)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build();
    Sandbox {
        wasi,
        table: ResourceTable::new(),
        limiter: MemoryLimiter {
            memory_bytes: limits.memory_bytes,
            refused: None,
        },
    }
}

fn engine_config(limits: &Limits) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.consume_fuel(true);
    config.max_wasm_stack(limits.max_wasm_stack);
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

impl PluginHost {
    pub fn new(limits: Limits) -> Result<Self, PolicyError> {
        let engine =
            Engine::new(&engine_config(&limits)).map_err(|e| PolicyError::Engine(e.to_string()))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| PolicyError::Engine(e.to_string()))?;
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
    /// [`precompile`] with the same wasmtime and limits, for this machine).
    pub fn load(&self, origin: &str, bytes: &[u8]) -> Result<LoadedPlugin, PolicyError> {
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
        let pre =
            self.linker
                .instantiate_pre(&component)
                .map_err(|err| PolicyError::NotAComponent {
                    origin: origin.to_owned(),
                    detail: format!("{err:#}"),
                })?;
        let pre = PolicyPre::new(pre).map_err(|err| PolicyError::NotAComponent {
            origin: origin.to_owned(),
            detail: format!("it does not export the {CONTRACT} world: {err:#}"),
        })?;
        let descriptor = self.describe(origin, &pre)?;
        Ok(LoadedPlugin {
            descriptor,
            origin: origin.to_owned(),
            pre,
        })
    }

    #[cfg(feature = "compile")]
    fn compile(&self, origin: &str, bytes: &[u8]) -> Result<Component, PolicyError> {
        Component::new(&self.engine, bytes).map_err(|err| PolicyError::NotAComponent {
            origin: origin.to_owned(),
            detail: format!("{err:#}"),
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
                detail: format!("{err:#}"),
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

    fn describe(
        &self,
        origin: &str,
        pre: &PolicyPre<Sandbox>,
    ) -> Result<PluginDescriptor, PolicyError> {
        let mut store = self
            .store()
            .map_err(|err| PolicyError::Engine(err.to_string()))?;
        let described = pre
            .instantiate(&mut store)
            .and_then(|policy| policy.call_describe(&mut store))
            .map_err(|err| PolicyError::Describe {
                origin: origin.to_owned(),
                detail: format!("{err:#}"),
            })?;
        let descriptor = bindings::descriptor(described);
        let invalid = |detail: String| PolicyError::InvalidDescriptor {
            origin: origin.to_owned(),
            detail,
        };
        let kebab = !descriptor.name.is_empty()
            && descriptor.name.len() <= 64
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
        if descriptor.version.is_empty() || descriptor.version.len() > 64 {
            return Err(invalid(format!("version {:?}", descriptor.version)));
        }
        if let Err(err) = serde_json::from_str::<serde_json::Value>(&descriptor.settings_schema) {
            return Err(invalid(format!("settings schema is not json: {err}")));
        }
        Ok(descriptor)
    }

    /// Every store a plugin runs in, for `describe` as for `evaluate`, is limited and metered:
    /// with fuel consumption on, a store without fuel cannot run at all.
    fn store(&self) -> wasmtime::Result<Store<Sandbox>> {
        let mut store = Store::new(&self.engine, sandbox(&self.limits));
        store.limiter(|sandbox| &mut sandbox.limiter);
        store.set_fuel(self.limits.fuel)?;
        Ok(store)
    }

    /// One evaluation in a fresh store: nothing a plugin did in an earlier call survives, and
    /// a plugin that broke the last one runs clean in the next.
    pub fn evaluate(
        &self,
        plugin: &LoadedPlugin,
        context: &PolicyContext,
    ) -> Result<Evaluation, PluginFailure> {
        let name = &plugin.descriptor.name;
        let started = Instant::now();
        let mut store = self.store().map_err(|err| PluginFailure::Unloadable {
            plugin: name.clone(),
            detail: format!("{err:#}"),
        })?;
        let input = bindings::context(context);
        let result = plugin
            .pre
            .instantiate(&mut store)
            .and_then(|policy| policy.call_evaluate(&mut store, &input));
        let decision = match result {
            Ok(decision) => bindings::decision(decision),
            Err(err) => return Err(self.failure(name, &err, &store)),
        };
        let elapsed = started.elapsed();
        self.check_output(name, &decision)?;
        Ok(Evaluation {
            plugin: name.clone(),
            version: plugin.descriptor.version.clone(),
            decision,
            elapsed,
        })
    }

    fn failure(
        &self,
        plugin: &str,
        err: &wasmtime::Error,
        store: &Store<Sandbox>,
    ) -> PluginFailure {
        let plugin = plugin.to_owned();
        if let Some(desired) = store.data().limiter.refused {
            return PluginFailure::ResourceLimit {
                plugin,
                detail: format!(
                    "memory would grow to {desired} bytes, over the limit of {} bytes",
                    self.limits.memory_bytes
                ),
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
                detail: format!("{trap}: {}", first_line(err)),
            },
            // Not a trap: the call returned, but its result could not be read as the contract
            // says (a string that is not UTF-8, a discriminant out of range, a bad pointer).
            None => PluginFailure::InvalidOutput {
                plugin,
                detail: first_line(err),
            },
        }
    }

    fn check_output(&self, plugin: &str, decision: &Decision) -> Result<(), PluginFailure> {
        let reasons: &[String] = match &decision.verdict {
            Verdict::Allow => &[],
            Verdict::Deny(reasons) => reasons,
        };
        let size: usize = reasons
            .iter()
            .chain(&decision.warnings)
            .map(String::len)
            .sum();
        if size > self.limits.max_output_bytes {
            return Err(PluginFailure::ResourceLimit {
                plugin: plugin.to_owned(),
                detail: format!(
                    "decision of {size} bytes, over the limit of {} bytes",
                    self.limits.max_output_bytes
                ),
            });
        }
        if matches!(&decision.verdict, Verdict::Deny(reasons) if reasons.is_empty()) {
            return Err(PluginFailure::InvalidOutput {
                plugin: plugin.to_owned(),
                detail: "a deny without a reason".to_owned(),
            });
        }
        Ok(())
    }
}

fn first_line(err: &wasmtime::Error) -> String {
    format!("{err:#}")
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}
