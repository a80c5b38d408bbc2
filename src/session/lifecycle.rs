//! How a session ends: the last word to the client, leaving every room and stream, forgetting the session,
//! closing the transport. Every end goes through `finish`, a panic included (see `connection.rs`), so nothing
//! a session held outlives it.

use tracing::{debug, info};

use super::connection::{Session, CLOSE_FLUSH};
use super::end::End;
use super::now_secs;
use crate::protocol::frames::status_frame;
use crate::protocol::status::codes;
use crate::protocol::Status;

impl Session {
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
            End::Transport(reason) => Some(Status::error(codes::CONNECT_CLOSED, reason.clone())),
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
            if let Some(bus) = self.ctx.rooms.bus().nats() {
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
