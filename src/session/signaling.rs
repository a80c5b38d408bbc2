//! `play`, `stop`, `sdp`, `candidate` on signaling pipes: names the SFU serves go to it (media.rs), any other
//! name pairs two players whose `sdp`/`candidate` are relayed (rooms/streams.rs).

use serde_json::json;

use super::commands::{Cx, Handle};
use super::error::{RoomContext, SessionError};
use super::state::{Answer, Session};
use crate::protocol::args::{Candidate, Play, Sdp, Stop};
use crate::protocol::status::codes;
use crate::protocol::Status;
use crate::rooms::{Played, Player};
use crate::sfu::Mode;

impl Session {
    pub(super) async fn play(&mut self, pipe: u16, args: Play) -> Result<Answer, SessionError> {
        let mode = match args.mode.as_str() {
            "all" => Mode::All,
            "audio" => Mode::Audio,
            "video" => Mode::Video,
            _ => {
                return Err(SessionError::Args(crate::protocol::ArgsError::Invalid {
                    name: "play".into(),
                    reason: "mode: one of all, audio, video".into(),
                }))
            }
        };
        if self.ctx.sfu.is_sfu_name(&args.stream) {
            return self.play_sfu(pipe, &args.stream, mode).await;
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
        Ok(Answer::from(match played {
            Played::Waiting => Status::ok(
                codes::STREAM_PLAY_PUBLISH_NOTIFY,
                format!("waiting for a peer on {}", args.stream),
            )
            .with_info(json!({ "stream": args.stream, "role": "offerer", "mode": args.mode })),
            Played::Started(info) => {
                Status::ok(codes::STREAM_PLAY_START, format!("{} started", args.stream))
                    .with_info(info)
            }
        }))
    }

    pub(super) async fn stop(&mut self, pipe: u16, args: Stop) -> Result<Status, SessionError> {
        if self.close_sfu(pipe).await {
            return Ok(
                Status::ok(codes::STREAM_PLAY_STOP, format!("{} stopped", args.stream))
                    .with_info(json!({ "stream": args.stream })),
            );
        }
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

    /// `sdp`: relayed to a paired player; else an offer publishes to the SFU and an answer answers its offer.
    pub(super) async fn sdp(
        &mut self,
        pipe: u16,
        args: Sdp,
        raw: &[u8],
    ) -> Result<Answer, SessionError> {
        if !self.ctx.sfu.is_on() || self.ctx.rooms.in_pairing(self.id, pipe) {
            return self.relay(pipe, raw).map(Answer::from);
        }
        match args.kind.as_str() {
            "offer" => self.publish_offer(pipe, args).await,
            "answer" => self.answer_sfu(pipe, args).await.map(Answer::from),
            _ => Err(SessionError::Args(crate::protocol::ArgsError::Invalid {
                name: "sdp".into(),
                reason: "type: offer or answer".into(),
            })),
        }
    }

    /// `candidate`: relayed to a paired player, else the SFU's.
    pub(super) async fn candidate(
        &mut self,
        pipe: u16,
        args: Candidate,
        raw: &[u8],
    ) -> Result<Status, SessionError> {
        if !self.ctx.sfu.is_on() || self.ctx.rooms.in_pairing(self.id, pipe) {
            return self.relay(pipe, raw);
        }
        self.candidate_sfu(pipe, args.candidate).await
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

impl Handle for Play {
    async fn handle(self, s: &mut Session, cx: Cx<'_>) -> Result<Answer, SessionError> {
        s.play(cx.call.pipe, self).await
    }
}

impl Handle for Stop {
    async fn handle(self, s: &mut Session, cx: Cx<'_>) -> Result<Answer, SessionError> {
        s.stop(cx.call.pipe, self).await.map(Answer::from)
    }
}

impl Handle for Sdp {
    async fn handle(self, s: &mut Session, cx: Cx<'_>) -> Result<Answer, SessionError> {
        s.sdp(cx.call.pipe, self, cx.raw_args).await
    }
}

impl Handle for Candidate {
    async fn handle(self, s: &mut Session, cx: Cx<'_>) -> Result<Answer, SessionError> {
        s.candidate(cx.call.pipe, self, cx.raw_args)
            .await
            .map(Answer::from)
    }
}
