//! WebRTC signaling: pipes that `play` the same stream name are paired, and their `sdp` / `candidate`
//! commands are relayed, unchanged, to each other.
//!
//! The first player waits (`NetStream.Play.PublishNotify`); the second completes the pair and both get
//! `NetStream.Play.Start` naming the peer and their role (the first is the `offerer`, the second the
//! `answerer`). A third is refused (`NetStream.Play.Failed`, busy). `stop`, releasing the pipe or losing the
//! connection ends the pairing and the peer gets `NetStream.Play.Stop`.

use std::collections::HashMap;

use serde_json::json;

use super::access::{authorize, Act};
use super::member::Member;
use super::{RoomError, Rooms};
use crate::clock::now_secs;
use crate::protocol::outgoing::{command_frame, status_frame};
use crate::protocol::status::codes;
use crate::protocol::Status;

/// One side of a stream.
#[derive(Clone, Debug)]
pub struct Player {
    pub member: Member,
    pub mode: String,
}

/// The pairings, behind a lock of their own (`Rooms::streams`): playing, relaying and stopping never wait on
/// the rooms' state, nor fan-out on them.
#[derive(Default)]
pub(super) struct Streams {
    /// stream name -> its players (one waiting, or two paired).
    pub by_name: HashMap<String, Vec<Player>>,
}

/// What `play` achieved.
#[derive(Debug)]
pub enum Played {
    /// First on the stream: waiting for a peer.
    Waiting,
    /// Paired: the info for our own `NetStream.Play.Start` answer.
    Started(serde_json::Value),
}

/// Stream names look like `name@host/app`; the whole name is the key.
fn validate_stream(stream: &str) -> Result<(), RoomError> {
    let ok = !stream.is_empty()
        && stream.len() <= 256
        && !stream.chars().any(char::is_control)
        && stream.contains('@')
        && stream.contains('/');
    if ok {
        Ok(())
    } else {
        Err(RoomError::Invalid {
            what: "stream",
            reason: "expected name@host/app, at most 256 characters".into(),
        })
    }
}

fn push(m: &Member, status: &Status) {
    let _ = m.outbox.push(status_frame(m.pipe, 0, status, now_secs()));
}

impl Rooms {
    fn streams(&self) -> std::sync::MutexGuard<'_, Streams> {
        self.inner.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Binds `player`'s pipe to `stream`. If the stream's app part names an existing room, the player needs
    /// `r` in it.
    pub async fn play(&self, stream: &str, player: Player) -> Result<Played, RoomError> {
        validate_stream(stream)?;
        if let Some((_, app)) = stream.rsplit_once('/') {
            let m = &player.member;
            self.authorize_stream(app, &m.user.id, &m.claims, Act::Play)
                .await?;
        }
        let mut streams = self.streams();
        let players = streams.by_name.entry(stream.to_string()).or_default();
        if players
            .iter()
            .any(|p| p.member.conn == player.member.conn && p.member.pipe == player.member.pipe)
        {
            return Err(RoomError::Invalid {
                what: "play",
                reason: format!("this pipe already plays {stream}"),
            });
        }
        match players.len() {
            0 => {
                players.push(player);
                Ok(Played::Waiting)
            }
            1 => {
                let first = players[0].clone();
                players.push(player.clone());
                let to_first = Status::ok(codes::STREAM_PLAY_START, format!("{stream} started")).with_info(json!({
                    "stream": stream, "role": "offerer", "peer": player.member.user, "mode": player.mode,
                }));
                push(&first.member, &to_first);
                Ok(Played::Started(json!({
                    "stream": stream, "role": "answerer", "peer": first.member.user, "mode": first.mode,
                })))
            }
            _ => Err(RoomError::Busy(stream.to_string())),
        }
    }

    /// Whether `member` may play (`r`) or publish (`w`) a stream of `app`. Rights apply when `app` names an
    /// existing room; an app that names none is open to every connection (as a token's room claims allow).
    pub async fn authorize_stream(
        &self,
        app: &str,
        user: &str,
        claims: &super::RoomClaims,
        act: Act,
    ) -> Result<(), RoomError> {
        if let Some(row) = self.store().room(app).await? {
            let mask = self.mask_of(&row, user).await?;
            authorize(claims, act, app, Some(mask))?;
        }
        Ok(())
    }

    /// Whether `conn`/`pipe` plays a paired stream (waiting for its peer, or paired): its `sdp`/`candidate`
    /// are for the peer, never the SFU's.
    pub fn in_pairing(&self, conn: u64, pipe: u16) -> bool {
        self.streams().by_name.values().any(|ps| {
            ps.iter()
                .any(|p| p.member.conn == conn && p.member.pipe == pipe)
        })
    }

    /// Unbinds a pipe from `stream` (or from whatever it plays, with `None`); tells the peer. Returns the
    /// stream it left, if any.
    pub fn stop_stream(
        &self,
        conn: u64,
        pipe: u16,
        stream: Option<&str>,
        reason: &str,
    ) -> Option<String> {
        let mut streams = self.streams();
        let name = match stream {
            Some(s) => s.to_string(),
            None => streams
                .by_name
                .iter()
                .find(|(_, ps)| {
                    ps.iter()
                        .any(|p| p.member.conn == conn && p.member.pipe == pipe)
                })
                .map(|(n, _)| n.clone())?,
        };
        let players = streams.by_name.get_mut(&name)?;
        let before = players.len();
        players.retain(|p| !(p.member.conn == conn && p.member.pipe == pipe));
        if players.len() == before {
            return None;
        }
        let stop = Status::ok(codes::STREAM_PLAY_STOP, format!("{name} stopped: {reason}"))
            .with_info(json!({ "stream": name, "reason": reason }));
        for p in players.iter() {
            push(&p.member, &stop);
        }
        // The remaining player waits for a new peer, as the first player does.
        if players.is_empty() {
            streams.by_name.remove(&name);
        }
        Some(name)
    }

    /// Relays a signaling command's JSON, byte for byte, to the peer of `conn`/`pipe`.
    pub fn relay(&self, conn: u64, pipe: u16, args: &[u8]) -> Result<(), RoomError> {
        let streams = self.streams();
        let peer = streams
            .by_name
            .values()
            .find(|ps| {
                ps.len() == 2
                    && ps
                        .iter()
                        .any(|p| p.member.conn == conn && p.member.pipe == pipe)
            })
            .and_then(|ps| {
                ps.iter()
                    .find(|p| !(p.member.conn == conn && p.member.pipe == pipe))
            })
            .ok_or(RoomError::NoPeer)?;
        let frame = command_frame(peer.member.pipe, 0, args, &[], now_secs()).map_err(|e| {
            RoomError::Invalid {
                what: "signaling message",
                reason: e.to_string(),
            }
        })?;
        let _ = peer.member.outbox.push(frame);
        Ok(())
    }
}
