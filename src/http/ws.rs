//! `GET /im`: the WebSocket entry for browsers. One binary message per frame; the socket becomes a `Link` and
//! joins the same session layer as every other transport.

use std::net::SocketAddr;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::response::Response;

use super::HttpState;
use crate::transport::{self, LinkInfo, TransportKind};

pub async fn upgrade(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    use axum::response::IntoResponse;
    // Not a WebSocket handshake (a plain GET, a missing key or version): our JSON error, not the framework's
    // text.
    let Ok(ws) = ws else {
        return super::error::ApiError::BadRequest(
            "this is a WebSocket endpoint: open it with a WebSocket handshake (version 13)".into(),
        )
        .into_response();
    };
    // A bounded number of upgrades in progress: each holds a permit until its socket reaches the session layer.
    let Ok(permit) = state.upgrades.clone().try_acquire_owned() else {
        return super::error::ApiError::Busy(
            "too many WebSocket upgrades in progress; retry shortly".into(),
        )
        .into_response();
    };
    let on_link = state.on_link.clone();
    let liveness = state.ws_liveness;
    ws.max_message_size(state.max_frame_bytes)
        .max_frame_size(state.max_frame_bytes)
        .on_upgrade(move |socket| async move {
            drop(permit);
            on_link(transport::ws::link(
                socket,
                LinkInfo {
                    kind: TransportKind::WebSocket,
                    peer,
                },
                Some(liveness),
            ));
        })
}
