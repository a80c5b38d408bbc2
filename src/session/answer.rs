//! Writing answers: a handler's `Answer` with what follows it, errors as statuses, and the endings that answer
//! before they close (`close`, an exhausted memory budget). Answers keep request order on each pipe
//! (`order.rs`): one given later is written after the answers before it on its pipe, off the session task.

use tracing::debug;

use super::end::End;
use super::error::SessionError;
use super::now_secs;
use super::state::{Answer, Call, Later, Session};
use crate::protocol::outgoing::status_frame;
use crate::protocol::status::codes;
use crate::protocol::Status;

impl Session {
    /// Writes a handler's answer and what follows it, in order: the status, the frames, the end of a catch-up,
    /// a resumed session's queue. An answer given later is awaited off this task.
    pub(super) async fn write_answer(
        &mut self,
        call: Call,
        name: &'static str,
        answer: Answer,
    ) -> Option<End> {
        let Answer {
            status,
            later,
            in_flight,
            in_turn,
            then,
            catch_up,
            splice,
            end: ends,
        } = answer;
        let plain = then.is_empty() && catch_up.is_none() && splice.is_none() && ends.is_none();
        if ends.is_some() {
            // A goodbye is the last answer: what was accepted before it (messages waiting for their commit,
            // queries being worked out) is answered first (bounded).
            self.settle_in_flight(super::lifecycle::CLOSE_FLUSH).await;
        }
        // A bare status on a pipe still waiting for an earlier answer is given later too, in its turn.
        let (status, later) = match (status, later) {
            (Some(status), None) if plain && self.order.busy(call.pipe) => (
                None,
                Some((Box::pin(std::future::ready(Ok(status))) as Later, true)),
            ),
            (status, later) => (status, later.map(|l| (l, in_turn))),
        };
        if let Some((later, in_turn)) = later {
            let (metrics, out, conn) = (self.ctx.metrics.clone(), self.out.clone(), self.id);
            let mut turn = in_turn.then(|| self.order.take(call.pipe));
            tokio::spawn(async move {
                let status = later.await.unwrap_or_else(|e| {
                    note_error(&metrics, conn, &e);
                    e.status()
                });
                metrics.command_answered(name, status.code, call.started);
                if let Some(turn) = &mut turn {
                    turn.wait().await;
                }
                // Success needs no answer for txid 0; an error is told all the same (see `on_error`).
                if call.txid != 0 || status.is_error() {
                    // A client that does not read its answers is cut off by the outbox; nothing else to do.
                    let _ = out
                        .reply(status_frame(call.pipe, call.txid, &status, now_secs()))
                        .await;
                }
                drop((in_flight, turn));
            });
        }
        if status.is_some() && self.order.busy(call.pipe) {
            // What follows this status must stay behind it, so it waits here (rare: a join or resume on a pipe
            // whose earlier answer is still being worked out).
            self.order.take(call.pipe).wait().await;
        }
        let mut end = None;
        if let Some(status) = &status {
            self.ctx
                .metrics
                .command_answered(name, status.code, call.started);
            if call.txid != 0 {
                end = self.answer(call.pipe, call.txid, status).await;
            }
        }
        if ends.is_some() {
            // The answer was the last word (a goodbye): nothing follows it.
            return ends;
        }
        // Pushes that must follow the answer (the coverage list after a join, a replay). A replay to a slow
        // client can take long: a reconnect taking the session over (or the backend disconnecting it) cuts
        // it short, and the new transport's client asks for the rest with `after`.
        let kick = self.kick.clone();
        for frame in then {
            if end.is_some() {
                break;
            }
            tokio::select! {
                biased;
                sent = self.out.reply(frame) => if sent.is_err() {
                    end = Some(End::SlowConsumer);
                },
                _ = kick.notified() => end = Some(match kick.disconnect_reason() {
                    Some(reason) => End::Disconnected(reason),
                    None => End::TakenOver,
                }),
            }
        }
        if let Some(c) = catch_up {
            // Held live messages follow the replay; from here on live traffic flows directly.
            self.ctx
                .rooms
                .finish_catch_up(self.id, c.pipe, &c.rid, c.last, &self.out);
        }
        // A resumed session: what queued while it was away follows the answer, then live traffic.
        if let Some((old, queued)) = splice {
            if self.out.splice(queued).await.is_err() {
                return Some(End::SlowConsumer);
            }
            self.out = old;
        }
        end
    }

    /// The process-wide memory budget cannot hold what this connection sends: tell it, and close.
    pub(super) async fn over_budget(&mut self, what: &'static str) -> Option<End> {
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
    pub(super) async fn on_error(
        &mut self,
        pipe: Option<u16>,
        txid: u16,
        err: SessionError,
    ) -> Option<End> {
        note_error(&self.ctx.metrics, self.id, &err);
        let status = err.status();
        let pipe = pipe.unwrap_or(0);
        if !err.closes_connection() && self.order.busy(pipe) {
            // After the answers still being worked out on this pipe, as any answer there.
            let mut turn = self.order.take(pipe);
            let out = self.out.clone();
            tokio::spawn(async move {
                turn.wait().await;
                let _ = out
                    .reply(status_frame(pipe, txid, &status, now_secs()))
                    .await;
                drop(turn);
            });
        } else if let Some(end) = self.answer(pipe, txid, &status).await {
            return Some(end);
        }
        if let SessionError::Frame(_) = err {
            if let Some(count) = self.core.malformed() {
                let reason = format!("too many malformed frames ({count})");
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
}

/// Logs a refused request and counts it: a failed store in `store_errors_total`, every kind of failure by
/// its label. The same whether the error was known at once or came later.
fn note_error(metrics: &crate::metrics::Metrics, conn: u64, err: &SessionError) {
    match err {
        SessionError::Room(_, crate::rooms::RoomError::Store(e)) => {
            metrics.store_errors_total.inc();
            tracing::error!(conn, error = %e, "storage failed")
        }
        _ => debug!(conn, error = %err, "request failed"),
    }
    if let Some(failure) = err.failure() {
        metrics.request_failed(failure);
    }
}
