//! Offer and answer: a publisher's offer accepted and its stream named; a player offered the publisher's
//! tracks (or, for WHEP, the player's own offer accepted); the limits on both.

use std::collections::HashMap;

use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::{Direction, MediaKind};

use super::engine::Engine;
use super::names::StreamName;
use super::peer::{OutTrack, Peer, Role, Track};
use super::{Mode, Notify, PeerKey, Published, SfuError};

/// Tracks one publication may have: a camera and a microphone are two, a screen share adds one or two.
const MAX_TRACKS: usize = 8;

impl Engine {
    pub(super) fn publish(
        &mut self,
        key: PeerKey,
        offer: &str,
        app: &str,
        notify: Notify,
    ) -> Result<Published, SfuError> {
        if self.peers.contains_key(&key) {
            return Err(SfuError::InUse);
        }
        let conn = match key {
            PeerKey::Pipe { conn, .. } => Some(conn),
            PeerKey::Http(_) => None,
        };
        let mine = self
            .peers
            .keys()
            .filter(|k| {
                conn.is_some() && matches!(k, PeerKey::Pipe { conn: c, .. } if Some(*c) == conn)
            })
            .filter(|k| matches!(self.peers[*k].role, Role::Publisher { .. }))
            .count();
        if mine >= self.settings.max_publications_per_connection {
            return Err(SfuError::Limit(format!(
                "at most {} publications per connection",
                self.settings.max_publications_per_connection
            )));
        }
        let mids = offered_mids(offer);
        // The gateway never sends media to a publisher: read its `sendrecv` m-lines as `sendonly`, so the
        // answer is `recvonly` and the browser opens no receiving tracks (the SDK would report each as a
        // local `NetStream.Play.Start` on the publisher).
        let offer = offer.replace("a=sendrecv", "a=sendonly");
        let (mut rtc, ufrag) = self.new_rtc();
        let answer = accept_offer(&mut rtc, &offer)?;
        let mut peer = Peer::new(
            (rtc, ufrag),
            Role::Publisher {
                stream: String::new(),
                tracks: Vec::new(),
                players: Vec::new(),
                last_keyframe: HashMap::new(),
            },
            notify,
        );
        // str0m reports the offer's media (MediaAdded) only once DTLS is up: the offer's mids say which they
        // are now.
        let mut tracks = Vec::new();
        let mut msid = None;
        for mid in mids {
            let Some(media) = peer.rtc.media(mid) else {
                continue;
            };
            if !media.direction().is_receiving() {
                continue;
            }
            msid.get_or_insert_with(|| media.stream_id().to_string());
            tracks.push(Track {
                mid,
                kind: media.kind(),
                id: super::names::msid_token(media.track_id()),
            });
        }
        if tracks.len() > MAX_TRACKS {
            return Err(SfuError::BadSdp(format!(
                "at most {MAX_TRACKS} audio and video tracks per publication"
            )));
        }
        if tracks.is_empty() {
            return Err(SfuError::BadSdp("the offer sends no audio or video".into()));
        }
        let id = StreamName::id_from_msid(msid.as_deref().unwrap_or_default());
        let mut name = StreamName {
            id: id.clone(),
            addr: self.settings.announce,
            app: app.to_string(),
        };
        let mut n = 1;
        while self.streams.contains_key(&name.to_string())
            || self
                .streams
                .keys()
                .any(|s| s.split('@').next() == Some(name.id.as_str()))
        {
            n += 1;
            name.id = format!("{id}-{n}");
        }
        let stream = name.to_string();
        let ids = tracks.iter().map(|t| t.id.clone()).collect();
        peer.role = Role::Publisher {
            stream: stream.clone(),
            tracks,
            players: Vec::new(),
            last_keyframe: HashMap::new(),
        };
        self.streams.insert(stream.clone(), key);
        self.io.metrics.rtc_publications.inc();
        self.io
            .metrics
            .rtc_peers_total
            .with_label_values(&["publisher"])
            .inc();
        self.insert(key, peer);
        Ok(Published {
            answer: answer.to_sdp_string(),
            stream,
            tracks: ids,
        })
    }

    /// The publisher of `stream` and its tracks a player in `mode` takes, after the limits.
    pub(super) fn playable(
        &self,
        key: PeerKey,
        stream: &str,
        mode: Mode,
    ) -> Result<(PeerKey, Vec<Track>), SfuError> {
        if self.peers.contains_key(&key) {
            return Err(SfuError::InUse);
        }
        if let Some(n) = StreamName::parse(stream) {
            if n.addr != self.settings.announce {
                return Err(SfuError::OtherNode(stream.to_string(), n.addr));
            }
        }
        let publisher = *self
            .streams
            .get(stream)
            .ok_or_else(|| SfuError::NotFound(stream.to_string()))?;
        let Some(Peer {
            role: Role::Publisher {
                tracks, players, ..
            },
            ..
        }) = self.peers.get(&publisher)
        else {
            return Err(SfuError::NotFound(stream.to_string()));
        };
        if players.len() >= self.settings.max_players_per_stream {
            return Err(SfuError::Limit(format!(
                "at most {} players per stream",
                self.settings.max_players_per_stream
            )));
        }
        let tracks = tracks
            .iter()
            .filter(|t| match mode {
                Mode::All => true,
                Mode::Audio => t.kind == MediaKind::Audio,
                Mode::Video => t.kind == MediaKind::Video,
            })
            .cloned()
            .collect();
        Ok((publisher, tracks))
    }

