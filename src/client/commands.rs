//! The protocol's commands as `Client` methods: thin wrappers that build the arguments and wait for the answer.

use serde_json::{json, Value};

use super::{Client, ClientError, Reply};
use crate::protocol::args::{
    Cast, Chmod, Create, Join, Leave, Mask, Operator, PipeKind, Redact, Release, Send, SendKind,
};
use crate::protocol::commands::Command;

/// `create {kind}`'s arguments. A kind this library does not know is still sent, for the gateway to refuse.
pub(super) fn create_args(kind: &str) -> Value {
    let kind = match kind {
        "messaging" => PipeKind::Messaging,
        "signaling" => PipeKind::Signaling,
        other => return json!({"name": Create::NAME, "kind": other}),
    };
    Create {
        kind,
        parameters: Default::default(),
    }
    .to_args()
}

/// `send`'s arguments, typed; a type or cast this library does not know is still sent, for the gateway to
/// refuse.
pub(super) fn send_args(cast: &str, id: &str, kind: &str, data: &Value) -> Value {
    let typed = (
        SendKind::parse(kind),
        serde_json::from_value::<Cast>(json!(cast)).ok(),
        serde_json::value::to_raw_value(data).ok(),
    );
    match typed {
        (Some(kind), Some(cast), Some(data)) => Send {
            kind,
            cast,
            id: id.to_string(),
            data: Some(data),
            cid: None,
        }
        .to_args(),
        _ => json!({"name": Send::NAME, "type": kind, "cast": cast, "id": id, "data": data}),
    }
}

/// `chmod`'s arguments, typed; an operator or mask the gateway would refuse is still sent as given.
pub(super) fn chmod_args(rid: &str, tid: &str, operator: &str, mask: &str) -> Value {
    let typed = serde_json::from_value::<Operator>(json!(operator)).ok();
    match (typed, Mask::from_letters(mask)) {
        (Some(op), Some(m)) => Chmod {
            rid: rid.to_string(),
            tid: tid.to_string(),
            operator: op,
            mask: m,
        }
        .to_args(),
        _ => {
            json!({"name": Chmod::NAME, "rid": rid, "tid": tid, "operator": operator, "mask": mask})
        }
    }
}

impl Client {
    /// `create {kind}`: returns the new pipe id.
    pub async fn create(&self, kind: &str) -> Result<u16, ClientError> {
        let r = self.call(0, create_args(kind)).await?.ok()?;
        let id = r.info()["id"]
            .as_u64()
            .and_then(|id| u16::try_from(id).ok())
            .ok_or_else(|| {
                ClientError::Unexpected(format!("create answered without a pipe id: {}", r.args))
            })?;
        if let Some(mut m) = self.memory() {
            m.created(id, kind);
        }
        Ok(id)
    }

    /// `release {id}` on pipe 0.
    pub async fn release(&self, pipe: u16) -> Result<Reply, ClientError> {
        let r = self
            .call(
                0,
                Release {
                    id: pipe,
                    reason: String::new(),
                }
                .to_args(),
            )
            .await?
            .ok()?;
        if let Some(mut m) = self.memory() {
            m.released(pipe);
        }
        Ok(r)
    }

    /// `join {rid}` on a messaging pipe; returns the `NetGroup.Connect.Success` answer.
    pub async fn join(&self, pipe: u16, rid: &str) -> Result<Reply, ClientError> {
        let r = self
            .call(
                pipe,
                Join {
                    rid: rid.to_string(),
                    after: None,
                }
                .to_args(),
            )
            .await?
            .ok()?;
        if let Some(mut m) = self.memory() {
            m.joined(pipe, rid);
        }
        Ok(r)
    }

    /// `typing {rid}`: tells the room's other members this user is typing (at most one notice per room every
    /// 2 s goes out; the answer's `info.sent` says whether this one did). Send it while the user types.
    pub async fn typing(&self, pipe: u16, rid: &str) -> Result<Reply, ClientError> {
        let args = crate::protocol::args::Typing {
            rid: rid.to_string(),
        };
        self.call(pipe, args.to_args()).await?.ok()
    }

    /// `leave {rid}`.
    pub async fn leave(&self, pipe: u16, rid: &str) -> Result<Reply, ClientError> {
        let r = self
            .call(
                pipe,
                Leave {
                    rid: rid.to_string(),
                    reason: String::new(),
                }
                .to_args(),
            )
            .await?
            .ok()?;
        if let Some(mut m) = self.memory() {
            m.left(pipe, rid);
        }
        Ok(r)
    }

    /// `send` with `cast` `multi` (room id) or `uni` (user id); returns the answer (its info has `mid`).
    pub async fn send(
        &self,
        pipe: u16,
        cast: &str,
        id: &str,
        kind: &str,
        data: Value,
    ) -> Result<Reply, ClientError> {
        self.call(pipe, send_args(cast, id, kind, &data))
            .await?
            .ok()
    }

    /// A text message to a room.
    pub async fn say(&self, pipe: u16, rid: &str, text: &str) -> Result<Reply, ClientError> {
        self.send(pipe, "multi", rid, "text", json!(text)).await
    }

    /// `chmod {rid, tid, operator, mask}`.
    pub async fn chmod(
        &self,
        pipe: u16,
        rid: &str,
        tid: &str,
        operator: &str,
        mask: &str,
    ) -> Result<Reply, ClientError> {
        self.call(pipe, chmod_args(rid, tid, operator, mask))
            .await?
            .ok()
    }

    /// `history`: `query` holds `rid` or `uid` and optionally `before`, `after`, `limit`.
    pub async fn history(&self, pipe: u16, mut query: Value) -> Result<Reply, ClientError> {
        query["name"] = json!("history");
        self.call(pipe, query).await?.ok()
    }

    /// `redact {mid}`: the caller's own message, or any in a room where it holds `x`.
    pub async fn redact(&self, pipe: u16, mid: i64) -> Result<Reply, ClientError> {
        self.call(pipe, Redact { mid }.to_args()).await?.ok()
    }
}
