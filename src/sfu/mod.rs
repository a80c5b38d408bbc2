//! The SFU: WebRTC media relay behind the signaling pipes (and WHIP/WHEP). Publishers offer, the gateway
//! answers and names the stream; players ask to play a name, the gateway offers the publisher's tracks.
//! Media is forwarded, not transcoded: each frame a publisher sends is written, unchanged, to every player of
//! its stream.
//!
//! One task (`engine.rs`) owns the one UDP socket and every peer connection (str0m, sans-IO): callers talk to
//! it through `Sfu`, a cheap handle, by commands with one-shot replies. The SFU knows nothing of frames or
//! rooms: the session checks rights and turns `SfuEvent`s into statuses on its pipes. docs/rtc.md tells the
//! whole design.

mod engine;
mod error;
mod forward;
mod names;
mod negotiate;
mod outgoing;
mod peer;
mod stun;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

pub use error::SfuError;
pub use names::StreamName;

/// Who a peer connection belongs to: a signaling pipe of a connection, or a WHIP/WHEP resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeerKey {
    Pipe { conn: u64, pipe: u16 },
    Http(u64),
}

/// What the SFU tells a peer's owner after the offer/answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SfuEvent {
    /// The stream this player played ended (its publisher released, stopped or went away); `tracks` are the
    /// track ids of the player's offer (`a=msid`), one `NetStream.Play.Stop` each.
    Unpublished { stream: String, tracks: Vec<String> },
    /// The peer connection failed (ICE or DTLS did not complete, or the peer stopped answering).
    Failed { reason: String },
}

/// How the SFU reaches a peer's owner: called on the SFU's task, so it must not block.
pub type Notify = Arc<dyn Fn(SfuEvent) + Send + Sync>;

/// A publication, as its publisher learns it.
#[derive(Debug, Clone)]
pub struct Published {
    /// The answer SDP.
    pub answer: String,
    /// The stream's name: `<msid>@<sfu address>/<app>`.
    pub stream: String,
    /// The track ids of the publication (from the offer's `a=msid`).
    pub tracks: Vec<String>,
}

/// Limits (the `[rtc]` section).
#[derive(Debug, Clone)]
pub struct SfuSettings {
    /// The address put in candidates (and stream names): the public address behind NAT, else the bound one.
    pub announce: SocketAddr,
    pub max_publications_per_connection: usize,
    pub max_players_per_stream: usize,
    /// A peer connection whose ICE and DTLS have not completed this long after its offer/answer is dropped.
    pub connect_timeout: std::time::Duration,
    /// A connected peer connection silent (no datagram at all) this long is ended (`rtc.consent_timeout_ms`).
    pub consent_timeout: std::time::Duration,
}

/// Which media a player takes (`play {mode}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    All,
    Audio,
    Video,
}

pub(crate) enum Command {
    Publish {
        key: PeerKey,
        offer: String,
        app: String,
        notify: Notify,
        reply: oneshot::Sender<Result<Published, SfuError>>,
    },
    /// The gateway offers (signaling pipes): the reply is the offer SDP.
    Play {
        key: PeerKey,
        stream: String,
        mode: Mode,
        notify: Notify,
        reply: oneshot::Sender<Result<String, SfuError>>,
    },
    /// The player offers (WHEP): the reply is the answer SDP.
    PlayOffered {
        key: PeerKey,
        stream: String,
        offer: String,
        notify: Notify,
        reply: oneshot::Sender<Result<String, SfuError>>,
    },
    Answer {
        key: PeerKey,
        sdp: String,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    Candidate {
        key: PeerKey,
        candidate: String,
        reply: oneshot::Sender<Result<(), SfuError>>,
    },
    Close {
        key: PeerKey,
        reply: oneshot::Sender<bool>,
    },
    /// Ends a peer connection as a failure would, so its owner is told (the server API's "end").
    End {
        key: PeerKey,
        reason: String,
        reply: oneshot::Sender<bool>,
    },
    List {
        reply: oneshot::Sender<Vec<PeerInfo>>,
    },
}

/// One peer connection, as the server API lists them.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    pub key: PeerKey,
    pub publisher: bool,
    pub stream: String,
    /// ICE and DTLS completed.
    pub connected: bool,
    /// How long ago its offer/answer was made.
    pub age: std::time::Duration,
}

/// A handle on the SFU task. `Sfu::off()` when `listen.rtc` is off: every call says so.
#[derive(Clone)]
pub struct Sfu {
    tx: Option<mpsc::UnboundedSender<Command>>,
    bound: Option<SocketAddr>,
    /// The address in stream names (`rtc.public_ip` and the bound port).
    announce: Option<SocketAddr>,
    /// The app of streams published without one (`rtc.app`).
    app: Arc<str>,
}

impl Sfu {
    pub fn off() -> Sfu {
        Sfu {
            tx: None,
            bound: None,
            announce: None,
            app: Arc::from("im"),
        }
    }

