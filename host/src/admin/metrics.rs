//! `GET /metrics`: every series of [`crate::metrics`] in the OpenMetrics text format, which
//! Prometheus scrapes natively. Serving a scrape reads no Redis: stream figures come from
//! the last poll.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AdminState;

/// The content type of an OpenMetrics text exposition.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The current figures.
pub async fn metrics(State(state): State<Arc<AdminState>>) -> Response {
    let handlers = state.reloader.registry().list();
    match state.metrics.encode(&handlers) {
        Ok(text) => ([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response(),
        Err(error) => {
            tracing::error!("metrics: encoding failed: {error}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "encoding the metrics failed\n",
            )
                .into_response()
        }
    }
}
