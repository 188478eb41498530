//! What a [`wasmtime::Store`] holds during one call: the sandboxed WASI context, the memory
//! cap, the handler's shared context and the buffer of effects the call has produced.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};

use watchtower_events::{Envelope, stream_key, wire};

use super::output::GuestOutput;
use crate::config::SandboxGrants;

/// What every call of one handler shares: its identity, settings and state location.
pub struct HandlerContext {
    /// The handler's name (log tag, kv hash name).
    pub name: String,
    /// Key namespace of the host.
    pub namespace: String,
    /// The Redis hash holding this handler's kv state.
    pub kv_key: String,
    /// The handler's `[handler.config]` table.
    pub config: BTreeMap<String, String>,
    /// Connection used for kv reads during calls.
    pub redis: redis::aio::ConnectionManager,
    /// What the sandbox grants beyond computation (nothing by default).
    pub sandbox: SandboxGrants,
}

/// The entry a call is handling, as far as effects need to know it.
#[derive(Debug, Clone, Default)]
pub struct SourceEvent {
    /// Stream the entry came from.
    pub stream: String,
    /// Stream entry id.
    pub entry_id: String,
    /// The event's `event_id`.
    pub event_id: String,
    /// Correlation id that published events inherit: the source's, or its event id.
    pub correlation_id: String,
}

/// One event a handler asked to publish, encoded and ready for `XADD`.
#[derive(Debug, Clone)]
pub struct PendingPublish {
    /// Target stream key.
    pub stream: String,
    /// The new event's id (empty for a dead letter, which keeps the original's fields).
    pub event_id: String,
    /// The entry's fields, in order.
    pub fields: Vec<(Cow<'static, str>, Vec<u8>)>,
}

impl PendingPublish {
    /// An event in the wire format, appended to the stream of its type.
    pub fn event(namespace: &str, envelope: &Envelope) -> Self {
        PendingPublish {
            stream: stream_key(namespace, &envelope.event_type),
            event_id: envelope.event_id.clone(),
            fields: wire::encode(envelope)
                .into_iter()
                .map(|(k, v)| (Cow::Borrowed(k), v.into_bytes()))
                .collect(),
        }
    }
}

/// Effects buffered during a call; committed with the ack only if the call succeeds.
#[derive(Debug, Default, Clone)]
pub struct Effects {
    /// Events to append, in the order the handler published them.
    pub publishes: Vec<PendingPublish>,
    /// Final value per kv key: `Some` sets it, `None` deletes it.
    pub kv: BTreeMap<String, Option<String>>,
}

impl Effects {
    /// True when committing would only acknowledge the entry.
    pub fn is_empty(&self) -> bool {
        self.publishes.is_empty() && self.kv.is_empty()
    }
}

/// The kv writes of calls that succeeded earlier in the same batch and are waiting for the
/// batch's commit. Kv reads consult it before Redis, so each call sees the state the calls
/// before it produced, exactly as if every entry had been committed one by one.
///
/// While one batch is committed the next is already handled; its overlay sits
/// [`above`](KvOverlay::above) the committing batch's, so the writes still on their way to
/// Redis are seen too.
#[derive(Debug, Clone, Default)]
pub struct KvOverlay {
    own: Writes,
    below: Option<Writes>,
}

type Writes = Arc<Mutex<HashMap<String, Option<String>>>>;

impl KvOverlay {
    /// An empty overlay for the next batch whose reads fall through to this batch's
    /// writes (only this batch's: an earlier batch has committed by the time this one
    /// commits).
    pub fn above(&self) -> KvOverlay {
        KvOverlay {
            own: Writes::default(),
            below: Some(self.own.clone()),
        }
    }

    /// The pending value of `key`: `Some(None)` if it was deleted, `None` if not touched.
    pub fn get(&self, key: &str) -> Option<Option<String>> {
        let lookup = |writes: &Writes| {
            writes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(key)
                .cloned()
        };
        lookup(&self.own).or_else(|| self.below.as_ref().and_then(lookup))
    }

