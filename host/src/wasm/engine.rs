//! The one wasmtime [`Engine`] of a host, its [`Linker`] and the epoch ticker that enforces
//! call timeouts.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine};

use super::bindings::Handler;
use super::cache::ComponentCache;
use super::state::CallState;

/// Interval of the epoch ticker: a running call yields and checks its deadline this often.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

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
        let engine = Engine::new(&config)?;

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
