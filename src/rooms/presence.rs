//! `join` / `leave`, presence pushes, and the inboxes uni-cast is delivered to.
//!
//! Presence is per user, not per connection: others see `Neighbor.Connect` when a user's first connection
//! joins and `Neighbor.Disconnect` when the last one leaves, so a phone and a laptop in the same room do not
//! make the member list flap.

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::access::{authorize, Act, RoomClaims};
use super::member::{Member, Notice};
use super::state::{room_default, room_json, validate_room_id, Room, State};
use super::{RoomError, Rooms};
use crate::protocol::args::{Mask, User};
use crate::protocol::status::codes;
use crate::protocol::Status;

/// What a successful join hands back to the session: the answer and the coverage push to send after it.
pub struct Joined {
    pub room: Value,
    pub mask: Mask,
    /// Live messages for this pipe are held until `finish_catch_up` (a join with `after` and `r`).
    pub catching_up: bool,
    /// The coverage push's `info`, as JSON text: the room, and its members present keyed by user id
    /// (`list`); in a crowded room at most `CROWDED_COVERAGE` (or `presence_limit`, if lower) of them, the
    /// joiner always among them, with how many are present in all (`count`, `more`: docs/protocol.md, big rooms).
    pub coverage: Box<RawValue>,
}

/// LocalCoverage.Notify's `info`, written from borrowed users (fields in the order a JSON map would sort them).
#[derive(serde::Serialize)]
struct Coverage<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<usize>,
    list: &'a BTreeMap<&'a str, &'a User>,
    #[serde(skip_serializing_if = "Option::is_none")]
    more: Option<bool>,
    room: &'a Value,
}

/// Users a joiner of a crowded room is listed in its coverage push (itself first).
pub const CROWDED_COVERAGE: usize = 100;

/// A page of a room's present users (`Rooms::presence_page`).
#[derive(Debug, serde::Serialize)]
pub struct PresencePage {
    pub users: Vec<User>,
    /// Whether users follow the last of this page (ask again with `after` = its id).
    pub more: bool,
    /// Users present in all.
    pub count: usize,
}

