//! The NATS side of the bus (async-nats, core pub/sub): one connection per node, one publisher task so events
//! leave in the order they were published, one wildcard subscription for everything the cluster says.
//!
//! Subjects (`<p>` = `cluster.subject_prefix`, ids hex-encoded so any room or user id is a valid token):
//! `<p>.room.<hex rid>` room messages, `<p>.user.<hex uid>` uni-cast messages, `<p>.presence` joins, leaves,
//! snapshots, hello and bye, `<p>.rights` chmod and room properties. A node subscribes to `<p>.>`.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

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
    /// Answer once everything before it reached the server.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// A node's link to the cluster. Cheap to clone.
#[derive(Clone)]
pub struct NatsBus {
    inner: Arc<Inner>,
}

struct Inner {
    node: String,
    prefix: String,
    client: async_nats::Client,
    tx: mpsc::UnboundedSender<Out>,
    metrics: Arc<Metrics>,
}

impl NatsBus {
    /// Connects and starts the publisher task. Fails at once if NATS cannot be reached: a node that cannot
    /// see its cluster must not serve as if it were alone.
    pub async fn connect(
        url: &str,
        prefix: &str,
        node: &str,
        metrics: Arc<Metrics>,
    ) -> Result<NatsBus, BusError> {
        let client = async_nats::ConnectOptions::new()
            .name(format!("odd-gateway {node}"))
            .connect(url)
            .await
            .map_err(|e| BusError::Connect {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        let (tx, mut rx) = mpsc::unbounded_channel::<Out>();
        let publisher = client.clone();
        let m = metrics.clone();
        tokio::spawn(async move {
            while let Some(out) = rx.recv().await {
                match out {
                    Out::Publish(subject, bytes) => {
                        if let Err(e) = publisher.publish(subject, bytes).await {
                            m.bus_errors_total.with_label_values(&["publish"]).inc();
                            tracing::warn!(error = %e, "bus publish failed");
                        }
                    }
                    Out::Flush(done) => {
                        let _ = publisher.flush().await;
                        let _ = done.send(());
                    }
                }
            }
        });
        Ok(NatsBus {
            inner: Arc::new(Inner {
                node: node.to_string(),
                prefix: prefix.to_string(),
                client,
                tx,
                metrics,
            }),
        })
    }

    pub fn node(&self) -> &str {
        &self.inner.node
    }

    /// Queues an event; events leave in the order they were published. Never waits.
    pub fn publish(&self, event: &Event, body: &[u8]) {
        let i = &self.inner;
        let subject = match event {
            Event::Message {
                room: true, target, ..
            } => format!("{}.room.{}", i.prefix, hex(target)),
            Event::Message { target, .. } => format!("{}.user.{}", i.prefix, hex(target)),
            Event::Rights { .. } | Event::RoomProperties { .. } => format!("{}.rights", i.prefix),
            _ => format!("{}.presence", i.prefix),
        };
        i.metrics
            .bus_published_total
            .with_label_values(&[event.kind()])
            .inc();
        // The receiver lives as long as the process; a send after it stopped is a shutdown race, harmless.
        let _ = i.tx.send(Out::Publish(subject, event.encode(body)));
    }

    /// Everything the cluster publishes, this node's own events included.
    pub async fn subscribe(&self) -> Result<async_nats::Subscriber, BusError> {
        let subject = format!("{}.>", self.inner.prefix);
        let sub = self
            .inner
            .client
            .subscribe(subject.clone())
            .await
            .map_err(|e| BusError::Subscribe {
                subject: subject.clone(),
                reason: e.to_string(),
            })?;
        // Make sure the server has the subscription before this node announces itself.
        let _ = self.inner.client.flush().await;
        Ok(sub)
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
