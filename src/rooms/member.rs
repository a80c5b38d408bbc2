//! A member is one pipe of one connection joined to a room: the unit that receives fan-out.

use crate::protocol::args::User;
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