impl Rooms {
    /// Joins `member` (one pipe of one connection) to room `rid`, creating the room if policy allows.
    pub async fn join(
        &self,
        member: Member,
        rid: &str,
        catch_up: bool,
    ) -> Result<Joined, RoomError> {
        validate_room_id(rid)?;
        // The token's claim first: a room it does not grant is neither created nor looked up.
        authorize(&member.claims, Act::Join, rid, None)?;
        let store = self.store();
        let policy = self.policy();
        let user = member.user.id.clone();
        let loaded = self
            .room_state(rid)
            .rooms
            .get(rid)
            .map(|r| (r.row.clone(), r.rights.get(&user).copied()));
        let (row, cached) = match loaded {
            Some(x) => x,
            None => {
                let row = match store.room(rid).await? {
                    Some(row) => row,
                    None if policy.create_on_join => store.ensure_room(rid, &user).await?.0,
                    None => return Err(RoomError::NoSuchRoom(rid.to_string())),
                };
                (row, None)
            }
        };
        let mask = match cached {
            Some(m) => m,
            None => {
                let initial = if row.owner == user {
                    Mask::ALL
                } else {
                    room_default(&row, policy.default_mask)
                };
                Mask(store.init_member_mask(rid, &user, initial.0).await?)
            }
        };
        authorize(&member.claims, Act::Join, rid, Some(mask))?;

        let mut state = self.room_state(rid);
        let State { rooms, remote } = &mut *state;
        let room = rooms
            .entry(rid.to_string())
            .or_insert_with(|| Room::new(row));
        // A chmod that landed while we were reading the store wins.
        let mask = *room.rights.entry(user.clone()).or_insert(mask);
        let already = room
            .members
            .iter()
            .any(|m| m.conn == member.conn && m.pipe == member.pipe);
        let first_of_user = room.user_connections(&user) == 0;
        if !already {
            room.add_member(member.clone());
        }
        let catching_up = catch_up && mask.contains(Mask::R);
        if catching_up {
            // Under the same lock as the membership: every live message from now on is held, none missed.
            room.catching_up
                .entry((member.conn, member.pipe))
                .or_default();
        }
        let room_info = room_json(room);
        // Users present, this joiner included; crowded before this join: nobody is told of it (O(1) pushes
        // per join instead of O(N)).
        let present = room.present_count(remote);
        let crowded = present > policy.presence_limit;
        if first_of_user && !member.private {
            self.publish(|node| crate::bus::Event::Join {
                node: node.to_string(),
                rid: rid.to_string(),
                user: member.user.clone(),
            });
            // Others already see this user if it is present through another node.
            if !remote.has(rid, &user) && !crowded {
                let notice = Status::ok(codes::GROUP_NEIGHBOR_CONNECT, format!("{user} joined"))
                    .with_info(json!({ "user": member.user, "room": room_info }));
                let notice = Notice::new(&notice);
                for m in room.members.iter().filter(|m| m.user.id != user) {
                    m.push_notice(&notice);
                }
            }
        }
        // A private member still sees itself, first; in a crowded room the list is a sample of
        // `CROWDED_COVERAGE` users (the rest are paged over HTTP), so a join into it costs no O(N) list.
        // Borrowed and written straight to JSON text: building a JSON tree of up to `presence_limit` users per
        // join (several allocations per user, freed at once) was the set-up's churn in a room of 1,000.
        let mut list: BTreeMap<&str, &User> = BTreeMap::new();
        list.insert(&user, &member.user);
        let limit = if crowded {
            CROWDED_COVERAGE.min(policy.presence_limit)
        } else {
            policy.presence_limit
        };
        let here = room.members.iter().filter(|m| !m.private).map(|m| &m.user);
        for u in remote.users(rid).into_values().chain(here) {
            if list.len() >= limit {
                break;
            }
            list.entry(u.id.as_str()).or_insert(u);
        }
        let count = Some(present.max(list.len())).filter(|n| *n > list.len());
        let coverage = Coverage {
            count,
            list: &list,
            more: count.map(|_| true),
            room: &room_info,
        };
        let coverage = serde_json::value::to_raw_value(&coverage).unwrap_or_else(|e| {
            // Strings keyed by strings always serialize; kept from a panic all the same.
            tracing::error!(error = %e, rid, "the coverage push could not be written");
            RawValue::NULL.to_owned()
        });
        Ok(Joined {
            room: room_info,
            mask,
            catching_up,
            coverage,
        })
    }

    /// Removes one pipe of one connection from a room. Returns the room's description, or `None` if that pipe
    /// was not in the room.
    pub fn leave(&self, conn: u64, pipe: u16, rid: &str, reason: &str) -> Option<Value> {
        let limit = self.policy().presence_limit;
        let (info, gone) = leave_locked(&mut self.room_state(rid), conn, pipe, rid, reason, limit)?;
        if let Some(uid) = gone {
            self.publish(|node| crate::bus::Event::Leave {
                node: node.to_string(),
                rid: rid.to_string(),
                uid,
                reason: reason.to_string(),
            });
        }
        Some(info)
    }

    /// Removes every room membership and inbox of connection `conn`, whatever the session's own bookkeeping
    /// says: the sweep after a session task died abnormally (a panic), so nothing it held outlives it.
    /// Returns how many memberships it removed.
    pub fn forget_connection(&self, conn: u64, reason: &str) -> usize {
        {
            let mut inboxes = self.inboxes();
            for list in inboxes.values_mut() {
                list.retain(|m| m.conn != conn);
            }
            inboxes.retain(|_, list| !list.is_empty());
        }
        let mut held: Vec<(String, u16)> = Vec::new();
        for shard in self.each_shard() {
            held.extend(shard.rooms.iter().flat_map(|(rid, r)| {
                r.members
                    .iter()
                    .filter(|m| m.conn == conn)
                    .map(move |m| (rid.clone(), m.pipe))
            }));
        }
        for (rid, pipe) in &held {
            self.leave(conn, *pipe, rid, reason);
        }
        held.len()
    }

