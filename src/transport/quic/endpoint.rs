//! Endpoints: the server's settings and UDP socket, accepting connections (ALPN checked), and the client's
//! connect. What a connection carries is in `mod.rs`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::{link, Role, ALPN, CLOSE_NORMAL, CLOSE_PROTOCOL};
use crate::transport::link::{Link, LinkInfo, TransportKind};

/// Why a client closed a connection whose 0-RTT data the gateway rejected.
pub const EARLY_REJECTED: &str = "0-RTT rejected";

/// How the gateway's QUIC connections send: the congestion controller and its initial window.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sending {
    /// `cubic` (quinn's default), `newreno` or `bbr`.
    pub congestion: Congestion,
    /// The congestion window a connection starts with, in bytes (0: the controller's default).
    pub initial_window: u64,
}

#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Congestion {
    Cubic,
    NewReno,
    /// Loss is not its congestion signal: a phone's random loss does not halve its window.
    #[default]
    Bbr,
}

impl Sending {
    fn apply(self, transport: &mut quinn::TransportConfig) {
        use quinn::congestion::{BbrConfig, CubicConfig, NewRenoConfig};
        let window = (self.initial_window > 0).then_some(self.initial_window);
        match self.congestion {
            Congestion::Cubic => {
                let mut c = CubicConfig::default();
                if let Some(w) = window {
                    c.initial_window(w);
                }
                transport.congestion_controller_factory(Arc::new(c));
            }
            Congestion::NewReno => {
                let mut c = NewRenoConfig::default();
                if let Some(w) = window {
                    c.initial_window(w);
                }
                transport.congestion_controller_factory(Arc::new(c));
            }
            Congestion::Bbr => {
                let mut c = BbrConfig::default();
                if let Some(w) = window {
                    c.initial_window(w);
                }
                transport.congestion_controller_factory(Arc::new(c));
            }
        }
    }
}

/// The QUIC server endpoint's settings.
/// `max_streams` bounds the bidirectional streams a client may have open (see `max_streams`).
pub fn server_config(
    tls: Arc<rustls::ServerConfig>,
    idle_timeout: Duration,
    keep_alive: Duration,
    max_streams: u32,
    sending: Sending,
) -> anyhow::Result<quinn::ServerConfig> {
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    sending.apply(&mut transport);
    transport.max_idle_timeout(Some(idle_timeout.try_into()?));
    transport.keep_alive_interval(Some(keep_alive));
    // A connection starts with a few streams allowed; `accept_streams` allows more as the client opens them,
    // up to `max_streams`.
    transport.max_concurrent_bidi_streams(max_streams.min(super::INITIAL_STREAMS).into());
    transport.max_concurrent_uni_streams(0u32.into());
    config.transport_config(Arc::new(transport));
    // A phone that changes networks keeps its connection (and so its session).
    config.migration(true);
    Ok(config)
}

/// The server's UDP endpoint on `addr`, its socket's receive buffer asked to hold `recv_buffer` bytes
/// (`transport::udp::bind`).
pub fn server_endpoint(
    server: quinn::ServerConfig,
    addr: SocketAddr,
    recv_buffer: usize,
) -> anyhow::Result<quinn::Endpoint> {
    let socket = crate::transport::udp::bind(addr, recv_buffer, "QUIC")?;
    let runtime =
        quinn::default_runtime().ok_or_else(|| anyhow::anyhow!("no async runtime for QUIC"))?;
    Ok(quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(server),
        socket,
        runtime,
    )?)
}

