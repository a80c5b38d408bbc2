//! Wires the layers into a running gateway: opens the store, binds every configured listener, starts the
//! shared session context, and stops it all gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

use crate::auth::ConfigVerifier;
use crate::bus::Wire;
use crate::config::{Config, Profile};
use crate::http::{self, HttpState};
use crate::rooms::Rooms;
use crate::session::{self, Context};
use crate::transport::certs::CertMaterial;
use crate::transport::{self, quic, Link};

mod services;
use services::services;

/// A gateway that is listening. Drop it or call `shutdown` to stop.
pub struct Gateway {
    pub tcp_addr: Option<SocketAddr>,
    pub tls_addr: Option<SocketAddr>,
    /// UDP.
    pub quic_addr: Option<SocketAddr>,
    pub http_addr: Option<SocketAddr>,
    /// The HTTPS port (`wss://.../im`).
    pub https_addr: Option<SocketAddr>,
    /// The SFU's UDP port (WebRTC media).
    pub rtc_addr: Option<SocketAddr>,
    /// The PEM certificate TLS and QUIC present (clients of a dev gateway trust this file).
    pub cert_path: Option<std::path::PathBuf>,
    ctx: Arc<Context>,
    listeners: TaskTracker,
}

/// What `--check-config` verifies beyond `Config::validate`: that the token keys and, when configured, the TLS
/// certificate and key can be read and parsed. Binds nothing, opens no database.
pub fn check(config: &Config) -> anyhow::Result<()> {
    config.validate()?;
    check_publisher(config)?;
    ConfigVerifier::new(&config.auth, config.anonymous_allowed())
        .map_err(|e| anyhow::anyhow!("auth keys: {e}"))?;
    if let (Some(cert), Some(key)) = (config.tls.cert.as_deref(), config.tls.key.as_deref()) {
        CertMaterial::load(Some(cert), Some(key), &config.data_dir, false).with_context(|| {
            format!("TLS certificate {} / key {}", cert.display(), key.display())
        })?;
    } else if config.profile == Profile::Prod
        && (config.listen.tls.addr().is_some()
            || config.listen.quic.addr().is_some()
            || config.listen.https.addr().is_some())
    {
        anyhow::bail!("the prod profile needs tls.cert and tls.key for the TLS, QUIC and HTTPS listeners (or set them off)");
    }
    Ok(())
}

/// The server API's default sender must be a valid identity (the rules of a token's user).
fn check_publisher(config: &Config) -> anyhow::Result<()> {
    let api = &config.server_api;
    let publisher = crate::protocol::args::User {
        id: api.publisher_id.clone(),
        nick: api.publisher_nick.clone(),
        avatar: String::new(),
    };
    crate::auth::validate_named_user(&publisher)
        .map_err(|e| anyhow::anyhow!("server_api.publisher_id / publisher_nick: {e}"))
}

impl Gateway {
    /// Opens the store, binds all listeners, then serves in the background.
    pub async fn start(config: Config) -> anyhow::Result<Gateway> {
        Gateway::launch(config, None).await
    }

    /// `start`, as one node of a cluster over `wire` instead of `cluster.nats_url` (several nodes in one
    /// process over a `bus::MemoryHub`: tests/cluster_memory.rs).
    pub async fn start_on(config: Config, wire: Arc<dyn Wire>) -> anyhow::Result<Gateway> {
        Gateway::launch(config, Some(wire)).await
    }

