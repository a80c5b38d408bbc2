//! A bench receiver that costs as little as possible, so the bench measures the gateway, not itself: it speaks
//! the protocol on a bare connection (no client library, no answer routing, no push queue; over plain TCP it
//! reads the socket itself, one task per member), and of each push it reads only what the figures need (that
//! it is a `send`, its send time `t`, its payload size) by scanning the argument bytes instead of parsing them
//! into a JSON tree.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use super::server::Target;
use crate::protocol::frame::SeqCounter;
use crate::protocol::{CommandMessage, Frame, Message, MessageType, Reassembler};
use crate::transport::{Inbound, Outbound, OutboundRx};

/// A receiver gives up after this long without the next message.
const QUIET: Duration = Duration::from_secs(10);

/// One member's connection, joined to its room.
pub struct RawMember {
    wire: Wire,
    reassembler: Reassembler,
}

/// How a member's frames come and go.
enum Wire {
    /// Plain TCP: the socket is read right here, on the member's own task.
    Tcp {
        framed: Framed<TcpStream, LengthDelimitedCodec>,
        seq: SeqCounter,
    },
    /// Any other transport, through its link (its reader and writer tasks).
    Link {
        inbound: crate::transport::InboundRx,
        out: crate::transport::OutboundTx,
        _writer: tokio::task::JoinHandle<OutboundRx>,
    },
}

impl Wire {
    async fn open(target: &Target, i: usize) -> anyhow::Result<Wire> {
        let url = target.url_for(i);
        if let Some(addr) = url.strip_prefix("tcp://") {
            let stream = TcpStream::connect(addr.trim_end_matches('/')).await?;
            stream.set_nodelay(true)?;
            let codec = crate::transport::tcp::codec(64 << 20);
            return Ok(Wire::Tcp {
                framed: Framed::new(stream, codec),
                seq: SeqCounter::default(),
            });
        }
        let endpoint: crate::client::Endpoint = url.parse()?;
        let link = endpoint.open(&target.options).await?;
        let (out, rx) = crate::transport::outbound_queue(64);
        let writer = link.writer.start(rx, crate::transport::Stop::new());
        Ok(Wire::Link {
            inbound: link.inbound,
            out,
            _writer: writer,
        })
    }

    async fn send(&mut self, frame: Frame) -> anyhow::Result<()> {
        match self {
            Wire::Tcp { framed, seq } => Ok(framed.send(frame.to_bytes(seq.next_seq())).await?),
            Wire::Link { out, .. } => out
                .send_async(Outbound::Frame(frame))
                .await
                .map_err(|_| anyhow::anyhow!("connection closed")),
        }
    }

    /// The next frame; `None` when the connection ended.
    async fn next(&mut self) -> Option<Frame> {
        match self {
            Wire::Tcp { framed, .. } => Frame::decode(framed.next().await?.ok()?.freeze()).ok(),
            Wire::Link { inbound, .. } => match inbound.recv().await? {
                Inbound::Frame(f) => Some(f),
                _ => None,
            },
        }
    }
}

/// What one receiver saw.
pub struct Received {
    pub latencies: Vec<Duration>,
    /// When the last message arrived, since the epoch.
    pub last: Duration,
    pub bytes: usize,
}

impl RawMember {
    /// Connects (guest), opens a messaging pipe and joins `room`.
    pub async fn join(target: &Target, i: usize, room: &str) -> anyhow::Result<RawMember> {
        let mut m = RawMember {
            wire: Wire::open(target, i).await?,
            reassembler: Reassembler::new(64 << 20),
        };
        m.call(
            0,
            1,
            json!({"name": "connect", "uuid": "", "parameters": {"token": ""}}),
        )
        .await?;
        let created = m
            .call(0, 2, json!({"name": "create", "kind": "messaging"}))
            .await?;
        let pipe = created["info"]["id"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| anyhow::anyhow!("create answered without a pipe id: {created}"))?;
        m.call(pipe, 1, json!({"name": "join", "rid": room}))
            .await?;
        Ok(m)
    }

    /// Sends a command and waits for its answer (set-up only: pushes before it are skipped).
    async fn call(&mut self, pipe: u16, txid: u16, args: Value) -> anyhow::Result<Value> {
        let body = CommandMessage::encode(0, txid, args.to_string().as_bytes(), &[])?;
        self.wire
            .send(Frame::new(MessageType::Command, pipe, body))
            .await?;
        loop {
            let Some(f) = self.wire.next().await else {
                anyhow::bail!("connection closed during set-up");
            };
            if let Ok(Some(Message::Command { pipe: p, command })) = self.reassembler.push(f) {
                if p == pipe && command.txid == txid {
                    let answer: Value = serde_json::from_slice(&command.args)?;
                    if answer["level"] == "error" {
                        anyhow::bail!("{args} refused: {}", answer["description"]);
                    }
                    return Ok(answer);
                }
            }
        }
    }

    /// Reads from now on, as a real client does; from the start signal on (it carries the epoch), counts
    /// `expected` `send` pushes (skipping everything else), timing each against the epoch.
    ///
    /// Before the start, what arrives (the set-up's presence pushes) is read and dropped: a member that left
    /// them unread in its socket would make the figures measure the gateway's queues filling up behind a
    /// client that does not read, not what a connection in a big room costs.
    pub async fn receive(
        &mut self,
        expected: usize,
        mut start: tokio::sync::broadcast::Receiver<Instant>,
    ) -> Received {
        let mut got = Received {
            latencies: Vec::with_capacity(expected),
            last: Duration::ZERO,
            bytes: 0,
        };
        let epoch = loop {
            tokio::select! {
                biased;
                epoch = start.recv() => break epoch.unwrap_or_else(|_| Instant::now()),
                frame = self.wire.next() => match frame {
                    Some(f) => {
                        let _ = self.reassembler.push(f);
                    }
                    None => return got,
                },
            }
        };
        while got.latencies.len() < expected {
            let Ok(Some(f)) = tokio::time::timeout(QUIET, self.wire.next()).await else {
                break;
            };
            let Ok(Some(Message::Command { command, .. })) = self.reassembler.push(f) else {
                continue;
            };
            if command.txid != 0 || !is_send(&command.args) {
                continue;
            }
            let now = epoch.elapsed();
            if let Some(t) = sent_at(&command.args) {
                got.latencies
                    .push(now.saturating_sub(Duration::from_micros(t)));
                got.last = now;
                got.bytes += command.payload.len();
            }
        }
        got
    }
}

/// A push's arguments start with its name (the gateway serializes `name` first).
fn is_send(args: &Bytes) -> bool {
    args.starts_with(br#"{"name":"send""#)
}

/// The bench's send time: the number after `"data":{"t":`.
fn sent_at(args: &[u8]) -> Option<u64> {
    const KEY: &[u8] = br#""data":{"t":"#;
    let at = args.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits = args[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&args[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_send_time_is_read_without_parsing() {
        let args = br#"{"name":"send","type":"text","cast":"multi","id":"r","data":{"t":12345},"user":{}}"#;
        assert!(super::is_send(&bytes::Bytes::from_static(args)));
        assert_eq!(super::sent_at(args), Some(12345));
        assert_eq!(super::sent_at(br#"{"name":"send","data":"x"}"#), None);
    }
}
