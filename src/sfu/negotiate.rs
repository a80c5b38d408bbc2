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
        let answer = guarded(|| SdpAnswer::from_sdp_string(sdp).map_err(|_| sdp_problem(sdp)))?;
        let pending = pending.take().ok_or(SfuError::NoOffer)?;
        let rtc = &mut peer.rtc;
        if let Err(e) = guarded(|| {
            rtc.sdp_api()
                .accept_answer(pending, answer)
                .map_err(|e| format!("the answer cannot be applied: {}", plain(&e.to_string())))
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

/// Parses and accepts a remote offer on `rtc`: the answer. The errors are ours: str0m's parser reports
/// positions as heap addresses, which say nothing to the sender and something to an attacker.
fn accept_offer(rtc: &mut str0m::Rtc, sdp: &str) -> Result<SdpAnswer, SfuError> {
    let offer = guarded(|| SdpOffer::from_sdp_string(sdp).map_err(|_| sdp_problem(sdp)))?;
    guarded(|| {
        rtc.sdp_api()
            .accept_offer(offer)
            .map_err(|e| format!("the offer cannot be answered: {}", plain(&e.to_string())))
    })
}

/// What is wrong with an SDP that does not parse, in the sender's terms: the first line that is not
/// `<letter>=<value>`, a missing `v=0` first line or media section, else a plain refusal.
pub(super) fn sdp_problem(sdp: &str) -> String {
    let mut lines = sdp.lines().map(str::trim_end).enumerate();
    if !sdp.trim_start().starts_with("v=0") {
        return "not an SDP: the first line must be `v=0`".into();
    }
    if let Some((n, line)) = lines.find(|(_, l)| {
        let b = l.as_bytes();
        let sdp_line = b.len() >= 2 && b[0].is_ascii_lowercase() && b[1] == b'=';
        !(l.is_empty() || sdp_line)
    }) {
        let shown: String = line.chars().take(40).collect();
        return format!(
            "line {}: expected `<letter>=<value>`, found {shown:?}",
            n + 1
        );
    }
    if !sdp.lines().any(|l| l.starts_with("m=")) {
        return "the offer has no media section (`m=` line)".into();
    }
    "the offer is not SDP this gateway understands (a line's value is malformed)".into()
}

/// A library's message without what only helps an attacker: hexadecimal addresses and Rust debug forms.
pub(super) fn plain(text: &str) -> String {
    let cut = ["0x", "PointerOffset", " { "]
        .iter()
        .filter_map(|m| text.find(m))
        .min()
        .unwrap_or(text.len());
    let kept = text[..cut].trim_end_matches([' ', ':', '(', ',']);
    if kept.is_empty() {
        "not understood".into()
    } else {
        kept.chars().take(200).collect()
    }
}

#[cfg(test)]
mod sdp_error_tests {
    use super::*;

    #[test]
    fn bad_sdp_is_described_without_addresses() {
        assert!(sdp_problem("hello").contains("v=0"));
        let bad = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nthis is not sdp\r\n";
        assert_eq!(
            sdp_problem(bad),
            "line 3: expected `<letter>=<value>`, found \"this is not sdp\""
        );
        assert!(sdp_problem("v=0\r\ns=-\r\n").contains("no media section"));
        assert_eq!(
            plain("Parse error at PointerOffset(0x7f9f7803e530)"),
            "Parse error at"
        );
        assert_eq!(plain("0x1234"), "not understood");
        assert_eq!(plain("mid mismatch"), "mid mismatch");
    }
}
