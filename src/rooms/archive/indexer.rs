//! The search indexer: follows the messages table behind a cursor and indexes each message's words, so the
//! send path never waits for the index (a message is searchable within about a poll interval of its commit).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::words::message_words;
use crate::metrics::Metrics;
use crate::store::{CursorLease, Store, StoreError, INDEXER};

/// Messages indexed per transaction: small, so that one round's reading and word splitting (done on a
/// blocking thread, off the tasks that serve connections) is a short burst next to the send path.
const BATCH: u32 = 200;
/// How often an idle indexer looks for new messages.
const POLL: Duration = Duration::from_millis(100);
/// Wait after a failed round (the store is down: the health check says so; this only retries).
const RETRY: Duration = Duration::from_secs(1);

pub struct SearchIndexer {
    store: Store,
    lease: CursorLease,
    metrics: Arc<Metrics>,
}

impl SearchIndexer {
    pub fn new(store: Store, node: &str, metrics: Arc<Metrics>) -> SearchIndexer {
        SearchIndexer {
            store,
            lease: CursorLease::new(INDEXER, node),
            metrics,
        }
    }

    /// Indexes until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            let started = tokio::time::Instant::now();
            let wait = match self.round().await {
                // Behind: go on after a pause as long as the round took, so that catching up takes at most
                // about half of the time and the send path (which shares the cores and the database) keeps
                // the rest. Under a sustained burst the index lags, and catches up when the burst ends.
                Ok(true) => started.elapsed(),
                Ok(false) => POLL,
                Err(e) => {
                    tracing::warn!(error = %e, "search indexing failed; retrying");
                    RETRY
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
        let (texts, newest) = self.store.texts_after(last, BATCH).await?;
        let Some(newest) = newest else {
            return Ok(false);
        };
        let looked_at = texts.len();
        let split = tokio::task::spawn_blocking(move || {
            texts
                .into_iter()
                .map(|(id, data)| (id, message_words(&data)))
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
