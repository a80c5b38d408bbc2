//! How the asynchronous hooks' delivery tasks (`message`, `offline`, `events`) pace themselves: at once after a
//! delivered batch, every `POLL` while there is nothing to send, and a doubling backoff after a failure.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often an idle delivery task looks for new rows.
pub const POLL: Duration = Duration::from_millis(100);
/// Backoff after a failed delivery: doubles from the first to the last.
pub const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(30));

pub struct Pace {
    backoff: Duration,
}

impl Default for Pace {
    fn default() -> Pace {
        Pace { backoff: BACKOFF.0 }
    }
}

impl Pace {
    /// Waits as the last round's outcome says (`Ok(true)`: delivered, `Ok(false)`: nothing to send or another
    /// node's lease, `Err`: failed, logged here); `false` once `shutdown` came first.
    pub async fn wait(
        &mut self,
        hook: &str,
        round: Result<bool, String>,
        shutdown: &CancellationToken,
    ) -> bool {
        let wait = match round {
            Ok(delivered) => {
                self.backoff = BACKOFF.0;
                if delivered {
                    Duration::ZERO
                } else {
                    POLL
                }
            }
            Err(why) => {
                tracing::warn!(hook, reason = %why, retry_in = ?self.backoff, "hook delivery failed");
                let wait = self.backoff;
                self.backoff = (self.backoff * 2).min(BACKOFF.1);
                wait
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = tokio::time::sleep(wait) => true,
        }
    }
}

/// What is left in an outbox after a read of `fetched` rows (at most `batch`) past `last`: all of it, when the
/// read came back short, else up to the newest row (`newest`, asked only then).
pub async fn left<E: std::fmt::Display>(
    fetched: usize,
    batch: u32,
    last: i64,
    newest: impl std::future::Future<Output = Result<i64, E>>,
) -> Result<i64, String> {
    if fetched < batch as usize {
        return Ok(fetched as i64);
    }
    let newest = newest.await.map_err(|e| format!("store: {e}"))?;
    Ok(newest.saturating_sub(last).max(0))
}
