//! `chmod` and `history`: the room commands that read or change stored state.

use super::connection::Session;
use super::error::{RoomContext, SessionError};
use crate::protocol::args::{Chmod, History};
use crate::protocol::command::MAX_ARGS_LEN;
use crate::protocol::status::codes;
use crate::protocol::Status;
use crate::rooms::{page_json, HistoryRequest, HistoryThread};

impl Session {
    fn caller(&self) -> Result<String, SessionError> {
        self.identity
            .as_ref()
            .map(|i| i.user.id.clone())
            .ok_or(SessionError::NotConnected("chmod".into()))
    }

    pub(super) async fn chmod(&mut self, args: Chmod) -> Result<Status, SessionError> {
        let caller = self.caller()?;
        let info = self
            .ctx
            .rooms
            .chmod(&caller, &self.claims, &args)
            .await
            .map_err(|e| SessionError::Room(RoomContext::Other, e))?;
        Ok(Status::ok(
            codes::CALL_SUCCESS,
            format!("rights of {} in {} changed", args.tid, args.rid),
        )
        .with_info(info))
    }

    pub(super) async fn history(&mut self, args: History) -> Result<Status, SessionError> {
        let caller = self.caller()?;
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