/// Accepts QUIC connections until `shutdown`. Connections that did not negotiate ALPN `odd-im` are closed.
pub async fn serve(
    endpoint: quinn::Endpoint,
    max_frame_bytes: usize,
    max_streams: u32,
    bounds: super::StreamBounds,
    on_link: Arc<dyn Fn(Link) + Send + Sync>,
    shutdown: CancellationToken,
) {
    loop {
        let incoming = tokio::select! {
            i = endpoint.accept() => match i { Some(i) => i, None => return },
            _ = shutdown.cancelled() => break,
        };
        let on_link = on_link.clone();
        tokio::spawn(async move {
            let peer = incoming.remote_address();
            let connecting = match incoming.accept() {
                Ok(c) => c,
                Err(e) => {
                    debug!(%peer, error = %e, "quic connection refused");
                    return;
                }
            };
            // 0.5-RTT: a returning client's `connect` (sent in 0-RTT) is answered before the handshake
            // completes; everything after it waits for the handshake (`early.rs`).
            let (conn, early) = match connecting.into_0rtt() {
                Ok((conn, handshake)) => (conn, Some(super::early::Early::new(handshake))),
                Err(connecting) => match connecting.await {
                    Ok(c) => (c, None),
                    Err(e) => {
                        debug!(%peer, error = %e, "quic handshake failed");
                        return;
                    }
                },
            };
            if negotiated_alpn(&conn).as_deref() != Some(ALPN) {
                conn.close(
                    quinn::VarInt::from_u32(CLOSE_PROTOCOL),
                    b"ALPN odd-im required",
                );
                return;
            }
            on_link(link(
                conn,
                LinkInfo {
                    kind: TransportKind::Quic,
                    peer,
                },
                crate::transport::FrameLimit::until_connect(max_frame_bytes),
                Role::Server,
                max_streams,
                bounds,
                super::Extras {
                    endpoint: None,
                    early,
                },
            ));
        });
    }
    // Sessions close their own connections on shutdown; give them a moment, then stop the endpoint.
    let _ = tokio::time::timeout(Duration::from_secs(3), endpoint.wait_idle()).await;
    endpoint.close(quinn::VarInt::from_u32(CLOSE_NORMAL), b"shutdown");
}

fn negotiated_alpn(conn: &quinn::Connection) -> Option<Vec<u8>> {
    conn.handshake_data()?
        .downcast::<quinn::crypto::rustls::HandshakeData>()
        .ok()?
        .protocol
}

/// Opens a client connection (used by the client library and tests). With `on_early_refused` and a session
/// ticket from an earlier connection made with the same `tls` config (and `enable_early_data`), the link is
/// usable at once and its first frames go in 0-RTT; if the gateway rejects them (it lost the ticket: a
/// restart, another node), the connection is closed with `EARLY_REJECTED`, `on_early_refused` is called (to
/// drop the stale tickets), and the caller connects again. Without it the handshake completes first.
pub async fn connect(
    addr: SocketAddr,
    server_name: &str,
    tls: Arc<rustls::ClientConfig>,
    max_frame_bytes: usize,
    on_early_refused: Option<Box<dyn FnOnce() + Send>>,
) -> anyhow::Result<Link> {
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(Duration::from_secs(10)));
    // As the gateway's: a phone's uploads under random loss (`Sending`).
    Sending::default().apply(&mut transport);
    config.transport_config(Arc::new(transport));
    let bind: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0".parse()?
    } else {
        "[::]:0".parse()?
    };
    let mut endpoint = quinn::Endpoint::client(bind)?;
    endpoint.set_default_client_config(config);
    let connecting = endpoint.connect(addr, server_name)?;
    let attempt = match on_early_refused {
        Some(refused) => connecting.into_0rtt().map(|c| (c, refused)),
        None => Err(connecting),
    };
    let conn = match attempt {
        Ok(((conn, accepted), on_early_refused)) => {
            let watched = conn.clone();
            tokio::spawn(async move {
                if !accepted.await {
                    // The tickets we hold are stale: the caller starts over without them.
                    on_early_refused();
                    watched.close(
                        quinn::VarInt::from_u32(CLOSE_NORMAL),
                        EARLY_REJECTED.as_bytes(),
                    );
                }
            });
            conn
        }
        Err(connecting) => connecting.await?,
    };
    Ok(link(
        conn,
        LinkInfo {
            kind: TransportKind::Quic,
            peer: addr,
        },
        crate::transport::FrameLimit::fixed(max_frame_bytes),
        Role::Client,
        0,
        super::StreamBounds::CLIENT,
        super::Extras {
            endpoint: Some(endpoint),
            early: None,
        },
    ))
}
