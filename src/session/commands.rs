//! From a parsed `Request` to its handler, generated from the one command list (`protocol/commands.rs`):
//! each listed command's argument type implements `Handle` beside the session's other handlers (`typing.rs`
//! is the smallest example), and the match below is written by the list, not by hand.

use bytes::Bytes;

use super::error::SessionError;
use super::state::{Answer, Call, Session};
use crate::protocol::commands::with_commands;
use crate::protocol::Request;

/// What a handler gets besides its arguments: the call (pipe, txid, arrival), the raw JSON arguments
/// (signaling relays them as they came) and the binary payload (a `file`'s bytes).
pub(super) struct Cx<'a> {
    pub call: Call,
    pub raw_args: &'a [u8],
    pub payload: Bytes,
}

/// One command's handler, implemented for its argument type. The run loop has checked that the session is
/// connected (for all but `connect`) and that the command came on a pipe its place admits.
pub(super) trait Handle {
    fn handle(
        self,
        s: &mut Session,
        cx: Cx<'_>,
    ) -> impl std::future::Future<Output = Result<Answer, SessionError>> + std::marker::Send;
}

macro_rules! define_dispatch {
    ($($wire:literal => $variant:ident($args:ident) on $place:ident,)*) => {
        impl Session {
            /// Hands a request to its handler.
            pub(super) async fn handle(
                &mut self,
                request: Request,
                cx: Cx<'_>,
            ) -> Result<Answer, SessionError> {
                match request {
                    $(Request::$variant(args) => args.handle(self, cx).await,)*
                    Request::Status => Ok(Answer::none()),
                    Request::Unsupported(name) => Err(SessionError::Unsupported(name)),
                    Request::Unknown(name) => Err(SessionError::UnknownCommand(name)),
                }
            }
        }
    };
}
with_commands!(define_dispatch);
