//! A WebRTC peer for tests, on str0m over a real UDP socket on 127.0.0.1: it publishes (offers audio + video,
//! sends opus and VP8 frames, answers keyframe requests with a keyframe, as Chrome does) or plays (answers the
//! gateway's offer and reports every frame it receives). The signaling is the test's: it carries the SDP and
//! candidates over a real Odd connection, as the odd.js SDK does.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, MediaTime, Mid};
use str0m::net::{DatagramRecv, Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// What a peer saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Connected,
    /// A frame received (players).
    Frame {
        kind: MediaKind,
        data: Vec<u8>,
        keyframe: bool,
    },
    /// The gateway asked this publisher for a keyframe.
    KeyframeRequested,
}

enum Order {
    Frame(MediaKind, Vec<u8>),
    /// Send an audio and a video frame every period, as a camera does: `vp8_frame(n, key)` (padded to the
    /// size, if given) and `opus_frame(n)`, a keyframe first and after each keyframe request.
    Stream(Duration, usize),
    /// Ask the sender for a keyframe (PLI) on the video track this peer receives.
    AskKeyframe,
    /// Lose every n-th outgoing VP8 packet (payload type 96; retransmissions, on RTX, go out).
    LoseEvery(u32),
    /// Send video as H264 (`h264_frame`) instead of VP8.
    H264,
}

/// A running peer: orders go to its task, what it sees comes back.
pub struct Peer {
    orders: mpsc::UnboundedSender<Order>,
    pub seen: mpsc::UnboundedReceiver<Seen>,
    pub addr: SocketAddr,
}

/// A publisher whose offer is out, waiting for the answer.
pub struct Offering {
    rtc: Rtc,
    socket: UdpSocket,
    pending: SdpPendingOffer,
    pub offer: String,
    /// Our host candidate, `candidate:...`, to trickle.
    pub candidate: String,
    mids: Vec<(MediaKind, Mid)>,
}

fn rtc() -> Rtc {
    Rtc::builder()
        .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
        .build(Instant::now())
}

async fn socket() -> (UdpSocket, Candidate) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("udp");
    let addr = socket.local_addr().expect("addr");
    (socket, Candidate::host(addr, "udp").expect("candidate"))
}

/// VP8 frames the receiver's depacketizer can tell apart: the first byte's low bit is P (0: keyframe).
pub fn vp8_frame(n: u32, key: bool) -> Vec<u8> {
    let mut f = if key {
        vec![0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00]
    } else {
        vec![0x01, 0x00, 0x00]
    };
    f.extend_from_slice(&n.to_be_bytes());
    f.resize(f.len() + 300, (n % 251) as u8);
    f
}

/// An H264 access unit carrying `n` (Annex B): an IDR slice for a keyframe, else a non-IDR slice. `n` is
/// written as 8 ASCII digits: a NAL unit must not hold two zero bytes in a row (they would read as a start
/// code).
pub fn h264_frame(n: u32, key: bool) -> Vec<u8> {
    let mut f = vec![0, 0, 0, 1, if key { 0x65 } else { 0x41 }];
    f.extend_from_slice(format!("{n:08}").as_bytes());
    f.resize(f.len() + 300, 0x33);
    f
}

/// An opus-sized audio frame carrying `n`.
pub fn opus_frame(n: u32) -> Vec<u8> {
    let mut f = vec![0xfc];
    f.extend_from_slice(&n.to_be_bytes());
    f.resize(80, 0x5a);
    f
}

impl Offering {
    /// Offers audio then video, `sendonly`, with msid `stream_id track`.
    pub async fn new(stream_id: &str) -> Offering {
        Offering::with(stream_id, Direction::SendOnly).await
    }

    /// Offers to receive audio then video (a WHEP player).
    pub async fn receiving() -> Offering {
        Offering::with("player", Direction::RecvOnly).await
    }

    async fn with(stream_id: &str, dir: Direction) -> Offering {
        let (socket, candidate) = socket().await;
        let mut rtc = rtc();
        let line = candidate.to_sdp_string();
        rtc.add_local_candidate(candidate);
        let mut api = rtc.sdp_api();
        let audio = api.add_media(
            MediaKind::Audio,
            dir,
            Some(stream_id.into()),
            Some(format!("{stream_id}-audio")),
            None,
        );
        let video = api.add_media(
            MediaKind::Video,
            dir,
            Some(stream_id.into()),
            Some(format!("{stream_id}-video")),
            None,
        );
        let (offer, pending) = api.apply().expect("an offer");
        Offering {
            rtc,
            socket,
            pending,
            offer: offer.to_sdp_string(),
            candidate: line.trim_start_matches("a=").to_string(),
            mids: vec![(MediaKind::Audio, audio), (MediaKind::Video, video)],
        }
    }

