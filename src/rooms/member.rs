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

/// A status pushed to many members (a Neighbor event to everyone in a room): serialized once, its bytes
/// shared by every member's frame. Serializing per member made one join into a room of N cost N encodings.
pub struct Notice(bytes::Bytes);

impl Notice {
    pub fn new(status: &Status) -> Notice {
        Notice(status_frame(0, 0, status, now_secs()).payload)
    }
}

impl Member {
    /// Pushes a notice (built once for many members) to this member's pipe. A full queue marks the member as
    /// a slow consumer, which its session closes; nothing else to do here.
    pub fn push_notice(&self, notice: &Notice) {
        let _ = self.outbox.push(crate::protocol::Frame::new(
            crate::protocol::MessageType::Command,
            self.pipe,
            notice.0.clone(),
        ));
    }
}
