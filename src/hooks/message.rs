//! The `message` hook: every committed message, delivered to the backend in id order (so in order per room
//! and per conversation), in batches, at least once (docs/hooks.md).
//!
//! The durable outbox is the messages table itself: a cursor row (`hook_cursors`) says how far the backend
//! has acknowledged, and the task posts the rows after it. A restart resumes from the cursor, so nothing is
//! lost or reordered; a crash between the backend's 2xx and the cursor's update sends that batch again (same
//! `mid`s: the backend de-duplicates by `mid`). In a cluster the nodes share the cursor and a lease on it, so
//! one node at a time delivers.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::rooms::Rooms;
use crate::store::Store;

const HOOK: &str = "message";
/// How long a lease lasts; renewed on every round, so a dead node's lease lapses after this.
const LEASE: Duration = Duration::from_secs(10);
/// How often an idle delivery task looks for new messages.
const POLL: Duration = Duration::from_millis(100);
/// Backoff after a failed delivery: doubles from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(30));

pub struct MessageHook {
    http: reqwest::Client,
    url: String,
    secret: Vec<u8>,
    batch: u32,
    node: String,
    store: Store,
    rooms: Rooms,
    metrics: Arc<Metrics>,
}

impl MessageHook {
    pub fn new(
        config: &crate::config::Hooks,
        node: &str,
        store: Store,
        rooms: Rooms,
        metrics: Arc<Metrics>,
    ) -> Option<MessageHook> {
        let c = &config.message;
        if c.url.is_empty() {
            return None;
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(c.timeout_ms.max(1)))
            .build()
            .ok()?;
        Some(MessageHook {
            http,
            url: c.url.clone(),
            secret: config.secret.as_bytes().to_vec(),
            batch: c.batch,
            node: node.to_string(),
            store,
            rooms,
            metrics,
        })
    }

    /// Delivers until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = BACKOFF.0;
        loop {
            let wait = match self.round().await {
                Ok(true) => {
                    backoff = BACKOFF.0;
                    Duration::ZERO
                }
                Ok(false) => {
                    backoff = BACKOFF.0;
                    POLL
                }
                Err(why) => {
                    tracing::warn!(hook = HOOK, reason = %why, retry_in = ?backoff, "hook delivery failed");
                    self.count("failed");
                    let wait = backoff;
                    backoff = (backoff * 2).min(BACKOFF.1);
                    wait
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    fn count(&self, outcome: &str) {
        self.metrics
            .hook_calls_total
            .with_label_values(&[HOOK, outcome])
            .inc();
    }

    /// One delivery: `Ok(true)` when a batch was delivered (look again at once), `Ok(false)` when there was
    /// nothing to deliver or another node holds the lease.
    async fn round(&self) -> Result<bool, String> {
        let now = crate::clock::now_ms();
        let lease_ms = i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
        let Some(last) = self
            .store
            .hook_lease(HOOK, &self.node, now, now.saturating_add(lease_ms))
            .await
            .map_err(|e| format!("store: {e}"))?
        else {
            return Ok(false);
        };
        let rows = self
            .store
            .messages_after(last, self.batch)
            .await
            .map_err(|e| format!("store: {e}"))?;
        let Some(newest) = rows.last().map(|m| m.id) else {
            return Ok(false);
        };
        let body = self.rooms.hook_messages(rows);
        let started = std::time::Instant::now();
        let sent = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header(
                super::SIGNATURE_HEADER,
                super::signature(&self.secret, body.as_bytes()),
            )
            .body(body)
            .send()
            .await;
        self.metrics
            .hook_duration_seconds
            .with_label_values(&[HOOK])
            .observe(started.elapsed().as_secs_f64());
        let status = sent.map_err(|e| format!("unreachable: {e}"))?.status();
        if !status.is_success() {
            return Err(format!("answered {status}"));
        }
        self.count("delivered");
        self.store
            .hook_advance(HOOK, &self.node, newest)
            .await
            .map_err(|e| format!("store: {e}"))?;
        Ok(true)
    }
}
