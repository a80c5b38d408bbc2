//! One peer connection of the SFU: a publisher (media in) or a player (media out), its str0m `Rtc`, and what
//! polling it turns into work for the engine.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use str0m::change::SdpPendingOffer;
use str0m::media::{KeyframeRequestKind, MediaData, MediaKind, Mid};
use str0m::{Event, IceConnectionState, Input, Output, Rtc};

use super::{Notify, PeerKey};
use crate::metrics::Metrics;

/// One track of a publication.
#[derive(Debug, Clone)]
pub(super) struct Track {
    pub mid: Mid,
    pub kind: MediaKind,
    pub id: String,
}

/// A player's track: the publisher's mid it carries, and the player's own mid and track id.
#[derive(Debug, Clone)]
pub(super) struct OutTrack {
    pub from: Mid,
    pub mid: Mid,
    pub kind: MediaKind,
    pub id: String,
}

pub(super) enum Role {
    Publisher {
        stream: String,
        tracks: Vec<Track>,
        players: Vec<PeerKey>,
        /// Keyframe requests to the publisher are at most one a second per track.
        last_keyframe: HashMap<Mid, Instant>,
    },
    Player {
        stream: String,
        publisher: PeerKey,
        tracks: Vec<OutTrack>,
        /// The gateway's offer, until the player answers it.
        pending: Option<SdpPendingOffer>,
    },
}

pub(super) struct Peer {
    pub rtc: Rtc,
    /// Our ICE ufrag: STUN checks for this peer connection name it.
    pub ufrag: String,
    pub role: Role,
    pub notify: Notify,
    /// When the `Rtc` wants its next `Input::Timeout`.
    pub deadline: Instant,
    pub created: Instant,
    /// The last datagram from the peer (a consent check, media, RTCP): a peer silent for
    /// `consent_timeout` has gone away (RFC 7675), whether or not it said so.
    pub last_heard: Instant,
    /// ICE and DTLS completed.
    pub connected: bool,
    /// Remote candidates added (at most `MAX_CANDIDATES`).
    pub candidates: usize,
    /// Last cumulative RTP counts per (mid, ingress?), to turn str0m's stats into counter increments.
    stats: HashMap<(Mid, bool), (u64, u64, u64)>,
}

/// What polling a peer asks the engine to do next.
pub(super) enum Work {
    /// A publisher's frame, for its players.
    Media(PeerKey, Box<MediaData>),
    /// Ask the publisher for a keyframe on `mid`.
    Keyframe {
        publisher: PeerKey,
        mid: Mid,
        kind: KeyframeRequestKind,
        why: &'static str,
    },
    /// A player just connected: its publisher's video tracks need a keyframe.
    PlayerConnected(PeerKey),
    /// The peer connection is over.
    Close(PeerKey, String),
}

pub(super) type Timers = BinaryHeap<Reverse<(Instant, PeerKey)>>;

/// What polling any peer writes to: the socket, the engine's work queue and timers, the metrics. One value,
/// so a peer borrowed out of the engine's map can be polled against the rest of the engine.
pub(super) struct Io {
    pub out: super::outgoing::Outgoing,
    pub work: VecDeque<Work>,
    pub timers: Timers,
    pub metrics: std::sync::Arc<Metrics>,
}

impl Peer {
    pub fn new((rtc, ufrag): (Rtc, String), role: Role, notify: Notify) -> Peer {
        let now = Instant::now();
        Peer {
            rtc,
            ufrag,
            role,
            notify,
            deadline: now,
            created: now,
            last_heard: now,
            connected: false,
            candidates: 0,
            stats: HashMap::new(),
        }
    }

    pub fn stream(&self) -> &str {
        match &self.role {
            Role::Publisher { stream, .. } | Role::Player { stream, .. } => stream,
        }
    }