    async fn launch(config: Config, wire: Option<Arc<dyn Wire>>) -> anyhow::Result<Gateway> {
        config.validate()?;
        check_publisher(&config)?;
        let shutdown = CancellationToken::new();
        let listeners = TaskTracker::new();
        let ctx = services(&config, wire, &shutdown, &listeners).await?;
        // The server API (disconnect, a user's sessions) and the offline hook reach this node's sessions
        // through the rooms service, which every node hears on the bus.
        ctx.rooms.set_sessions(ctx.resumable.clone());
        use crate::hooks::{Kind, MessageHook};
        for kind in [Kind::Message, Kind::Offline] {
            if let Some(hook) = MessageHook::new(
                kind,
                &config.hooks,
                ctx.rooms.node(),
                ctx.store.clone(),
                ctx.rooms.clone(),
                ctx.metrics.clone(),
            ) {
                listeners.spawn(hook.run(shutdown.clone()));
            }
        }
        // Search indexing and retention run behind the send path (docs/storage.md).
        let indexer = crate::archive::SearchIndexer::new(
            ctx.store.clone(),
            ctx.rooms.node(),
            ctx.metrics.clone(),
        )
        .deferring();
        listeners.spawn(indexer.run(shutdown.clone()));
        let pruner = crate::archive::Pruner::new(
            ctx.store.clone(),
            config.history.prune_settings(),
            ctx.rooms.node(),
            ctx.metrics.clone(),
        );
        listeners.spawn(pruner.run(shutdown.clone()));
        let on_link: Arc<dyn Fn(Link) + Send + Sync> = {
            let ctx = ctx.clone();
            Arc::new(move |link: Link| {
                let ctx2 = ctx.clone();
                ctx.sessions.spawn(session::run(link, ctx2));
            })
        };
        let limits = &config.limits;
        let keep_alive = Duration::from_millis(limits.tcp_keepalive_ms);
        let (mut tcp_addr, mut tls_addr, mut quic_addr) = (None, None, None);
        if let Some(addr) = config.listen.tcp.addr() {
            let (l, bound) = bind("TCP", addr).await?;
            tcp_addr = Some(bound);
            listeners.spawn(transport::tcp::serve(
                l,
                limits.max_frame_bytes,
                keep_alive,
                on_link.clone(),
                shutdown.clone(),
            ));
        }
        // TLS-over-TCP, QUIC and HTTPS share one certificate: configured, or generated for the dev profile.
        let material = certificate(&config)?;
        let cert_path = material.as_ref().map(|m| m.cert_path.clone());
        if let (Some(addr), Some(m)) = (config.listen.tls.addr(), &material) {
            let (l, bound) = bind("TLS", addr).await?;
            tls_addr = Some(bound);
            listeners.spawn(transport::tls::serve(
                l,
                m.server_config(&[quic::ALPN], false)?,
                limits.max_frame_bytes,
                keep_alive,
                on_link.clone(),
                shutdown.clone(),
            ));
        }
        if let (Some(addr), Some(m)) = (config.listen.quic.addr(), &material) {
            let server = quic::server_config(
                m.quic_server_config(&[quic::ALPN], quic::early::QUIC_TICKETS)?,
                Duration::from_millis(limits.quic_idle_timeout_ms),
                Duration::from_millis(limits.quic_keep_alive_ms),
                quic::max_streams(limits.max_pipes),
                quic::Sending {
                    congestion: limits.quic_congestion,
                    initial_window: limits.quic_initial_window_bytes,
                },
            )?;
            let endpoint = quic::server_endpoint(server, addr, limits.quic_udp_recv_buffer_bytes)
                .with_context(|| format!("cannot listen for QUIC on {addr}/udp"))?;
            let bound = endpoint.local_addr()?;
            info!(%bound, alpn = "odd-im", "QUIC listening (udp)");
            quic_addr = Some(bound);
            listeners.spawn(quic::serve(
                endpoint,
                limits.max_frame_bytes,
                quic::max_streams(limits.max_pipes),
                quic::StreamBounds {
                    frames: limits.outbound_queue,
                    bytes: limits.outbound_queue_bytes,
                },
                on_link.clone(),
                shutdown.clone(),
            ));
        }
        let origins = http::cors::Origins::new(&config.cors.origins);
        // One router for the HTTP and HTTPS ports: the same routes, state and limits.
        let app = http::router(HttpState {
            rooms: ctx.rooms.clone(),
            verifier: ctx.verifier.clone(),
            auth: ctx.auth.clone(),
            on_link: on_link.clone(),
            max_frame_bytes: limits.max_frame_bytes,
            metrics: ctx.metrics.clone(),
            budget: ctx.budget.clone(),
            upgrades: Arc::new(tokio::sync::Semaphore::new(
                limits.max_pending_upgrades.max(1),
            )),
            ws_liveness: Duration::from_millis(limits.idle_timeout_ms),
            server_api: Arc::new(config.server_api.clone()),
            sfu: ctx.sfu.clone(),
            rtc_resources: Arc::new(http::whip::Resources::new(
                config.rtc.max_publications_per_connection,
            )),
            body_timeout: Duration::from_millis(limits.http_body_timeout_ms.max(1)),
            metrics_need_key: config.metrics_need_key(),
            figures: services::figures(&ctx.rooms, &ctx.metrics, &ctx.budget, ctx.store.backend()),
            console: config.admin.enabled_in(config.profile),
            origins: origins.clone(),
        });
        info!(origins = %origins.describe(), "web pages of other origins ([cors] origins)");
        if config.admin.enabled_in(config.profile) {
            info!("admin console on at /admin of the HTTP and HTTPS listeners (docs/admin.md)");
        } else {
            info!("admin console off ([admin] enabled)");
        }
        let http_limits = http::HttpLimits {
            header_timeout: Duration::from_millis(limits.http_header_timeout_ms),
            max_header_bytes: limits.http_max_header_bytes,
            tcp_keepalive: Duration::from_millis(limits.tcp_keepalive_ms),
            http2_max_streams: limits.http2_max_streams,
            idle_timeout: Duration::from_millis(limits.http_idle_timeout_ms),
        };
        let https_tls = match (config.listen.https.addr(), &material) {
            (Some(_), Some(m)) => Some(tokio_rustls::TlsAcceptor::from(
                m.server_config(&[b"http/1.1"], false)?,
            )),
            _ => None,
        };
        let (mut http_addr, mut https_addr) = (None, None);
        for (addr, tls) in [
            (config.listen.http.addr(), None),
            (config.listen.https.addr(), https_tls),
        ] {
            let Some(addr) = addr else { continue };
            let (l, bound) = bind(if tls.is_some() { "HTTPS" } else { "HTTP" }, addr).await?;
            *(if tls.is_some() {
                &mut https_addr
            } else {
                &mut http_addr
            }) = Some(bound);
            listeners.spawn(http::serve(
                l,
                app.clone(),
                http_limits,
                ctx.per_ip.clone(),
                ctx.metrics.clone(),
                shutdown.clone(),
                tls,
            ));
        }
        listeners.close();
        Ok(Gateway {
            tcp_addr,
            tls_addr,
            quic_addr,
            http_addr,
            https_addr,
            rtc_addr: ctx.sfu.local_addr(),
            cert_path,
            ctx,
            listeners,
        })
    }

