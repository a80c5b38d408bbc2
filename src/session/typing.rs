//! `typing {rid}`: the whole command as the command list (`protocol/commands.rs`) asks of one: its handler
//! and its rule. A client sends it while its user types; the room's other members get
//! `NetGroup.Typing.Notify {room: {id}, user}` (rooms/typing.rs), on every node. Each connection announces at
//! most one per room every `rate::TYPING_EVERY`: more are answered (`sent: false`) and dropped, so a client that
//! sends one per keystroke costs the room nothing.

use std::time::Instant;

use serde_json::json;

use super::commands::{Cx, Handle};
use super::error::{RoomContext, SessionError};
use super::state::{Answer, Session};
use crate::protocol::args::Typing;
use crate::protocol::status::codes;
use crate::protocol::Status;

impl Handle for Typing {
    async fn handle(self, s: &mut Session, _: Cx<'_>) -> Result<Answer, SessionError> {
        let user = s
            .identity
            .as_ref()
            .map(|i| i.user.clone())
            .ok_or_else(|| SessionError::NotConnected("typing".into()))?;
        let now = Instant::now();
        let open = s.typing.open(&self.rid, now);
        let sent = s
            .ctx
            .rooms
            .typing(s.id, &user, &self.rid, open)
            .map_err(|e| SessionError::Room(RoomContext::Post, e))?;
        if sent {
            s.typing.record(&self.rid, now);
        }
        let status = Status::ok(codes::CALL_SUCCESS, "typing").with_info(json!({ "sent": sent }));
        Ok(status.into())
    }
}
