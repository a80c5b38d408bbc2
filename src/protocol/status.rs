//! The `status` command: the answer to every request and the carrier of most pushes.

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Status,
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub name: &'static str,
    pub level: Level,
    pub code: &'static str,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<Info>,
}

/// A status's `info`: a value built by the gateway, or JSON text passed through as is (history pages carry
/// stored messages' `data` verbatim, without parsing it again).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Info {
    Value(Value),
    Raw(Box<RawValue>),
}

impl Info {
    /// The info as a value (parsing raw text; `Null` if it cannot be parsed).
    pub fn to_value(&self) -> Value {
        match self {
            Info::Value(v) => v.clone(),
            Info::Raw(r) => serde_json::from_str(r.get()).unwrap_or(Value::Null),
        }
    }
}

impl PartialEq for Info {
    fn eq(&self, other: &Info) -> bool {
        match (self, other) {
            (Info::Value(a), Info::Value(b)) => a == b,
            _ => self.to_value() == other.to_value(),
        }
    }
}

impl Status {
    pub fn ok(code: &'static str, description: impl Into<String>) -> Status {
        Status {
            name: "status",
            level: Level::Status,
            code,
            description: description.into(),
            info: None,
        }
    }

    pub fn error(code: &'static str, description: impl Into<String>) -> Status {
        Status {
            level: Level::Error,
            ..Status::ok(code, description)
        }
    }

    pub fn with_info(mut self, info: Value) -> Status {
        self.info = Some(Info::Value(info));
        self
    }

    /// `info` from JSON text that is already valid (written by the gateway's own serializer).
    pub fn with_raw_info(mut self, info: Box<RawValue>) -> Status {
        self.info = Some(Info::Raw(info));
        self
    }

    pub fn is_error(&self) -> bool {
        self.level == Level::Error
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serializing this struct cannot fail: every field is a string, an enum or a `Value`.
        serde_json::to_vec(self).unwrap_or_else(|_| b"{\"name\":\"status\"}".to_vec())
    }
}

/// The status codes the gateway uses (Flash/AIR NetStatusEvent names, PROTOCOL.md §2).
pub mod codes {
    pub const CONNECT_SUCCESS: &str = "NetConnection.Connect.Success";
    pub const CONNECT_REJECTED: &str = "NetConnection.Connect.Rejected";
    pub const CONNECT_FAILED: &str = "NetConnection.Connect.Failed";
    pub const CONNECT_CLOSED: &str = "NetConnection.Connect.Closed";
    pub const CONNECT_IDLE_TIMEOUT: &str = "NetConnection.Connect.IdleTimeout";
    pub const CONNECT_APP_SHUTDOWN: &str = "NetConnection.Connect.AppShutdown";
    pub const CALL_SUCCESS: &str = "NetConnection.Call.Success";
    pub const CALL_FAILED: &str = "NetConnection.Call.Failed";
    pub const GROUP_CONNECT_SUCCESS: &str = "NetGroup.Connect.Success";
    pub const GROUP_CONNECT_REJECTED: &str = "NetGroup.Connect.Rejected";
    pub const GROUP_CONNECT_FAILED: &str = "NetGroup.Connect.Failed";
    pub const GROUP_CONNECT_CLOSED: &str = "NetGroup.Connect.Closed";
    pub const GROUP_LOCAL_COVERAGE: &str = "NetGroup.LocalCoverage.Notify";
    pub const GROUP_NEIGHBOR_CONNECT: &str = "NetGroup.Neighbor.Connect";
    pub const GROUP_NEIGHBOR_DISCONNECT: &str = "NetGroup.Neighbor.Disconnect";
    pub const GROUP_SENDTO_NOTIFY: &str = "NetGroup.SendTo.Notify";
    pub const GROUP_SENDTO_FAILED: &str = "NetGroup.SendTo.Failed";
    pub const GROUP_POSTING_NOTIFY: &str = "NetGroup.Posting.Notify";
    /// An extension: a member's read position moved, in a room with the `read_receipts` property.
    pub const GROUP_READ_NOTIFY: &str = "NetGroup.Read.Notify";
    /// Messages were redacted (an extension): `{room | users, mids, by, at}`.
    pub const GROUP_REDACT_NOTIFY: &str = "NetGroup.Redact.Notify";
    pub const GROUP_POSTING_FAILED: &str = "NetGroup.Posting.Failed";
    /// A member is typing (an extension): `{room: {id}, user}`.
    pub const GROUP_TYPING_NOTIFY: &str = "NetGroup.Typing.Notify";
    pub const STREAM_PLAY_START: &str = "NetStream.Play.Start";
    pub const STREAM_PLAY_PUBLISH_NOTIFY: &str = "NetStream.Play.PublishNotify";
    pub const STREAM_PLAY_STOP: &str = "NetStream.Play.Stop";
    pub const STREAM_PLAY_FAILED: &str = "NetStream.Play.Failed";
    pub const STREAM_PLAY_NOT_FOUND: &str = "NetStream.Play.StreamNotFound";
    /// The stream this player played was unpublished (before one `NetStream.Play.Stop` per track).
    pub const STREAM_PLAY_UNPUBLISH_NOTIFY: &str = "NetStream.Play.UnpublishNotify";
    pub const STREAM_PUBLISH_START: &str = "NetStream.Publish.Start";
    /// A signaling pipe's stream failed (its offer was refused, or its peer connection failed): the odd.js
    /// SDK closes the NetStream on it.
    pub const STREAM_FAILED: &str = "NetStream.Failed";
}
