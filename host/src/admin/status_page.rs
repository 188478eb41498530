//! `GET /`: a self-contained status page (inline CSS and JavaScript, no build step) that
//! polls `GET /admin/status` every two seconds; and `GET /admin/status` itself: the streams
//! of the host's namespace with their groups, the handlers with their versions, and each
//! handler's dead letters (how many, and the latest reasons), in one JSON document.
//!
//! The page builds its DOM with `textContent` only, so nothing read from Redis (stream names,
//! dead-letter reasons) is ever interpreted as markup, and its Content-Security-Policy lets
//! it talk to this listener and nothing else.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use redis::Value;
use serde::Serialize;
use serde_json::json;
use watchtower_events::dlq_key;

use super::AdminState;
use super::handlers::{self, HandlerView};
use crate::redis::StreamEntry;
use crate::redis::dlq::DeadLetter;
use crate::redis::reader::parse_entries;
use crate::status::StreamStatus;

/// The page, embedded in the binary.
const PAGE: &str = include_str!("status.html");

/// Dead letters listed per handler.
const LATEST_DEAD_LETTERS: usize = 5;

/// Only this listener may be fetched; scripts and styles are the page's own inline ones.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// Everything the status page shows.
#[derive(Debug, Serialize)]
pub struct StatusView {
    /// The host's key namespace.
    pub namespace: String,
    /// When this was read (RFC 3339 UTC).
    pub generated_at: String,
    /// Every `{namespace}:events:*` stream with its groups, as `watchtower status` shows them.
    pub streams: Vec<StreamStatus>,
    /// The handlers, as `GET /admin/handlers` lists them.
    pub handlers: Vec<HandlerView>,
    /// Per handler: its dead letters.
    pub dead_letters: BTreeMap<String, DeadLetters>,
}

/// One handler's dead-letter stream.
#[derive(Debug, Serialize)]
pub struct DeadLetters {
    /// Its key.
    pub stream: String,
    /// How many it holds.
    pub count: u64,
    /// The newest few, newest first.
    pub latest: Vec<LetterView>,
}

/// One dead letter, without its payload.
#[derive(Debug, Serialize)]
pub struct LetterView {
    /// Its id in the dead-letter stream.
    pub id: String,
    /// When it was dead-lettered.
    pub at: String,
    /// Why.
    pub reason: String,
    /// The stream it came from.
    pub stream: String,
    /// Its id there.
    pub source_id: String,
    /// Its event type, when it had one.
    pub event_type: Option<String>,
}

impl From<DeadLetter> for LetterView {
    fn from(letter: DeadLetter) -> Self {
        LetterView {
            id: letter.id,
            at: letter.at,
            reason: letter.reason,
            stream: letter.stream,
            source_id: letter.source_id,
            event_type: letter.event_type,
        }
    }
}

/// The page.
pub async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        PAGE,
    )
        .into_response()
}

/// The JSON the page shows; 503 with `{"error": …}` when Redis cannot be read.
pub async fn status(State(state): State<Arc<AdminState>>) -> Response {
    match collect(&state).await {
        Ok(view) => ([(header::CACHE_CONTROL, "no-store")], Json(view)).into_response(),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": format!("reading Redis: {error}") })),
        )
            .into_response(),
    }
}

async fn collect(state: &Arc<AdminState>) -> redis::RedisResult<StatusView> {
    let mut conn = state.redis.clone();
    let namespace = state.namespace.clone();
    let streams = crate::status::collect(&mut conn, &namespace).await?;
    let Json(handlers) = handlers::list(State(state.clone())).await;
    let mut dead_letters = BTreeMap::new();
    for handler in state.reloader.registry().list() {
        let stream = dlq_key(&namespace, handler.name());
        let count: u64 = redis::cmd("XLEN")
            .arg(&stream)
            .query_async(&mut conn)
            .await?;
        let reply: Value = redis::cmd("XREVRANGE")
            .arg(&stream)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(LATEST_DEAD_LETTERS)
            .query_async(&mut conn)
            .await?;
        let mut entries: Vec<StreamEntry> = Vec::new();
        parse_entries(reply, &mut entries);
        let latest = entries
            .into_iter()
            .filter_map(|e| Some(DeadLetter::from_entry(e.id, e.fields?).into()))
            .collect();
        dead_letters.insert(
            handler.name().to_owned(),
            DeadLetters {
                stream,
                count,
                latest,
            },
        );
    }
    Ok(StatusView {
        namespace,
        generated_at: watchtower_events::now_rfc3339(),
        streams,
        handlers,
        dead_letters,
    })
}
