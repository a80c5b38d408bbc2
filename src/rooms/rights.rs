//! `chmod`: rights are persisted first, then written through to the loaded room, so they survive restarts and
//! take effect on the very next message.

use serde_json::{json, Value};

use super::access::{authorize, Act, RoomClaims};
use super::state::{room_default, room_properties, validate_room_id, validate_user_id};
use super::{RoomError, Rooms};
use crate::protocol::args::{Chmod, Mask};
use crate::store::RoomRow;

impl Rooms {
    /// The rights of `user` in a room, from the loaded room, else the store, else the policy default.
    pub async fn mask_of(&self, row: &RoomRow, user: &str) -> Result<Mask, RoomError> {
        if let Some(m) = self
            .room_state(&row.id)
            .rooms
            .get(&row.id)
            .and_then(|r| r.rights.get(user).copied())
        {
            return Ok(m);
        }
        Ok(match self.store().member_mask(&row.id, user).await? {
            Some(m) => Mask(m),
            None if row.owner == user => Mask::ALL,
            None => room_default(row, self.policy().default_mask),
        })
    }

    pub(super) async fn existing_room(&self, rid: &str) -> Result<RoomRow, RoomError> {
        validate_room_id(rid)?;
        if let Some(r) = self.room_state(rid).rooms.get(rid) {
            return Ok(r.row.clone());
        }
        self.store()
            .room(rid)
            .await?
            .ok_or_else(|| RoomError::NoSuchRoom(rid.to_string()))
    }

    /// Applies `chmod` on behalf of `actor`; returns the info for the answer.
    pub async fn chmod(
        &self,
        actor: &str,
        claims: &RoomClaims,
        args: &Chmod,
    ) -> Result<Value, RoomError> {
        validate_user_id(&args.tid)?;
        authorize(claims, Act::Chmod, &args.rid, None)?;
        let row = self.existing_room(&args.rid).await?;
        let mask = self.mask_of(&row, actor).await?;
        authorize(claims, Act::Chmod, &args.rid, Some(mask))?;
        self.apply_chmod(&row, actor, args).await
    }

    /// Applies `chmod` for the app's backend (the server API): no actor's rights to check, only the room's
    /// rule that its owner keeps `x`.
    pub async fn server_chmod(&self, key: &str, args: &Chmod) -> Result<Value, RoomError> {
        validate_user_id(&args.tid)?;
        let row = self.existing_room(&args.rid).await?;
        self.apply_chmod(&row, &format!("server API key {key}"), args)
            .await
    }

    /// Stores the new rights, then writes them through to the loaded room and the other nodes.
    async fn apply_chmod(
        &self,
        row: &RoomRow,
        actor: &str,
        args: &Chmod,
    ) -> Result<Value, RoomError> {
        let current = self.mask_of(row, &args.tid).await?;
        let next = args.operator.apply(current, args.mask);
        if args.tid == row.owner && !next.contains(Mask::X) {
            return Err(RoomError::OwnerKeepsAdmin(args.rid.clone()));
        }
        self.store()
            .set_member_mask(&args.rid, &args.tid, next.0)
            .await?;
        if let Some(room) = self.room_state(&args.rid).rooms.get_mut(&args.rid) {
            room.set_rights(&args.tid, next);
        }
        self.publish(|node| crate::bus::Event::Rights {
            node: node.to_string(),
            rid: args.rid.clone(),
            uid: args.tid.clone(),
            mask: next.0,
        });
        tracing::info!(room = %args.rid, actor, target = %args.tid, mask = %next.letters(), "chmod");
        Ok(json!({
            "room": { "id": args.rid },
            "user": { "id": args.tid },
            "mask": next.letters(),
            "value": next.0,
        }))
    }
}

