//! The SFU side of signaling pipes (docs/rtc.md): an `sdp` offer on a pipe nobody is paired with publishes,
//! `play` of an SFU stream name plays, and what the SFU reports later becomes statuses on the pipe.
//!
//! Every frame here is what the odd.js RTC SDK waits for (../shared/RTC.md): the answer, then
//! `setProperty {stream}` and `NetStream.Publish.Start {stream}`; for a player the gateway's offer; when a
//! publication ends, `NetStream.Play.UnpublishNotify` and one `NetStream.Play.Stop {track}` per track (never
//! without `info`: the SDK reads `info.track`).

use std::sync::Arc;

use serde_json::json;

use super::error::{RoomContext, SessionError};
use super::state::{Answer, Session};
use crate::clock::now_secs;
use crate::protocol::args::Sdp;
use crate::protocol::outgoing::{command_frame, status_frame};
use crate::protocol::status::codes;
use crate::protocol::{Frame, Status};
use crate::rooms::Act;
use crate::sfu::{Mode, Notify, PeerKey, SfuEvent};
use crate::transport::Outbox;

/// A command pushed on `pipe` (`sdp`, `setProperty`): its JSON built here, so it always fits the offset field
/// or is refused whole.
fn command(pipe: u16, args: serde_json::Value) -> Result<Frame, SessionError> {
    let bytes = serde_json::to_vec(&args).unwrap_or_default();
    command_frame(pipe, 0, &bytes, &[], now_secs()).map_err(SessionError::Frame)
}

/// How the SFU's later news reaches this pipe.
fn notifier(out: Outbox, pipe: u16) -> Notify {
    Arc::new(move |event: SfuEvent| {
        let now = now_secs();
        match event {
            SfuEvent::Unpublished { stream, tracks } => {
                let notice = Status::ok(
                    codes::STREAM_PLAY_UNPUBLISH_NOTIFY,
                    format!("{stream} was unpublished"),
                )
                .with_info(json!({ "stream": stream }));
                let _ = out.push(status_frame(pipe, 0, &notice, now));
                for track in tracks {
                    let stop = Status::ok(codes::STREAM_PLAY_STOP, format!("{stream} stopped"))
                        .with_info(json!({ "stream": stream, "track": track }));
                    let _ = out.push(status_frame(pipe, 0, &stop, now));
                }
            }
            SfuEvent::Failed { reason } => {
                let failed = Status::error(codes::STREAM_FAILED, reason.clone())
                    .with_info(json!({ "reason": reason }));
                let _ = out.push(status_frame(pipe, 0, &failed, now));
            }
        }
    })
}

impl Session {
    fn peer_key(&self, pipe: u16) -> PeerKey {
        PeerKey::Pipe {
            conn: self.id,
            pipe,
        }
    }

    /// An `sdp` offer on a pipe that is not paired: the SFU answers it and names the stream.
    pub(super) async fn publish_offer(
        &mut self,
        pipe: u16,
        args: Sdp,
    ) -> Result<Answer, SessionError> {
        let member = self
            .member(pipe)
            .ok_or(SessionError::NotConnected("sdp".into()))?;
        let app = self
            .pipes
            .get(pipe)
            .and_then(|p| p.properties.get("app"))
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| self.ctx.sfu.default_app().to_string());
        if !crate::sfu::StreamName::valid_app(&app) {
            return Err(SessionError::Args(crate::protocol::ArgsError::Invalid {
                name: "sdp".into(),
                reason: "the pipe's `app` property: 1 to 128 characters, no `@`".into(),
            }));
        }
        self.ctx
            .rooms
            .authorize_stream(&app, &member.user.id, &member.claims, Act::Publish)
            .await
            .map_err(|e| SessionError::Room(RoomContext::Publish, e))?;
        let published = self
            .ctx
            .sfu
            .publish(
                self.peer_key(pipe),
                args.sdp,
                &app,
                notifier(self.out.clone(), pipe),
            )
            .await
            .map_err(|e| SessionError::Media(RoomContext::Publish, e))?;
        let stream = published.stream;
        let start = Status::ok(codes::STREAM_PUBLISH_START, format!("publishing {stream}"))
            .with_info(json!({ "stream": stream, "id": pipe, "tracks": published.tracks }));
        let then = vec![
            command(
                pipe,
                json!({ "name": "sdp", "type": "answer", "sdp": published.answer }),
            )?,
            command(
                pipe,
                json!({ "name": "setProperty", "info": { "stream": stream } }),
            )?,
            status_frame(pipe, 0, &start, now_secs()),
        ];
        self.pipes
            .get_mut(pipe)
            .map(|p| p.properties.insert("stream".into(), json!(stream)));
        Ok(Answer::from(Status::ok(codes::CALL_SUCCESS, "answered")).then(then))
    }

    /// `play` of a name the SFU serves: rights (`r` where the app names a room), then the gateway's offer.
    pub(super) async fn play_sfu(
        &mut self,
        pipe: u16,
        stream: &str,
        mode: Mode,
    ) -> Result<Answer, SessionError> {
        let member = self
            .member(pipe)
            .ok_or(SessionError::NotConnected("play".into()))?;
        if let Some(name) = crate::sfu::StreamName::parse(stream) {
            self.ctx
                .rooms
                .authorize_stream(&name.app, &member.user.id, &member.claims, Act::Play)
                .await
                .map_err(|e| SessionError::Room(RoomContext::Stream, e))?;
        }
        let offer = self
            .ctx
            .sfu
            .play(
                self.peer_key(pipe),
                stream,
                mode,
                notifier(self.out.clone(), pipe),
            )
            .await
            .map_err(|e| SessionError::Media(RoomContext::Stream, e))?;
        let start = Status::ok(codes::STREAM_PLAY_START, format!("{stream} offered"))
            .with_info(json!({ "stream": stream }));
        let offer = command(
            pipe,
            json!({ "name": "sdp", "type": "offer", "sdp": offer }),
        )?;
        Ok(Answer::from(start).then([offer]))
    }

    /// A player's `sdp` answer to the gateway's offer.
    pub(super) async fn answer_sfu(
        &mut self,
        pipe: u16,
        args: Sdp,
    ) -> Result<Status, SessionError> {
        self.ctx
            .sfu
            .answer(self.peer_key(pipe), args.sdp)
            .await
            .map_err(|e| SessionError::Media(RoomContext::Stream, e))?;
        Ok(Status::ok(codes::CALL_SUCCESS, "answer applied"))
    }

    /// A trickled candidate for the SFU (kept until the pipe's offer comes, if it comes first).
    pub(super) async fn candidate_sfu(
        &mut self,
        pipe: u16,
        candidate: String,
    ) -> Result<Status, SessionError> {
        self.ctx
            .sfu
            .candidate(self.peer_key(pipe), candidate)
            .await
            .map_err(|e| SessionError::Media(RoomContext::Other, e))?;
        Ok(Status::ok(codes::CALL_SUCCESS, "candidate added"))
    }

    /// Ends the pipe's peer connection, if it has one. Whether it had.
    pub(super) async fn close_sfu(&mut self, pipe: u16) -> bool {
        self.ctx.sfu.close(self.peer_key(pipe)).await
    }
}
