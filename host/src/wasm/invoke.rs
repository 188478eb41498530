//! Instances and calls: an [`Instance`] is a store (sandbox, memory cap) plus an instance of
//! one handler version; [`WasmRuntime::call`] runs `handle` on it under a deadline (and
//! fuel) and says exactly how the call ended. Whether an instance serves another call is
//! the caller's choice; one that trapped must not ([`Failure::instance_survives`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Store, Trap, UpdateDeadline};

use super::bindings::{Event, HandleError, Handler};
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

impl Failure {
    /// Whether the instance that produced this failure may serve another call. A handler's
    /// own `retry` or `reject` leaves it intact; a trap of any kind does not.
    pub fn instance_survives(&self) -> bool {
        matches!(self, Failure::Retry(_) | Failure::Reject(_))
    }
}

/// A live instance of one version of a handler, with its store. Reusable across calls
/// until it traps, the version changes, or it has served `recycle_after` calls.
pub struct Instance {
    store: Store<CallState>,
    bindings: Handler,
    /// The version it was instantiated from.
    pub version: Arc<LoadedHandler>,
    /// Calls it has served.
    pub calls: u64,
}

impl WasmRuntime {
    /// Instantiates `loaded` in a new store with the handler's sandbox and limits.
    pub async fn instantiate(
        &self,
        loaded: &Arc<LoadedHandler>,
        handler: Arc<HandlerContext>,
        limits: CallLimits,
    ) -> Result<Instance, Failure> {
        let state = CallState::new(handler, loaded.version().into(), limits.memory_limit_bytes)
            .map_err(|error| Failure::Instantiate(format!("sandbox: {error}")))?;
        let mut store = Store::new(self.engine(), state);
        store.limiter(|state| &mut state.limits);
        // At every epoch tick a running call yields to the async runtime, so a long call
        // never starves the tasks sharing its worker thread (signals, reads, other
        // handlers), and is interrupted once its wall-clock deadline has passed.
        store.epoch_deadline_callback(|ctx| {
            Ok(if Instant::now() >= ctx.data().deadline {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Yield(1)
            })
        });
        prepare(self, &mut store, limits)?;
        match loaded.pre.instantiate_async(&mut store).await {
            Ok(bindings) => Ok(Instance {
                store,
                bindings,
                version: loaded.clone(),
                calls: 0,
            }),
            Err(error) => Err(classify_trap(&error, &store, limits.timeout)),
        }
    }

    /// Calls `handle` on `instance` with `event`, under the handler's limits.
    pub async fn call(
        &self,
        instance: &mut Instance,
        source: SourceEvent,
        overlay: KvOverlay,
        event: &Event,
        limits: CallLimits,
    ) -> CallReport {
        instance.calls += 1;
        let store = &mut instance.store;
        store.data_mut().begin(source, overlay, Instant::now());
        prepare(self, store, limits)?;
        let outcome = instance
            .bindings
            .call_handle(&mut *store, event)
            .await
            .map_err(|error| classify_trap(&error, store, limits.timeout));
        log_guest_output(store.data());
        match outcome {
            Ok(Ok(())) => Ok(std::mem::take(&mut store.data_mut().effects)),
            Ok(Err(HandleError::Retry(reason))) => Err(Failure::Retry(reason)),
            Ok(Err(HandleError::Reject(reason))) => Err(Failure::Reject(reason)),
            Err(failure) => Err(failure),
        }
    }
}

/// Arms the deadline and (when metered) the fuel of the next call or instantiation.
fn prepare(
    runtime: &WasmRuntime,
    store: &mut Store<CallState>,
    limits: CallLimits,
) -> Result<(), Failure> {
    store.data_mut().deadline = Instant::now() + limits.timeout;
    store.set_epoch_deadline(1);
    if runtime.fuel_metered() {
        // Metering is engine-wide; handlers without a budget get an unlimited one.
        store
            .set_fuel(limits.fuel.unwrap_or(u64::MAX))
            .map_err(|error| Failure::Instantiate(format!("fuel: {error}")))?;
    }
    Ok(())
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
    let stderr = store.data().stderr.peek();
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

/// Sends what the guest printed during the call to the log, one record per line, tagged
/// with the handler.
fn log_guest_output(state: &CallState) {
    let handler = state.handler.name.as_str();
    let entry = state.source.entry_id.as_str();
    for (stream, output) in [("stdout", &state.stdout), ("stderr", &state.stderr)] {
        let (bytes, dropped) = output.take();
        for line in String::from_utf8_lossy(&bytes).lines() {
            tracing::info!(target: "guest", handler, entry, stream, "{line}");
        }
        if dropped > 0 {
            tracing::warn!(target: "guest", handler, entry, stream, dropped, "guest output over 64 KiB in one call was dropped");
        }
    }
}
