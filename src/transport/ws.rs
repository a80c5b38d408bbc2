//! WebSocket: exactly one frame per binary message, no length prefix. Text messages are a protocol error
//! and close the connection with a reason. Works with axum's server socket and tungstenite's client socket
//! alike, through `WsMessage`.

use std::fmt::Display;
use std::time::Duration;

use bytes::Bytes;
use futures::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::mpsc;

use super::link::{
    Inbound, Link, LinkInfo, Outbound, OutboundRx, Source, Writer, INBOUND_QUEUE, WRITE_BATCH,
};
use crate::protocol::frame::SeqCounter;
use crate::protocol::Frame;

/// What the transport needs to tell apart in a WebSocket message.
pub enum WsKind {
    Binary(Bytes),
    Text,
    Close,
    /// Ping / pong: answered by the WebSocket library itself.
    Control,
}

/// A WebSocket message type (axum's or tungstenite's).
pub trait WsMessage: Send + Sized + 'static {
    fn binary(data: Bytes) -> Self;
    fn ping() -> Self;
    /// A close message with code 1000 and `reason` (cut to the 123 bytes a close frame allows).
    fn close(reason: &str) -> Self;
    fn kind(self) -> WsKind;
}

impl WsMessage for axum::extract::ws::Message {
    fn binary(data: Bytes) -> Self {
        axum::extract::ws::Message::Binary(data)
    }
    fn ping() -> Self {
        axum::extract::ws::Message::Ping(Bytes::new())
    }
    fn close(reason: &str) -> Self {
        axum::extract::ws::Message::Close(Some(axum::extract::ws::CloseFrame {
            code: 1000,
            reason: close_reason(reason).into(),
        }))
    }
    fn kind(self) -> WsKind {
        use axum::extract::ws::Message as M;
        match self {
            M::Binary(b) => WsKind::Binary(b),
            M::Text(_) => WsKind::Text,
            M::Close(_) => WsKind::Close,
            M::Ping(_) | M::Pong(_) => WsKind::Control,
        }
    }
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

/// Turns a WebSocket into a `Link`. With `liveness = Some(d)` (the gateway's side), the writer pings every
/// third of `d` and the reader declares the transport lost when nothing at all (no frame, no pong) arrived
/// for `d`: a quiet user's browser answers pings by itself, so only a dead peer is dropped, and its session
/// is parked for a fast reconnect. Clients pass `None`.
pub fn link<S, M, E>(socket: S, info: LinkInfo, liveness: Option<Duration>) -> Link
where
    S: Stream<Item = Result<M, E>> + Sink<M> + Send + 'static,
    M: WsMessage,
    E: Display + Send + 'static,
{
    let liveness = liveness.filter(|d| !d.is_zero());
    let (sink, stream) = socket.split();
    let (tx, inbound) = mpsc::channel(INBOUND_QUEUE);
    tokio::spawn(read_messages(stream, tx, liveness));
    let ping_every = liveness.map(|d| d / 3);
    Link {
        info,
        inbound,
        writer: Writer::new(move |rx| write_messages(sink, rx, ping_every)),
    }
}

/// A timer that never fires (liveness off).
const NEVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

async fn read_messages<St, M, E>(
    mut stream: St,
    tx: mpsc::Sender<Inbound>,
    liveness: Option<Duration>,
) where
    St: Stream<Item = Result<M, E>> + Unpin,
    M: WsMessage,
    E: Display,
{
    let window = liveness.unwrap_or(NEVER);
    let deadline = tokio::time::sleep(window);
    tokio::pin!(deadline);
    loop {
        let next = tokio::select! {
            n = stream.next() => n,
            _ = tx.closed() => return,
            _ = &mut deadline => {
                let reason = format!("no sign of life (frames or pongs) for {} ms", window.as_millis());
                let _ = tx.send(Inbound::Failed(reason)).await;
                return;
            }
        };
        // Anything at all from the peer, pongs included, is life.
        deadline
            .as_mut()
            .reset(tokio::time::Instant::now() + window);
        let item = match next {
            None => return,
            Some(Err(e)) => {
                let msg = e.to_string();
                let item = if msg.contains("too long") || msg.contains("size") {
                    Inbound::Violation(format!("frame length exceeds the limit: {msg}"))
                } else {
                    Inbound::Failed(format!("websocket error: {msg}"))
                };
                let _ = tx.send(item).await;
                return;
            }
            Some(Ok(m)) => match m.kind() {
                WsKind::Binary(b) => match Frame::decode(b) {
                    Ok(f) => Inbound::Frame(f),
                    Err(e) => Inbound::Malformed(e),
                },
                WsKind::Text => {
                    let _ = tx
                        .send(Inbound::Violation(
                            "text messages are not part of the protocol: send each frame as one binary message".into(),
                        ))
                        .await;
                    return;
                }
                WsKind::Close => {
                    let _ = tx
                        .send(Inbound::Closed("closed by the client".into()))
                        .await;
                    return;
                }
                WsKind::Control => continue,
            },
        };
        if tx.send(item).await.is_err() {
            return;
        }
    }
}

async fn write_messages<Si, M>(
    mut sink: Si,
    mut rx: Source,
    ping_every: Option<Duration>,
) -> OutboundRx
where
    Si: Sink<M> + Unpin,
    M: WsMessage,
{
    let mut seq = SeqCounter::default();
    let mut ping = tokio::time::interval(ping_every.unwrap_or(NEVER));
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.reset();
    'outer: loop {
        let first = tokio::select! {
            f = rx.next() => match f {
                Some(f) => f,
                None => break,
            },
            _ = ping.tick(), if ping_every.is_some() => {
                if sink.send(M::ping()).await.is_err() {
                    break;
                }
                continue;
            }
        };
        let mut next = Some(first);
        let mut n = 0;
        while let Some(out) = next.take() {
            match out {
                Outbound::Frame(frame) => {
                    if sink
                        .feed(M::binary(frame.to_bytes(seq.next_seq())))
                        .await
                        .is_err()
                    {
                        break 'outer;
                    }
                }
                // `Source` applies splices itself; none reach a writer.
                Outbound::Splice(_) | Outbound::Queued(..) => {}
                Outbound::Close(reason) => {
                    let _ = sink.send(M::close(&reason)).await;
                    let _ = sink.close().await;
                    break 'outer;
                }
            }
            n += 1;
            if n < WRITE_BATCH {
                next = rx.try_next();
            }
        }
        if sink.flush().await.is_err() {
            break;
        }
    }
    rx.into_rx()
}
