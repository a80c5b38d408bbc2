//! The per-connection task: read frames, reassemble, dispatch, answer; close cleanly with a reason.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use tracing::{debug, info};

use super::acks::AckState;
use super::context::Context;
use super::end::End;
use super::error::SessionError;
use super::pipes::Pipes;
use super::rate::RateLimit;
use super::{now_secs, Identity};
use crate::metrics::LinkMetrics;
use crate::protocol::args::PipeKind;
use crate::protocol::frames::{ack_frame, status_frame};
use crate::protocol::status::codes;
use crate::protocol::{Frame, Message, Reassembler, Request, Status};
use crate::transport::{Inbound, Link, LinkInfo, Outbox};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How long a closing session waits for its transport to flush the last frames.
pub(super) const CLOSE_FLUSH: Duration = Duration::from_secs(5);

static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// The largest message gathered from fragments before `connect` succeeds: a whole `connect` command (8-byte
/// head and at most 65,535 bytes of arguments) and nothing more, so an unauthenticated client cannot make the
/// gateway hold megabytes.
pub const PRE_CONNECT_MESSAGE: usize = 8 + 65_535;

pub struct Session {
    pub(super) id: u64,
    pub(super) ctx: Arc<Context>,
    pub(super) info: LinkInfo,
    pub(super) out: Outbox,
    pub(super) identity: Option<Identity>,
    pub(super) pipes: Pipes,
    /// (pipe, room id) for every room a pipe of this connection joined.
    pub(super) joined: BTreeSet<(u16, String)>,
    reassembler: Reassembler,
    /// What the reassembler holds, charged to the process-wide budget (given back whatever ends the session).
    reassembly_hold: crate::transport::Hold,
    acks: AckState,
    protocol_errors: u32,
    /// The transaction id of the request being handled.
    pub(super) current_txid: u16,
    /// Bounds the messages waiting for their commit (see send.rs).
    pub(super) in_flight: Arc<tokio::sync::Semaphore>,
    /// When the request being handled arrived (for deferred answers' latency).
    pub(super) current_started: std::time::Instant,
    /// Frames to send right after the current request's answer.
    pub(super) after_answer: Vec<Frame>,
    link_metrics: LinkMetrics,
    /// Notified when a reconnect takes this session over.
    pub(super) kick: Arc<Notify>,
    rate: RateLimit,
    /// Properties set on pipe 0 (the connection itself).
    pub(super) conn_properties: serde_json::Map<String, serde_json::Value>,
    /// Rooms the token presented at `connect` (or `refresh`) limits this connection to.
    pub(super) claims: crate::rooms::RoomClaims,
    /// When that token expires (unix seconds); the run loop re-arms its timer whenever this changes.
    pub(super) token_expires: Option<u64>,
    /// A resumed session's outbox and queue, swapped in right after the connect answer.
    pub(super) pending_splice: Option<(Outbox, crate::transport::OutboundRx)>,
}

/// The command label for metrics: a fixed set, so a client cannot mint label values.
fn command_label(r: &Request) -> &'static str {
    match r {
        Request::Unknown(_) => "unknown",
        other => other.static_name(),
    }
}

/// Counts one answered command and its latency.
pub(super) fn record_command(
    m: &crate::metrics::Metrics,
    name: &'static str,
    code: &'static str,
    started: std::time::Instant,
) {
    m.commands_total.with_label_values(&[name, code]).inc();
    m.command_duration_seconds
        .with_label_values(&[name])
        .observe(started.elapsed().as_secs_f64());
}

