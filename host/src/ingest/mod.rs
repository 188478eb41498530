//! The ingest HTTP listener: services and webhook senders that cannot speak Redis publish
//! events over HTTP. On its own listener (`[ingest] listen`, off unless set), apart from the
//! admin one, so it can face other networks while admin stays on loopback.
//!
//! - `POST /events/{type}`: the body is the payload ([`events`]).
//! - `POST /webhooks/{source}`: the body is whatever the sender posts; it becomes the `body`
//!   of a `webhook.received` event, after the source's signature is checked ([`webhooks`],
//!   [`signature`]).
//! - `GET /healthz`: the listener answers (for a load balancer in front of it).
//!
//! Nothing accepted is lost: a 2xx is answered only after the `XADD` succeeded, and every
//! refusal publishes nothing. Refusals are [`IngestError`]s, answered as `{"error": "…"}`
//! with the status [`IngestError::status`] gives.

pub mod events;
pub mod signature;
pub mod webhooks;

use std::future::IntoFuture as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use redis::aio::ConnectionManager;
use serde::Serialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, IngestConfig};
use crate::publisher::{PublishError, PublishOptions, Published};

pub use signature::SignatureError;

/// After shutdown is signalled, how long requests in flight get to finish their `XADD` and
/// be answered before the listener is dropped.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The header whose value becomes the event's `correlation_id`.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// Longest correlation id accepted from a request header.
const MAX_CORRELATION_ID: usize = 256;

/// What the endpoints need.
pub struct IngestState {
    /// The host's shared non-blocking connection; `XADD`s go through it.
    pub conn: ConnectionManager,
    /// The key namespace events are published in.
    pub namespace: String,
    /// `[ingest]` and `[webhooks.*]`.
    pub config: IngestConfig,
}

/// Why an ingest request published nothing.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The body is over `[ingest] max_body_bytes`.
    #[error("request body is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The body could not be read, is not UTF-8 or not JSON where JSON is required.
    #[error("{0}")]
    BadBody(String),
    /// A header the host reads has an unusable value.
    #[error("header `{header}`: {reason}")]
    BadHeader {
        /// The header.
        header: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// `POST /events/{type}` names a type this listener does not accept.
    #[error("{0}")]
    UnknownEventType(String),
    /// The payload does not fit the event type; names the field at fault.
    #[error("{0}")]
    InvalidPayload(String),
    /// `POST /webhooks/{source}` names no configured source (and unsigned ones are off).
    #[error("unknown webhook source `{0}`")]
    UnknownSource(String),
    /// The webhook's signature is missing or wrong.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// Redis could not take the event; the sender should try again.
    #[error("event not stored, try again: {0}")]
    Unavailable(String),
    /// No such endpoint.
    #[error("no endpoint here; try POST /events/{{type}} or POST /webhooks/{{source}}")]
    NoRoute,
    /// The endpoint takes POST only.
    #[error("method not allowed; ingest endpoints take POST")]
    MethodNotAllowed,
}

impl IngestError {
    /// The HTTP status of this refusal.
    pub fn status(&self) -> StatusCode {
        match self {
            IngestError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::BadBody(_) | IngestError::BadHeader { .. } => StatusCode::BAD_REQUEST,
            IngestError::UnknownEventType(_)
            | IngestError::UnknownSource(_)
            | IngestError::NoRoute => StatusCode::NOT_FOUND,
            IngestError::InvalidPayload(_) => StatusCode::UNPROCESSABLE_ENTITY,
            IngestError::Signature(_) => StatusCode::UNAUTHORIZED,
            IngestError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            IngestError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// The body extractor's refusal: 413 when over the limit, 400 otherwise.
    fn from_body(rejection: &BytesRejection, limit: usize) -> IngestError {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            IngestError::TooLarge { limit }
        } else {
            IngestError::BadBody(format!(
                "cannot read the request body: {}",
                rejection.body_text()
            ))
        }
    }

    /// A failed publish: Redis trouble is 503, anything else is the request's fault.
    fn from_publish(error: PublishError) -> IngestError {
        match error {
            PublishError::InvalidType(reason) => IngestError::UnknownEventType(reason),
            PublishError::InvalidData(reason) => IngestError::InvalidPayload(reason),
            redis @ PublishError::Redis { .. } => IngestError::Unavailable(redis.to_string()),
        }
    }
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), "ingest refused: {self}");
        } else {
            tracing::debug!(status = status.as_u16(), "ingest refused: {self}");
        }
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

/// The answer to an accepted request, sent only once the event is on its stream.
#[derive(Debug, Serialize)]
pub struct Accepted {
    /// The new event's id.
    pub event_id: String,
    /// The stream entry id Redis assigned.
    pub entry_id: String,
    /// The stream it went to.
    pub stream: String,
}

impl From<Published> for Accepted {
    fn from(published: Published) -> Accepted {
        Accepted {
            event_id: published.event_id,
            entry_id: published.entry_id,
            stream: published.stream,
        }
    }
}