    /// Applies the gateway's answer and starts the peer.
    pub fn answered(mut self, answer: &str) -> Peer {
        let answer = SdpAnswer::from_sdp_string(answer).expect("an SDP answer");
        self.rtc
            .sdp_api()
            .accept_answer(self.pending, answer)
            .expect("answer accepted");
        spawn(self.rtc, self.socket, self.mids)
    }
}

impl Peer {
    /// Answers the gateway's offer: the player's answer SDP and the running peer.
    pub async fn answer(offer: &str) -> (Peer, String) {
        Peer::answer_from(offer, "127.0.0.1:0".parse().expect("addr")).await
    }

    /// `answer`, from a UDP socket bound to `at`.
    pub async fn answer_from(offer: &str, at: SocketAddr) -> (Peer, String) {
        Peer::answer_on(offer, UdpSocket::bind(at).await.expect("udp")).await
    }

    /// `answer`, from `socket` (bound already: to reuse a port another peer had).
    pub async fn answer_on(offer: &str, socket: UdpSocket) -> (Peer, String) {
        let addr = socket.local_addr().expect("addr");
        let candidate = Candidate::host(addr, "udp").expect("candidate");
        let mut rtc = rtc();
        rtc.add_local_candidate(candidate);
        let offer = SdpOffer::from_sdp_string(offer).expect("an SDP offer");
        let answer = rtc.sdp_api().accept_offer(offer).expect("offer accepted");
        (spawn(rtc, socket, Vec::new()), answer.to_sdp_string())
    }

    /// Sends one frame (publishers).
    pub fn send(&self, kind: MediaKind, data: Vec<u8>) {
        let _ = self.orders.send(Order::Frame(kind, data));
    }

    /// Sends H264 video instead of VP8 from now on (publishers).
    pub fn use_h264(&self) {
        let _ = self.orders.send(Order::H264);
    }

    /// Loses every `n`-th VP8 packet it sends (publishers): a lossy uplink.
    pub fn lose_every(&self, n: u32) {
        let _ = self.orders.send(Order::LoseEvery(n));
    }

    /// Sends a PLI for the video it receives (players), as a browser does after loss.
    pub fn ask_keyframe(&self) {
        let _ = self.orders.send(Order::AskKeyframe);
    }

    /// Starts sending a frame of each kind every `period` (publishers).
    pub fn stream(&self, period: Duration) {
        let _ = self.orders.send(Order::Stream(period, 0));
    }

    /// Starts sending an audio frame and a video frame of `video_bytes` every `period` (publishers).
    pub fn stream_sized(&self, period: Duration, video_bytes: usize) {
        let _ = self.orders.send(Order::Stream(period, video_bytes));
    }

    /// The next thing seen that `pick` accepts, within `wait`.
    pub async fn next<T>(
        &mut self,
        wait: Duration,
        pick: impl Fn(&Seen) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let s = tokio::time::timeout_at(deadline, self.seen.recv())
                .await
                .ok()??;
            if let Some(t) = pick(&s) {
                return Some(t);
            }
        }
    }
}