impl Rooms {
    /// Sets a room property (`x` holders only). Known: `default_rights` (letters), `offline_notify` (bool:
    /// the `offline` hook tells the backend about this room's messages for readers without a connection) and
    /// `read_receipts` (bool: members are told when someone's read position moves), `retention_age_s` and
    /// `retention_count` (numbers: how long and how many messages the room keeps; 0 = no limit).
    pub async fn set_room_property(
        &self,
        actor: &str,
        claims: &RoomClaims,
        rid: &str,
        key: &str,
        value: &Value,
    ) -> Result<Value, RoomError> {
        authorize(claims, Act::SetProperty, rid, None)?;
        let row = self.existing_room(rid).await?;
        let mask = self.mask_of(&row, actor).await?;
        authorize(claims, Act::SetProperty, rid, Some(mask))?;
        let value = property_value(key, value)?;
        self.store_room_properties(rid, &row, [(key.to_string(), value.clone())])
            .await?;
        Ok(value)
    }

    /// The server API's `POST /api/server/rooms/{rid}/properties`: sets every given property (checked as
    /// `setProperty` checks them, no rights: the key is the authority) in one write; returns them all.
    pub async fn server_set_room_properties(
        &self,
        rid: &str,
        given: &serde_json::Map<String, Value>,
    ) -> Result<serde_json::Map<String, Value>, RoomError> {
        let row = self.existing_room(rid).await?;
        let mut checked = Vec::with_capacity(given.len());
        for (key, value) in given {
            checked.push((key.clone(), property_value(key, value)?));
        }
        self.store_room_properties(rid, &row, checked).await
    }

    /// Every property of a room (`GET /api/server/rooms/{rid}/properties`).
    pub async fn server_room_properties(
        &self,
        rid: &str,
    ) -> Result<serde_json::Map<String, Value>, RoomError> {
        room_properties(&self.existing_room(rid).await?)
    }

    /// Writes `set` over the room's properties: the store, the loaded room, and the other nodes.
    async fn store_room_properties(
        &self,
        rid: &str,
        row: &RoomRow,
        set: impl IntoIterator<Item = (String, Value)>,
    ) -> Result<serde_json::Map<String, Value>, RoomError> {
        let mut props = room_properties(row)?;
        props.extend(set);
        let text = Value::Object(props.clone()).to_string();
        self.store().set_room_properties(rid, &text).await?;
        if let Some(room) = self.room_state(rid).rooms.get_mut(rid) {
            room.row.properties = text.clone();
        }
        self.publish(|node| crate::bus::Event::RoomProperties {
            node: node.to_string(),
            rid: rid.to_string(),
            properties: text,
        });
        Ok(props)
    }

    /// A room property, or null.
    pub async fn room_property(
        &self,
        claims: &RoomClaims,
        rid: &str,
        key: &str,
    ) -> Result<Value, RoomError> {
        authorize(claims, Act::GetProperty, rid, None)?;
        let row = self.existing_room(rid).await?;
        let props = room_properties(&row)?;
        Ok(props.get(key).cloned().unwrap_or(Value::Null))
    }
}

/// A room property's value as stored, or why it is refused. Known: `default_rights` (letters),
/// `offline_notify` and `read_receipts` (booleans), `retention_age_s` and `retention_count` (whole numbers, 0 = no
/// limit).
fn property_value(key: &str, value: &Value) -> Result<Value, RoomError> {
    Ok(match key {
        "default_rights" => {
            let letters =
                value
                    .as_str()
                    .and_then(Mask::from_letters)
                    .ok_or_else(|| RoomError::Invalid {
                        what: "default_rights",
                        reason: "letters from r, w, x".into(),
                    })?;
            json!(letters.letters())
        }
        "offline_notify" | "read_receipts" => match value {
            Value::Bool(b) => json!(b),
            _ => {
                return Err(RoomError::Invalid {
                    what: "room property",
                    reason: format!("`{key}` is true or false"),
                })
            }
        },
        // Retention (docs/storage.md): seconds kept / newest messages kept, 0 = no limit.
        "retention_age_s" | "retention_count" => match value.as_u64() {
            Some(n) => json!(n),
            None => {
                return Err(RoomError::Invalid {
                    what: "room property",
                    reason: format!("`{key}` is a whole number, 0 for no limit"),
                })
            }
        },
        other => {
            return Err(RoomError::Invalid {
                what: "room property",
                reason: format!(
                    "unknown room property `{other}` (known: default_rights, offline_notify, \
                     read_receipts, retention_age_s, retention_count)"
                ),
            })
        }
    })
}
