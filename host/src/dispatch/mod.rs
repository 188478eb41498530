//! From a stream entry to an [`Outcome`]: check its size, decode the wire format, validate
//! a known type's payload ([`Dispatcher::prepare`], which can run ahead, while the batch
//! before is handled), call the handler's current version, and decide what happens to the
//! entry ([`outcome::decide`]). A dead letter's effects (the copy in the dead-letter
//! stream and the `error.occurred` event) are built here too, so that they commit with the
//! entry's ack like any handler effect.

pub mod lanes;
pub mod outcome;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use tracing::Instrument as _;
use watchtower_events::{ERROR_OCCURRED, Envelope, ErrorOccurred, dlq_key, validate_payload, wire};

pub use outcome::{Attempt, Outcome, RetryPolicy, decide};

use crate::metrics::{DispatchMetrics, Metrics};
use crate::redis::StreamEntry;
use crate::redis::dlq::{FIELD_REDRIVE_ID, FIELD_REDRIVE_STREAM, dead_letter_fields};
use crate::registry::HandlerEntry;
use crate::wasm::bindings::Event;
use crate::wasm::{
    CallReport, Effects, Failure, KvOverlay, LoadedHandler, PendingPublish, SourceEvent,
    WasmRuntime,
};

/// The result of handling one entry.
#[derive(Debug)]
pub struct Handled {
    /// The entry id.
    pub entry_id: String,
    /// What happens to it next.
    pub outcome: Outcome,
    /// What to commit with the ack: the call's effects for [`Outcome::Ack`], the dead letter
    /// and its `error.occurred` event for [`Outcome::DeadLetter`]; empty for a retry.
    pub effects: Effects,
    /// The event's `event_id`, when the entry could be decoded.
    pub event_id: Option<String>,
}

/// An entry decoded and checked ahead of its call, with its ordering lane.
#[derive(Debug)]
pub struct Prepared {
    entry: StreamEntry,
    /// Its lane key ([`lanes::lane_key`]): entries with equal keys are handled in order.
    pub lane: u64,
    check: Check,
}

/// What decoding found.
#[derive(Debug)]
enum Check {
    /// Deleted from the stream while it was pending.
    Deleted,
    /// Cannot be handled: the field at fault and why.
    Refused { field: String, reason: String },
    /// Ready for the handler: the guest's view of the event, built once.
    Ready(Box<Event>),
}

impl Prepared {
    /// The entry as read; its delivery count changes only through
    /// [`redelivered`](Prepared::redelivered), which keeps the guest's attempt in step.
    pub fn entry(&self) -> &StreamEntry {
        &self.entry
    }

    /// Counts one more delivery of the entry (a retry claimed it again).
    pub fn redelivered(&mut self) {
        self.entry.delivery_count += 1;
        if let Check::Ready(event) = &mut self.check {
            event.attempt = self.entry.delivery_count;
        }
    }
}

/// The guest's view of a decoded entry, and what its effects need to know about it.
pub fn event_for(stream: &str, entry: &StreamEntry, envelope: &Envelope) -> (SourceEvent, Event) {
    let event = guest_event(entry, envelope.clone());
    (source_of(stream, &event), event)
}

/// The guest's view of `envelope`, the decoded `entry`; its delivery count is the attempt.
fn guest_event(entry: &StreamEntry, envelope: Envelope) -> Event {
    Event {
        id: entry.id.clone(),
        event_id: envelope.event_id,
        event_type: envelope.event_type,
        timestamp: envelope.timestamp,
        version: envelope.version,
        correlation_id: envelope.correlation_id,
        metadata: envelope.metadata.into_iter().collect(),
        data: envelope.data,
        attempt: entry.delivery_count,
    }
}

/// What the effects of a call on `event` (read from `stream`) need to know about it. An
/// event without a correlation id starts a trace of its own: its events inherit its id.
fn source_of(stream: &str, event: &Event) -> SourceEvent {
    SourceEvent {
        stream: stream.to_owned(),
        entry_id: event.id.clone(),
        event_id: event.event_id.clone(),
        correlation_id: event
            .correlation_id
            .clone()
            .unwrap_or_else(|| event.event_id.clone()),
    }
}

