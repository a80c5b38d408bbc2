//! `chmod {rid, tid, operator, mask}`: change a user's rights in a room.

use super::error::{RoomContext, SessionError};
use super::state::Session;
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

    pub(super) async fn chmod(&mut self, args: Chmod) -> Result<Status, SessionError> {
        let caller = self.caller("chmod")?;
        let info = self
            .ctx
            .rooms
            .chmod(&caller, &self.claims, &args)
            .await
            .map_err(|e| SessionError::Room(RoomContext::Other, e))?;
        Ok(Status::ok(
            codes::CALL_SUCCESS,
            format!("rights of {} in {} changed", args.tid, args.rid),
        )
        .with_info(info))
    }
}