    /// Binds the UDP socket and starts the engine. The task ends when `shutdown` is cancelled.
    pub async fn start(
        bind: SocketAddr,
        public_ip: Option<std::net::IpAddr>,
        recv_buffer: usize,
        app: &str,
        settings: impl FnOnce(SocketAddr) -> SfuSettings,
        metrics: Arc<crate::metrics::Metrics>,
        shutdown: CancellationToken,
    ) -> std::io::Result<(Sfu, tokio::task::JoinHandle<()>)> {
        let socket = crate::transport::udp::bind(bind, recv_buffer, "SFU")?;
        // A burst to hundreds of players fits in the kernel before anything waits in `Outgoing`.
        let _ = socket2::SockRef::from(&socket).set_send_buffer_size(recv_buffer);
        socket.set_nonblocking(true)?;
        let socket = tokio::net::UdpSocket::from_std(socket)?;
        let bound = socket.local_addr()?;
        let announce = SocketAddr::new(public_ip.unwrap_or(bound.ip()), bound.port());
        let settings = settings(announce);
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(engine::run(socket, settings, rx, metrics, shutdown));
        Ok((
            Sfu {
                tx: Some(tx),
                bound: Some(bound),
                announce: Some(announce),
                app: Arc::from(app),
            },
            task,
        ))
    }

    /// The bound UDP address (`None`: off).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.bound
    }

    /// The app of streams published on a signaling pipe with no `app` property.
    pub fn default_app(&self) -> &str {
        &self.app
    }

    pub fn is_on(&self) -> bool {
        self.tx.is_some()
    }

    /// The name a publication with `id` (the part before `@`) of `app` has on this node's SFU; `None` when
    /// the SFU is off or `id` cannot be one.
    pub fn name_on_this_node(&self, app: &str, id: &str) -> Option<StreamName> {
        if !StreamName::is_id(id) || !StreamName::valid_app(app) {
            return None;
        }
        Some(StreamName {
            id: id.to_string(),
            addr: self.announce?,
            app: app.to_string(),
        })
    }

    /// Whether `stream` names a publication of an SFU (of this node or another): such names are played
    /// through the SFU, never paired player to player.
    pub fn is_sfu_name(&self, stream: &str) -> bool {
        self.is_on() && StreamName::parse(stream).is_some()
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, SfuError> {
        let tx = self.tx.as_ref().ok_or(SfuError::Off)?;
        let (reply, answer) = oneshot::channel();
        tx.send(make(reply)).map_err(|_| SfuError::Off)?;
        answer.await.map_err(|_| SfuError::Off)
    }

    /// Accepts a publisher's offer. `app` becomes the last part of the stream's name.
    pub async fn publish(
        &self,
        key: PeerKey,
        offer: String,
        app: &str,
        notify: Notify,
    ) -> Result<Published, SfuError> {
        let app = app.to_string();
        self.ask(|reply| Command::Publish {
            key,
            offer,
            app,
            notify,
            reply,
        })
        .await?
    }

    /// Starts playing `stream`: returns the gateway's offer.
    pub async fn play(
        &self,
        key: PeerKey,
        stream: &str,
        mode: Mode,
        notify: Notify,
    ) -> Result<String, SfuError> {
        let stream = stream.to_string();
        self.ask(|reply| Command::Play {
            key,
            stream,
            mode,
            notify,
            reply,
        })
        .await?
    }

    /// Starts playing `stream` from the player's own offer (WHEP): returns the answer.
    pub async fn play_offered(
        &self,
        key: PeerKey,
        stream: &str,
        offer: String,
        notify: Notify,
    ) -> Result<String, SfuError> {
        let stream = stream.to_string();
        self.ask(|reply| Command::PlayOffered {
            key,
            stream,
            offer,
            notify,
            reply,
        })
        .await?
    }

    /// A player's answer to the gateway's offer.
    pub async fn answer(&self, key: PeerKey, sdp: String) -> Result<(), SfuError> {
        self.ask(|reply| Command::Answer { key, sdp, reply })
            .await?
    }

    /// A trickled candidate (`candidate:...`); an empty one (end of candidates) is ignored. Kept until the
    /// peer exists when it comes first. Past the most a peer takes, refused (`SfuError::Limit`).
    pub async fn candidate(&self, key: PeerKey, candidate: String) -> Result<(), SfuError> {
        self.ask(|reply| Command::Candidate {
            key,
            candidate,
            reply,
        })
        .await?
    }

    /// Every peer connection, publishers first, then by stream.
    pub async fn peers(&self) -> Vec<PeerInfo> {
        if !self.is_on() {
            return Vec::new();
        }
        self.ask(|reply| Command::List { reply })
            .await
            .unwrap_or_default()
    }

    /// Ends the peer connection of `key` and tells its owner `reason` (a signaling pipe gets a failure
    /// status); a publisher's players are told it ended. Whether there was one.
    pub async fn end(&self, key: PeerKey, reason: &str) -> bool {
        if !self.is_on() {
            return false;
        }
        let reason = reason.to_string();
        self.ask(|reply| Command::End { key, reason, reply })
            .await
            .unwrap_or(false)
    }

    /// Ends the peer connection of `key` (a publisher's players are told). Whether there was one.
    pub async fn close(&self, key: PeerKey) -> bool {
        if !self.is_on() {
            return false;
        }
        self.ask(|reply| Command::Close { key, reply })
            .await
            .unwrap_or(false)
    }
}
