//! From a stream entry to an [`Outcome`]: decode the wire format, call the handler's
//! current version, and decide what happens to the entry ([`outcome::decide`]).

pub mod lanes;
pub mod outcome;

use std::sync::Arc;

use watchtower_events::wire;

pub use outcome::{Attempt, Outcome, decide};

use crate::redis::StreamEntry;
use crate::registry::HandlerEntry;
use crate::wasm::bindings::Event;
use crate::wasm::{Effects, KvOverlay, SourceEvent, WasmRuntime};

/// The result of handling one entry.
#[derive(Debug)]
pub struct Handled {
    /// The entry id.
    pub entry_id: String,
    /// What happens to it next.
    pub outcome: Outcome,
    /// The effects to commit when `outcome` is [`Outcome::Ack`].
    pub effects: Effects,
    /// The event's `event_id`, when the entry could be decoded.
    pub event_id: Option<String>,
}

/// Handles entries of one stream for one handler.
#[derive(Clone)]
pub struct Dispatcher {
    runtime: WasmRuntime,
    handler: Arc<HandlerEntry>,
    stream: Arc<str>,
    event_type: Arc<str>,
}

impl Dispatcher {
    /// A dispatcher for entries of `stream` (holding events of `event_type`).
    pub fn new(
        runtime: WasmRuntime,
        handler: Arc<HandlerEntry>,
        stream: &str,
        event_type: &str,
    ) -> Self {
        Dispatcher {
            runtime,
            handler,
            stream: stream.into(),
            event_type: event_type.into(),
        }
    }

    /// The handler this dispatcher calls.
    pub fn handler(&self) -> &Arc<HandlerEntry> {
        &self.handler
    }

    /// Decodes and handles one entry. Never fails: every failure is an [`Outcome`].
    /// `overlay` holds the uncommitted kv writes of the batch so far; a successful call's
    /// writes are added to it.
    pub async fn handle(&self, entry: &StreamEntry, overlay: &KvOverlay) -> Handled {
        let config = &self.handler.config;
        let Some(fields) = &entry.fields else {
            return self.finish(entry, &Attempt::Deleted, Effects::default(), None);
        };
        let envelope = match wire::decode(fields, Some(&self.event_type)) {
            Ok(envelope) => envelope,
            Err(error) => {
                tracing::warn!(
                    handler = %config.name,
                    stream = %self.stream,
                    entry = %entry.id,
                    field = error.field(),
                    "malformed entry: {error}"
                );
                return self.finish(entry, &Attempt::Malformed(&error), Effects::default(), None);
            }
        };

        let source = SourceEvent {
            stream: self.stream.to_string(),
            entry_id: entry.id.clone(),
            event_id: envelope.event_id.clone(),
            correlation_id: envelope
                .correlation_id
                .clone()
                .unwrap_or_else(|| envelope.event_id.clone()),
        };
        let event_id = envelope.event_id.clone();
        let event = Event {
            id: entry.id.clone(),
            event_id: envelope.event_id,
            event_type: envelope.event_type,
            timestamp: envelope.timestamp,
            version: envelope.version,
            correlation_id: envelope.correlation_id,
            metadata: envelope.metadata.into_iter().collect(),
            data: envelope.data,
            attempt: entry.delivery_count,
        };
        let loaded = self.handler.current();
        let result = self
            .runtime
            .call(
                &loaded,
                self.handler.context.clone(),
                source,
                overlay.clone(),
                &event,
                self.handler.limits(),
            )
            .await;
        match result {
            Ok(effects) => {
                overlay.absorb(&effects.kv);
                self.finish(entry, &Attempt::Handled, effects, Some(event_id))
            }
            Err(failure) => self.finish(
                entry,
                &Attempt::Failed(&failure),
                Effects::default(),
                Some(event_id),
            ),
        }
    }

    fn finish(
        &self,
        entry: &StreamEntry,
        attempt: &Attempt<'_>,
        effects: Effects,
        event_id: Option<String>,
    ) -> Handled {
        let outcome = decide(
            attempt,
            entry.delivery_count,
            self.handler.config.max_attempts.get(),
        );
        Handled {
            entry_id: entry.id.clone(),
            outcome,
            effects,
            event_id,
        }
    }
}
