//! One sandboxed call of `handle`: a fresh store with a deadline and a memory cap, an
//! instance from the handler's `InstancePre`, the call, and a verdict that says exactly how
//! it ended. The store (and with it the instance) is dropped after the call, trapped or not.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Store, Trap, UpdateDeadline};

use super::bindings::{Event, HandleError};
use super::component::LoadedHandler;
use super::engine::WasmRuntime;
use super::host_api::KvUnavailable;
use super::state::{
    CallState, Effects, HandlerContext, KvOverlay, MemoryLimitExceeded, SourceEvent,
};

/// Limits applied to every call of a handler.
#[derive(Debug, Clone, Copy)]
pub struct CallLimits {
    /// Wall-clock limit, enforced by epoch interruption.
    pub timeout: Duration,
    /// Linear-memory cap of the instance.
    pub memory_limit_bytes: usize,
    /// Fuel for the call, when the engine meters fuel.
    pub fuel: Option<u64>,
}

/// How a call that did not succeed ended. The effects of such a call are discarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The handler returned `retry` (transient).
    Retry(String),
    /// The handler returned `reject` (permanent).
    Reject(String),
    /// The call ran past its timeout and was interrupted.
    Timeout(Duration),
    /// The guest grew its memory past the cap.
    MemoryLimit(String),
    /// The guest trapped (a panic, `unreachable`, a stack overflow, …).
    Trap(String),
    /// A host service the call needed (a kv read) was unreachable.
    HostUnavailable(String),
    /// The call used up its fuel.
    OutOfFuel,
    /// The component could not be instantiated.
    Instantiate(String),
}

/// What a finished call produced: the buffered effects if it succeeded.
pub type CallReport = Result<Effects, Failure>;

impl WasmRuntime {
    /// Calls `handle` of `loaded` with `event` in a fresh, limited store.
    pub async fn call(
        &self,
        loaded: &LoadedHandler,
        handler: Arc<HandlerContext>,
        source: SourceEvent,
        overlay: KvOverlay,
        event: &Event,
        limits: CallLimits,
    ) -> CallReport {
        let mut store = self.new_store(handler, source, overlay, limits)?;

        let outcome = match loaded.pre.instantiate_async(&mut store).await {
            Ok(instance) => instance
                .call_handle(&mut store, event)
                .await
                .map_err(|error| classify_trap(&error, &store, limits.timeout)),
            Err(error) => Err(Failure::Instantiate(format!("{error:#}"))),
        };
        log_guest_output(store.data());

        match outcome {
            Ok(Ok(())) => Ok(std::mem::take(&mut store.data_mut().effects)),
            Ok(Err(HandleError::Retry(reason))) => Err(Failure::Retry(reason)),
            Ok(Err(HandleError::Reject(reason))) => Err(Failure::Reject(reason)),
            Err(failure) => Err(failure),
        }
    }
}

impl WasmRuntime {
    /// Instantiates `loaded` once without calling it, to find components that cannot be
    /// instantiated (a trapping start function, a memory over the limit) before any event.
    pub async fn try_instantiate(
        &self,
        loaded: &LoadedHandler,
        handler: Arc<HandlerContext>,
        limits: CallLimits,
    ) -> Result<(), Failure> {
        let source = SourceEvent {
            stream: String::new(),
            entry_id: String::new(),
            event_id: String::new(),
            correlation_id: String::new(),
        };
        let mut store = self.new_store(handler, source, KvOverlay::default(), limits)?;
        match loaded.pre.instantiate_async(&mut store).await {
            Ok(_) => Ok(()),
            Err(error) => Err(classify_trap(&error, &store, limits.timeout)),
        }
    }
}

impl WasmRuntime {
    /// A store for one call: sandbox, memory cap, deadline and (when metered) fuel.
    fn new_store(
        &self,
        handler: Arc<HandlerContext>,
        source: SourceEvent,
        overlay: KvOverlay,
        limits: CallLimits,
    ) -> Result<Store<CallState>, Failure> {
        let state = CallState::new(handler, source, overlay, limits.memory_limit_bytes)
            .map_err(|error| Failure::Instantiate(format!("sandbox: {error}")))?;
        let mut store = Store::new(self.engine(), state);
        store.limiter(|state| &mut state.limits);
        // At every epoch tick the call yields to the async runtime, so a long call never
        // starves the tasks sharing its worker thread (signals, reads, other handlers), and
        // is interrupted once its wall-clock deadline has passed.
        let deadline = Instant::now() + limits.timeout;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            Ok(if Instant::now() >= deadline {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Yield(1)
            })
        });
        if self.fuel_metered() {
            // Metering is engine-wide; handlers without a budget get an unlimited one.
            store
                .set_fuel(limits.fuel.unwrap_or(u64::MAX))
                .map_err(|error| Failure::Instantiate(format!("fuel: {error}")))?;
        }
        Ok(store)
    }
}

/// Names the cause of a trap; a guest panic message on stderr is the best description of
/// a trap, so it is used when present.
fn classify_trap(error: &wasmtime::Error, store: &Store<CallState>, timeout: Duration) -> Failure {
    if store.data().limits.exceeded {
        let detail = error
            .downcast_ref::<MemoryLimitExceeded>()
            .map(ToString::to_string)
            .unwrap_or_else(|| "memory limit exceeded".to_owned());
        return Failure::MemoryLimit(detail);
    }
    if let Some(kv) = error.downcast_ref::<KvUnavailable>() {
        return Failure::HostUnavailable(kv.to_string());
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => return Failure::Timeout(timeout),
        Some(Trap::OutOfFuel) => return Failure::OutOfFuel,
        _ => {}
    }
    let trap = error
        .downcast_ref::<Trap>()
        .map(ToString::to_string)
        .unwrap_or_else(|| format!("{error:#}"));
    // Rust guests print `thread '…' panicked at FILE:LINE:COL:` and the message on the
    // next line.
    let stderr = store.data().stderr.contents();
    let text = String::from_utf8_lossy(&stderr);
    let lines: Vec<&str> = text.lines().collect();
    let panic_line = lines
        .iter()
        .rposition(|line| line.contains("panicked at"))
        .map(|i| match lines.get(i + 1) {
            Some(message) => format!("{} {}", lines[i].trim_end(), message.trim()),
            None => lines[i].to_owned(),
        });
    match panic_line {
        // The panic says more than "`unreachable` executed", which is how every panic ends.
        Some(line) => {
            let from = line.find("panicked at").unwrap_or(0);
            Failure::Trap(line[from..].to_owned())
        }
        None => Failure::Trap(trap),
    }
}

/// Sends what the guest printed to the log, one record per line, tagged with the handler.
fn log_guest_output(state: &CallState) {
    let handler = state.handler.name.as_str();
    let entry = state.source.entry_id.as_str();
    for (stream, pipe) in [("stdout", &state.stdout), ("stderr", &state.stderr)] {
        let bytes = pipe.contents();
        if bytes.is_empty() {
            continue;
        }
        for line in String::from_utf8_lossy(&bytes).lines() {
            tracing::info!(target: "guest", handler, entry, stream, "{line}");
        }
    }
}
