//! `chmod {rid, tid, operator, mask}`: change a user's rights in a room.

use super::commands::{Cx, Handle};
use super::error::{RoomContext, SessionError};
use super::state::{Answer, Session};
use crate::protocol::args::Chmod;
use crate::protocol::status::codes;
use crate::protocol::Status;

impl Session {
    /// The connected user's id (`command` names the request refused otherwise).
    pub(super) fn caller(&self, command: &str) -> Result<String, SessionError> {
        self.identity
            .as_ref()
            .map(|i| i.user.id.clone())
            .ok_or_else(|| SessionError::NotConnected(command.into()))
    }

    /// Worked out off the session task (it waits for the store).
    pub(super) async fn chmod(&mut self, args: Chmod) -> Result<Answer, SessionError> {
        let caller = self.caller("chmod")?;
        let (rooms, claims) = (self.ctx.rooms.clone(), self.claims.clone());
        self.off_task(async move {
            let info = rooms
                .chmod(&caller, &claims, &args)
                .await
                .map_err(|e| SessionError::Room(RoomContext::Other, e))?;
            Ok(Status::ok(
                codes::CALL_SUCCESS,
                format!("rights of {} in {} changed", args.tid, args.rid),
            )
            .with_info(info))
        })
        .await
    }
}

impl Handle for Chmod {
    async fn handle(self, s: &mut Session, _: Cx<'_>) -> Result<Answer, SessionError> {
        s.chmod(self).await
    }
}
