//! A member is one pipe of one connection joined to a room: the unit that receives fan-out.

use crate::clock::now_secs;
use crate::protocol::args::User;
use crate::protocol::outgoing::status_frame;
use crate::protocol::Status;
use crate::transport::Outbox;

#[derive(Clone, Debug)]
pub struct Member {
    /// The connection's id (unique for the life of the process).
    pub conn: u64,
    /// The messaging pipe pushes go to.
    pub pipe: u16,
    pub user: User,
    pub outbox: Outbox,
    /// What the connection's token allows (checked again on every act in the room, e.g. each send).
    pub claims: super::RoomClaims,
    /// Hidden from presence: not in coverage lists, no Neighbor pushes about it.
    pub private: bool,
}

impl Member {
    /// Pushes a status (presence, coverage) to this member's pipe. A full queue marks the member as a slow
    /// consumer, which its session closes; nothing else to do here.
    pub fn push_status(&self, status: &Status) {
        let _ = self
            .outbox
            .push(status_frame(self.pipe, 0, status, now_secs()));
    }
}
