//! A message on its way in (`Post`), what its sender is told (`Posted`), and the `send` push every recipient
//! gets, built once when the message is accepted (`PushArgs`).

use super::error::RoomError;
use bytes::Bytes;
use serde_json::value::RawValue;

use crate::protocol::args::{Cast, RoomRef, SendKind, SendPush, User};
use crate::protocol::command::MAX_ARGS_LEN;

/// A message a connection wants delivered.
#[derive(Debug, Clone)]
pub struct Post {
    pub sender: User,
    /// The sending connection: it gets the answer, not a copy.
    pub conn: u64,
    pub kind: SendKind,
    pub cast: Cast,
    /// Room id (`multi`) or user id (`uni`).
    pub target: String,
    pub data: Box<RawValue>,
    pub payload: Bytes,
    /// False for `temporary` pipes: delivered live, never stored.
    pub persist: bool,
    /// In a cluster, the node the sender is connected to, when that is not this node (this node is the
    /// room's home and commits for it). `None`: this node.
    pub origin: Option<String>,
}

/// What the sender is told.
#[derive(Debug, Clone, Copy)]
pub struct Posted {
    /// The stored id (`None` when not persisted).
    pub mid: Option<i64>,
    /// Unix seconds at acceptance: the Timestamp of every push of this message.
    pub timestamp: u32,
    /// Connections it was pushed to (`None` in a cluster: other nodes deliver on their own).
    pub delivered: Option<usize>,
}

/// The arguments of the `send` push every recipient gets, serialized once when the message is accepted:
/// everything but the closing brace, because the `mid` (the last field) is known only after the commit.
#[derive(Debug)]
pub(crate) struct PushArgs(Vec<u8>);

/// Room for `,"mid":<i64>}` after the head: 7 + 19 digits + 1 (ids are positive).
const MID_ROOM: usize = 7 + 19 + 1;

impl PushArgs {
    /// Serializes the push; refuses a message whose push would not fit a command's u16 argument length
    /// (before it is stored, not after).
    pub(crate) fn build(post: &Post) -> Result<PushArgs, RoomError> {
        let room_id = match post.cast {
            Cast::Multi => post.target.as_str(),
            Cast::Uni => "",
        };
        let push = SendPush {
            name: "send",
            kind: post.kind.as_str(),
            cast: post.cast.as_str(),
            id: &post.target,
            data: &post.data,
            user: &post.sender,
            room: RoomRef { id: room_id },
            mid: None,
        };
        let mut head = serde_json::to_vec(&push).map_err(|e| RoomError::Invalid {
            what: "message",
            reason: format!("cannot be serialized: {e}"),
        })?;
        // `mid: None` is skipped, so the object ends right here; the commit appends the id and the brace.
        if head.pop() != Some(b'}') {
            return Err(RoomError::Invalid {
                what: "message",
                reason: "its push is not a JSON object".into(),
            });
        }
        if head.len() + MID_ROOM > MAX_ARGS_LEN {
            return Err(RoomError::Invalid {
                what: "message",
                reason: format!(
                    "its JSON is {} bytes, more than a command can carry ({MAX_ARGS_LEN}); send large content as the binary payload",
                    head.len() + MID_ROOM
                ),
            });
        }
        Ok(PushArgs(head))
    }

    /// The whole push: the head, then `"mid"` when the message was stored.
    pub(crate) fn with_mid(&self, mid: Option<i64>) -> Vec<u8> {
        use std::io::Write;
        let mut args = Vec::with_capacity(self.0.len() + MID_ROOM);
        args.extend_from_slice(&self.0);
        if let Some(mid) = mid {
            let _ = write!(args, ",\"mid\":{mid}");
        }
        args.push(b'}');
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(data: &str) -> Post {
        Post {
            sender: crate::protocol::args::User {
                id: "ann".into(),
                nick: "Ann \"A\"".into(),
                avatar: String::new(),
            },
            conn: 1,
            kind: SendKind::Text,
            cast: Cast::Multi,
            target: "hall".into(),
            data: RawValue::from_string(data.into()).expect("json"),
            payload: Bytes::new(),
            persist: true,
            origin: None,
        }
    }

    /// The push built once at acceptance, completed with the id after the commit, is exactly what
    /// serializing the whole push at delivery would give.
    #[test]
    fn push_args_completed_with_the_mid_match_a_full_serialization() {
        let p = post(r#"{"text":"hi","n":[1,2]}"#);
        let args = PushArgs::build(&p).expect("fits");
        for mid in [None, Some(1), Some(i64::MAX)] {
            let whole = SendPush {
                name: "send",
                kind: p.kind.as_str(),
                cast: p.cast.as_str(),
                id: &p.target,
                data: &p.data,
                user: &p.sender,
                room: RoomRef { id: "hall" },
                mid,
            };
            assert_eq!(
                args.with_mid(mid),
                serde_json::to_vec(&whole).expect("json"),
                "mid {mid:?}"
            );
        }
    }

    #[test]
    fn a_push_that_cannot_fit_a_command_is_refused_before_storing() {
        let big = format!("\"{}\"", "x".repeat(MAX_ARGS_LEN));
        assert!(matches!(
            PushArgs::build(&post(&big)),
            Err(RoomError::Invalid { .. })
        ));
    }
}
