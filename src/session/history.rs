//! `history {rid | uid, before, after, limit}`: a page of a room's or a conversation's stored messages,
//! rendered straight from the stored JSON (see rooms/history.rs).

use super::error::{RoomContext, SessionError};
use super::state::Session;
use crate::protocol::args::History;
use crate::protocol::command::MAX_ARGS_LEN;
use crate::protocol::status::codes;
use crate::protocol::Status;
use crate::rooms::{page_json, HistoryRequest, HistoryThread};

impl Session {
    pub(super) async fn history(&mut self, args: History) -> Result<Status, SessionError> {
        let caller = self.caller("history")?;
        let thread = match (args.rid, args.uid) {
            (Some(rid), None) => HistoryThread::Room(rid),
            (None, Some(uid)) => HistoryThread::With(uid),
            _ => {
                return Err(SessionError::Args(crate::protocol::ArgsError::Invalid {
                    name: "history".into(),
                    reason: "give exactly one of `rid` (a room) or `uid` (a conversation)".into(),
                }))
            }
        };
        let newest = args.after.is_none() || args.before.is_some();
        let page = self
            .ctx
            .rooms
            .history(
                &caller,
                &self.claims,
                HistoryRequest {
                    thread,
                    before: args.before,
                    after: args.after,
                    limit: args.limit,
                },
            )
            .await
            .map_err(|e| SessionError::Room(RoomContext::Other, e))?;
        // Leave room in the 64 KiB argument block for the status envelope.
        let info = page_json(&page, newest, Some(MAX_ARGS_LEN - 512));
        Ok(Status::ok(codes::CALL_SUCCESS, "history").with_raw_info(info))
    }
}
