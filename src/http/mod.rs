//! The HTTP port: health checks and the history API (and, in later layers, `/im` WebSocket and `/metrics`).
//!
//! The API is read-only JSON over the same rooms service the protocol uses, authenticated with the same tokens
//! (`Authorization: Bearer <token>`), so rights are enforced identically in-band and over HTTP.

mod auth;
mod error;
mod health;
mod history;
mod ws;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::rooms::Rooms;
use crate::session::TokenVerifier;
use crate::transport::Link;

#[derive(Clone)]
pub struct HttpState {
    pub rooms: Rooms,
    pub verifier: Arc<dyn TokenVerifier>,
    /// Where WebSocket connections go: the session layer.
    pub on_link: Arc<dyn Fn(Link) + Send + Sync>,
    pub max_frame_bytes: usize,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Read at scrape time for the budget gauge.
    pub budget: crate::transport::MemoryBudget,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/im", get(ws::upgrade))
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route("/readyz", get(health::readyz))
        .route("/api/rooms/{rid}/messages", get(history::room_messages))
        .route(
            "/api/users/{a}/conversations/{b}/messages",
            get(history::conversation_messages),
        )
        .route("/api/messages/{mid}/payload", get(history::message_payload))
        .with_state(state)
}

/// Serves until `shutdown`.
pub async fn serve(listener: TcpListener, app: Router, shutdown: CancellationToken) {
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "http server failed");
    }
}
