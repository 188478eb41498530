//! The `watchtower:handler/host` interface as the guest sees it. Reads happen at once;
//! writes (`publish`, `kv-set`, `kv-delete`) only go into the call's effect buffer, which is
//! committed with the ack if and only if the call succeeds. A kv read sees, in this order,
//! the call's own writes, the uncommitted writes of earlier calls in its batch, and Redis.

use redis::AsyncCommands;
use watchtower_events::{Envelope, validate_event_type, validate_payload};

use super::bindings::watchtower::handler::{host, types};
use super::bindings::{LogLevel, PublishError};
use super::state::{CallState, PendingPublish};

/// Raised (as a trap) when a kv read cannot reach Redis: the call cannot go on correctly.
#[derive(Debug, thiserror::Error)]
#[error("kv read of `{key}` failed: {source}")]
pub struct KvUnavailable {
    /// The key being read.
    pub key: String,
    /// What Redis said.
    pub source: redis::RedisError,
}

impl types::Host for CallState {}

impl host::Host for CallState {
    async fn log(&mut self, level: LogLevel, message: String) {
        let handler = self.handler.name.as_str();
        let entry = self.source.entry_id.as_str();
        match level {
            LogLevel::Trace => tracing::trace!(target: "guest", handler, entry, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "guest", handler, entry, "{message}"),
            LogLevel::Info => tracing::info!(target: "guest", handler, entry, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "guest", handler, entry, "{message}"),
            LogLevel::Error => tracing::error!(target: "guest", handler, entry, "{message}"),
        }
    }

    async fn publish(
        &mut self,
        event_type: String,
        data: String,
        metadata: Vec<(String, String)>,
    ) -> Result<String, PublishError> {
        validate_event_type(&event_type).map_err(|e| PublishError::InvalidType(e.to_string()))?;
        validate_payload(&event_type, &data)
            .map_err(|e| PublishError::InvalidData(e.to_string()))?;

        let event_id = uuid::Uuid::now_v7().to_string();
        let mut envelope = Envelope::new(event_id.clone(), event_type, data);
        envelope.correlation_id = Some(self.source.correlation_id.clone());
        envelope.metadata.extend(metadata);
        envelope
            .metadata
            .entry("causation_id".to_owned())
            .or_insert_with(|| self.source.event_id.clone());
        envelope
            .metadata
            .entry("producer".to_owned())
            .or_insert_with(|| self.handler.name.clone());
        envelope
            .metadata
            .insert("handler_version".to_owned(), self.version.to_string());

        self.effects
            .publishes
            .push(PendingPublish::event(&self.handler.namespace, &envelope));
        Ok(event_id)
    }

    async fn kv_get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        if let Some(buffered) = self.effects.kv.get(&key) {
            return Ok(buffered.clone());
        }
        if let Some(pending) = self.overlay.get(&key) {
            return Ok(pending);
        }
        let mut conn = self.handler.redis.clone();
        conn.hget(&self.handler.kv_key, &key)
            .await
            .map_err(|source| wasmtime::Error::new(KvUnavailable { key, source }))
    }

    async fn kv_set(&mut self, key: String, value: String) {
        self.effects.kv.insert(key, Some(value));
    }

    async fn kv_delete(&mut self, key: String) {
        self.effects.kv.insert(key, None);
    }

    async fn config_get(&mut self, key: String) -> Option<String> {
        self.handler.config.get(&key).cloned()
    }
}
