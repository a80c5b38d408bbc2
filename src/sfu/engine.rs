//! The SFU's one task: the UDP socket, every peer connection, their timers, and the forwarding between them.
//!
//! Everything runs on this task, so no peer is ever locked: a datagram goes to the peer that owns its source
//! address (learnt from the first STUN check str0m accepts), the peer is polled until it only has a timeout
//! left, and what polling produced (a publisher's frame, a keyframe request, a closed peer) is applied in turn
//! before the next input. Commands from sessions and the HTTP API arrive on a channel with one-shot replies.

use std::cmp::Reverse;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::{Direction, KeyframeRequestKind, MediaKind};
use str0m::net::{DatagramRecv, Protocol, Receive};
use str0m::{Candidate, Input, Rtc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::names::StreamName;
use super::peer::{OutTrack, Peer, Role, Timers, Track, Work};
use super::{Command, Mode, Notify, PeerKey, Published, SfuError, SfuEvent, SfuSettings};
use crate::metrics::Metrics;

/// Candidates kept for a pipe whose offer has not arrived yet.
const EARLY_CANDIDATES: usize = 32;

struct Engine {
    socket: tokio::net::UdpSocket,
    settings: SfuSettings,
    crypto: Arc<str0m::config::CryptoProvider>,
    peers: HashMap<PeerKey, Peer>,
    /// Source address -> peer, learnt from accepted STUN checks.
    addrs: HashMap<SocketAddr, PeerKey>,
    /// Stream name -> its publisher.
    streams: HashMap<String, PeerKey>,
    early: HashMap<PeerKey, Vec<Candidate>>,
    timers: Timers,
    work: VecDeque<Work>,
    metrics: Arc<Metrics>,
}

pub(super) async fn run(
    socket: tokio::net::UdpSocket,
    settings: SfuSettings,
    mut commands: mpsc::UnboundedReceiver<Command>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut e = Engine {
        socket,
        settings,
        crypto: Arc::new(str0m::crypto::from_feature_flags()),
        peers: HashMap::new(),
        addrs: HashMap::new(),
        streams: HashMap::new(),
        early: HashMap::new(),
        timers: Timers::new(),
        work: VecDeque::new(),
        metrics,
    };
    let mut buf = vec![0u8; 2048];
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    loop {
        let next = e
            .timers
            .peek()
            .map(|Reverse((t, _))| *t)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
        tokio::select! {
            _ = shutdown.cancelled() => break,
            cmd = commands.recv() => match cmd {
                Some(cmd) => e.command(cmd),
                None => break,
            },
            got = e.socket.recv_from(&mut buf) => {
                if let Ok((n, source)) = got {
                    e.datagram(&buf[..n], source);
                }
            }
            _ = tokio::time::sleep_until(next.into()) => e.timeouts(),
            _ = sweep.tick() => e.sweep(),
        }
        e.apply_work();
    }
    let keys: Vec<PeerKey> = e.peers.keys().copied().collect();
    for key in keys {
        e.close(key, None);
    }
}

impl Engine {
    fn new_rtc(&self) -> Rtc {
        let mut rtc = Rtc::builder()
            .set_ice_lite(true)
            .set_crypto_provider(self.crypto.clone())
            .set_stats_interval(Some(Duration::from_secs(2)))
            .build(Instant::now());
        if let Ok(c) = Candidate::host(self.settings.announce, "udp") {
            rtc.add_local_candidate(c);
        }
        rtc
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Publish {
                key,
                offer,
                app,
                notify,
                reply,
            } => {
                let r = self.publish(key, &offer, &app, notify);
                if r.is_err() {
                    self.metrics
                        .rtc_failures_total
                        .with_label_values(&["sdp"])
                        .inc();
                }
                let _ = reply.send(r);
            }
            Command::Play {
                key,
                stream,
                mode,
                notify,
                reply,
            } => {
                let _ = reply.send(self.play(key, &stream, mode, notify));
            }
            Command::PlayOffered {
                key,
                stream,
                offer,
                notify,
                reply,
            } => {
                let _ = reply.send(self.play_offered(key, &stream, &offer, notify));
            }
            Command::Answer { key, sdp, reply } => {
                let _ = reply.send(self.answer(key, &sdp));
            }
            Command::Candidate { key, candidate } => self.candidate(key, &candidate),
            Command::Close { key, reply } => {
                let _ = reply.send(self.close(key, None));
            }
            Command::Published { stream, reply } => {
                let _ = reply.send(self.streams.contains_key(&stream));
            }
        }
    }

    /// Adds a new peer, applies candidates that came before it, and polls it once.
    fn insert(&mut self, key: PeerKey, mut peer: Peer) {
        for c in self.early.remove(&key).unwrap_or_default() {
            peer.rtc.add_remote_candidate(c);
        }
        peer.drive(
            key,
            &self.socket,
            &mut self.work,
            &mut self.timers,
            &self.metrics,
        );
        self.peers.insert(key, peer);
    }

    fn publish(
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
        let offer =
            SdpOffer::from_sdp_string(offer).map_err(|e| SfuError::BadSdp(e.to_string()))?;
        let mut rtc = self.new_rtc();
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| SfuError::BadSdp(e.to_string()))?;
        let mut peer = Peer::new(
            rtc,
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
                id: media.track_id().to_string(),
            });
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
        self.metrics.rtc_publications.inc();
        self.metrics
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
    fn playable(
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

    fn add_player(&mut self, key: PeerKey, publisher: PeerKey, peer: Peer) {
        if let Some(Peer {
            role: Role::Publisher { players, .. },
            ..
        }) = self.peers.get_mut(&publisher)
        {
            players.push(key);
        }
        self.metrics.rtc_players.inc();
        self.metrics
            .rtc_peers_total
            .with_label_values(&["player"])
            .inc();
        self.insert(key, peer);
    }

    fn play(
        &mut self,
        key: PeerKey,
        stream: &str,
        mode: Mode,
        notify: Notify,
    ) -> Result<String, SfuError> {
        let (publisher, tracks) = self.playable(key, stream, mode)?;
        let msid = StreamName::parse(stream).map(|n| n.id).unwrap_or_default();
        let mut rtc = self.new_rtc();
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
            rtc,
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

    fn play_offered(
        &mut self,
        key: PeerKey,
        stream: &str,
        offer: &str,
        notify: Notify,
    ) -> Result<String, SfuError> {
        let (publisher, tracks) = self.playable(key, stream, Mode::All)?;
        let sdp = offer;
        let offer =
            SdpOffer::from_sdp_string(offer).map_err(|e| SfuError::BadSdp(e.to_string()))?;
        let mut rtc = self.new_rtc();
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| SfuError::BadSdp(e.to_string()))?;
        let mut peer = Peer::new(
            rtc,
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

    fn answer(&mut self, key: PeerKey, sdp: &str) -> Result<(), SfuError> {
        let peer = self.peers.get_mut(&key).ok_or(SfuError::NoOffer)?;
        let Role::Player { pending, .. } = &mut peer.role else {
            return Err(SfuError::NoOffer);
        };
        let pending = pending.take().ok_or(SfuError::NoOffer)?;
        let answer =
            SdpAnswer::from_sdp_string(sdp).map_err(|e| SfuError::BadSdp(e.to_string()))?;
        if let Err(e) = peer.rtc.sdp_api().accept_answer(pending, answer) {
            self.metrics
                .rtc_failures_total
                .with_label_values(&["sdp"])
                .inc();
            return Err(SfuError::BadSdp(e.to_string()));
        }
        peer.drive(
            key,
            &self.socket,
            &mut self.work,
            &mut self.timers,
            &self.metrics,
        );
        Ok(())
    }

    fn candidate(&mut self, key: PeerKey, candidate: &str) {
        let text = candidate.trim();
        let text = text.strip_prefix("a=").unwrap_or(text);
        if text.is_empty() {
            return; // end of candidates
        }
        // mDNS names (`<uuid>.local`) and other forms str0m cannot use are dropped: the peer's checks reach
        // the gateway anyway, as peer-reflexive candidates.
        let Ok(c) = Candidate::from_sdp_string(text) else {
            return;
        };
        match self.peers.get_mut(&key) {
            Some(peer) => {
                peer.rtc.add_remote_candidate(c);
                peer.drive(
                    key,
                    &self.socket,
                    &mut self.work,
                    &mut self.timers,
                    &self.metrics,
                );
            }
            None => {
                let early = self.early.entry(key).or_default();
                if early.len() < EARLY_CANDIDATES {
                    early.push(c);
                }
            }
        }
    }

    fn datagram(&mut self, data: &[u8], source: SocketAddr) {
        self.metrics.rtc_datagram_in(data.len());
        let Ok(contents) = DatagramRecv::try_from(data) else {
            return;
        };
        let input = Input::Receive(
            Instant::now(),
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.settings.announce,
                contents,
            },
        );
        let key = match self.addrs.get(&source) {
            Some(k) if self.peers.get(k).is_some_and(|p| p.rtc.accepts(&input)) => Some(*k),
            _ => self
                .peers
                .iter()
                .find(|(_, p)| p.rtc.accepts(&input))
                .map(|(k, _)| *k),
        };
        let Some(key) = key else { return };
        self.addrs.insert(source, key);
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.rtc.handle_input(input).is_err() {
            self.metrics
                .rtc_failures_total
                .with_label_values(&["dtls"])
                .inc();
            self.work.push_back(Work::Close(
                key,
                "the peer connection failed (DTLS or SRTP)".into(),
            ));
            return;
        }
        peer.drive(
            key,
            &self.socket,
            &mut self.work,
            &mut self.timers,
            &self.metrics,
        );
    }

    fn timeouts(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((t, key))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            if peer.deadline > now {
                continue; // a stale entry: the peer has a later deadline queued
            }
            if peer.rtc.handle_input(Input::Timeout(now)).is_err() {
                self.work
                    .push_back(Work::Close(key, "the peer connection failed".into()));
                continue;
            }
            peer.drive(
                key,
                &self.socket,
                &mut self.work,
                &mut self.timers,
                &self.metrics,
            );
        }
    }

    /// Drops peers whose ICE and DTLS never completed.
    fn sweep(&mut self) {
        let limit = self.settings.connect_timeout;
        let late: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| !p.connected && p.created.elapsed() > limit)
            .map(|(k, _)| *k)
            .collect();
        for key in late {
            self.metrics
                .rtc_failures_total
                .with_label_values(&["connect"])
                .inc();
            self.close(
                key,
                Some(format!(
                    "ICE and DTLS did not complete within {} s",
                    limit.as_secs()
                )),
            );
        }
    }

    fn apply_work(&mut self) {
        while let Some(w) = self.work.pop_front() {
            match w {
                Work::Media(from, data) => self.forward(from, &data),
                Work::Keyframe {
                    publisher,
                    mid,
                    kind,
                    why,
                } => self.request_keyframe(publisher, mid, kind, why),
                Work::PlayerConnected(player) => {
                    let Some(Peer {
                        role:
                            Role::Player {
                                publisher, tracks, ..
                            },
                        ..
                    }) = self.peers.get(&player)
                    else {
                        continue;
                    };
                    let publisher = *publisher;
                    let video: Vec<_> = tracks
                        .iter()
                        .filter(|t| t.kind == MediaKind::Video)
                        .map(|t| t.from)
                        .collect();
                    for mid in video {
                        self.request_keyframe(
                            publisher,
                            mid,
                            KeyframeRequestKind::Pli,
                            "new_player",
                        );
                    }
                }
                Work::Close(key, reason) => {
                    self.close(key, Some(reason));
                }
            }
        }
    }

    /// Writes a publisher's frame to each of its players.
    fn forward(&mut self, from: PeerKey, data: &str0m::media::MediaData) {
        let players = match self.peers.get(&from) {
            Some(Peer {
                role: Role::Publisher { players, .. },
                ..
            }) => players.clone(),
            _ => return,
        };
        for key in players {
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            if !peer.connected {
                continue;
            }
            let Role::Player { tracks, .. } = &peer.role else {
                continue;
            };
            let Some(mid) = tracks.iter().find(|t| t.from == data.mid).map(|t| t.mid) else {
                continue;
            };
            let Some(writer) = peer.rtc.writer(mid) else {
                continue;
            };
            let Some(pt) = writer.match_params(data.params) else {
                continue;
            };
            if writer
                .write(pt, data.network_time, data.time, data.data.clone())
                .is_ok()
            {
                self.metrics.rtc_frames_forwarded_total.inc();
            }
            peer.drive(
                key,
                &self.socket,
                &mut self.work,
                &mut self.timers,
                &self.metrics,
            );
        }
    }

    fn request_keyframe(
        &mut self,
        publisher: PeerKey,
        mid: str0m::media::Mid,
        kind: KeyframeRequestKind,
        why: &'static str,
    ) {
        let Some(peer) = self.peers.get_mut(&publisher) else {
            return;
        };
        if why != "new_player" && !peer.keyframe_due(mid, Instant::now()) {
            return;
        }
        let Some(mut writer) = peer.rtc.writer(mid) else {
            return;
        };
        if writer.request_keyframe(None, kind).is_ok() {
            self.metrics
                .rtc_keyframe_requests_total
                .with_label_values(&[why])
                .inc();
        }
        peer.drive(
            publisher,
            &self.socket,
            &mut self.work,
            &mut self.timers,
            &self.metrics,
        );
    }

    /// Ends `key`'s peer connection; a publisher's players end with it and are told. `reason`: it failed
    /// (its owner is told), `None`: its owner ended it.
    fn close(&mut self, key: PeerKey, reason: Option<String>) -> bool {
        self.early.remove(&key);
        let Some(mut peer) = self.peers.remove(&key) else {
            return false;
        };
        peer.rtc.disconnect();
        self.addrs.retain(|_, k| *k != key);
        match &peer.role {
            Role::Publisher {
                stream, players, ..
            } => {
                self.streams.remove(stream);
                self.metrics.rtc_publications.dec();
                for p in players.clone() {
                    let Some(mut player) = self.peers.remove(&p) else {
                        continue;
                    };
                    player.rtc.disconnect();
                    self.addrs.retain(|_, k| *k != p);
                    self.metrics.rtc_players.dec();
                    if let Role::Player { tracks, .. } = &player.role {
                        (player.notify)(SfuEvent::Unpublished {
                            stream: stream.clone(),
                            tracks: tracks.iter().map(|t| t.id.clone()).collect(),
                        });
                    }
                }
            }
            Role::Player { publisher, .. } => {
                self.metrics.rtc_players.dec();
                if let Some(Peer {
                    role: Role::Publisher { players, .. },
                    ..
                }) = self.peers.get_mut(publisher)
                {
                    players.retain(|p| *p != key);
                }
            }
        }
        if let Some(reason) = reason {
            tracing::debug!(?key, stream = peer.stream(), %reason, "peer connection ended");
            (peer.notify)(SfuEvent::Failed { reason });
        }
        true
    }
}

/// The mids of an offer's m-lines, in order (`a=mid:` lines).
fn offered_mids(sdp: &str) -> Vec<str0m::media::Mid> {
    sdp.lines()
        .filter_map(|l| l.trim().strip_prefix("a=mid:"))
        .map(|m| str0m::media::Mid::from(m.trim()))
        .collect()
}