    pub(super) fn add_player(&mut self, key: PeerKey, publisher: PeerKey, peer: Peer) {
        if let Some(Peer {
            role: Role::Publisher { players, .. },
            ..
        }) = self.peers.get_mut(&publisher)
        {
            players.push(key);
        }
        self.io.metrics.rtc_players.inc();
        self.io
            .metrics
            .rtc_peers_total
            .with_label_values(&["player"])
            .inc();
        self.insert(key, peer);
    }

    pub(super) fn play(
        &mut self,
        key: PeerKey,
        stream: &str,
        mode: Mode,
        notify: Notify,
    ) -> Result<String, SfuError> {
        let (publisher, tracks) = self.playable(key, stream, mode)?;
        let msid = StreamName::parse(stream).map(|n| n.id).unwrap_or_default();
        let (mut rtc, ufrag) = self.new_rtc();
        let mut api = rtc.sdp_api();
        let mut out = Vec::new();
        for t in &tracks {
            let mid = api.add_media(
                t.kind,
                Direction::SendOnly,
                Some(msid.clone()),
                Some(t.id.clone()),
                None,
            );
            out.push(OutTrack {
                from: t.mid,
                mid,
                kind: t.kind,
                id: t.id.clone(),
            });
        }
        let (offer, pending) = api
            .apply()
            .ok_or_else(|| SfuError::BadSdp("nothing to offer".into()))?;
        let peer = Peer::new(
            (rtc, ufrag),
            Role::Player {
                stream: stream.to_string(),
                publisher,
                tracks: out,
                pending: Some(pending),
            },
            notify,
        );
        self.add_player(key, publisher, peer);
        Ok(offer.to_sdp_string())
    }

    pub(super) fn play_offered(
        &mut self,
        key: PeerKey,
        stream: &str,
        offer: &str,
        notify: Notify,
    ) -> Result<String, SfuError> {
        let (publisher, tracks) = self.playable(key, stream, Mode::All)?;
        let sdp = offer;
        let (mut rtc, ufrag) = self.new_rtc();
        let answer = accept_offer(&mut rtc, offer)?;
        let mut peer = Peer::new(
            (rtc, ufrag),
            Role::Player {
                stream: stream.to_string(),
                publisher,
                tracks: Vec::new(),
                pending: None,
            },
            notify,
        );
        // Each m-line the player offered to receive carries the publisher's first unused track of its kind.
        let mut free = tracks;
        let mut out = Vec::new();
        for mid in offered_mids(sdp) {
            let Some(media) = peer.rtc.media(mid) else {
                continue;
            };
            let kind = media.kind();
            if !media.direction().is_sending() {
                continue;
            }
            if let Some(i) = free.iter().position(|t| t.kind == kind) {
                let t = free.remove(i);
                out.push(OutTrack {
                    from: t.mid,
                    mid,
                    kind,
                    id: t.id,
                });
            }
        }
        if out.is_empty() {
            return Err(SfuError::BadSdp(
                "the offer receives none of the stream's media".into(),
            ));
        }
        if let Role::Player { tracks, .. } = &mut peer.role {
            *tracks = out;
        }
        self.add_player(key, publisher, peer);
        Ok(answer.to_sdp_string())
    }

    pub(super) fn answer(&mut self, key: PeerKey, sdp: &str) -> Result<(), SfuError> {
        let peer = self.peers.get_mut(&key).ok_or(SfuError::NoOffer)?;
        let Role::Player { pending, .. } = &mut peer.role else {
            return Err(SfuError::NoOffer);
        };
        if pending.is_none() {
            return Err(SfuError::NoOffer);
        }
        let answer = guarded(|| SdpAnswer::from_sdp_string(sdp).map_err(|e| e.to_string()))?;
        let pending = pending.take().ok_or(SfuError::NoOffer)?;
        let rtc = &mut peer.rtc;
        if let Err(e) = guarded(|| {
            rtc.sdp_api()
                .accept_answer(pending, answer)
                .map_err(|e| e.to_string())
        }) {
            self.io
                .metrics
                .rtc_failures_total
                .with_label_values(&["sdp"])
                .inc();
            // The offer is spent: this player cannot answer again; it ends (its pipe is told).
            self.io.work.push_back(super::peer::Work::Close(
                key,
                format!("the answer was refused: {e}"),
            ));
            return Err(e);
        }
        peer.drive(key, &mut self.io);
        Ok(())
    }
}

/// The mids of an offer's m-lines, in order (`a=mid:` lines).
fn offered_mids(sdp: &str) -> Vec<str0m::media::Mid> {
    sdp.lines()
        .filter_map(|l| l.trim().strip_prefix("a=mid:"))
        .map(|m| str0m::media::Mid::from(m.trim()))
        .collect()
}

/// Runs SDP handling on input from the network: an error, or a panic inside str0m, is a bad SDP.
fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, SfuError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err("not understood".into()))
        .map_err(SfuError::BadSdp)
}

/// Parses and accepts a remote offer on `rtc`: the answer.
fn accept_offer(rtc: &mut str0m::Rtc, sdp: &str) -> Result<SdpAnswer, SfuError> {
    let offer = guarded(|| SdpOffer::from_sdp_string(sdp).map_err(|e| e.to_string()))?;
    guarded(|| rtc.sdp_api().accept_offer(offer).map_err(|e| e.to_string()))
}
