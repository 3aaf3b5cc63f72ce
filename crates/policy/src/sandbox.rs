//! The store a plugin runs in: WASI with nothing granted, the resource meter, and the pieces of
//! WASI this host implements itself so that no call into the sandbox can block, sleep, or
//! allocate on the plugin's behalf.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::SeedableRng;
use rand::rngs::StdRng;
use wasmtime::ResourceLimiter;
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{DynPollable, OutputStream, Pollable, StreamResult, subscribe};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use crate::host::Limits;

/// The seed of every evaluation's `wasi:random` (secure and insecure alike). Randomness in a
/// plugin is a fixed sequence: a decision is a function of its context alone, and a fixture
/// replays exactly.
pub const RANDOM_SEED: u64 = 0x5377_6974_6368_7964; // "Switchyd"

/// The most `get-random-bytes` hands out in one call; a larger request traps. It keeps a guest
/// from making the host allocate for it (the host builds the list before it is copied in).
pub const MAX_RANDOM_BYTES: u64 = 64 << 10;

/// How much of what a plugin writes to stderr is kept, to name the cause when it fails (a Rust
/// guest's panic message is written there before it aborts). The rest is discarded; stdout
/// is discarded whole.
pub const STDERR_KEPT: usize = 4 << 10;

/// The WASI `monotonic-clock` interface as the host's linker names it. Its `subscribe-*`
/// functions are replaced (see [`link`]).
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// The store's data for one evaluation.
pub struct Sandbox {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) meter: Meter,
    pub(crate) stderr: Captured,
    /// When the call started, for the wall-clock deadline.
    pub(crate) started: Instant,
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl Sandbox {
    pub fn new(limits: &Limits) -> Self {
        let stderr = Captured::new(STDERR_KEPT);
        // The builder's defaults already grant nothing: stdin closed, no environment, no
        // arguments, no preopened directory. Clocks, randomness, output and networking are
        // closed or made deterministic here (sockets are not even importable).
        let wasi = WasiCtx::builder()
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .secure_random(StdRng::seed_from_u64(RANDOM_SEED))
            .insecure_random(StdRng::seed_from_u64(RANDOM_SEED.rotate_left(32)))
            .insecure_random_seed(u128::from(RANDOM_SEED))
            .max_random_size(MAX_RANDOM_BYTES)
            .stdout(Captured::new(0))
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_HANDLES);
        Sandbox {
            wasi,
            table,
            meter: Meter::new(limits),
            stderr,
            started: Instant::now(),
        }
    }
}

/// Links WASI into `linker` for async calls, then replaces the monotonic clock's
/// subscriptions: time does not pass inside a plugin (its clock is frozen), so a sleep or a
/// timed poll is over at once rather than holding the host for as long as the guest asks.
pub fn link(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap("subscribe-duration", |mut store, (_,): (u64,)| {
        elapsed(store.data_mut()).map(|pollable| (pollable,))
    })?;
    clock.func_wrap("subscribe-instant", |mut store, (_,): (u64,)| {
        elapsed(store.data_mut()).map(|pollable| (pollable,))
    })?;
    linker.allow_shadowing(false);
    Ok(())
}

fn elapsed(sandbox: &mut Sandbox) -> wasmtime::Result<Resource<DynPollable>> {
    let ready = sandbox.table.push(Elapsed)?;
    subscribe(&mut sandbox.table, ready)
}

/// A deadline that has already passed.
struct Elapsed;

#[wasmtime_wasi::async_trait]
impl Pollable for Elapsed {
    async fn ready(&mut self) {}
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

/// An output stream that keeps the first `keep` bytes written to it and accepts, and drops,
/// the rest: writing never blocks, never fails, and never grows the host past `keep`.
#[derive(Clone)]
pub struct Captured {
    kept: Arc<Mutex<Vec<u8>>>,
    keep: usize,
}

impl Captured {
    fn new(keep: usize) -> Self {
        Captured {
            kept: Arc::new(Mutex::new(Vec::new())),
            keep,
        }
    }

    fn append(&self, bytes: &[u8]) {
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let room = self.keep.saturating_sub(kept.len());
        kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// `count` zero bytes, as many as fit; the guest chooses `count`, so nothing is allocated
    /// for the ones that do not.
    fn append_zeroes(&self, count: usize) {
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let room = self.keep.saturating_sub(kept.len());
        let new_len = kept.len() + count.min(room);
        kept.resize(new_len, 0);
    }

    /// What was kept, as text.
    pub fn text(&self) -> String {
        let kept = self
            .kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        String::from_utf8_lossy(&kept).into_owned()
    }
}

impl IsTerminal for Captured {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Captured {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Captured {
    async fn ready(&mut self) {}
}

impl OutputStream for Captured {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }

    /// WASI's default allocates the zeroes the guest asks for (up to the permit) before it
    /// writes them; this keeps what fits and allocates nothing for the rest.
    fn write_zeroes(&mut self, count: usize) -> StreamResult<()> {
        self.append_zeroes(count);
        Ok(())
    }
}

/// How much a plugin may write to stdout or stderr at once (WASI's write permit).
const WRITE_PERMIT: usize = 64 << 10;

impl tokio::io::AsyncWrite for Captured {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// What an evaluation may hold at once, summed over every memory and table its instances
/// create: a component may bring several core modules, each with its own memory, and the cap
/// is for the evaluation, not for each of them.
pub struct Meter {
    memory_cap: usize,
    memory_used: usize,
    table_cap: usize,
    table_used: usize,
    /// The first growth refused, to report the trap that follows as what it is.
    pub(crate) refused: Option<Refusal>,
}

#[derive(Debug, Clone, Copy)]
pub enum Refusal {
    Memory { total: usize, cap: usize },
    Table { total: usize, cap: usize },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Memory { total, cap } => write!(
                f,
                "memory would grow to {total} bytes in all, over the limit of {cap} bytes"
            ),
            Refusal::Table { total, cap } => write!(
                f,
                "tables would grow to {total} elements in all, over the limit of {cap}"
            ),
        }
    }
}

impl Meter {
    fn new(limits: &Limits) -> Self {
        Meter {
            memory_cap: limits.memory_bytes,
            memory_used: 0,
            table_cap: limits.table_elements,
            table_used: 0,
            refused: None,
        }
    }

    fn grow(used: &mut usize, cap: usize, current: usize, desired: usize) -> Result<(), usize> {
        let total = used.saturating_sub(current).saturating_add(desired);
        if total > cap {
            return Err(total);
        }
        *used = total;
        Ok(())
    }
}

impl ResourceLimiter for Meter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        match Self::grow(&mut self.memory_used, self.memory_cap, current, desired) {
            Ok(()) => Ok(true),
            Err(total) => {
                self.refused.get_or_insert(Refusal::Memory {
                    total,
                    cap: self.memory_cap,
                });
                Ok(false)
            }
        }
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        match Self::grow(&mut self.table_used, self.table_cap, current, desired) {
            Ok(()) => Ok(true),
            Err(total) => {
                self.refused.get_or_insert(Refusal::Table {
                    total,
                    cap: self.table_cap,
                });
                Ok(false)
            }
        }
    }

    fn instances(&self) -> usize {
        INSTANCES
    }

    fn memories(&self) -> usize {
        MEMORIES
    }

    fn tables(&self) -> usize {
        TABLES
    }
}

/// Host resources (streams, pollables, ...) and component handles one evaluation may hold at
/// once: a policy needs a handful; each costs the host memory the guest's own limits do not see.
pub const MAX_HANDLES: usize = 4096;

/// Core instances, memories and tables one evaluation may create (a Rust component brings a
/// handful of each; a Python one, a few dozen instances).
pub const INSTANCES: usize = 64;
pub const MEMORIES: usize = 8;
pub const TABLES: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_meter_sums_every_memory() {
        let limits = Limits {
            memory_bytes: 100,
            ..Limits::default()
        };
        let mut meter = Meter::new(&limits);
        assert!(meter.memory_growing(0, 60, None).unwrap());
        // A second memory of 60 would make 120 in all.
        assert!(!meter.memory_growing(0, 60, None).unwrap());
        assert!(matches!(
            meter.refused,
            Some(Refusal::Memory {
                total: 120,
                cap: 100
            })
        ));
        // Growing the first one within the cap still works.
        assert!(meter.memory_growing(60, 100, None).unwrap());
    }

    #[test]
    fn captured_output_keeps_only_its_share() {
        let captured = Captured::new(4);
        let mut stream = captured.clone();
        stream.write(Bytes::from_static(b"hello")).unwrap();
        stream.write(Bytes::from_static(b"world")).unwrap();
        assert_eq!(captured.text(), "hell");
    }

    #[test]
    fn a_huge_run_of_zeroes_allocates_nothing_past_what_is_kept() {
        let captured = Captured::new(4);
        let mut stream = captured.clone();
        stream.write(Bytes::from_static(b"ab")).unwrap();
        // 4 EiB: WASI's default implementation would try to allocate it.
        stream.write_zeroes(1 << 62).unwrap();
        assert_eq!(captured.text(), "ab\0\0");
        assert_eq!(stream.check_write().unwrap(), WRITE_PERMIT);
    }
}
