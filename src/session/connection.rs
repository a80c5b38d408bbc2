//! The per-connection task, read like mini-redis's `Handler::run`: read a frame, reassemble it, turn a command
//! into a `Request`, call its one handler with a `Call`, write the `Answer` it returns. Errors become a status
//! here and only here; command metrics are recorded here and only here. How the session ends (park, resume,
//! finish) is in `lifecycle.rs`.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use tracing::info;

use super::commands::Cx;
use super::context::Context;
use super::core::Timer;
use super::end::End;
use super::error::SessionError;
use super::lifecycle::refuse_over_ip_limit;
use super::state::{Answer, Call, Session};
use crate::protocol::outgoing::ack_frame;
use crate::protocol::{Message, Request};
use crate::transport::{Inbound, Link, Outbox};

static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// The command label for metrics: a fixed set, so a client cannot mint label values.
fn command_label(r: &Request) -> &'static str {
    match r {
        Request::Unknown(_) => "unknown",
        other => other.static_name(),
    }
}

/// Runs one connection to its end.
pub async fn run(link: Link, ctx: Arc<Context>) {
    let (tx, rx) = crate::transport::outbound_queue(ctx.limits.outbound_queue);
    let stop = crate::transport::Stop::new();
    let writer = link.writer.start(rx, stop.clone());
    // A WebSocket came through the HTTP listener, whose connection already holds its address's slot.
    let slot = if link.info.kind == crate::transport::TransportKind::WebSocket {
        None
    } else {
        match ctx.per_ip.acquire(link.info.peer.ip()) {
            Some(slot) => Some(slot),
            None => {
                return Box::pin(refuse_over_ip_limit(
                    link.info,
                    ctx,
                    Outbox::new(tx),
                    writer,
                ))
                .await
            }
        }
    };
    let out = Outbox::with_metrics(tx, ctx.metrics.link(link.info.kind.as_str()))
        .with_byte_limit(ctx.limits.outbound_queue_bytes)
        .with_frame_limit(ctx.limits.outbound_queue)
        .with_budget(ctx.budget.clone());
    let id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
    let mut s = Session::new(id, link.info, ctx, out);
    s.frame_limit = Some(link.frame_limit);
    let mut inbound = link.inbound;
    info!(conn = s.id, transport = %s.info.kind, peer = %s.info.peer, "connection open");
    let transport = s.info.kind.as_str();
    s.ctx
        .metrics
        .connections_total
        .with_label_values(&[transport])
        .inc();
    s.ctx
        .metrics
        .connections_open
        .with_label_values(&[transport])
        .inc();
    // The core's next timer (the handshake, then the token's expiry), re-armed whenever it changes.
    let timer = tokio::time::sleep(Duration::from_secs(365 * 24 * 3600));
    tokio::pin!(timer);
    let mut armed: Option<(tokio::time::Instant, Timer)> = None;
    let shutdown = s.ctx.shutdown.clone();
    let end = loop {
        // Re-read each time: a resumed session swaps in its old outbox.
        let overflowed = s.out.overflowed().clone();
        let kick = s.kick.clone();
        let next = s.core.deadline();
        if next != armed {
            armed = next;
            if let Some((at, _)) = armed {
                timer.as_mut().reset(at);
            }
        }
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break End::Shutdown,
            _ = overflowed.cancelled() => break End::SlowConsumer,
            _ = kick.notified() => break match kick.disconnect_reason() {
                Some(reason) => End::Disconnected(reason),
                None => End::TakenOver,
            },
            _ = &mut timer, if armed.is_some() => {
                if let Some((_, which)) = armed {
                    break which.end();
                }
            }
            item = inbound.recv() => {
                match item {
                    None => break End::PeerGone,
                    Some(Inbound::Failed(reason)) => break End::Lost(reason),
                    Some(Inbound::Closed(reason)) => break End::ClientClosed(reason),
                    Some(Inbound::Violation(reason)) => break End::Transport(reason),
                    Some(Inbound::SlowConsumer) => break End::SlowConsumer,
                    Some(Inbound::Malformed(e)) => {
                        if let Some(end) = Box::pin(s.on_error(None, 0, e.into())).await {
                            break end;
                        }
                    }
                    Some(Inbound::Frame(frame)) => {
                        // A panic while handling one frame ends this session like any other end (rooms left,
                        // presence told, gauges and streams released), never as a leaked half-session.
                        match AssertUnwindSafe(Box::pin(s.on_frame(frame))).catch_unwind().await {
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
    Box::pin(s.close(end, writer, stop, slot)).await;
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

    async fn on_frame(&mut self, frame: crate::protocol::Frame) -> Option<End> {
        self.link_metrics.received(frame.kind, frame.wire_len());
        let pipe = frame.pipe;
        let received = self.core.received(frame);
        if let Some(count) = received.ack {
            if self.out.reply(ack_frame(count)).await.is_err() {
                return Some(End::SlowConsumer);
            }
        }
        if !self.reassembly_hold.resize(self.core.buffered()) {
            return self.over_budget("reassembly").await;
        }
        let message = match received.message {
            Ok(None) => return None,
            Ok(Some(m)) => m,
            Err(e) => return self.on_error(Some(pipe), 0, e.into()).await,
        };
        match message {
            // The core took in what these say.
            Message::Abort { .. } | Message::AckWindowSize { .. } | Message::Ack { .. } => None,
            Message::Command { pipe, command } => {
                let call = Call {
                    pipe,
                    txid: command.txid,
                    started: Instant::now(),
                };
                self.on_command(call, &command.args, command.payload).await
            }
        }
    }

    /// One command: parse, dispatch, answer. `Some(End)` when the connection must close.
    async fn on_command(&mut self, call: Call, args: &[u8], payload: bytes::Bytes) -> Option<End> {
        if !self.core.admit(tokio::time::Instant::now()) {
            let limit = self.ctx.limits.commands_per_second;
            return self
                .on_error(Some(call.pipe), call.txid, SessionError::RateLimited(limit))
                .await;
        }
        let request = match Request::parse(args) {
            Ok(r) => r,
            Err(e) => {
                self.ctx.metrics.command_unparsed();
                return self.on_error(Some(call.pipe), call.txid, e.into()).await;
            }
        };
        let name = command_label(&request);
        match self.dispatch(call, request, args, payload).await {
            Ok(answer) => self.write_answer(call, name, answer).await,
            Err(e) => {
                let code = e.status().code;
                self.ctx.metrics.command_answered(name, code, call.started);
                self.on_error(Some(call.pipe), call.txid, e).await
            }
        }
    }

    /// Routes a request to its handler: before `connect` only `connect`, then by the place the command list
    /// gives it (`protocol/commands.rs`) and the pipe it came on.
    async fn dispatch(
        &mut self,
        call: Call,
        request: Request,
        raw_args: &[u8],
        payload: bytes::Bytes,
    ) -> Result<Answer, SessionError> {
        let pipe = call.pipe;
        if self.identity.is_none() {
            return match (pipe, request) {
                (0, Request::Connect(args)) => {
                    let answer = self.connect(args).await;
                    if self.identity.is_some() {
                        // Authenticated: no handshake timer, and frames and messages may grow to the
                        // configured size (until now the reader took no frame longer than a `connect`).
                        self.core.connected();
                        if let Some(limit) = &self.frame_limit {
                            limit.raise();
                        }
                    }
                    answer
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
        if let Some(place) = request.place() {
            if !place.admits(kind) {
                return Err(SessionError::WrongPipe {
                    command: request.name().to_string(),
                    place: match kind {
                        None => "pipe 0".to_string(),
                        Some(k) => format!("a {} pipe", k.as_str()),
                    },
                });
            }
        }
        let cx = Cx {
            call,
            raw_args,
            payload,
        };
        self.handle(request, cx).await
    }
}