/// Runs one connection to its end.
pub async fn run(link: Link, ctx: Arc<Context>) {
    let (tx, rx) = tokio::sync::mpsc::channel(ctx.limits.outbound_queue);
    let stop = CancellationToken::new();
    let mut writer = link.writer.start(rx, stop.clone());
    // A WebSocket came through the HTTP listener, whose connection already holds its address's slot.
    let slot = if link.info.kind == crate::transport::TransportKind::WebSocket {
        None
    } else {
        match ctx.per_ip.acquire(link.info.peer.ip()) {
            Some(slot) => Some(slot),
            None => return refuse_over_ip_limit(link.info, ctx, Outbox::new(tx), writer).await,
        }
    };
    let mut inbound = link.inbound;
    let mut s = Session {
        id: NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed),
        // Before `connect` succeeds only a connect-sized message may be gathered (see PRE_CONNECT_MESSAGE).
        reassembler: Reassembler::new(PRE_CONNECT_MESSAGE.min(ctx.limits.max_message_bytes)),
        reassembly_hold: crate::transport::Hold::new(ctx.budget.clone()),
        pipes: Pipes::new(ctx.limits.max_pipes),
        out: Outbox::with_metrics(tx, ctx.metrics.link(link.info.kind))
            .with_byte_limit(ctx.limits.outbound_queue_bytes)
            .with_budget(ctx.budget.clone()),
        identity: None,
        joined: BTreeSet::new(),
        acks: AckState::default(),
        protocol_errors: 0,
        current_txid: 0,
        in_flight: super::send::in_flight_limit(),
        after_answer: Vec::new(),
        current_started: std::time::Instant::now(),
        link_metrics: ctx.metrics.link(link.info.kind),
        kick: Arc::new(Notify::new()),
        rate: RateLimit::new(ctx.limits.commands_per_second),
        pending_splice: None,
        claims: crate::rooms::RoomClaims::any(),
        token_expires: None,
        conn_properties: serde_json::Map::new(),
        info: link.info,
        ctx,
    };
    info!(conn = s.id, transport = %s.info.kind, peer = %s.info.peer, "connection open");
    let transport = s.info.kind.as_str();
    let metrics = s.ctx.metrics.clone();
    metrics
        .connections_total
        .with_label_values(&[transport])
        .inc();
    metrics
        .connections_open
        .with_label_values(&[transport])
        .inc();
    let limits = s.ctx.limits.clone();
    let handshake = tokio::time::sleep(Duration::from_millis(limits.handshake_timeout_ms));
    // Armed once the token's expiry is known (connect) and re-armed by `refresh`.
    let expiry = tokio::time::sleep(Duration::from_secs(365 * 24 * 3600));
    tokio::pin!(handshake, expiry);
    // The expiry the timer is armed for.
    let mut armed: Option<u64> = None;
    let shutdown = s.ctx.shutdown.clone();
    let end = loop {
        // Re-read each time: a resumed session swaps in its old outbox.
        let overflowed = s.out.overflowed().clone();
        let kick = s.kick.clone();
        if s.token_expires != armed {
            armed = s.token_expires;
            if let Some(exp) = armed {
                // JWT validation allows 5 s of clock skew; so does the live check.
                let left = exp.saturating_sub(u64::from(now_secs())) + 5;
                expiry
                    .as_mut()
                    .reset(tokio::time::Instant::now() + Duration::from_secs(left));
            }
        }
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break End::Shutdown,
            _ = overflowed.cancelled() => break End::SlowConsumer,
            _ = kick.notified() => break End::TakenOver,
            _ = &mut handshake, if s.identity.is_none() => break End::HandshakeTimeout,
            _ = &mut expiry, if s.token_expires.is_some() => break End::TokenExpired,
            item = inbound.recv() => {
                match item {
                    None => break End::PeerGone,
                    Some(Inbound::Failed(reason)) => break End::Lost(reason),
                    Some(Inbound::Closed(reason)) => break End::ClientClosed(reason),
                    Some(Inbound::Violation(reason)) => break End::Transport(reason),
                    Some(Inbound::Malformed(e)) => {
                        if let Some(end) = s.on_error(None, 0, e.into()).await {
                            break end;
                        }
                    }
                    Some(Inbound::Frame(frame)) => {
                        // A panic while handling one frame ends this session like any other end (rooms left,
                        // presence told, gauges and streams released), never as a leaked half-session.
                        match AssertUnwindSafe(s.on_frame(frame)).catch_unwind().await {
                            Ok(Some(end)) => break end,
                            Ok(None) => {}
                            Err(panic) => break s.on_panic(panic.as_ref()),
                        }
                    }
                }
            }
        }
    };
    drop(inbound);
    metrics
        .connections_closed_total
        .with_label_values(&[transport, end.label()])
        .inc();
    metrics
        .connections_open
        .with_label_values(&[transport])
        .dec();
    match &end {
        End::SlowConsumer => metrics
            .slow_consumer_disconnects_total
            .with_label_values(&[transport])
            .inc(),
        End::Transport(_) => metrics
            .protocol_errors_total
            .with_label_values(&["transport"])
            .inc(),
        _ => {}
    }
    let grace = Duration::from_millis(limits.resume_grace_ms);
    if end.resumable()
        && s.identity.is_some()
        && !grace.is_zero()
        && !s.out.overflowed().is_cancelled()
    {
        if let End::TakenOver = end {
            // The old transport may still be read (the device is alive on two networks): say goodbye on it
            // so its client does not reconnect and take the session back. What the writer takes from the queue
            // until then goes to the old transport; the rest follows the session.
            let goodbye = Status::error(codes::CONNECT_CLOSED, "taken over by a reconnect");
            let _ = s.out.push(status_frame(0, 0, &goodbye, now_secs()));
            s.out.try_close("taken over by a reconnect");
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                while !writer.is_finished() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
            .await;
        }
        // A parked session holds no socket: free its address's slot for the reconnect.
        drop(slot);
        // Detach the queue from the dead transport without losing what it holds.
        stop.cancel();
        match (&mut writer).await {
            Ok(queued) => return s.park(end, queued, grace).await,
            Err(e) => debug!(conn = s.id, error = %e, "writer ended abnormally; not parking"),
        }
    }
    s.finish(end, Some(writer)).await;
}

