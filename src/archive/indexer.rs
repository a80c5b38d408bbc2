//! The search indexer: follows the messages table behind a cursor and indexes each message's words, so the
//! send path never waits for the index (a message is searchable within about a poll interval of its commit).
//!
//! It also stays out of the send path's way: while this node's journal commits a burst (5,000 messages a
//! second or more) it waits, for up to `MAX_DEFER`, and then catches up; while behind, it pauses as long as
//! each round took. Under a burst the index lags by up to a few seconds instead of taking cores and database
//! time from the sends (measured: benches/README.md, "Search").

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use tokio_util::sync::CancellationToken;

use super::words::{message_words, thread_token};
use crate::metrics::Metrics;
use crate::store::{CursorLease, Store, StoreError, INDEXER};

/// Messages indexed per transaction: small, so that one round's reading and word splitting (done on a
/// blocking thread, off the tasks that serve connections) is a short burst next to the send path.
const BATCH: u32 = 200;
/// How often an idle indexer looks for new messages.
const POLL: Duration = Duration::from_millis(100);
/// A journal committing at this rate or faster is in a burst: indexing waits.
const BUSY_PER_SEC: f64 = 5_000.0;
/// The longest indexing waits for a burst to end; past it, it catches up (paced) while the burst goes on.
const MAX_DEFER: Duration = Duration::from_secs(5);
/// Wait after a failed round (the store is down: the health check says so; this only retries).
const RETRY: Duration = Duration::from_secs(1);

pub struct SearchIndexer {
    store: Store,
    lease: CursorLease,
    metrics: Arc<Metrics>,
    /// Whether this node's commit rate (`odd_gateway_messages_stored_total`) may tell it to wait for a burst.
    defers: bool,
}

/// What the indexer last saw of the journal: messages committed, and when.
struct Load {
    committed: u64,
    at: Instant,
    /// Since when indexing has been waiting for a burst to end.
    deferred_since: Option<Instant>,
}

impl SearchIndexer {
    pub fn new(store: Store, node: &str, metrics: Arc<Metrics>) -> SearchIndexer {
        SearchIndexer {
            store,
            lease: CursorLease::new(INDEXER, node),
            metrics,
            defers: false,
        }
    }

    /// Waits while this node's journal commits a burst (see the module's doc), as its metrics count commits.
    pub fn deferring(mut self) -> SearchIndexer {
        self.defers = true;
        self
    }

    /// Whether to wait now rather than index: the journal committed at burst rate since the last look, and
    /// indexing has not waited `MAX_DEFER` yet.
    fn defer(&self, load: &mut Load) -> bool {
        if !self.defers {
            return false;
        }
        let committed = self.metrics.messages_stored_total.get();
        let now = Instant::now();
        let secs = now.duration_since(load.at).as_secs_f64().max(0.001);
        let rate = committed.saturating_sub(load.committed) as f64 / secs;
        load.committed = committed;
        load.at = now;
        if rate < BUSY_PER_SEC {
            load.deferred_since = None;
            return false;
        }
        let since = *load.deferred_since.get_or_insert(now);
        now.duration_since(since) < MAX_DEFER
    }

    /// Indexes until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut load = Load {
            committed: 0,
            at: Instant::now(),
            deferred_since: None,
        };
        self.defer(&mut load);
        loop {
            let started = Instant::now();
            let wait = if self.defer(&mut load) {
                POLL
            } else {
                match self.round().await {
                    // Behind: go on after a pause as long as the round took, so that catching up takes at most
                    // about half of the time and the send path (which shares the cores and the database) keeps
                    // the rest. Under a sustained burst the index lags, and catches up when the burst ends.
                    Ok(true) => started.elapsed(),
                    Ok(false) => POLL,
                    Err(e) => {
                        tracing::warn!(error = %e, "search indexing failed; retrying");
                        RETRY
                    }
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One batch: `Ok(true)` when it indexed a full batch (look again at once).
    async fn round(&mut self) -> Result<bool, StoreError> {
        let Some(last) = self.lease.cursor(&self.store).await? else {
            return Ok(false);
        };
        let texts = self.store.texts_after(last, BATCH).await?;
        let Some(newest) = texts.last().map(|(id, _)| *id) else {
            return Ok(false);
        };
        // Redacted messages are looked at too: the cursor passes them, and a batch of them is a full batch.
        let looked_at = texts.len();
        let split = tokio::task::spawn_blocking(move || {
            texts
                .into_iter()
                .filter_map(|(id, text)| text.map(|(data, thread)| (id, data, thread)))
                .map(|(id, data, thread)| {
                    let mut words = message_words(&data);
                    if !words.is_empty() {
                        words.push(thread_token(&thread));
                    }
                    (id, words)
                })
                .collect::<Vec<_>>()
        })
        .await;
        // Splitting words cannot fail; should it panic, these messages go unindexed (loudly) rather than
        // stopping the index for good.
        let docs: Vec<(i64, Vec<String>)> = split.unwrap_or_else(|e| {
            tracing::error!(after = last, error = %e, "splitting messages into words failed; not indexed");
            Vec::new()
        });
        let held = self
            .store
            .index_messages(self.lease.node(), &docs, newest)
            .await?;
        self.lease.moved(newest, held);
        if held {
            self.metrics.search_indexed_total.inc_by(looked_at as u64);
        }
        Ok(held && looked_at as u32 >= BATCH)
    }
}
