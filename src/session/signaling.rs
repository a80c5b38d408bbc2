//! `play`, `stop`, `sdp`, `candidate` on signaling pipes (see rooms/streams.rs for the pairing rules).

use serde_json::json;

use super::error::{RoomContext, SessionError};
use super::state::Session;
use crate::protocol::args::{Play, Stop};
use crate::protocol::status::codes;
use crate::protocol::Status;
use crate::rooms::{Played, Player};

impl Session {
    pub(super) async fn play(&mut self, pipe: u16, args: Play) -> Result<Status, SessionError> {
        if !matches!(args.mode.as_str(), "all" | "audio" | "video") {
            return Err(SessionError::Args(crate::protocol::ArgsError::Invalid {
                name: "play".into(),
                reason: "mode: one of all, audio, video".into(),
            }));
        }
        let member = self
            .member(pipe)
            .ok_or(SessionError::NotConnected("play".into()))?;
        let played = self
            .ctx
            .rooms
            .play(
                &args.stream,
                Player {
                    member,
                    mode: args.mode.clone(),
                },
            )
            .await
            .map_err(|e| SessionError::Room(RoomContext::Stream, e))?;
        Ok(match played {
            Played::Waiting => Status::ok(
                codes::STREAM_PLAY_PUBLISH_NOTIFY,
                format!("waiting for a peer on {}", args.stream),
            )
            .with_info(json!({ "stream": args.stream, "role": "offerer", "mode": args.mode })),
            Played::Started(info) => {
                Status::ok(codes::STREAM_PLAY_START, format!("{} started", args.stream))
                    .with_info(info)
            }
        })
    }

    pub(super) fn stop(&mut self, pipe: u16, args: Stop) -> Result<Status, SessionError> {
        match self
            .ctx
            .rooms
            .stop_stream(self.id, pipe, Some(&args.stream), "stopped by the peer")
        {
            Some(stream) => Ok(
                Status::ok(codes::STREAM_PLAY_STOP, format!("{stream} stopped"))
                    .with_info(json!({ "stream": stream })),
            ),
            None => Err(SessionError::Room(
                RoomContext::Stream,
                crate::rooms::RoomError::Invalid {
                    what: "stop",
                    reason: format!("this pipe does not play {}", args.stream),
                },
            )),
        }
    }

    /// `sdp` and `candidate`: relayed unchanged to the peer.
    pub(super) fn relay(&mut self, pipe: u16, args: &[u8]) -> Result<Status, SessionError> {
        self.ctx
            .rooms
            .relay(self.id, pipe, args)
            .map_err(|e| SessionError::Room(RoomContext::Other, e))?;
        Ok(Status::ok(codes::CALL_SUCCESS, "relayed"))
    }
}
