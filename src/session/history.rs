//! `history {rid | uid, before, after, limit}`: a page of a room's or a conversation's stored messages,
//! rendered straight from the stored JSON (see rooms/history.rs); search, `read` and `redact`. Each is
//! worked out off the session task, so the connection goes on reading on its other pipes meanwhile.

use super::commands::{Cx, Handle};
use super::error::{RoomContext, SessionError};
use super::state::{Answer, Session};
use crate::protocol::args::{History, Read, Redact};
use crate::protocol::command::MAX_ARGS_LEN;
use crate::protocol::status::codes;
use crate::protocol::Status;
use crate::rooms::{hits_json, page_json, HistoryRequest, HistoryThread, RedactBy, SearchRequest};

impl Session {
    /// Worked out off the session task (`off_task`), like every command that waits for the store.
    pub(super) async fn history(&mut self, mut args: History) -> Result<Answer, SessionError> {
        let caller = self.caller("history")?;
        let (rooms, claims) = (self.ctx.rooms.clone(), self.claims.clone());
        if let Some(query) = args.query.take() {
            let thread = match (&args.rid, &args.uid) {
                (None, None) => None,
                _ => Some(thread_of("history", args.rid, args.uid)?),
            };
            let req = SearchRequest {
                query,
                thread,
                before: args.before,
                limit: args.limit,
            };
            return self
                .off_task(async move {
                    let hits = rooms
                        .search(&caller, &claims, req)
                        .await
                        .map_err(|e| SessionError::Room(RoomContext::Other, e))?;
                    let info = hits_json(&hits, Some(MAX_ARGS_LEN - 512));
                    Ok(Status::ok(codes::CALL_SUCCESS, "history").with_raw_info(info))
                })
                .await;
        }
        let thread = thread_of("history", args.rid, args.uid)?;
        let newest = args.after.is_none() || args.before.is_some();
        let req = HistoryRequest {
            thread,
            before: args.before,
            after: args.after,
            limit: args.limit,
        };
        self.off_task(async move {
            let page = rooms
                .history(&caller, &claims, req)
                .await
                .map_err(|e| SessionError::Room(RoomContext::Other, e))?;
            // Leave room in the 64 KiB argument block for the status envelope.
            let info = page_json(&page, newest, Some(MAX_ARGS_LEN - 512));
            Ok(Status::ok(codes::CALL_SUCCESS, "history").with_raw_info(info))
        })
        .await
    }

    /// `redact {mid}`: the caller's own message, or any in a room where they hold `x`.
    pub(super) async fn redact(&mut self, args: Redact) -> Result<Answer, SessionError> {
        let caller = self.caller("redact")?;
        let (rooms, claims) = (self.ctx.rooms.clone(), self.claims.clone());
        self.off_task(async move {
            let by = RedactBy::User {
                id: &caller,
                claims: &claims,
            };
            let info = rooms
                .redact(by, args.mid)
                .await
                .map_err(|e| SessionError::Room(RoomContext::Other, e))?;
            Ok(Status::ok(codes::CALL_SUCCESS, "redact").with_info(info))
        })
        .await
    }
}

/// A room (`rid`) or the caller's conversation with a user (`uid`): exactly one of them.
fn thread_of(
    command: &str,
    rid: Option<String>,
    uid: Option<String>,
) -> Result<HistoryThread, SessionError> {
    match (rid, uid) {
        (Some(rid), None) => Ok(HistoryThread::Room(rid)),
        (None, Some(uid)) => Ok(HistoryThread::With(uid)),
        _ => Err(SessionError::Args(crate::protocol::ArgsError::Invalid {
            name: command.into(),
            reason: "give exactly one of `rid` (a room) or `uid` (a conversation)".into(),
        })),
    }
}

impl Session {
    /// `read {rid | uid, mid?}`: marks read up to `mid`, or asks; answers `{mid, unread, more}`.
    pub(super) async fn read(&mut self, args: Read) -> Result<Answer, SessionError> {
        let caller = self.caller("read")?;
        let thread = thread_of("read", args.rid, args.uid)?;
        let (rooms, claims) = (self.ctx.rooms.clone(), self.claims.clone());
        self.off_task(async move {
            let info = rooms
                .read(&caller, &claims, thread, args.mid)
                .await
                .map_err(|e| SessionError::Room(RoomContext::Other, e))?;
            Ok(Status::ok(codes::CALL_SUCCESS, "read").with_info(info))
        })
        .await
    }
}

impl Handle for History {
    async fn handle(self, s: &mut Session, _: Cx<'_>) -> Result<Answer, SessionError> {
        s.history(self).await
    }
}

impl Handle for Read {
    async fn handle(self, s: &mut Session, _: Cx<'_>) -> Result<Answer, SessionError> {
        s.read(self).await
    }
}

impl Handle for Redact {
    async fn handle(self, s: &mut Session, _: Cx<'_>) -> Result<Answer, SessionError> {
        s.redact(self).await
    }
}
