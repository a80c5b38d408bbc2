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

use crate::config::Config;
use crate::http::{self, HttpState};
use crate::rooms::Rooms;
use crate::session::{self, ConfigVerifier, Context, TokenVerifier};
use crate::store::Store;
use crate::transport::{self, Link};

/// A gateway that is listening. Drop it or call `shutdown` to stop.
pub struct Gateway {
    pub tcp_addr: Option<SocketAddr>,
    pub http_addr: Option<SocketAddr>,
    ctx: Arc<Context>,
    listeners: TaskTracker,
}

impl Gateway {
    /// Opens the store, binds all listeners, then serves in the background.
    pub async fn start(config: Config) -> anyhow::Result<Gateway> {
        config.validate()?;
        let shutdown = CancellationToken::new();
        let verifier: Arc<dyn TokenVerifier> = Arc::new(ConfigVerifier::new(
            &config.auth,
            config.anonymous_allowed(),
        ));
        let url = config.database_url();
        let store = Store::open(&url, config.database.schema.as_deref())
            .await
            .with_context(|| format!("cannot open the database {}", redact(&url)))?;
        info!(backend = store.backend(), url = %redact(&url), "store ready");
        let rooms = Rooms::new(store.clone(), config.room_policy());
        let ctx = Arc::new(Context {
            limits: config.limits.clone(),
            verifier: verifier.clone(),
            rooms: rooms.clone(),
            store,
            shutdown: shutdown.clone(),
            sessions: TaskTracker::new(),
        });
        let on_link: Arc<dyn Fn(Link) + Send + Sync> = {
            let ctx = ctx.clone();
            Arc::new(move |link: Link| {
                let ctx2 = ctx.clone();
                ctx.sessions.spawn(session::run(link, ctx2));
            })
        };
        let listeners = TaskTracker::new();

        let mut tcp_addr = None;
        if let Some(addr) = config.listen.tcp.addr() {
            let l = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen for TCP on {addr}"))?;
            let bound = l.local_addr()?;
            info!(%bound, "TCP listening");
            tcp_addr = Some(bound);
            listeners.spawn(transport::tcp::serve(
                l,
                config.limits.max_frame_bytes,
                on_link.clone(),
                shutdown.clone(),
            ));
        }

        let mut http_addr = None;
        if let Some(addr) = config.listen.http.addr() {
            let l = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen for HTTP on {addr}"))?;
            let bound = l.local_addr()?;
            info!(%bound, "HTTP listening (/healthz, /readyz, /api)");
            http_addr = Some(bound);
            let app = http::router(HttpState { rooms, verifier });
            listeners.spawn(http::serve(l, app, shutdown.clone()));
        }

        listeners.close();
        Ok(Gateway {
            tcp_addr,
            http_addr,
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

/// A database URL fit for logs: any password replaced.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}
