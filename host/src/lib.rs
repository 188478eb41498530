//! Watchtower: consumes Redis Streams through consumer groups and runs event handlers
//! compiled to WebAssembly components, each sandboxed, with its effects committed
//! atomically with the acknowledgement of the entry that caused them.
//!
//! The `watchtower` binary is a thin shell over this library; tests drive [`run`] directly.
//!
//! # Layout
//! - [`admin`]: the admin HTTP listener (health, handlers, reload, the status page).
//! - [`ingest`]: the ingest HTTP listener (`POST /events/{type}`, `POST /webhooks/{source}`).
//! - [`config`]: `watchtower.toml` + `WATCHTOWER_*` overrides, validated before connecting.
//! - [`error`]: the typed errors callers branch on (bad config, component that won't load).
//! - [`supervisor`]: [`run`]: load components, connect, one consumer per (handler, stream).
//! - [`consumer`]: the read → dispatch → commit loop of one (handler, stream).
//! - [`dispatch`]: entry → decode → call → [`dispatch::Outcome`]; keyed lanes.
//! - [`redis`]: connections, groups, `XREADGROUP`, the atomic commit.
//! - [`wasm`]: engine, component loading and type-checking, the sandboxed call, host API.
//! - [`registry`]: handlers by name and the component version serving each.
//! - [`reload`]: hot swap — load, check, canary, swap or refuse; file watching.
//! - [`replay`]: re-running a window of a stream through a handler, dry or committed.
//! - [`publisher`], [`status`]: publishing events and reading stream/group figures.
//! - [`metrics`]: the Prometheus series of `GET /metrics` and the poller of stream figures.
//! - [`shutdown`], [`telemetry`]: signals and logging.
//! - `cli` (binary only): one module per subcommand.

pub mod admin;
pub mod config;
pub mod consumer;
pub mod dispatch;
pub mod error;
pub mod ingest;
pub mod metrics;
pub mod publisher;
pub mod redis;
pub mod registry;
pub mod reload;
pub mod replay;
pub mod shutdown;
pub mod status;
pub mod supervisor;
pub mod telemetry;
pub mod wasm;

pub use supervisor::run;
