//! `join` and `leave` on a messaging pipe, and the bookkeeping that lets a closing pipe or connection leave
//! everything it joined.

use serde_json::json;

use super::commands::{Cx, Handle};
use super::error::{RoomContext, SessionError};
use super::state::{Answer, CatchUp, Session};
use crate::clock::now_secs;
use crate::protocol::args::{Join, Leave, PipeKind};
use crate::protocol::outgoing::status_frame;
use crate::protocol::status::codes;
use crate::protocol::Status;
use crate::rooms::{authorize, Act, Member};

impl Session {
    pub(super) fn member(&self, pipe: u16) -> Option<Member> {
        let identity = self.identity.as_ref()?;
        Some(Member {
            conn: self.id,
            pipe,
            user: identity.user.clone(),
            outbox: self.out.clone(),
            claims: self.claims.clone(),
            private: self
                .pipes
                .get(pipe)
                .and_then(|p| p.properties.get("private"))
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
        })
    }

    /// `join {rid}`: answered `NetGroup.Connect.Success`, then the coverage push. With `after`, the replayed
    /// messages follow the coverage push, and the live messages held meanwhile follow them (`CatchUp`).
    pub(super) async fn join(&mut self, pipe: u16, args: Join) -> Result<Answer, SessionError> {
        let already = self.joined.contains(&(pipe, args.rid.clone()));
        let rooms_held = self
            .joined
            .iter()
            .map(|(_, r)| r)
            .collect::<std::collections::HashSet<_>>()
            .len();
        if !already && rooms_held >= self.ctx.limits.max_rooms_per_connection {
            return Err(SessionError::TooManyRooms(
                self.ctx.limits.max_rooms_per_connection,
            ));
        }
        let member = self
            .member(pipe)
            .ok_or(SessionError::NotConnected("join".into()))?;
        let user = member.user.clone();
        let joined = self
            .ctx
            .rooms
            .join(member, &args.rid, args.after.is_some())
            .await
            .map_err(|e| SessionError::Room(RoomContext::Join, e))?;
        if self.ctx.faults.panic_after_join_by.as_deref() == Some(user.id.as_str()) {
            panic!(
                "fault injection: panic after {} joined {}",
                user.id, args.rid
            );
        }
        if self.joined.insert((pipe, args.rid.clone())) {
            self.ctx
                .events
                .record("join", &user.id, Some(&args.rid), json!({ "pipe": pipe }));
        }
        let mut room = joined.room;
        room["mask"] = json!(joined.mask.letters());
        let mut info = json!({ "user": user, "room": room });
        let coverage = Status::ok(
            codes::GROUP_LOCAL_COVERAGE,
            format!("members of {}", args.rid),
        )
        .with_raw_info(joined.coverage);
        let coverage = status_frame(pipe, 0, &coverage, now_secs());
        let (Some(after), true) = (args.after, joined.catching_up) else {
            // The answer first, then the coverage push, as PROTOCOL.md §3.4 orders them.
            let status = Status::ok(codes::GROUP_CONNECT_SUCCESS, format!("joined {}", args.rid))
                .with_info(info);
            return Ok(Answer::from(status).then([coverage]));
        };
        let replay = self
            .ctx
            .rooms
            .replay(&user.id, &self.claims, pipe, &args.rid, after)
            .await;
        let (frames, last) = match replay {
            Ok(r) => {
                info["catchup"] = json!({
                    "after": after, "replayed": r.frames.len(), "last": r.last, "more": r.more,
                });
                (r.frames, r.last)
            }
            Err(e) => {
                // Joined all the same; the client pages the gap with `history {after}`.
                tracing::warn!(conn = self.id, room = %args.rid, error = %e, "catch-up replay failed");
                info["catchup"] =
                    json!({ "after": after, "replayed": 0, "more": true, "error": e.to_string() });
                (Vec::new(), None)
            }
        };
        let status = Status::ok(codes::GROUP_CONNECT_SUCCESS, format!("joined {}", args.rid))
            .with_info(info);
        let mut answer = Answer::from(status).then([coverage]).then(frames);
        answer.catch_up = Some(CatchUp {
            pipe,
            rid: args.rid,
            last,
        });
        Ok(answer)
    }

    pub(super) fn leave(&mut self, pipe: u16, args: Leave) -> Result<Status, SessionError> {
        if !self.joined.remove(&(pipe, args.rid.clone())) {
            return Err(SessionError::NotInRoom(args.rid));
        }
        let room = self
            .ctx
            .rooms
            .leave(self.id, pipe, &args.rid, &args.reason)
            .unwrap_or_else(|| json!({ "id": args.rid }));
        if let Some(identity) = &self.identity {
            self.ctx.events.record(
                "leave",
                &identity.user.id,
                Some(&args.rid),
                json!({ "pipe": pipe, "reason": crate::transport::link::one_line(&args.reason, 256) }),
            );
        }
        Ok(
            Status::ok(codes::GROUP_CONNECT_CLOSED, format!("left {}", args.rid))
                .with_info(json!({ "room": room })),
        )
    }

    /// After a fast reconnect the token presented *now* decides: rooms it does not grant are left, and the
    /// client is told on each pipe (`NetGroup.Connect.Closed`) right after the connect answer.
    /// Returns those pushes.
    pub(super) fn leave_ungranted(&mut self) -> Vec<crate::protocol::Frame> {
        let gone: Vec<(u16, String)> = self
            .joined
            .iter()
            .filter(|(_, rid)| authorize(&self.claims, Act::Resume, rid, None).is_err())
            .cloned()
            .collect();
        let mut told = Vec::new();
        for (pipe, rid) in gone {
            self.joined.remove(&(pipe, rid.clone()));
            let reason = "your token does not grant this room";
            let room = self
                .ctx
                .rooms
                .leave(self.id, pipe, &rid, reason)
                .unwrap_or_else(|| json!({ "id": rid }));
            let closed = Status::ok(codes::GROUP_CONNECT_CLOSED, format!("left {rid}: {reason}"))
                .with_info(json!({ "room": room }));
            told.push(status_frame(pipe, 0, &closed, now_secs()));
        }
        told
    }

    /// Leaves every room `pipe` joined (the pipe was released or the connection ended).
    pub(super) fn leave_rooms_of(&mut self, pipe: u16, reason: &str) {
        let rids: Vec<String> = self
            .joined
            .iter()
            .filter(|(p, _)| *p == pipe)
            .map(|(_, r)| r.clone())
            .collect();
        for rid in rids {
            self.joined.remove(&(pipe, rid.clone()));
            self.ctx.rooms.leave(self.id, pipe, &rid, reason);
        }
    }

    /// Points uni-cast delivery at this connection's lowest messaging pipe (or nowhere, if it has none).
    pub(super) fn refresh_inbox(&self) {
        let Some(identity) = &self.identity else {
            return;
        };
        let pipe = self
            .pipes
            .ids()
            .find(|id| self.pipes.get(*id).map(|p| p.kind) == Some(PipeKind::Messaging));
        let inbox = pipe.and_then(|p| self.member(p));
        self.ctx.rooms.set_inbox(self.id, &identity.user, inbox);
    }
}

impl Handle for Join {
    async fn handle(self, s: &mut Session, cx: Cx<'_>) -> Result<Answer, SessionError> {
        s.join(cx.call.pipe, self).await
    }
}

impl Handle for Leave {
    async fn handle(self, s: &mut Session, cx: Cx<'_>) -> Result<Answer, SessionError> {
        s.leave(cx.call.pipe, self).map(Answer::from)
    }
}