    /// Stops accepting, tells every client, and waits (bounded) for sessions to close.
    pub async fn shutdown(self, grace: Duration) {
        self.ctx.shutdown.cancel();
        self.ctx.sessions.close();
        if tokio::time::timeout(grace, self.ctx.sessions.wait())
            .await
            .is_err()
        {
            tracing::warn!("some sessions did not close within {grace:?}");
        }
        let _ = tokio::time::timeout(grace, self.listeners.wait()).await;
        self.ctx.store.close().await;
    }

    /// Cancelled when shutdown starts.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.ctx.shutdown.clone()
    }

    pub fn rooms(&self) -> &Rooms {
        &self.ctx.rooms
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.ctx.shutdown.cancel();
    }
}

/// Binds one TCP listener (TCP, TLS, HTTP or HTTPS) and logs where it listens.
async fn bind(what: &str, addr: SocketAddr) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let l = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for {what} on {addr}"))?;
    let bound = l.local_addr()?;
    let serves = if what.starts_with("HTTP") {
        " (/im WebSocket, /healthz, /readyz, /metrics, /api)"
    } else {
        ""
    };
    info!(%bound, "{what} listening{serves}");
    Ok((l, bound))
}

/// The certificate TLS, QUIC and HTTPS present, when any of them listens.
fn certificate(config: &Config) -> anyhow::Result<Option<CertMaterial>> {
    let l = &config.listen;
    if l.tls.addr().is_none() && l.quic.addr().is_none() && l.https.addr().is_none() {
        return Ok(None);
    }
    let material = CertMaterial::load(
        config.tls.cert.as_deref(),
        config.tls.key.as_deref(),
        &config.data_dir,
        config.profile == Profile::Dev,
    )?;
    info!(cert = %material.cert_path.display(), sha256 = %material.fingerprint(), "TLS certificate");
    Ok(Some(material))
}
