//! Publishing events from outside a handler (the `publish` command, the demo, ingest):
//! validate, wrap in an envelope and `XADD` to the type's stream.

use std::collections::BTreeMap;

use redis::aio::ConnectionLike;
use watchtower_events::{Envelope, stream_key, validate_event_type, validate_payload, wire};

/// Why an event was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The type string is not valid.
    #[error("invalid event type: {0}")]
    InvalidType(String),
    /// The payload does not fit the type.
    #[error("invalid payload: {0}")]
    InvalidData(String),
    /// Redis refused or could not be reached.
    #[error("publishing to `{stream}` failed: {source}")]
    Redis {
        /// The target stream.
        stream: String,
        /// What Redis said.
        source: redis::RedisError,
    },
}

/// Optional parts of an event being published.
#[derive(Debug, Clone, Default)]
pub struct PublishOptions {
    /// Correlation id to carry.
    pub correlation_id: Option<String>,
    /// Metadata to attach.
    pub metadata: BTreeMap<String, String>,
}

/// What was published.
#[derive(Debug, Clone)]
pub struct Published {
    /// The stream it went to.
    pub stream: String,
    /// The entry id Redis assigned.
    pub entry_id: String,
    /// The new event's id (UUID v7).
    pub event_id: String,
}

/// Validates `data` (a JSON object as text) for `event_type` and appends it to the type's
/// stream in `namespace`.
pub async fn publish<C: ConnectionLike>(
    conn: &mut C,
    namespace: &str,
    event_type: &str,
    data: &str,
    options: PublishOptions,
) -> Result<Published, PublishError> {
    validate_event_type(event_type).map_err(|e| PublishError::InvalidType(e.to_string()))?;
    validate_payload(event_type, data).map_err(|e| PublishError::InvalidData(e.to_string()))?;
    let event_id = uuid::Uuid::now_v7().to_string();
    let mut envelope = Envelope::new(event_id.clone(), event_type, data);
    envelope.correlation_id = options.correlation_id;
    envelope.metadata = options.metadata;
    let stream = stream_key(namespace, event_type);
    let mut cmd = redis::cmd("XADD");
    cmd.arg(&stream).arg("*");
    for (field, value) in wire::encode(&envelope) {
        cmd.arg(field).arg(value);
    }
    let entry_id: String = cmd
        .query_async(conn)
        .await
        .map_err(|source| PublishError::Redis {
            stream: stream.clone(),
            source,
        })?;
    Ok(Published {
        stream,
        entry_id,
        event_id,
    })
}
