//! A bench receiver that costs as little as possible, so the bench measures the gateway, not itself: it speaks
//! the protocol on a bare transport link (no client library, no answer routing, no push queue), and of each
//! push it reads only what the figures need (that it is a `send`, its send time `t`, its payload size) by
//! scanning the argument bytes instead of parsing them into a JSON tree.

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::server::Target;
use crate::protocol::{CommandMessage, Frame, Message, MessageType, Reassembler};
use crate::transport::{Inbound, Outbound, OutboundRx};

/// A receiver gives up after this long without the next message.
const QUIET: Duration = Duration::from_secs(10);

/// One member's connection, joined to its room.
pub struct RawMember {
    inbound: mpsc::Receiver<Inbound>,
    /// Kept so the writer (and so the connection) lives as long as the member.
    _out: mpsc::Sender<Outbound>,
    _writer: tokio::task::JoinHandle<OutboundRx>,
    reassembler: Reassembler,
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
        let endpoint: crate::client::Endpoint = target.url_for(i).parse()?;
        let link = endpoint.open(&target.options).await?;
        let (out, rx) = mpsc::channel(64);
        let writer = link.writer.start(rx, CancellationToken::new());
        let mut m = RawMember {
            inbound: link.inbound,
            _out: out,
            _writer: writer,
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
        self._out
            .send(Outbound::Frame(Frame::new(
                MessageType::Command,
                pipe,
                body,
            )))
            .await
            .map_err(|_| anyhow::anyhow!("connection closed"))?;
        loop {
            let Some(Inbound::Frame(f)) = self.inbound.recv().await else {
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

    /// Counts `expected` `send` pushes (skipping everything else), timing each against `epoch`.
    pub async fn receive(mut self, expected: usize, epoch: Instant) -> Received {
        let mut got = Received {
            latencies: Vec::with_capacity(expected),
            last: Duration::ZERO,
            bytes: 0,
        };
        while got.latencies.len() < expected {
            let Ok(Some(Inbound::Frame(f))) =
                tokio::time::timeout(QUIET, self.inbound.recv()).await
            else {
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
