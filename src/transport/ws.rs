//! WebSocket: exactly one frame per binary message, no length prefix. Text messages are a protocol error
//! and close the connection with a reason. The gateway's socket (`ws_accept.rs`) and the client's are both
//! tungstenite's, read and written through `WsMessage`.

use std::fmt::Display;
use std::marker::PhantomData;
use std::time::Duration;

use bytes::Bytes;
use futures::{Sink, SinkExt, Stream, StreamExt};

use super::link::{Inbound, Link, LinkInfo, Writer, INBOUND_QUEUE};
use super::loops::{read_loop, write_loop, FrameSink, FrameSource, Read};
use crate::protocol::Frame;

/// What the transport needs to tell apart in a WebSocket message.
pub enum WsKind {
    Binary(Bytes),
    Text,
    Close,
    /// Ping / pong: answered by the WebSocket library itself.
    Control,
}

/// A WebSocket message type (tungstenite's; a trait so the loops can be tested with any).
pub trait WsMessage: Send + Sized + 'static {
    fn binary(data: Bytes) -> Self;
    fn ping() -> Self;
    /// A close message with code 1000 and `reason` (cut to the 123 bytes a close frame allows).
    fn close(reason: &str) -> Self;
    fn kind(self) -> WsKind;
}

impl WsMessage for tokio_tungstenite::tungstenite::Message {
    fn binary(data: Bytes) -> Self {
        tokio_tungstenite::tungstenite::Message::Binary(data)
    }
    fn ping() -> Self {
        tokio_tungstenite::tungstenite::Message::Ping(Bytes::new())
    }
    fn close(reason: &str) -> Self {
        use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame};
        tokio_tungstenite::tungstenite::Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: close_reason(reason).into(),
        }))
    }
    fn kind(self) -> WsKind {
        use tokio_tungstenite::tungstenite::Message as M;
        match self {
            M::Binary(b) => WsKind::Binary(b),
            M::Text(_) => WsKind::Text,
            M::Close(_) => WsKind::Close,
            M::Ping(_) | M::Pong(_) | M::Frame(_) => WsKind::Control,
        }
    }
}

/// A close frame carries at most 123 bytes of reason.
fn close_reason(reason: &str) -> String {
    super::link::truncate_reason(reason, 123).to_string()
}

/// A client's WebSocket as a `Link`: frames as long as the peer sends, no liveness pings of its own (the
/// client watches liveness with `ping`, docs/resilience.md).
pub fn link<S, M, E>(socket: S, info: LinkInfo) -> Link
where
    S: Stream<Item = Result<M, E>> + Sink<M> + Send + 'static,
    M: WsMessage,
    E: Display + Send + 'static,
{
    link_limited(socket, info, None, super::FrameLimit::fixed(usize::MAX))
}

/// Turns a WebSocket into a `Link`, its frames bounded by `frame_limit` (the gateway's side: the limit its
/// socket's bytes are already metered by, `ws_accept.rs`). With `liveness = Some(d)` (the gateway's side),
/// the writer pings every third of `d` and the reader declares the transport lost when nothing at all (no
/// frame, no pong) arrived for `d`: a quiet user's browser answers pings by itself, so only a dead peer is
/// dropped, and its session is parked for a fast reconnect.
pub(super) fn link_limited<S, M, E>(
    socket: S,
    info: LinkInfo,
    liveness: Option<Duration>,
    frame_limit: super::FrameLimit,
) -> Link
where
    S: Stream<Item = Result<M, E>> + Sink<M> + Send + 'static,
    M: WsMessage,
    E: Display + Send + 'static,
{
    let liveness = liveness.filter(|d| !d.is_zero());
    let (sink, stream) = socket.split();
    let (tx, inbound) = super::inbound_queue(INBOUND_QUEUE);
    tokio::spawn(read_loop(
        WsSource(stream, frame_limit.clone()),
        tx,
        liveness,
        |_| {},
    ));
    let ping_every = liveness.map(|d| d / 3);
    let sink = WsSink {
        sink,
        message: PhantomData,
    };
    Link {
        info,
        // After `connect`, messages are bounded by the socket's own `max_message_size` (ws_accept.rs).
        frame_limit,
        inbound,
        writer: Writer::new(move |rx| write_loop(sink, rx, ping_every)),
    }
}

/// Binary messages, one frame each; text is a protocol violation, a close frame a clean close. Before
/// `connect`, a message longer than a `connect` frame, or more than `PRE_CONNECT_BYTES` in all, is a violation.
struct WsSource<St>(St, super::FrameLimit);

impl<St, M, E> FrameSource for WsSource<St>
where
    St: Stream<Item = Result<M, E>> + Unpin + Send,
    M: WsMessage,
    E: Display,
{
    async fn next(&mut self) -> Option<Read> {
        Some(match self.0.next().await? {
            Err(e) => {
                let msg = e.to_string();
                Read::End(if msg.contains("too long") || msg.contains("size") {
                    Inbound::Violation(format!("frame length exceeds the limit: {msg}"))
                } else {
                    Inbound::Failed(format!("websocket error: {msg}"))
                })
            }
            Ok(m) => match m.kind() {
                WsKind::Binary(b) if b.len() > self.1.get() || !self.1.charge(b.len()) => {
                    Read::End(Inbound::Violation(format!(
                        "frame length exceeds the limit: at most {} bytes before connect",
                        super::limit::PRE_CONNECT_BYTES
                    )))
                }
                WsKind::Binary(b) => Read::Frame(b),
                WsKind::Text => Read::End(Inbound::Violation(
                    "text messages are not part of the protocol: send each frame as one binary message"
                        .into(),
                )),
                WsKind::Close => Read::End(Inbound::Closed("closed by the client".into())),
                WsKind::Control => Read::Skip,
            },
        })
    }
}

/// Each frame as one binary message; pings for liveness; a close frame with the reason at the end.
struct WsSink<Si, M> {
    sink: Si,
    message: PhantomData<fn() -> M>,
}

impl<Si, M> FrameSink for WsSink<Si, M>
where
    Si: Sink<M> + Unpin + Send,
    M: WsMessage,
{
    async fn feed(&mut self, frame: Frame, seq: u16) -> Result<(), ()> {
        self.sink
            .feed(M::binary(frame.to_bytes(seq)))
            .await
            .map_err(|_| ())
    }

    async fn flush(&mut self) -> Result<(), ()> {
        self.sink.flush().await.map_err(|_| ())
    }

    async fn ping(&mut self) -> Result<(), ()> {
        self.sink.send(M::ping()).await.map_err(|_| ())
    }

    async fn finish(mut self, close: Option<String>) {
        if let Some(reason) = close {
            let _ = self.sink.send(M::close(&reason)).await;
            let _ = self.sink.close().await;
        }
    }
}