    /// Adds the writes of a call that succeeded.
    pub fn absorb(&self, writes: &BTreeMap<String, Option<String>>) {
        if writes.is_empty() {
            return;
        }
        let mut map = self.own.lock().unwrap_or_else(PoisonError::into_inner);
        for (key, value) in writes {
            map.insert(key.clone(), value.clone());
        }
    }
}

/// Caps linear memory and remembers that the cap was hit, so the call's failure is
/// reported as "memory limit" rather than as whatever the guest did when allocation failed.
pub struct MemoryCap {
    limit: usize,
    /// Set when a growth past `limit` was refused.
    pub exceeded: bool,
}

/// Raised (as a trap) when a guest grows memory past its cap.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded (tried to grow to {desired} bytes)")]
pub struct MemoryLimitExceeded {
    /// The cap.
    pub limit: usize,
    /// The size the guest asked for.
    pub desired: usize,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.exceeded = true;
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                limit: self.limit,
                desired,
            }));
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
}

/// The data of an instance's store. The sandbox and memory cap live as long as the instance;
/// the source, overlay, effects and deadline are set anew for every call ([`CallState::begin`]).
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// The memory cap of this instance.
    pub limits: MemoryCap,
    /// Shared handler context.
    pub handler: Arc<HandlerContext>,
    /// Short version label of the component this instance runs.
    pub version: Arc<str>,
    /// The entry being handled.
    pub source: SourceEvent,
    /// Uncommitted kv writes of earlier calls in the batch.
    pub overlay: KvOverlay,
    /// What the call has asked to do so far.
    pub effects: Effects,
    /// When the current call must stop.
    pub deadline: std::time::Instant,
    /// The guest's stdout, logged after each call.
    pub stdout: GuestOutput,
    /// The guest's stderr, logged after each call.
    pub stderr: GuestOutput,
}

impl CallState {
    /// A sandbox with no filesystem, network, environment or arguments beyond what the
    /// handler's grants name; stdout and stderr are captured for the log. Fails only when a
    /// granted directory cannot be opened.
    pub fn new(
        handler: Arc<HandlerContext>,
        version: Arc<str>,
        memory_limit: usize,
    ) -> std::io::Result<Self> {
        let stdout = GuestOutput::default();
        let stderr = GuestOutput::default();
        let grants = &handler.sandbox;
        let mut builder = WasiCtx::builder();
        builder.stdout(stdout.clone()).stderr(stderr.clone());
        if !grants.env.is_empty() {
            let env: Vec<(&String, &String)> = grants.env.iter().collect();
            builder.envs(&env);
        }
        if !grants.args.is_empty() {
            builder.args(&grants.args);
        }
        for (guest, host) in &grants.dirs {
            builder
                .preopened_dir(host, guest, FsPerms::ReadOnly)
                .map_err(|e| std::io::Error::other(format!("{}: {e}", host.display())))?;
        }
        if grants.network {
            builder.inherit_network().allow_ip_name_lookup(true);
        } else {
            builder
                .allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false);
        }
        let wasi = builder.build();
        Ok(CallState {
            wasi,
            table: ResourceTable::new(),
            limits: MemoryCap {
                limit: memory_limit,
                exceeded: false,
            },
            handler,
            version,
            source: SourceEvent::default(),
            overlay: KvOverlay::default(),
            effects: Effects::default(),
            deadline: std::time::Instant::now(),
            stdout,
            stderr,
        })
    }

    /// Prepares the state for a call handling `source` that must end by `deadline`.
    pub fn begin(&mut self, source: SourceEvent, overlay: KvOverlay, deadline: std::time::Instant) {
        self.source = source;
        self.overlay = overlay;
        self.effects = Effects::default();
        self.deadline = deadline;
        self.limits.exceeded = false;
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
