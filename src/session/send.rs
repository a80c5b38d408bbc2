//! `send`: hand the message to the journal, answer once it is committed and delivered.

use serde_json::json;
use serde_json::value::RawValue;

use super::connection::Session;
use super::error::{RoomContext, SessionError};
use crate::protocol::args::{Cast, Send};
use crate::protocol::status::codes;
use crate::protocol::Status;
use crate::rooms::Post;

impl Session {
    pub(super) async fn send(
        &mut self,
        pipe: u16,
        args: Send,
        payload: bytes::Bytes,
    ) -> Result<Status, SessionError> {
        let identity = self
            .identity
            .as_ref()
            .ok_or(SessionError::NotConnected("send".into()))?;
        let temporary = self
            .pipes
            .get(pipe)
            .and_then(|p| p.properties.get("temporary"))
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let context = match args.cast {
            Cast::Multi => RoomContext::Post,
            Cast::Uni => RoomContext::SendTo,
        };
        let data = args
            .data
            .unwrap_or_else(|| RawValue::from_string("null".into()).unwrap_or_default());
        let posted = self
            .ctx
            .rooms
            .post(Post {
                sender: identity.user.clone(),
                conn: self.id,
                kind: args.kind,
                cast: args.cast,
                target: args.id.clone(),
                data,
                payload,
                persist: !temporary,
            })
            .await
            .map_err(|e| SessionError::Room(context, e))?;
        let code = match args.cast {
            Cast::Multi => codes::GROUP_POSTING_NOTIFY,
            Cast::Uni => codes::GROUP_SENDTO_NOTIFY,
        };
        Ok(
            Status::ok(code, format!("sent to {}", args.id)).with_info(json!({
                "mid": posted.mid,
                "timestamp": posted.timestamp,
                "delivered": posted.delivered,
            })),
        )
    }
}
