//! `send`: a message to a room (`cast: multi`) or a user (`cast: uni`), and the push its recipients get.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::user::User;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cast {
    Uni,
    Multi,
}

impl Cast {
    pub fn as_str(self) -> &'static str {
        match self {
            Cast::Uni => "uni",
            Cast::Multi => "multi",
        }
    }
}

/// The message types PROTOCOL.md §3.5 names. Others are refused rather than relayed blindly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SendKind {
    Text,
    File,
    Invite,
    Apply,
    Publishing,
}

impl SendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SendKind::Text => "text",
            SendKind::File => "file",
            SendKind::Invite => "invite",
            SendKind::Apply => "apply",
            SendKind::Publishing => "publishing",
        }
    }

    pub fn parse(s: &str) -> Option<SendKind> {
        match s {
            "text" => Some(SendKind::Text),
            "file" => Some(SendKind::File),
            "invite" => Some(SendKind::Invite),
            "apply" => Some(SendKind::Apply),
            "publishing" => Some(SendKind::Publishing),
            _ => None,
        }
    }
}

/// What a client sends. A `user` or `room` field in it is ignored: the server fills both.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Send {
    #[serde(rename = "type")]
    pub kind: SendKind,
    pub cast: Cast,
    /// Room id for `multi`, user id for `uni`.
    pub id: String,
    /// Any JSON value, relayed and stored verbatim. Absent means `null`.
    #[serde(default)]
    pub data: Option<Box<RawValue>>,
    /// A client-chosen id (at most 64 characters): a resend with the same `cid` by the same user within the
    /// dedupe window is answered with the first one's `mid` and not stored or delivered again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
}

impl PartialEq for Send {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.cast == other.cast
            && self.id == other.id
            && self.data.as_ref().map(|d| d.get()) == other.data.as_ref().map(|d| d.get())
            && self.cid == other.cid
    }
}

/// The push each recipient gets.
#[derive(Debug, Clone, Serialize)]
pub struct SendPush<'a> {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub cast: &'a str,
    pub id: &'a str,
    pub data: &'a RawValue,
    pub user: &'a User,
    pub room: RoomRef<'a>,
    /// The store's id of the message (absent for live-only messages): clients use it to de-duplicate and to
    /// page history from where they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mid: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoomRef<'a> {
    pub id: &'a str,
}
