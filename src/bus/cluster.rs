//! The cluster bus over any `Wire` (NATS between processes, the in-process hub in tests): one publisher task
//! so events leave in the order they were published, one wildcard subscription for everything the cluster
//! says, and requests to one node with their answers.
//!
//! Subjects (`<p>` = `cluster.subject_prefix`, ids hex-encoded so any room, user or node name is one token):
//! - events, all nodes subscribe to `<p>.ev.>`: `<p>.ev.room.<hex rid>` room messages, `<p>.ev.user.<hex uid>`
//!   uni-cast messages, `<p>.ev.presence` joins, leaves, snapshots, hello and bye, `<p>.ev.rights` chmod and
//!   room properties;
//! - requests to one node: `<p>.node.<hex node>.post` (a message for a room this node is home of), answered
//!   on `<p>.reply.<hex asking node>.<request id>`.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::wire::{Subscription, Wire};
use super::Event;
use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("cannot subscribe to {subject}: {reason}")]
    Subscribe { subject: String, reason: String },
}

/// What the publisher task is asked to do, in order.
enum Out {
    Publish(String, Bytes),
    /// A request: published with a reply subject, in order with everything else.
    Request(String, String, Bytes),
    /// Answer once everything before it reached the server.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// A node's link to the cluster. Cheap to clone.
#[derive(Clone)]
pub struct ClusterBus {
    inner: Arc<Inner>,
}

struct Inner {
    node: String,
    prefix: String,
    wire: Arc<dyn Wire>,
    tx: mpsc::UnboundedSender<Out>,
    metrics: Arc<Metrics>,
    /// Requests waiting for their answer, by id.
    pending: std::sync::Mutex<std::collections::HashMap<u64, Answered>>,
    next_request: std::sync::atomic::AtomicU64,
}

impl Inner {
    fn pending(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<u64, Answered>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How long a node waits for another to answer a request.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why a request got no answer before it was even waited for.
#[derive(Debug)]
enum Refused {
    /// NATS answered that nobody listens on the subject.
    NoResponders,
    /// The request could not be encoded (never sent).
    Encode(String),
}

/// Where a request's answer goes: the reply's body, or why there is none.
type Answered = tokio::sync::oneshot::Sender<Result<Bytes, Refused>>;

/// An answer on its way.
pub struct PendingRequest {
    rx: tokio::sync::oneshot::Receiver<Result<Bytes, Refused>>,
    id: u64,
    bus: ClusterBus,
    node: String,
}

impl PendingRequest {
    /// The answer, or why there is none.
    pub async fn answer(self) -> Result<Bytes, String> {
        let r = tokio::time::timeout(REQUEST_TIMEOUT, self.rx).await;
        self.bus.inner.pending().remove(&self.id);
        match r {
            Ok(Ok(Ok(b))) => Ok(b),
            // NATS answers a request nobody listens to at once: the node is gone (killed, or not yet up).
            Ok(Ok(Err(Refused::NoResponders))) => Err(format!(
                "node {} is not running (no responder on the bus)",
                self.node
            )),
            Ok(Ok(Err(Refused::Encode(e)))) => Err(format!("request not sent: {e}")),
            Ok(Err(_)) => Err("the bus closed".into()),
            Err(_) => Err(format!("no answer within {REQUEST_TIMEOUT:?}")),
        }
    }
}

impl ClusterBus {
    /// Connects to NATS at `url` and joins the cluster there (see `join`).
    pub async fn connect(
        url: &str,
        prefix: &str,
        node: &str,
        metrics: Arc<Metrics>,
    ) -> Result<ClusterBus, BusError> {
        let wire = super::nats::connect(url, node).await?;
        ClusterBus::join(wire, prefix, node, metrics).await
    }

    /// Starts the publisher task on `wire` and listens for answers to this node's requests.
    pub async fn join(
        wire: Arc<dyn Wire>,
        prefix: &str,
        node: &str,
        metrics: Arc<Metrics>,
    ) -> Result<ClusterBus, BusError> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Out>();
        let publisher = wire.clone();
        let m = metrics.clone();
        tokio::spawn(async move {
            while let Some(out) = rx.recv().await {
                let sent = match out {
                    Out::Publish(subject, bytes) => publisher.publish(subject, None, bytes).await,
                    Out::Request(subject, reply, bytes) => {
                        publisher.publish(subject, Some(reply), bytes).await
                    }
                    Out::Flush(done) => {
                        publisher.flush().await;
                        let _ = done.send(());
                        Ok(())
                    }
                };
                if let Err(e) = sent {
                    m.bus_errors_total.with_label_values(&["publish"]).inc();
                    tracing::warn!(error = %e, "bus publish failed");
                }
            }
        });
        let bus = ClusterBus {
            inner: Arc::new(Inner {
                node: node.to_string(),
                prefix: prefix.to_string(),
                wire,
                tx,
                metrics,
                pending: Default::default(),
                next_request: Default::default(),
            }),
        };
        // Answers to this node's requests.
        let replies = format!("{}.reply.{}.>", bus.inner.prefix, hex(node));
        let mut sub = subscribe(&*bus.inner.wire, replies).await?;
        let weak = Arc::downgrade(&bus.inner);
        tokio::spawn(async move {
            use futures::StreamExt;
            while let Some(msg) = sub.next().await {
                let Some(inner) = weak.upgrade() else { break };
                let id = msg
                    .subject
                    .rsplit('.')
                    .next()
                    .and_then(|s| s.parse::<u64>().ok());
                let waiting = id.and_then(|id| inner.pending().remove(&id));
                if let Some(done) = waiting {
                    let answer = if msg.no_responders {
                        Err(Refused::NoResponders)
                    } else {
                        Ok(msg.payload)
                    };
                    let _ = done.send(answer);
                }
            }
        });
        Ok(bus)
    }

    /// `<p>.node.<hex node>.<kind>`: where `node` takes requests of `kind`.
    fn node_subject(&self, node: &str, kind: &str) -> String {
        format!("{}.node.{}.{kind}", self.inner.prefix, hex(node))
    }

    /// Sends a request to `node`'s `<kind>` subject now (in order with everything this node publishes); the
    /// handle waits for the answer.
    pub fn request<H: serde::Serialize>(
        &self,
        node: &str,
        kind: &str,
        header: &H,
        body: &[u8],
    ) -> PendingRequest {
        let i = &self.inner;
        let id = i
            .next_request
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (done, rx) = tokio::sync::oneshot::channel();
        let pending = PendingRequest {
            rx,
            id,
            bus: self.clone(),
            node: node.to_string(),
        };
        let bytes = match super::encode(header, body) {
            Ok(b) => b,
            Err(e) => {
                let _ = done.send(Err(Refused::Encode(e.to_string())));
                return pending;
            }
        };
        i.pending().insert(id, done);
        let subject = self.node_subject(node, kind);
        let reply = format!("{}.reply.{}.{id}", i.prefix, hex(&i.node));
        i.metrics
            .bus_published_total
            .with_label_values(&[kind])
            .inc();
        let _ = i.tx.send(Out::Request(subject, reply, bytes));
        pending
    }

    /// Requests of `<kind>` addressed to this node.
    pub async fn serve(&self, kind: &str) -> Result<Requests, BusError> {
        let subject = self.node_subject(&self.inner.node, kind);
        let sub = subscribe(&*self.inner.wire, subject).await?;
        Ok(Requests {
            sub,
            bus: self.clone(),
        })
    }

    pub fn node(&self) -> &str {
        &self.inner.node
    }

    /// Whether the wire (the NATS connection) is up right now. While it is not, the node serves on its own: it
    /// commits every room locally and delivers to its own members directly (docs/cluster.md).
    pub fn connected(&self) -> bool {
        self.inner.wire.connected()
    }

    /// Queues an event; events leave in the order they were published. Never waits.
    pub fn publish(&self, event: &Event, body: &[u8]) {
        let i = &self.inner;
        let subject = match event {
            Event::Message {
                room: true, target, ..
            } => format!("{}.ev.room.{}", i.prefix, hex(target)),
            Event::Message { target, .. } => format!("{}.ev.user.{}", i.prefix, hex(target)),
            Event::Rights { .. } | Event::RoomProperties { .. } => {
                format!("{}.ev.rights", i.prefix)
            }
            _ => format!("{}.ev.presence", i.prefix),
        };
        i.metrics
            .bus_published_total
            .with_label_values(&[event.kind()])
            .inc();
        match event.encode(body) {
            // The receiver lives as long as the process; a send after it stopped is a shutdown race, harmless.
            Ok(bytes) => {
                let _ = i.tx.send(Out::Publish(subject, bytes));
            }
            Err(e) => {
                i.metrics
                    .bus_errors_total
                    .with_label_values(&["encode"])
                    .inc();
                tracing::error!(error = %e, kind = event.kind(), "bus event not published");
            }
        }
    }

    /// Everything the cluster publishes, this node's own events included.
    pub async fn subscribe(&self) -> Result<Events, BusError> {
        let subject = format!("{}.ev.>", self.inner.prefix);
        let sub = subscribe(&*self.inner.wire, subject).await?;
        Ok(Events {
            sub,
            metrics: self.inner.metrics.clone(),
        })
    }

    /// Waits until what was published has reached the server (shutdown).
    pub async fn flush(&self) {
        let (done, flushed) = tokio::sync::oneshot::channel();
        if self.inner.tx.send(Out::Flush(done)).is_ok() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), flushed).await;
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Counts an event of `kind` (`Event::kind`) from `Events` once it has been applied
    /// (`odd_gateway_bus_received_total`).
    pub fn applied(&self, kind: &str) {
        self.inner
            .metrics
            .bus_received_total
            .with_label_values(&[kind])
            .inc();
    }
}

/// The cluster's events, decoded: what rooms applies. Undecodable ones are counted and logged here and skipped,
/// so nothing past the bus sees a wire message. `odd_gateway_bus_received_total` is counted by whoever applies
/// them (`ClusterBus::applied`), after the event took effect: a test may use it as a fence.
pub struct Events {
    sub: Subscription,
    metrics: Arc<Metrics>,
}

impl Events {
    /// The next event and its body; `None` once the subscription ended.
    pub async fn next(&mut self) -> Option<(Event, Bytes)> {
        use futures::StreamExt;
        loop {
            let msg = self.sub.next().await?;
            match Event::decode(&msg.payload) {
                Ok((event, body)) => return Some((event, body)),
                Err(e) => {
                    self.metrics
                        .bus_errors_total
                        .with_label_values(&["decode"])
                        .inc();
                    tracing::warn!(error = %e, subject = %msg.subject, "undecodable bus event ignored");
                }
            }
        }
    }
}

/// Requests of one kind addressed to this node (see `ClusterBus::serve`).
pub struct Requests {
    sub: Subscription,
    bus: ClusterBus,
}

impl Requests {
    /// The next request that can be answered; `None` once the subscription ended.
    pub async fn next(&mut self) -> Option<Request> {
        use futures::StreamExt;
        loop {
            let msg = self.sub.next().await?;
            // A request without a reply subject cannot be answered: not one of ours.
            if let Some(reply) = msg.reply {
                return Some(Request {
                    body: msg.payload,
                    reply,
                    bus: self.bus.clone(),
                });
            }
        }
    }
}

/// One request from another node, answered with `respond`.
pub struct Request {
    pub body: Bytes,
    reply: String,
    bus: ClusterBus,
}

impl Request {
    /// Answers the request (on the reply subject it came with) with `header`. Should the header not encode,
    /// the asking node is left to its timeout and the failure is logged here.
    pub fn respond<H: serde::Serialize>(&self, header: &H) {
        match super::encode(header, &[]) {
            Ok(bytes) => {
                let _ = self
                    .bus
                    .inner
                    .tx
                    .send(Out::Publish(self.reply.clone(), bytes));
            }
            Err(e) => tracing::error!(error = %e, "bus answer not sent"),
        }
    }

    /// The bus it came on (metrics, this node's name).
    pub fn bus(&self) -> &ClusterBus {
        &self.bus
    }
}

/// Subscribes on the wire (in place before this node says anything that others answer: a hello, a request).
async fn subscribe(wire: &dyn Wire, subject: String) -> Result<Subscription, BusError> {
    wire.subscribe(subject.clone())
        .await
        .map_err(|reason| BusError::Subscribe { subject, reason })
}

fn hex(id: &str) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(id.len() * 2);
    for b in id.bytes() {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn any_id_becomes_one_subject_token() {
        assert_eq!(super::hex("a.b *>"), "612e62202a3e");
    }
}