    /// Registers (or, with `None`, removes) the pipe a connection takes uni-cast messages on.
    pub fn set_inbox(&self, conn: u64, user: &User, inbox: Option<Member>) {
        let mut inboxes = self.inboxes();
        let list = inboxes.entry(user.id.clone()).or_default();
        list.retain(|m| m.conn != conn);
        if let Some(m) = inbox {
            // Most users hold one connection: room for exactly one, not the four a first push reserves.
            list.reserve_exact(1);
            list.push(m);
        }
        if list.is_empty() {
            inboxes.remove(&user.id);
        }
    }

    /// One page of the users present in `rid` (here and on other nodes), ascending by id after `after`: how a
    /// client of a crowded room, which gets no presence pushes, learns who is there. Needs `r` in the room.
    pub async fn presence_page(
        &self,
        caller: &str,
        claims: &RoomClaims,
        rid: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<PresencePage, RoomError> {
        validate_room_id(rid)?;
        authorize(claims, Act::Read, rid, None)?;
        let row = self.existing_room(rid).await?;
        let mask = self.mask_of(&row, caller).await?;
        authorize(claims, Act::Read, rid, Some(mask))?;
        Ok(self.present_page(rid, after, limit))
    }

    /// One page of the users present in `rid` (here and on other nodes), ascending by id after `after`, with
    /// no rights check: for `presence_page` and the server API.
    pub fn present_page(&self, rid: &str, after: Option<&str>, limit: usize) -> PresencePage {
        let state = self.room_state(rid);
        let mut users: Vec<&User> = state
            .rooms
            .get(rid)
            .map(|r| r.present().into_values().collect())
            .unwrap_or_default();
        users.extend(state.remote.users(rid).into_values());
        users.sort_by(|a, b| a.id.cmp(&b.id));
        users.dedup_by(|a, b| a.id == b.id);
        let count = users.len();
        let rest: Vec<&User> = users
            .into_iter()
            .filter(|u| after.is_none_or(|a| u.id.as_str() > a))
            .collect();
        let more = rest.len() > limit;
        PresencePage {
            users: rest.into_iter().take(limit).cloned().collect(),
            more,
            count,
        }
    }

    /// Present users of a loaded room (tests and the HTTP API use it).
    pub fn present(&self, rid: &str) -> Vec<String> {
        let state = self.room_state(rid);
        let mut ids: Vec<String> = state
            .rooms
            .get(rid)
            .map(|r| r.present().keys().map(|k| k.to_string()).collect())
            .unwrap_or_default();
        ids.extend(state.remote.users(rid).keys().map(|k| k.to_string()));
        ids.sort();
        ids.dedup();
        ids
    }

    /// Rooms loaded in memory and members present in them (for metrics).
    pub fn counts(&self) -> (usize, usize) {
        let (mut rooms, mut members) = (0, 0);
        for shard in self.each_shard() {
            rooms += shard.rooms.len();
            members += shard.rooms.values().map(|r| r.members.len()).sum::<usize>();
        }
        (rooms, members)
    }
}

/// Returns the room's description, and the user id if that user is no longer visible on this node (the
/// cluster is told).
fn leave_locked(
    state: &mut State,
    conn: u64,
    pipe: u16,
    rid: &str,
    reason: &str,
    limit: usize,
) -> Option<(Value, Option<String>)> {
    let State { rooms, remote } = state;
    let room = rooms.get_mut(rid)?;
    let pos = room
        .members
        .iter()
        .position(|m| m.conn == conn && m.pipe == pipe)?;
    let gone = room.remove_member(pos);
    room.catching_up.remove(&(conn, pipe));
    let info = room_json(room);
    let last_here = room.user_connections(&gone.user.id) == 0 && !gone.private;
    if last_here && !remote.has(rid, &gone.user.id) && !room.crowded(remote, limit) {
        let notice = Status::ok(
            codes::GROUP_NEIGHBOR_DISCONNECT,
            if reason.is_empty() {
                format!("{} left", gone.user.id)
            } else {
                format!("{} left: {reason}", gone.user.id)
            },
        )
        .with_info(json!({ "user": gone.user, "room": info }));
        let notice = Notice::new(&notice);
        for m in &room.members {
            m.push_notice(&notice);
        }
    }
    if room.members.is_empty() {
        rooms.remove(rid);
    }
    Some((info, last_here.then(|| gone.user.id.clone())))
}
