//! An in-process wire: every node of a one-process cluster gets a link to the same hub, and a message
//! published on one link reaches every matching subscription of every link at once, in publish order. Tests
//! run the cluster's rules on it without a NATS server (tests/cluster_memory.rs); a link can be cut to play
//! a node that is killed or loses its network.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use futures::channel::mpsc;
use futures::future::BoxFuture;
use futures::FutureExt;

use super::wire::{matches, Subscription, Wire, WireMsg};

/// The hub nodes link to. Cheap to clone.
#[derive(Clone, Default)]
pub struct MemoryHub {
    inner: Arc<Hub>,
}

#[derive(Default)]
struct Hub {
    subs: Mutex<Vec<Sub>>,
    next_link: AtomicU64,
    /// Messages delivered to subscriptions so far (tests wait on it).
    delivered: AtomicU64,
}

struct Sub {
    pattern: String,
    link: Arc<LinkState>,
    tx: mpsc::UnboundedSender<WireMsg>,
}

struct LinkState {
    id: u64,
    up: AtomicBool,
}

impl Hub {
    fn subs(&self) -> MutexGuard<'_, Vec<Sub>> {
        self.subs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands `msg` to every matching subscription of a link that is up; whether any took it.
    fn deliver(&self, msg: &WireMsg) -> bool {
        let mut taken = false;
        self.subs().retain(|sub| {
            if !sub.link.up.load(Ordering::Acquire) || !matches(&sub.pattern, &msg.subject) {
                return true;
            }
            // A dropped subscription is gone for good: forget it.
            let alive = sub.tx.unbounded_send(msg.clone()).is_ok();
            if alive {
                taken = true;
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            alive
        });
        taken
    }
}

impl MemoryHub {
    pub fn new() -> MemoryHub {
        MemoryHub::default()
    }

    /// A new node's link to the hub.
    pub fn link(&self) -> MemoryLink {
        MemoryLink {
            hub: self.inner.clone(),
            state: Arc::new(LinkState {
                id: self.inner.next_link.fetch_add(1, Ordering::Relaxed),
                up: AtomicBool::new(true),
            }),
        }
    }

    /// How many messages subscriptions have been handed so far.
    pub fn delivered(&self) -> u64 {
        self.inner.delivered.load(Ordering::Relaxed)
    }
}

/// One node's link. Clones share the link (cutting one cuts all).
#[derive(Clone)]
pub struct MemoryLink {
    hub: Arc<Hub>,
    state: Arc<LinkState>,
}

impl MemoryLink {
    /// Cuts (`false`) or restores (`true`) the link: while cut, nothing it publishes leaves and nothing
    /// reaches it, as for a node whose network is gone.
    pub fn set_up(&self, up: bool) {
        self.state.up.store(up, Ordering::Release);
    }

    /// Which link this is, in the order they were made.
    pub fn id(&self) -> u64 {
        self.state.id
    }
}

impl Wire for MemoryLink {
    fn publish(
        &self,
        subject: String,
        reply: Option<String>,
        payload: Bytes,
    ) -> BoxFuture<'_, Result<(), String>> {
        let result = if self.state.up.load(Ordering::Acquire) {
            let msg = WireMsg {
                subject,
                reply: reply.clone(),
                payload,
                no_responders: false,
            };
            if !self.hub.deliver(&msg) {
                if let Some(reply) = reply {
                    self.hub.deliver(&WireMsg {
                        subject: reply,
                        reply: None,
                        payload: Bytes::new(),
                        no_responders: true,
                    });
                }
            }
            Ok(())
        } else {
            Err("the link is cut".to_string())
        };
        async move { result }.boxed()
    }

    fn subscribe(&self, subject: String) -> BoxFuture<'_, Result<Subscription, String>> {
        let (tx, rx) = mpsc::unbounded();
        self.hub.subs().push(Sub {
            pattern: subject,
            link: self.state.clone(),
            tx,
        });
        let sub: Subscription = Box::pin(rx);
        async move { Ok(sub) }.boxed()
    }

    fn flush(&self) -> BoxFuture<'_, ()> {
        // Delivery happens inside publish: nothing is ever in flight.
        async {}.boxed()
    }

    fn connected(&self) -> bool {
        self.state.up.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn messages_reach_matching_links_in_order_and_requests_to_nobody_bounce() {
        let hub = MemoryHub::new();
        let (a, b) = (hub.link(), hub.link());
        let mut all = b.subscribe("p.ev.>".into()).await.expect("sub");
        let mut replies = a.subscribe("p.reply.a.>".into()).await.expect("sub");
        for i in 0..3u8 {
            a.publish("p.ev.room.x".into(), None, Bytes::from(vec![i]))
                .await
                .expect("sent");
        }
        for i in 0..3u8 {
            assert_eq!(all.next().await.expect("msg").payload[..], [i]);
        }
        a.publish(
            "p.node.c.post".into(),
            Some("p.reply.a.1".into()),
            Bytes::new(),
        )
        .await
        .expect("sent");
        let bounced = replies.next().await.expect("bounce");
        assert!(bounced.no_responders);
        assert_eq!(bounced.subject, "p.reply.a.1");

        // A cut link neither sends nor hears.
        b.set_up(false);
        a.publish("p.ev.presence".into(), None, Bytes::new())
            .await
            .expect("sent");
        assert!(b
            .publish("p.ev.presence".into(), None, Bytes::new())
            .await
            .is_err());
        b.set_up(true);
        a.publish("p.ev.rights".into(), None, Bytes::new())
            .await
            .expect("sent");
        assert_eq!(all.next().await.expect("msg").subject, "p.ev.rights");
        assert_eq!(hub.delivered(), 5);
    }
}