/// What a consumer's stream holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamSource {
    /// The stream of one event type: every entry must be of that type.
    Events(String),
    /// The handler's re-drive stream: entries of any of the handler's types.
    Redrive,
}

/// Handles entries of one stream for one handler.
#[derive(Clone)]
pub struct Dispatcher {
    runtime: WasmRuntime,
    handler: Arc<HandlerEntry>,
    stream: Arc<str>,
    source: StreamSource,
    max_entry_bytes: usize,
    metrics: Option<DispatchMetrics>,
}

impl Dispatcher {
    /// A dispatcher for entries of `stream`; entries over `max_entry_bytes` are refused.
    pub fn new(
        runtime: WasmRuntime,
        handler: Arc<HandlerEntry>,
        stream: &str,
        source: StreamSource,
        max_entry_bytes: usize,
    ) -> Self {
        Dispatcher {
            runtime,
            handler,
            stream: stream.into(),
            source,
            max_entry_bytes,
            metrics: None,
        }
    }

    /// Times its calls and counts their outcomes and traps in `metrics`.
    pub fn with_metrics(mut self, metrics: &Arc<Metrics>) -> Self {
        let event_types = match &self.source {
            StreamSource::Events(event_type) => std::slice::from_ref(event_type),
            StreamSource::Redrive => self.handler.config.events.as_slice(),
        };
        self.metrics = Some(metrics.dispatch(self.handler.name(), event_types));
        self
    }

    /// Its series, when it has them.
    pub fn metrics(&self) -> Option<&DispatchMetrics> {
        self.metrics.as_ref()
    }

    /// The handler this dispatcher calls.
    pub fn handler(&self) -> &Arc<HandlerEntry> {
        &self.handler
    }

    /// Decodes and checks `entry` (size, wire format, event type, payload) and finds its
    /// lane. Needs nothing but the entry, so it can run ahead of the calls.
    pub fn prepare(&self, entry: StreamEntry) -> Prepared {
        let config = &self.handler.config;
        let lane = lanes::lane_key(
            &entry,
            config.concurrency.get(),
            config.ordering_key.as_deref(),
        );
        let check = self.check(&entry);
        Prepared { entry, lane, check }
    }

    fn check(&self, entry: &StreamEntry) -> Check {
        let refused = |field: &str, reason: String| Check::Refused {
            field: field.to_owned(),
            reason,
        };
        let Some(fields) = &entry.fields else {
            return Check::Deleted;
        };
        if entry.size() > self.max_entry_bytes {
            let reason = format!(
                "malformed:too_large: {} bytes, more than max_entry_bytes = {}",
                entry.size(),
                self.max_entry_bytes
            );
            return refused("too_large", reason);
        }
        let expected = match &self.source {
            StreamSource::Events(event_type) => Some(event_type.as_str()),
            StreamSource::Redrive => None,
        };
        let envelope = match wire::decode(fields, expected) {
            Ok(envelope) => envelope,
            Err(error) => return refused(error.field(), error.reason_code()),
        };
        if self.source == StreamSource::Redrive
            && !self.handler.config.events.contains(&envelope.event_type)
        {
            let reason = format!(
                "malformed:type_mismatch: `{}` is not one of this handler's event types",
                envelope.event_type
            );
            return refused("event_type", reason);
        }
        if let Err(error) = validate_payload(&envelope.event_type, &envelope.data) {
            return refused("data", format!("malformed:payload: {error}"));
        }
        Check::Ready(Box::new(guest_event(entry, envelope)))
    }