    /// Feeds the `Rtc` one input. A panic inside str0m (crafted input it did not expect) ends this peer
    /// connection like an error, never the SFU's task.
    pub fn input(&mut self, input: Input) -> Result<(), String> {
        let rtc = &mut self.rtc;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rtc.handle_input(input))) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("the peer connection failed: {e}")),
            Err(_) => {
                self.rtc.disconnect();
                Err("the peer connection failed (internal error on its input)".into())
            }
        }
    }

    /// Polls the `Rtc` until it only has a timeout left: datagrams go out on `out`, events become `work`.
    pub fn drive(&mut self, key: PeerKey, io: &mut Io) {
        let Io {
            out,
            work,
            timers,
            metrics,
        } = io;
        loop {
            if !self.rtc.is_alive() {
                work.push_back(Work::Close(key, "the peer connection closed".into()));
                return;
            }
            let rtc = &mut self.rtc;
            let Ok(polled) =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rtc.poll_output()))
            else {
                self.rtc.disconnect();
                work.push_back(Work::Close(
                    key,
                    "the peer connection failed (internal error)".into(),
                ));
                return;
            };
            match polled {
                Ok(Output::Timeout(t)) => {
                    if t != self.deadline {
                        self.deadline = t;
                        timers.push(Reverse((t, key)));
                    }
                    return;
                }
                Ok(Output::Transmit(t)) => out.send(t.destination, &t.contents, metrics),
                Ok(Output::Event(e)) => self.on_event(key, e, work, metrics),
                Err(e) => {
                    metrics.rtc_failures_total.with_label_values(&["rtc"]).inc();
                    work.push_back(Work::Close(key, format!("peer connection failed: {e}")));
                    return;
                }
            }
        }
    }

    fn on_event(&mut self, key: PeerKey, e: Event, work: &mut VecDeque<Work>, metrics: &Metrics) {
        match e {
            Event::Connected => {
                self.connected = true;
                tracing::debug!(?key, stream = self.stream(), after = ?self.created.elapsed(), "peer connection up");
                if matches!(self.role, Role::Player { .. }) {
                    work.push_back(Work::PlayerConnected(key));
                }
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                metrics.rtc_failures_total.with_label_values(&["ice"]).inc();
                work.push_back(Work::Close(
                    key,
                    "ICE disconnected (the peer stopped answering)".into(),
                ));
            }
            Event::MediaData(data) => {
                if let Role::Publisher { .. } = self.role {
                    if !data.contiguous {
                        // A gap the publisher's retransmissions did not fill: players need a new keyframe.
                        work.push_back(Work::Keyframe {
                            publisher: key,
                            mid: data.mid,
                            kind: KeyframeRequestKind::Fir,
                            why: "loss",
                        });
                    }
                    work.push_back(Work::Media(key, Box::new(data)));
                }
            }
            Event::KeyframeRequest(req) => {
                if let Role::Player {
                    publisher, tracks, ..
                } = &self.role
                {
                    if let Some(t) = tracks.iter().find(|t| t.mid == req.mid) {
                        work.push_back(Work::Keyframe {
                            publisher: *publisher,
                            mid: t.from,
                            kind: req.kind,
                            why: "player",
                        });
                    }
                }
            }
            Event::MediaIngressStats(s) => {
                self.count(metrics, s.mid, true, s.packets, s.bytes, s.nacks)
            }
            Event::MediaEgressStats(s) => {
                self.count(metrics, s.mid, false, s.packets, s.bytes, s.nacks)
            }
            _ => {}
        }
    }

    /// Adds what str0m's cumulative per-media stats grew by since the last report.
    fn count(
        &mut self,
        metrics: &Metrics,
        mid: Mid,
        ingress: bool,
        packets: u64,
        bytes: u64,
        nacks: u64,
    ) {
        let last = self.stats.entry((mid, ingress)).or_insert((0, 0, 0));
        metrics.rtc_rtp(
            ingress,
            packets.saturating_sub(last.0),
            bytes.saturating_sub(last.1),
            nacks.saturating_sub(last.2),
        );
        *last = (packets, bytes, nacks);
    }

    /// Whether a keyframe request for `mid` may go to this publisher now (at most one a second).
    pub fn keyframe_due(&mut self, mid: Mid, now: Instant) -> bool {
        let Role::Publisher { last_keyframe, .. } = &mut self.role else {
            return false;
        };
        match last_keyframe.get(&mid) {
            Some(t) if now.duration_since(*t) < Duration::from_secs(1) => false,
            _ => {
                last_keyframe.insert(mid, now);
                true
            }
        }
    }
}
