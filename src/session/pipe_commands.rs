//! `create` and `release` on pipe 0: a connection's pipes come and go.

use serde_json::json;

use super::commands::{Cx, Handle};
use super::error::SessionError;
use super::state::{Answer, Session};
use crate::protocol::args::{Create, PipeKind, Release};
use crate::protocol::status::codes;
use crate::protocol::Status;

impl Session {
    pub(super) fn create(&mut self, args: Create) -> Result<Answer, SessionError> {
        let id = self.pipes.open(args.kind)?;
        let mut then = None;
        if args.kind == PipeKind::Messaging {
            self.refresh_inbox();
            // Tell the client the pipe's server-side properties, as a push after the answer.
            let push =
                json!({"name": "setProperty", "info": {"temporary": false, "private": false}})
                    .to_string();
            if let Ok(frame) = crate::protocol::outgoing::command_frame(
                id,
                0,
                push.as_bytes(),
                &[],
                crate::clock::now_secs(),
            ) {
                then = Some(frame);
            }
        }
        let status = Status::ok(
            codes::CALL_SUCCESS,
            format!("created {} pipe {id}", args.kind.as_str()),
        )
        .with_info(json!({ "id": id, "kind": args.kind.as_str() }));
        Ok(Answer::from(status).then(then))
    }

    pub(super) async fn release(&mut self, args: Release) -> Result<Status, SessionError> {
        if self.pipes.was_released(args.id) {
            // A repeat: answered as a success (nothing at all for txid 0), never an error push.
            return Ok(Status::ok(
                codes::CALL_SUCCESS,
                format!("pipe {} was already released", args.id),
            )
            .with_info(json!({ "id": args.id, "already": true })));
        }
        let pipe = self.pipes.close(args.id)?;
        // The backend's `events` hook hears the rooms this pipe leaves (a connection's end tells its own).
        if let Some(identity) = &self.identity {
            let reason = crate::transport::link::one_line(&args.reason, 256);
            for (p, rid) in self.joined.iter().filter(|(p, _)| *p == args.id) {
                self.ctx.events.record(
                    "leave",
                    &identity.user.id,
                    Some(rid),
                    json!({ "pipe": p, "reason": reason }),
                );
            }
        }
        self.on_pipe_closed(args.id, &args.reason).await;
        if pipe.kind == PipeKind::Messaging {
            self.refresh_inbox();
        }
        Ok(
            Status::ok(codes::CALL_SUCCESS, format!("released pipe {}", args.id))
                .with_info(json!({ "id": args.id })),
        )
    }

    /// Called whenever a pipe goes away (release or connection end).
    pub(super) async fn on_pipe_closed(&mut self, pipe: u16, reason: &str) {
        self.core.forget_pipe(pipe);
        self.leave_rooms_of(pipe, reason);
        self.ctx.rooms.stop_stream(self.id, pipe, None, reason);
        self.close_sfu(pipe).await;
    }
}

impl Handle for Create {
    async fn handle(self, s: &mut Session, _: Cx<'_>) -> Result<Answer, SessionError> {
        s.create(self)
    }
}

impl Handle for Release {
    async fn handle(self, s: &mut Session, _: Cx<'_>) -> Result<Answer, SessionError> {
        s.release(self).await.map(Answer::from)
    }
}