    /// Handles one prepared entry. Never fails: every failure is an [`Outcome`].
    /// `overlay` holds the uncommitted kv writes of the batch so far; a successful call's
    /// writes are added to it.
    ///
    /// Runs in an `event` span naming the handler, version, stream, entry, event id and
    /// correlation id, so every line logged meanwhile (the guest's too) carries them. The
    /// version serving the call is chosen here, so the span names the one that runs.
    pub async fn handle(&self, prepared: &Prepared, overlay: &KvOverlay) -> Handled {
        let entry = &prepared.entry;
        let version = self.handler.current();
        // The span gets every field at once (filling fields in later costs a JSON subscriber
        // a re-parse each): the ids of the decoded event, or of the raw fields of an entry
        // that did not decode. An event without a correlation id starts a trace of its own;
        // its events inherit its event id.
        let (event_id, correlation_id) = match &prepared.check {
            Check::Ready(event) => (
                Some(Cow::Borrowed(event.event_id.as_str())),
                event.correlation_id.as_deref().map(Cow::Borrowed),
            ),
            _ => {
                let raw = |name: &str| {
                    let (_, value) = entry
                        .fields
                        .iter()
                        .flatten()
                        .find(|(field, _)| field == name)?;
                    (!value.is_empty()).then(|| String::from_utf8_lossy(value))
                };
                (raw(wire::FIELD_EVENT_ID), raw(wire::FIELD_CORRELATION_ID))
            }
        };
        let correlation_id = correlation_id.or_else(|| event_id.clone());
        // Every field is recorded with `Display`: a text subscriber then skips escaping.
        let span = tracing::info_span!(
            "event",
            handler = %self.handler.name(),
            version = %version.version(),
            stream = %self.stream,
            entry = %entry.id,
            event_id = event_id.as_deref().map(tracing::field::display),
            correlation_id = correlation_id.as_deref().map(tracing::field::display),
        );
        self.handle_prepared(prepared, overlay, &version)
            .instrument(span)
            .await
    }

    async fn handle_prepared(
        &self,
        prepared: &Prepared,
        overlay: &KvOverlay,
        version: &Arc<LoadedHandler>,
    ) -> Handled {
        let entry = &prepared.entry;
        let fields = entry.fields.as_deref().unwrap_or_default();
        match &prepared.check {
            Check::Deleted => self.finish(entry, &Attempt::Deleted, Effects::default(), None),
            Check::Refused { field, reason } => self.refuse(entry, fields, field, reason.clone()),
            Check::Ready(event) => self.call(entry, fields, event, overlay, version).await,
        }
    }

    /// An entry that cannot be handled at all: logged with the field at fault, then
    /// dead-lettered.
    fn refuse(
        &self,
        entry: &StreamEntry,
        fields: &[(String, Vec<u8>)],
        field: &str,
        reason: String,
    ) -> Handled {
        tracing::warn!(
            handler = %self.handler.name(),
            stream = %self.stream,
            entry = %entry.id,
            field,
            "malformed entry: {reason}"
        );
        let attempt = Attempt::Malformed(reason);
        let mut handled = self.finish(entry, &attempt, Effects::default(), None);
        if let Outcome::DeadLetter { reason } = &handled.outcome {
            handled.effects = self.dead_letter(entry, fields, reason, None);
        }
        handled
    }

    async fn call(
        &self,
        entry: &StreamEntry,
        fields: &[(String, Vec<u8>)],
        event: &Event,
        overlay: &KvOverlay,
        version: &Arc<LoadedHandler>,
    ) -> Handled {
        let source = source_of(&self.stream, event);
        let started = Instant::now();
        let result = self.invoke(source, overlay, event, version).await;
        if let Some(metrics) = &self.metrics {
            metrics.called(started.elapsed(), result.as_ref().err());
        }
        let event_id = Some(event.event_id.clone());
        match result {
            Ok(effects) => {
                overlay.absorb(&effects.kv);
                self.finish(entry, &Attempt::Handled, effects, event_id)
            }
            Err(failure) => {
                let mut handled = self.finish(
                    entry,
                    &Attempt::Failed(&failure),
                    Effects::default(),
                    event_id,
                );
                if let Outcome::DeadLetter { reason } = &handled.outcome {
                    handled.effects = self.dead_letter(entry, fields, reason, Some(event));
                }
                handled
            }
        }
    }

