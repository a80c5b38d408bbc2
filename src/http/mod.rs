//! The HTTP port: health checks and the history API (and, in later layers, `/im` WebSocket and `/metrics`).
//!
//! The API is read-only JSON over the same rooms service the protocol uses, authenticated with the same tokens
//! (`Authorization: Bearer <token>`), so rights are enforced identically in-band and over HTTP.

mod auth;
mod body;
mod conn;
mod console;
pub mod cors;
mod error;
mod headers;
pub mod health;
mod history;
mod openapi_responses;
pub mod routes;
mod search;
mod serve;
mod server_api;
mod server_history;
mod server_reads;
mod server_rights;
mod server_rooms;
pub mod whip;
mod whip_origin;
mod ws;

use std::sync::Arc;

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
    /// This node's overview figures (`GET /api/server/nodes`).
    pub figures: crate::rooms::Figures,
    /// Serve the admin console at `/admin` (`[admin] enabled`).
    pub console: bool,
    /// Web origins that may call the members' API and WHIP/WHEP, and open the WebSocket (`[cors]`; `cors.rs`).
    pub origins: cors::Origins,
}

/// Whether a request came in over TLS (the HTTPS listener), for absolute URLs the gateway hands out.
#[derive(Clone, Copy, Debug)]
pub struct Secure(pub bool);

/// Every route (`routes.rs`, which also makes `/api/openapi.json`).
pub fn router(state: HttpState) -> Router {
    routes::router(state)
}

pub use serve::{serve, HttpLimits};
