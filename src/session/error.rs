//! Every failure a client can see, and the one place each becomes a `status`.

use thiserror::Error;

use crate::auth::AuthError;
use crate::metrics::Failure;
use crate::protocol::status::codes;
use crate::protocol::{ArgsError, FrameError, Status};
use crate::rooms::RoomError;

#[derive(Debug, Error)]
pub enum SessionError {
    #[error("malformed frame: {0}")]
    Frame(#[from] FrameError),
    #[error("{0}")]
    Args(#[from] ArgsError),
    #[error("`connect` must be the first command on a connection, got `{0}`")]
    NotConnected(String),
    #[error("this connection is already connected")]
    AlreadyConnected,
    #[error("connect rejected: {0}")]
    Auth(#[from] AuthError),
    #[error("unknown command `{0}`")]
    UnknownCommand(String),
    #[error("pipe {0} does not exist on this connection")]
    UnknownPipe(u16),
    #[error("`{command}` is not valid on {place}")]
    WrongPipe { command: String, place: String },
    #[error("too many pipes: at most {0} per connection")]
    TooManyPipes(usize),
    #[error("pipe 0 is the connection itself and cannot be released")]
    ReleaseControlPipe,
    #[error("`{0}` is not supported by this gateway yet")]
    NotSupported(String),
    #[error("too many rooms: at most {0} per connection")]
    TooManyRooms(usize),
    #[error("this pipe is not in room {0:?}")]
    NotInRoom(String),
    #[error("{1}")]
    Room(RoomContext, RoomError),
    #[error("{1}")]
    Media(RoomContext, crate::sfu::SfuError),
    #[error("the client does not read its answers")]
    SlowConsumer,
    #[error("rate limit: at most {0} commands per second; this one was dropped")]
    RateLimited(u32),
    #[error("too many queries waiting on this connection (at most {0}); this one was dropped")]
    TooManyQueries(usize),
    #[error("connect rejected: session {0} belongs to another user")]
    NotYourSession(String),
    #[error("refresh refused: {0}")]
    Refresh(AuthError),
    #[error("`{0}` is not supported: this gateway runs no remote processes")]
    Unsupported(&'static str),
}

/// Which command a room error answers: it decides the status code family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomContext {
    Join,
    /// `send` to a room.
    Post,
    /// `send` to a user.
    SendTo,
    /// `play` / `stop`.
    Stream,
    /// A publisher's offer on a signaling pipe (the SFU).
    Publish,
    Other,
}

impl SessionError {
    /// The status the client gets. The only mapping from errors to codes in the gateway.
    pub fn status(&self) -> Status {
        let code = match self {
            SessionError::Auth(_) => codes::CONNECT_REJECTED,
            SessionError::NotConnected(_) => codes::CONNECT_FAILED,
            SessionError::Frame(_)
            | SessionError::Args(_)
            | SessionError::AlreadyConnected
            | SessionError::UnknownCommand(_)
            | SessionError::UnknownPipe(_)
            | SessionError::WrongPipe { .. }
            | SessionError::TooManyPipes(_)
            | SessionError::ReleaseControlPipe
            | SessionError::NotSupported(_)
            | SessionError::TooManyRooms(_)
            | SessionError::NotInRoom(_)
            | SessionError::SlowConsumer
            | SessionError::RateLimited(_)
            | SessionError::TooManyQueries(_)
            | SessionError::Refresh(_)
            | SessionError::Unsupported(_) => codes::CALL_FAILED,
            SessionError::NotYourSession(_) => codes::CONNECT_REJECTED,
            SessionError::Room(context, e) => match (context, e) {
                (
                    RoomContext::Join,
                    RoomError::NoSuchRoom(_) | RoomError::Banned(_) | RoomError::NotGranted(_),
                ) => codes::GROUP_CONNECT_REJECTED,
                (RoomContext::Join, _) => codes::GROUP_CONNECT_FAILED,
                (RoomContext::Post, _) => codes::GROUP_POSTING_FAILED,
                (RoomContext::SendTo, _) => codes::GROUP_SENDTO_FAILED,
                (RoomContext::Stream, _) => codes::STREAM_PLAY_FAILED,
                (RoomContext::Publish, _) => codes::STREAM_FAILED,
                (RoomContext::Other, _) => codes::CALL_FAILED,
            },
            SessionError::Media(context, _) => match context {
                RoomContext::Stream => codes::STREAM_PLAY_FAILED,
                RoomContext::Publish => codes::STREAM_FAILED,
                _ => codes::CALL_FAILED,
            },
        };
        Status::error(code, self.to_string())
    }

    /// Errors after which the connection is closed (after the status is sent).
    pub fn closes_connection(&self) -> bool {
        matches!(
            self,
            SessionError::Auth(_)
                | SessionError::NotConnected(_)
                | SessionError::SlowConsumer
                | SessionError::NotYourSession(_)
        )
    }

    /// What the metrics count of this error, if anything: failed authentication or malformed input.
    pub fn failure(&self) -> Option<Failure> {
        match self {
            SessionError::NotYourSession(_) => Some(Failure::Auth("not_your_session")),
            SessionError::Auth(e) => Some(Failure::Auth(e.kind())),
            SessionError::Frame(_)
            | SessionError::Args(_)
            | SessionError::UnknownCommand(_)
            | SessionError::UnknownPipe(_)
            | SessionError::WrongPipe { .. }
            | SessionError::NotConnected(_) => Some(Failure::Protocol(self.kind())),
            _ => None,
        }
    }

    /// A short label for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            SessionError::Frame(e) => e.kind(),
            SessionError::Args(_) => "bad_args",
            SessionError::NotConnected(_) => "not_connected",
            SessionError::AlreadyConnected => "already_connected",
            SessionError::Auth(_) => "auth",
            SessionError::UnknownCommand(_) => "unknown_command",
            SessionError::UnknownPipe(_) => "unknown_pipe",
            SessionError::WrongPipe { .. } => "wrong_pipe",
            SessionError::TooManyPipes(_) => "too_many_pipes",
            SessionError::ReleaseControlPipe => "release_pipe_0",
            SessionError::NotSupported(_) => "not_supported",
            SessionError::TooManyRooms(_) => "too_many_rooms",
            SessionError::NotInRoom(_) => "not_in_room",
            SessionError::Room(_, e) => match e {
                RoomError::NoSuchRoom(_) => "no_such_room",
                RoomError::NoSuchMessage(_) => "no_such_message",
                RoomError::Banned(_) => "banned",
                RoomError::NotGranted(_) => "not_granted",
                RoomError::NotJoined(_) => "not_joined",
                RoomError::NoWrite(_) => "no_write",
                RoomError::NoRead(_) => "no_read",
                RoomError::NotAdmin(_) | RoomError::OwnerKeepsAdmin(_) => "not_admin",
                RoomError::Invalid { .. } => "invalid",
                RoomError::Store(_) | RoomError::Commit(_) => "store",
                RoomError::ShuttingDown => "shutting_down",
                RoomError::Cluster(_) => "cluster",
                RoomError::Busy(_) => "busy",
                RoomError::NoPeer => "no_peer",
                RoomError::Earlier(_) => "earlier_failed",
                RoomError::Moderated(_) => "moderated",
            },
            SessionError::Media(_, e) => {
                use crate::sfu::SfuError;
                match e {
                    SfuError::Off => "sfu_off",
                    SfuError::BadSdp(_) => "bad_sdp",
                    SfuError::NotFound(_) => "no_such_stream",
                    SfuError::OtherNode(..) => "other_node",
                    SfuError::InUse => "pipe_in_use",
                    SfuError::NoOffer => "no_offer",
                    SfuError::Limit(_) => "limit",
                }
            }
            SessionError::SlowConsumer => "slow_consumer",
            SessionError::RateLimited(_) => "rate_limited",
            SessionError::TooManyQueries(_) => "too_many_queries",
            SessionError::NotYourSession(_) => "not_your_session",
            SessionError::Refresh(_) => "refresh_refused",
            SessionError::Unsupported(_) => "unsupported",
        }
    }
}
