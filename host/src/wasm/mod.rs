//! Running handler components: the engine and linker ([`engine`]), loading and type-checking
//! a `.wasm` ([`component`]), the per-call store ([`state`]), the host interface the guest
//! imports ([`host_api`]) and one sandboxed call ([`invoke`]).

pub mod bindings;
pub mod cache;
pub mod component;
pub mod engine;
pub mod host_api;
pub mod invoke;
pub mod output;
pub mod state;

pub use component::{LoadedHandler, VersionStats};
pub use engine::WasmRuntime;
pub use invoke::{CallLimits, CallReport, Failure, Instance};
pub use state::{Effects, HandlerContext, KvOverlay, PendingPublish, SourceEvent};
