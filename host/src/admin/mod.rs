//! The admin HTTP listener: health for orchestrators, the handlers and their versions, and
//! hot swap on request. Binds to loopback by default (`[admin] listen`).

mod handlers;
mod health;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::reload::Reloader;

/// What the endpoints read and act on.
pub struct AdminState {
    /// Hot swap, and through it the handler registry.
    pub reloader: Arc<Reloader>,
    /// Set once every consumer has started.
    pub ready: AtomicBool,
}

/// The routes.
pub fn router(state: Arc<AdminState>) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/admin/handlers", get(handlers::list))
        .route("/admin/handlers/{name}/reload", post(handlers::reload))
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
