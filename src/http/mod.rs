//! The HTTP port: health checks and the history API (and, in later layers, `/im` WebSocket and `/metrics`).
//!
//! The API is read-only JSON over the same rooms service the protocol uses, authenticated with the same tokens
//! (`Authorization: Bearer <token>`), so rights are enforced identically in-band and over HTTP.

mod auth;
mod body;
mod conn;
mod error;
pub mod health;
mod history;
mod search;
mod serve;
mod server_api;
mod server_history;
mod server_rights;
mod server_rooms;
pub mod whip;
mod ws;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use crate::auth::TokenVerifier;
use crate::rooms::Rooms;
use crate::transport::Link;

#[derive(Clone)]
pub struct HttpState {
    pub rooms: Rooms,
    pub verifier: Arc<dyn TokenVerifier>,
    /// Tokens to users, as for `connect` (the connect hook included).
    pub auth: crate::hooks::Authenticator,
    /// Where WebSocket connections go: the session layer.
    pub on_link: Arc<dyn Fn(Link) + Send + Sync>,
    pub max_frame_bytes: usize,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Read at scrape time for the budget gauge.
    pub budget: crate::transport::MemoryBudget,
    /// WebSocket upgrades being set up right now (`limits.max_pending_upgrades`).
    pub upgrades: Arc<tokio::sync::Semaphore>,
    /// A WebSocket silent this long (no frame, no pong to the gateway's pings) is lost (`limits.idle_timeout_ms`).
    pub ws_liveness: std::time::Duration,
    /// Keys and publisher identity of the server API (`[server_api]`).
    pub server_api: Arc<crate::config::ServerApi>,
    /// The SFU, for WHIP and WHEP.
    pub sfu: crate::sfu::Sfu,
    pub rtc_resources: Arc<whip::Resources>,
    /// `/metrics` answers only with a server-API key (`Config::metrics_need_key`).
    pub metrics_need_key: bool,
    /// A request body must arrive within this (`limits.http_body_timeout_ms`; `body.rs`).
    pub body_timeout: std::time::Duration,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/im", get(ws::upgrade))
        // The odd.js RTC SDK's default URL when it makes its own connection (`wss://<host>/rtc/sig`): the same
        // endpoint, so its defaults reach the gateway (../shared/RTC.md §2).
        .route("/rtc/sig", get(ws::upgrade))
        .route("/whip/{app}", post(whip::publish))
        .route("/whep/{*stream}", post(whip::play))
        .route("/rtc/resources/{id}", axum::routing::delete(whip::delete))
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route("/readyz", get(health::readyz))
        .route("/api/rooms/{rid}/messages", get(history::room_messages))
        .route(
            "/api/users/{a}/conversations/{b}/messages",
            get(history::conversation_messages),
        )
        .route("/api/messages/{mid}/payload", get(history::message_payload))
        .route("/api/messages/{mid}", axum::routing::delete(search::redact))
        .route("/api/search", get(search::search))
        .route("/api/server/redact", post(server_history::redact))
        .route("/api/server/erase", post(server_history::erase))
        .route("/api/rooms/{rid}/presence", get(history::room_presence))
        .route("/api/users/{uid}/unread", get(history::user_unread))
        .route("/api/server/publish", post(server_api::publish))
        .route("/api/server/disconnect", post(server_api::disconnect))
        .route("/api/server/broadcast", post(server_api::broadcast))
        .route("/api/server/chmod", post(server_rights::chmod))
        .route("/api/server/ban", post(server_rights::ban))
        .route("/api/server/unban", post(server_rights::unban))
        .route("/api/server/users/{uid}", get(server_rooms::user))
        .route(
            "/api/server/rooms",
            get(server_rooms::rooms).post(server_rooms::create),
        )
        .route("/api/server/rooms/{rid}", get(server_rooms::room))
        .route(
            "/api/server/rooms/{rid}/presence",
            get(server_rooms::presence),
        )
        .route(
            "/api/server/rooms/{rid}/properties",
            get(server_rooms::properties).post(server_rooms::set_properties),
        )
        .fallback(error::no_route)
        .method_not_allowed_fallback(error::wrong_method)
        .with_state(state)
}

pub use serve::{serve, HttpLimits};
