//! Wires the layers into a running gateway: binds every configured listener, starts the shared session
//! context, and stops it all gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

use crate::config::Config;
use crate::session::{self, ConfigVerifier, Context};
use crate::transport::{self, Link};

/// A gateway that is listening. Drop it or call `shutdown` to stop.
pub struct Gateway {
    pub tcp_addr: Option<SocketAddr>,
    ctx: Arc<Context>,
    listeners: TaskTracker,
}

impl Gateway {
    /// Binds all listeners, then serves in the background.
    pub async fn start(config: Config) -> anyhow::Result<Gateway> {
        config.validate()?;
        let shutdown = CancellationToken::new();
        let verifier = Arc::new(ConfigVerifier::new(
            &config.auth,
            config.anonymous_allowed(),
        ));
        let ctx = Arc::new(Context {
            limits: config.limits.clone(),
            verifier,
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
        listeners.close();
        Ok(Gateway {
            tcp_addr,
            ctx,
            listeners,
        })
    }

    /// Stops accepting, tells every client, and waits (bounded) for sessions to close.
    pub async fn shutdown(self, grace: Duration) {
        self.ctx.shutdown.cancel();
        self.listeners.wait().await;
        self.ctx.sessions.close();
        if tokio::time::timeout(grace, self.ctx.sessions.wait())
            .await
            .is_err()
        {
            tracing::warn!("some sessions did not close within {grace:?}");
        }
    }

    /// Resolves when shutdown has been requested (e.g. by a signal handler elsewhere).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.ctx.shutdown.clone()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.ctx.shutdown.cancel();
    }
}
