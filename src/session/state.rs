//! What one connection's session holds, and the two values that pass between the run loop and a handler:
//! the `Call` a handler is asked to serve and the `Answer` it gives back.
//!
//! Handlers (one file per command group) take a `Call` and the parsed arguments and return an `Answer`; the
//! run loop (`connection.rs`) alone writes answers, records command metrics and turns errors into statuses.
//! Nothing a handler needs is smuggled through fields of `Session`, and nothing it wants done after its
//! answer is left in one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use super::context::Context;
use super::core::{Core, CoreLimits};
use super::error::SessionError;
use super::pipes::Pipes;
use super::Identity;
use crate::metrics::LinkMetrics;
use crate::protocol::{Frame, Status};
use crate::rooms::RoomClaims;
use crate::transport::{Hold, LinkInfo, OutboundRx, Outbox};

/// The largest message gathered from fragments before `connect` succeeds: a whole `connect` command (8-byte
/// head and at most 65,535 bytes of arguments) and nothing more, so an unauthenticated client cannot make the
/// gateway hold megabytes.
pub const PRE_CONNECT_MESSAGE: usize = 8 + 65_535;

/// `publish` hook checks one connection may have in flight (send.rs).
pub const MAX_HOOK_CHECKS: usize = 8;

/// Messages one connection may have waiting for their commit (see send.rs).
pub const MAX_IN_FLIGHT: u32 = 1024;

/// Store queries (history, search, read, redact, chmod) one connection may have running at once, off its
/// task; more wait their turn off the task too.
pub const MAX_QUERIES: usize = 8;

/// Store queries one connection may have outstanding (running or waiting); past that a query is refused at
/// once (`too many queries`) rather than held, so neither memory nor the connection's other pipes wait on it.
pub const MAX_QUERIES_QUEUED: u32 = 256;

pub struct Session {
    pub(super) id: u64,
    pub(super) ctx: Arc<Context>,
    pub(super) info: LinkInfo,
    pub(super) out: Outbox,
    pub(super) identity: Option<Identity>,
    pub(super) pipes: Pipes,
    /// (pipe, room id) for every room a pipe of this connection joined.
    pub(super) joined: super::joined::JoinedRooms,
    /// The rules that need no I/O: handshake and token timers, command rate, acknowledgements, reassembly,
    /// malformed frames (core.rs); this session's run loop drives it.
    pub(super) core: Core,
    /// What the reassembler holds, charged to the process-wide budget (given back whatever ends the session).
    pub(super) reassembly_hold: Hold,
    /// Bounds the messages waiting for their commit (see send.rs).
    pub(super) in_flight: Arc<tokio::sync::Semaphore>,
    pub(super) link_metrics: LinkMetrics,
    /// Notified when a reconnect takes this session over.
    pub(super) kick: Arc<super::resume::Kick>,
    /// Properties set on pipe 0 (the connection itself).
    pub(super) conn_properties: serde_json::Map<String, serde_json::Value>,
    /// Rooms the token presented at `connect` (or `refresh`) limits this connection to.
    pub(super) claims: RoomClaims,
    /// Keeps answers in request order per pipe while some are worked out off this task (order.rs).
    pub(super) order: super::order::PipeOrder,
    /// The rate of `typing` announcements per room (typing.rs).
    pub(super) typing: super::rate::TypingGate,
    /// Bounds the store queries running off this task (`off_task`).
    pub(super) queries: Arc<tokio::sync::Semaphore>,
    /// While a message waits for the `publish` hook: closed once it is queued for the journal, so the
    /// connection's next messages queue after it (send.rs).
    pub(super) send_gate: Option<tokio::sync::oneshot::Receiver<()>>,
    /// This connection's share of the `publish` hook's checks: one flooding connection waits on its own
    /// share instead of taking every slot (`MAX_HOOK_CHECKS`).
    pub(super) hook_share: Arc<tokio::sync::Semaphore>,
    /// The reader's frame limit, raised once `connect` succeeds (transport/limit.rs).
    pub(super) frame_limit: Option<crate::transport::FrameLimit>,
    /// Bounds the store queries outstanding, running or waiting (`off_task`); `finish` waits for them.
    pub(super) queued: Arc<tokio::sync::Semaphore>,
}

