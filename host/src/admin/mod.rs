//! The admin HTTP listener: health for orchestrators, Prometheus metrics, the handlers and
//! their versions, hot swap on request, and a status page for people (`GET /`). Binds to
//! loopback by default (`[admin] listen`).

mod auth;
mod handlers;
mod health;
mod metrics;
mod status_page;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::reload::Reloader;

/// What the endpoints read and act on.
pub struct AdminState {
    /// Hot swap, and through it the handler registry.
    pub reloader: Arc<Reloader>,
    /// Set once every consumer has started.
    pub ready: AtomicBool,
    /// Reads the figures of `GET /admin/status` (the status page).
    pub redis: redis::aio::ConnectionManager,
    /// The host's key namespace.
    pub namespace: String,
    /// The series `GET /metrics` serves.
    pub metrics: Arc<Metrics>,
    /// `[admin] token`: when set, requests other than GET/HEAD/OPTIONS must carry it.
    pub token: Option<crate::config::Secret>,
}

/// The routes.
pub fn router(state: Arc<AdminState>) -> Router {
    Router::new()
        .route("/", get(status_page::page))
        .route("/admin/status", get(status_page::status))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/admin/handlers", get(handlers::list))
        .route("/admin/handlers/{name}/reload", post(handlers::reload))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .with_state(state)
}

/// Serves the admin endpoints on `listener` until `cancel` fires.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AdminState>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await
}
