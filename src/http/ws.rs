//! `GET /im`: the WebSocket entry for browsers. One binary message per frame; the socket becomes a `Link` and
//! joins the same session layer as every other transport.
//!
//! The handshake (RFC 6455, section 4.2) is answered here rather than by axum's extractor so the upgraded
//! bytes go through `transport::ws_accept`, which meters what a client sends before its `connect`: with the
//! extractor the WebSocket library would gather a whole `max_frame_bytes` message from anybody.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::error::ApiError;
use super::HttpState;
use crate::transport::{self, LinkInfo, TransportKind};

pub async fn upgrade(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
) -> Response {
    // Not a WebSocket handshake (a plain GET, a missing key or version): our JSON error.
    let Some(key) = handshake_key(req.headers()) else {
        return ApiError::BadRequest(
            "this is a WebSocket endpoint: open it with a WebSocket handshake (version 13)".into(),
        )
        .into_response();
    };
    // A browser's page of an origin `[cors] origins` does not list (when it lists them one by one).
    if !state
        .origins
        .allows_websocket(req.headers().get(header::ORIGIN))
    {
        return ApiError::Forbidden(
            "pages of this origin may not open the WebSocket ([cors] origins)".into(),
        )
        .into_response();
    }
    // An HTTP/2 request cannot switch protocols (no extended CONNECT is offered).
    let Some(on_upgrade) = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
        return ApiError::BadRequest(
            "a WebSocket is opened over HTTP/1.1 with `Connection: Upgrade`".into(),
        )
        .into_response();
    };
    // A bounded number of upgrades in progress: each holds a permit until its socket reaches the session layer.
    let Ok(permit) = state.upgrades.clone().try_acquire_owned() else {
        return ApiError::Busy("too many WebSocket upgrades in progress; retry shortly".into())
            .into_response();
    };
    let (on_link, liveness, max_frame) = (
        state.on_link.clone(),
        state.ws_liveness,
        state.max_frame_bytes,
    );
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let info = LinkInfo {
            kind: TransportKind::WebSocket,
            peer,
        };
        let io = hyper_util::rt::TokioIo::new(upgraded);
        let link = transport::ws_accept::accept(io, info, liveness, max_frame).await;
        drop(permit);
        on_link(link);
    });
    let mut res = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = res.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    res
}

/// The `Sec-WebSocket-Key` of a version-13 upgrade request; `None` when the request is not one.
fn handshake_key(h: &HeaderMap) -> Option<String> {
    let has_token = |name: header::HeaderName, token: &str| {
        h.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(header::CONNECTION, "upgrade") || !has_token(header::UPGRADE, "websocket") {
        return None;
    }
    if h.get(header::SEC_WEBSOCKET_VERSION)?.as_bytes() != b"13" {
        return None;
    }
    let key = h.get(header::SEC_WEBSOCKET_KEY)?.to_str().ok()?.trim();
    // A base64-encoded 16-byte nonce is 24 characters.
    (key.len() == 24).then(|| key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_a_version_13_upgrade_with_a_key_is_a_handshake() {
        let good = [
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "WebSocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        assert_eq!(
            handshake_key(&headers(&good)).as_deref(),
            Some("dGhlIHNhbXBsZSBub25jZQ==")
        );
        // RFC 6455's example: the answer a client checks.
        assert_eq!(
            derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        for i in 0..good.len() {
            let mut some: Vec<_> = good.to_vec();
            some.remove(i);
            assert_eq!(
                handshake_key(&headers(&some)),
                None,
                "without {}",
                good[i].0
            );
        }
        let mut old = good.to_vec();
        old[2] = ("sec-websocket-version", "8");
        assert_eq!(handshake_key(&headers(&old)), None);
        let mut short = good.to_vec();
        short[3] = ("sec-websocket-key", "abc");
        assert_eq!(handshake_key(&headers(&short)), None);
    }
}
