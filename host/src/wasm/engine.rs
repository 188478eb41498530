//! The one wasmtime [`Engine`] of a host, its [`Linker`] and the epoch ticker that enforces
//! call timeouts.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings::Handler;
use super::cache::ComponentCache;
use super::state::CallState;

/// Interval of the epoch ticker: a running call yields and checks its deadline this often.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Instances of handlers that can be alive at once in one host (warm ones, ones in a call,
/// canaries). Each is one slot of the pooling allocator; the slots are address space
/// reserved up front, not memory.
const POOLED_INSTANCES: u32 = 1000;

/// Bytes of each slot's memory and tables kept mapped when the slot is freed (see
/// [`pooling`]); a Rust guest's stack, data and early heap fit.
const KEEP_RESIDENT_BYTES: usize = 4 << 20;

/// The shared compilation and execution environment of all handlers.
///
/// Cheap to clone: the engine and linker are reference counted, and every clone shares the
/// same epoch ticker, which stops when the last clone is dropped.
#[derive(Clone)]
pub struct WasmRuntime {
    engine: Engine,
    fuel: bool,
    cache: Option<ComponentCache>,
    linker: Arc<Linker<CallState>>,
    _ticker: Arc<EpochTicker>,
}

impl WasmRuntime {
    /// Builds the engine (component model, epoch interruption, fuel metering when `fuel`)
    /// and a linker holding WASI p2 and the `watchtower:handler/host` interface. Compiled
    /// components are cached in `cache_dir` when given.
    pub fn new(fuel: bool, cache_dir: Option<PathBuf>) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .consume_fuel(fuel)
            // Handlers are plain synchronous exports; the component-model async machinery
            // only adds cost to every call.
            .concurrency_support(false);
        // Memories, tables, instance state and call stacks come from slots mapped once and
        // reused, instead of being mapped and unmapped for every instance: a fresh instance
        // per event costs about half as much. A system that refuses the reservation (a
        // tight `ulimit -v`) gets the on-demand allocator instead.
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling()));
        let engine = match Engine::new(&config) {
            Ok(engine) => engine,
            Err(error) => {
                tracing::warn!(
                    "the pooling instance allocator is unavailable ({error:#}); \
                     instances are allocated on demand"
                );
                config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
                Engine::new(&config)?
            }
        };

        let mut linker = Linker::<CallState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        Handler::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |state| state)?;

        let ticker = EpochTicker::start(engine.clone())?;
        let cache = cache_dir.map(|dir| ComponentCache::new(dir, &engine));
        Ok(WasmRuntime {
            engine,
            fuel,
            cache,
            linker: Arc::new(linker),
            _ticker: Arc::new(ticker),
        })
    }

    /// The compiled-component cache, when enabled.
    pub fn cache(&self) -> Option<&ComponentCache> {
        self.cache.as_ref()
    }

    /// Whether calls are metered with fuel.
    pub fn fuel_metered(&self) -> bool {
        self.fuel
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The linker every component is instantiated against.
    pub fn linker(&self) -> &Linker<CallState> {
        &self.linker
    }
}

/// Slots for [`POOLED_INSTANCES`] component instances. A Rust component holds a few core
/// instances (the program, the WASI adapter, small shims), most with a memory and a table.
fn pooling() -> PoolingAllocationConfig {
    let mut pooling = PoolingAllocationConfig::new();
    pooling
        .total_component_instances(POOLED_INSTANCES)
        .total_core_instances(POOLED_INSTANCES * 4)
        .total_memories(POOLED_INSTANCES * 2)
        .total_tables(POOLED_INSTANCES * 4)
        .total_stacks(POOLED_INSTANCES)
        .max_memories_per_module(1)
        .max_tables_per_module(4);
    // Where the kernel can list the pages an instance dirtied (Linux 6.7+), a freed slot
    // is reset by copying back just those pages instead of unmapping them: no page faults
    // for the next instance and no TLB shootdowns across threads. Without that list the
    // whole kept range would be rewritten on every reset, so nothing is kept.
    if PoolingAllocationConfig::is_pagemap_scan_available() {
        pooling
            .pagemap_scan(Enabled::Yes)
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            .table_keep_resident(KEEP_RESIDENT_BYTES);
    }
    pooling
}

/// One thread for the whole host that advances the engine's epoch every [`EPOCH_TICK`], so
/// a call whose deadline passes is interrupted wherever it is in guest code.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })?;
        Ok(EpochTicker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