impl Session {
    /// Logs and counts a panic caught at the task boundary; the session then ends as `End::Internal`.
    fn on_panic(&self, panic: &(dyn std::any::Any + Send)) -> End {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        tracing::error!(conn = self.id, panic = %what, "session task panicked; closing the connection");
        self.ctx.metrics.session_panics_total.inc();
        End::Internal
    }

    async fn on_frame(&mut self, frame: Frame) -> Option<End> {
        self.link_metrics.received(frame.kind, frame.wire_len());
        if let Some(received) = self.acks.on_received(frame.wire_len()) {
            if self.out.reply(ack_frame(received)).await.is_err() {
                return Some(End::SlowConsumer);
            }
        }
        let pipe = frame.pipe;
        let pushed = self.reassembler.push(frame);
        if !self.reassembly_hold.resize(self.reassembler.buffered()) {
            return self.over_budget("reassembly").await;
        }
        let message = match pushed {
            Ok(None) => return None,
            Ok(Some(m)) => m,
            Err(e) => return self.on_error(Some(pipe), 0, e.into()).await,
        };
        match message {
            Message::Abort { .. } => None,
            Message::AckWindowSize { size, .. } => {
                self.acks.set_window(size);
                None
            }
            Message::Ack { received, .. } => {
                self.acks.peer_acked = received;
                None
            }
            Message::Command { pipe, command } => {
                let started = std::time::Instant::now();
                let txid = command.txid;
                if !self.rate.allow() {
                    let limit = self.ctx.limits.commands_per_second;
                    return self
                        .on_error(Some(pipe), txid, SessionError::RateLimited(limit))
                        .await;
                }
                self.current_txid = txid;
                self.current_started = started;
                let request = match Request::parse(&command.args) {
                    Ok(r) => r,
                    Err(e) => {
                        self.ctx
                            .metrics
                            .commands_total
                            .with_label_values(&["invalid", codes::CALL_FAILED])
                            .inc();
                        return self.on_error(Some(pipe), txid, e.into()).await;
                    }
                };
                let name = command_label(&request);
                let result = self
                    .dispatch(pipe, request, &command.args, command.payload)
                    .await;
                let code = match &result {
                    Ok(Some(status)) => Some(status.code),
                    Ok(None) => None,
                    Err(e) => Some(e.status().code),
                };
                if let Some(code) = code {
                    record_command(&self.ctx.metrics, name, code, started);
                }
                let end = match result {
                    Ok(None) => None,
                    Ok(Some(status)) => {
                        if txid != 0 {
                            self.answer(pipe, txid, &status).await
                        } else {
                            None
                        }
                    }
                    Err(e) => self.on_error(Some(pipe), txid, e).await,
                };
                // Pushes that must follow the answer (the coverage list after a join).
                for frame in std::mem::take(&mut self.after_answer) {
                    if end.is_none() && self.out.reply(frame).await.is_err() {
                        return Some(End::SlowConsumer);
                    }
                }
                // A resumed session: what queued while it was away follows the answer, then live traffic.
                if let Some((old, queued)) = self.pending_splice.take() {
                    if self.out.splice(queued).await.is_err() {
                        return Some(End::SlowConsumer);
                    }
                    self.out = old;
                }
                end
            }
        }
    }

