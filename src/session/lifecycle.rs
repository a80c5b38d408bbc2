//! How a session ends: counted, then kept for a fast reconnect (parked) or finished. `finish` gives the last
//! word to the client, leaves every room and stream, forgets the session and closes the transport. Every end
//! goes through `close`, a panic included (see `connection.rs`), so nothing a session held outlives it.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tracing::{debug, info};

use super::context::Context;
use super::end::End;
use super::now_secs;
use super::per_ip::Slot;
use super::pipes::Pipes;
use super::resume::Handover;
use super::state::Session;
use crate::protocol::outgoing::status_frame;
use crate::protocol::status::codes;
use crate::protocol::Status;
use crate::transport::{LinkInfo, OutboundRx, Outbox};

/// How long a closing session waits for its transport to flush the last frames.
pub(super) const CLOSE_FLUSH: Duration = Duration::from_secs(5);
/// How long the answer to a peer's own close may take (the writer is stopped after it).
const CLOSE_ANSWER: Duration = Duration::from_millis(500);

/// How long a session taken over by a reconnect lets its old transport write the goodbye before the queue
/// moves to the new one (the reconnecting client waits meanwhile).
const TAKEOVER_GOODBYE: Duration = Duration::from_millis(200);

impl Session {
    /// The run loop ended with `end`: count it, then park the session for a fast reconnect or finish it.
    pub(super) async fn close(
        self,
        end: End,
        mut writer: JoinHandle<OutboundRx>,
        stop: crate::transport::Stop,
        slot: Option<Slot>,
    ) {
        let metrics = self.ctx.metrics.clone();
        let transport = self.info.kind.as_str();
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
        let grace = Duration::from_millis(self.ctx.limits.resume_grace_ms);
        if end.resumable()
            && self.identity.is_some()
            && !grace.is_zero()
            && !self.out.is_overflowed()
        {
            if let End::TakenOver = end {
                // The old transport may still be read (the device is alive on two networks): say goodbye on
                // it so its client does not reconnect and take the session back. What the writer takes from
                // the queue until then goes to the old transport; the rest follows the session.
                // A farewell: written only by this transport's writer, never by the one taking over.
                // Who took it, when the claimant named its attempt: a client racing attempts knows its own.
                let mut goodbye = Status::error(codes::CONNECT_CLOSED, "taken over by a reconnect");
                if let Some(by) = self.kick.taken_by() {
                    goodbye = goodbye.with_info(serde_json::json!({ "by": by }));
                }
                self.out.farewell(
                    status_frame(0, 0, &goodbye, now_secs()),
                    "taken over by a reconnect",
                    &stop,
                );
                // A transport that takes it at once closes with it; a dead one is not waited for long.
                let _ = tokio::time::timeout(TAKEOVER_GOODBYE, async {
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
                Ok(queued) => return self.park(end, queued, grace).await,
                Err(e) => {
                    debug!(conn = self.id, error = %e, "writer ended abnormally; not parking")
                }
            }
        }
        self.finish(end, Some(writer)).await;
    }

    /// Keeps a session whose transport was lost until a reconnect claims it or `grace` runs out.
    pub(super) async fn park(mut self, end: End, queued: OutboundRx, grace: Duration) {
        let Some(identity) = self.identity.clone() else {
            return self.finish(end, None).await;
        };
        let registry = &self.ctx.resumable;
        let reserved = match end {
            End::TakenOver => self.kick.claimed_by(),
            _ => None,
        };
        let mut claim = registry.park(&identity.uuid, &identity.user.id, reserved);
        self.out.set_away(true);
        self.ctx.metrics.sessions_parked.inc();
        tracing::info!(conn = self.id, uuid = %identity.uuid, user = %identity.user.id, "session kept for a fast reconnect");
        let shutdown = self.ctx.shutdown.clone();
        let claimed = tokio::select! {
            c = &mut claim => c.ok(),
            _ = tokio::time::sleep(grace) => None,
            _ = shutdown.cancelled() => None,
        };
        let claimed = match claimed {
            Some(c) => Some(c),
            // Someone claimed it just as the grace period ended: honour the claim.
            None if !registry.expire(&identity.uuid) => {
                tokio::time::timeout(Duration::from_secs(2), claim)
                    .await
                    .ok()
                    .and_then(Result::ok)
            }
            None => None,
        };
        self.ctx.metrics.sessions_parked.dec();
        let Some(reply) = claimed else {
            drop(queued);
            return self.finish(end, None).await;
        };
        let handover = Handover {
            id: self.id,
            identity,
            pipes: std::mem::replace(&mut self.pipes, Pipes::new(1)),
            joined: std::mem::take(&mut self.joined),
            out: self.out.clone(),
            in_flight: self.in_flight.clone(),
            queued,
        };
        if let Err(h) = reply.send(handover) {
            // The reconnect went away before taking over: end the session normally.
            self.pipes = h.pipes;
            self.joined = h.joined;
            return self.finish(end, None).await;
        }
        self.ctx.metrics.session_resumes_total.inc();
    }

    /// Adopts a parked session: same id, identity, pipes and rooms. Returns its old outbox and queue, which
    /// follow the connect answer (`Answer::splice`).
    pub(super) fn adopt(&mut self, h: Handover) -> (Outbox, OutboundRx) {
        h.out.set_away(false);
        self.id = h.id;
        self.identity = Some(h.identity);
        self.pipes = h.pipes;
        self.joined = h.joined;
        self.in_flight = h.in_flight;
        (h.out, h.queued)
    }

    pub(super) async fn finish(
        mut self,
        end: End,
        writer: Option<tokio::task::JoinHandle<crate::transport::OutboundRx>>,
    ) {
        let last_word = match &end {
            End::PeerGone
            | End::ClientClosed(_)
            | End::Lost(_)
            | End::AfterStatus(_)
            | End::Goodbye(_)
            | End::SlowConsumer
            | End::TakenOver => None,
            End::TokenExpired => Some(Status::error(
                codes::CONNECT_CLOSED,
                "token expired: send `refresh` with a fresh token before `exp`",
            )),
            End::Internal => Some(Status::error(
                codes::CONNECT_FAILED,
                "internal error: the gateway closed this session",
            )),
            End::Transport(reason) | End::Disconnected(reason) => {
                Some(Status::error(codes::CONNECT_CLOSED, reason.clone()))
            }
            End::HandshakeTimeout => Some(Status::error(
                codes::CONNECT_FAILED,
                end.reason(&self.ctx.limits),
            )),
            End::Shutdown => Some(Status {
                level: crate::protocol::Level::Warning,
                ..Status::ok(codes::CONNECT_APP_SHUTDOWN, "the gateway is shutting down")
            }),
        };
        let reason = end.reason(&self.ctx.limits);
        // A peer that closed on purpose waits for the other half of its close handshake (a browser reports
        // code 1006, "not clean", without it).
        let answer_close = matches!(end, End::ClientClosed(_));
        let client_listens = !matches!(
            end,
            End::PeerGone
                | End::ClientClosed(_)
                | End::Lost(_)
                | End::SlowConsumer
                | End::TakenOver
        );
        // Messages already accepted get their answers before the goodbye (unless the client is gone).
        if client_listens {
            self.settle_in_flight(CLOSE_FLUSH).await;
        }
        if let Some(status) = last_word {
            // Best effort, never blocking: the client may be the reason we are closing.
            let _ = self.out.push(status_frame(0, 0, &status, now_secs()));
        }
        // The backend's `events` hook hears the end: the rooms left, then the disconnect (a session taken over
        // by a reconnect lives on, so it neither leaves nor disconnects).
        if let (Some(identity), false) = (&self.identity, matches!(end, End::TakenOver)) {
            for (pipe, rid) in self.joined.iter() {
                self.ctx.events.record(
                    "leave",
                    &identity.user.id,
                    Some(rid),
                    serde_json::json!({ "pipe": pipe, "reason": "connection closed" }),
                );
            }
            self.ctx.events.record(
                "disconnect",
                &identity.user.id,
                None,
                serde_json::json!({ "session": identity.uuid, "reason": reason }),
            );
        }
        let ids: Vec<u16> = self.pipes.ids().collect();
        for id in ids {
            self.on_pipe_closed(id, "connection closed").await;
        }
        if let End::Internal = end {
            // The task died mid-request: its own records may have missed a membership. Sweep by connection.
            self.ctx
                .rooms
                .forget_connection(self.id, "connection closed");
        }
        if let Some(identity) = &self.identity {
            self.ctx.rooms.set_inbox(self.id, &identity.user, None);
            self.ctx.resumable.forget(&identity.uuid, &self.kick);
            // The session is over: no other node should come asking for it.
            if let Some(bus) = self.ctx.rooms.bus().cluster() {
                let (store, node, uuid) = (
                    self.ctx.store.clone(),
                    bus.node().to_string(),
                    identity.uuid.clone(),
                );
                tokio::spawn(async move {
                    let _ = store.forget_session(&uuid, &node).await;
                });
            }
        }
        if let Some(writer) = writer {
            if client_listens {
                self.out.close(reason.clone()).await;
                if tokio::time::timeout(CLOSE_FLUSH, writer).await.is_err() {
                    debug!(conn = self.id, "transport did not flush in time");
                }
            } else if answer_close {
                self.out.close(String::new()).await;
                let mut writer = writer;
                if tokio::time::timeout(CLOSE_ANSWER, &mut writer)
                    .await
                    .is_err()
                {
                    writer.abort();
                }
            } else {
                writer.abort();
            }
        }
        info!(
            conn = self.id,
            transport = %self.info.kind,
            peer = %self.info.peer,
            user = self.identity.as_ref().map(|i| i.user.id.as_str()).unwrap_or("-"),
            %reason,
            "connection closed"
        );
    }
}

/// Tells a connection over its address's limit why, and closes it.
pub(super) async fn refuse_over_ip_limit(
    info: LinkInfo,
    ctx: Arc<Context>,
    out: Outbox,
    writer: JoinHandle<OutboundRx>,
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
