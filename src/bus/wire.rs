//! The seam under the cluster bus: subjects and bytes between nodes, nothing about what they mean. `ClusterBus`
//! (cluster.rs) builds events, requests and replies on any `Wire`; two implement it:
//! - NATS (`nats.rs`), the real thing between processes and hosts;
//! - an in-process hub (`memory.rs`), so several nodes in one process form a cluster without a NATS server:
//!   the cluster's rules are tested that way, beside the NATS tests.
//!
//! What a wire must keep, as NATS core does: messages from one publisher arrive at every matching subscription
//! in the order they were published; a subscription returned by `subscribe` is in place before anything
//! published after it; a request (`reply` set) to a subject nobody listens on comes back at once on the
//! reply subject marked `no_responders`.

use std::pin::Pin;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::Stream;

/// One message on the wire.
#[derive(Debug, Clone)]
pub struct WireMsg {
    pub subject: String,
    /// Where the answer goes, for a request.
    pub reply: Option<String>,
    pub payload: Bytes,
    /// The wire's own answer to a request nobody listens to (NATS status 503).
    pub no_responders: bool,
}

/// What a subscription yields, until the wire closes.
pub type Subscription = Pin<Box<dyn Stream<Item = WireMsg> + Send>>;

/// How a node's messages reach the others. Subjects are NATS subjects: tokens separated by `.`, and a
/// subscription may end in `>` (one or more further tokens) or hold `*` (any one token).
pub trait Wire: Send + Sync + 'static {
    /// Sends one message (with `reply`: a request). Errors are the wire's own words.
    fn publish(
        &self,
        subject: String,
        reply: Option<String>,
        payload: Bytes,
    ) -> BoxFuture<'_, Result<(), String>>;

    /// Subscribes; the subscription is in place (on the server, for NATS) when this returns.
    fn subscribe(&self, subject: String) -> BoxFuture<'_, Result<Subscription, String>>;

    /// Returns once everything published before reached the other side (or could not).
    fn flush(&self) -> BoxFuture<'_, ()>;

    /// Whether the wire is up right now.
    fn connected(&self) -> bool;
}

/// Whether `subject` matches the subscription `pattern` (`*` one token, a final `>` one or more).
pub fn matches(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn subjects_match_as_nats_matches_them() {
        assert!(matches("odd.ev.>", "odd.ev.room.61"));
        assert!(matches("odd.ev.>", "odd.ev.presence"));
        assert!(!matches("odd.ev.>", "odd.ev"), "> needs one more token");
        assert!(matches("odd.*.presence", "odd.ev.presence"));
        assert!(!matches("odd.*.presence", "odd.ev.x.presence"));
        assert!(matches("odd.node.61.post", "odd.node.61.post"));
        assert!(!matches("odd.node.61.post", "odd.node.62.post"));
        assert!(!matches("odd.node.61", "odd.node.61.post"));
        assert!(!matches("odd.node.61.post", "odd.node.61"));
    }
}
