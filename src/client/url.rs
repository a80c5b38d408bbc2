//! Gateway URLs: the scheme picks the transport.
//!
//! `tcp://host:port`, `tls://host:port`, `quic://host:port`, `ws://host:port[/path]` and `wss://...` (path
//! defaults to `/im`).

use std::str::FromStr;

use rustls::pki_types::{CertificateDer, ServerName};

use super::error::ClientError;
use crate::transport::certs::client_config;
use crate::transport::{self, quic, Link, LinkInfo, TransportKind};

/// Frames up to this size are accepted from the server.
const CLIENT_MAX_FRAME: usize = 64 * 1024 * 1024;

/// How to reach and trust the gateway, and how hard to hold on to it.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Certificates to trust for `tls://` and `quic://` (e.g. a dev gateway's `data/certs/dev-cert.pem`).
    pub roots: Vec<CertificateDer<'static>>,
    /// A connected client whose transport brought nothing for this long sends `ping`; `None`: never (then a
    /// dead path is noticed only when the OS reports it).
    pub ping_every: Option<std::time::Duration>,
    /// No sign of life this long after a `ping`: the path is dead, reconnect.
    pub ping_timeout: std::time::Duration,
    /// How long a lost client keeps trying to come back (`RECONNECT_FOR` by default).
    pub reconnect_for: std::time::Duration,
    /// How long a reconnect waits for the answer to its `connect` before it tries a new transport
    /// (`CALL_TIMEOUT` by default).
    pub resume_answer_within: std::time::Duration,
    /// QUIC's TLS config, made on first use and shared by every connection made with these options (and their
    /// clones): it holds the session tickets that let a reconnect send its `connect` in 0-RTT.
    pub quic_tls: QuicTls,
}

/// QUIC's TLS config with its session tickets, shared by the clones of one `ClientOptions` (see `quic_tls`).
#[derive(Debug, Clone, Default)]
pub struct QuicTls(std::sync::Arc<std::sync::Mutex<Option<std::sync::Arc<rustls::ClientConfig>>>>);

impl QuicTls {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<std::sync::Arc<rustls::ClientConfig>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops the config and its tickets (the gateway refused one: it no longer has them); the next connection
    /// makes a new one with a full handshake.
    pub(super) fn forget(&self) {
        *self.lock() = None;
    }
}

/// How long a client keeps trying to get back after losing its transport, unless its options say otherwise
/// (`ClientOptions::reconnect_for`). Longer than the gateway takes to notice a dead transport and then keeps
/// the session (`limits.tcp_keepalive_ms` x 2 + `limits.resume_grace_ms`), so a client never gives up where
/// the gateway would still let it resume; past that it comes back as a new session and joins its rooms again.
pub const RECONNECT_FOR: std::time::Duration = std::time::Duration::from_secs(600);

/// The client's default liveness: a ping after 10 s of silence, 5 s for its answer. A dead path (a network
/// change the OS did not report) is noticed within 15 s, at the cost of one small frame each way per 10 s of
/// silence.
pub const PING_EVERY: std::time::Duration = std::time::Duration::from_secs(10);
pub const PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            roots: Vec::new(),
            ping_every: Some(PING_EVERY),
            ping_timeout: PING_TIMEOUT,
            reconnect_for: RECONNECT_FOR,
            resume_answer_within: super::conn::CALL_TIMEOUT,
            quic_tls: Default::default(),
        }
    }
}

impl ClientOptions {
    /// QUIC's TLS config for these options (see `quic_tls`).
    fn quic_tls(&self) -> Result<std::sync::Arc<rustls::ClientConfig>, rustls::Error> {
        let mut cached = self.quic_tls.lock();
        if let Some(c) = cached.as_ref() {
            return Ok(c.clone());
        }
        let mut config = client_config(&self.roots, &[quic::ALPN], true)?;
        config.enable_early_data = true;
        let config = std::sync::Arc::new(config);
        *cached = Some(config.clone());
        Ok(config)
    }