impl Session {
    /// A session not yet connected, writing through `out`.
    pub(super) fn new(id: u64, info: LinkInfo, ctx: Arc<Context>, out: Outbox) -> Session {
        Session {
            id,
            // Before `connect` succeeds only a connect-sized message may be gathered (see PRE_CONNECT_MESSAGE).
            core: Core::new(
                CoreLimits {
                    handshake: Duration::from_millis(ctx.limits.handshake_timeout_ms),
                    commands_per_second: ctx.limits.commands_per_second,
                    pre_connect_message: PRE_CONNECT_MESSAGE,
                    max_message: ctx.limits.max_message_bytes,
                    max_protocol_errors: ctx.limits.max_protocol_errors,
                },
                tokio::time::Instant::now(),
            ),
            reassembly_hold: Hold::new(ctx.budget.clone()),
            pipes: Pipes::new(ctx.limits.max_pipes),
            out,
            identity: None,
            joined: Default::default(),
            in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT as usize)),
            link_metrics: ctx.metrics.link(info.kind.as_str()),
            kick: Arc::default(),
            claims: RoomClaims::any(),
            conn_properties: serde_json::Map::new(),
            order: Default::default(),
            typing: Default::default(),
            send_gate: None,
            hook_share: Arc::new(tokio::sync::Semaphore::new(MAX_HOOK_CHECKS)),
            frame_limit: None,
            queries: Arc::new(tokio::sync::Semaphore::new(MAX_QUERIES)),
            queued: Arc::new(tokio::sync::Semaphore::new(MAX_QUERIES_QUEUED as usize)),
            info,
            ctx,
        }
    }
}

impl Session {
    /// An answer worked out off the session task by `work` (a store query): the connection reads on, and
    /// the answer is written in its turn on its pipe (order.rs). At most `MAX_QUERIES` run at once and
    /// `MAX_QUERIES_QUEUED` are outstanding; nothing here waits on the session task.
    pub(super) async fn off_task(
        &self,
        work: impl std::future::Future<Output = Result<Status, SessionError>> + Send + 'static,
    ) -> Result<Answer, SessionError> {
        let outstanding = self
            .queued
            .clone()
            .try_acquire_owned()
            .map_err(|_| SessionError::TooManyQueries(MAX_QUERIES_QUEUED as usize))?;
        let running = self.queries.clone();
        let work = async move {
            let _slot = running.acquire_owned().await;
            work.await
        };
        Ok(Answer {
            in_turn: true,
            ..Answer::later(Box::pin(work), outstanding)
        })
    }
}

/// The request a handler serves: where it came from and when.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    pub pipe: u16,
    /// 0: the client wants no answer (errors are still sent).
    pub txid: u16,
    /// When the request arrived (for the latency of answers given later).
    pub started: Instant,
}

/// A status that is known only later (a `send` waiting for its commit). The run loop awaits it off the session
/// task, so the connection keeps reading meanwhile.
pub type Later = BoxFuture<'static, Result<Status, SessionError>>;

/// What a handler gives back: its status, and what must follow it on the wire.
#[derive(Default)]
pub struct Answer {
    /// `None` only for requests that are never answered (`status` pushes from the client).
    pub status: Option<Status>,
    /// The status comes later; the run loop spawns this and answers when it resolves.
    pub later: Option<Later>,
    /// Held until that later answer is queued: `finish` waits for every permit, so a closing session's
    /// accepted messages are answered before its goodbye.
    pub in_flight: Option<tokio::sync::OwnedSemaphorePermit>,
    /// That later answer keeps request order on its pipe (a store query: see order.rs). A `send`'s does not:
    /// it comes when its commit does (a connection's messages commit in order), and one post waiting for a
    /// far node does not hold up the refusal of the next.
    pub in_turn: bool,
    /// Frames written right after the status, in order (the coverage push after a join, replayed messages).
    pub then: Vec<Frame>,
    /// A catch-up join: once `then` is written, the live messages held meanwhile follow (see rooms/catchup.rs).
    pub catch_up: Option<CatchUp>,
    /// A resumed session: its old outbox and what queued in it, written after everything above.
    pub splice: Option<(Outbox, OutboundRx)>,
    /// The session ends once the status is written (`close`, a goodbye).
    pub end: Option<super::end::End>,
}

/// Which catch-up to finish after a join's replay was written.
pub struct CatchUp {
    pub pipe: u16,
    pub rid: String,
    /// The last `mid` replayed; held messages up to it are dropped as already sent.
    pub last: Option<i64>,
}

impl Answer {
    /// No answer at all.
    pub fn none() -> Answer {
        Answer::default()
    }

    /// An answer given when `later` resolves, holding `permit` until it is queued.
    pub fn later(later: Later, permit: tokio::sync::OwnedSemaphorePermit) -> Answer {
        Answer {
            later: Some(later),
            in_flight: Some(permit),
            ..Answer::default()
        }
    }

    /// Adds frames to write after the status.
    pub fn then(mut self, frames: impl IntoIterator<Item = Frame>) -> Answer {
        self.then.extend(frames);
        self
    }
}

impl From<Status> for Answer {
    fn from(status: Status) -> Answer {
        Answer {
            status: Some(status),
            ..Answer::default()
        }
    }
}
