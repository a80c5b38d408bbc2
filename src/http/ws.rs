//! `GET /im`: the WebSocket entry for browsers. One binary message per frame; the socket becomes a `Link` and
//! joins the same session layer as every other transport.
//!
//! The handshake (RFC 6455, section 4.2) is answered here rather than by axum's extractor so the upgraded
//! bytes go through `transport::ws_accept`, which meters what a client sends before its `connect`: with the
//! extractor the WebSocket library would gather a whole `max_frame_bytes` message from anybody.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
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
    let key = match handshake_key(req.method(), req.headers()) {
        Ok(key) => key,
        Err(Refusal::Version) => {
            // RFC 6455 4.4: say which version is spoken (the usual error body, with 426).
            let mut res = ApiError::BadRequest("this gateway speaks WebSocket version 13".into())
                .into_response();
            *res.status_mut() = StatusCode::UPGRADE_REQUIRED;
            res.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
            return res;
        }
        Err(Refusal::NotOne(why)) => return ApiError::BadRequest(why.into()).into_response(),
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

/// Why a request is not a handshake this gateway takes.
#[derive(Debug, PartialEq)]
enum Refusal {
    /// A WebSocket handshake of another version: `426` with the one spoken.
    Version,
    NotOne(&'static str),
}

/// The `Sec-WebSocket-Key` of a version-13 upgrade request (RFC 6455 4.2.1): a `GET` without a body, each
/// handshake header once, a key that is 16 bytes in base64.
fn handshake_key(method: &Method, h: &HeaderMap) -> Result<String, Refusal> {
    const NOT_ONE: Refusal = Refusal::NotOne(
        "this is a WebSocket endpoint: open it with a WebSocket handshake (version 13)",
    );
    let has_token = |name: header::HeaderName, token: &str| {
        h.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if method != Method::GET
        || !has_token(header::CONNECTION, "upgrade")
        || !has_token(header::UPGRADE, "websocket")
    {
        return Err(NOT_ONE);
    }
    let once = |name: header::HeaderName| {
        let mut all = h.get_all(name).iter();
        match (all.next(), all.next()) {
            (Some(v), None) => Ok(v),
            (None, _) => Err(NOT_ONE),
            (Some(_), Some(_)) => Err(Refusal::NotOne(
                "a WebSocket handshake names its key and version once each",
            )),
        }
    };
    if once(header::SEC_WEBSOCKET_VERSION)?.as_bytes() != b"13" {
        return Err(Refusal::Version);
    }
    let key = once(header::SEC_WEBSOCKET_KEY)?
        .to_str()
        .map_err(|_| NOT_ONE)?
        .trim();
    // A base64-encoded 16-byte nonce: 22 characters of the alphabet and `==`.
    let nonce = key.len() == 24
        && key.ends_with("==")
        && key[..22]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    if !nonce {
        return Err(NOT_ONE);
    }
    // Bytes after the request would be read as body by one side and as WebSocket data by the other.
    let body = h.contains_key(header::TRANSFER_ENCODING)
        || h.get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    if body {
        return Err(Refusal::NotOne("a WebSocket handshake has no body"));
    }
    Ok(key.to_string())
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
        let get =
            |pairs: &[(&'static str, &'static str)]| handshake_key(&Method::GET, &headers(pairs));
        assert_eq!(get(&good).as_deref(), Ok("dGhlIHNhbXBsZSBub25jZQ=="));
        // RFC 6455's example: the answer a client checks.
        assert_eq!(
            derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        for i in 0..good.len() {
            let mut some: Vec<_> = good.to_vec();
            some.remove(i);
            assert!(get(&some).is_err(), "without {}", good[i].0);
        }
        assert!(
            handshake_key(&Method::HEAD, &headers(&good)).is_err(),
            "HEAD"
        );
        let with = |extra: (&'static str, &'static str)| {
            let mut h = good.to_vec();
            h.push(extra);
            get(&h)
        };
        assert!(with(("content-length", "5")).is_err(), "a body");
        assert!(with(("transfer-encoding", "chunked")).is_err(), "a body");
        assert!(with(("content-length", "0")).is_ok());
        assert!(
            with(("sec-websocket-key", "AAAAAAAAAAAAAAAAAAAAAA==")).is_err(),
            "two keys"
        );
        let mut old = good.to_vec();
        old[2] = ("sec-websocket-version", "8");
        assert_eq!(get(&old), Err(Refusal::Version));
        for key in [
            "abc",
            "!!!!!!!!!!!!!!!!!!!!!!!!",
            "dGhlIHNhbXBsZSBub25jZQ=a",
        ] {
            let mut bad = good.to_vec();
            bad[3] = ("sec-websocket-key", key);
            assert!(get(&bad).is_err(), "{key}");
        }
    }
}
