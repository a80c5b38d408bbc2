//! Forwarding: what polling peers produced (frames, keyframe requests, new players, ends), applied in turn.

use std::time::Instant;

use str0m::media::{KeyframeRequestKind, MediaKind};

use super::engine::Engine;
use super::peer::{Peer, Role, Work};
use super::PeerKey;

impl Engine {
    pub(super) fn apply_work(&mut self) {
        while let Some(w) = self.io.work.pop_front() {
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
            // The frame's bytes are the publisher's: str0m packetizing them must not take the SFU down.
            let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                writer.write(pt, data.network_time, data.time, data.data.clone())
            }));
            match written {
                Ok(Ok(())) => self.io.metrics.rtc_frames_forwarded_total.inc(),
                Ok(Err(_)) => {}
                Err(_) => {
                    self.io.work.push_back(Work::Close(
                        key,
                        "the peer connection failed (internal error on a frame)".into(),
                    ));
                    continue;
                }
            }
            peer.drive(key, &mut self.io);
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
            self.io
                .metrics
                .rtc_keyframe_requests_total
                .with_label_values(&[why])
                .inc();
        }
        peer.drive(publisher, &mut self.io);
    }
}
