//! Watchtower: consumes Redis Streams through consumer groups and runs event handlers
//! compiled to WebAssembly components, each sandboxed, with its effects committed
//! atomically with the acknowledgement of the entry that caused them.
//!
//! The `watchtower` binary is a thin shell over this library; tests drive [`run`] directly.
//!
//! # Layout
//! - [`admin`]: the admin HTTP listener (health, handlers, reload).
//! - [`config`]: `watchtower.toml` + `WATCHTOWER_*` overrides, validated before connecting.
//! - [`error`]: the typed errors callers branch on (bad config, component that won't load).
//! - [`supervisor`]: [`run`]: load components, connect, one consumer per (handler, stream).
//! - [`consumer`]: the read → dispatch → commit loop of one (handler, stream).
//! - [`dispatch`]: entry → decode → call → [`dispatch::Outcome`]; keyed lanes.
//! - [`redis`]: connections, groups, `XREADGROUP`, the atomic commit.
//! - [`wasm`]: engine, component loading and type-checking, the sandboxed call, host API.
//! - [`registry`]: handlers by name and the component version serving each.
//! - [`reload`]: hot swap — load, check, canary, swap or refuse; file watching.
//! - [`publisher`], [`status`]: publishing events and reading stream/group figures.
//! - [`shutdown`], [`telemetry`]: signals and logging.
//! - `cli` (binary only): one module per subcommand.

pub mod admin;
pub mod config;
pub mod consumer;
pub mod dispatch;
pub mod error;
pub mod publisher;
pub mod redis;
pub mod registry;
pub mod reload;
pub mod shutdown;
pub mod status;
pub mod supervisor;
pub mod telemetry;
pub mod wasm;

pub use supervisor::run;
