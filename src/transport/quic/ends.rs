//! How a QUIC connection's end reaches the session, the same whichever task sees it first. The connection's
//! watcher (`report_end`) and every stream reader (a read that fails because the connection closed) race to
//! tell the session, and the session acts on the first word: a stream reader that said only "read failed"
//! turned a peer's goodbye (application close 0) into a lost connection, and parked a session that should
//! have ended.

use crate::transport::loops::{FrameSource, Read};
use crate::transport::Inbound;

use super::CLOSE_ABANDONED;

/// What the session is told when the connection ended with `e`; `None` when this side closed it.
pub fn inbound_for(e: &quinn::ConnectionError) -> Option<Inbound> {
    Some(match e {
        quinn::ConnectionError::LocallyClosed => return None,
        quinn::ConnectionError::ApplicationClosed(c)
            if c.error_code == quinn::VarInt::from_u32(CLOSE_ABANDONED) =>
        {
            Inbound::Failed("the peer abandoned the connection (its path died)".to_string())
        }
        quinn::ConnectionError::ApplicationClosed(c) => Inbound::Closed(format!(
            "closed by peer: {}",
            String::from_utf8_lossy(&c.reason)
        )),
        quinn::ConnectionError::TimedOut => Inbound::Failed("idle timeout".to_string()),
        other => Inbound::Failed(other.to_string()),
    })
}

/// A stream's frames; a read that fails because the whole connection ended says so as `inbound_for` does.
pub struct Ending<S> {
    inner: S,
    conn: quinn::Connection,
}

impl<S> Ending<S> {
    pub fn new(inner: S, conn: quinn::Connection) -> Ending<S> {
        Ending { inner, conn }
    }
}

impl<S: FrameSource> FrameSource for Ending<S> {
    async fn next(&mut self) -> Option<Read> {
        let read = self.inner.next().await;
        if let Some(Read::End(Inbound::Failed(_))) = &read {
            if let Some(end) = self.conn.close_reason().as_ref().and_then(inbound_for) {
                return Some(Read::End(end));
            }
        }
        read
    }
}
