//! Messages the app's backend publishes through the server API: the same journal as client posts (committed
//! before the answer, the same order and ids), but no sending connection, so no membership check; the caller
//! (an API key holder) is trusted to speak as the identity it names.

use super::journal::PendingPost;
use super::post::{Post, PushArgs};
use super::state::{validate_room_id, validate_user_id};
use super::{RoomError, Rooms};
use crate::protocol::args::Cast;

impl Rooms {
    /// Queues a server-published message. A room must exist (a publish never creates one); a user needs no
    /// connection (offline users read it from their conversation history). `post.conn` must be 0: no
    /// connection is the sender, so every connection of the target gets it.
    pub async fn server_post(&self, post: Post) -> Result<PendingPost, RoomError> {
        validate_user_id(&post.sender.id)?;
        match post.cast {
            Cast::Multi => {
                validate_room_id(&post.target)?;
                self.existing_room(&post.target).await?;
            }
            Cast::Uni => validate_user_id(&post.target)?,
        }
        let push = PushArgs::build(&post)?;
        if post.cast == Cast::Multi {
            if let Some((bus, home)) = self.home_elsewhere(&post.target) {
                return Ok(Rooms::forward(bus, &home, &post));
            }
        }
        self.enqueue(post, push).await
    }
}
