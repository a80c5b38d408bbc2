//! The HTTP accept loop, with the limits `axum::serve` does not set: a deadline for the request header, a
//! bound on its size, and the per-IP connection limit shared with the protocol listeners.
//!
//! Without a header deadline a client that sends half a request line holds its socket forever (slowloris);
//! without the per-IP limit one address could open thousands of such sockets. A WebSocket upgraded here keeps
//! its HTTP connection's slot, so a browser tab counts once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::conn::{Activity, Tracked};
use crate::session::per_ip::PerIp;

/// The HTTP listener's limits (from `[limits]`).
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// A connection must deliver each request's header within this time.
    pub header_timeout: Duration,
    /// Largest request header (HTTP/1 read buffer; HTTP/2 header list).
    pub max_header_bytes: usize,
    /// HTTP/2 streams one connection may have open at once.
    pub http2_max_streams: u32,
    /// A connection with no request in flight this long is closed (`conn.rs`).
    pub idle_timeout: Duration,
    /// Keep-alive and user timeout of every accepted socket (a WebSocket's liveness under the gateway's
    /// pings), as on the TCP and TLS listeners (`transport::tcp::keep_alive`).
    pub tcp_keepalive: Duration,
}

/// Serves `app` until `shutdown`, then lets open requests finish. With `tls`, every connection is HTTPS
/// (`wss://` for the WebSocket).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    per_ip: PerIp,
    metrics: Arc<crate::metrics::Metrics>,
    shutdown: CancellationToken,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // hyper's floor for the read buffer is 8 KiB.
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(limits.http2_max_streams.max(1))
        // A peer that stops answering HTTP/2 pings is gone (an idle but live one is closed by `conn.rs`).
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(Duration::from_secs(20));
    let builder = Arc::new(builder);
    let connections = tokio_util::task::TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // As on the TCP and TLS listeners: a WebSocket push must not wait behind Nagle for the client's ACK of
        // the one before it (one round trip on a phone's network); hyper writes whole responses anyway.
        let _ = stream.set_nodelay(true);
        crate::transport::tcp::keep_alive(&stream, limits.tcp_keepalive);
        let label = if tls.is_some() { "https" } else { "http" };
        metrics.connections_total.with_label_values(&[label]).inc();
        let Some(slot) = per_ip.acquire(peer.ip()) else {
            metrics
                .connections_closed_total
                .with_label_values(&[label, "over_ip_limit"])
                .inc();
            tracing::debug!(%peer, "http connection refused: too many connections from its address");
            // Told why (429), briefly and bounded: a TLS handshake within the header deadline, one write.
            let why = format!(
                "too many connections from {} (at most {})",
                peer.ip(),
                per_ip.limit()
            );
            tokio::spawn(refuse(stream, tls.clone(), limits.header_timeout, why));
            continue;
        };
        let svc = Tracked {
            inner: TowerToHyperService::new(
                app.clone()
                    .layer(axum::Extension(ConnectInfo::<SocketAddr>(peer)))
                    .layer(axum::Extension(super::Secure(tls.is_some()))),
            ),
            activity: Activity::new(),
        };
        let (builder, shutdown, tls) = (builder.clone(), shutdown.clone(), tls.clone());
        connections.spawn(async move {
            let result = match tls {
                None => serve_one(&builder, TokioIo::new(stream), svc, limits, &shutdown).await,
                Some(acceptor) => {
                    // The TLS handshake is bounded by the same deadline as a request header.
                    match tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls)) => {
                            serve_one(&builder, TokioIo::new(tls), svc, limits, &shutdown).await
                        }
                        Ok(Err(e)) => Err(e.into()),
                        Err(_) => Err("TLS handshake timed out".into()),
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "http connection ended");
            }
            drop(slot);
        });
    }
    // Requests in flight may finish (bounded): WebSocket sessions are closed by the session layer itself.
    connections.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), connections.wait()).await;
}

type Service = Tracked<TowerToHyperService<Router>>;
type ConnError = Box<dyn std::error::Error + Send + Sync>;

/// Serves one connection until it ends, goes idle past its limits (`conn.rs`) or the gateway shuts down;
/// the last two close it gracefully (a response being written is finished first, within a header deadline).
async fn serve_one<I>(
    builder: &Builder<TokioExecutor>,
    io: I,
    svc: Service,
    limits: HttpLimits,
    shutdown: &CancellationToken,
) -> Result<(), ConnError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let activity = svc.activity.clone();
    let conn = builder.serve_connection_with_upgrades(io, svc);
    tokio::pin!(conn);
    tokio::select! {
        ended = conn.as_mut() => return ended,
        _ = activity.idle_past(limits.header_timeout, limits.idle_timeout) => {}
        _ = shutdown.cancelled() => {}
    }
    conn.as_mut().graceful_shutdown();
    tokio::time::timeout(limits.header_timeout, conn)
        .await
        .unwrap_or(Ok(()))
}

/// Answers a connection over its address's limit with `429 Too Many Requests` and the reason, then closes it.
/// Everything is bounded by `wait`; a peer that does not take the answer just loses the connection.
async fn refuse(
    stream: tokio::net::TcpStream,
    tls: Option<tokio_rustls::TlsAcceptor>,
    wait: Duration,
    why: String,
) {
    use tokio::io::AsyncWriteExt;
    let body = serde_json::json!({ "error": why, "code": "too_many_connections" }).to_string();
    let answer = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(wait, async move {
        match tls {
            None => {
                let mut s = stream;
                let _ = s.write_all(answer.as_bytes()).await;
                let _ = s.shutdown().await;
            }
            Some(acceptor) => {
                if let Ok(mut s) = acceptor.accept(stream).await {
                    let _ = s.write_all(answer.as_bytes()).await;
                    let _ = s.shutdown().await;
                }
            }
        }
    })
    .await;
}