    /// Runs the call on a warm instance of `version` (or a new one), and gives the instance
    /// back if it survived.
    async fn invoke(
        &self,
        source: SourceEvent,
        overlay: &KvOverlay,
        event: &Event,
        version: &Arc<LoadedHandler>,
    ) -> CallReport {
        let limits = self.handler.limits();
        let mut instance = match self.handler.take_instance(version) {
            Some(instance) => instance,
            None => {
                self.runtime
                    .instantiate(version, self.handler.context.clone(), limits)
                    .await?
            }
        };
        let result = self
            .runtime
            .call(&mut instance, source, overlay.clone(), event, limits)
            .await;
        if self.handler.record_call(&instance.version, result.is_ok())
            && let Some(metrics) = &self.metrics
        {
            metrics.rolled_back();
        }
        if result.as_ref().err().is_none_or(Failure::instance_survives) {
            self.handler.return_instance(instance);
        }
        result
    }

    fn finish(
        &self,
        entry: &StreamEntry,
        attempt: &Attempt<'_>,
        effects: Effects,
        event_id: Option<String>,
    ) -> Handled {
        let config = &self.handler.config;
        let policy = RetryPolicy {
            max_attempts: config.max_attempts.get(),
            backoff: config.retry_backoff,
            backoff_max: config.retry_backoff_max,
        };
        let outcome = decide(attempt, entry.delivery_count, &policy, &entry.id);
        Handled {
            entry_id: entry.id.clone(),
            outcome,
            effects,
            event_id,
        }
    }

    /// The effects of giving up on an entry: its copy in the handler's dead-letter stream
    /// and one `error.occurred` event, carrying the entry's correlation id when it has one.
    fn dead_letter(
        &self,
        entry: &StreamEntry,
        fields: &[(String, Vec<u8>)],
        reason: &str,
        event: Option<&Event>,
    ) -> Effects {
        let context = &self.handler.context;
        let handler = self.handler.name();
        // A re-driven entry that fails again keeps naming where it first came from.
        let field = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        let (stream, entry_id) = match self.source {
            StreamSource::Redrive => (
                field(FIELD_REDRIVE_STREAM).unwrap_or_else(|| self.stream.to_string()),
                field(FIELD_REDRIVE_ID).unwrap_or_else(|| entry.id.clone()),
            ),
            StreamSource::Events(_) => (self.stream.to_string(), entry.id.clone()),
        };
        let letter = PendingPublish {
            stream: dlq_key(&context.namespace, handler),
            event_id: String::new(),
            fields: dead_letter_fields(
                fields,
                reason,
                handler,
                &stream,
                &entry_id,
                entry.delivery_count,
            )
            .into_iter()
            .map(|(k, v)| (k.into(), v))
            .collect(),
        };

        let mut details = serde_json::Map::new();
        details.insert("handler".into(), json!(handler));
        details.insert("stream".into(), json!(stream));
        details.insert("entry_id".into(), json!(entry_id));
        details.insert("attempts".into(), json!(entry.delivery_count));
        details.insert("reason".into(), json!(reason));
        if let Some(event) = event {
            details.insert("event_id".into(), json!(event.event_id));
            details.insert("event_type".into(), json!(event.event_type));
        }
        let payload = ErrorOccurred {
            error_type: "dead_letter".into(),
            message: reason.to_owned(),
            source: "watchtower".into(),
            details,
        };
        let data = serde_json::to_string(&payload).unwrap_or_else(|_| "{}".to_owned());
        let mut error = Envelope::new(uuid::Uuid::now_v7().to_string(), ERROR_OCCURRED, data);
        error.correlation_id = event.map(|e| {
            e.correlation_id
                .clone()
                .unwrap_or_else(|| e.event_id.clone())
        });
        error
            .metadata
            .insert("producer".into(), format!("watchtower/{handler}"));

        Effects {
            publishes: vec![letter, PendingPublish::event(&context.namespace, &error)],
            kv: Default::default(),
        }
    }
}
