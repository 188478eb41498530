//! `GET /admin/handlers`: every handler with its live version and the versions before it;
//! `POST /admin/handlers/{name}/reload`: hot swap on request (422 with the reason when the
//! new version is refused).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use super::AdminState;
use crate::reload::ReloadError;
use crate::wasm::LoadedHandler;

/// One handler as listed.
#[derive(Debug, Serialize)]
pub struct HandlerView {
    name: String,
    version: String,
    digest: String,
    component: String,
    loaded_at: String,
    events: Vec<String>,
    group: String,
    versions: Vec<VersionView>,
}

/// One version of a handler.
#[derive(Debug, Serialize)]
pub struct VersionView {
    version: String,
    loaded_at: String,
    handled: u64,
    failed: u64,
}

fn rfc3339(at: SystemTime) -> String {
    time::OffsetDateTime::from(at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn version_view(v: &LoadedHandler) -> VersionView {
    VersionView {
        version: v.version().to_owned(),
        loaded_at: rfc3339(v.loaded_at),
        handled: v.stats.handled.load(Ordering::Relaxed),
        failed: v.stats.failed.load(Ordering::Relaxed),
    }
}

/// The handlers, by name.
pub async fn list(State(state): State<Arc<AdminState>>) -> Json<Vec<HandlerView>> {
    let views = state
        .reloader
        .registry()
        .list()
        .into_iter()
        .map(|h| {
            let current = h.current();
            HandlerView {
                name: h.name().to_owned(),
                version: current.version().to_owned(),
                digest: current.digest.clone(),
                component: h.config.component.display().to_string(),
                loaded_at: rfc3339(current.loaded_at),
                events: h.config.events.clone(),
                group: h.config.group.clone(),
                versions: h.history().iter().map(|v| version_view(v)).collect(),
            }
        })
        .collect();
    Json(views)
}

/// Reloads the handler's component from disk.
pub async fn reload(State(state): State<Arc<AdminState>>, Path(name): Path<String>) -> Response {
    match state.reloader.reload(&name, "admin request").await {
        Ok(swapped) => Json(swapped).into_response(),
        Err(error @ ReloadError::UnknownHandler(_)) => (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": error.to_string() })),
        )
            .into_response(),
        Err(error @ ReloadError::Refused { .. }) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "error": error.to_string() })),
        )
            .into_response(),
    }
}
