//! `GET /healthz` (the process answers) and `GET /readyz` (its consumers are running).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::StatusCode;

use super::AdminState;

/// Always 200 while the process serves HTTP.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// 200 once every consumer has started, 503 before.
pub async fn readyz(State(state): State<Arc<AdminState>>) -> (StatusCode, &'static str) {
    if state.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
    }
}
