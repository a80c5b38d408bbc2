//! TLS over TCP: the TCP transport's codec inside a rustls session. The handshake is bounded in time so a
//! client that opens a socket and says nothing cannot hold a task forever.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::link::{Link, LinkInfo, TransportKind};
use super::tcp;

/// Longest a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn serve(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    max_frame_bytes: usize,
    keep_alive_after: Duration,
    on_link: Arc<dyn Fn(Link) + Send + Sync>,
    shutdown: CancellationToken,
) {
    let acceptor = TlsAcceptor::from(config);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                warn!(error = %e, "tls accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tcp::keep_alive(&stream, keep_alive_after);
        let acceptor = acceptor.clone();
        let on_link = on_link.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => on_link(tcp::link(
                    tls,
                    LinkInfo {
                        kind: TransportKind::Tls,
                        peer,
                    },
                    super::FrameLimit::until_connect(max_frame_bytes),
                )),
                Ok(Err(e)) => debug!(%peer, error = %e, "tls handshake failed"),
                Err(_) => debug!(%peer, "tls handshake timed out"),
            }
        });
    }
}