impl IntoResponse for Accepted {
    fn into_response(self) -> Response {
        (StatusCode::ACCEPTED, Json(self)).into_response()
    }
}

impl IngestState {
    /// Publishes `data` (a JSON object as text) as `event_type`; the result is the
    /// response.
    async fn publish(
        &self,
        event_type: &str,
        data: &str,
        options: PublishOptions,
    ) -> Result<Accepted, IngestError> {
        let mut conn = self.conn.clone();
        let published =
            crate::publisher::publish(&mut conn, &self.namespace, event_type, data, options)
                .await
                .map_err(IngestError::from_publish)?;
        tracing::debug!(
            event_type,
            event_id = %published.event_id,
            entry_id = %published.entry_id,
            "ingested"
        );
        Ok(published.into())
    }
}

/// The publish options a request carries in its headers: `X-Correlation-Id`.
fn options_from(headers: &HeaderMap) -> Result<PublishOptions, IngestError> {
    let bad = |reason: &str| IngestError::BadHeader {
        header: CORRELATION_HEADER,
        reason: reason.to_owned(),
    };
    let correlation_id = match headers.get(CORRELATION_HEADER) {
        None => None,
        Some(value) => {
            let text = value
                .to_str()
                .map_err(|_| bad("must be visible ASCII"))?
                .trim();
            if text.is_empty() || text.len() > MAX_CORRELATION_ID {
                return Err(bad("must be 1 to 256 characters"));
            }
            Some(text.to_owned())
        }
    };
    Ok(PublishOptions {
        correlation_id,
        ..PublishOptions::default()
    })
}

/// The routes, with the body limit of `state.config`.
pub fn router(state: Arc<IngestState>) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .route("/events/{event_type}", post(events::publish_event))
        .route("/webhooks/{source}", post(webhooks::receive))
        .route("/healthz", get(|| async { "ok\n" }))
        .fallback(|| async { IngestError::NoRoute })
        .method_not_allowed_fallback(|| async { IngestError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Serves the ingest endpoints on `listener` until `cancel` fires; requests in flight then
/// get [`SHUTDOWN_GRACE`] to be answered.
pub async fn serve(
    listener: TcpListener,
    state: Arc<IngestState>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let stopping = cancel.clone();
    let server = axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { stopping.cancelled().await })
        .into_future();
    tokio::select! {
        served = server => served,
        () = async {
            cancel.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            tracing::warn!("ingest requests still open {} s after shutdown were cut off", SHUTDOWN_GRACE.as_secs());
            Ok(())
        }
    }
}

/// Binds the ingest listener of `config`, if it has one, and serves it on a task that ends
/// after `cancel` fires (within [`SHUTDOWN_GRACE`]). An address that cannot be bound stops
/// the start, naming the key.
pub async fn start(
    config: &Config,
    conn: ConnectionManager,
    cancel: CancellationToken,
) -> anyhow::Result<Option<JoinHandle<()>>> {
    let Some(ingest) = config.ingest.clone() else {
        return Ok(None);
    };
    let listener = TcpListener::bind(ingest.listen).await.with_context(|| {
        format!(
            "{}: [ingest] `listen`: cannot listen on {}",
            config.source.display(),
            ingest.listen
        )
    })?;
    let local = listener
        .local_addr()
        .map_or_else(|_| ingest.listen.to_string(), |a| a.to_string());
    tracing::info!(
        listen = %local,
        strict = ingest.strict,
        webhook_sources = ingest.webhooks.len(),
        "ingest listener"
    );
    let state = Arc::new(IngestState {
        conn,
        namespace: config.redis.namespace.clone(),
        config: ingest,
    });
    Ok(Some(tokio::spawn(async move {
        if let Err(error) = serve(listener, state, cancel).await {
            tracing::error!("ingest listener failed: {error}");
        }
    })))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn each_refusal_has_its_status() {
        let cases = [
            (IngestError::TooLarge { limit: 1 }, 413),
            (IngestError::BadBody("x".into()), 400),
            (IngestError::UnknownEventType("x".into()), 404),
            (IngestError::InvalidPayload("x".into()), 422),
            (IngestError::UnknownSource("x".into()), 404),
            (
                IngestError::Signature(SignatureError::Missing(
                    axum::http::HeaderName::from_static("x-signature-256"),
                )),
                401,
            ),
            (IngestError::Unavailable("x".into()), 503),
        ];
        for (error, status) in cases {
            assert_eq!(error.status().as_u16(), status, "{error}");
        }
    }

    #[test]
    fn correlation_id_comes_from_its_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(options_from(&headers).unwrap().correlation_id, None);
        headers.insert(CORRELATION_HEADER, HeaderValue::from_static(" trip-42 "));
        assert_eq!(
            options_from(&headers).unwrap().correlation_id.as_deref(),
            Some("trip-42")
        );
        headers.insert(CORRELATION_HEADER, HeaderValue::from_static(""));
        assert!(matches!(
            options_from(&headers),
            Err(IngestError::BadHeader { .. })
        ));
    }
}