fn spawn(mut rtc: Rtc, socket: UdpSocket, mids: Vec<(MediaKind, Mid)>) -> Peer {
    let (orders, mut order_rx) = mpsc::unbounded_channel();
    let (seen_tx, seen) = mpsc::unbounded_channel();
    let addr = socket.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        let started = Instant::now();
        let mut frames = 0u64;
        let mut ticker: Option<tokio::time::Interval> = None;
        let (mut n, mut want_key, mut size) = (0u32, false, 0usize);
        let mut video_in: Option<Mid> = None;
        let (mut lose_every, mut vp8_sent) = (0u32, 0u32);
        let mut h264 = false;
        loop {
            let timeout = loop {
                match rtc.poll_output() {
                    Ok(Output::Timeout(t)) => break t,
                    Ok(Output::Transmit(t)) => {
                        let vp8 = t.contents.len() > 1
                            && t.contents[0] >> 6 == 2
                            && t.contents[1] & 0x7f == 96;
                        if vp8 && lose_every > 0 {
                            vp8_sent += 1;
                            if vp8_sent % lose_every == 0 {
                                continue;
                            }
                        }
                        let _ = socket.send_to(&t.contents, t.destination).await;
                    }
                    Ok(Output::Event(e)) => {
                        let s = match e {
                            Event::Connected => Some(Seen::Connected),
                            Event::MediaData(d) => {
                                let kind = rtc
                                    .media(d.mid)
                                    .map(|m| m.kind())
                                    .unwrap_or(MediaKind::Audio);
                                if kind == MediaKind::Video {
                                    video_in = Some(d.mid);
                                }
                                Some(Seen::Frame {
                                    kind,
                                    keyframe: d.is_keyframe(),
                                    data: d.data.to_vec(),
                                })
                            }
                            Event::KeyframeRequest(_) => {
                                want_key = true;
                                Some(Seen::KeyframeRequested)
                            }
                            _ => None,
                        };
                        if let Some(s) = s {
                            let _ = seen_tx.send(s);
                        }
                    }
                    Err(_) => return,
                }
            };
            if !rtc.is_alive() {
                return;
            }
            tokio::select! {
                got = socket.recv_from(&mut buf) => {
                    let Ok((n, source)) = got else { return };
                    let Ok(contents) = DatagramRecv::try_from(&buf[..n]) else { continue };
                    let input = Input::Receive(Instant::now(), Receive {
                        proto: Protocol::Udp, source, destination: addr, contents,
                    });
                    if rtc.handle_input(input).is_err() { return; }
                }
                _ = async { match &mut ticker { Some(t) => { t.tick().await; } None => std::future::pending::<()>().await } } => {
                    let key = n == 0 || want_key;
                    want_key = false;
                    let mut video = if h264 { h264_frame(n, key) } else { vp8_frame(n, key) };
                    if video.len() < size {
                        video.resize(size, (n % 251) as u8);
                    }
                    for (kind, data) in [(MediaKind::Audio, opus_frame(n)), (MediaKind::Video, video)] {
                        write(&mut rtc, &mids, kind, data, &mut frames, started, h264);
                    }
                    n += 1;
                }
                order = order_rx.recv() => {
                    let (kind, data) = match order {
                        Some(Order::Frame(kind, data)) => (kind, data),
                        Some(Order::Stream(every, bytes)) => {
                            ticker = Some(tokio::time::interval(every));
                            size = bytes;
                            continue;
                        }
                        Some(Order::H264) => {
                            h264 = true;
                            continue;
                        }
                        Some(Order::LoseEvery(n)) => {
                            lose_every = n;
                            continue;
                        }
                        Some(Order::AskKeyframe) => {
                            if let Some(mut w) = video_in.and_then(|m| rtc.writer(m)) {
                                let _ = w.request_keyframe(None, str0m::media::KeyframeRequestKind::Pli);
                            }
                            continue;
                        }
                        None => return,
                    };
                    write(&mut rtc, &mids, kind, data, &mut frames, started, h264);
                }

                _ = tokio::time::sleep_until(timeout.into()) => {
                    if rtc.handle_input(Input::Timeout(Instant::now())).is_err() { return; }
                }
            }
        }
    });
    Peer { orders, seen, addr }
}

/// Writes one frame on the track of `kind` with the codec the tests use (opus, VP8).
fn write(
    rtc: &mut Rtc,
    mids: &[(MediaKind, Mid)],
    kind: MediaKind,
    data: Vec<u8>,
    frames: &mut u64,
    started: Instant,
    h264: bool,
) {
    let Some(mid) = mids.iter().find(|(k, _)| *k == kind).map(|(_, m)| *m) else {
        return;
    };
    let Some(w) = rtc.writer(mid) else { return };
    let codec = match (kind, h264) {
        (MediaKind::Audio, _) => Codec::Opus,
        (_, true) => Codec::H264,
        _ => Codec::Vp8,
    };
    let Some(pt) = w
        .payload_params()
        .find(|p| p.spec().codec == codec)
        .map(|p| p.pt())
    else {
        return;
    };
    *frames += 1;
    let elapsed = started.elapsed().as_micros() as u64;
    let time = if kind == MediaKind::Audio {
        MediaTime::new(
            elapsed * 48 / 1000,
            str0m::media::Frequency::FORTY_EIGHT_KHZ,
        )
    } else {
        MediaTime::new(
            elapsed * 90 / 1000 + *frames,
            str0m::media::Frequency::NINETY_KHZ,
        )
    };
    let _ = w.write(pt, Instant::now(), time, data);
}