    /// The process-wide memory budget cannot hold what this connection sends: tell it, and close.
    async fn over_budget(&mut self, what: &'static str) -> Option<End> {
        self.ctx
            .metrics
            .memory_budget_refusals_total
            .with_label_values(&[what])
            .inc();
        let reason = "the gateway's memory budget is exhausted; try again later".to_string();
        tracing::warn!(conn = self.id, what, "memory budget exhausted; closing");
        let _ = self
            .answer(0, 0, &Status::error(codes::CONNECT_CLOSED, reason.clone()))
            .await;
        Some(End::AfterStatus(reason))
    }

    /// Routes a request by pipe and name. `Ok(None)`: nothing to answer.
    async fn dispatch(
        &mut self,
        pipe: u16,
        request: Request,
        raw_args: &[u8],
        payload: bytes::Bytes,
    ) -> Result<Option<Status>, SessionError> {
        if self.identity.is_none() {
            return match (pipe, request) {
                (0, Request::Connect(args)) => {
                    let answer = self.connect(args).await;
                    if self.identity.is_some() {
                        // Authenticated: messages may now grow to the configured size.
                        self.reassembler
                            .set_max_message(self.ctx.limits.max_message_bytes);
                    }
                    answer.map(Some)
                }
                (_, other) => Err(SessionError::NotConnected(other.name().to_string())),
            };
        }
        let kind = if pipe == 0 {
            None
        } else {
            Some(
                self.pipes
                    .get(pipe)
                    .ok_or(SessionError::UnknownPipe(pipe))?
                    .kind,
            )
        };
        let status = match (kind, request) {
            (_, Request::Status) => return Ok(None),
            (_, Request::Unknown(name)) => return Err(SessionError::UnknownCommand(name)),
            (None, Request::Connect(args)) => self.connect(args).await?,
            (None, Request::Refresh(args)) => self.refresh(args)?,
            (_, Request::Unsupported(name)) => return Err(SessionError::Unsupported(name)),
            (None, Request::Create(args)) => self.create(args)?,
            (None, Request::Release(args)) => self.release(args).await?,
            (Some(PipeKind::Messaging), Request::Join(args)) => return self.join(pipe, args).await,
            (Some(PipeKind::Messaging), Request::Leave(args)) => self.leave(pipe, args)?,
            (Some(PipeKind::Messaging), Request::Send(args)) => {
                return self.send(pipe, args, payload).await
            }
            (Some(PipeKind::Messaging), Request::Chmod(args)) => self.chmod(args).await?,
            (_, Request::History(args)) => self.history(args).await?,
            (_, Request::SetProperty(a)) => self.set_property(pipe, a).await?,
            (_, Request::GetProperty(a)) => self.get_property(pipe, a).await?,
            (Some(PipeKind::Signaling), Request::Play(a)) => self.play(pipe, a).await?,
            (Some(PipeKind::Signaling), Request::Stop(a)) => self.stop(pipe, a)?,
            (Some(PipeKind::Signaling), Request::Sdp(_) | Request::Candidate(_)) => {
                self.relay(pipe, raw_args)?
            }
            (place, r) => {
                return Err(SessionError::WrongPipe {
                    command: r.name().to_string(),
                    place: match place {
                        None => "pipe 0".to_string(),
                        Some(k) => format!("a {} pipe", k.as_str()),
                    },
                })
            }
        };
        Ok(Some(status))
    }

