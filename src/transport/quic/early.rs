//! 0-RTT for returning phones, on the gateway's side.
//!
//! A client that holds a session ticket from an earlier connection sends its `connect` in its first flight
//! (0-RTT), and the gateway answers before the handshake completes (0.5-RTT): `Connect.Success` one round trip
//! after the client's first packet, instead of two.
//!
//! Replay: 0-RTT data can be captured and sent again by an attacker. The gateway's QUIC TLS config accepts
//! early data only with stateful, single-use tickets (rustls takes a ticket out of its store when it is used:
//! RFC 8446 §8.1), so a replayed first flight finds its ticket gone and its early data is rejected. As a
//! second line, only the connection's **first frame** (its `connect`, which creates or resumes a session and
//! changes nothing else) is read before the handshake completes; every later frame, on any stream, waits for
//! it (`Gated`). Tickets live in one process: after a restart, or on another cluster node, a returning client
//! just pays the full handshake.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::future::{BoxFuture, FutureExt, Shared};

use crate::transport::loops::{FrameSource, Read};

/// Session tickets the gateway remembers for 0-RTT (each a few hundred bytes; the oldest are dropped).
pub const QUIC_TICKETS: usize = 32 * 1024;

/// One server connection's early phase: resolved once its handshake completed.
pub struct Early {
    done: Shared<BoxFuture<'static, ()>>,
    first: AtomicBool,
}

impl Early {
    /// `handshake` resolves when the connection's handshake completed (quinn's `ZeroRttAccepted`).
    pub fn new<F>(handshake: F) -> Arc<Early>
    where
        F: std::future::Future + Send + 'static,
    {
        Arc::new(Early {
            done: handshake.map(|_| ()).boxed().shared(),
            first: AtomicBool::new(false),
        })
    }

    /// Waits until a frame just read may go to the session: the connection's first at once, later ones
    /// once the handshake completed.
    async fn admit(&self) {
        if self.first.swap(true, Ordering::AcqRel) {
            self.done.clone().await;
        }
    }

    fn completed(&self) -> bool {
        self.done.peek().is_some()
    }
}

/// A stream's frames, held back while the connection is still in its early phase (see the module doc).
pub struct Gated<S> {
    inner: S,
    early: Option<Arc<Early>>,
}

impl<S> Gated<S> {
    pub fn new(inner: S, early: Option<Arc<Early>>) -> Gated<S> {
        Gated { inner, early }
    }
}

impl<S: FrameSource> FrameSource for Gated<S> {
    async fn next(&mut self) -> Option<Read> {
        let read = self.inner.next().await;
        if let (Some(Read::Frame(_)), Some(early)) = (&read, &self.early) {
            early.admit().await;
            if early.completed() {
                self.early = None;
            }
        }
        read
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    /// Frames from a list, each a `Read::Frame`.
    struct List(Vec<&'static [u8]>);

    impl FrameSource for List {
        async fn next(&mut self) -> Option<Read> {
            (!self.0.is_empty()).then(|| Read::Frame(bytes::Bytes::from_static(self.0.remove(0))))
        }
    }

    #[tokio::test]
    async fn only_the_first_frame_is_read_before_the_handshake_completes() {
        let (done, handshake) = tokio::sync::oneshot::channel::<()>();
        let early = Early::new(handshake);
        let mut a = Gated::new(List(vec![b"connect", b"create"]), Some(early.clone()));
        let mut b = Gated::new(List(vec![b"join"]), Some(early));
        assert!(
            matches!(a.next().now_or_never(), Some(Some(Read::Frame(f))) if &f[..] == b"connect")
        );
        // Every later frame, on this stream or another, waits for the handshake.
        let mut second = Box::pin(a.next());
        let mut other = Box::pin(b.next());
        assert!((&mut second).now_or_never().is_none());
        assert!((&mut other).now_or_never().is_none());
        let _ = done.send(());
        assert!(matches!(second.await, Some(Read::Frame(f)) if &f[..] == b"create"));
        assert!(matches!(other.await, Some(Read::Frame(f)) if &f[..] == b"join"));
    }
}
