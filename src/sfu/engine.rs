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

use str0m::net::{DatagramRecv, Protocol, Receive};
use str0m::{Candidate, Input, Rtc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::peer::{Io, Peer, Role, Timers, Work};
use super::{Command, PeerKey, SfuError, SfuEvent, SfuSettings};
use crate::metrics::Metrics;

/// Remote candidates a peer takes (the rest are ignored; the gateway is ICE lite and needs none), and
/// those kept for a pipe whose offer has not arrived yet.
const EARLY_CANDIDATES: usize = 32;

pub(super) struct Engine {
    /// What polling any peer writes to.
    pub(super) io: Io,
    pub(super) settings: SfuSettings,
    pub(super) crypto: Arc<str0m::config::CryptoProvider>,
    pub(super) peers: HashMap<PeerKey, Peer>,
    /// Source address -> peer, learnt from accepted STUN checks.
    pub(super) addrs: HashMap<SocketAddr, PeerKey>,
    /// Our ICE ufrag of each peer connection -> it: where STUN checks go (`stun.rs`).
    pub(super) ufrags: HashMap<String, PeerKey>,
    /// Stream name -> its publisher.
    pub(super) streams: HashMap<String, PeerKey>,
    pub(super) early: HashMap<PeerKey, Vec<Candidate>>,
}

pub(super) async fn run(
    socket: tokio::net::UdpSocket,
    settings: SfuSettings,
    mut commands: mpsc::UnboundedReceiver<Command>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut e = Engine {
        io: Io {
            out: super::outgoing::Outgoing::new(socket),
            timers: Timers::new(),
            work: VecDeque::new(),
            metrics,
        },
        settings,
        crypto: Arc::new(str0m::crypto::from_feature_flags()),
        peers: HashMap::new(),
        addrs: HashMap::new(),
        ufrags: HashMap::new(),
        streams: HashMap::new(),
        early: HashMap::new(),
    };
    let mut buf = vec![0u8; 2048];
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    loop {
        let next =
            e.io.timers
                .peek()
                .map(|Reverse((t, _))| *t)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
        tokio::select! {
            _ = shutdown.cancelled() => break,
            cmd = commands.recv() => match cmd {
                Some(cmd) => e.command(cmd),
                None => break,
            },
            _ = e.io.out.socket.writable(), if e.io.out.is_waiting() => e.io.out.flush(&e.io.metrics),
            got = e.io.out.socket.recv_from(&mut buf) => {
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
    /// A new peer connection (ICE lite, our one candidate) and its ICE ufrag.
    pub(super) fn new_rtc(&self) -> (Rtc, String) {
        let creds = str0m::IceCreds::new();
        let ufrag = creds.ufrag.clone();
        let mut rtc = Rtc::builder()
            .set_ice_lite(true)
            .set_local_ice_credentials(creds)
            .set_crypto_provider(self.crypto.clone())
            .set_stats_interval(Some(Duration::from_secs(2)))
            .build(Instant::now());
        if let Ok(c) = Candidate::host(self.settings.announce, "udp") {
            rtc.add_local_candidate(c);
        }
        (rtc, ufrag)
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
                    self.io
                        .metrics
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
            Command::Candidate {
                key,
                candidate,
                reply,
            } => {
                let _ = reply.send(self.candidate(key, &candidate));
            }
            Command::Close { key, reply } => {
                let _ = reply.send(self.close(key, None));
            }
            Command::End { key, reason, reply } => {
                let _ = reply.send(self.close(key, Some(reason)));
            }
            Command::List { reply } => {
                let now = Instant::now();
                let mut peers: Vec<super::PeerInfo> = self
                    .peers
                    .iter()
                    .map(|(key, p)| super::PeerInfo {
                        key: *key,
                        publisher: matches!(p.role, Role::Publisher { .. }),
                        stream: p.stream().to_string(),
                        connected: p.connected,
                        age: now.saturating_duration_since(p.created),
                    })
                    .collect();
                peers.sort_by(|a, b| {
                    (!a.publisher, &a.stream, a.key).cmp(&(!b.publisher, &b.stream, b.key))
                });
                let _ = reply.send(peers);
            }
        }
    }

    /// Adds a new peer, applies candidates that came before it, and polls it once.
    pub(super) fn insert(&mut self, key: PeerKey, mut peer: Peer) {
        self.ufrags.insert(peer.ufrag.clone(), key);
        tracing::debug!(
            ?key,
            stream = peer.stream(),
            peers = self.peers.len() + 1,
            "peer connection added"
        );
        for c in self.early.remove(&key).unwrap_or_default() {
            peer.rtc.add_remote_candidate(c);
        }
        peer.drive(key, &mut self.io);
        self.peers.insert(key, peer);
    }

    fn candidate(&mut self, key: PeerKey, candidate: &str) -> Result<(), SfuError> {
        let text = candidate.trim();
        let text = text.strip_prefix("a=").unwrap_or(text);
        if text.is_empty() {
            return Ok(()); // end of candidates
        }
        let full = || {
            SfuError::Limit(format!(
                "at most {EARLY_CANDIDATES} candidates per peer connection (the gateway is ICE lite: it needs none)"
            ))
        };
        // mDNS names (`<uuid>.local`) and other forms str0m cannot use are dropped: the peer's checks reach
        // the gateway anyway, as peer-reflexive candidates.
        let parsed = std::panic::catch_unwind(|| Candidate::from_sdp_string(text));
        let Ok(Ok(c)) = parsed else {
            return Ok(());
        };
        match self.peers.get_mut(&key) {
            Some(peer) if peer.candidates < EARLY_CANDIDATES => {
                peer.candidates += 1;
                peer.rtc.add_remote_candidate(c);
                peer.drive(key, &mut self.io);
                Ok(())
            }
            Some(_) => Err(full()),
            None => {
                let early = self.early.entry(key).or_default();
                if early.len() >= EARLY_CANDIDATES {
                    return Err(full());
                }
                early.push(c);
                Ok(())
            }
        }
    }

    fn datagram(&mut self, data: &[u8], source: SocketAddr) {
        self.io.metrics.rtc_datagram_in(data.len());
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
        // A STUN check goes to the peer connection its USERNAME names; anything else to the one that owns its
        // source address (learnt from checks). Nothing else is looked at, so junk costs a lookup.
        let stun = data.first().is_some_and(|b| *b < 4);
        let key = if stun {
            super::stun::local_ufrag(data)
                .and_then(|u| self.ufrags.get(u))
                .copied()
        } else {
            self.addrs.get(&source).copied()
        };
        let Some(key) = key else {
            if stun {
                tracing::debug!(%source, "a STUN check for no peer connection (unknown or stale credentials)");
            }
            return;
        };
        if !self.peers.get(&key).is_some_and(|p| p.rtc.accepts(&input)) {
            return;
        }
        if stun {
            if let Some(old) = self.addrs.insert(source, key).filter(|old| *old != key) {
                // One address, one ICE agent: a new peer connection checking from an address an older one
                // used (a port reused, a NAT mapping recycled) means the older one's far end is gone. Left
                // alive, it would keep sending to that address, into the new connection.
                if self.peers.contains_key(&old) {
                    tracing::debug!(%source, ?old, new = ?key, "an address moves to another peer connection");
                    self.io.work.push_back(Work::Close(
                        old,
                        "its address now belongs to another peer connection".into(),
                    ));
                }
            }
        }
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        peer.last_heard = Instant::now();
        if let Err(why) = peer.input(input) {
            self.io
                .metrics
                .rtc_failures_total
                .with_label_values(&["dtls"])
                .inc();
            self.io.work.push_back(Work::Close(key, why));
            return;
        }
        peer.drive(key, &mut self.io);
    }

    fn timeouts(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((t, key))) = self.io.timers.peek().copied() {
            if t > now {
                break;
            }
            self.io.timers.pop();
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            if peer.deadline > now {
                continue; // a stale entry: the peer has a later deadline queued
            }
            if peer.input(Input::Timeout(now)).is_err() {
                self.io
                    .work
                    .push_back(Work::Close(key, "the peer connection failed".into()));
                continue;
            }
            peer.drive(key, &mut self.io);
        }
    }

    /// Drops peers whose ICE and DTLS never completed, and connected peers that went silent: a browser
    /// sends ICE consent checks every ~5 s (RFC 7675) and RTCP besides media, so `consent_timeout` without a
    /// datagram means the peer connection is gone (closed without `DELETE` or `release`, crashed, moved).
    fn sweep(&mut self) {
        let (consent, limit) = (self.settings.consent_timeout, self.settings.connect_timeout);
        // One pass, one verdict per peer: connected ones by their silence, the others by their age.
        let ended: Vec<(PeerKey, &'static str, String)> = self
            .peers
            .iter()
            .filter_map(|(key, p)| {
                if p.connected && p.last_heard.elapsed() > consent {
                    let why = format!(
                        "nothing from the peer for {} s: its consent expired (RFC 7675)",
                        consent.as_secs()
                    );
                    Some((*key, "consent", why))
                } else if !p.connected && p.created.elapsed() > limit {
                    let why = format!("ICE and DTLS did not complete within {} s", limit.as_secs());
                    Some((*key, "connect", why))
                } else {
                    None
                }
            })
            .collect();
        for (key, stage, why) in ended {
            self.io
                .metrics
                .rtc_failures_total
                .with_label_values(&[stage])
                .inc();
            self.close(key, Some(why));
        }
    }

    /// Ends `key`'s peer connection; a publisher's players end with it and are told. `reason`: it failed
    /// (its owner is told), `None`: its owner ended it.
    pub(super) fn close(&mut self, key: PeerKey, reason: Option<String>) -> bool {
        self.early.remove(&key);
        let Some(mut peer) = self.peers.remove(&key) else {
            return false;
        };
        peer.rtc.disconnect();
        self.addrs.retain(|_, k| *k != key);
        self.ufrags.remove(&peer.ufrag);
        match &peer.role {
            Role::Publisher {
                stream, players, ..
            } => {
                self.streams.remove(stream);
                self.io.metrics.rtc_publications.dec();
                for p in players.clone() {
                    let Some(mut player) = self.peers.remove(&p) else {
                        continue;
                    };
                    player.rtc.disconnect();
                    self.addrs.retain(|_, k| *k != p);
                    self.ufrags.remove(&player.ufrag);
                    self.io.metrics.rtc_players.dec();
                    if let Role::Player { tracks, .. } = &player.role {
                        (player.notify)(SfuEvent::Unpublished {
                            stream: stream.clone(),
                            tracks: tracks.iter().map(|t| t.id.clone()).collect(),
                        });
                    }
                }
            }
            Role::Player { publisher, .. } => {
                self.io.metrics.rtc_players.dec();
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