    /// Sends `status` on `pipe` for `txid`. `Some(End)` when the client cannot take it.
    pub(super) async fn answer(&mut self, pipe: u16, txid: u16, status: &Status) -> Option<End> {
        match self
            .out
            .reply(status_frame(pipe, txid, status, now_secs()))
            .await
        {
            Ok(()) => None,
            Err(_) => Some(End::SlowConsumer),
        }
    }

    /// Answers an error. Errors are sent even for txid 0, so a client that asked for no answer still learns
    /// why its command did nothing. Returns `Some(End)` when the connection must close.
    async fn on_error(&mut self, pipe: Option<u16>, txid: u16, err: SessionError) -> Option<End> {
        match &err {
            SessionError::Room(_, crate::rooms::RoomError::Store(e)) => {
                self.ctx.metrics.store_errors_total.inc();
                tracing::error!(conn = self.id, error = %e, "storage failed")
            }
            _ => debug!(conn = self.id, error = %err, "request failed"),
        }
        match &err {
            SessionError::NotYourSession(_) => self
                .ctx
                .metrics
                .auth_failures_total
                .with_label_values(&["not_your_session"])
                .inc(),
            SessionError::Auth(e) => self
                .ctx
                .metrics
                .auth_failures_total
                .with_label_values(&[e.kind()])
                .inc(),
            SessionError::Frame(_)
            | SessionError::Args(_)
            | SessionError::UnknownCommand(_)
            | SessionError::UnknownPipe(_)
            | SessionError::WrongPipe { .. }
            | SessionError::NotConnected(_) => self
                .ctx
                .metrics
                .protocol_errors_total
                .with_label_values(&[err.kind()])
                .inc(),
            _ => {}
        }
        let status = err.status();
        if let Some(end) = self.answer(pipe.unwrap_or(0), txid, &status).await {
            return Some(end);
        }
        if let SessionError::Frame(_) = err {
            self.protocol_errors += 1;
            if self.protocol_errors >= self.ctx.limits.max_protocol_errors {
                let reason = format!("too many malformed frames ({})", self.protocol_errors);
                let closing = Status::error(codes::CONNECT_CLOSED, reason.clone());
                let _ = self.answer(0, 0, &closing).await;
                return Some(End::AfterStatus(reason));
            }
        }
        if err.closes_connection() {
            return Some(End::AfterStatus(err.to_string()));
        }
        None
    }

    /// Called whenever a pipe goes away (release or connection end).
    pub(super) async fn on_pipe_closed(&mut self, pipe: u16, reason: &str) {
        self.reassembler.forget_pipe(pipe);
        self.leave_rooms_of(pipe, reason);
        self.ctx.rooms.stop_stream(self.id, pipe, None, reason);
    }
}

/// Tells a connection over its address's limit why, and closes it.
async fn refuse_over_ip_limit(
    info: LinkInfo,
    ctx: Arc<Context>,
    out: Outbox,
    writer: tokio::task::JoinHandle<crate::transport::OutboundRx>,
) {
    let reason = format!(
        "too many connections from {} (at most {})",
        info.peer.ip(),
        ctx.per_ip.limit()
    );
    let transport = info.kind.as_str();
    ctx.metrics
        .connections_total
        .with_label_values(&[transport])
        .inc();
    ctx.metrics
        .connections_closed_total
        .with_label_values(&[transport, "over_ip_limit"])
        .inc();
    let _ = out.push(status_frame(
        0,
        0,
        &Status::error(codes::CONNECT_REJECTED, reason.clone()),
        now_secs(),
    ));
    out.try_close(&reason);
    drop(out);
    let _ = tokio::time::timeout(CLOSE_FLUSH, writer).await;
    info!(transport, peer = %info.peer, %reason, "connection refused");
}
