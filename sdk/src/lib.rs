//! Write Watchtower event handlers in Rust.
//!
//! A handler is a `cdylib` crate that implements [`Handler`] and names its type in
//! [`export_handler!`]; `cargo build --release --target wasm32-wasip2` turns it into a
//! WebAssembly component the Watchtower host can load. This one raises an alert for trucks
//! going faster than a configured limit:
//!
//! ```no_run
//! use watchtower_guest::events::{AlertTriggered, PositionUpdated, Severity};
//! use watchtower_guest::{config, export_handler, kv, log, publish, Event, HandleError, Handler};
//!
//! struct SpeedAlert;
//!
//! impl Handler for SpeedAlert {
//!     fn handle(event: Event) -> Result<(), HandleError> {
//!         // Subscribed to `position.updated` only, but ignore anything else politely.
//!         let Some(position) = event.payload::<PositionUpdated>()? else {
//!             return Ok(());
//!         };
//!         // `[handler.config] speed_limit_kmh = "90"` in the host's watchtower.toml.
//!         let limit: f64 = config::get_or("speed_limit_kmh", 90.0)?;
//!         // State lives in kv, never in statics: instances come and go.
//!         kv::set(&format!("last_speed:{}", position.truck_id), &position.speed.to_string());
//!         if position.speed <= limit {
//!             return Ok(());
//!         }
//!         let message = format!(
//!             "truck {} at {} km/h (limit {limit})",
//!             position.truck_number, position.speed
//!         );
//!         log::info!("alert: {message}");
//!         publish(&AlertTriggered {
//!             // Derived from the event id, so a re-delivery publishes the same alert id.
//!             alert_id: format!("speeding-{}", event.event_id()),
//!             alert_type: "speeding".into(),
//!             severity: Severity::Warning,
//!             truck_id: Some(position.truck_id),
//!             trip_id: None,
//!             message,
//!         })?;
//!         Ok(())
//!     }
//! }
//!
//! export_handler!(SpeedAlert);
//! ```
//!
//! Its `Cargo.toml` makes it a `cdylib` that depends on this crate:
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! watchtower-guest = { path = "../sdk" }
//! ```
//!
//! # What the host guarantees
//!
//! Everything a call does through [`publish`](mod@publish) and [`kv`] is buffered and
//! committed together with the acknowledgement of the entry, only when [`Handler::handle`]
//! returns `Ok`. An error, a panic (which traps the instance) or a timeout commits nothing,
//! and the entry is delivered again ([`HandleError::Retry`], traps, timeouts) or
//! dead-lettered ([`HandleError::Reject`], or too many attempts). Delivery is at least once,
//! so a handler should give the same result when it sees the same event twice: derive ids
//! from [`Event::event_id`], check state in [`kv`] before acting.
//!
//! Handlers run sandboxed, with no file system, network or environment unless the host's
//! config grants them; an instance's memory may be dropped between any two events.
//!
//! # Building natively
//!
//! The crate compiles for the host's own target too, so a workspace build or `cargo clippy`
//! covers it, and the pure parts of a handler (reading an [`Event`] built with
//! [`Event::new`]) can be unit-tested with `cargo test`. Functions that call the host
//! ([`kv`], [`config`], [`log`], [`publish`](mod@publish)) panic when called off wasm32.
//!
//! # Layout
//!
//! - [`Handler`], [`export_handler!`] (`export.rs`): the trait a handler implements and the
//!   macro that exports it.
//! - [`Event`] (`event.rs`): the delivered event; typed payloads via [`Event::data`] and
//!   [`Event::payload`].
//! - [`HandleError`], [`ResultExt`] (`error.rs`): retry versus reject.
//! - [`publish`](mod@publish), [`kv`], [`config`], [`log`]: the host's services, one module each.
//! - [`events`]: the event types and typed payloads (the `watchtower-events` crate).
//! - `bindings` (hidden): the code wit-bindgen generates from `wit/handler.wit`.

#![deny(missing_docs)]

#[doc(hidden)]
pub mod bindings;
pub mod config;
mod error;
mod event;
#[doc(hidden)]
pub mod export;
pub mod kv;
pub mod log;
pub mod publish;

pub use error::{HandleError, ResultExt};
pub use event::Event;
pub use export::Handler;
pub use publish::{PublishError, publish, publish_raw};

/// The event types, constants and typed payloads shared with the host (the
/// `watchtower-events` crate).
pub use watchtower_events as events;

/// JSON support, re-exported so that handlers building payloads with
/// [`json!`](serde_json::json) or reading [`Event::json`] need no dependency of their own.
pub use serde_json;
