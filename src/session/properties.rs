//! `setProperty {info}` / `getProperty {keys}`: properties of the connection (pipe 0), of a pipe, and of rooms.
//!
//! Known pipe keys (messaging pipes): `temporary` (bool: what the pipe sends is delivered live and not stored)
//! and `private` (bool: rooms the pipe joins from then on do not list it or announce it). Room keys are
//! `room:<rid>:<key>`, settable by `x` holders: `room:<rid>:default_rights` (letters, the rights of users
//! joining without stored rights), `room:<rid>:offline_notify` (bool, docs/hooks.md) and
//! `room:<rid>:read_receipts` (bool, docs/protocol.md "Read positions"). Any other key is kept as given (at most 32 keys, 1 KiB per value) and
//! returned by `getProperty`, with no meaning to the gateway. Pipe and connection properties live as long as
//! the pipe or session; room properties are stored.

use serde_json::{json, Map, Value};

use super::commands::{Cx, Handle};
use super::error::{RoomContext, SessionError};
use super::state::{Answer, Session};
use crate::protocol::args::{GetProperty, PipeKind, SetProperty};
use crate::protocol::status::codes;
use crate::protocol::{ArgsError, Status};

const MAX_KEYS: usize = 32;
const MAX_VALUE: usize = 1024;

fn invalid(reason: String) -> SessionError {
    SessionError::Args(ArgsError::Invalid {
        name: "setProperty".into(),
        reason,
    })
}

/// `room:<rid>:<key>` -> (rid, key).
fn room_key(key: &str) -> Option<(&str, &str)> {
    key.strip_prefix("room:")?.rsplit_once(':')
}

impl Session {
    fn properties_mut(&mut self, pipe: u16) -> Result<&mut Map<String, Value>, SessionError> {
        if pipe == 0 {
            return Ok(&mut self.conn_properties);
        }
        self.pipes
            .get_mut(pipe)
            .map(|p| &mut p.properties)
            .ok_or(SessionError::UnknownPipe(pipe))
    }

    pub(super) async fn set_property(
        &mut self,
        pipe: u16,
        args: SetProperty,
    ) -> Result<Status, SessionError> {
        let kind = self.pipes.get(pipe).map(|p| p.kind);
        let caller = self
            .identity
            .as_ref()
            .map(|i| i.user.id.clone())
            .unwrap_or_default();
        let mut applied = Map::new();
        for (key, value) in args.info {
            if let Some((rid, room_prop)) = room_key(&key) {
                let v = self
                    .ctx
                    .rooms
                    .set_room_property(&caller, &self.claims, rid, room_prop, &value)
                    .await
                    .map_err(|e| SessionError::Room(RoomContext::Other, e))?;
                applied.insert(key.clone(), v);
                continue;
            }
            if matches!(key.as_str(), "temporary" | "private") {
                if kind != Some(PipeKind::Messaging) {
                    return Err(invalid(format!("`{key}` is a property of messaging pipes")));
                }
                if !value.is_boolean() {
                    return Err(invalid(format!("`{key}` must be true or false")));
                }
            }
            if key.is_empty() || key.len() > 64 || value.to_string().len() > MAX_VALUE {
                return Err(invalid(format!(
                    "keys are 1-64 characters, values at most {MAX_VALUE} bytes of JSON"
                )));
            }
            let props = self.properties_mut(pipe)?;
            if !props.contains_key(&key) && props.len() >= MAX_KEYS {
                return Err(invalid(format!("at most {MAX_KEYS} properties per pipe")));
            }
            props.insert(key.clone(), value.clone());
            applied.insert(key, value);
        }
        Ok(Status::ok(codes::CALL_SUCCESS, "properties set").with_info(Value::Object(applied)))
    }

    pub(super) async fn get_property(
        &mut self,
        pipe: u16,
        args: GetProperty,
    ) -> Result<Status, SessionError> {
        if args.keys.len() > MAX_KEYS * 2 {
            return Err(SessionError::Args(ArgsError::Invalid {
                name: "getProperty".into(),
                reason: "too many keys".into(),
            }));
        }
        let is_messaging = self.pipes.get(pipe).map(|p| p.kind) == Some(PipeKind::Messaging);
        let mut info = Map::new();
        for key in args.keys {
            let value = if let Some((rid, room_prop)) = room_key(&key) {
                self.ctx
                    .rooms
                    .room_property(&self.claims, rid, room_prop)
                    .await
                    .map_err(|e| SessionError::Room(RoomContext::Other, e))?
            } else {
                let props = self.properties_mut(pipe)?;
                match props.get(&key) {
                    Some(v) => v.clone(),
                    None if is_messaging && matches!(key.as_str(), "temporary" | "private") => {
                        json!(false)
                    }
                    None => Value::Null,
                }
            };
            info.insert(key, value);
        }
        Ok(Status::ok(codes::CALL_SUCCESS, "properties").with_info(Value::Object(info)))
    }
}

impl Handle for SetProperty {
    async fn handle(self, s: &mut Session, cx: Cx<'_>) -> Result<Answer, SessionError> {
        s.set_property(cx.call.pipe, self).await.map(Answer::from)
    }
}

impl Handle for GetProperty {
    async fn handle(self, s: &mut Session, cx: Cx<'_>) -> Result<Answer, SessionError> {
        s.get_property(cx.call.pipe, self).await.map(Answer::from)
    }
}