    /// Trusts the certificates in a PEM file.
    pub fn trusting(pem: &std::path::Path) -> Result<ClientOptions, ClientError> {
        let roots = transport::certs::read_pem_certs(pem)
            .map_err(|e| ClientError::Certificate(e.to_string()))?;
        Ok(ClientOptions {
            roots,
            ..ClientOptions::default()
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub kind: TransportKind,
    /// `host:port`.
    pub authority: String,
    pub host: String,
    /// WebSocket path.
    pub path: String,
    /// `wss://`: the WebSocket runs over TLS.
    pub secure: bool,
}

impl FromStr for Endpoint {
    type Err = ClientError;

    fn from_str(url: &str) -> Result<Endpoint, ClientError> {
        let bad = |reason: &str| ClientError::Url {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected scheme://host:port, e.g. tcp://127.0.0.1:7100"))?;
        let kind = match scheme {
            "tcp" => TransportKind::Tcp,
            "tls" => TransportKind::Tls,
            "quic" => TransportKind::Quic,
            "ws" | "wss" => TransportKind::WebSocket,
            other => {
                return Err(bad(&format!(
                    "unknown scheme {other:?}: use tcp, tls, quic, ws or wss"
                )))
            }
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/im"),
        };
        let host = match authority.rsplit_once(':') {
            Some((h, port)) if !h.is_empty() && port.parse::<u16>().is_ok() => {
                h.trim_start_matches('[').trim_end_matches(']')
            }
            _ => {
                return Err(bad(
                    "a host and a numeric port are required, e.g. tcp://127.0.0.1:7100",
                ))
            }
        };
        Ok(Endpoint {
            kind,
            authority: authority.to_string(),
            host: host.to_string(),
            path: path.to_string(),
            secure: scheme == "wss",
        })
    }
}

impl Endpoint {
    pub async fn open(&self, options: &ClientOptions) -> Result<Link, ClientError> {
        self.open_with(options, true).await
    }

    /// Like `open`; with `early_data` false, a QUIC link is handed over only once its handshake completed
    /// (no 0-RTT). Reconnect attempts race each other that way: a 0-RTT link is usable at once, so the race
    /// would end with the first attempt while its packets are still lost, and wait on its backed-off timer.
    pub async fn open_with(
        &self,
        options: &ClientOptions,
        early_data: bool,
    ) -> Result<Link, ClientError> {
        let connect_err = |source: std::io::Error| ClientError::Connect {
            target: self.authority.clone(),
            error: source,
        };
        let other_err = |e: &dyn std::fmt::Display| ClientError::Connect {
            target: self.authority.clone(),
            error: std::io::Error::other(e.to_string()),
        };
        let addr = tokio::net::lookup_host(&self.authority)
            .await
            .map_err(connect_err)?
            .next()
            .ok_or_else(|| connect_err(std::io::Error::other("no address found")))?;
        match self.kind {
            TransportKind::Tcp | TransportKind::Tls | TransportKind::WebSocket => {
                let stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(connect_err)?;
                let _ = stream.set_nodelay(true);
                let info = LinkInfo {
                    kind: self.kind,
                    peer: addr,
                };
                match self.kind {
                    TransportKind::Tcp => Ok(transport::tcp::link(
                        stream,
                        info,
                        transport::FrameLimit::fixed(CLIENT_MAX_FRAME),
                    )),
                    TransportKind::Tls => {
                        let config = client_config(&options.roots, &[quic::ALPN], false)
                            .map_err(|e| other_err(&e))?;
                        let name =
                            ServerName::try_from(self.host.clone()).map_err(|e| other_err(&e))?;
                        let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
                            .connect(name, stream)
                            .await
                            .map_err(connect_err)?;
                        Ok(transport::tcp::link(
                            tls,
                            info,
                            transport::FrameLimit::fixed(CLIENT_MAX_FRAME),
                        ))
                    }
                    _ => {
                        let config =
                            tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                                .max_message_size(Some(CLIENT_MAX_FRAME))
                                .max_frame_size(Some(CLIENT_MAX_FRAME));
                        let scheme = if self.secure { "wss" } else { "ws" };
                        let url = format!("{scheme}://{}{}", self.authority, self.path);
                        if !self.secure {
                            return websocket(url, stream, config, info).await;
                        }
                        let tls = client_config(&options.roots, &[b"http/1.1"], false)
                            .map_err(|e| other_err(&e))?;
                        let name =
                            ServerName::try_from(self.host.clone()).map_err(|e| other_err(&e))?;
                        let stream = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls))
                            .connect(name, stream)
                            .await
                            .map_err(connect_err)?;
                        websocket(url, stream, config, info).await
                    }
                }
            }
            TransportKind::Quic => {
                let config = options.quic_tls().map_err(|e| other_err(&e))?;
                let tickets = options.quic_tls.clone();
                let refused: Box<dyn FnOnce() + Send> = Box::new(move || tickets.forget());
                let refused = early_data.then_some(refused);
                quic::connect(addr, &self.host, config, CLIENT_MAX_FRAME, refused)
                    .await
                    .map_err(|e| other_err(&e))
            }
        }
    }
}

/// The WebSocket handshake over an open stream (plain TCP or TLS), then the same `Link` as any transport. A
/// refused handshake (429 over the address's limit, 401, ...) carries the gateway's reason in its JSON body:
/// that reason is the error, not just the status line.
async fn websocket<S>(
    url: String,
    stream: S,
    config: tokio_tungstenite::tungstenite::protocol::WebSocketConfig,
    info: LinkInfo,
) -> Result<Link, ClientError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use tokio_tungstenite::tungstenite::Error;
    let target = url.clone();
    match tokio_tungstenite::client_async_with_config(url, stream, Some(config)).await {
        Ok((ws, _)) => Ok(transport::ws::link(ws, info)),
        Err(Error::Http(refused)) => {
            let status = refused.status();
            let why = refused
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
                .and_then(|v| v["error"].as_str().map(str::to_string));
            // As a refusal at accept time on the other transports: the reason is the error.
            Err(ClientError::Status {
                code: "NetConnection.Connect.Rejected".into(),
                description: match why {
                    Some(why) => format!("{why} (HTTP {status})"),
                    None => format!("the WebSocket handshake was refused: HTTP {status}"),
                },
            })
        }
        Err(e) => Err(ClientError::Connect {
            target,
            error: std::io::Error::other(e.to_string()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_scheme() {
        let e: Endpoint = "quic://localhost:7102".parse().expect("parses");
        assert_eq!(
            (e.kind, e.host.as_str()),
            (TransportKind::Quic, "localhost")
        );
        let e: Endpoint = "ws://127.0.0.1:7180".parse().expect("parses");
        assert_eq!(e.path, "/im");
        let e: Endpoint = "tls://[::1]:7101".parse().expect("parses");
        assert_eq!(e.host, "::1");
        assert!("http://x:1".parse::<Endpoint>().is_err());
        assert!("tcp://nohost".parse::<Endpoint>().is_err());
        assert!("tcp://host:port".parse::<Endpoint>().is_err());
    }
}
