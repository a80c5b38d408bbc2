//! What every session shares: limits, the token verifier, the shutdown signal.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::TokenVerifier;
use crate::config::Limits;
use crate::rooms::Rooms;
use crate::store::Store;

pub struct Context {
    pub limits: Limits,
    pub verifier: Arc<dyn TokenVerifier>,
    /// Tokens to users: the `connect` hook when configured, else `verifier` (the same for the HTTP API).
    pub auth: crate::hooks::Authenticator,
    pub rooms: Rooms,
    /// The `publish` hook (moderation before a message is stored), when configured.
    pub publish_hook: Option<Arc<crate::hooks::PublishHook>>,
    /// Where connects, disconnects, joins and leaves are recorded for the `events` hook (a no-op when off).
    pub events: crate::hooks::EventLog,
    /// The WebRTC media relay (off when `listen.rtc` is off).
    pub sfu: crate::sfu::Sfu,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub store: Store,
    /// Cancelled when the gateway stops: sessions tell their clients and close.
    pub shutdown: CancellationToken,
    /// Connections per IP address.
    pub per_ip: super::per_ip::PerIp,
    /// Sessions that a reconnect may take over.
    pub resumable: Arc<super::resume::Registry>,
    /// Every session task, so shutdown can wait for them to finish.
    pub sessions: TaskTracker,
    /// The process-wide memory budget for reassembly and outbound queues.
    pub budget: crate::transport::MemoryBudget,
    /// Test-only fault injection (`Config::faults`).
    pub faults: crate::config::Faults,
}
